//! The DataFusion sessionizer's plan on a real Ballista cluster (feature
//! `ballista`): a scheduler and two executors started on loopback in this
//! process and reached through the scheduler's URL, as a remote cluster
//! is, give exactly the sessions of the single-process engine and of the
//! in-memory sessionizer. An unreachable scheduler is a clear error that
//! leaves no output.
#![cfg(feature = "ballista")]

mod engine_logs;

use std::time::Duration as StdDuration;

use ballista_core::serde::{protobuf::scheduler_grpc_client::SchedulerGrpcClient, BallistaCodec};
use chrono::Duration;
use datasets::{
    sessionize::{sessionize, RawRequest, SessionizeConfig},
    Session,
};
use engine_logs::{generated_log, hand_made_logs, sessionize_through};

/// A scheduler and `executors` executors (one task slot each, so that
/// the stages spread over them) on loopback, served by the returned
/// runtime; the URL `datasets sessionize --engine` takes.
fn start_cluster(executors: usize) -> (tokio::runtime::Runtime, String) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(datasets::engine::ENGINE_THREAD_STACK)
        .enable_all()
        .build()
        .unwrap();
    let url = runtime.block_on(async {
        let address = ballista_scheduler::standalone::new_standalone_scheduler()
            .await
            .unwrap();
        let scheduler = format!("http://localhost:{}", address.port());
        for _ in 0..executors {
            let client = loop {
                match SchedulerGrpcClient::connect(scheduler.clone()).await {
                    Ok(client) => break client,
                    Err(_) => tokio::time::sleep(StdDuration::from_millis(100)).await,
                }
            };
            ballista_executor::new_standalone_executor(client, 1, BallistaCodec::default())
                .await
                .unwrap();
        }
        format!("ballista://localhost:{}", address.port())
    });
    (runtime, url)
}

/// The sessions of `log` (written as `format`) from the engine `scheduler`
/// names (this process when `None`).
fn run(
    log: &[RawRequest],
    config: &SessionizeConfig,
    format: &str,
    scheduler: Option<&str>,
) -> Vec<Session> {
    let (run, sessions) = sessionize_through(log, config, format, 256 << 20, scheduler).unwrap();
    assert_eq!(run.spilled_bytes.is_none(), scheduler.is_some());
    sessions
}

#[test]
fn the_cluster_sessionizes_like_one_process() {
    let (_cluster, url) = start_cluster(2);
    for (format, (log, config)) in ["jsonl", "parquet", "jsonl"]
        .into_iter()
        .zip(hand_made_logs())
    {
        let on_cluster = run(&log, &config, format, Some(&url));
        assert_eq!(on_cluster, sessionize(log.clone(), &config));
        assert_eq!(on_cluster, run(&log, &config, format, None));
    }
    let config = SessionizeConfig {
        max_events: 25,
        max_duration: Duration::hours(2),
        ..SessionizeConfig::default()
    };
    let log = generated_log(300, 20_000, 7);
    let on_cluster = run(&log, &config, "parquet", Some(&url));
    assert!(on_cluster.len() > 1000, "{}", on_cluster.len());
    assert_eq!(on_cluster, sessionize(log.clone(), &config));
    assert_eq!(on_cluster, run(&log, &config, "parquet", None));
}

#[test]
fn an_unreachable_scheduler_is_a_clear_error_and_writes_nothing() {
    let (log, config) = hand_made_logs().remove(0);
    // Port 1 on loopback: nothing listens there. The helper checks that
    // no output is left.
    let err = sessionize_through(
        &log,
        &config,
        "jsonl",
        256 << 20,
        Some("ballista://127.0.0.1:1"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("DataFusion: "), "{err}");
}
