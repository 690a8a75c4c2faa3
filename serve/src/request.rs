//! The scoring API's wire types and request parsing: malformed JSON is a
//! 400, a body that breaks the contract is a 422 naming the session and
//! field.

use std::collections::HashSet;

use chrono::Utc;
use datasets::Session;
use models::prompt_head::prompt_session;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;

/// Body of `POST /v1/score`: `sessions` in the shape of the data contract
/// (labels ignored), or `prompts`, each scored alone by the bundle's
/// prompt head (text only: a bare prompt has no behaviour to read).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ScoreRequest {
    /// Sessions to score.
    #[serde(default)]
    pub sessions: Option<Vec<Session>>,
    /// Shortcut: single prompts, each a session with one event sent now.
    #[serde(default)]
    pub prompts: Option<Vec<String>>,
    /// Return each session's pooled text embedding.
    #[serde(default)]
    pub return_embedding: bool,
}

/// Which model scored a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ModelRef {
    /// Bundle name.
    pub name: String,
    /// Bundle version: the first 12 hex digits of its weights' sha256.
    pub version: String,
}

/// One scored session of a response, in request order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SessionResult {
    /// The session's id (`prompt-N` for the N-th prompt of the shortcut).
    pub session_id: String,
    /// Probability of extraction.
    pub score: f32,
    /// `score >= threshold`.
    pub flagged: bool,
    /// The model's operating threshold.
    pub threshold: f32,
    /// The model that scored it.
    pub model: ModelRef,
    /// Why it scored as it did, most important first.
    pub reasons: Vec<String>,
    /// The batch job's verdict on the session's account, when the campaign
    /// map holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountResult>,
    /// Pooled text embedding, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
}

/// What the campaign map says about a session's account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AccountResult {
    /// The account.
    pub account_id: String,
    /// `flag` or `review`.
    pub verdict: models::account_model::AccountVerdict,
    /// Account score.
    pub score: f32,
    /// Its campaign, when it belongs to one.
    pub campaign_id: Option<String>,
    /// Why, most important first.
    pub reasons: Vec<String>,
    /// First request of the window the map covers.
    pub window_start: String,
    /// Last request of that window.
    pub window_end: String,
}

/// Body of a successful `POST /v1/score`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScoreResponse {
    /// One result per session, in request order.
    pub results: Vec<SessionResult>,
}

/// A request checked against the contract and the server's limits.
#[derive(Debug, Clone)]
pub struct ParsedRequest {
    /// Sessions to score (validated, events sorted by time).
    pub sessions: Vec<Session>,
    /// Return embeddings.
    pub return_embedding: bool,
    /// Built from bare `prompts`: scored by the bundle's prompt head.
    pub prompt_only: bool,
}

/// Account id given to sessions built from the `prompts` shortcut.
pub const PROMPT_ACCOUNT: &str = "anonymous";

/// Parses and validates a score request body holding at most
/// `max_sessions` sessions (or prompts).
pub fn parse_score_request(body: &[u8], max_sessions: usize) -> Result<ParsedRequest, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let request: ScoreRequest = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        json_error(e.into_inner(), &path)
    })?;
    de.end().map_err(|e| json_error(e, "."))?;
    let prompt_only = request.prompts.is_some();
    let sessions =
        match (request.sessions, request.prompts) {
            (Some(_), Some(_)) => {
                return Err(ApiError::Validation(
                    "give either `sessions` or `prompts`, not both".into(),
                ))
            }
            (None, None) => return Err(ApiError::Validation(
                "the body needs `sessions` (a list of sessions) or `prompts` (a list of strings)"
                    .into(),
            )),
            (Some(sessions), None) => check_sessions(sessions, max_sessions)?,
            (None, Some(prompts)) => prompt_sessions(prompts, max_sessions)?,
        };
    Ok(ParsedRequest {
        sessions,
        return_embedding: request.return_embedding,
        prompt_only,
    })
}

/// A 422 for data that does not fit the contract (naming the field), a 400
/// for anything that is not JSON at all.
pub fn json_error(e: serde_json::Error, path: &str) -> ApiError {
    match e.classify() {
        serde_json::error::Category::Data => ApiError::Validation(format!("field `{path}`: {e}")),
        _ => ApiError::BadRequest(format!("malformed JSON: {e}")),
    }
}

fn check_count(field: &str, n: usize, max: usize) -> Result<(), ApiError> {
    if n == 0 {
        return Err(ApiError::Validation(format!(
            "field `{field}`: must hold at least one item"
        )));
    }
    if n > max {
        return Err(ApiError::Validation(format!(
            "field `{field}`: {n} items, more than the limit of {max} per request"
        )));
    }
    Ok(())
}

fn check_sessions(mut sessions: Vec<Session>, max: usize) -> Result<Vec<Session>, ApiError> {
    check_count("sessions", sessions.len(), max)?;
    let mut seen = HashSet::new();
    for (i, s) in sessions.iter_mut().enumerate() {
        s.validate().map_err(|(field, message)| {
            ApiError::Validation(format!("field `sessions[{i}].{field}`: {message}"))
        })?;
        if !seen.insert(s.session_id.clone()) {
            return Err(ApiError::Validation(format!(
                "field `sessions[{i}].session_id`: {:?} appears twice in the request",
                s.session_id
            )));
        }
    }
    Ok(sessions)
}

fn prompt_sessions(prompts: Vec<String>, max: usize) -> Result<Vec<Session>, ApiError> {
    check_count("prompts", prompts.len(), max)?;
    let now = Utc::now();
    prompts
        .into_iter()
        .enumerate()
        .map(|(i, prompt)| {
            if prompt.is_empty() {
                return Err(ApiError::Validation(format!(
                    "field `prompts[{i}]`: must not be empty"
                )));
            }
            Ok(prompt_session(
                format!("prompt-{i}"),
                PROMPT_ACCOUNT.into(),
                prompt,
                now,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> ApiError {
        parse_score_request(body.as_bytes(), 2).unwrap_err()
    }

    const EVENT: &str = r#"{"ts": "2026-02-10T12:00:03Z", "prompt": "hi"}"#;

    #[test]
    fn parses_sessions_and_prompts() {
        let body = format!(
            r#"{{"sessions": [{{"session_id": "a", "account_id": "x", "label": "benign", "extra": 1, "events": [{EVENT}]}}], "return_embedding": true}}"#
        );
        let r = parse_score_request(body.as_bytes(), 2).unwrap();
        assert_eq!(r.sessions.len(), 1);
        assert!(r.return_embedding);
        let r = parse_score_request(br#"{"prompts": ["one", "two"]}"#, 2).unwrap();
        assert_eq!(r.sessions[1].session_id, "prompt-1");
        assert_eq!(r.sessions[1].events[0].prompt, "two");
        assert!(!r.return_embedding);
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        assert_eq!(err("{\"sessions\": [").error_type(), "bad_request");
        assert_eq!(err("not json").error_type(), "bad_request");
        assert_eq!(err("{} trailing").error_type(), "bad_request");
    }

    #[test]
    fn contract_violations_name_the_session_and_field() {
        let body = format!(
            r#"{{"sessions": [{{"session_id": "a", "account_id": "x", "events": [{EVENT}]}}, {{"session_id": "b", "account_id": "x", "events": [{{"ts": "yesterday", "prompt": "p"}}]}}]}}"#
        );
        let e = err(&body);
        assert_eq!(e.error_type(), "validation");
        assert!(e.to_string().contains("sessions[1].events[0].ts"), "{e}");
        let body = format!(
            r#"{{"sessions": [{{"session_id": "a", "account_id": "x", "events": [{EVENT}, {{"ts": "2026-02-10T12:00:03Z", "prompt": ""}}]}}]}}"#
        );
        assert!(err(&body)
            .to_string()
            .contains("sessions[0].events[1].prompt"));
        let body = format!(
            r#"{{"sessions": [{{"session_id": "a", "account_id": "x", "events": [{EVENT}]}}, {{"session_id": "a", "account_id": "y", "events": [{EVENT}]}}]}}"#
        );
        assert!(err(&body).to_string().contains("appears twice"));
        assert!(err(r#"{"sessions": []}"#)
            .to_string()
            .contains("at least one"));
        assert!(err(r#"{"prompts": ["a", "b", "c"]}"#)
            .to_string()
            .contains("limit of 2"));
        assert!(err(r#"{"prompts": ["a", ""]}"#)
            .to_string()
            .contains("prompts[1]"));
        assert!(err(r#"{"prompts": ["a"], "sessions": []}"#)
            .to_string()
            .contains("not both"));
        assert!(err(r#"{}"#).to_string().contains("needs"));
        assert!(err(r#"{"prompts": "a"}"#).to_string().contains("`prompts`"));
    }
}
