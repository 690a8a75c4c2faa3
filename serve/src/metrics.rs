//! Prometheus metrics: request counts by outcome, queue / inference /
//! total latency histograms, batch sizes, queue depth.

use std::{sync::OnceLock, time::Duration};

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests by `route` and `outcome` (`ok` or an error type).
pub const REQUESTS: &str = "distill_guard_requests_total";
/// Sessions scored.
pub const SESSIONS: &str = "distill_guard_sessions_scored_total";
/// Queued sessions dropped because their client went away.
pub const DROPPED: &str = "distill_guard_dropped_sessions_total";
/// Seconds from request arrival to response.
pub const REQUEST_SECONDS: &str = "distill_guard_request_duration_seconds";
/// Seconds a session waited in the queue.
pub const QUEUE_SECONDS: &str = "distill_guard_queue_duration_seconds";
/// Seconds of one model batch.
pub const INFERENCE_SECONDS: &str = "distill_guard_inference_duration_seconds";
/// Sessions per model batch.
pub const BATCH_SIZE: &str = "distill_guard_batch_size";
/// Padded tokens per model batch.
pub const BATCH_TOKENS: &str = "distill_guard_batch_tokens";
/// Sessions waiting in the queue.
pub const QUEUE_DEPTH: &str = "distill_guard_queue_depth";
/// Population stability index of the recent scores against the served
/// bundle's validation scores.
pub const SCORE_PSI: &str = "distill_guard_score_psi";
/// Scores served (histogram).
pub const SCORES: &str = "distill_guard_session_score";
/// Sessions in the score drift window.
pub const SCORE_PSI_SESSIONS: &str = "distill_guard_score_psi_sessions";

const SCORE_BUCKETS: [f64; 11] = [
    0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999,
];
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
const BATCH_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
const TOKEN_BUCKETS: [f64; 9] = [
    64.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0, 32768.0,
];

/// Installs the process-wide Prometheus recorder (once) and returns its
/// handle for `GET /metrics`.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(BATCH_SIZE.into()), &BATCH_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(BATCH_TOKENS.into()), &TOKEN_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(SCORES.into()), &SCORE_BUCKETS)?
        .install_recorder()?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// Counts a finished request.
pub fn request(route: &'static str, outcome: &'static str, elapsed: Duration) {
    counter!(REQUESTS, "route" => route, "outcome" => outcome).increment(1);
    histogram!(REQUEST_SECONDS, "route" => route).record(elapsed.as_secs_f64());
}

/// Records one model batch.
pub fn batch(sessions: usize, padded_tokens: usize, elapsed: Duration) {
    histogram!(BATCH_SIZE).record(sessions as f64);
    histogram!(BATCH_TOKENS).record(padded_tokens as f64);
    histogram!(INFERENCE_SECONDS).record(elapsed.as_secs_f64());
    counter!(SESSIONS).increment(sessions as u64);
}

/// Records how long a session waited for its batch.
pub fn queued(waited: Duration) {
    histogram!(QUEUE_SECONDS).record(waited.as_secs_f64());
}

/// Sets the queue depth gauge.
pub fn queue_depth(depth: usize) {
    gauge!(QUEUE_DEPTH).set(depth as f64);
}

/// Records one session's score.
pub fn score(score: f32) {
    histogram!(SCORES).record(f64::from(score));
}

/// Sets the score drift gauges from `model`'s window (nothing without a
/// model or a reference; the PSI only once a session is in the window).
pub fn score_drift(model: Option<&crate::model::LoadedModel>) {
    let Some(window) = model.and_then(|m| m.drift.as_ref()) else {
        return;
    };
    let (sessions, psi) = window.psi();
    gauge!(SCORE_PSI_SESSIONS).set(sessions as f64);
    if let Some(psi) = psi {
        gauge!(SCORE_PSI).set(psi);
    }
}

/// Counts sessions dropped because their client went away.
pub fn dropped(n: usize) {
    if n > 0 {
        counter!(DROPPED).increment(n as u64);
    }
}
