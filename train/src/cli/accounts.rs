//! `accounts` and `prompt-head`: the bundle's account scorer and prompt head.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use models::account_model::ACCOUNT_MODEL_FILE;
use models::prompt_head::PROMPT_HEAD_FILE;
use train::{
    accounts::{
        fit_account_model, fit_account_model_cross_fitted, rows_of_file, rows_of_scored_file,
        window_of_file, write_feature_table, AccountFitConfig,
    },
    corroboration::SessionCorroboration,
    prompt_head::{fit_prompt_head, PromptHeadConfig},
    rule_thresholds::{thresholds_after_rule, RuleWindow},
};

use super::args::{EvidenceArgs, LabeledFiles, ModelArgs};

/// What `accounts` fits the account scorer on, and its targets.
#[derive(Args, Clone)]
pub(crate) struct AccountsArgs {
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    #[command(flatten)]
    pub(crate) files: LabeledFiles,
    /// Benign account false-positive rate of the `flag` verdict.
    #[arg(long, default_value_t = AccountFitConfig::default().flag_fpr)]
    pub(crate) flag_fpr: f64,
    /// Benign account false-positive rate of `flag` or `review` together.
    #[arg(long, default_value_t = AccountFitConfig::default().review_fpr)]
    pub(crate) review_fpr: f64,
    /// L2 penalty of the account scorer's logistic regression.
    #[arg(long, default_value_t = AccountFitConfig::default().alpha)]
    pub(crate) alpha: f64,
    /// Accounts the scorer is fitted on: `train` (thresholds on
    /// validation) or `validation` (cross-fitted: the session model never
    /// trained on them; thresholds from out-of-fold scores). docs/coordination.md
    /// compares the two.
    #[arg(long, value_enum, default_value_t = FitOn::Train)]
    pub(crate) fit_on: FitOn,
    /// Session scores of the training file (a `train score` output, e.g.
    /// out-of-fold scores of models that never trained on those sessions)
    /// used instead of the bundle's own scores [default: score with the
    /// bundle].
    #[arg(long, conflicts_with = "fit_on")]
    pub(crate) train_scores: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) evidence: EvidenceArgs,
    /// Also write the account feature tables of the files read
    /// (`train.csv`, `validation.csv`) into this folder.
    #[arg(long)]
    pub(crate) features_out: Option<PathBuf>,
}

/// Which accounts the account scorer learns from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum FitOn {
    /// The training file's accounts; thresholds on the validation file's.
    Train,
    /// The validation file's accounts, cross-fitted.
    Validation,
}

/// Prints the account scorer's operating points, as chosen on `basis`.
pub(crate) fn print_operating_points(model: &models::account_model::AccountModel, basis: &str) {
    for (name, p) in [("flag", &model.flag), ("flag or review", &model.review)] {
        println!(
            "account scorer, {name} ({basis}): threshold {:.6}, validation benign account FPR {:.4} (target {}), extraction accounts caught {:.4}",
            p.threshold, p.validation_fpr, p.target_fpr, p.validation_recall
        );
    }
}

/// Fits the account scorer, chooses its thresholds after the
/// corroboration rule and saves it in the bundle.
pub(crate) fn run_accounts(args: &AccountsArgs) -> Result<()> {
    let bundle = args.model.load()?;
    let evidence = args.evidence.params();
    let params = evidence.clone().check()?;
    let options = args.model.runtime.score_options();
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

/// What `prompt-head` fits the bundle's prompt head on.
#[derive(Args, Clone)]
pub(crate) struct PromptHeadArgs {
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    #[command(flatten)]
    pub(crate) files: LabeledFiles,
    /// Prompts taken from each session, evenly spaced over it.
    #[arg(long, default_value_t = PromptHeadConfig::default().prompts_per_session)]
    pub(crate) prompts_per_session: usize,
    /// Benign validation prompt false-positive rate of the threshold.
    #[arg(long, default_value_t = PromptHeadConfig::default().target_fpr)]
    pub(crate) target_fpr: f64,
    /// L2 penalty of the logistic regression.
    #[arg(long, default_value_t = PromptHeadConfig::default().alpha)]
    pub(crate) alpha: f64,
}

/// Fits the prompt head and saves it in the bundle.
pub(crate) fn run_prompt_head(args: &PromptHeadArgs) -> Result<()> {
    let bundle = args.model.load()?;
    let config = PromptHeadConfig {
        prompts_per_session: args.prompts_per_session,
        target_fpr: args.target_fpr,
        alpha: args.alpha,
        batch_size: args.model.runtime.batch_size,
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
