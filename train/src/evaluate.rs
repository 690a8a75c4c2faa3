//! Held-out evaluation of a bundle on a labeled sessions file: ranking
//! metrics, the confusion matrix at the bundle's threshold, and detection /
//! false-positive rates per archetype.

use std::{collections::BTreeMap, path::Path};

use anyhow::Result;
use datasets::Session;
use models::bundle::Bundle;
use serde::{Deserialize, Serialize};

use crate::{
    data::{read_labeled, sha256_file},
    fit::SplitMetrics,
    metrics::Confusion,
};

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

/// Scores `file` with `bundle` and summarises.
pub fn evaluate(bundle: &Bundle, file: &Path, batch_size: usize) -> Result<Evaluation> {
    let sessions = read_labeled(file)?;
    let scores: Vec<f32> = bundle
        .score(&sessions, batch_size)?
        .into_iter()
        .map(|s| s.score)
        .collect();
    Evaluation::of(file, &sessions, &scores, bundle.threshold.threshold)
}

/// Whether each labeled session is extraction.
pub fn positives(sessions: &[Session]) -> Vec<bool> {
    sessions
        .iter()
        .map(|s| s.label == Some(datasets::Label::Extraction))
        .collect()
}

impl Evaluation {
    /// Summarises the scores of `file`'s labeled sessions at `threshold`.
    pub fn of(file: &Path, sessions: &[Session], scores: &[f32], threshold: f32) -> Result<Self> {
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
        Ok(Evaluation {
            file: file.display().to_string(),
            sha256: sha256_file(file)?,
            metrics: SplitMetrics::of(scores, &positive),
            threshold,
            recall: confusion.recall(),
            false_positive_rate: confusion.false_positive_rate(),
            confusion,
            archetypes,
        })
    }

    /// A Markdown summary: headline metrics, then extraction archetypes
    /// (recall) and benign archetypes (false-positive rate) separately.
    pub fn to_markdown(&self) -> String {
        let f = |x: Option<f64>| x.map_or("n/a".into(), |x| format!("{x:.4}"));
        let mut md = format!(
            "Evaluated `{}` (sha256 `{}`): {} sessions.\n\n| metric | value |\n|---|---:|\n\
             | ROC-AUC | {} |\n| PR-AUC | {} |\n| threshold | {:.6} |\n| recall at threshold | {:.4} |\n\
             | benign false-positive rate at threshold | {:.5} |\n| TP / FP / TN / FN | {} / {} / {} / {} |\n",
            self.file,
            &self.sha256[..12],
            self.metrics.sessions,
            f(self.metrics.roc_auc),
            f(self.metrics.pr_auc),
            self.threshold,
            self.recall,
            self.false_positive_rate,
            self.confusion.true_positives,
            self.confusion.false_positives,
            self.confusion.true_negatives,
            self.confusion.false_negatives,
        );
        for (label, what) in [("extraction", "recall"), ("benign", "false-positive rate")] {
            md.push_str(&format!(
                "\n| {label} archetype | sessions | flagged | {what} |\n|---|---:|---:|---:|\n"
            ));
            for (name, a) in self.archetypes.iter().filter(|(_, a)| a.label == label) {
                md.push_str(&format!(
                    "| {name} | {} | {} | {:.4} |\n",
                    a.sessions, a.flagged, a.rate
                ));
            }
        }
        md
    }
}
