//! Arguments several commands share: the bundle and how it scores, the
//! input file, the labeled files and the evidence settings.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use datasets::coordination::EvidenceParams;
use datasets::{
    read_sessions, sessionize::sessionize_file, sessionize::SessionizeArgs, BadLinePolicy,
    DataError, Session,
};
use models::{bundle::Bundle, device::parse_device, PrecisionChoice};
use train::score::ScoreOptions;

/// Where `fit` writes the bundle and the scoring commands read it.
pub(crate) const DEFAULT_BUNDLE: &str = "models/distill-guard-minilm";

/// Bundle, device and batching of the scoring commands.
#[derive(Args, Clone)]
pub(crate) struct ModelArgs {
    /// Bundle directory.
    #[arg(long, default_value = DEFAULT_BUNDLE)]
    pub(crate) bundle: PathBuf,
    #[command(flatten)]
    pub(crate) runtime: RuntimeArgs,
}

impl ModelArgs {
    pub(crate) fn load(&self) -> Result<Bundle> {
        self.runtime.load(&self.bundle)
    }
}

/// Device, precision and batching of the encoder that scores sessions.
#[derive(Args, Clone)]
pub(crate) struct RuntimeArgs {
    /// Sessions per inference batch.
    #[arg(long, default_value_t = 32)]
    pub(crate) batch_size: usize,
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub(crate) device: String,
    /// Precision of the encoder's linear layers on the CPU: `auto` (the
    /// fastest this CPU runs: int8, else bf16, else f32), `f32`, `bf16`
    /// (needs AVX512-BF16) or `int8` (needs AVX512-VNNI); the other ops
    /// stay f32. See docs/precision.md.
    #[arg(long, default_value = "auto", env = "DG_PRECISION")]
    pub(crate) precision: PrecisionChoice,
}

impl RuntimeArgs {
    /// Loads the bundle in `dir` on this device, at this precision.
    pub(crate) fn load(&self, dir: &Path) -> Result<Bundle> {
        let device = parse_device(&self.device)?;
        let mut bundle = Bundle::load(dir, &device)
            .with_context(|| format!("loading bundle {}", dir.display()))?;
        let precision = self.precision.for_device(&device);
        bundle.set_precision(precision)?;
        tracing::info!(%precision, kernels = bundle.kernels(), "bundle loaded");
        Ok(bundle)
    }

    pub(crate) fn score_options(&self) -> ScoreOptions {
        ScoreOptions {
            batch_size: self.batch_size,
            ..ScoreOptions::default()
        }
    }
}

/// What `score` and `cluster` read.
#[derive(Args, Clone)]
pub(crate) struct InputArgs {
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    /// Sessions file (or raw request log with --raw-log): JSONL, plain or
    /// gzip, or Parquet (`.parquet`).
    #[arg(long, short)]
    pub(crate) input: PathBuf,
    /// The input is a raw request log: sessionize it first.
    #[arg(long)]
    pub(crate) raw_log: bool,
    #[command(flatten)]
    pub(crate) sessionize: SessionizeArgs,
    /// What to do with a bad input line.
    #[arg(long, value_enum, default_value_t = BadLinePolicy::Skip)]
    pub(crate) policy: BadLinePolicy,
}

impl InputArgs {
    /// Runs `consume` over the input's sessions as a stream, then reports
    /// the bad lines the reader skipped.
    pub(crate) fn stream<T>(
        &self,
        consume: impl FnOnce(&mut SessionStream) -> Result<T>,
    ) -> Result<T> {
        let (out, stats) = if self.raw_log {
            let config = self.sessionize.config().map_err(anyhow::Error::msg)?;
            let (sessions, stats) = sessionize_file(&self.input, &config, self.policy)?;
            (consume(&mut sessions.into_iter().map(Ok))?, stats)
        } else {
            let mut reader = read_sessions(&self.input, self.policy)?;
            let out = consume(&mut reader)?;
            (out, reader.stats().clone())
        };
        if stats.skipped > 0 {
            eprintln!("skipped {} bad lines; the first:", stats.skipped);
            for e in &stats.first_errors {
                eprintln!("  {e}");
            }
        }
        Ok(out)
    }
}

/// Sessions streamed from a file, each read or parse error in its place.
pub(crate) type SessionStream = dyn Iterator<Item = Result<Session, DataError>> + Send;

/// The labeled files a bundle's account scorer or prompt head learns from.
#[derive(Args, Clone)]
pub(crate) struct LabeledFiles {
    /// Labeled sessions it is fitted on.
    #[arg(long, default_value = "data/default/train.jsonl")]
    pub(crate) train: PathBuf,
    /// Labeled sessions that set its thresholds.
    #[arg(long, default_value = "data/default/validation.jsonl")]
    pub(crate) validation: PathBuf,
}

/// Cross-account evidence settings (docs/coordination.md), saved with the
/// account scorer so that verdicts on new windows use the same.
#[derive(Args, Clone)]
pub(crate) struct EvidenceArgs {
    /// IPv4 prefix length that groups addresses.
    #[arg(long, default_value_t = EvidenceParams::default().ipv4_prefix)]
    pub(crate) ipv4_prefix: u8,
    /// IPv6 prefix length that groups addresses.
    #[arg(long, default_value_t = EvidenceParams::default().ipv6_prefix)]
    pub(crate) ipv6_prefix: u8,
    /// Days from creation to first request within which an account is fresh.
    #[arg(long, default_value_t = EvidenceParams::default().fresh_days)]
    pub(crate) fresh_days: f64,
    /// Words in a template frame.
    #[arg(long, default_value_t = EvidenceParams::default().frame_words)]
    pub(crate) frame_words: usize,
    /// Accounts that must share a frame for it to be a template.
    #[arg(long, default_value_t = EvidenceParams::default().min_template_accounts)]
    pub(crate) min_template_accounts: u32,
    /// Prompts per session that enter the template and synchrony joins.
    #[arg(long, default_value_t = EvidenceParams::default().max_prompts_per_session)]
    pub(crate) max_prompts_per_session: usize,
    /// Width of a synchrony time bucket, in minutes.
    #[arg(long, default_value_t = EvidenceParams::default().sync_bucket_minutes)]
    pub(crate) sync_bucket_minutes: i64,
    /// Width of a creation wave, in hours.
    #[arg(long, default_value_t = EvidenceParams::default().wave_hours)]
    pub(crate) wave_hours: i64,
    /// Hours after the window's first request from which a model's first
    /// request counts as its release.
    #[arg(long, default_value_t = EvidenceParams::default().release_gap_hours)]
    pub(crate) release_gap_hours: i64,
}

impl EvidenceArgs {
    /// The settings (unchecked; `check()` names a value out of range).
    pub(crate) fn params(&self) -> EvidenceParams {
        EvidenceParams {
            ipv4_prefix: self.ipv4_prefix,
            ipv6_prefix: self.ipv6_prefix,
            fresh_days: self.fresh_days,
            frame_words: self.frame_words,
            min_template_accounts: self.min_template_accounts,
            max_prompts_per_session: self.max_prompts_per_session,
            sync_bucket_minutes: self.sync_bucket_minutes,
            wave_hours: self.wave_hours,
            release_gap_hours: self.release_gap_hours,
        }
    }
}
