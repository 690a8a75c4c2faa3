//! Raw request log -> sessions on hand-made logs.

use std::io::Cursor;

use chrono::{DateTime, Duration, Utc};
use datasets::{
    reader::BadLinePolicy,
    sessionize::{sessionize, RawLogReader, RawRequest, SessionizeConfig},
};

fn t(minutes: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-02-10T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + Duration::minutes(minutes)
}

fn req(account: &str, minute: i64, prompt: &str) -> RawRequest {
    RawRequest {
        account_id: account.into(),
        account: None,
        ts: t(minute),
        prompt: prompt.into(),
        ip: Some("198.51.100.1".into()),
        asn: Some(7922),
        user_agent: None,
        model: None,
        response_tokens: None,
    }
}

fn shape(sessions: &[datasets::Session]) -> Vec<(String, String, Vec<String>)> {
    sessions
        .iter()
        .map(|s| {
            (
                s.session_id.clone(),
                s.account_id.clone(),
                s.events.iter().map(|e| e.prompt.clone()).collect(),
            )
        })
        .collect()
}

#[test]
fn cuts_on_inactivity_gap_and_groups_by_account() {
    // Given out of order, two accounts interleaved.
    let log = vec![
        req("a", 50, "a3"),
        req("b", 5, "b1"),
        req("a", 0, "a1"),
        req("a", 10, "a2"),
        req("a", 79, "a4"), // 29 min after a3: same session
        req("b", 36, "b2"), // 31 min after b1: new session
    ];
    let sessions = sessionize(log, &SessionizeConfig::default());
    let got = shape(&sessions);
    let want = vec![
        (
            "a#0".to_string(),
            "a".to_string(),
            vec!["a1".to_string(), "a2".into()],
        ),
        ("b#0".into(), "b".into(), vec!["b1".into()]),
        ("b#1".into(), "b".into(), vec!["b2".into()]),
        ("a#1".into(), "a".into(), vec!["a3".into(), "a4".into()]),
    ];
    assert_eq!(got, want);
    assert!(sessions.iter().all(|s| s.label.is_none()));
}

#[test]
fn exactly_the_gap_does_not_cut() {
    let sessions = sessionize(
        vec![req("a", 0, "x"), req("a", 30, "y")],
        &SessionizeConfig::default(),
    );
    assert_eq!(sessions.len(), 1);
}

/// Session sizes of one request every 20 minutes (never a gap cut), seven
/// requests, under a 60-minute span and `max_events`.
fn sizes_every_20_minutes(max_events: usize) -> Vec<usize> {
    let config = SessionizeConfig {
        inactivity_gap: Duration::minutes(30),
        max_duration: Duration::minutes(60),
        max_events,
    };
    let log: Vec<_> = (0..7).map(|i| req("a", i * 20, &format!("p{i}"))).collect();
    sessionize(log, &config)
        .iter()
        .map(|s| s.events.len())
        .collect()
}

#[test]
fn cuts_on_max_events_and_max_duration() {
    // Spans of 60 min from the first request: p0..p2 | p3..p5 | p6 (p3 is
    // 60 min after p0: the next span), each within a 3-event cap.
    assert_eq!(sizes_every_20_minutes(3), [3, 3, 1]);
    assert_eq!(sizes_every_20_minutes(100), [3, 3, 1]);
    // The event cap splits a span; the next span starts its own count.
    assert_eq!(sizes_every_20_minutes(2), [2, 1, 2, 1, 1]);
}

#[test]
fn the_account_object_is_the_latest_logged() {
    let mut early = req("a", 0, "x");
    early.account = Some(datasets::Account {
        tier: Some("free".into()),
        ..Default::default()
    });
    let mut late = req("a", 200, "z");
    late.account = Some(datasets::Account {
        tier: Some("pro".into()),
        ..Default::default()
    });
    // Input order is not time order; the latest request's account wins.
    let log = vec![late, req("a", 300, "w"), early];
    let sessions = sessionize(log, &SessionizeConfig::default());
    assert_eq!(sessions.len(), 3);
    for s in &sessions {
        assert_eq!(s.account.as_ref().unwrap().tier.as_deref(), Some("pro"));
    }
}

#[test]
fn keeps_the_accounts_metadata() {
    let text = concat!(
        r#"{"account_id":"a","ts":"2026-02-10T12:00:00Z","prompt":"x","account":{"tier":"edu","verified":false}}"#,
        "\n",
        r#"{"account_id":"a","ts":"2026-02-10T12:01:00Z","prompt":"y","asn":16509}"#,
        "\n",
    );
    let reader: RawLogReader<_> = RawLogReader::new(
        Cursor::new(text.as_bytes().to_vec()),
        "raw.jsonl",
        BadLinePolicy::Strict,
    );
    let requests: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
    let sessions = sessionize(requests, &SessionizeConfig::default());
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        sessions[0].account.as_ref().unwrap().tier.as_deref(),
        Some("edu")
    );
    assert_eq!(sessions[0].events[1].asn, Some(16509));
}

#[test]
fn raw_log_errors_name_line_and_field() {
    let text = concat!(
        r#"{"account_id":"a","ts":"2026-02-10T12:00:00Z","prompt":"x"}"#,
        "\n",
        r#"{"ts":"2026-02-10T12:00:00Z","prompt":"x"}"#,
        "\n",
    );
    let reader: RawLogReader<_> = RawLogReader::new(
        Cursor::new(text.as_bytes().to_vec()),
        "raw.jsonl",
        BadLinePolicy::Strict,
    );
    let err = reader.filter_map(Result::err).next().unwrap().to_string();
    assert_eq!(
        err,
        "raw.jsonl:2: field `account_id`: missing field `account_id` (column 42)"
    );
}
