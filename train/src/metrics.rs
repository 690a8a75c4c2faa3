//! Ranking and threshold metrics for binary scores (1 = extraction).

use serde::{Deserialize, Serialize};

/// ROC-AUC: the probability that a random positive scores above a random
/// negative (ties count one half). `None` without both classes.
pub fn roc_auc(scores: &[f32], positive: &[bool]) -> Option<f64> {
    let n_pos = positive.iter().filter(|&&p| p).count();
    let n_neg = positive.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of positive ranks, with tied scores sharing their average rank.
    let mut rank_sum = 0.0f64;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += avg_rank * order[i..=j].iter().filter(|&&k| positive[k]).count() as f64;
        i = j + 1;
    }
    let u = rank_sum - (n_pos * (n_pos + 1)) as f64 / 2.0;
    Some(u / (n_pos as f64 * n_neg as f64))
}

/// PR-AUC as average precision: the mean, over positives, of the precision
/// at the threshold that first includes them (tied scores enter together).
/// `None` without positives.
pub fn average_precision(scores: &[f32], positive: &[bool]) -> Option<f64> {
    let n_pos = positive.iter().filter(|&&p| p).count();
    if n_pos == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut seen, mut ap) = (0usize, 0usize, 0.0f64);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let new_tp = order[i..=j].iter().filter(|&&k| positive[k]).count();
        tp += new_tp;
        seen += j - i + 1;
        ap += new_tp as f64 * (tp as f64 / seen as f64);
        i = j + 1;
    }
    Some(ap / n_pos as f64)
}

/// The lowest threshold (flag when `score >= threshold`) at which at most
/// `target_fpr` of the benign scores are flagged. `None` without benign
/// scores.
pub fn threshold_for_fpr(benign: &[f32], target_fpr: f64) -> Option<f32> {
    if benign.is_empty() {
        return None;
    }
    let mut desc = benign.to_vec();
    desc.sort_by(|a, b| b.total_cmp(a));
    let allowed = (target_fpr * desc.len() as f64).floor() as usize;
    if allowed >= desc.len() {
        return Some(f32::NEG_INFINITY);
    }
    // Just above the first benign score that must not be flagged.
    Some(desc[allowed].next_up())
}

/// The scores whose label is benign (`positive` parallel to `scores`).
pub fn benign_scores(scores: &[f32], positive: &[bool]) -> Vec<f32> {
    scores
        .iter()
        .zip(positive)
        .filter(|(_, &p)| !p)
        .map(|(&s, _)| s)
        .collect()
}

/// Recall when the threshold is set so that at most `fpr` of the benign
/// scores are flagged (`None` without both classes).
pub fn recall_at_fpr(scores: &[f32], positive: &[bool], fpr: f64) -> Option<f64> {
    let benign = benign_scores(scores, positive);
    if benign.len() == scores.len() {
        return None;
    }
    let threshold = threshold_for_fpr(&benign, fpr)?;
    Some(Confusion::at(scores, positive, threshold).recall())
}

/// One point of a ROC or precision-recall curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Threshold (flag when `score >= threshold`).
    pub threshold: f32,
    /// x: false-positive rate (ROC) or recall (PR).
    pub x: f64,
    /// y: recall (ROC) or precision (PR).
    pub y: f64,
}

/// Confusion counts at every distinct score, highest first.
fn sweep(scores: &[f32], positive: &[bool]) -> Vec<(f32, Confusion)> {
    let n_pos = positive.iter().filter(|&&p| p).count();
    let n_neg = positive.len() - n_pos;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut out = Vec::new();
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut i = 0;
    while i < order.len() {
        let t = scores[order[i]];
        while i < order.len() && scores[order[i]] == t {
            if positive[order[i]] {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        out.push((
            t,
            Confusion {
                true_positives: tp,
                false_positives: fp,
                true_negatives: n_neg - fp,
                false_negatives: n_pos - tp,
            },
        ));
    }
    out
}

/// The ROC curve (false-positive rate, recall), from (0, 0) to (1, 1).
pub fn roc_curve(scores: &[f32], positive: &[bool]) -> Vec<CurvePoint> {
    let mut curve = vec![CurvePoint {
        threshold: f32::INFINITY,
        x: 0.0,
        y: 0.0,
    }];
    curve.extend(
        sweep(scores, positive)
            .into_iter()
            .map(|(t, c)| CurvePoint {
                threshold: t,
                x: c.false_positive_rate(),
                y: c.recall(),
            }),
    );
    curve
}

/// The precision-recall curve (recall, precision), highest threshold first.
pub fn pr_curve(scores: &[f32], positive: &[bool]) -> Vec<CurvePoint> {
    sweep(scores, positive)
        .into_iter()
        .map(|(t, c)| CurvePoint {
            threshold: t,
            x: c.recall(),
            y: c.precision(),
        })
        .collect()
}

/// One bin of a calibration curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Lower edge of the score bin.
    pub lower: f64,
    /// Upper edge.
    pub upper: f64,
    /// Sessions in the bin.
    pub sessions: usize,
    /// Mean predicted probability.
    pub mean_score: f64,
    /// Observed share of extraction.
    pub observed: f64,
}

/// Calibration over `bins` equal-width score bins on [0, 1] (empty bins
/// are left out).
pub fn calibration(scores: &[f32], positive: &[bool], bins: usize) -> Vec<CalibrationBin> {
    let bins = bins.max(1);
    let mut acc = vec![(0usize, 0f64, 0usize); bins];
    for (&s, &p) in scores.iter().zip(positive) {
        let b = bin_of(s, bins);
        acc[b].0 += 1;
        acc[b].1 += f64::from(s);
        acc[b].2 += usize::from(p);
    }
    acc.into_iter()
        .enumerate()
        .filter(|(_, (n, _, _))| *n > 0)
        .map(|(b, (n, sum, pos))| CalibrationBin {
            lower: b as f64 / bins as f64,
            upper: (b + 1) as f64 / bins as f64,
            sessions: n,
            mean_score: sum / n as f64,
            observed: pos as f64 / n as f64,
        })
        .collect()
}

fn bin_of(score: f32, bins: usize) -> usize {
    ((f64::from(score.clamp(0.0, 1.0)) * bins as f64) as usize).min(bins - 1)
}

/// Counts of scores in `bins` equal-width bins on [0, 1].
pub fn histogram(scores: impl IntoIterator<Item = f32>, bins: usize) -> Vec<usize> {
    let bins = bins.max(1);
    let mut counts = vec![0usize; bins];
    for s in scores {
        counts[bin_of(s, bins)] += 1;
    }
    counts
}

/// Confusion counts at a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Confusion {
    /// Extraction flagged.
    pub true_positives: usize,
    /// Benign flagged.
    pub false_positives: usize,
    /// Benign not flagged.
    pub true_negatives: usize,
    /// Extraction missed.
    pub false_negatives: usize,
}

impl Confusion {
    /// Counts at `threshold` (flag when `score >= threshold`).
    pub fn at(scores: &[f32], positive: &[bool], threshold: f32) -> Self {
        let mut c = Confusion::default();
        for (&s, &p) in scores.iter().zip(positive) {
            match (s >= threshold, p) {
                (true, true) => c.true_positives += 1,
                (true, false) => c.false_positives += 1,
                (false, false) => c.true_negatives += 1,
                (false, true) => c.false_negatives += 1,
            }
        }
        c
    }

    /// Share of extraction flagged (0 without positives).
    pub fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    /// Share of benign flagged (0 without negatives).
    pub fn false_positive_rate(&self) -> f64 {
        ratio(
            self.false_positives,
            self.false_positives + self.true_negatives,
        )
    }

    /// Share of flagged that are extraction (0 when nothing is flagged).
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }
}

/// `a / b`, 0 for an empty `b`.
pub fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_perfect_random_and_tied_scores() {
        let pos = [false, false, true, true];
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &pos), Some(1.0));
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &pos), Some(0.0));
        assert_eq!(roc_auc(&[0.5; 4], &pos), Some(0.5));
        // One positive below one negative: 3 of 4 pairs ordered.
        assert_eq!(roc_auc(&[0.1, 0.6, 0.5, 0.9], &pos), Some(0.75));
        assert_eq!(roc_auc(&[0.1, 0.2], &[false, false]), None);
    }

    #[test]
    fn average_precision_by_hand() {
        // Ranked: P(0.9) N(0.8) P(0.7) N(0.1): AP = (1/1 + 2/3) / 2.
        let ap = average_precision(&[0.9, 0.8, 0.7, 0.1], &[true, false, true, false]).unwrap();
        assert!((ap - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert_eq!(average_precision(&[0.3, 0.2], &[true, true]), Some(1.0));
    }

    #[test]
    fn threshold_meets_the_target_fpr() {
        let benign: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        let t = threshold_for_fpr(&benign, 0.001).unwrap();
        let flagged = benign.iter().filter(|&&s| s >= t).count();
        assert_eq!(flagged, 1);
        let t = threshold_for_fpr(&benign, 0.0).unwrap();
        assert_eq!(benign.iter().filter(|&&s| s >= t).count(), 0);
        assert_eq!(threshold_for_fpr(&[], 0.01), None);
    }

    #[test]
    fn confusion_counts() {
        let c = Confusion::at(&[0.9, 0.4, 0.6, 0.1], &[true, true, false, false], 0.5);
        assert_eq!(
            (
                c.true_positives,
                c.false_negatives,
                c.false_positives,
                c.true_negatives
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(c.recall(), 0.5);
        assert_eq!(c.false_positive_rate(), 0.5);
    }

    #[test]
    fn curves_end_where_they_should_and_recall_at_fpr_matches() {
        let scores = [0.9, 0.8, 0.7, 0.6, 0.2, 0.1];
        let pos = [true, false, true, true, false, false];
        let roc = roc_curve(&scores, &pos);
        assert_eq!((roc[0].x, roc[0].y), (0.0, 0.0));
        let last = roc.last().unwrap();
        assert_eq!((last.x, last.y), (1.0, 1.0));
        // At 0.9: one of three positives, no negative.
        assert!((roc[1].y - 1.0 / 3.0).abs() < 1e-12 && roc[1].x == 0.0);
        let pr = pr_curve(&scores, &pos);
        assert_eq!(pr[0].y, 1.0);
        assert!((pr[1].y - 0.5).abs() < 1e-12);
        // No benign may be flagged: only the 0.9 session passes.
        assert!((recall_at_fpr(&scores, &pos, 0.0).unwrap() - 1.0 / 3.0).abs() < 1e-12);
        // One of three benign may be flagged: the threshold drops under 0.8.
        assert!((recall_at_fpr(&scores, &pos, 0.34).unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(recall_at_fpr(&[0.1], &[true], 0.01), None);
    }

    #[test]
    fn calibration_and_histogram_bins() {
        let scores = [0.05, 0.15, 0.95, 1.0, 0.92];
        let pos = [false, false, true, true, false];
        let cal = calibration(&scores, &pos, 10);
        assert_eq!(cal.len(), 3);
        let top = cal.last().unwrap();
        assert_eq!(top.sessions, 3);
        assert!((top.observed - 2.0 / 3.0).abs() < 1e-12);
        assert!((top.mean_score - (0.95 + 1.0 + 0.92) / 3.0).abs() < 1e-6);
        assert_eq!(histogram(scores, 2), vec![2, 3]);
    }
}
