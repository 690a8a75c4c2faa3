//! What the engine tests share: hand-made raw logs that hit every cut
//! rule, generated logs of many accounts, and a run of the engine on a
//! log written to a fresh directory.
// Each test file uses its own part of these.
#![allow(dead_code)]

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use datasets::{
    engine::{sessionize_with_datafusion, EngineConfig, EngineError, EngineRun},
    read_sessions,
    sessionize::{RawRequest, SessionizeConfig},
    Account, BadLinePolicy, Event, RecordSink, Session,
};
use rand::{Rng, SeedableRng};

pub fn t(seconds: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-02-10T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + Duration::seconds(seconds)
}

pub fn req(account: &str, seconds: i64, prompt: &str) -> RawRequest {
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

/// Three hand-made logs and the limits to cut them with: the inactivity
/// gap (one request exactly at it), the length and size caps, ties in
/// time, and accounts whose account object changes.
pub fn hand_made_logs() -> Vec<(Vec<RawRequest>, SessionizeConfig)> {
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
    vec![
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
    ]
}

/// `accounts` accounts, each with bursts of requests separated by gaps
/// that sometimes exceed the inactivity gap, some bursts longer than the
/// caps.
pub fn generated_log(accounts: usize, requests: usize, seed: u64) -> Vec<RawRequest> {
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

/// Writes `log` to `path` (format by extension).
pub fn write_log(log: &[RawRequest], path: &Path) {
    let mut sink = RecordSink::create(path).unwrap();
    for r in log {
        sink.write(r).unwrap();
    }
    sink.finish().unwrap();
}

/// The sessions of a file.
pub fn read_back(path: &Path) -> Vec<Session> {
    read_sessions(path, BadLinePolicy::Strict)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// `log` written as `format` into a fresh directory and sessionized there
/// (2 threads, spill files in that directory) within `memory_limit`, in
/// this process or on the Ballista cluster of `scheduler`. Returns the run
/// and the sessions it wrote, after checking that it read every request
/// and wrote the sessions it counted; or its error, after checking that it
/// left no output.
pub fn sessionize_through(
    log: &[RawRequest],
    config: &SessionizeConfig,
    format: &str,
    memory_limit: usize,
    scheduler: Option<&str>,
) -> Result<(EngineRun, Vec<Session>), EngineError> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join(format!("raw.{format}"));
    write_log(log, &input);
    let output = dir.path().join(format!("sessions.{format}"));
    let engine = EngineConfig {
        memory_limit,
        spill_dir: Some(dir.path().to_path_buf()),
        threads: 2,
        scheduler: scheduler.map(str::to_string),
    };
    match sessionize_with_datafusion(&input, &output, config, &engine, BadLinePolicy::Strict) {
        Ok(run) => {
            assert_eq!(run.read.records, log.len() as u64);
            let sessions = read_back(&output);
            assert_eq!(sessions.len() as u64, run.sessions);
            Ok((run, sessions))
        }
        Err(e) => {
            assert!(!output.exists(), "a failed run left {}", output.display());
            Err(e)
        }
    }
}
