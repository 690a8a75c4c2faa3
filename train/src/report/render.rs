//! Builds the report document (tables, plots, the reading notes a campaign
//! review needs) from an [`Evaluated`] run.

use anyhow::Result;

use super::{
    detection::{DetectionTotal, GroupDetection, LOW_AND_SLOW_REQUESTS},
    document::Document,
    plots::{self, Series},
    Evaluated, RankingMetrics,
};
use crate::{
    evaluate::positives,
    metrics::{pr_curve, roc_curve},
};

/// Clusters listed in the report's cluster table.
pub const CLUSTERS_SHOWN: usize = 25;

fn num(x: Option<f64>) -> String {
    x.map_or("n/a".into(), |x| format!("{x:.4}"))
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn ranking_row(name: &str, m: &RankingMetrics) -> Vec<String> {
    vec![
        name.to_string(),
        num(m.roc_auc),
        num(m.pr_auc),
        num(m.recall_at_1pct_fpr),
        num(m.recall_at_0_1pct_fpr),
    ]
}

fn group_rows(groups: &[GroupDetection], low_and_slow: bool) -> Vec<Vec<String>> {
    groups
        .iter()
        .map(|g| {
            let mut row = vec![
                g.group.clone(),
                g.accounts.to_string(),
                g.sessions.to_string(),
                format!("{:.1}", g.median_requests_per_account),
            ];
            if low_and_slow {
                row.push(
                    if g.median_requests_per_account <= LOW_AND_SLOW_REQUESTS {
                        "yes"
                    } else {
                        ""
                    }
                    .into(),
                );
            }
            row.push(format!(
                "{} ({})",
                g.flagged_by_sessions,
                pct(g.share_by_sessions)
            ));
            row.push(format!(
                "{} ({})",
                g.flagged_after_propagation,
                pct(g.share_after_propagation)
            ));
            row
        })
        .collect()
}

fn total_row(name: &str, t: &DetectionTotal) -> Vec<String> {
    vec![
        name.to_string(),
        t.accounts.to_string(),
        format!("{} ({})", t.flagged_by_sessions, pct(t.share_by_sessions)),
        format!(
            "{} ({})",
            t.flagged_after_propagation,
            pct(t.share_after_propagation)
        ),
    ]
}

/// The report document.
pub fn document(e: &Evaluated) -> Result<Document> {
    let mut d = Document::new(format!(
        "distill-guard evaluation: {}",
        e.report.bundle.name
    ));
    overview(&mut d, &e.report);
    session_section(&mut d, &e.report);
    curves(&mut d, e)?;
    archetype_tables(&mut d, &e.report.evaluation);
    account_section(&mut d, &e.report);
    cluster_section(&mut d, e);
    if let Some(v) = &e.verdicts {
        super::verdict_section::add(&mut d, v)?;
    }
    Ok(d)
}

/// The bundle, the file, the speed, the precision and the score drift.
fn overview(d: &mut Document, r: &super::EvalReport) {
    let ev = &r.evaluation;
    d.paragraph(format!(
        "Bundle `{}` (version {}, base model `{}`, created {}) on `{}` (sha256 `{}`): {} sessions, scored at {:.1} sessions/s in {} ({}). Report written {}.",
        r.bundle.dir,
        r.bundle.version,
        r.bundle.base_model,
        r.bundle.created_at,
        ev.file,
        &ev.sha256[..12.min(ev.sha256.len())],
        ev.metrics.sessions,
        r.sessions_per_second,
        r.bundle.precision,
        r.bundle.kernels,
        r.created_at
    ));
    d.paragraph(match &r.score_drift {
        Some(drift) => format!(
            "Score drift: population stability index {:.3} of this file's scores against the bundle's validation scores, in {} bins of equal validation count ({}).",
            drift.psi,
            drift.reference_shares.len(),
            models::drift::reading(drift.psi)
        ),
        None => "Score drift: the bundle has no validation score reference (written before drift was recorded).".into(),
    });
}

/// Ranking metrics of the model (and the baseline) and the confusion at
/// the saved threshold.
fn session_section(d: &mut Document, r: &super::EvalReport) {
    let ev = &r.evaluation;
    d.heading("Session-level detection");
    let mut rows = vec![ranking_row("transformer (this bundle)", &r.ranking)];
    if let Some(b) = &r.baseline {
        rows.push(ranking_row(
            "baseline: TF-IDF + features, logistic regression",
            &b.metrics,
        ));
    }
    d.table(
        &[
            "model",
            "ROC-AUC",
            "PR-AUC",
            "recall at 1% FPR",
            "recall at 0.1% FPR",
        ],
        rows,
    );
    match &r.baseline {
        Some(b) => d.paragraph(format!(
            "Baseline: {}; fitted on `{}` ({} sessions, vocabulary {}) in {:.1} s. Recall at a fixed FPR sets each model's threshold on this file's own benign scores; the saved threshold below is the bundle's, chosen on validation.",
            b.description, b.train_file, b.train_sessions, b.vocabulary, b.fit_seconds
        )),
        None => d.paragraph("No baseline was fitted for this report."),
    }
    let c = &ev.confusion;
    d.table(
        &["at the saved threshold", "value"],
        vec![
            vec!["threshold".into(), format!("{:.6}", ev.threshold)],
            vec!["recall".into(), format!("{:.4}", ev.recall)],
            vec![
                "benign false-positive rate".into(),
                format!("{:.5}", ev.false_positive_rate),
            ],
            vec![
                "true positives / false positives".into(),
                format!("{} / {}", c.true_positives, c.false_positives),
            ],
            vec![
                "true negatives / false negatives".into(),
                format!("{} / {}", c.true_negatives, c.false_negatives),
            ],
        ],
    );
}

/// ROC, precision-recall, calibration and score histograms.
fn curves(d: &mut Document, e: &Evaluated) -> Result<()> {
    let r = &e.report;
    let positive = positives(&e.scored.iter().map(|s| &s.session).collect::<Vec<_>>());
    let scores: Vec<f32> = e.scored.iter().map(|s| s.score).collect();
    let model_roc = roc_curve(&scores, &positive);
    let model_pr = pr_curve(&scores, &positive);
    let (base_roc, base_pr) = match &e.baseline_scores {
        Some(b) => (roc_curve(b, &positive), pr_curve(b, &positive)),
        None => (Vec::new(), Vec::new()),
    };
    let mut roc_series = vec![Series {
        name: "transformer",
        points: &model_roc,
    }];
    let mut pr_series = vec![Series {
        name: "transformer",
        points: &model_pr,
    }];
    if e.baseline_scores.is_some() {
        roc_series.push(Series {
            name: "baseline",
            points: &base_roc,
        });
        pr_series.push(Series {
            name: "baseline",
            points: &base_pr,
        });
    }
    d.figure(
        "ROC curves; dashed lines mark 0.1% and 1% benign FPR",
        plots::roc(&roc_series)?,
    );
    d.figure(
        "Precision-recall curves",
        plots::precision_recall(&pr_series)?,
    );
    d.figure(
        "Calibration of the model's scores (10 bins)",
        plots::calibration(&r.calibration)?,
    );
    d.figure(
        "Score distribution per class",
        plots::score_histograms(&r.benign_histogram, &r.extraction_histogram)?,
    );
    Ok(())
}

/// Recall per extraction archetype, false-positive rate per benign one.
fn archetype_tables(d: &mut Document, ev: &crate::evaluate::Evaluation) {
    for (label, what) in [("extraction", "recall"), ("benign", "false-positive rate")] {
        d.heading(format!(
            "Sessions per {label} archetype, at the saved threshold"
        ));
        d.table(
            &["archetype", "sessions", "flagged", what],
            ev.archetypes
                .iter()
                .filter(|(_, a)| a.label == label)
                .map(|(name, a)| {
                    vec![
                        name.clone(),
                        a.sessions.to_string(),
                        a.flagged.to_string(),
                        format!("{:.4}", a.rate),
                    ]
                })
                .collect(),
        );
    }
}

/// Accounts flagged by sessions alone and after cluster propagation.
fn account_section(d: &mut Document, r: &super::EvalReport) {
    let det = &r.detection;
    d.heading("Accounts: sessions alone vs. cluster propagation");
    d.paragraph(format!(
        "An account is flagged by sessions when one of its sessions passes the saved threshold; propagation also flags an account with a session in a coordinated cluster (at least {} accounts) whose mean score is at least {:.3}. Low-and-slow campaigns: a median of at most {LOW_AND_SLOW_REQUESTS} requests per account in this file.",
        r.clustering.params["min_accounts"], r.clustering.params["propagation_threshold"].as_f64().unwrap_or(f64::NAN)
    ));
    let mut totals = vec![total_row("all extraction accounts", &det.extraction_total)];
    if let Some(low) = &det.low_and_slow {
        totals.push(total_row(
            &format!("low-and-slow campaigns ({})", low.groups.join(", ")),
            low,
        ));
    }
    totals.push(total_row(
        "benign accounts (false positives)",
        &det.benign_total,
    ));
    d.table(
        &[
            "accounts",
            "count",
            "flagged by sessions",
            "flagged after propagation",
        ],
        totals,
    );
    d.table(
        &[
            "campaign",
            "accounts",
            "sessions",
            "median requests / account",
            "low-and-slow",
            "flagged by sessions",
            "after propagation",
        ],
        group_rows(&det.campaigns, true),
    );
    d.table(
        &[
            "benign archetype",
            "accounts",
            "sessions",
            "median requests / account",
            "flagged by sessions",
            "after propagation",
        ],
        group_rows(&det.benign, false),
    );
}

/// The clustering, its agreement with the campaigns and the largest
/// clusters.
fn cluster_section(d: &mut Document, e: &Evaluated) {
    let r = &e.report;
    let cl = &r.clustering;
    d.heading("Coordination clusters");
    let blocks = cl.params["blocks"].as_u64().filter(|&b| b > 1);
    let (method, suggested_by) = match blocks {
        Some(b) => (
            format!("Blocked DBSCAN ({b} k-means blocks, each with its own PCA)"),
            "Otsu's split of the blocks' pooled k-distance curves",
        ),
        None => ("DBSCAN".to_string(), "the k-distance curve"),
    };
    d.paragraph(format!(
        "{method} with eps {:.4}{} in {} dimensions: {} clusters ({} coordinated), {} sessions left as noise. Stage seconds: points {:.2}, PCA {:.2}, eps {:.2}, DBSCAN {:.2}.",
        cl.eps,
        cl.eps_suggested
            .map_or(String::new(), |s| format!(" (suggested {s:.4} by {suggested_by})")),
        cl.dims,
        cl.clusters,
        cl.coordinated_clusters,
        cl.noise_sessions,
        cl.timings.points_s,
        cl.timings.pca_s,
        cl.timings.eps_s,
        cl.timings.dbscan_s
    ));
    d.table(
        &[
            "agreement with campaign_id",
            "sessions",
            "adjusted Rand index",
            "homogeneity",
            "completeness",
        ],
        [
            (
                "all sessions (benign = one class, noise = one cluster)",
                &cl.quality_all,
            ),
            ("extraction sessions", &cl.quality_extraction),
        ]
        .into_iter()
        .map(|(name, q)| {
            vec![
                name.to_string(),
                q.items.to_string(),
                format!("{:.4}", q.adjusted_rand_index),
                format!("{:.4}", q.homogeneity),
                format!("{:.4}", q.completeness),
            ]
        })
        .collect(),
    );
    d.paragraph(format!(
        "The {} clusters with the most accounts (all of them in `clusters.json`):",
        CLUSTERS_SHOWN.min(e.discovery.clusters.len())
    ));
    d.table(
        &[
            "cluster",
            "verdict",
            "accounts",
            "flagged by sessions / propagated",
            "sessions",
            "span (h)",
            "IPs / ASNs",
            "hosting ASN share",
            "mean / max score",
            "top template (prompts, accounts)",
        ],
        e.discovery
            .clusters
            .iter()
            .take(CLUSTERS_SHOWN)
            .map(|c| {
                vec![
                    c.cluster_id.to_string(),
                    serde_json::to_value(c.verdict)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default(),
                    c.accounts.to_string(),
                    format!(
                        "{} / {}",
                        c.accounts_flagged_by_sessions, c.accounts_propagated
                    ),
                    c.sessions.to_string(),
                    format!("{:.1}", c.span_hours),
                    format!("{} / {}", c.distinct_ips, c.distinct_asns),
                    pct(c.hosting_asn_share),
                    format!("{:.3} / {:.3}", c.mean_score, c.max_score),
                    c.top_templates
                        .first()
                        .map(|t| format!("`{}` ({}, {})", t.template, t.prompts, t.accounts))
                        .unwrap_or_default(),
                ]
            })
            .collect(),
    );
}
