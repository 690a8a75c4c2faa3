//! The DataFusion sessionizer (feature `datafusion`) gives exactly the
//! sessions of the in-memory one, on hand-made logs that hit every cut
//! rule, on a generated log of many accounts, and on a log larger than its
//! memory limit (it spills); a memory limit too small for its sorts is a
//! clear error that leaves no output.
#![cfg(feature = "datafusion")]

mod engine_logs;

use chrono::Duration;
use datasets::{
    engine::{sessionize_with_datafusion, EngineConfig},
    sessionize::{sessionize, RawRequest, SessionizeConfig},
    BadLinePolicy, Session,
};
use engine_logs::{generated_log, hand_made_logs, read_back, write_log};

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
    write_log(log, &input);
    let output = dir.path().join(format!("sessions.{format}"));
    let engine = EngineConfig {
        memory_limit,
        spill_dir: Some(dir.path().to_path_buf()),
        threads: 2,
        scheduler: None,
    };
    let run = sessionize_with_datafusion(&input, &output, config, &engine, BadLinePolicy::Strict)
        .unwrap();
    assert_eq!(run.read.records, log.len() as u64);
    let got = read_back(&output);
    assert_eq!(got.len() as u64, run.sessions);
    let spilled = run.spilled_bytes.expect("a local run counts its spills");
    (got, sessionize(log.to_vec(), config), spilled)
}

#[test]
fn hand_made_logs_cut_the_same() {
    for (format, (log, config)) in ["jsonl", "parquet", "jsonl"]
        .into_iter()
        .zip(hand_made_logs())
    {
        let (datafusion, in_memory, _) = both(&log, &config, 64 << 20, format);
        assert_eq!(datafusion, in_memory);
    }
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
    write_log(&generated_log(2000, 120_000, 11), &input);
    let output = dir.path().join("sessions.parquet");
    let engine = EngineConfig {
        // Below what the sorts set aside for merging their spilled runs.
        memory_limit: 1 << 20,
        spill_dir: Some(dir.path().to_path_buf()),
        threads: 2,
        scheduler: None,
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
