//! `compare` (champion against challenger) and `check-precision`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use models::{bundle::Bundle, CpuFeatures, Precision};
use train::{
    baseline::BaselineConfig,
    cluster::ClusterArgs,
    compare::{self, compare_file, comparison, Gates},
    precision_check::{self, check_precisions, ContractLimits},
    report::{self, evaluate_file, EvalOptions},
};

use super::args::{RuntimeArgs, DEFAULT_BUNDLE};

/// What `compare` evaluates and the gates the challenger must pass.
#[derive(Args)]
pub(crate) struct CompareArgs {
    /// The bundle in production.
    #[arg(long)]
    pub(crate) champion: PathBuf,
    /// The bundle that would replace it.
    #[arg(long)]
    pub(crate) challenger: PathBuf,
    /// Labeled sessions files both are evaluated on (one or more).
    #[arg(long, required = true, num_args = 1..)]
    pub(crate) data: Vec<PathBuf>,
    /// Output folder (replaced atomically).
    #[arg(long, default_value = "artifacts/compare")]
    pub(crate) out: PathBuf,
    /// Gate: the challenger flags at most this share of benign accounts.
    #[arg(long)]
    pub(crate) max_benign_account_fpr: Option<f64>,
    /// Gate: the challenger flags at least this share of extraction
    /// accounts.
    #[arg(long)]
    pub(crate) min_extraction_account_recall: Option<f64>,
    /// Gate: the challenger's benign session FPR at its threshold is at
    /// most this.
    #[arg(long)]
    pub(crate) max_benign_session_fpr: Option<f64>,
    /// Gate: the challenger does no worse than the champion on each of
    /// the three numbers above.
    #[arg(long)]
    pub(crate) no_worse_than_champion: bool,
    /// Device, precision and batching of both bundles.
    #[command(flatten)]
    pub(crate) runtime: RuntimeArgs,
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
}

/// Compares a challenger bundle with the champion and applies the gates.
pub(crate) fn run_compare(args: &CompareArgs) -> Result<()> {
    let (champion, challenger) = (
        args.runtime.load(&args.champion)?,
        args.runtime.load(&args.challenger)?,
    );
    let mut files = Vec::new();
    for data in &args.data {
        let evaluate = |bundle: &Bundle| -> Result<report::Evaluated> {
            let options = EvalOptions {
                score: args.runtime.score_options(),
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
pub(crate) struct CheckPrecisionArgs {
    /// Bundle directory.
    #[arg(long, default_value = DEFAULT_BUNDLE)]
    pub(crate) bundle: PathBuf,
    /// Labeled sessions file.
    #[arg(long, default_value = "data/default/test.jsonl")]
    pub(crate) data: PathBuf,
    /// Precisions to check against f32 (comma-separated; default: every
    /// one this CPU runs).
    #[arg(long, value_delimiter = ',')]
    pub(crate) precisions: Vec<Precision>,
    /// Sessions per inference batch.
    #[arg(long, default_value_t = 32)]
    pub(crate) batch_size: usize,
    /// Largest ROC-AUC loss against f32.
    #[arg(long, default_value_t = ContractLimits::default().max_auc_drop)]
    pub(crate) max_auc_drop: f64,
    /// Smallest share of sessions flagged the same as in f32.
    #[arg(long, default_value_t = ContractLimits::default().min_flag_agreement)]
    pub(crate) min_flag_agreement: f64,
    /// Largest absolute score difference from f32.
    #[arg(long, default_value_t = ContractLimits::default().max_score_diff)]
    pub(crate) max_score_diff: f32,
    /// Also write the results as JSON here.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

/// Checks each reduced precision against f32 and prints the table.
pub(crate) fn run_check_precision(args: &CheckPrecisionArgs) -> Result<()> {
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
