//! The prompt-only scorer saved beside a bundle (`prompt_head.json`). A
//! bare prompt has no behaviour (no timing, network, account or response
//! sizes), so the session head, which reads those features, answers
//! nothing useful for it. This head reads the encoder's pooled text
//! embedding alone: a logistic regression fitted on single prompts of the
//! training file's sessions, each embedded as a one-event session, with
//! its threshold chosen on single prompts of the validation file. Its
//! score is the probability that a prompt, seen alone, came from an
//! extraction session (serve/README.md).

use std::path::Path;

use chrono::{DateTime, Utc};
use datasets::{Event, Session};
use serde::{Deserialize, Serialize};

use crate::{
    bundle::{read_optional_json, save_json_atomic},
    error::{ModelError, Result},
};

/// A bare prompt as the encoder sees it: a session of one event at `ts`,
/// with no account, network, client or response size.
pub fn prompt_session(
    session_id: String,
    account_id: String,
    prompt: String,
    ts: DateTime<Utc>,
) -> Session {
    Session {
        session_id,
        account_id,
        label: None,
        campaign_id: None,
        archetype: None,
        account: None,
        events: vec![Event {
            ts,
            prompt,
            ip: None,
            asn: None,
            user_agent: None,
            model: None,
            response_tokens: None,
        }],
    }
}

/// Prompt head file name inside a bundle.
pub const PROMPT_HEAD_FILE: &str = "prompt_head.json";
/// Format version of [`PromptHead`].
pub const PROMPT_HEAD_VERSION: u32 = 1;

/// How the prompt head did on the validation file's prompts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptValidation {
    /// Prompts scored.
    pub prompts: usize,
    /// ROC-AUC of prompt scores against their session's label.
    pub roc_auc: f64,
    /// Benign prompt false-positive rate the threshold was chosen for.
    pub target_fpr: f64,
    /// Benign prompt false-positive rate at the threshold.
    pub fpr: f64,
    /// Extraction prompts at or over the threshold.
    pub recall: f64,
}

/// A logistic regression over the unit-length pooled text embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptHead {
    /// Format version.
    pub version: u32,
    /// One weight per embedding dimension.
    pub weights: Vec<f32>,
    /// Intercept.
    pub intercept: f32,
    /// Score from which a prompt is flagged.
    pub threshold: f32,
    /// Prompts it was fitted on.
    pub train_prompts: usize,
    /// Its numbers on the validation file's prompts.
    pub validation: PromptValidation,
}

impl PromptHead {
    /// Probability of extraction for a prompt's pooled embedding (the
    /// embedding is scaled to unit length first).
    pub fn score(&self, embedding: &[f32]) -> f32 {
        let norm = embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
        let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        let z: f32 = self.intercept
            + self
                .weights
                .iter()
                .zip(embedding)
                .map(|(w, x)| w * x * scale)
                .sum::<f32>();
        1.0 / (1.0 + (-z).exp())
    }

    /// Checks the head against the encoder's embedding width.
    pub fn check(&self, path: &Path, embedding_dim: usize) -> Result<()> {
        let bad = |message: String| ModelError::Format {
            path: path.to_path_buf(),
            message,
        };
        if self.version != PROMPT_HEAD_VERSION {
            return Err(bad(format!(
                "version {} but this build reads {PROMPT_HEAD_VERSION}",
                self.version
            )));
        }
        if self.weights.len() != embedding_dim {
            return Err(bad(format!(
                "{} weights but the encoder's embeddings have {embedding_dim} values",
                self.weights.len()
            )));
        }
        let finite = self.weights.iter().all(|w| w.is_finite()) && self.intercept.is_finite();
        if !finite || !(0.0..=1.0).contains(&self.threshold) {
            return Err(bad(
                "weights and intercept must be finite and the threshold in [0, 1]".into(),
            ));
        }
        Ok(())
    }

    /// Reads `prompt_head.json` from a bundle directory: `None` when the
    /// bundle has none.
    pub fn load(bundle_dir: &Path, embedding_dim: usize) -> Result<Option<Self>> {
        let path = bundle_dir.join(PROMPT_HEAD_FILE);
        let head: Option<PromptHead> = read_optional_json(&path)?;
        if let Some(h) = &head {
            h.check(&path, embedding_dim)?;
        }
        Ok(head)
    }

    /// Writes `prompt_head.json` into a bundle directory atomically.
    pub fn save(&self, bundle_dir: &Path) -> Result<()> {
        save_json_atomic(&bundle_dir.join(PROMPT_HEAD_FILE), self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(weights: Vec<f32>) -> PromptHead {
        PromptHead {
            version: PROMPT_HEAD_VERSION,
            weights,
            intercept: 0.0,
            threshold: 0.5,
            train_prompts: 10,
            validation: PromptValidation {
                prompts: 4,
                roc_auc: 1.0,
                target_fpr: 0.01,
                fpr: 0.0,
                recall: 1.0,
            },
        }
    }

    #[test]
    fn scores_the_unit_embedding() {
        let h = head(vec![2.0, 0.0]);
        // Length does not matter, direction does.
        assert!((h.score(&[3.0, 0.0]) - h.score(&[0.5, 0.0])).abs() < 1e-6);
        assert!(h.score(&[1.0, 0.0]) > 0.8);
        assert!(h.score(&[-1.0, 0.0]) < 0.2);
        assert_eq!(h.score(&[0.0, 0.0]), 0.5);
    }

    #[test]
    fn saves_loads_and_refuses_a_head_of_another_width() {
        let dir = tempfile::tempdir().unwrap();
        assert!(PromptHead::load(dir.path(), 2).unwrap().is_none());
        head(vec![1.0, -1.0]).save(dir.path()).unwrap();
        assert_eq!(
            PromptHead::load(dir.path(), 2).unwrap(),
            Some(head(vec![1.0, -1.0]))
        );
        let err = PromptHead::load(dir.path(), 3).unwrap_err().to_string();
        assert!(
            err.contains("prompt_head.json") && err.contains("3 values"),
            "{err}"
        );
        std::fs::write(dir.path().join(PROMPT_HEAD_FILE), "{").unwrap();
        assert!(PromptHead::load(dir.path(), 2).is_err());
    }
}
