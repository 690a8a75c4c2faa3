//! Checks served responses against the server's own OpenAPI document.

use serde_json::Value;

/// Checks `body`, answered with `status` to `method path`, against the
/// JSON schema the OpenAPI document `doc` declares for that response.
/// Routes and methods the document does not list (404s, 405s) are not
/// checked; a listed route answering an undeclared status is an error, as
/// is a body that breaks the declared schema.
pub fn check_response(
    doc: &Value,
    method: &str,
    path: &str,
    status: u16,
    body: &Value,
) -> Result<(), String> {
    let Some(operation) = doc["paths"][path][method].as_object() else {
        return Ok(());
    };
    let Some(response) = operation["responses"][status.to_string()].as_object() else {
        return Err(format!(
            "{method} {path} answered {status}, which the document does not declare"
        ));
    };
    let Some(schema) = response
        .get("content")
        .and_then(|c| c.get("application/json"))
        .and_then(|c| c.get("schema"))
        .and_then(Value::as_object)
    else {
        return Ok(());
    };
    // The schema's `#/components/...` references resolve in the root.
    let mut root = schema.clone();
    root.insert("components".into(), doc["components"].clone());
    let validator = jsonschema::validator_for(&Value::Object(root))
        .map_err(|e| format!("{method} {path} {status}: unusable schema: {e}"))?;
    let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{method} {path} {status}: {}: {body}",
            errors.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc() -> Value {
        json!({
            "paths": {"/x": {"get": {"responses": {
                "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/X"}}}},
                "204": {"description": "empty"}
            }}}},
            "components": {"schemas": {"X": {
                "type": "object",
                "required": ["n"],
                "properties": {"n": {"type": "integer"}}
            }}}
        })
    }

    #[test]
    fn bodies_are_checked_against_the_declared_schema() {
        let d = doc();
        assert!(check_response(&d, "get", "/x", 200, &json!({"n": 1})).is_ok());
        let err = check_response(&d, "get", "/x", 200, &json!({"n": "one"})).unwrap_err();
        assert!(err.contains("/x 200"), "{err}");
        assert!(check_response(&d, "get", "/x", 200, &json!({})).is_err());
        assert!(check_response(&d, "get", "/x", 500, &json!({})).is_err());
        assert!(check_response(&d, "get", "/x", 204, &Value::Null).is_ok());
        assert!(check_response(&d, "get", "/elsewhere", 404, &Value::Null).is_ok());
        assert!(check_response(&d, "post", "/x", 405, &Value::Null).is_ok());
    }
}
