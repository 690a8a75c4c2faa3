//! The accuracy contract of the reduced inference precisions: one bundle
//! scores one labeled file in f32 and in each other precision, and each
//! must keep the f32 ranking (ROC-AUC), the f32 decisions at the bundle's
//! threshold (flag agreement) and the f32 scores (largest difference).

use std::time::Instant;

use anyhow::Result;
use datasets::{Label, Session};
use models::{bundle::Bundle, Precision};
use serde::Serialize;

use crate::metrics::roc_auc;

/// The contract's limits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ContractLimits {
    /// Largest ROC-AUC loss against f32.
    pub max_auc_drop: f64,
    /// Smallest share of sessions whose flag (score >= threshold) matches
    /// f32.
    pub min_flag_agreement: f64,
    /// Largest absolute score difference from f32 on any session.
    pub max_score_diff: f32,
}

impl Default for ContractLimits {
    fn default() -> Self {
        ContractLimits {
            max_auc_drop: 0.002,
            min_flag_agreement: 0.995,
            max_score_diff: 0.1,
        }
    }
}

/// One precision's results against f32.
#[derive(Debug, Clone, Serialize)]
pub struct PrecisionCheck {
    /// The precision.
    pub precision: Precision,
    /// The kernels that ran, in words.
    pub kernels: String,
    /// ROC-AUC on the file.
    pub roc_auc: f64,
    /// This ROC-AUC minus f32's.
    pub auc_delta: f64,
    /// Share of sessions flagged the same as f32 at the bundle threshold.
    pub flag_agreement: f64,
    /// Largest absolute score difference from f32.
    pub max_score_diff: f32,
    /// 99th percentile of the absolute score differences from f32.
    pub p99_score_diff: f32,
    /// Sessions scored per second.
    pub sessions_per_second: f64,
    /// The limits it broke (empty: it keeps the contract).
    pub failures: Vec<String>,
}

/// Scores in `precision`, and the sessions per second.
fn scores_in(
    bundle: &mut Bundle,
    sessions: &[Session],
    precision: Precision,
    batch_size: usize,
) -> Result<(Vec<f32>, f64)> {
    bundle.set_precision(precision)?;
    let start = Instant::now();
    let scores = bundle
        .score(sessions, batch_size)?
        .into_iter()
        .map(|s| s.score)
        .collect();
    Ok((
        scores,
        sessions.len() as f64 / start.elapsed().as_secs_f64().max(1e-9),
    ))
}

/// Checks each of `precisions` (f32 is the reference and always runs
/// first) on labeled `sessions`; leaves the bundle in f32.
pub fn check_precisions(
    bundle: &mut Bundle,
    sessions: &[Session],
    precisions: &[Precision],
    limits: &ContractLimits,
    batch_size: usize,
) -> Result<Vec<PrecisionCheck>> {
    let positive: Vec<bool> = sessions
        .iter()
        .map(|s| s.label == Some(Label::Extraction))
        .collect();
    let (scores, speed) = scores_in(bundle, sessions, Precision::F32, batch_size)?;
    let reference = Reference {
        auc: roc_auc(&scores, &positive).unwrap_or(f64::NAN),
        scores,
        positive: &positive,
        threshold: bundle.threshold.threshold,
        limits,
    };
    let mut checks =
        vec![reference.compare(Precision::F32, bundle.kernels(), &reference.scores, speed)];
    for &precision in precisions.iter().filter(|&&p| p != Precision::F32) {
        let (scores, speed) = scores_in(bundle, sessions, precision, batch_size)?;
        checks.push(reference.compare(precision, bundle.kernels(), &scores, speed));
    }
    bundle.set_precision(Precision::F32)?;
    Ok(checks)
}

/// The f32 results every precision is held to.
struct Reference<'a> {
    scores: Vec<f32>,
    auc: f64,
    positive: &'a [bool],
    threshold: f32,
    limits: &'a ContractLimits,
}

impl Reference<'_> {
    /// `scores` of `precision` (run by `kernels`, at `speed` sessions/s)
    /// against the reference.
    fn compare(
        &self,
        precision: Precision,
        kernels: &str,
        scores: &[f32],
        speed: f64,
    ) -> PrecisionCheck {
        let auc = roc_auc(scores, self.positive).unwrap_or(f64::NAN);
        let threshold = self.threshold;
        let agree = scores
            .iter()
            .zip(&self.scores)
            .filter(|(a, b)| (**a >= threshold) == (**b >= threshold))
            .count();
        let mut diffs: Vec<f32> = scores
            .iter()
            .zip(&self.scores)
            .map(|(a, b)| (a - b).abs())
            .collect();
        diffs.sort_by(f32::total_cmp);
        let at = |q: f64| {
            diffs
                .get(((diffs.len().max(1) - 1) as f64 * q) as usize)
                .copied()
                .unwrap_or(0.0)
        };
        let mut check = PrecisionCheck {
            precision,
            kernels: kernels.to_string(),
            roc_auc: auc,
            auc_delta: auc - self.auc,
            flag_agreement: agree as f64 / scores.len().max(1) as f64,
            max_score_diff: at(1.0),
            p99_score_diff: at(0.99),
            sessions_per_second: speed,
            failures: Vec::new(),
        };
        check.failures = failures(&check, self.limits);
        check
    }
}

/// The limits `check` breaks, in words.
fn failures(check: &PrecisionCheck, limits: &ContractLimits) -> Vec<String> {
    let mut out = Vec::new();
    // An undefined ROC-AUC (NaN: one class only) fails too.
    if check.auc_delta.is_nan() || check.auc_delta < -limits.max_auc_drop {
        out.push(format!(
            "ROC-AUC {:+.4} against f32 (limit -{})",
            check.auc_delta, limits.max_auc_drop
        ));
    }
    if check.flag_agreement < limits.min_flag_agreement {
        out.push(format!(
            "flags agree with f32 on {:.2}% of sessions (limit {:.2}%)",
            100.0 * check.flag_agreement,
            100.0 * limits.min_flag_agreement
        ));
    }
    if check.max_score_diff > limits.max_score_diff {
        out.push(format!(
            "a score moved {:.4} from f32 (limit {})",
            check.max_score_diff, limits.max_score_diff
        ));
    }
    out
}

/// The checks as a Markdown table.
pub fn table(checks: &[PrecisionCheck]) -> String {
    let mut out = String::from(
        "| precision | ROC-AUC | vs f32 | flags agree | max score diff | p99 score diff | sessions/s | contract |\n|---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for c in checks {
        out.push_str(&format!(
            "| {} | {:.4} | {:+.4} | {:.2}% | {:.4} | {:.4} | {:.1} | {} |\n",
            c.precision,
            c.roc_auc,
            c.auc_delta,
            100.0 * c.flag_agreement,
            c.max_score_diff,
            c.p99_score_diff,
            c.sessions_per_second,
            if c.failures.is_empty() {
                "kept".to_string()
            } else {
                c.failures.join("; ")
            }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(auc_delta: f64, agreement: f64, max_diff: f32) -> PrecisionCheck {
        PrecisionCheck {
            precision: Precision::Int8,
            kernels: String::new(),
            roc_auc: 0.99 + auc_delta,
            auc_delta,
            flag_agreement: agreement,
            max_score_diff: max_diff,
            p99_score_diff: max_diff / 2.0,
            sessions_per_second: 1.0,
            failures: Vec::new(),
        }
    }

    #[test]
    fn each_limit_is_enforced_by_name() {
        let limits = ContractLimits::default();
        assert!(failures(&check(-0.001, 0.999, 0.01), &limits).is_empty());
        let broken = failures(&check(-0.003, 0.99, 0.2), &limits);
        assert_eq!(broken.len(), 3, "{broken:?}");
        assert!(broken[0].contains("ROC-AUC") && broken[1].contains("flags agree"));
        // An undefined ROC-AUC (one class only) never passes silently.
        assert_eq!(failures(&check(f64::NAN, 1.0, 0.0), &limits).len(), 1);
        assert!(table(&[check(0.0, 1.0, 0.0)]).contains("| int8 |"));
    }
}
