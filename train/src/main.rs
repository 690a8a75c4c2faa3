//! `train`: fine-tune the session classifier, evaluate it, export bundles,
//! and run the whole main job end to end.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use datasets::simulator::config::SimConfig;
use models::bundle::{Bundle, METADATA_FILE};
use train::{
    device::parse_device,
    evaluate::evaluate,
    fit::{fit, FitConfig, TrainLayers},
};

/// distill-guard training.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fine-tune on labeled sessions and export a bundle.
    Fit(FitArgs),
    /// Score a labeled file with a bundle: metrics and per-archetype rates.
    Evaluate {
        /// Bundle directory.
        #[arg(long, default_value = DEFAULT_BUNDLE)]
        bundle: PathBuf,
        /// Labeled sessions file.
        #[arg(long, default_value = "data/default/test.jsonl")]
        data: PathBuf,
        /// Sessions per inference batch.
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// `cpu`, `cuda` or `cuda:N`.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// The main job: build the default dataset, fine-tune, evaluate on the
    /// held-out test split, export the bundle `serve` loads by default.
    Run {
        /// Simulator config of the dataset.
        #[arg(long, default_value = "datasets/config/default.toml")]
        dataset_config: PathBuf,
        /// Where the dataset goes.
        #[arg(long, default_value = "data/default")]
        data_dir: PathBuf,
        #[command(flatten)]
        fit: FitArgs,
    },
}

const DEFAULT_BUNDLE: &str = "models/distill-guard-minilm";

#[derive(Args, Clone)]
struct FitArgs {
    /// Training sessions file.
    #[arg(long, default_value = "data/default/train.jsonl")]
    train: PathBuf,
    /// Validation sessions file (early stopping and threshold).
    #[arg(long, default_value = "data/default/validation.jsonl")]
    validation: PathBuf,
    /// Base model: a directory in Hugging Face layout or a hub id.
    #[arg(long, default_value = "sentence-transformers/all-MiniLM-L6-v2")]
    base_model: String,
    /// Bundle directory to write.
    #[arg(long, default_value = DEFAULT_BUNDLE)]
    out: PathBuf,
    /// Checkpoints and run state (for --resume).
    #[arg(long, default_value = "artifacts/run")]
    run_dir: PathBuf,
    /// Token budget per session ([CLS], prompts, [SEP]s).
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// Prompts kept per session (evenly spaced, first and last included).
    #[arg(long, default_value_t = 4)]
    max_prompts: usize,
    /// Parameters to train: `all`, `head`, or a number of top layers.
    #[arg(long, default_value = "1")]
    train_layers: TrainLayers,
    /// Maximum epochs.
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    /// Sessions per step.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Peak learning rate of encoder layers.
    #[arg(long, default_value_t = 5e-5)]
    learning_rate: f64,
    /// Peak learning rate of the head.
    #[arg(long, default_value_t = 1e-3)]
    head_learning_rate: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    /// Share of steps for learning-rate warm-up.
    #[arg(long, default_value_t = 0.1)]
    warmup_fraction: f64,
    /// Global gradient-norm clip.
    #[arg(long, default_value_t = 1.0)]
    max_grad_norm: f64,
    /// Do not weight extraction sessions by the class ratio.
    #[arg(long)]
    no_class_weighting: bool,
    /// Epochs without validation PR-AUC gain before stopping.
    #[arg(long, default_value_t = 2)]
    patience: usize,
    /// Benign false-positive rate the threshold is chosen for.
    #[arg(long, default_value_t = 0.001)]
    target_fpr: f64,
    /// Width of the head's hidden layer.
    #[arg(long, default_value_t = 128)]
    head_hidden: usize,
    /// Head dropout.
    #[arg(long, default_value_t = 0.1)]
    head_dropout: f32,
    /// Seed of sampling, shuffling and initialisation.
    #[arg(long, default_value_t = 17)]
    seed: u64,
    /// Train on a seeded random sample of at most this many sessions
    /// (0 = all).
    #[arg(long, default_value_t = 2000)]
    max_train_sessions: usize,
    /// Continue from the run directory's last checkpoint.
    #[arg(long)]
    resume: bool,
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    device: String,
}

impl FitArgs {
    fn config(&self) -> FitConfig {
        FitConfig {
            train: self.train.clone(),
            validation: self.validation.clone(),
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
            head_hidden: self.head_hidden,
            head_dropout: self.head_dropout,
            seed: self.seed,
            max_train_sessions: (self.max_train_sessions > 0).then_some(self.max_train_sessions),
            resume: self.resume,
        }
    }
}

fn run_fit(args: &FitArgs) -> Result<PathBuf> {
    let device = parse_device(&args.device)?;
    let outcome = fit(&args.config(), &device)?;
    println!(
        "validation: ROC-AUC {:.4}, PR-AUC {:.4}; threshold {:.6} gives recall {:.4} at benign FPR {:.5} (target {})",
        outcome.validation.roc_auc.unwrap_or(f64::NAN),
        outcome.validation.pr_auc.unwrap_or(f64::NAN),
        outcome.threshold.threshold,
        outcome.threshold.validation_recall,
        outcome.threshold.validation_fpr,
        outcome.threshold.target_fpr
    );
    println!("bundle written to {}", outcome.bundle.display());
    println!("checkpoints and run state in {}", args.run_dir.display());
    Ok(outcome.bundle)
}

fn run_evaluate(
    bundle_dir: &Path,
    data: &Path,
    batch_size: usize,
    device: &str,
    record: bool,
) -> Result<()> {
    let device = parse_device(device)?;
    let bundle = Bundle::load(bundle_dir, &device)?;
    let evaluation = evaluate(&bundle, data, batch_size)?;
    println!("{}", evaluation.to_markdown());
    if record {
        // Store the held-out metrics with the bundle's provenance.
        let path = bundle_dir.join(METADATA_FILE);
        let mut metadata = bundle.metadata.clone();
        metadata.test_metrics = Some(serde_json::to_value(&evaluation)?);
        datasets::writer::write_atomic(&path, &serde_json::to_vec_pretty(&metadata)?)
            .with_context(|| format!("updating {}", path.display()))?;
        println!("test metrics recorded in {}", path.display());
    }
    Ok(())
}

fn main() -> Result<()> {
    datasets::logging::init();
    match Cli::parse().command {
        Command::Fit(args) => run_fit(&args).map(|_| ()),
        Command::Evaluate {
            bundle,
            data,
            batch_size,
            device,
        } => run_evaluate(&bundle, &data, batch_size, &device, false),
        Command::Run {
            dataset_config,
            data_dir,
            fit,
        } => {
            let started = std::time::Instant::now();
            let config = SimConfig::load(&dataset_config)?;
            let built = datasets::build::build_dataset(&config, &data_dir, false, |stage| {
                eprintln!("dataset: {stage}")
            })?;
            for f in &built.split_files {
                println!("dataset file {}", f.display());
            }
            let fit = FitArgs {
                train: data_dir.join("train.jsonl"),
                validation: data_dir.join("validation.jsonl"),
                ..fit
            };
            let bundle = run_fit(&fit)?;
            run_evaluate(&bundle, &data_dir.join("test.jsonl"), 32, &fit.device, true)?;
            println!(
                "main job done in {:.0}s; bundle: {}",
                started.elapsed().as_secs_f64(),
                bundle.display()
            );
            Ok(())
        }
    }
}
