//! `train`: fine-tune the session classifier, evaluate it, export bundles,
//! and run the whole main job end to end.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use datasets::coordination::EvidenceParams;
use datasets::simulator::config::SimConfig;
use datasets::{
    read_sessions, sessionize::sessionize_file, sessionize::SessionizeArgs, BadLinePolicy,
    DataError, RecordSink, Session,
};
use models::account_model::{AccountVerdict, ACCOUNT_MODEL_FILE};
use models::prompt_head::PROMPT_HEAD_FILE;
use models::{
    bundle::{Bundle, BundleMetadata, METADATA_FILE},
    device::parse_device,
    CpuFeatures, Precision, PrecisionChoice,
};
use train::{
    accounts::{
        fit_account_model, fit_account_model_cross_fitted, rows_of_file, rows_of_scored_file,
        window_of_file, write_feature_table, AccountFitConfig, AccountReport, VerdictTally,
    },
    baseline::BaselineConfig,
    cluster::{discover, ClusterArgs, Discovery},
    compare::{self, compare_file, comparison, Gates},
    corroboration::SessionCorroboration,
    cross_fit::{out_of_fold_scores, CrossFitConfig},
    fit::{fit, FitConfig, TrainLayers},
    precision_check::{self, check_precisions, ContractLimits},
    prompt_head::{fit_prompt_head, PromptHeadConfig},
    report::{self, evaluate_file, EvalOptions, EvalReport},
    rule_thresholds::{thresholds_after_rule, RuleWindow},
    score::{score_all, score_sessions, ScoreOptions},
    shard::{merge_scores, Shard},
    verdicts::judge_window,
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

/// What `compare` evaluates and the gates the challenger must pass.
#[derive(Args)]
struct CompareArgs {
    /// The bundle in production.
    #[arg(long)]
    champion: PathBuf,
    /// The bundle that would replace it.
    #[arg(long)]
    challenger: PathBuf,
    /// Labeled sessions files both are evaluated on (one or more).
    #[arg(long, required = true, num_args = 1..)]
    data: Vec<PathBuf>,
    /// Output folder (replaced atomically).
    #[arg(long, default_value = "artifacts/compare")]
    out: PathBuf,
    /// Gate: the challenger flags at most this share of benign accounts.
    #[arg(long)]
    max_benign_account_fpr: Option<f64>,
    /// Gate: the challenger flags at least this share of extraction
    /// accounts.
    #[arg(long)]
    min_extraction_account_recall: Option<f64>,
    /// Gate: the challenger's benign session FPR at its threshold is at
    /// most this.
    #[arg(long)]
    max_benign_session_fpr: Option<f64>,
    /// Gate: the challenger does no worse than the champion on each of
    /// the three numbers above.
    #[arg(long)]
    no_worse_than_champion: bool,
    /// Sessions per inference batch.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Precision of both bundles' encoder linear layers on the CPU (as for
    /// `eval`; docs/precision.md).
    #[arg(long, default_value = "auto", env = "DG_PRECISION")]
    precision: PrecisionChoice,
    #[command(flatten)]
    cluster: ClusterArgs,
}

fn run_compare(args: &CompareArgs) -> Result<()> {
    let model = |dir: &Path| ModelArgs {
        bundle: dir.to_path_buf(),
        batch_size: args.batch_size,
        device: args.device.clone(),
        precision: args.precision,
    };
    let (champion, challenger) = (
        model(&args.champion).load()?,
        model(&args.challenger).load()?,
    );
    let mut files = Vec::new();
    for data in &args.data {
        let evaluate = |bundle: &Bundle| -> Result<report::Evaluated> {
            let options = EvalOptions {
                score: model(&bundle.dir).score_options(),
                cluster: args.cluster.params(&bundle.threshold)?,
                baseline_train: None,
                baseline: BaselineConfig::default(),
            };
            evaluate_file(bundle, data, &options)
        };
        let (a, b) = (evaluate(&champion)?, evaluate(&challenger)?);
        files.push(compare_file(data, (&champion, &a), (&challenger, &b))?);
    }
    let gates = Gates {
        max_benign_account_fpr: args.max_benign_account_fpr,
        min_extraction_account_recall: args.min_extraction_account_recall,
        max_benign_session_fpr: args.max_benign_session_fpr,
        no_worse_than_champion: args.no_worse_than_champion,
    };
    let result = comparison(files, gates);
    compare::write(&result, &args.out)?;
    for r in &result.results {
        let f = |x: Option<f64>| x.map_or("n/a".into(), |x| format!("{x:.4}"));
        let verdict = if r.passed { "pass" } else { "FAIL" };
        println!(
            "{verdict}  {} on {}: champion {}, challenger {}",
            r.gate,
            r.file,
            f(r.champion),
            f(r.challenger)
        );
    }
    println!("comparison in {}", args.out.join("compare.html").display());
    let failed = result.results.iter().filter(|r| !r.passed).count();
    if failed > 0 {
        anyhow::bail!(
            "the challenger fails {failed} of {} gates",
            result.results.len()
        );
    }
    Ok(())
}

/// What `check-precision` scores and the limits it holds each precision to.
#[derive(Args)]
struct CheckPrecisionArgs {
    /// Bundle directory.
    #[arg(long, default_value = DEFAULT_BUNDLE)]
    bundle: PathBuf,
    /// Labeled sessions file.
    #[arg(long, default_value = "data/default/test.jsonl")]
    data: PathBuf,
    /// Precisions to check against f32 (comma-separated; default: every
    /// one this CPU runs).
    #[arg(long, value_delimiter = ',')]
    precisions: Vec<Precision>,
    /// Sessions per inference batch.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Largest ROC-AUC loss against f32.
    #[arg(long, default_value_t = ContractLimits::default().max_auc_drop)]
    max_auc_drop: f64,
    /// Smallest share of sessions flagged the same as in f32.
    #[arg(long, default_value_t = ContractLimits::default().min_flag_agreement)]
    min_flag_agreement: f64,
    /// Largest absolute score difference from f32.
    #[arg(long, default_value_t = ContractLimits::default().max_score_diff)]
    max_score_diff: f32,
    /// Also write the results as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The main job's settings.
#[derive(Args)]
struct RunArgs {
    /// Simulator config of the dataset.
    #[arg(long, default_value = "datasets/config/default.toml")]
    dataset_config: PathBuf,
    /// Where the dataset goes.
    #[arg(long, default_value = "data/default")]
    data_dir: PathBuf,
    #[command(flatten)]
    fit: FitArgs,
    #[command(flatten)]
    cross: CrossFitArgs,
    /// Where the evaluation report on the test split goes.
    #[arg(long, default_value = "artifacts/eval")]
    eval_out: PathBuf,
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(flatten)]
    evidence: EvidenceArgs,
}

/// Cross-fitting: out-of-fold session scores of the training file, so the
/// account scorer learns from scores like those of traffic the session
/// model never saw.
#[derive(Args, Clone)]
struct CrossFitArgs {
    /// Folds of whole operators (a campaign, the accounts behind one
    /// network prefix); 0 (only `run`) fits the account scorer on the
    /// bundle's own, in-sample scores of the training sessions.
    #[arg(long, default_value_t = 2)]
    cross_fit_folds: usize,
    /// Epochs of each fold's model.
    #[arg(long, default_value_t = 1)]
    cross_fit_epochs: usize,
    /// Where the out-of-fold scores go.
    #[arg(long, default_value = "artifacts/cross-fit/scores.jsonl")]
    cross_fit_scores: PathBuf,
}

/// Writes the out-of-fold scores of `fit.train` (`None` with 0 folds).
fn run_cross_fit(fit: &FitArgs, cross: &CrossFitArgs) -> Result<Option<PathBuf>> {
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
    )?;
    println!(
        "out-of-fold scores of {} ({} folds) in {}",
        fit.train_file().display(),
        settings.folds,
        path.display()
    );
    Ok(Some(path))
}

const DEFAULT_BUNDLE: &str = "models/distill-guard-minilm";

/// Bundle, device and batching of the scoring commands.
#[derive(Args, Clone)]
struct ModelArgs {
    /// Bundle directory.
    #[arg(long, default_value = DEFAULT_BUNDLE)]
    bundle: PathBuf,
    /// Sessions per inference batch.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Precision of the encoder's linear layers on the CPU: `auto` (the
    /// fastest this CPU runs: int8, else bf16, else f32), `f32`, `bf16`
    /// (needs AVX512-BF16) or `int8` (needs AVX512-VNNI); the other ops
    /// stay f32. See docs/precision.md.
    #[arg(long, default_value = "auto", env = "DG_PRECISION")]
    precision: PrecisionChoice,
}

impl ModelArgs {
    fn load(&self) -> Result<Bundle> {
        let device = parse_device(&self.device)?;
        let mut bundle = Bundle::load(&self.bundle, &device)
            .with_context(|| format!("loading bundle {}", self.bundle.display()))?;
        let precision = self.precision.for_device(&device);
        bundle.set_precision(precision)?;
        tracing::info!(%precision, kernels = bundle.kernels(), "bundle loaded");
        Ok(bundle)
    }

    fn score_options(&self) -> ScoreOptions {
        ScoreOptions {
            batch_size: self.batch_size,
            ..ScoreOptions::default()
        }
    }
}

/// What `score` and `cluster` read.
#[derive(Args, Clone)]
struct InputArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Sessions file (or raw request log with --raw-log): JSONL, plain or
    /// gzip, or Parquet (`.parquet`).
    #[arg(long, short)]
    input: PathBuf,
    /// The input is a raw request log: sessionize it first.
    #[arg(long)]
    raw_log: bool,
    #[command(flatten)]
    sessionize: SessionizeArgs,
    /// What to do with a bad input line.
    #[arg(long, value_enum, default_value_t = BadLinePolicy::Skip)]
    policy: BadLinePolicy,
}

impl InputArgs {
    /// Runs `consume` over the input's sessions as a stream, then reports
    /// the bad lines the reader skipped.
    fn stream<T>(&self, consume: impl FnOnce(&mut SessionStream) -> Result<T>) -> Result<T> {
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

type SessionStream = dyn Iterator<Item = Result<Session, DataError>> + Send;

#[derive(Args, Clone)]
struct EvalArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Labeled sessions file.
    #[arg(long, default_value = "data/default/test.jsonl")]
    data: PathBuf,
    /// Output folder (replaced atomically).
    #[arg(long, default_value = "artifacts/eval")]
    out: PathBuf,
    /// Labeled file the TF-IDF baseline is fitted on [default: the
    /// bundle's training file].
    #[arg(long)]
    baseline_train: Option<PathBuf>,
    /// Skip the baseline.
    #[arg(long, conflicts_with = "baseline_train")]
    no_baseline: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// The labeled files a bundle's account scorer or prompt head learns from.
#[derive(Args, Clone)]
struct LabeledFiles {
    /// Labeled sessions it is fitted on.
    #[arg(long, default_value = "data/default/train.jsonl")]
    train: PathBuf,
    /// Labeled sessions that set its thresholds.
    #[arg(long, default_value = "data/default/validation.jsonl")]
    validation: PathBuf,
}

#[derive(Args, Clone)]
struct AccountsArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    files: LabeledFiles,
    /// Benign account false-positive rate of the `flag` verdict.
    #[arg(long, default_value_t = AccountFitConfig::default().flag_fpr)]
    flag_fpr: f64,
    /// Benign account false-positive rate of `flag` or `review` together.
    #[arg(long, default_value_t = AccountFitConfig::default().review_fpr)]
    review_fpr: f64,
    /// L2 penalty of the account scorer's logistic regression.
    #[arg(long, default_value_t = AccountFitConfig::default().alpha)]
    alpha: f64,
    /// Accounts the scorer is fitted on: `train` (thresholds on
    /// validation) or `validation` (cross-fitted: the session model never
    /// trained on them; thresholds from out-of-fold scores). docs/coordination.md
    /// compares the two.
    #[arg(long, value_enum, default_value_t = FitOn::Train)]
    fit_on: FitOn,
    /// Session scores of the training file (a `train score` output, e.g.
    /// out-of-fold scores of models that never trained on those sessions)
    /// used instead of the bundle's own scores [default: score with the
    /// bundle].
    #[arg(long, conflicts_with = "fit_on")]
    train_scores: Option<PathBuf>,
    #[command(flatten)]
    evidence: EvidenceArgs,
    /// Also write the account feature tables of the files read
    /// (`train.csv`, `validation.csv`) into this folder.
    #[arg(long)]
    features_out: Option<PathBuf>,
}

/// Cross-account evidence settings (docs/coordination.md), saved with the
/// account scorer so that verdicts on new windows use the same.
#[derive(Args, Clone)]
struct EvidenceArgs {
    /// IPv4 prefix length that groups addresses.
    #[arg(long, default_value_t = EvidenceParams::default().ipv4_prefix)]
    ipv4_prefix: u8,
    /// IPv6 prefix length that groups addresses.
    #[arg(long, default_value_t = EvidenceParams::default().ipv6_prefix)]
    ipv6_prefix: u8,
    /// Days from creation to first request within which an account is fresh.
    #[arg(long, default_value_t = EvidenceParams::default().fresh_days)]
    fresh_days: f64,
    /// Words in a template frame.
    #[arg(long, default_value_t = EvidenceParams::default().frame_words)]
    frame_words: usize,
    /// Accounts that must share a frame for it to be a template.
    #[arg(long, default_value_t = EvidenceParams::default().min_template_accounts)]
    min_template_accounts: u32,
    /// Prompts per session that enter the template and synchrony joins.
    #[arg(long, default_value_t = EvidenceParams::default().max_prompts_per_session)]
    max_prompts_per_session: usize,
    /// Width of a synchrony time bucket, in minutes.
    #[arg(long, default_value_t = EvidenceParams::default().sync_bucket_minutes)]
    sync_bucket_minutes: i64,
    /// Width of a creation wave, in hours.
    #[arg(long, default_value_t = EvidenceParams::default().wave_hours)]
    wave_hours: i64,
    /// Hours after the window's first request from which a model's first
    /// request counts as its release.
    #[arg(long, default_value_t = EvidenceParams::default().release_gap_hours)]
    release_gap_hours: i64,
}

impl EvidenceArgs {
    /// The settings (unchecked; `check()` names a value out of range).
    fn params(&self) -> EvidenceParams {
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

/// Which accounts the account scorer learns from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FitOn {
    /// The training file's accounts; thresholds on the validation file's.
    Train,
    /// The validation file's accounts, cross-fitted.
    Validation,
}

/// Prints the account scorer's operating points, as chosen on `basis`.
fn print_operating_points(model: &models::account_model::AccountModel, basis: &str) {
    for (name, p) in [("flag", &model.flag), ("flag or review", &model.review)] {
        println!(
            "account scorer, {name} ({basis}): threshold {:.6}, validation benign account FPR {:.4} (target {}), extraction accounts caught {:.4}",
            p.threshold, p.validation_fpr, p.target_fpr, p.validation_recall
        );
    }
}

fn run_accounts(args: &AccountsArgs) -> Result<()> {
    let bundle = args.model.load()?;
    let evidence = args.evidence.params();
    let params = evidence.clone().check()?;
    let options = args.model.score_options();
    let config = AccountFitConfig {
        alpha: args.alpha,
        flag_fpr: args.flag_fpr,
        review_fpr: args.review_fpr,
        evidence,
        ..AccountFitConfig::default()
    };
    let (validation_sessions, validation_window) =
        window_of_file(&bundle, &args.files.validation, &options, &params)?;
    let validation_rows = &validation_window.rows;
    let train_rows = match args.fit_on {
        FitOn::Validation => None,
        FitOn::Train => Some(match &args.train_scores {
            Some(scores) => rows_of_scored_file(
                &args.files.train,
                scores,
                bundle.threshold.threshold,
                &params,
            )?,
            None => rows_of_file(&bundle, &args.files.train, &options, &params)?,
        }),
    };
    if let Some(dir) = &args.features_out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        write_feature_table(&dir.join("validation.csv"), validation_rows)?;
        if let Some(rows) = &train_rows {
            write_feature_table(&dir.join("train.csv"), rows)?;
        }
    }
    let model = match &train_rows {
        // Out-of-fold thresholds: the rule would see in-sample scores.
        None => fit_account_model_cross_fitted(validation_rows, &config)?,
        Some(rows) => {
            let mut model = fit_account_model(rows, validation_rows, &config)?;
            print_operating_points(&model, "the scorer's own verdicts");
            let refs: Vec<&datasets::Session> = validation_sessions.iter().collect();
            thresholds_after_rule(
                &mut model,
                &RuleWindow {
                    sessions: &refs,
                    window: &validation_window,
                    params: &params,
                    session_levels: SessionCorroboration::of(&bundle.threshold),
                },
            );
            print_operating_points(&model, "after the corroboration rule (saved)");
            model
        }
    };
    model.save(&bundle.dir)?;
    if train_rows.is_none() {
        print_operating_points(&model, "out-of-fold scores");
    }
    println!(
        "account scorer saved in {}",
        bundle.dir.join(ACCOUNT_MODEL_FILE).display()
    );
    Ok(())
}

#[derive(Args, Clone)]
struct PromptHeadArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    files: LabeledFiles,
    /// Prompts taken from each session, evenly spaced over it.
    #[arg(long, default_value_t = PromptHeadConfig::default().prompts_per_session)]
    prompts_per_session: usize,
    /// Benign validation prompt false-positive rate of the threshold.
    #[arg(long, default_value_t = PromptHeadConfig::default().target_fpr)]
    target_fpr: f64,
    /// L2 penalty of the logistic regression.
    #[arg(long, default_value_t = PromptHeadConfig::default().alpha)]
    alpha: f64,
}

fn run_prompt_head(args: &PromptHeadArgs) -> Result<()> {
    let bundle = args.model.load()?;
    let config = PromptHeadConfig {
        prompts_per_session: args.prompts_per_session,
        target_fpr: args.target_fpr,
        alpha: args.alpha,
        batch_size: args.model.batch_size,
        ..PromptHeadConfig::default()
    };
    let train = train::data::read_labeled(&args.files.train)?;
    let validation = train::data::read_labeled(&args.files.validation)?;
    let head = fit_prompt_head(&bundle, &train, &validation, &config)?;
    head.save(&bundle.dir)?;
    let v = &head.validation;
    println!(
        "prompt head: {} training prompts; validation prompts {}: ROC-AUC {:.4}, threshold {:.6}, benign prompt FPR {:.4} (target {}), extraction prompts caught {:.4}; saved in {}",
        head.train_prompts,
        v.prompts,
        v.roc_auc,
        head.threshold,
        v.fpr,
        v.target_fpr,
        v.recall,
        bundle.dir.join(PROMPT_HEAD_FILE).display()
    );
    Ok(())
}

#[derive(Args, Clone)]
struct FitArgs {
    /// Training sessions file [default: data/default/train.jsonl; `run`
    /// trains on the split it builds and refuses this flag].
    #[arg(long)]
    train: Option<PathBuf>,
    /// Validation sessions file, for early stopping and the threshold
    /// [default: data/default/validation.jsonl; `run` uses its own split].
    #[arg(long)]
    validation: Option<PathBuf>,
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
    /// Benign session false-positive rate cluster propagation's lower
    /// threshold is chosen for (saved in the bundle; an account in a
    /// coordinated cluster is flagged when its mean score reaches it).
    #[arg(long, default_value_t = 0.01)]
    propagation_fpr: f64,
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
    #[arg(long, default_value_t = 0)]
    max_train_sessions: usize,
    /// Continue from the run directory's last checkpoint.
    #[arg(long)]
    resume: bool,
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Warm start from this bundle (e.g. the one in production): its
    /// encoder, head and feature normalisation; its head width, token
    /// budget and prompts kept replace --head-hidden, --max-tokens and
    /// --max-prompts. The new bundle records it as its parent.
    #[arg(long)]
    init_from: Option<PathBuf>,
    /// With --init-from: fit the feature normalisation on the training
    /// data instead of keeping the bundle's.
    #[arg(long, requires = "init_from")]
    refit_normalization: bool,
    /// Older labeled sessions to train on beside --train, so that earlier
    /// campaigns are not forgotten.
    #[arg(long)]
    replay: Option<PathBuf>,
    /// Seeded sample of at most this many --replay sessions (0 = all).
    #[arg(long, default_value_t = 0, requires = "replay")]
    replay_sessions: usize,
}

impl FitArgs {
    fn train_file(&self) -> PathBuf {
        self.train
            .clone()
            .unwrap_or_else(|| "data/default/train.jsonl".into())
    }

    fn validation_file(&self) -> PathBuf {
        self.validation
            .clone()
            .unwrap_or_else(|| "data/default/validation.jsonl".into())
    }

    fn config(&self) -> FitConfig {
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

fn run_score(input: &InputArgs, output: &Path, shard: Option<Shard>) -> Result<()> {
    let bundle = input.model.load()?;
    let threshold = bundle.threshold.threshold;
    let mut writer = RecordSink::create(output)?;
    let bar = train::progress::counter("scoring", "sessions");
    let mut flagged = 0usize;
    let n = input.stream(|sessions| {
        let in_shard = |s: &Result<Session, DataError>| match (shard, s) {
            (Some(shard), Ok(s)) => shard.contains(&s.account_id),
            _ => true,
        };
        let sessions = sessions.filter(in_shard);
        score_sessions(&bundle, sessions, &input.model.score_options(), |chunk| {
            for s in &chunk {
                let record = s.record(threshold);
                flagged += usize::from(record.flagged);
                writer.write(&record)?;
            }
            bar.inc(chunk.len() as u64);
            Ok(())
        })
    })?;
    bar.finish_and_clear();
    writer.finish()?;
    println!(
        "{n} sessions scored, {flagged} flagged at threshold {threshold:.6}; scores in {}",
        output.display()
    );
    Ok(())
}

fn run_cluster(input: &InputArgs, out: &Path, cluster: &ClusterArgs) -> Result<()> {
    let bundle = input.model.load()?;
    let params = cluster.params(&bundle.threshold)?;
    let threshold = bundle.threshold.threshold;
    let bar = train::progress::counter("scoring", "sessions");
    let options = input.model.score_options();
    let scored = input.stream(|sessions| score_all(&bundle, sessions, &options, &bar))?;
    let discovery = discover(&scored, threshold, &params)?;
    let verdicts = judge_window(&bundle, &scored, &params)?;
    let written = datasets::writer::replace_dir(out, train::data::io_error, |staging| {
        discovery.write_files(staging, &scored, threshold)?;
        if let Some(v) = &verdicts {
            v.write_files(staging)?;
        }
        Ok(())
    })?;
    print_discovery(&discovery);
    match &verdicts {
        Some(v) => println!(
            "account scorer: {} accounts flagged, {} to review, {} campaigns",
            v.map.accounts.values().filter(|a| a.verdict == AccountVerdict::Flag).count(),
            v.map.accounts.values().filter(|a| a.verdict == AccountVerdict::Review).count(),
            v.campaigns.len()
        ),
        None => println!("the bundle has no account scorer (run `train accounts`): no account verdicts or campaign map"),
    }
    println!(
        "clusters, scores and account verdicts in {}",
        written.display()
    );
    Ok(())
}

fn print_discovery(d: &Discovery) {
    let coordinated: Vec<_> = d
        .clusters
        .iter()
        .filter(|c| c.verdict.is_coordinated())
        .collect();
    println!(
        "DBSCAN eps {:.4}{} in {} dims: {} clusters, {} coordinated; {} accounts flagged by sessions, {} more by propagation",
        d.eps,
        d.eps_suggested
            .map_or(String::new(), |s| format!(" (suggested {s:.4})")),
        d.dims,
        d.clusters.len(),
        coordinated.len(),
        d.accounts.iter().filter(|a| a.flagged_by_sessions).count(),
        d.accounts.iter().filter(|a| a.propagated).count()
    );
}

fn run_eval(args: &EvalArgs) -> Result<EvalReport> {
    let bundle = args.model.load()?;
    let params = args.cluster.params(&bundle.threshold)?;
    let baseline_train = if args.no_baseline {
        None
    } else {
        match &args.baseline_train {
            Some(p) => Some(p.clone()),
            None => Some(
                bundle
                    .metadata
                    .data_files
                    .first()
                    .map(|f| PathBuf::from(&f.path))
                    .context("the bundle records no training file: pass --baseline-train or --no-baseline")?,
            ),
        }
    };
    let options = EvalOptions {
        score: args.model.score_options(),
        cluster: params,
        baseline_train,
        baseline: BaselineConfig::default(),
    };
    let evaluated = evaluate_file(&bundle, &args.data, &options)?;
    let dir = evaluated.write(&args.out)?;
    let r = &evaluated.report;
    let f = |x: Option<f64>| x.map_or("n/a".into(), |x| format!("{x:.4}"));
    println!(
        "model: ROC-AUC {}, PR-AUC {}, recall {} at 1% FPR, {} at 0.1% FPR; at the saved threshold recall {:.4}, benign FPR {:.5}",
        f(r.ranking.roc_auc),
        f(r.ranking.pr_auc),
        f(r.ranking.recall_at_1pct_fpr),
        f(r.ranking.recall_at_0_1pct_fpr),
        r.evaluation.recall,
        r.evaluation.false_positive_rate
    );
    if let Some(b) = &r.baseline {
        println!(
            "baseline: ROC-AUC {}, PR-AUC {}, recall {} at 1% FPR, {} at 0.1% FPR",
            f(b.metrics.roc_auc),
            f(b.metrics.pr_auc),
            f(b.metrics.recall_at_1pct_fpr),
            f(b.metrics.recall_at_0_1pct_fpr)
        );
    }
    match &r.score_drift {
        Some(d) => println!(
            "score drift: PSI {:.3} against the bundle's validation scores ({})",
            d.psi,
            models::drift::reading(d.psi)
        ),
        None => println!("score drift: the bundle has no validation score reference"),
    }
    let d = &r.detection;
    if let Some(low) = &d.low_and_slow {
        println!(
            "low-and-slow campaign accounts caught: {:.1}% by sessions alone, {:.1}% after cluster propagation ({} accounts)",
            100.0 * low.share_by_sessions,
            100.0 * low.share_after_propagation,
            low.accounts
        );
    }
    println!(
        "benign accounts flagged: {:.2}% by sessions, {:.2}% after propagation ({} accounts)",
        100.0 * d.benign_total.share_by_sessions,
        100.0 * d.benign_total.share_after_propagation,
        d.benign_total.accounts
    );
    if let Some(a) = &r.account_verdicts {
        print_account_verdicts(a);
    }
    print_discovery(&evaluated.discovery);
    println!("report in {}", dir.join(report::REPORT_HTML).display());
    Ok(evaluated.report)
}

fn print_account_verdicts(a: &AccountReport) {
    let line = |name: &str, t: &VerdictTally| {
        println!(
            "  {name:<16} {:>5} accounts: flag {:>6.2}%, flag or review {:>6.2}%",
            t.accounts,
            100.0 * t.flag_share(),
            100.0 * t.flag_or_review_share()
        )
    };
    println!("account scorer verdicts:");
    line("benign (all)", &a.benign_total);
    for (name, t) in &a.benign {
        line(name, t);
    }
    line("extraction (all)", &a.extraction_total);
    for (name, t) in &a.campaigns {
        line(name, t);
    }
    if let Some(q) = &a.campaign_quality {
        println!(
            "  campaigns found: {}; against campaign_id over extraction accounts: ARI {:.3}, homogeneity {:.3}, completeness {:.3}",
            a.campaigns_found, q.adjusted_rand_index, q.homogeneity, q.completeness
        );
    }
    let c = &a.corroboration;
    println!(
        "  corroborated: {} by a session score ({} flags of them lowered to review), {} by an operator or template campaign; {} cleared uncorroborated",
        c.by_session, c.lowered_to_review, c.by_campaign, c.cleared
    );
    if let Some(r) = a.session_recall_at_0_1pct_fpr_by_account {
        println!("  session recall at 0.1% session FPR, sessions ranked by their account's score: {r:.4}");
    }
    let shares = [
        ("flag", a.sessions_flagged),
        ("flag or review", a.sessions_flagged_or_reviewed),
    ];
    for (verdict, share) in shares {
        if let Some(s) = share {
            println!(
                "  sessions whose account ends at {verdict}: extraction {:.2}%, benign {:.2}%",
                100.0 * s.extraction,
                100.0 * s.benign
            );
        }
    }
}

/// Stores the held-out metrics with the bundle's provenance.
fn record_test_metrics(bundle_dir: &Path, report: &EvalReport) -> Result<()> {
    let path = bundle_dir.join(METADATA_FILE);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut metadata: BundleMetadata =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    metadata.test_metrics = Some(serde_json::json!({
        "evaluation": report.evaluation,
        "ranking": report.ranking,
        "detection": report.detection,
    }));
    datasets::writer::write_atomic(&path, &serde_json::to_vec_pretty(&metadata)?)
        .with_context(|| format!("updating {}", path.display()))?;
    println!("test metrics recorded in {}", path.display());
    Ok(())
}

fn run_check_precision(args: &CheckPrecisionArgs) -> Result<()> {
    let mut bundle = Bundle::load(&args.bundle, &candle_core::Device::Cpu)
        .with_context(|| format!("loading bundle {}", args.bundle.display()))?;
    let cpu = CpuFeatures::detect();
    let precisions = if args.precisions.is_empty() {
        cpu.supported()
    } else {
        args.precisions.clone()
    };
    for p in Precision::ALL.iter().filter(|p| !cpu.supports(**p)) {
        println!("{p}: skipped: {}", cpu.kernels(*p).unwrap_err());
    }
    let sessions = train::data::read_labeled(&args.data)?;
    let limits = ContractLimits {
        max_auc_drop: args.max_auc_drop,
        min_flag_agreement: args.min_flag_agreement,
        max_score_diff: args.max_score_diff,
    };
    let checks = check_precisions(
        &mut bundle,
        &sessions,
        &precisions,
        &limits,
        args.batch_size,
    )?;
    println!(
        "{} sessions of {}, bundle threshold {}\n\n{}",
        sessions.len(),
        args.data.display(),
        bundle.threshold.threshold,
        precision_check::table(&checks)
    );
    for c in &checks {
        println!("{}: {}", c.precision, c.kernels);
    }
    if let Some(path) = &args.out {
        let json =
            serde_json::to_vec_pretty(&serde_json::json!({"limits": limits, "checks": checks}))?;
        datasets::writer::write_atomic(path, &json)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let broken: Vec<_> = checks.iter().filter(|c| !c.failures.is_empty()).collect();
    if !broken.is_empty() {
        anyhow::bail!(
            "{} precision(s) break the accuracy contract: {}",
            broken.len(),
            broken
                .iter()
                .map(|c| c.precision.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

#[global_allocator]
static GLOBAL: models::allocator::MiMalloc = models::allocator::MiMalloc;

fn main() -> Result<()> {
    models::allocator::retain_freed_memory();
    datasets::logging::init();
    match Cli::parse().command {
        Command::Fit(args) => run_fit(&args).map(|_| ()),
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
            run_cross_fit(&fit, &cross).map(|_| ())
        }
        Command::Compare(args) => run_compare(&args),
        Command::Accounts(args) => run_accounts(&args),
        Command::PromptHead(args) => run_prompt_head(&args),
        Command::Eval(args) => run_eval(&args).map(|_| ()),
        Command::CheckPrecision(args) => run_check_precision(&args),
        Command::Run(run) => {
            let RunArgs {
                dataset_config,
                data_dir,
                fit,
                cross,
                eval_out,
                cluster,
                evidence,
            } = *run;
            if fit.train.is_some() || fit.validation.is_some() {
                anyhow::bail!(
                    "`train run` trains on the train and validation splits it builds in \
                     --data-dir: --train and --validation belong to `train fit`"
                );
            }
            let started = std::time::Instant::now();
            let mut clock = train::progress::StepClock::default();
            let config = SimConfig::load(&dataset_config)?;
            let built = clock.time("dataset", || {
                datasets::build::build_dataset(&config, &data_dir, false, |stage| {
                    eprintln!("dataset: {stage}")
                })
            })?;
            for f in &built.split_files {
                println!("dataset file {}", f.display());
            }
            let fit = FitArgs {
                train: Some(data_dir.join("train.jsonl")),
                validation: Some(data_dir.join("validation.jsonl")),
                ..fit
            };
            let bundle = clock.time("fine-tuning", || run_fit(&fit))?;
            let train_scores = clock.time("cross-fitting", || run_cross_fit(&fit, &cross))?;
            let model = ModelArgs {
                bundle: bundle.clone(),
                batch_size: 32,
                device: fit.device.clone(),
                // f32, so that the main job's numbers are the same on every CPU.
                precision: PrecisionChoice::Fixed(Precision::F32),
            };
            let accounts = AccountsArgs {
                model: model.clone(),
                files: LabeledFiles {
                    train: fit.train_file(),
                    validation: fit.validation_file(),
                },
                flag_fpr: AccountFitConfig::default().flag_fpr,
                review_fpr: AccountFitConfig::default().review_fpr,
                alpha: AccountFitConfig::default().alpha,
                fit_on: FitOn::Train,
                train_scores,
                evidence,
                features_out: None,
            };
            clock.time("account scorer", || run_accounts(&accounts))?;
            let prompt_head = PromptHeadArgs {
                model: model.clone(),
                files: LabeledFiles {
                    train: fit.train_file(),
                    validation: fit.validation_file(),
                },
                prompts_per_session: PromptHeadConfig::default().prompts_per_session,
                target_fpr: PromptHeadConfig::default().target_fpr,
                alpha: PromptHeadConfig::default().alpha,
            };
            clock.time("prompt head", || run_prompt_head(&prompt_head))?;
            let eval = EvalArgs {
                model,
                data: data_dir.join("test.jsonl"),
                out: eval_out,
                baseline_train: Some(fit.train_file()),
                no_baseline: false,
                cluster,
            };
            let report = clock.time("test report", || run_eval(&eval))?;
            record_test_metrics(&bundle, &report)?;
            println!(
                "main job done in {:.0}s ({}); bundle: {}",
                started.elapsed().as_secs_f64(),
                clock.summary(),
                bundle.display()
            );
            Ok(())
        }
    }
}
