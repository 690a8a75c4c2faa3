//! `train`: fine-tune the session classifier, evaluate it, export bundles,
//! and run the whole main job end to end.
#![forbid(unsafe_code)]

mod cli;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use train::{
    cluster::ClusterArgs,
    frozen::FrozenLayers,
    shard::{merge_scores, Shard},
};

use cli::{
    accounts::{run_accounts, run_prompt_head, AccountsArgs, PromptHeadArgs},
    args::InputArgs,
    compare::{run_check_precision, run_compare, CheckPrecisionArgs, CompareArgs},
    eval::{run_cluster, run_eval, run_score, EvalArgs},
    fit::{run_cross_fit, run_fit, CrossFitArgs, FitArgs},
    main_job::{run_main_job, RunArgs},
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
    /// Score a sessions file (or a raw request log) with a bundle: one
    /// scores line per session, streamed (`cluster_id` stays null: run
    /// `cluster` for coordination).
    Score {
        #[command(flatten)]
        input: InputArgs,
        /// Scores file to write (`.gz` for gzip, `.parquet` for Parquet).
        #[arg(long, short, default_value = "artifacts/scores.jsonl")]
        output: PathBuf,
        /// Score only the accounts of shard K of N (`K/N`, K from 0),
        /// chosen by a stable hash of the account id; join the shards'
        /// files with `merge-scores`.
        #[arg(long, env = "DISTILL_GUARD_SHARD")]
        shard: Option<Shard>,
    },
    /// Join the scores files of `score --shard` runs into one, ordered by
    /// account, then session.
    MergeScores {
        /// The shards' scores files (JSONL or Parquet).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Merged scores file to write.
        #[arg(long, short, default_value = "artifacts/scores.jsonl")]
        output: PathBuf,
    },
    /// Find coordinated multi-account clusters: scores with cluster ids,
    /// the cluster table and account verdicts (with propagation).
    Cluster {
        #[command(flatten)]
        input: InputArgs,
        /// Output folder (replaced atomically).
        #[arg(long, default_value = "artifacts/cluster")]
        out: PathBuf,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Out-of-fold session scores of a training file for the account
    /// scorer (`accounts --train-scores`): the file is cut into folds of
    /// whole operators and each fold is scored by a model fitted on the
    /// others (docs/coordination.md).
    CrossFit {
        #[command(flatten)]
        fit: FitArgs,
        #[command(flatten)]
        cross: CrossFitArgs,
    },
    /// Champion against challenger on the same labeled files: session,
    /// account and campaign numbers side by side, the verdicts that
    /// changed, and promotion gates (compare.html, compare.md,
    /// compare.json). Exits non-zero when a gate fails.
    Compare(Box<CompareArgs>),
    /// Fit a bundle's account scorer on its training file's accounts, with
    /// the `flag` and `review` thresholds chosen on the validation file's
    /// accounts, and save it into the bundle (`account_model.json`).
    Accounts(AccountsArgs),
    /// Fit a bundle's prompt head: the scorer of bare prompts (`serve`'s
    /// `{"prompts": [...]}`), a logistic regression on the encoder's
    /// embedding of single prompts of the training file, its threshold on
    /// the validation file's (`prompt_head.json`, serve/README.md).
    PromptHead(PromptHeadArgs),
    /// Evaluation report of a bundle on a labeled sessions file:
    /// report.html, report.md, metrics.json, scores, clusters, accounts.
    Eval(EvalArgs),
    /// The main job: build the default dataset, fine-tune, evaluate on the
    /// held-out test split, export the bundle `serve` loads by default.
    Run(Box<RunArgs>),
    /// Check the reduced inference precisions against f32 on a labeled
    /// file: ROC-AUC, flag agreement at the bundle threshold and score
    /// differences (docs/precision.md). Exits non-zero when one breaks
    /// the contract.
    CheckPrecision(CheckPrecisionArgs),
}

#[global_allocator]
static GLOBAL: models::allocator::MiMalloc = models::allocator::MiMalloc;

fn main() -> Result<()> {
    models::allocator::retain_freed_memory();
    datasets::logging::init();
    match Cli::parse().command {
        Command::Fit(args) => run_fit(&args, &mut FrozenLayers::new()).map(|_| ()),
        Command::Score {
            input,
            output,
            shard,
        } => run_score(&input, &output, shard),
        Command::MergeScores { inputs, output } => {
            let n = merge_scores(&inputs, &output)?;
            println!(
                "{n} scores from {} files -> {}",
                inputs.len(),
                output.display()
            );
            Ok(())
        }
        Command::Cluster {
            input,
            out,
            cluster,
        } => run_cluster(&input, &out, &cluster),
        Command::CrossFit { fit, cross } => {
            if cross.cross_fit_folds == 0 {
                anyhow::bail!("--cross-fit-folds must be at least 2");
            }
            run_cross_fit(&fit, &cross, &mut FrozenLayers::new()).map(|_| ())
        }
        Command::Compare(args) => run_compare(&args),
        Command::Accounts(args) => run_accounts(&args),
        Command::PromptHead(args) => run_prompt_head(&args),
        Command::Eval(args) => run_eval(&args).map(|_| ()),
        Command::CheckPrecision(args) => run_check_precision(&args),
        Command::Run(run) => run_main_job(*run),
    }
}
