//! The DataFusion sessionizer (feature `datafusion`) gives exactly the
//! sessions of the in-memory one, on hand-made logs that hit every cut
//! rule, on a generated log of many accounts, and on a log larger than its
//! memory limit (it spills); a memory limit too small for its sorts is a
//! clear error that leaves no output.
#![cfg(feature = "datafusion")]

mod engine_logs;

use chrono::Duration;
use datasets::{
    sessionize::{sessionize, RawRequest, SessionizeConfig},
    Session,
};
use engine_logs::{generated_log, hand_made_logs, sessionize_through};

/// Sessions of `log` from both engines (the DataFusion one through a
/// file in `format`), and the bytes DataFusion spilled.
fn both(
    log: &[RawRequest],
    config: &SessionizeConfig,
    memory_limit: usize,
    format: &str,
) -> (Vec<Session>, Vec<Session>, usize) {
    let (run, got) = sessionize_through(log, config, format, memory_limit, None).unwrap();
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
    let log = generated_log(2000, 120_000, 11);
    let config = SessionizeConfig::default();
    // Below what the sorts set aside for merging their spilled runs; the
    // helper checks that no output is left.
    let err = sessionize_through(&log, &config, "parquet", 1 << 20, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("DataFusion: ") && err.contains("memory"),
        "{err}"
    );
}
