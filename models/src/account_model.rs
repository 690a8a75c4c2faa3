//! The account scorer saved beside a bundle (`account_model.json`): a
//! logistic regression over an account's session scores and its
//! cross-account evidence (`datasets::coordination`), with two operating
//! points chosen on validation accounts: `flag` and `review`.

use std::path::Path;

use datasets::coordination::{AccountEvidence, EvidenceParams, EVIDENCE_NAMES};
use serde::{Deserialize, Serialize};

use crate::{
    bundle::{read_optional_json, save_json_atomic},
    error::{ModelError, Result},
};

/// Account model file name inside a bundle.
pub const ACCOUNT_MODEL_FILE: &str = "account_model.json";
/// Format version of [`AccountModel`].
pub const ACCOUNT_MODEL_VERSION: u32 = 1;

/// Session-score statistics that lead the account feature vector.
pub const SCORE_FEATURE_NAMES: [&str; 6] = [
    "max_session_score",
    "mean_session_score",
    "share_over_session_threshold",
    "log_sessions",
    "log_requests",
    "group_mean_max_session_score",
];

/// Number of account features: the score statistics, then the evidence.
pub const NUM_ACCOUNT_FEATURES: usize = SCORE_FEATURE_NAMES.len() + EVIDENCE_NAMES.len();

/// Names of the account features, in vector order.
pub fn account_feature_names() -> Vec<String> {
    SCORE_FEATURE_NAMES
        .iter()
        .chain(EVIDENCE_NAMES.iter())
        .map(|s| s.to_string())
        .collect()
}

/// The account feature vector: statistics of its session scores (at least
/// one) and the mean of the highest session score of each account of its
/// operator group (0 without a group), then its evidence values.
pub fn account_features(
    session_scores: &[f32],
    session_threshold: f32,
    group_mean_max_score: f32,
    evidence: &AccountEvidence,
) -> [f32; NUM_ACCOUNT_FEATURES] {
    let n = session_scores.len().max(1) as f32;
    let max = session_scores.iter().copied().fold(0.0f32, f32::max);
    let mean = session_scores.iter().sum::<f32>() / n;
    let over = session_scores
        .iter()
        .filter(|&&s| s >= session_threshold)
        .count() as f32
        / n;
    let mut out = [0.0f32; NUM_ACCOUNT_FEATURES];
    out[..SCORE_FEATURE_NAMES.len()].copy_from_slice(&[
        max,
        mean,
        over,
        (evidence.sessions as f32).ln_1p(),
        (evidence.requests as f32).ln_1p(),
        group_mean_max_score,
    ]);
    out[SCORE_FEATURE_NAMES.len()..].copy_from_slice(&evidence.values());
    out
}

/// What to do with an account.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountVerdict {
    /// Act on it (block, rate-limit, escalate).
    Flag,
    /// Send to an analyst.
    Review,
    /// Leave alone.
    Clear,
}

impl AccountVerdict {
    /// `"flag"`, `"review"` or `"clear"`.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountVerdict::Flag => "flag",
            AccountVerdict::Review => "review",
            AccountVerdict::Clear => "clear",
        }
    }
}

/// One operating point of the account scorer, chosen on validation
/// accounts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountOperatingPoint {
    /// Scores at or above it reach this verdict.
    pub threshold: f32,
    /// Benign account false-positive rate it was chosen for.
    pub target_fpr: f64,
    /// Benign account false-positive rate it gave on validation.
    pub validation_fpr: f64,
    /// Share of extraction accounts it caught on validation.
    pub validation_recall: f64,
}

/// A fitted account scorer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountModel {
    /// Format version ([`ACCOUNT_MODEL_VERSION`]).
    pub version: u32,
    /// Feature names, in vector order (checked against this build's).
    pub feature_names: Vec<String>,
    /// Per-feature mean subtracted before the regression.
    pub mean: Vec<f32>,
    /// Per-feature scale divided by before the regression.
    pub scale: Vec<f32>,
    /// Regression weights on standardised features.
    pub weights: Vec<f32>,
    /// Regression intercept.
    pub intercept: f32,
    /// `flag` operating point.
    pub flag: AccountOperatingPoint,
    /// `review` operating point (at most the `flag` threshold).
    pub review: AccountOperatingPoint,
    /// The evidence settings its features were computed with; verdicts
    /// on new windows use the same (absent in older files: the defaults).
    #[serde(default)]
    pub evidence: EvidenceParams,
    /// The score an account must reach to count towards an operator or
    /// template campaign: the scorer's own `review` threshold, kept when
    /// the corroboration rule lowers the saved ones (absent in older
    /// files: `review`'s).
    #[serde(default)]
    pub link_threshold: Option<f32>,
}

impl AccountModel {
    /// Probability-like score of one account feature vector.
    pub fn score(&self, features: &[f32; NUM_ACCOUNT_FEATURES]) -> f32 {
        let z: f32 = features
            .iter()
            .zip(&self.mean)
            .zip(&self.scale)
            .zip(&self.weights)
            .map(|(((x, m), s), w)| (x - m) / s * w)
            .sum::<f32>()
            + self.intercept;
        1.0 / (1.0 + (-z).exp())
    }

    /// The score an account must reach to count towards an operator or
    /// template campaign.
    pub fn link_threshold(&self) -> f32 {
        self.link_threshold.unwrap_or(self.review.threshold)
    }

    /// The verdict a score reaches.
    pub fn verdict(&self, score: f32) -> AccountVerdict {
        if score >= self.flag.threshold {
            AccountVerdict::Flag
        } else if score >= self.review.threshold {
            AccountVerdict::Review
        } else {
            AccountVerdict::Clear
        }
    }

    /// The features that pushed `features` furthest towards extraction,
    /// as `name (+contribution)`, at most `k`.
    pub fn top_contributions(
        &self,
        features: &[f32; NUM_ACCOUNT_FEATURES],
        k: usize,
    ) -> Vec<String> {
        let mut parts: Vec<(f32, &str)> = (0..NUM_ACCOUNT_FEATURES)
            .map(|i| {
                let c = (features[i] - self.mean[i]) / self.scale[i] * self.weights[i];
                (c, self.feature_names[i].as_str())
            })
            .filter(|(c, _)| *c > 0.0)
            .collect();
        parts.sort_by(|a, b| b.0.total_cmp(&a.0));
        parts
            .into_iter()
            .take(k)
            .map(|(c, name)| format!("{name} (+{c:.2})"))
            .collect()
    }

    fn check(&self, path: &Path) -> Result<()> {
        let bad = |message: String| ModelError::Format {
            path: path.to_path_buf(),
            message,
        };
        if self.version != ACCOUNT_MODEL_VERSION {
            return Err(bad(format!(
                "format version {} (this build reads {ACCOUNT_MODEL_VERSION})",
                self.version
            )));
        }
        if self.feature_names != account_feature_names() {
            return Err(bad("feature names differ from this build's".into()));
        }
        let n = NUM_ACCOUNT_FEATURES;
        if [self.mean.len(), self.scale.len(), self.weights.len()] != [n, n, n] {
            return Err(bad(format!("mean, scale and weights must hold {n} values")));
        }
        if self.scale.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(bad("every scale must be finite and positive".into()));
        }
        let thresholds = [
            ("flag.threshold", Some(self.flag.threshold)),
            ("review.threshold", Some(self.review.threshold)),
            ("link_threshold", self.link_threshold),
        ];
        for (field, threshold) in thresholds {
            if let Some(t) = threshold.filter(|t| !(0.0..=1.0).contains(t)) {
                return Err(bad(format!("{field} {t} is not a score between 0 and 1")));
            }
        }
        self.evidence
            .clone()
            .check()
            .map_err(|e| bad(format!("evidence: {e}")))?;
        Ok(())
    }

    /// Reads `account_model.json` from a bundle directory: `None` when the
    /// bundle has none.
    pub fn load(bundle_dir: &Path) -> Result<Option<Self>> {
        let path = bundle_dir.join(ACCOUNT_MODEL_FILE);
        let model: Option<AccountModel> = read_optional_json(&path)?;
        if let Some(m) = &model {
            m.check(&path)?;
        }
        Ok(model)
    }

    /// Writes `account_model.json` into a bundle directory atomically.
    pub fn save(&self, bundle_dir: &Path) -> Result<()> {
        save_json_atomic(&bundle_dir.join(ACCOUNT_MODEL_FILE), self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loading the bundle in `dir` fails with an error naming
    /// `account_model.json` and `field`.
    fn assert_load_error_names(dir: &Path, field: &str) {
        let err = AccountModel::load(dir).unwrap_err().to_string();
        assert!(
            err.contains(field) && err.contains(ACCOUNT_MODEL_FILE),
            "{field}: {err}"
        );
    }

    fn model() -> AccountModel {
        let point = AccountOperatingPoint {
            threshold: 0.5,
            target_fpr: 0.003,
            validation_fpr: 0.002,
            validation_recall: 0.9,
        };
        AccountModel {
            version: ACCOUNT_MODEL_VERSION,
            feature_names: account_feature_names(),
            mean: vec![0.0; NUM_ACCOUNT_FEATURES],
            scale: vec![1.0; NUM_ACCOUNT_FEATURES],
            weights: vec![0.1; NUM_ACCOUNT_FEATURES],
            intercept: 0.0,
            flag: point.clone(),
            review: point,
            link_threshold: None,
            evidence: EvidenceParams {
                fresh_days: 7.0,
                ..EvidenceParams::default()
            },
        }
    }

    #[test]
    fn evidence_settings_round_trip_default_when_absent_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        model().save(dir.path()).unwrap();
        let loaded = AccountModel::load(dir.path()).unwrap().unwrap();
        assert_eq!(loaded.evidence.fresh_days, 7.0);

        let path = dir.path().join(ACCOUNT_MODEL_FILE);
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        json.as_object_mut().unwrap().remove("evidence");
        std::fs::write(&path, json.to_string()).unwrap();
        let older = AccountModel::load(dir.path()).unwrap().unwrap();
        assert_eq!(older.evidence, EvidenceParams::default());

        json["evidence"] = serde_json::to_value(EvidenceParams {
            frame_words: 1,
            ..EvidenceParams::default()
        })
        .unwrap();
        std::fs::write(&path, json.to_string()).unwrap();
        assert_load_error_names(dir.path(), "frame_words");
    }

    #[test]
    fn the_link_threshold_defaults_to_review_and_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = model();
        m.review.threshold = 0.25;
        m.save(dir.path()).unwrap();
        let loaded = AccountModel::load(dir.path()).unwrap().unwrap();
        assert_eq!(loaded.link_threshold, None);
        assert_eq!(loaded.link_threshold(), 0.25);

        m.link_threshold = Some(0.75);
        m.save(dir.path()).unwrap();
        assert_eq!(
            AccountModel::load(dir.path())
                .unwrap()
                .unwrap()
                .link_threshold(),
            0.75
        );

        m.link_threshold = Some(1.5);
        m.save(dir.path()).unwrap();
        assert_load_error_names(dir.path(), "link_threshold");
    }

    #[test]
    fn flag_and_review_thresholds_outside_scores_are_format_errors() {
        let dir = tempfile::tempdir().unwrap();
        let broken = [
            ("flag.threshold", "/flag/threshold", "1.5"),
            ("review.threshold", "/review/threshold", "-0.1"),
        ];
        for (field, pointer, value) in broken {
            let mut json = serde_json::to_value(model()).unwrap();
            *json.pointer_mut(pointer).unwrap() = serde_json::from_str(value).unwrap();
            let path = dir.path().join(ACCOUNT_MODEL_FILE);
            std::fs::write(&path, json.to_string()).unwrap();
            assert_load_error_names(dir.path(), field);
        }
    }
}
