//! Score drift: the population stability index (PSI) of session scores
//! against the distribution of the bundle's validation scores.
//!
//! The reference cuts the validation scores into bins of equal count
//! (deciles by default); the PSI of a batch of scores is
//! `sum over bins (a - e) * ln(a / e)`, with `e` the reference share of a
//! bin, `a` the batch's, and both floored at [`PSI_FLOOR`] so an empty bin
//! counts as rare, not as infinite. Common reading: below 0.1 the
//! traffic looks like validation, 0.1 to 0.25 it has moved, above 0.25 it
//! has moved far enough that the thresholds chosen on validation may no
//! longer hold.

use serde::{Deserialize, Serialize};

/// Bins of a reference built by the training job.
pub const REFERENCE_BINS: usize = 10;

/// Smallest share a bin counts with.
pub const PSI_FLOOR: f64 = 1e-4;

/// The distribution of the validation scores, in bins of equal count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreReference {
    /// Inner bin edges, ascending: a score `s` falls in bin `i` when
    /// `edges[i - 1] <= s < edges[i]` (bins: one more than edges).
    pub edges: Vec<f32>,
    /// Share of the validation scores in each bin.
    pub shares: Vec<f64>,
}

impl ScoreReference {
    /// The reference of `scores` in at most `bins` bins of equal count
    /// (fewer when scores tie across a cut); `None` without a finite score.
    pub fn from_scores(scores: &[f32], bins: usize) -> Option<Self> {
        let mut sorted: Vec<f32> = scores.iter().copied().filter(|s| s.is_finite()).collect();
        if sorted.is_empty() || bins == 0 {
            return None;
        }
        sorted.sort_by(f32::total_cmp);
        let n = sorted.len();
        let mut edges: Vec<f32> = (1..bins).map(|k| sorted[k * n / bins]).collect();
        edges.dedup();
        // A cut at the smallest score would leave its bin empty.
        edges.retain(|&e| e > sorted[0]);
        let mut reference = ScoreReference {
            shares: vec![0.0; edges.len() + 1],
            edges,
        };
        reference.shares = reference.shares_of(&reference.counts(&sorted));
        Some(reference)
    }

    /// The bin of one score.
    pub fn bin(&self, score: f32) -> usize {
        self.edges.partition_point(|&e| e <= score)
    }

    /// How many of `scores` fall in each bin.
    pub fn counts(&self, scores: &[f32]) -> Vec<u64> {
        let mut counts = vec![0u64; self.edges.len() + 1];
        for &s in scores.iter().filter(|s| s.is_finite()) {
            counts[self.bin(s)] += 1;
        }
        counts
    }

    fn shares_of(&self, counts: &[u64]) -> Vec<f64> {
        let total = counts.iter().sum::<u64>().max(1) as f64;
        counts.iter().map(|&c| c as f64 / total).collect()
    }

    /// The PSI of scores counted per bin (as [`ScoreReference::counts`]
    /// gives them); `None` when nothing was counted or the counts do not
    /// match the bins.
    pub fn psi_of_counts(&self, counts: &[u64]) -> Option<f64> {
        if counts.len() != self.shares.len() || counts.iter().all(|&c| c == 0) {
            return None;
        }
        let psi = self
            .shares_of(counts)
            .iter()
            .zip(&self.shares)
            .map(|(&a, &e)| {
                let (a, e) = (a.max(PSI_FLOOR), e.max(PSI_FLOOR));
                (a - e) * (a / e).ln()
            })
            .sum();
        Some(psi)
    }

    /// The PSI of `scores`; `None` without a finite score.
    pub fn psi(&self, scores: &[f32]) -> Option<f64> {
        self.psi_of_counts(&self.counts(scores))
    }
}

/// The common reading of a PSI value.
pub fn reading(psi: f64) -> &'static str {
    if psi < 0.1 {
        "stable: below 0.1"
    } else if psi <= 0.25 {
        "moved: 0.1 to 0.25"
    } else {
        "shifted: above 0.25, thresholds chosen on validation may not hold"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uniform(n: usize, from: f32, to: f32) -> Vec<f32> {
        (0..n)
            .map(|i| from + (to - from) * (i as f32 + 0.5) / n as f32)
            .collect()
    }

    #[test]
    fn deciles_hold_a_tenth_each_and_the_same_scores_do_not_drift() {
        let scores = uniform(1000, 0.0, 1.0);
        let reference = ScoreReference::from_scores(&scores, REFERENCE_BINS).unwrap();
        assert_eq!(reference.shares.len(), 10);
        assert!(reference.shares.iter().all(|s| (s - 0.1).abs() < 1e-9));
        assert!(reference.psi(&scores).unwrap().abs() < 1e-12);
        // Another sample of the same distribution stays well below 0.1.
        assert!(reference.psi(&uniform(337, 0.0, 1.0)).unwrap() < 0.01);
    }

    #[test]
    fn moved_scores_drift_and_more_so_the_further_they_move() {
        let reference = ScoreReference::from_scores(&uniform(1000, 0.0, 1.0), 10).unwrap();
        let some = reference.psi(&uniform(1000, 0.0, 0.7)).unwrap();
        let far = reference.psi(&uniform(1000, 0.0, 0.2)).unwrap();
        assert!(some > 0.1, "{some}");
        assert!(far > 0.25 && far > some, "{far} vs {some}");
    }

    #[test]
    fn ties_merge_bins_and_empty_input_has_no_psi() {
        // Most validation sessions score (almost) 0: one bin holds them.
        let mut scores = vec![0.0f32; 900];
        scores.extend(uniform(100, 0.5, 1.0));
        let reference = ScoreReference::from_scores(&scores, 10).unwrap();
        assert_eq!(reference.shares.len(), 2, "{reference:?}");
        assert!((reference.shares[0] - 0.9).abs() < 1e-9);
        assert_eq!(reference.bin(0.0), 0);
        assert_eq!(reference.bin(0.99), 1);
        assert!(reference.psi(&[]).is_none());
        assert!(reference.psi(&[f32::NAN]).is_none());
        assert!(ScoreReference::from_scores(&[], 10).is_none());
        assert!(reference.psi_of_counts(&[1, 2, 3]).is_none());
    }
}
