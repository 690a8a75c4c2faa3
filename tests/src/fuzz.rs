//! Generated HTTP requests for fuzzing `serve`: valid and mutated JSON
//! bodies, wrong types, dropped fields, huge arrays and strings, deep
//! nesting, invalid UTF-8, truncated bodies, wrong content types and
//! methods, unknown paths and admin reloads of arbitrary directories.

use rand::{seq::IndexedRandom, Rng};
use serde_json::{json, Map, Value};

/// One generated request.
#[derive(Debug, Clone)]
pub struct FuzzRequest {
    /// HTTP method.
    pub method: &'static str,
    /// Path (and query) after the host.
    pub path: String,
    /// `Content-Type` header, if any.
    pub content_type: Option<&'static str>,
    /// Raw body bytes (not necessarily UTF-8).
    pub body: Vec<u8>,
    /// Which generator made it (for failure messages).
    pub kind: &'static str,
}

const PATHS: [&str; 8] = [
    "/v1/score",
    "/admin/reload",
    "/info",
    "/health",
    "/ready",
    "/metrics",
    "/openapi.json",
    "/v1/score/",
];
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];
const CONTENT_TYPES: [&str; 4] = [
    "text/plain",
    "application/xml",
    "application/x-www-form-urlencoded",
    "application/json; charset=latin1",
];

fn post_json(kind: &'static str, path: &str, body: &Value) -> FuzzRequest {
    FuzzRequest {
        method: "POST",
        path: path.into(),
        content_type: Some("application/json"),
        body: body.to_string().into_bytes(),
        kind,
    }
}

/// A random JSON value, at most `depth` levels deep.
pub fn random_value(rng: &mut impl Rng, depth: usize) -> Value {
    let pick = if depth == 0 {
        rng.random_range(0..6)
    } else {
        rng.random_range(0..8)
    };
    match pick {
        0 => Value::Null,
        1 => json!(rng.random_bool(0.5)),
        2 => json!(rng.random_range(-1_000_000_000i64..1_000_000_000)),
        3 => json!([f64::MAX, -0.0, 1e-300, 0.5][rng.random_range(0..4)]),
        4 => json!(random_text(rng, 40)),
        5 => json!(""),
        6 => Value::Array(
            (0..rng.random_range(0..5))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.random_range(0..5))
                .map(|_| (random_text(rng, 12), random_value(rng, depth - 1)))
                .collect(),
        ),
    }
}

/// Up to `max` characters: letters, JSON punctuation, controls, emoji.
fn random_text(rng: &mut impl Rng, max: usize) -> String {
    const CHARS: [char; 14] = [
        'a', 'Z', '0', ' ', '"', '\\', '{', ']', '\n', '\u{0}', 'é', '漢', '🙂', '\u{7f}',
    ];
    (0..rng.random_range(0..=max))
        .map(|_| *CHARS.choose(rng).expect("non-empty"))
        .collect()
}

/// Replaces one randomly chosen value inside `value` by `replacement`
/// (or removes an object field when `replacement` is `None`).
fn mutate(rng: &mut impl Rng, value: &mut Value, replacement: Option<Value>) {
    match value {
        Value::Object(map) if !map.is_empty() && rng.random_bool(0.7) => {
            let key = map
                .keys()
                .nth(rng.random_range(0..map.len()))
                .cloned()
                .expect("in range");
            if rng.random_bool(0.5) {
                mutate(rng, map.get_mut(&key).expect("present"), replacement);
            } else if let Some(r) = replacement {
                map.insert(key, r);
            } else {
                map.remove(&key);
            }
        }
        Value::Array(items) if !items.is_empty() && rng.random_bool(0.7) => {
            let i = rng.random_range(0..items.len());
            mutate(rng, &mut items[i], replacement);
        }
        other => {
            if let Some(r) = replacement {
                *other = r;
            }
        }
    }
}

/// `[[[...]]]` or `{"a":{"a":...}}` `depth` levels deep.
fn deep_nesting(rng: &mut impl Rng, depth: usize) -> Vec<u8> {
    let (open, close) = if rng.random_bool(0.5) {
        ("[", "]")
    } else {
        ("{\"a\":", "}")
    };
    let mut body = String::from("{\"sessions\":");
    body.push_str(&open.repeat(depth));
    body.push('1');
    body.push_str(&close.repeat(depth));
    body.push('}');
    body.into_bytes()
}

/// One request drawn from every generator, given valid scoring bodies to
/// mutate (each `{"sessions": [...]}`).
pub fn generate(rng: &mut impl Rng, valid: &[Value]) -> FuzzRequest {
    let base = valid.choose(rng).expect("valid bodies").clone();
    match rng.random_range(0..14) {
        0 => post_json("valid", "/v1/score", &base),
        1 => {
            let mut body = base;
            let replacement = random_value(rng, 3);
            mutate(rng, &mut body, Some(replacement));
            post_json("wrong type", "/v1/score", &body)
        }
        2 => {
            let mut body = base;
            mutate(rng, &mut body, None);
            post_json("dropped field", "/v1/score", &body)
        }
        3 => post_json("random value", "/v1/score", &random_value(rng, 4)),
        4 => {
            let depth = rng.random_range(10..20_000);
            FuzzRequest {
                body: deep_nesting(rng, depth),
                ..post_json("deep nesting", "/v1/score", &Value::Null)
            }
        }
        5 => {
            let n = rng.random_range(100..20_000);
            let item = if rng.random_bool(0.5) {
                json!({})
            } else {
                base["sessions"][0].clone()
            };
            post_json(
                "huge array",
                "/v1/score",
                &json!({ "sessions": vec![item; n] }),
            )
        }
        6 => {
            let prompt = "x".repeat(rng.random_range(1_000..3_000_000));
            post_json("huge string", "/v1/score", &json!({ "prompts": [prompt] }))
        }
        7 => {
            let mut body = base.to_string().into_bytes();
            for _ in 0..rng.random_range(1..8) {
                let i = rng.random_range(0..body.len());
                body[i] = [0xff, 0xc3, 0x80, 0xed, 0x00][rng.random_range(0..5)];
            }
            FuzzRequest {
                body,
                ..post_json("invalid utf-8", "/v1/score", &Value::Null)
            }
        }
        8 => {
            let mut body = base.to_string().into_bytes();
            body.truncate(rng.random_range(0..body.len()));
            FuzzRequest {
                body,
                ..post_json("truncated", "/v1/score", &Value::Null)
            }
        }
        9 => FuzzRequest {
            content_type: if rng.random_bool(0.2) {
                None
            } else {
                CONTENT_TYPES.choose(rng).copied()
            },
            ..post_json("content type", PATHS[rng.random_range(0..2)], &base)
        },
        10 => FuzzRequest {
            method: METHODS.choose(rng).copied().expect("non-empty"),
            ..post_json(
                "method",
                PATHS.choose(rng).copied().expect("non-empty"),
                &base,
            )
        },
        11 => {
            let mut path = String::from("/");
            for b in random_text(rng, 30).bytes() {
                if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                    path.push(char::from(b));
                } else {
                    path.push_str(&format!("%{b:02X}"));
                }
            }
            if rng.random_bool(0.3) {
                path.push_str("?x=%FF%00&y");
            }
            FuzzRequest {
                path,
                ..post_json("path", "/", &base)
            }
        }
        12 => {
            let prompts: Vec<Value> = (0..rng.random_range(0..40))
                .map(|_| random_value(rng, 1))
                .collect();
            post_json("prompts", "/v1/score", &json!({ "prompts": prompts }))
        }
        _ => {
            let model_dir = match rng.random_range(0..4) {
                0 => json!("/etc"),
                1 => json!("../../.."),
                2 => random_value(rng, 1),
                _ => json!(random_text(rng, 20)),
            };
            let mut body = Map::new();
            body.insert("model_dir".into(), model_dir);
            post_json("admin reload", "/admin/reload", &Value::Object(body))
        }
    }
}
