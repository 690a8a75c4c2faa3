//! `fit` and `cross-fit`: fine-tuning and out-of-fold scores.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use models::device::parse_device;
use train::{
    cross_fit::{out_of_fold_scores, CrossFitConfig},
    fit::{fit_sharing, FitConfig, TrainLayers},
    frozen::FrozenLayers,
};

use super::args::DEFAULT_BUNDLE;

/// Cross-fitting: out-of-fold session scores of the training file, so the
/// account scorer learns from scores like those of traffic the session
/// model never saw.
#[derive(Args, Clone)]
pub(crate) struct CrossFitArgs {
    /// Folds of whole operators (a campaign, the accounts behind one
    /// network prefix); 0 (only `run`) fits the account scorer on the
    /// bundle's own, in-sample scores of the training sessions.
    #[arg(long, default_value_t = 2)]
    pub(crate) cross_fit_folds: usize,
    /// Epochs of each fold's model.
    #[arg(long, default_value_t = 1)]
    pub(crate) cross_fit_epochs: usize,
    /// Where the out-of-fold scores go.
    #[arg(long, default_value = "artifacts/cross-fit/scores.jsonl")]
    pub(crate) cross_fit_scores: PathBuf,
}

/// Writes the out-of-fold scores of `fit.train` (`None` with 0 folds);
/// `frozen` may hold the frozen layers' output of its sessions already.
pub(crate) fn run_cross_fit(
    fit: &FitArgs,
    cross: &CrossFitArgs,
    frozen: &mut FrozenLayers,
) -> Result<Option<PathBuf>> {
    if cross.cross_fit_folds == 0 {
        return Ok(None);
    }
    let device = parse_device(&fit.device)?;
    let settings = CrossFitConfig {
        folds: cross.cross_fit_folds,
        epochs: cross.cross_fit_epochs,
    };
    let path = out_of_fold_scores(
        &fit.config(),
        settings,
        &device,
        &fit.run_dir.join("cross-fit"),
        &cross.cross_fit_scores,
        frozen,
    )?;
    println!(
        "out-of-fold scores of {} ({} folds) in {}",
        fit.train_file().display(),
        settings.folds,
        path.display()
    );
    Ok(Some(path))
}

/// What `fit` trains on and how (also the main job's fine-tuning).
#[derive(Args, Clone)]
pub(crate) struct FitArgs {
    /// Training sessions file [default: data/default/train.jsonl; `run`
    /// trains on the split it builds and refuses this flag].
    #[arg(long)]
    pub(crate) train: Option<PathBuf>,
    /// Validation sessions file, for early stopping and the threshold
    /// [default: data/default/validation.jsonl; `run` uses its own split].
    #[arg(long)]
    pub(crate) validation: Option<PathBuf>,
    /// Base model: a directory in Hugging Face layout or a hub id.
    #[arg(long, default_value = "sentence-transformers/all-MiniLM-L6-v2")]
    pub(crate) base_model: String,
    /// Bundle directory to write.
    #[arg(long, default_value = DEFAULT_BUNDLE)]
    pub(crate) out: PathBuf,
    /// Checkpoints and run state (for --resume).
    #[arg(long, default_value = "artifacts/run")]
    pub(crate) run_dir: PathBuf,
    /// Token budget per session ([CLS], prompts, [SEP]s).
    #[arg(long, default_value_t = 128)]
    pub(crate) max_tokens: usize,
    /// Prompts kept per session (evenly spaced, first and last included).
    #[arg(long, default_value_t = 4)]
    pub(crate) max_prompts: usize,
    /// Parameters to train: `all`, `head`, or a number of top layers.
    #[arg(long, default_value = "1")]
    pub(crate) train_layers: TrainLayers,
    /// Maximum epochs.
    #[arg(long, default_value_t = 2)]
    pub(crate) epochs: usize,
    /// Sessions per step.
    #[arg(long, default_value_t = 16)]
    pub(crate) batch_size: usize,
    /// Peak learning rate of encoder layers.
    #[arg(long, default_value_t = 5e-5)]
    pub(crate) learning_rate: f64,
    /// Peak learning rate of the head.
    #[arg(long, default_value_t = 1e-3)]
    pub(crate) head_learning_rate: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.01)]
    pub(crate) weight_decay: f64,
    /// Share of steps for learning-rate warm-up.
    #[arg(long, default_value_t = 0.1)]
    pub(crate) warmup_fraction: f64,
    /// Global gradient-norm clip.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) max_grad_norm: f64,
    /// Do not weight extraction sessions by the class ratio.
    #[arg(long)]
    pub(crate) no_class_weighting: bool,
    /// Epochs without validation PR-AUC gain before stopping.
    #[arg(long, default_value_t = 2)]
    pub(crate) patience: usize,
    /// Benign false-positive rate the threshold is chosen for.
    #[arg(long, default_value_t = 0.001)]
    pub(crate) target_fpr: f64,
    /// Benign session false-positive rate cluster propagation's lower
    /// threshold is chosen for (saved in the bundle; an account in a
    /// coordinated cluster is flagged when its mean score reaches it).
    #[arg(long, default_value_t = 0.01)]
    pub(crate) propagation_fpr: f64,
    /// Width of the head's hidden layer.
    #[arg(long, default_value_t = 128)]
    pub(crate) head_hidden: usize,
    /// Head dropout.
    #[arg(long, default_value_t = 0.1)]
    pub(crate) head_dropout: f32,
    /// Seed of sampling, shuffling and initialisation.
    #[arg(long, default_value_t = 17)]
    pub(crate) seed: u64,
    /// Train on a seeded random sample of at most this many sessions
    /// (0 = all).
    #[arg(long, default_value_t = 0)]
    pub(crate) max_train_sessions: usize,
    /// Continue from the run directory's last checkpoint.
    #[arg(long)]
    pub(crate) resume: bool,
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub(crate) device: String,
    /// Warm start from this bundle (e.g. the one in production): its
    /// encoder, head and feature normalisation; its head width, token
    /// budget and prompts kept replace --head-hidden, --max-tokens and
    /// --max-prompts. The new bundle records it as its parent.
    #[arg(long)]
    pub(crate) init_from: Option<PathBuf>,
    /// With --init-from: fit the feature normalisation on the training
    /// data instead of keeping the bundle's.
    #[arg(long, requires = "init_from")]
    pub(crate) refit_normalization: bool,
    /// Older labeled sessions to train on beside --train, so that earlier
    /// campaigns are not forgotten.
    #[arg(long)]
    pub(crate) replay: Option<PathBuf>,
    /// Seeded sample of at most this many --replay sessions (0 = all).
    #[arg(long, default_value_t = 0, requires = "replay")]
    pub(crate) replay_sessions: usize,
}

impl FitArgs {
    pub(crate) fn train_file(&self) -> PathBuf {
        self.train
            .clone()
            .unwrap_or_else(|| "data/default/train.jsonl".into())
    }

    pub(crate) fn validation_file(&self) -> PathBuf {
        self.validation
            .clone()
            .unwrap_or_else(|| "data/default/validation.jsonl".into())
    }

    pub(crate) fn config(&self) -> FitConfig {
        FitConfig {
            train: self.train_file(),
            validation: self.validation_file(),
            base_model: self.base_model.clone(),
            out: self.out.clone(),
            run_dir: self.run_dir.clone(),
            max_tokens: self.max_tokens,
            max_prompts: self.max_prompts,
            train_layers: self.train_layers,
            epochs: self.epochs,
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
            head_learning_rate: self.head_learning_rate,
            weight_decay: self.weight_decay,
            warmup_fraction: self.warmup_fraction,
            max_grad_norm: self.max_grad_norm,
            class_weighting: !self.no_class_weighting,
            patience: self.patience,
            target_fpr: self.target_fpr,
            propagation_fpr: self.propagation_fpr,
            head_hidden: self.head_hidden,
            head_dropout: self.head_dropout,
            seed: self.seed,
            max_train_sessions: (self.max_train_sessions > 0).then_some(self.max_train_sessions),
            resume: self.resume,
            init_from: self.init_from.clone(),
            refit_normalization: self.refit_normalization,
            replay: self.replay.clone(),
            replay_sessions: (self.replay_sessions > 0).then_some(self.replay_sessions),
        }
    }
}

/// Fine-tunes and exports a bundle; returns its folder. The frozen
/// layers' output of its sessions stays in `frozen` for the next fit.
pub(crate) fn run_fit(args: &FitArgs, frozen: &mut FrozenLayers) -> Result<PathBuf> {
    let device = parse_device(&args.device)?;
    let outcome = fit_sharing(&args.config(), &device, frozen)?;
    println!(
        "validation: ROC-AUC {:.4}, PR-AUC {:.4}; threshold {:.6} gives recall {:.4} at benign FPR {:.5} (target {})",
        outcome.validation.roc_auc.unwrap_or(f64::NAN),
        outcome.validation.pr_auc.unwrap_or(f64::NAN),
        outcome.threshold.threshold,
        outcome.threshold.validation_recall,
        outcome.threshold.validation_fpr,
        outcome.threshold.target_fpr
    );
    if let Some(p) = &outcome.threshold.propagation {
        println!(
            "cluster propagation threshold {:.6} (benign FPR {:.5} on validation, target {})",
            p.threshold, p.validation_fpr, p.target_fpr
        );
    }
    println!("bundle written to {}", outcome.bundle.display());
    println!("checkpoints and run state in {}", args.run_dir.display());
    Ok(outcome.bundle)
}
