//! `score`, `cluster` and `eval`: batch scoring, coordination discovery
//! and the evaluation report.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use datasets::{DataError, RecordSink, Session};
use models::account_model::AccountVerdict;
use models::bundle::{BundleMetadata, METADATA_FILE};
use train::{
    accounts::{AccountReport, VerdictTally},
    baseline::BaselineConfig,
    cluster::{discover, ClusterArgs, Discovery},
    report::{self, evaluate_file, EvalOptions, EvalReport},
    score::{score_all, score_sessions},
    shard::Shard,
    verdicts::judge_window,
};

use super::args::{InputArgs, ModelArgs};

/// What `eval` scores and where its report goes.
#[derive(Args, Clone)]
pub(crate) struct EvalArgs {
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    /// Labeled sessions file.
    #[arg(long, default_value = "data/default/test.jsonl")]
    pub(crate) data: PathBuf,
    /// Output folder (replaced atomically).
    #[arg(long, default_value = "artifacts/eval")]
    pub(crate) out: PathBuf,
    /// Labeled file the TF-IDF baseline is fitted on [default: the
    /// bundle's training file].
    #[arg(long)]
    pub(crate) baseline_train: Option<PathBuf>,
    /// Skip the baseline.
    #[arg(long, conflicts_with = "baseline_train")]
    pub(crate) no_baseline: bool,
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
}

/// Streams the scores of every session of `input` (or of one shard of
/// its accounts) into `output`.
pub(crate) fn run_score(input: &InputArgs, output: &Path, shard: Option<Shard>) -> Result<()> {
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
        score_sessions(
            &bundle,
            sessions,
            &input.model.runtime.score_options(),
            |chunk| {
                for s in &chunk {
                    let record = s.record(threshold);
                    flagged += usize::from(record.flagged);
                    writer.write(&record)?;
                }
                bar.inc(chunk.len() as u64);
                Ok(())
            },
        )
    })?;
    bar.finish_and_clear();
    writer.finish()?;
    println!(
        "{n} sessions scored, {flagged} flagged at threshold {threshold:.6}; scores in {}",
        output.display()
    );
    Ok(())
}

/// Scores `input`, clusters its sessions and writes the clusters, the
/// account verdicts and the campaign map (when the bundle has an account
/// scorer) into `out`.
pub(crate) fn run_cluster(input: &InputArgs, out: &Path, cluster: &ClusterArgs) -> Result<()> {
    let bundle = input.model.load()?;
    let params = cluster.params(&bundle.threshold)?;
    let threshold = bundle.threshold.threshold;
    let bar = train::progress::counter("scoring", "sessions");
    let options = input.model.runtime.score_options();
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

/// Prints what coordination discovery found.
pub(crate) fn print_discovery(d: &Discovery) {
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

/// Evaluates the bundle on a labeled file, writes the report and prints
/// its headline numbers.
pub(crate) fn run_eval(args: &EvalArgs) -> Result<EvalReport> {
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
        score: args.model.runtime.score_options(),
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

/// Prints the account verdicts per benign archetype and per campaign.
pub(crate) fn print_account_verdicts(a: &AccountReport) {
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
        println!("  session recall at 0.1% session FPR, sessions ranked by their account's verdict, then score: {r:.4}");
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
pub(crate) fn record_test_metrics(bundle_dir: &Path, report: &EvalReport) -> Result<()> {
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
