//! Clustering quality against ground truth: adjusted Rand index,
//! homogeneity and completeness (Rosenberg & Hirschberg's V-measure parts),
//! all from the contingency table of true classes × predicted clusters.

use std::collections::HashMap;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

/// Agreement of a clustering with ground-truth classes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClusterQuality {
    /// Items compared.
    pub items: usize,
    /// Adjusted Rand index: 1 = identical partitions, ~0 = chance.
    pub adjusted_rand_index: f64,
    /// 1 when every cluster holds items of one class only.
    pub homogeneity: f64,
    /// 1 when every class lies in one cluster only.
    pub completeness: f64,
}

fn pairs(n: usize) -> f64 {
    let n = n as f64;
    n * (n - 1.0) / 2.0
}

fn entropy(counts: impl Iterator<Item = usize>, total: f64) -> f64 {
    counts
        .filter(|&c| c > 0)
        .map(|c| {
            let p = c as f64 / total;
            -p * p.ln()
        })
        .sum()
}

/// Compares predicted clusters with true classes (parallel slices; any
/// hashable labels: map noise and unlabeled items to a label of their own
/// before calling). Perfect scores (1.0) for fewer than two items.
pub fn cluster_quality<T: Eq + Hash, P: Eq + Hash>(truth: &[T], predicted: &[P]) -> ClusterQuality {
    let n = truth.len().min(predicted.len());
    let mut table: HashMap<(&T, &P), usize> = HashMap::new();
    let mut classes: HashMap<&T, usize> = HashMap::new();
    let mut clusters: HashMap<&P, usize> = HashMap::new();
    for (t, p) in truth.iter().zip(predicted) {
        *table.entry((t, p)).or_default() += 1;
        *classes.entry(t).or_default() += 1;
        *clusters.entry(p).or_default() += 1;
    }
    if n < 2 {
        return ClusterQuality {
            items: n,
            adjusted_rand_index: 1.0,
            homogeneity: 1.0,
            completeness: 1.0,
        };
    }
    let total = n as f64;

    let index: f64 = table.values().map(|&c| pairs(c)).sum();
    let class_pairs: f64 = classes.values().map(|&c| pairs(c)).sum();
    let cluster_pairs: f64 = clusters.values().map(|&c| pairs(c)).sum();
    let expected = class_pairs * cluster_pairs / pairs(n);
    let max_index = (class_pairs + cluster_pairs) / 2.0;
    let adjusted_rand_index = if (max_index - expected).abs() < f64::EPSILON {
        // Both partitions trivial (all in one, or all singletons): identical.
        1.0
    } else {
        (index - expected) / (max_index - expected)
    };

    let h_class = entropy(classes.values().copied(), total);
    let h_cluster = entropy(clusters.values().copied(), total);
    // Conditional entropies H(C|K) and H(K|C) from the joint counts.
    let mut h_class_given_cluster = 0.0;
    let mut h_cluster_given_class = 0.0;
    for (&(t, p), &c) in &table {
        let joint = c as f64 / total;
        h_class_given_cluster -= joint * (c as f64 / clusters[p] as f64).ln();
        h_cluster_given_class -= joint * (c as f64 / classes[t] as f64).ln();
    }
    let ratio = |conditional: f64, h: f64| if h == 0.0 { 1.0 } else { 1.0 - conditional / h };
    ClusterQuality {
        items: n,
        adjusted_rand_index,
        homogeneity: ratio(h_class_given_cluster, h_class),
        completeness: ratio(h_cluster_given_class, h_cluster),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn identical_partitions_score_one_whatever_the_names() {
        let q = cluster_quality(&["a", "a", "b", "b", "c"], &[7, 7, 3, 3, 1]);
        assert!(close(q.adjusted_rand_index, 1.0));
        assert!(close(q.homogeneity, 1.0));
        assert!(close(q.completeness, 1.0));
    }

    #[test]
    fn split_classes_are_homogeneous_but_incomplete() {
        // Each class cut into two clusters.
        let q = cluster_quality(&[0, 0, 1, 1], &[0, 1, 2, 3]);
        assert!(close(q.homogeneity, 1.0));
        // H(K|C) = ln 2, H(K) = ln 4: completeness 1/2.
        assert!(close(q.completeness, 0.5), "{q:?}");
        // No pair together in the prediction: index 0, expected 0, max 1.
        assert!(close(q.adjusted_rand_index, 0.0), "{q:?}");
    }

    #[test]
    fn merged_classes_are_complete_but_not_homogeneous() {
        let q = cluster_quality(&[0, 0, 1, 1], &[5, 5, 5, 5]);
        assert!(close(q.completeness, 1.0));
        assert!(close(q.homogeneity, 0.0));
        assert!(close(q.adjusted_rand_index, 0.0));
    }

    #[test]
    fn adjusted_rand_index_by_hand() {
        // truth: {0,0,0,1,1,1}; predicted: {a,a,b,b,c,c}.
        // Contingency: (0,a)=2 (0,b)=1 (1,b)=1 (1,c)=2: index = 1 + 1 = 2.
        // class pairs = 3 + 3 = 6; cluster pairs = 1 + 1 + 1 = 3; n pairs = 15.
        // expected = 6 * 3 / 15 = 1.2; max = 4.5; ARI = 0.8 / 3.3.
        let q = cluster_quality(&[0, 0, 0, 1, 1, 1], &['a', 'a', 'b', 'b', 'c', 'c']);
        assert!(close(q.adjusted_rand_index, 0.8 / 3.3), "{q:?}");
    }
}
