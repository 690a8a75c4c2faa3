//! Session-level evaluation of scores on a labeled sessions file: ranking
//! metrics, the confusion matrix at the bundle's threshold, and detection /
//! false-positive rates per archetype.

use std::{collections::BTreeMap, path::Path};

use datasets::Session;
use serde::{Deserialize, Serialize};

use crate::{fit::SplitMetrics, metrics::Confusion};

/// Flag rate of one archetype at the bundle threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchetypeRate {
    /// `benign` or `extraction`.
    pub label: String,
    /// Sessions.
    pub sessions: usize,
    /// Sessions flagged.
    pub flagged: usize,
    /// flagged / sessions: recall for extraction, false-positive rate for benign.
    pub rate: f64,
}

/// The evaluation summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// File evaluated.
    pub file: String,
    /// Its sha256.
    pub sha256: String,
    /// ROC-AUC and PR-AUC.
    pub metrics: SplitMetrics,
    /// Threshold used.
    pub threshold: f32,
    /// Confusion counts at the threshold.
    pub confusion: Confusion,
    /// Recall at the threshold.
    pub recall: f64,
    /// Benign false-positive rate at the threshold.
    pub false_positive_rate: f64,
    /// Per archetype (sessions without one count as `unknown`).
    pub archetypes: BTreeMap<String, ArchetypeRate>,
}

/// Whether each labeled session is extraction.
pub fn positives(sessions: &[&Session]) -> Vec<bool> {
    sessions
        .iter()
        .map(|s| s.label == Some(datasets::Label::Extraction))
        .collect()
}

impl Evaluation {
    /// Summarises the scores of `file`'s labeled sessions at `threshold`.
    pub fn of(
        file: &Path,
        sha256: String,
        sessions: &[&Session],
        scores: &[f32],
        threshold: f32,
    ) -> Self {
        let positive = positives(sessions);
        let confusion = Confusion::at(scores, &positive, threshold);
        let mut archetypes: BTreeMap<String, ArchetypeRate> = BTreeMap::new();
        for ((s, &score), &p) in sessions.iter().zip(scores).zip(&positive) {
            let entry = archetypes
                .entry(s.archetype.clone().unwrap_or_else(|| "unknown".into()))
                .or_insert_with(|| ArchetypeRate {
                    label: if p { "extraction" } else { "benign" }.into(),
                    sessions: 0,
                    flagged: 0,
                    rate: 0.0,
                });
            entry.sessions += 1;
            entry.flagged += usize::from(score >= threshold);
        }
        for a in archetypes.values_mut() {
            a.rate = a.flagged as f64 / a.sessions as f64;
        }
        Evaluation {
            file: file.display().to_string(),
            sha256,
            metrics: SplitMetrics::of(scores, &positive),
            threshold,
            recall: confusion.recall(),
            false_positive_rate: confusion.false_positive_rate(),
            confusion,
            archetypes,
        }
    }
}
