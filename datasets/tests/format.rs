//! The sessions format: round trips, strict-mode errors with file:line and
//! field, skip-mode counts, and a no-panic property test of the reader.

use std::io::Cursor;

use chrono::{TimeZone, Utc};
use datasets::{
    read_sessions, Account, BadLinePolicy, DataError, Event, JsonlWriter, Label, Session,
    SessionReader,
};
use proptest::prelude::*;

fn sample_session(id: &str) -> Session {
    Session {
        session_id: id.into(),
        account_id: "acct-9f3a".into(),
        label: Some(Label::Extraction),
        campaign_id: Some("camp-07".into()),
        archetype: Some("cot_harvest".into()),
        account: Some(Account {
            created_at: Some(Utc.with_ymd_and_hms(2026, 2, 1, 10, 0, 0).unwrap()),
            tier: Some("edu".into()),
            verified: Some(false),
            region: Some("SG".into()),
        }),
        events: vec![
            Event {
                ts: Utc.timestamp_millis_opt(1_770_724_803_120).unwrap(),
                prompt: "Solve the following problem. Think step by step ...".into(),
                ip: Some("203.0.113.7".into()),
                asn: Some(64500),
                user_agent: Some("python-httpx/0.27.0".into()),
                model: Some("large-2026-02".into()),
                response_tokens: Some(812),
            },
            Event {
                ts: Utc.timestamp_millis_opt(1_770_724_809_000).unwrap(),
                prompt: "second \u{2028} prompt with \"quotes\" and unicode: é".into(),
                ip: None,
                asn: None,
                user_agent: None,
                model: None,
                response_tokens: None,
            },
        ],
    }
}

fn read_str(text: &str, policy: BadLinePolicy) -> SessionReader<Cursor<Vec<u8>>> {
    SessionReader::new(Cursor::new(text.as_bytes().to_vec()), "mem.jsonl", policy)
}

fn first_error(text: &str) -> String {
    let mut reader = read_str(text, BadLinePolicy::Strict);
    loop {
        match reader.next() {
            Some(Ok(_)) => continue,
            Some(Err(e)) => return e.to_string(),
            None => panic!("expected an error for {text:?}"),
        }
    }
}

const GOOD: &str = r#"{"session_id":"s1","account_id":"a","events":[{"ts":"2026-02-10T12:00:03.120Z","prompt":"hi"}]}"#;

#[test]
fn round_trip_plain_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let sessions = vec![sample_session("s-1"), sample_session("s-2")];
    for name in ["sessions.jsonl", "sessions.jsonl.gz"] {
        let path = dir.path().join(name);
        let mut w = JsonlWriter::create(&path).unwrap();
        for s in &sessions {
            w.write(s).unwrap();
        }
        w.finish().unwrap();
        let back: Vec<Session> = read_sessions(&path, BadLinePolicy::Strict)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, sessions, "{name}");
    }
    let plain = std::fs::read(dir.path().join("sessions.jsonl")).unwrap();
    let gz = std::fs::read(dir.path().join("sessions.jsonl.gz")).unwrap();
    assert_eq!(&gz[..2], &[0x1f, 0x8b]);
    assert_ne!(plain, gz);
}

#[test]
fn writes_the_spec_field_names_and_millisecond_timestamps() {
    let line = serde_json::to_string(&sample_session("s-1")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["events"][0]["ts"], "2026-02-10T12:00:03.120Z");
    assert_eq!(v["account"]["created_at"], "2026-02-01T10:00:00.000Z");
    assert_eq!(v["label"], "extraction");
    assert_eq!(v["events"][0]["asn"], 64500);
    // Absent optional fields are omitted, not written as null.
    assert!(v["events"][1].get("ip").is_none());
}

#[test]
fn reads_the_spec_example_with_unknown_fields_and_sorts_events() {
    let text = r#"{"session_id":"s-000123","account_id":"acct-9f3a","label":null,"extra":{"x":1},"events":[{"ts":"2026-02-10T12:05:00+02:00","prompt":"later","new_field":true},{"ts":"2026-02-10T09:00:00Z","prompt":"earlier"}]}"#;
    let sessions: Vec<Session> = read_str(text, BadLinePolicy::Strict)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].label, None);
    let prompts: Vec<_> = sessions[0]
        .events
        .iter()
        .map(|e| e.prompt.as_str())
        .collect();
    assert_eq!(prompts, ["earlier", "later"]);
}

#[test]
fn blank_lines_are_ignored_and_line_numbers_count_them() {
    let text = format!("{GOOD}\n\n   \nnot json\n");
    assert!(first_error(&text).starts_with("mem.jsonl:4: a record must be a JSON object"));
}

#[test]
fn strict_errors_name_file_line_and_field() {
    let cases: &[(&str, &str)] = &[
        ("{not json", "mem.jsonl:2: invalid JSON"),
        (
            r#"{"session_id":"s2","account_id":"a","events":[]}"#,
            "mem.jsonl:2: field `events`: must hold at least one event",
        ),
        (
            r#"{"account_id":"a","events":[{"ts":"2026-02-10T12:00:03Z","prompt":"x"}]}"#,
            "mem.jsonl:2: field `session_id`: missing field `session_id`",
        ),
        (
            r#"{"session_id":"s2","account_id":"a","events":[{"ts":"2026-02-10T12:00:03Z"}]}"#,
            "mem.jsonl:2: field `events[0].prompt`: missing field `prompt`",
        ),
        (
            r#"{"session_id":"s2","account_id":"a","events":[{"ts":"yesterday","prompt":"x"}]}"#,
            "mem.jsonl:2: field `events[0].ts`: invalid RFC 3339 timestamp \"yesterday\"",
        ),
        (
            r#"{"session_id":"s2","account_id":"a","events":[{"ts":"2026-02-10T12:00:03Z","prompt":""}]}"#,
            "mem.jsonl:2: field `events[0].prompt`: must not be empty",
        ),
        (
            r#"{"session_id":"s2","account_id":"a","label":"maybe","events":[{"ts":"2026-02-10T12:00:03Z","prompt":"x"}]}"#,
            "mem.jsonl:2: field `label`: unknown variant `maybe`",
        ),
        (
            r#"{"session_id":"s2","account_id":"a","events":[{"ts":"2026-02-10T12:00:03Z","prompt":"x","asn":-5}]}"#,
            "mem.jsonl:2: field `events[0].asn`: invalid value",
        ),
        (
            r#"{"session_id":"s2","account_id":"a","account":{"created_at":"nope"},"events":[{"ts":"2026-02-10T12:00:03Z","prompt":"x"}]}"#,
            "mem.jsonl:2: field `account.created_at`: invalid RFC 3339",
        ),
        (
            r#"{"session_id":"s1","account_id":"a","events":[{"ts":"2026-02-10T12:00:03Z","prompt":"x"}]}"#,
            "mem.jsonl:2: field `session_id`: duplicate value \"s1\"",
        ),
        (r#"[1,2]"#, "mem.jsonl:2: a record must be a JSON object"),
        (
            r#"{"session_id":5,"account_id":"a","events":[{"ts":"2026-02-10T12:00:03Z","prompt":"x"}]}"#,
            "mem.jsonl:2: field `session_id`: invalid type: integer `5`",
        ),
        (
            r#"{"session_id":"s2","account_id":"a","events":[{"ts":"2026-02-10T12:00:03Z","prompt":"x"}]} trailing"#,
            "mem.jsonl:2: invalid JSON: trailing characters",
        ),
    ];
    for (line, expected) in cases {
        let err = first_error(&format!("{GOOD}\n{line}\n"));
        assert!(
            err.starts_with(expected),
            "line {line}\n got: {err}\nwant: {expected}"
        );
    }
}

#[test]
fn strict_mode_stops_at_the_first_bad_line() {
    let text = format!("{GOOD}\nbad\n{}\n", GOOD.replace("s1", "s3"));
    let results: Vec<_> = read_str(&text, BadLinePolicy::Strict).collect();
    assert_eq!(results.len(), 2);
    assert!(results[0].is_ok());
    assert!(matches!(results[1], Err(DataError::Line(ref e)) if e.line == 2));
}

#[test]
fn skip_mode_counts_bad_lines_and_keeps_going() {
    let text = format!(
        "{GOOD}\nbad\n{}\n{{\"session_id\":\"s4\"}}\n\u{feff}\n{}\n",
        GOOD.replace("s1", "s3"),
        GOOD.replace("s1", "s5")
    );
    let mut reader = read_str(&text, BadLinePolicy::Skip);
    let ids: Vec<String> = reader.by_ref().map(|s| s.unwrap().session_id).collect();
    assert_eq!(ids, ["s1", "s3", "s5"]);
    let stats = reader.stats();
    assert_eq!(stats.skipped, 3);
    assert_eq!(stats.records, 3);
    assert_eq!(stats.lines, 6);
    let lines: Vec<u64> = stats.first_errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 4, 5]);
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let err = read_sessions(
        std::path::Path::new("/nonexistent/x.jsonl"),
        BadLinePolicy::Strict,
    )
    .err()
    .unwrap();
    assert!(
        err.to_string().starts_with("/nonexistent/x.jsonl:"),
        "{err}"
    );
}

#[test]
fn a_failed_write_leaves_the_previous_file_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.jsonl");
    std::fs::write(&path, "previous\n").unwrap();
    {
        let mut w = JsonlWriter::create(&path).unwrap();
        w.write(&sample_session("s-1")).unwrap();
        // Dropped without finish(): as if the run failed midway.
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "previous\n");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "temp file removed"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn reader_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        for policy in [BadLinePolicy::Strict, BadLinePolicy::Skip] {
            let reader = SessionReader::new(Cursor::new(bytes.clone()), "fuzz", policy);
            for item in reader.take(1000) {
                let _ = item;
            }
        }
    }

    #[test]
    fn reader_never_panics_on_mutated_valid_lines(
        cut in 0usize..200,
        insert in "[\\{\\}\\[\\]\":,0-9a-z\\\\ ]{0,12}",
    ) {
        let line = serde_json::to_string(&sample_session("s-1")).unwrap();
        let cut = cut.min(line.len());
        let mut mutated = line.as_bytes()[..cut].to_vec();
        mutated.extend_from_slice(insert.as_bytes());
        mutated.extend_from_slice(&line.as_bytes()[cut..]);
        mutated.push(b'\n');
        mutated.extend_from_slice(line.as_bytes());
        let mut reader = SessionReader::new(Cursor::new(mutated), "fuzz", BadLinePolicy::Skip);
        let ok = reader.by_ref().filter(|r| r.is_ok()).count() as u64;
        prop_assert_eq!(ok + reader.stats().skipped, reader.stats().lines);
    }
}
