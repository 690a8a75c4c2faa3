//! `train eval`: the offline evaluation report of a bundle on a labeled
//! sessions file. It scores every session (keeping embeddings), discovers
//! coordinated clusters, propagates to accounts, fits the TF-IDF baseline
//! on the training file, and writes one output folder atomically:
//!
//! | file | holds |
//! |---|---|
//! | `report.html` | the report, self-contained (inline SVG plots) |
//! | `report.md` | the same report as Markdown (plots named, not drawn) |
//! | `metrics.json` | every number of the report ([`EvalReport`]) |
//! | `scores.jsonl` | one line per session: score, flag, cluster, reasons |
//! | `clusters.json` | the cluster table |
//! | `accounts.jsonl` | one verdict per account (session threshold and propagation) |
//! | `account_verdicts.jsonl` | the account scorer's score, verdict, campaign, reasons and evidence per account |
//! | `campaigns.json` | the campaigns found and their evidence |
//! | `campaign_map.json` | flagged and reviewed accounts for `serve` (`--campaign-map`) |
//!
//! The last three need a bundle with an account scorer (`train accounts`).

pub mod detection;
pub mod document;
pub mod plots;
mod render;
mod verdict_section;

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context, Result};
use datasets::{sha256_file, Session};
use models::bundle::Bundle;
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::{
    accounts::AccountReport,
    baseline::{Baseline, BaselineConfig},
    cluster::{
        discover,
        quality::{cluster_quality, ClusterQuality},
        Discovery, StageTimings, ValidClusterParams,
    },
    data::read_labeled,
    evaluate::{positives, Evaluation},
    metrics::{calibration, histogram, recall_at_fpr, CalibrationBin},
    score::{score_all, ScoreOptions, ScoredSession},
    verdicts::{judge_window, WindowVerdicts},
};
use detection::{detection, Detection};

/// Bins of the score histograms and the calibration curve.
pub const SCORE_BINS: usize = 20;
/// Calibration bins.
pub const CALIBRATION_BINS: usize = 10;

/// How `train eval` runs.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Batch scoring.
    pub score: ScoreOptions,
    /// Clustering and propagation.
    pub cluster: ValidClusterParams,
    /// Labeled file the baseline is fitted on (`None`: no baseline).
    pub baseline_train: Option<PathBuf>,
    /// Baseline settings.
    pub baseline: BaselineConfig,
}

/// Threshold-free ranking metrics plus recall at fixed false-positive rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankingMetrics {
    /// ROC-AUC.
    pub roc_auc: Option<f64>,
    /// PR-AUC (average precision).
    pub pr_auc: Option<f64>,
    /// Recall with the threshold at 1% benign false positives.
    pub recall_at_1pct_fpr: Option<f64>,
    /// Recall with the threshold at 0.1% benign false positives.
    pub recall_at_0_1pct_fpr: Option<f64>,
}

impl RankingMetrics {
    /// Metrics of `scores` against labels.
    pub fn of(scores: &[f32], positive: &[bool]) -> Self {
        RankingMetrics {
            roc_auc: crate::metrics::roc_auc(scores, positive),
            pr_auc: crate::metrics::average_precision(scores, positive),
            recall_at_1pct_fpr: recall_at_fpr(scores, positive, 0.01),
            recall_at_0_1pct_fpr: recall_at_fpr(scores, positive, 0.001),
        }
    }
}

/// The baseline's part of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineReport {
    /// What it is.
    pub description: String,
    /// File it was fitted on.
    pub train_file: String,
    /// Sessions it was fitted on.
    pub train_sessions: usize,
    /// TF-IDF vocabulary size.
    pub vocabulary: usize,
    /// Its metrics on the evaluated file.
    pub metrics: RankingMetrics,
    /// Seconds to fit.
    pub fit_seconds: f64,
}

/// Clustering results of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusteringReport {
    /// Parameters used.
    pub params: serde_json::Value,
    /// eps used.
    pub eps: f64,
    /// eps suggested by the k-distance curve, when asked for.
    pub eps_suggested: Option<f64>,
    /// Dimensions DBSCAN ran in.
    pub dims: usize,
    /// Clusters found.
    pub clusters: usize,
    /// Clusters spanning at least `min_accounts` accounts.
    pub coordinated_clusters: usize,
    /// Sessions left as noise.
    pub noise_sessions: usize,
    /// Against ground truth over all sessions: each campaign is a class,
    /// benign sessions one more class; noise is one cluster.
    pub quality_all: ClusterQuality,
    /// The same over extraction sessions only.
    pub quality_extraction: ClusterQuality,
    /// Seconds per stage.
    pub timings: StageTimings,
}

/// The bundle a report evaluates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleInfo {
    /// Directory.
    pub dir: String,
    /// Name.
    pub name: String,
    /// distill-guard version that wrote it.
    pub version: String,
    /// Base model.
    pub base_model: String,
    /// When it was created.
    pub created_at: String,
    /// Precision of the encoder's linear layers in this run.
    #[serde(default)]
    pub precision: models::Precision,
    /// The kernels that scored, in words (empty in older reports).
    #[serde(default)]
    pub kernels: String,
}

/// Everything `metrics.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// When the report was written.
    pub created_at: String,
    /// The bundle.
    pub bundle: BundleInfo,
    /// Session-level results at the bundle's threshold, per archetype.
    pub evaluation: Evaluation,
    /// The model's ranking metrics.
    pub ranking: RankingMetrics,
    /// The baseline, when fitted.
    pub baseline: Option<BaselineReport>,
    /// Calibration curve.
    pub calibration: Vec<CalibrationBin>,
    /// Benign session scores per bin ([`SCORE_BINS`] on [0, 1]).
    pub benign_histogram: Vec<usize>,
    /// Extraction session scores per bin.
    pub extraction_histogram: Vec<usize>,
    /// Account-level detection, by sessions and after propagation.
    pub detection: Detection,
    /// Clustering.
    pub clustering: ClusteringReport,
    /// Account verdicts of the bundle's account scorer (none when the
    /// bundle has no `account_model.json`).
    #[serde(default)]
    pub account_verdicts: Option<AccountReport>,
    /// The file's scores against the bundle's validation scores (none
    /// when the bundle has no score reference).
    #[serde(default)]
    pub score_drift: Option<ScoreDrift>,
    /// Seconds spent scoring.
    pub scoring_seconds: f64,
    /// Sessions scored per second.
    pub sessions_per_second: f64,
}

/// Score drift of a file: its share of sessions in each bin of the
/// bundle's validation score reference, and their PSI (models::drift).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreDrift {
    /// Population stability index.
    pub psi: f64,
    /// Inner bin edges of the reference.
    pub edges: Vec<f32>,
    /// Validation share per bin.
    pub reference_shares: Vec<f64>,
    /// This file's share per bin.
    pub shares: Vec<f64>,
}

impl ScoreDrift {
    /// The drift of `scores` against `reference`; `None` without a
    /// finite score.
    pub fn of(reference: &models::drift::ScoreReference, scores: &[f32]) -> Option<Self> {
        let counts = reference.counts(scores);
        let psi = reference.psi_of_counts(&counts)?;
        let total = counts.iter().sum::<u64>() as f64;
        Some(ScoreDrift {
            psi,
            edges: reference.edges.clone(),
            reference_shares: reference.shares.clone(),
            shares: counts.iter().map(|&c| c as f64 / total).collect(),
        })
    }
}

/// Output file names.
pub const REPORT_HTML: &str = "report.html";
/// Markdown report.
pub const REPORT_MD: &str = "report.md";
/// Metrics.
pub const METRICS_JSON: &str = "metrics.json";

fn clustering_report(discovery: &Discovery, sessions: &[&Session]) -> Result<ClusteringReport> {
    let truth: Vec<&str> = sessions
        .iter()
        .map(|s| match (&s.label, &s.campaign_id) {
            (Some(datasets::Label::Extraction), Some(c)) => c.as_str(),
            (Some(datasets::Label::Extraction), None) => "extraction",
            _ => "benign",
        })
        .collect();
    let extraction: Vec<usize> = (0..sessions.len())
        .filter(|&i| truth[i] != "benign")
        .collect();
    let pick = |idx: &[usize]| -> (Vec<&str>, Vec<Option<usize>>) {
        idx.iter().map(|&i| (truth[i], discovery.labels[i])).unzip()
    };
    let (t_ext, p_ext) = pick(&extraction);
    Ok(ClusteringReport {
        params: serde_json::to_value(&discovery.params)?,
        eps: discovery.eps,
        eps_suggested: discovery.eps_suggested,
        dims: discovery.dims,
        clusters: discovery.clusters.len(),
        coordinated_clusters: discovery
            .clusters
            .iter()
            .filter(|c| c.verdict.is_coordinated())
            .count(),
        noise_sessions: discovery.labels.iter().filter(|l| l.is_none()).count(),
        quality_all: cluster_quality(&truth, &discovery.labels),
        quality_extraction: cluster_quality(&t_ext, &p_ext),
        timings: discovery.timings.clone(),
    })
}

/// Everything computed for a report, before it is written.
pub struct Evaluated {
    /// The numbers.
    pub report: EvalReport,
    /// Scored sessions, in file order.
    pub scored: Vec<ScoredSession>,
    /// Baseline scores (parallel to `scored`), when fitted.
    pub baseline_scores: Option<Vec<f32>>,
    /// Clusters and account verdicts.
    pub discovery: Discovery,
    /// Account verdicts and campaigns, when the bundle has an account
    /// scorer.
    pub verdicts: Option<WindowVerdicts>,
}

/// Runs the evaluation of `bundle` on the labeled file `data`.
pub fn evaluate_file(bundle: &Bundle, data: &Path, options: &EvalOptions) -> Result<Evaluated> {
    let sessions = read_labeled(data)?;
    let sha256 = sha256_file(data)?;
    let started = Instant::now();
    let n = sessions.len();
    let bar = crate::progress::bar(n as u64, "scoring");
    let scored = score_all(bundle, sessions.into_iter().map(Ok), &options.score, &bar)?;
    let scoring_seconds = started.elapsed().as_secs_f64();
    info!(sessions = n, seconds = scoring_seconds, "scored");

    let threshold = bundle.threshold.threshold;
    let refs: Vec<&Session> = scored.iter().map(|s| &s.session).collect();
    let scores: Vec<f32> = scored.iter().map(|s| s.score).collect();
    let positive = positives(&refs);
    let evaluation = Evaluation::of(data, sha256, &refs, &scores, threshold);

    let discovery = discover(&scored, threshold, &options.cluster).context("clustering")?;
    info!(
        clusters = discovery.clusters.len(),
        eps = discovery.eps,
        "clustered"
    );

    let (baseline, baseline_scores) = match &options.baseline_train {
        Some(path) => {
            let started = Instant::now();
            let train = read_labeled(path).with_context(|| {
                format!("reading the baseline's training file {}", path.display())
            })?;
            let model = Baseline::fit(&train, &options.baseline)?;
            let fit_seconds = started.elapsed().as_secs_f64();
            let b_scores = model.score(&refs)?;
            info!(seconds = fit_seconds, "baseline fitted");
            let report = BaselineReport {
                description: format!(
                    "TF-IDF over word {}-{} grams (the {} found in the most sessions) of at most {} prompts per session + standardised behavioural features, L2 logistic regression (alpha {})",
                    options.baseline.ngrams.0,
                    options.baseline.ngrams.1,
                    options.baseline.max_features,
                    options.baseline.max_prompts,
                    options.baseline.alpha
                ),
                train_file: path.display().to_string(),
                train_sessions: train.len(),
                vocabulary: model.vocabulary(),
                metrics: RankingMetrics::of(&b_scores, &positive),
                fit_seconds,
            };
            (Some(report), Some(b_scores))
        }
        None => (None, None),
    };

    let benign: Vec<f32> = scores
        .iter()
        .zip(&positive)
        .filter(|(_, &p)| !p)
        .map(|(&s, _)| s)
        .collect();
    let extraction: Vec<f32> = scores
        .iter()
        .zip(&positive)
        .filter(|(_, &p)| p)
        .map(|(&s, _)| s)
        .collect();
    let verdicts = judge_window(bundle, &scored, &options.cluster)?;
    let m = &bundle.metadata;
    let report = EvalReport {
        created_at: datasets::schema::timestamp::format(&chrono::Utc::now()),
        bundle: BundleInfo {
            dir: bundle.dir.display().to_string(),
            name: m.name.clone(),
            version: m.version.clone(),
            base_model: m.base_model.clone(),
            created_at: m.created_at.clone(),
            precision: bundle.precision(),
            kernels: bundle.kernels().to_string(),
        },
        ranking: RankingMetrics::of(&scores, &positive),
        baseline,
        calibration: calibration(&scores, &positive, CALIBRATION_BINS),
        benign_histogram: histogram(benign, SCORE_BINS),
        extraction_histogram: histogram(extraction, SCORE_BINS),
        detection: detection(&refs, &discovery.accounts),
        clustering: clustering_report(&discovery, &refs)?,
        account_verdicts: verdicts.as_ref().map(|v| v.report.clone()),
        score_drift: bundle
            .threshold
            .score_reference
            .as_ref()
            .and_then(|r| ScoreDrift::of(r, &scores)),
        scoring_seconds,
        sessions_per_second: n as f64 / scoring_seconds.max(1e-9),
        evaluation,
    };
    Ok(Evaluated {
        report,
        scored,
        baseline_scores,
        discovery,
        verdicts,
    })
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    std::fs::write(path, serde_json::to_vec_pretty(value)?)
        .with_context(|| format!("writing {}", path.display()))
}

impl Evaluated {
    /// Writes the output folder atomically (a failure leaves a previous
    /// report in `dir` intact). Returns the folder.
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        let threshold = self.report.evaluation.threshold;
        datasets::writer::replace_dir(dir, crate::data::io_error, |staging| {
            write_json(&staging.join(METRICS_JSON), &self.report)?;
            self.discovery
                .write_files(staging, &self.scored, threshold)?;
            if let Some(v) = &self.verdicts {
                v.write_files(staging)?;
            }
            let doc = render::document(self)?;
            std::fs::write(staging.join(REPORT_MD), doc.to_markdown())
                .context("writing report.md")?;
            std::fs::write(staging.join(REPORT_HTML), doc.to_html())
                .context("writing report.html")?;
            Ok(())
        })
    }
}
