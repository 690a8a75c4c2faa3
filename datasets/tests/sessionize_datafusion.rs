//! The DataFusion sessionizer (feature `datafusion`) gives exactly the
//! sessions of the in-memory one, on hand-made logs that hit every cut
//! rule, on a generated log of many accounts, and on a log larger than its
//! memory limit (it spills); a memory limit too small for its sorts is a
//! clear error that leaves no output.
#![cfg(feature = "datafusion")]

use chrono::{DateTime, Duration, Utc};
use datasets::{
    engine::{sessionize_with_datafusion, EngineConfig},
    read_sessions,
    sessionize::{sessionize, RawRequest, SessionizeConfig},
    Account, BadLinePolicy, Event, RecordSink, Session,
};
use rand::{Rng, SeedableRng};

fn t(seconds: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-02-10T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + Duration::seconds(seconds)
}

fn req(account: &str, seconds: i64, prompt: &str) -> RawRequest {
    let event = Event {
        ts: t(seconds),
        prompt: prompt.into(),
        ip: Some("198.51.100.1".into()),
        asn: Some(7922),
        user_agent: None,
        model: None,
        response_tokens: Some(10),
    };
    RawRequest::new(account.into(), None, event)
}

/// Sessions of `log` from both engines (the DataFusion one through a
/// file in `format`), and the bytes DataFusion spilled.
fn both(
    log: &[RawRequest],
    config: &SessionizeConfig,
    memory_limit: usize,
    format: &str,
) -> (Vec<Session>, Vec<Session>, usize) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join(format!("raw.{format}"));
    let mut sink = RecordSink::create(&input).unwrap();
    for r in log {
        sink.write(r).unwrap();
    }
    sink.finish().unwrap();
    let output = dir.path().join(format!("sessions.{format}"));
    let engine = EngineConfig {
        memory_limit,
        spill_dir: Some(dir.path().to_path_buf()),
        threads: 2,
    };
    let run = sessionize_with_datafusion(&input, &output, config, &engine, BadLinePolicy::Strict)
        .unwrap();
    assert_eq!(run.read.records, log.len() as u64);
    let got: Vec<Session> = read_sessions(&output, BadLinePolicy::Strict)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(got.len() as u64, run.sessions);
    (got, sessionize(log.to_vec(), config), run.spilled_bytes)
}

#[test]
fn hand_made_logs_cut_the_same() {
    let caps = SessionizeConfig {
        inactivity_gap: Duration::minutes(30),
        max_duration: Duration::minutes(60),
        max_events: 2,
    };
    let mut latest = req("a", 200 * 60, "z");
    latest.account = Some(Account {
        tier: Some("pro".into()),
        ..Default::default()
    });
    let mut early = req("a", 0, "e");
    early.account = Some(Account {
        tier: Some("free".into()),
        verified: Some(true),
        ..Default::default()
    });
    let logs: Vec<(Vec<RawRequest>, SessionizeConfig)> = vec![
        (
            vec![
                req("a", 50 * 60, "a3"),
                req("b", 5 * 60, "b1"),
                req("a", 0, "a1"),
                req("a", 10 * 60, "a2"),
                req("a", 79 * 60, "a4"),
                req("b", 36 * 60, "b2"),
                req("c", 30 * 60, "exactly the gap"),
                req("c", 60 * 60, "after it"),
            ],
            SessionizeConfig::default(),
        ),
        (
            (0..7)
                .map(|i| req("a", i * 1200, &format!("p{i}")))
                .collect(),
            caps,
        ),
        (
            vec![
                latest,
                req("a", 300 * 60, "w"),
                early,
                req("b", 0, "same second"),
                req("b", 0, "another"),
            ],
            caps,
        ),
    ];
    for (format, (log, config)) in ["jsonl", "parquet", "jsonl"].into_iter().zip(logs) {
        let (datafusion, in_memory, _) = both(&log, &config, 64 << 20, format);
        assert_eq!(datafusion, in_memory);
    }
}

/// `accounts` accounts, each with bursts of requests separated by gaps
/// that sometimes exceed the inactivity gap, some bursts longer than the
/// caps.
fn generated_log(accounts: usize, requests: usize, seed: u64) -> Vec<RawRequest> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut clock = vec![0i64; accounts];
    (0..requests)
        .map(|i| {
            let a = rng.random_range(0..accounts);
            clock[a] += match rng.random_range(0..10) {
                0 => rng.random_range(1_800..20_000),
                _ => rng.random_range(1..400),
            };
            let mut r = req(
                &format!("acct-{a}"),
                clock[a],
                &format!("prompt {i} {}", "x".repeat(i % 50)),
            );
            if rng.random_range(0..20) == 0 {
                r.account = Some(Account {
                    created_at: Some(t(-86_400 * rng.random_range(1..900))),
                    tier: Some(["free", "pro"][i % 2].into()),
                    verified: Some(i % 3 == 0),
                    region: None,
                });
            }
            r.ip = (i % 7 != 0).then(|| format!("203.0.113.{}", a % 200));
            r
        })
        .collect()
}

#[test]
fn a_generated_log_sessionizes_the_same_in_parquet() {
    let config = SessionizeConfig {
        max_events: 25,
        max_duration: Duration::hours(2),
        ..SessionizeConfig::default()
    };
    let log = generated_log(300, 20_000, 7);
    let (datafusion, in_memory, _) = both(&log, &config, 256 << 20, "parquet");
    assert!(in_memory.len() > 1000, "{}", in_memory.len());
    assert_eq!(datafusion, in_memory);
}

#[test]
fn a_log_larger_than_the_memory_limit_spills_and_sessionizes_the_same() {
    // About 240 MB of prompts through sorts limited to 256 MiB in all.
    let log: Vec<RawRequest> = generated_log(2000, 120_000, 5)
        .into_iter()
        .map(|mut r| {
            r.prompt = format!("{} {}", r.prompt, "y".repeat(2000));
            r
        })
        .collect();
    let config = SessionizeConfig::default();
    let (datafusion, in_memory, spilled) = both(&log, &config, 256 << 20, "parquet");
    assert!(spilled > 128 << 20, "spilled only {spilled} bytes");
    assert!(in_memory.len() > 1000, "{}", in_memory.len());
    assert_eq!(datafusion, in_memory);
}

#[test]
fn a_memory_limit_too_small_for_the_sorts_is_a_clear_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("raw.parquet");
    let mut sink = RecordSink::create(&input).unwrap();
    for r in generated_log(2000, 120_000, 11) {
        sink.write(&r).unwrap();
    }
    sink.finish().unwrap();
    let output = dir.path().join("sessions.parquet");
    let engine = EngineConfig {
        // Below what the sorts set aside for merging their spilled runs.
        memory_limit: 1 << 20,
        spill_dir: Some(dir.path().to_path_buf()),
        threads: 2,
    };
    let config = SessionizeConfig::default();
    let err = sessionize_with_datafusion(&input, &output, &config, &engine, BadLinePolicy::Strict)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("DataFusion: ") && err.contains("memory"),
        "{err}"
    );
    assert!(!output.exists());
}
