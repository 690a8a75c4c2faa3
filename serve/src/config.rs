//! Server configuration, from flags or environment variables; with none it
//! serves the bundle the main job exports.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Parser;

use crate::queue::BatchLimits;

/// distill-guard serve: dynamically batched HTTP scoring of sessions.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub struct ServeConfig {
    /// Bundle directory to serve (what `train run` exports).
    #[arg(
        long,
        env = "DG_MODEL_DIR",
        default_value = "models/distill-guard-minilm"
    )]
    pub model_dir: PathBuf,
    /// Campaign map of the last batch job (`train cluster` / `train eval`
    /// write `campaign_map.json`): responses then carry the verdict of each
    /// mapped account. Unset: the bundle's own `campaign_map.json`, if any.
    /// Reloaded with the bundle.
    #[arg(long, env = "DG_CAMPAIGN_MAP")]
    pub campaign_map: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port; the chosen address is
    /// printed on stdout).
    #[arg(long, env = "DG_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Device: cpu, cuda or cuda:N (CUDA needs the `cuda` feature).
    #[arg(long, env = "DG_DEVICE", default_value = "cpu")]
    pub device: String,
    /// Precision of the encoder's linear layers on the CPU: auto (the
    /// fastest this CPU runs: int8, else bf16, else f32), f32, bf16 (needs
    /// AVX512-BF16) or int8 (needs AVX512-VNNI); the other ops stay f32.
    /// See docs/precision.md.
    #[arg(long, env = "DG_PRECISION", default_value = "auto")]
    pub precision: models::PrecisionChoice,
    /// Most padded tokens (sessions x longest session) per model batch.
    #[arg(long, env = "DG_MAX_BATCH_TOKENS", default_value_t = 4096)]
    pub max_batch_tokens: usize,
    /// Most sessions per model batch.
    #[arg(long, env = "DG_MAX_BATCH_SIZE", default_value_t = 32)]
    pub max_batch_size: usize,
    /// How long the oldest queued session may wait for a batch to fill, in
    /// milliseconds (0: batch whatever is queued when the model is free).
    #[arg(long, env = "DG_MAX_WAIT_MS", default_value_t = 0)]
    pub max_wait_ms: u64,
    /// Most requests in flight; more are answered 429 at once.
    #[arg(long, env = "DG_MAX_CONCURRENT", default_value_t = 64)]
    pub max_concurrent: usize,
    /// Most sessions (or prompts) in one request.
    #[arg(long, env = "DG_MAX_SESSIONS_PER_REQUEST", default_value_t = 64)]
    pub max_sessions_per_request: usize,
    /// Largest request body in bytes (413 beyond).
    #[arg(long, env = "DG_MAX_BODY_BYTES", default_value_t = 4 << 20)]
    pub max_body_bytes: usize,
    /// Per-request timeout in milliseconds (504 beyond).
    #[arg(long, env = "DG_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,
    /// Threads for the model's CPU kernels (0: one per core).
    #[arg(long, env = "DG_MODEL_THREADS", default_value_t = 0)]
    pub model_threads: usize,
    /// Bearer token required on `/v1/score` (unset: open).
    #[arg(long, env = "DG_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Bearer token required on `/admin/*`. Unset: `/admin/*` is open on
    /// a loopback address and answers 403 on any other (see --open-admin).
    #[arg(long, env = "DG_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Serve `/admin/*` without --admin-token on a non-loopback address
    /// (anyone who reaches the port can then reload bundles).
    #[arg(long, env = "DG_OPEN_ADMIN")]
    pub open_admin: bool,
    /// The only directory `POST /admin/reload` may load bundles from (a
    /// relative `model_dir` resolves against it). Unset: the directory
    /// that holds --model-dir.
    #[arg(long, env = "DG_BUNDLE_ROOT")]
    pub bundle_root: Option<PathBuf>,
}

impl ServeConfig {
    /// Whether `/admin/*` may run: with a token, on a loopback address, or
    /// when --open-admin says so.
    pub fn admin_enabled(&self) -> bool {
        self.admin_token.is_some() || self.addr.ip().is_loopback() || self.open_admin
    }

    /// The directory reloads are confined to.
    pub fn bundle_root(&self) -> PathBuf {
        self.bundle_root
            .clone()
            .unwrap_or_else(|| match self.model_dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            })
    }

    /// Batching limits.
    pub fn batch_limits(&self) -> BatchLimits {
        BatchLimits {
            max_batch_size: self.max_batch_size,
            max_batch_tokens: self.max_batch_tokens,
            max_wait: Duration::from_millis(self.max_wait_ms),
        }
    }

    /// Per-request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// Checks values clap cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, value) in [
            ("--max-batch-size", self.max_batch_size),
            ("--max-batch-tokens", self.max_batch_tokens),
            ("--max-concurrent", self.max_concurrent),
            ("--max-sessions-per-request", self.max_sessions_per_request),
            ("--max-body-bytes", self.max_body_bytes),
        ] {
            anyhow::ensure!(value > 0, "{name} must be at least 1");
        }
        anyhow::ensure!(
            self.request_timeout_ms > 0,
            "--request-timeout-ms must be at least 1"
        );
        Ok(())
    }
}
