//! Champion against challenger (`train compare`): both bundles evaluated
//! on the same labeled files, their session, account and campaign numbers
//! side by side, the sessions and accounts whose verdict changed, and the
//! promotion gates the user sets. A pipeline refuses a promotion when a
//! gate fails (the command then exits non-zero).

use std::{collections::HashMap, path::Path};

use anyhow::{bail, Result};
use serde::Serialize;

use models::{account_model::AccountModel, bundle::Bundle};

use crate::{
    accounts::group_of,
    report::{document::Document, Evaluated},
};

/// The gates a challenger must pass on every file (each one optional).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Gates {
    /// Largest share of benign accounts with verdict `flag`.
    pub max_benign_account_fpr: Option<f64>,
    /// Smallest share of extraction accounts with verdict `flag`.
    pub min_extraction_account_recall: Option<f64>,
    /// Largest benign session false-positive rate at the bundle threshold.
    pub max_benign_session_fpr: Option<f64>,
    /// The challenger must do no worse than the champion on each of the
    /// numbers above (benign shares no higher, extraction recall no lower).
    pub no_worse_than_champion: bool,
}

/// The numbers one bundle reached on one file.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    /// Bundle directory.
    pub bundle: String,
    /// Session threshold.
    pub threshold: f32,
    /// Benign session FPR the threshold gave on validation.
    pub threshold_validation_fpr: f64,
    /// Account `flag` and `review` thresholds with the benign account
    /// FPRs they gave on validation (none without an account scorer).
    pub account_thresholds: Option<[(f32, f64); 2]>,
    /// Session ROC-AUC.
    pub roc_auc: Option<f64>,
    /// Session recall at 0.1% benign session FPR.
    pub recall_at_0_1pct_fpr: Option<f64>,
    /// Benign session false-positive rate at the bundle threshold.
    pub benign_session_fpr: f64,
    /// Share of benign accounts flagged (none without an account scorer).
    pub benign_account_fpr: Option<f64>,
    /// Share of benign accounts flagged or sent to review.
    pub benign_account_flag_or_review: Option<f64>,
    /// Share of extraction accounts flagged.
    pub extraction_account_recall: Option<f64>,
    /// `flag` share per benign archetype and per campaign.
    pub account_flag_share: Vec<(String, f64)>,
    /// Campaign ARI over extraction accounts.
    pub campaign_ari: Option<f64>,
    /// Score drift against its validation scores.
    pub psi: Option<f64>,
}

/// A session or account whose verdict changed.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// Session or account id.
    pub id: String,
    /// Campaign or archetype (`benign` / `extraction` without one).
    pub group: String,
    /// Champion's verdict and score.
    pub champion: (String, f32),
    /// Challenger's verdict and score.
    pub challenger: (String, f32),
    /// A prompt of it, cut to 160 characters.
    pub prompt: String,
}

/// One gate on one file.
#[derive(Debug, Clone, Serialize)]
pub struct GateResult {
    /// What it checks.
    pub gate: String,
    /// The file.
    pub file: String,
    /// The champion's value.
    pub champion: Option<f64>,
    /// The challenger's value.
    pub challenger: Option<f64>,
    /// Whether the challenger passed.
    pub passed: bool,
}

/// Both bundles on one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileComparison {
    /// The labeled file.
    pub file: String,
    /// The champion's numbers.
    pub champion: Side,
    /// The challenger's numbers.
    pub challenger: Side,
    /// Sessions flagged by one bundle and not the other.
    pub changed_sessions: Vec<Change>,
    /// Accounts whose verdict changed (bundles with account scorers).
    pub changed_accounts: Vec<Change>,
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Per file.
    pub files: Vec<FileComparison>,
    /// The gates set.
    pub gates: Gates,
    /// Every gate on every file.
    pub results: Vec<GateResult>,
    /// Whether the challenger passed them all.
    pub passed: bool,
}

fn side(bundle: &Bundle, e: &Evaluated) -> Result<Side> {
    let r = &e.report;
    let account_thresholds = AccountModel::load(&bundle.dir)?.map(|m| {
        [
            (m.flag.threshold, m.flag.validation_fpr),
            (m.review.threshold, m.review.validation_fpr),
        ]
    });
    let accounts = r.account_verdicts.as_ref();
    let account_flag_share = accounts.map_or_else(Vec::new, |a| {
        a.benign
            .iter()
            .chain(&a.campaigns)
            .map(|(g, t)| (g.clone(), t.flag_share()))
            .collect()
    });
    Ok(Side {
        bundle: r.bundle.dir.clone(),
        threshold: r.evaluation.threshold,
        threshold_validation_fpr: bundle.threshold.validation_fpr,
        account_thresholds,
        roc_auc: r.ranking.roc_auc,
        recall_at_0_1pct_fpr: r.ranking.recall_at_0_1pct_fpr,
        benign_session_fpr: r.evaluation.false_positive_rate,
        benign_account_fpr: accounts.map(|a| a.benign_total.flag_share()),
        benign_account_flag_or_review: accounts.map(|a| a.benign_total.flag_or_review_share()),
        extraction_account_recall: accounts.map(|a| a.extraction_total.flag_share()),
        account_flag_share,
        campaign_ari: accounts
            .and_then(|a| a.campaign_quality.as_ref())
            .map(|q| q.adjusted_rand_index),
        psi: r.score_drift.as_ref().map(|d| d.psi),
    })
}

fn cut(text: &str) -> String {
    text.chars().take(160).collect()
}

fn changed_sessions(champion: &Evaluated, challenger: &Evaluated) -> Result<Vec<Change>> {
    let (t_a, t_b) = (
        champion.report.evaluation.threshold,
        challenger.report.evaluation.threshold,
    );
    let verdict = |flagged: bool| if flagged { "flag" } else { "clear" }.to_string();
    let mut out = Vec::new();
    for (a, b) in champion.scored.iter().zip(&challenger.scored) {
        if a.session.session_id != b.session.session_id {
            bail!("the two evaluations read the file in different orders");
        }
        let (fa, fb) = (a.score >= t_a, b.score >= t_b);
        if fa != fb {
            let s = &a.session;
            out.push(Change {
                id: s.session_id.clone(),
                // `evaluate_file` reads labeled files only.
                group: group_of(s).unwrap_or_else(|| "unlabeled".into()),
                champion: (verdict(fa), a.score),
                challenger: (verdict(fb), b.score),
                prompt: s.events.first().map_or(String::new(), |e| cut(&e.prompt)),
            });
        }
    }
    Ok(out)
}

fn changed_accounts(champion: &Evaluated, challenger: &Evaluated) -> Vec<Change> {
    let (Some(a), Some(b)) = (&champion.verdicts, &challenger.verdicts) else {
        return Vec::new();
    };
    let mut prompt: HashMap<&str, &str> = HashMap::new();
    for s in &champion.scored {
        let first = s.session.events.first().map_or("", |e| e.prompt.as_str());
        prompt.entry(s.session.account_id.as_str()).or_insert(first);
    }
    let theirs: HashMap<&str, _> = b
        .decisions
        .iter()
        .map(|d| (d.account_id.as_str(), d))
        .collect();
    a.decisions
        .iter()
        .zip(&a.rows)
        .filter_map(|(d, row)| {
            let other = theirs.get(d.account_id.as_str())?;
            (other.verdict != d.verdict).then(|| Change {
                id: d.account_id.clone(),
                group: row.group.clone(),
                champion: (d.verdict.as_str().into(), d.score),
                challenger: (other.verdict.as_str().into(), other.score),
                prompt: cut(prompt.get(d.account_id.as_str()).copied().unwrap_or("")),
            })
        })
        .collect()
}

/// Compares the two bundles' evaluations of one file.
pub fn compare_file(
    file: &Path,
    champion: (&Bundle, &Evaluated),
    challenger: (&Bundle, &Evaluated),
) -> Result<FileComparison> {
    Ok(FileComparison {
        file: file.display().to_string(),
        champion: side(champion.0, champion.1)?,
        challenger: side(challenger.0, challenger.1)?,
        changed_sessions: changed_sessions(champion.1, challenger.1)?,
        changed_accounts: changed_accounts(champion.1, challenger.1),
    })
}

/// One gate: what it checks, the value it reads, whether lower is
/// better, and the user's limit.
struct GateCheck {
    name: &'static str,
    value: fn(&Side) -> Option<f64>,
    lower_is_better: bool,
    limit: Option<f64>,
}

fn gate_checks(gates: &Gates) -> [GateCheck; 3] {
    [
        GateCheck {
            name: "benign accounts flagged",
            value: |s| s.benign_account_fpr,
            lower_is_better: true,
            limit: gates.max_benign_account_fpr,
        },
        GateCheck {
            name: "extraction accounts flagged",
            value: |s| s.extraction_account_recall,
            lower_is_better: false,
            limit: gates.min_extraction_account_recall,
        },
        GateCheck {
            name: "benign session FPR",
            value: |s| Some(s.benign_session_fpr),
            lower_is_better: true,
            limit: gates.max_benign_session_fpr,
        },
    ]
}

/// Every gate set, on every file.
pub fn judge(files: &[FileComparison], gates: &Gates) -> Vec<GateResult> {
    let mut out = Vec::new();
    for f in files {
        for GateCheck {
            name,
            value,
            lower_is_better,
            limit,
        } in gate_checks(gates)
        {
            let (a, b) = (value(&f.champion), value(&f.challenger));
            let within = |x: f64, bound: f64| {
                if lower_is_better {
                    x <= bound
                } else {
                    x >= bound
                }
            };
            if let Some(limit) = limit {
                let word = if lower_is_better {
                    "at most"
                } else {
                    "at least"
                };
                out.push(GateResult {
                    gate: format!("{name}: {word} {limit}"),
                    file: f.file.clone(),
                    champion: a,
                    challenger: b,
                    passed: b.is_some_and(|b| within(b, limit)),
                });
            }
            if gates.no_worse_than_champion {
                out.push(GateResult {
                    gate: format!("{name}: no worse than the champion"),
                    file: f.file.clone(),
                    champion: a,
                    challenger: b,
                    passed: match (a, b) {
                        (Some(a), Some(b)) => within(b, a),
                        (None, _) => true,
                        (Some(_), None) => false,
                    },
                });
            }
        }
    }
    out
}

/// The comparison of all files under `gates`.
pub fn comparison(files: Vec<FileComparison>, gates: Gates) -> Comparison {
    let results = judge(&files, &gates);
    Comparison {
        passed: results.iter().all(|r| r.passed),
        files,
        gates,
        results,
    }
}

fn pct(x: Option<f64>) -> String {
    x.map_or("n/a".into(), |x| format!("{:.2}%", 100.0 * x))
}

fn num(x: Option<f64>) -> String {
    x.map_or("n/a".into(), |x| format!("{x:.4}"))
}

fn side_rows(a: &Side, b: &Side) -> Vec<Vec<String>> {
    let thresholds = |s: &Side| {
        s.account_thresholds.map_or("n/a".into(), |[f, r]| {
            format!(
                "flag {:.4} ({}), review {:.4} ({})",
                f.0,
                pct(Some(f.1)),
                r.0,
                pct(Some(r.1))
            )
        })
    };
    let row = |name: &str, f: &dyn Fn(&Side) -> String| vec![name.to_string(), f(a), f(b)];
    let mut rows = vec![
        row("session threshold (validation FPR)", &|s| {
            format!(
                "{:.6} ({})",
                s.threshold,
                pct(Some(s.threshold_validation_fpr))
            )
        }),
        row("account thresholds (validation FPR)", &thresholds),
        row("session ROC-AUC", &|s| num(s.roc_auc)),
        row("session recall at 0.1% FPR", &|s| {
            num(s.recall_at_0_1pct_fpr)
        }),
        row("benign session FPR at the threshold", &|s| {
            pct(Some(s.benign_session_fpr))
        }),
        row("benign accounts flagged", &|s| pct(s.benign_account_fpr)),
        row("benign accounts flagged or reviewed", &|s| {
            pct(s.benign_account_flag_or_review)
        }),
        row("extraction accounts flagged", &|s| {
            pct(s.extraction_account_recall)
        }),
        row("campaign ARI", &|s| num(s.campaign_ari)),
        row("score drift (PSI)", &|s| num(s.psi)),
    ];
    for (group, share) in &a.account_flag_share {
        let theirs = b
            .account_flag_share
            .iter()
            .find(|(g, _)| g == group)
            .map(|x| x.1);
        rows.push(vec![
            format!("`{group}` accounts flagged"),
            pct(Some(*share)),
            pct(theirs),
        ]);
    }
    rows
}

fn change_rows(changes: &[Change]) -> Vec<Vec<String>> {
    changes
        .iter()
        .take(50)
        .map(|c| {
            vec![
                c.id.clone(),
                c.group.clone(),
                format!("{} ({:.3})", c.champion.0, c.champion.1),
                format!("{} ({:.3})", c.challenger.0, c.challenger.1),
                c.prompt.clone(),
            ]
        })
        .collect()
}

/// The comparison as a report document.
pub fn document(c: &Comparison) -> Document {
    let mut d = Document::new("distill-guard: champion against challenger");
    let failed = c.results.iter().filter(|r| !r.passed).count();
    d.paragraph(match (c.results.is_empty(), failed) {
        (true, _) => "Verdict: no gate was set.".to_string(),
        (false, 0) => format!(
            "Verdict: the challenger passes all {} gates.",
            c.results.len()
        ),
        (false, n) => format!(
            "Verdict: the challenger fails {n} of {} gates.",
            c.results.len()
        ),
    });
    if !c.results.is_empty() {
        let rows = c.results.iter().map(|r| {
            let verdict = if r.passed { "pass" } else { "FAIL" };
            vec![
                r.gate.clone(),
                r.file.clone(),
                pct(r.champion),
                pct(r.challenger),
                verdict.into(),
            ]
        });
        d.table(
            &["gate", "file", "champion", "challenger", ""],
            rows.collect(),
        );
    }
    let header = ["id", "group", "champion", "challenger", "prompt"];
    for f in &c.files {
        d.heading(format!("`{}`", f.file));
        d.table(
            &["", &f.champion.bundle, &f.challenger.bundle],
            side_rows(&f.champion, &f.challenger),
        );
        d.paragraph(format!(
            "{} sessions changed verdict at their bundle's threshold (first 50 below).",
            f.changed_sessions.len()
        ));
        d.table(&header, change_rows(&f.changed_sessions));
        d.paragraph(format!(
            "{} accounts changed verdict (first 50 below).",
            f.changed_accounts.len()
        ));
        d.table(&header, change_rows(&f.changed_accounts));
    }
    d
}

/// Writes `compare.json`, `compare.md` and `compare.html` into `dir`
/// atomically.
pub fn write(c: &Comparison, dir: &Path) -> Result<()> {
    let doc = document(c);
    datasets::writer::replace_dir(dir, crate::data::io_error, |staging| {
        std::fs::write(staging.join("compare.json"), serde_json::to_vec_pretty(c)?)?;
        std::fs::write(staging.join("compare.md"), doc.to_markdown())?;
        std::fs::write(staging.join("compare.html"), doc.to_html())?;
        Ok(())
    })?;
    Ok(())
}
