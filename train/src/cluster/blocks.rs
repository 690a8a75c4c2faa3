//! Blocked DBSCAN for large account sets: one global PCA and k-means split
//! the points into blocks of nearby sessions; each block gets its own PCA
//! (fitted on its points, so a few dozen campaigns need not share 16
//! dimensions with every other campaign of the file) and its own DBSCAN,
//! with one eps from the pooled k-distance curves of all blocks. Clusters of different blocks whose
//! centroids lie within either cluster's mean radius (in the full space)
//! are merged: a campaign cut by a block boundary becomes one cluster
//! again.

use anyhow::{Context, Result};
use linfa::{
    traits::{Fit, Predict},
    DatasetBase,
};
use linfa_clustering::KMeans;
use ndarray::{Array1, Array2, Axis};

use super::{dbscan, eps::k_distances, points::reduce, NeighbourIndex, EPS_SAMPLE};

/// eps used when there is no k-distance knee to go by (a pooled curve
/// without one, or too few points for a curve): a tight radius, cosine
/// similarity 0.98.
pub const FALLBACK_EPS: f64 = 0.2;

/// What blocked DBSCAN found.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockedClusters {
    /// Cluster of each point (input order), `None` for noise.
    pub labels: Vec<Option<usize>>,
    /// eps used in every block.
    pub eps: f64,
    /// Clusters merged across block boundaries.
    pub merged: usize,
}

/// Clusters unit-vector `points` in `blocks` k-means blocks, each reduced
/// to `dims` dimensions; `fixed_eps` overrides every block's suggestion.
pub fn blocked_dbscan(
    points: &Array2<f32>,
    blocks: usize,
    dims: usize,
    min_points: usize,
    index: NeighbourIndex,
    fixed_eps: Option<f64>,
    seed: u64,
) -> Result<BlockedClusters> {
    let n = points.nrows();
    let coarse = reduce(points.clone(), dims, seed)?.mapv(f64::from);
    let data = DatasetBase::from(coarse);
    let kmeans = KMeans::params(blocks.clamp(1, n.max(1)))
        .n_runs(1)
        .max_n_iterations(50)
        .tolerance(1e-3)
        .fit(&data)
        .context("k-means blocking")?;
    let block_of: Array1<usize> = kmeans.predict(data.records());
    // Each block in its own PCA space (unit vectors, so distances compare
    // across blocks).
    let mut local_blocks = Vec::new();
    for b in 0..blocks {
        let rows: Vec<usize> = (0..n).filter(|&i| block_of[i] == b).collect();
        if rows.len() > min_points {
            let local = reduce(points.select(Axis(0), &rows), dims, seed)?;
            local_blocks.push((b, rows, local));
        }
    }
    let eps = match fixed_eps {
        Some(eps) => eps,
        None => pooled_eps(&local_blocks, min_points, index)?,
    };
    let mut labels = vec![None; n];
    let mut next = 0;
    let mut cluster_block = Vec::new();
    for (b, rows, local) in &local_blocks {
        let found = dbscan(local, eps, min_points, index)?;
        let count = found.iter().flatten().max().map_or(0, |m| m + 1);
        for (&row, f) in rows.iter().zip(found) {
            labels[row] = f.map(|c| c + next);
        }
        cluster_block.extend(std::iter::repeat_n(*b, count));
        next += count;
    }
    let (labels, merged) = merge_across_blocks(points, &labels, &cluster_block);
    Ok(BlockedClusters {
        labels,
        eps,
        merged,
    })
}

/// One eps for every block: the knee of the k-distance curves of all blocks
/// pooled (each block sampled on at most [`EPS_SAMPLE`] points). A knee per
/// block would land inside the benign density of blocks that hold few
/// campaign sessions.
fn pooled_eps(
    local_blocks: &[(usize, Vec<usize>, Array2<f32>)],
    min_points: usize,
    index: NeighbourIndex,
) -> Result<f64> {
    let k = min_points.saturating_sub(1).max(1);
    let mut curve = Vec::new();
    for (_, _, local) in local_blocks {
        let stride = local.nrows().div_ceil(EPS_SAMPLE);
        curve.extend(k_distances(local, k, stride, index)?);
    }
    curve.retain(|&d| d > 0.0);
    curve.sort_by(f32::total_cmp);
    let log_curve: Vec<f64> = curve.iter().map(|&d| f64::from(d).ln()).collect();
    Ok(otsu_split(&log_curve).map_or(FALLBACK_EPS, f64::exp))
}

/// Otsu's threshold of ascending values: the boundary between the two
/// classes that maximises their between-class variance (here: tight
/// coordinated neighbourhoods vs. loose organic ones). `None` for fewer
/// than two distinct values.
fn otsu_split(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    let total: f64 = sorted.iter().sum();
    let mut below = 0.0;
    let mut best: Option<(f64, f64)> = None;
    for i in 1..n {
        below += sorted[i - 1];
        if sorted[i] == sorted[i - 1] {
            continue;
        }
        let (w0, w1) = (i as f64 / n as f64, (n - i) as f64 / n as f64);
        let (m0, m1) = (below / i as f64, (total - below) / (n - i) as f64);
        let between = w0 * w1 * (m1 - m0).powi(2);
        if best.is_none_or(|(b, _)| between > b) {
            best = Some((between, 0.5 * (sorted[i - 1] + sorted[i])));
        }
    }
    best.map(|(_, t)| t)
}

/// Unit centroid and mean member distance of each cluster, in the full
/// space.
fn centroids(points: &Array2<f32>, labels: &[Option<usize>], k: usize) -> (Array2<f32>, Vec<f32>) {
    let mut sums = Array2::<f32>::zeros((k, points.ncols()));
    for (row, l) in points.rows().into_iter().zip(labels) {
        if let Some(c) = l {
            let mut s = sums.row_mut(*c);
            s += &row;
        }
    }
    for mut s in sums.rows_mut() {
        let norm = s.dot(&s).sqrt();
        if norm > 0.0 {
            s /= norm;
        }
    }
    let mut radius = vec![0f32; k];
    let mut members = vec![0usize; k];
    for (row, l) in points.rows().into_iter().zip(labels) {
        if let Some(c) = *l {
            let d = &row - &sums.row(c);
            radius[c] += d.dot(&d).sqrt();
            members[c] += 1;
        }
    }
    for (r, m) in radius.iter_mut().zip(members) {
        *r /= m.max(1) as f32;
    }
    (sums, radius)
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

/// Merges clusters of different blocks whose centroids are within the
/// larger of their mean radii; returns relabelled points (ids compacted)
/// and the number of merges.
fn merge_across_blocks(
    points: &Array2<f32>,
    labels: &[Option<usize>],
    cluster_block: &[usize],
) -> (Vec<Option<usize>>, usize) {
    let k = cluster_block.len();
    let (centres, radius) = centroids(points, labels, k);
    let mut parent: Vec<usize> = (0..k).collect();
    let mut merged = 0;
    for a in 0..k {
        for b in a + 1..k {
            if cluster_block[a] == cluster_block[b] {
                continue;
            }
            let d = &centres.row(a) - &centres.row(b);
            if d.dot(&d).sqrt() <= radius[a].max(radius[b]) {
                let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
                if ra != rb {
                    parent[rb] = ra;
                    merged += 1;
                }
            }
        }
    }
    let mut compact = vec![usize::MAX; k];
    let mut next = 0;
    let relabelled = labels
        .iter()
        .map(|l| {
            l.map(|c| {
                let root = find(&mut parent, c);
                if compact[root] == usize::MAX {
                    compact[root] = next;
                    next += 1;
                }
                compact[root]
            })
        })
        .collect();
    (relabelled, merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn finds_tight_groups_across_blocks_and_merges_split_ones() {
        // 12 tight groups of 30 points around random directions in 64-d,
        // plus 400 scattered points.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (groups, size, d) = (12, 30, 64);
        let n = groups * size + 400;
        let mut p = Array2::<f32>::zeros((n, d));
        let mut truth = vec![-1i64; n];
        let centres: Vec<Vec<f32>> = (0..groups)
            .map(|_| (0..d).map(|_| rng.random_range(-1.0..1.0)).collect())
            .collect();
        for i in 0..n {
            for j in 0..d {
                p[[i, j]] = if i < groups * size {
                    truth[i] = (i / size) as i64;
                    centres[i / size][j] + rng.random_range(-0.03..0.03)
                } else {
                    rng.random_range(-1.0..1.0)
                };
            }
        }
        for mut row in p.rows_mut() {
            let norm = row.dot(&row).sqrt();
            row /= norm;
        }
        let found = blocked_dbscan(&p, 4, 8, 4, NeighbourIndex::KdTree, None, 1).unwrap();
        assert!(found.eps > 0.0 && found.eps < 0.5, "{}", found.eps);
        let q = super::super::quality::cluster_quality(&truth, &found.labels);
        assert!(q.adjusted_rand_index > 0.9, "{q:?}");
        // Every group ends up in one cluster.
        for g in 0..groups {
            let ids: std::collections::BTreeSet<_> =
                found.labels[g * size..(g + 1) * size].iter().collect();
            assert_eq!(ids.len(), 1, "group {g} split: {ids:?}");
        }
    }

    #[test]
    fn merges_only_overlapping_clusters_of_different_blocks() {
        // Clusters 0 and 1 overlap and sit in different blocks; clusters 2
        // and 3 are far from everything.
        let rows = [
            [1.0f32, 0.0],
            [0.99, 0.141], // cluster 0, block 0
            [0.99, 0.141],
            [1.0, 0.0], // cluster 1, block 1
            [0.0, 1.0],
            [0.141, 0.99], // cluster 2, block 1
            [-1.0, 0.0],
            [-0.99, 0.141], // cluster 3, block 2
        ];
        let p = Array2::from_shape_fn((8, 2), |(i, j)| rows[i][j]);
        let labels: Vec<Option<usize>> = [0, 0, 1, 1, 2, 2, 3, 3].map(Some).to_vec();
        let (merged_labels, merged) = merge_across_blocks(&p, &labels, &[0, 1, 1, 2]);
        assert_eq!(merged, 1);
        assert_eq!(merged_labels, [0, 0, 0, 0, 1, 1, 2, 2].map(Some).to_vec());
        // The same two clusters in one block stay apart.
        let (_, merged) = merge_across_blocks(&p, &labels, &[0, 0, 1, 2]);
        assert_eq!(merged, 0);
    }
}
