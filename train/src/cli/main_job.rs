//! `run`: the main job, end to end.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use datasets::simulator::config::SimConfig;
use models::{Precision, PrecisionChoice};
use train::{
    accounts::AccountFitConfig, cluster::ClusterArgs, frozen::FrozenLayers,
    prompt_head::PromptHeadConfig,
};

use super::{
    accounts::{run_accounts, run_prompt_head, AccountsArgs, FitOn, PromptHeadArgs},
    args::{EvidenceArgs, LabeledFiles, ModelArgs, RuntimeArgs},
    eval::{record_test_metrics, run_eval, EvalArgs},
    fit::{run_cross_fit, run_fit, CrossFitArgs, FitArgs},
};

/// The main job's settings.
#[derive(Args)]
pub(crate) struct RunArgs {
    /// Simulator config of the dataset.
    #[arg(long, default_value = "datasets/config/default.toml")]
    pub(crate) dataset_config: PathBuf,
    /// Where the dataset goes.
    #[arg(long, default_value = "data/default")]
    pub(crate) data_dir: PathBuf,
    #[command(flatten)]
    pub(crate) fit: FitArgs,
    #[command(flatten)]
    pub(crate) cross: CrossFitArgs,
    /// Where the evaluation report on the test split goes.
    #[arg(long, default_value = "artifacts/eval")]
    pub(crate) eval_out: PathBuf,
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
    #[command(flatten)]
    pub(crate) evidence: EvidenceArgs,
}

/// Runs the main job: the dataset, fine-tuning, cross-fitting, the
/// account scorer, the prompt head and the test report.
pub(crate) fn run_main_job(run: RunArgs) -> Result<()> {
    let RunArgs {
        dataset_config,
        data_dir,
        fit,
        cross,
        eval_out,
        cluster,
        evidence,
    } = run;
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
    // The fold models share the bundle's frozen layers: their output is
    // computed once, during fine-tuning.
    let mut frozen = FrozenLayers::new();
    let bundle = clock.time("fine-tuning", || run_fit(&fit, &mut frozen))?;
    let train_scores = clock.time("cross-fitting", || run_cross_fit(&fit, &cross, &mut frozen))?;
    drop(frozen);
    let model = ModelArgs {
        bundle: bundle.clone(),
        runtime: RuntimeArgs {
            batch_size: 32,
            device: fit.device.clone(),
            // f32, so that the main job's numbers are the same on every CPU.
            precision: PrecisionChoice::Fixed(Precision::F32),
        },
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
