//! Suggesting DBSCAN's `eps` from the k-distance curve: every point's
//! distance to its k-th nearest neighbour, sorted; `eps` is taken at the
//! knee, the point of the curve farthest below the chord joining its ends.

use linfa_nn::{distance::L2Dist, NearestNeighbour};
use ndarray::Array2;

use super::params::NeighbourIndex;

/// The k-distance curve (ascending) of `points`, computed for every
/// `stride`-th point so large sets stay fast.
pub fn k_distances(
    points: &Array2<f32>,
    k: usize,
    stride: usize,
    index: NeighbourIndex,
) -> anyhow::Result<Vec<f32>> {
    let nn = index
        .linfa()
        .from_batch(points, L2Dist)
        .map_err(|e| anyhow::anyhow!("building the neighbour index: {e}"))?;
    let mut out = Vec::new();
    for i in (0..points.nrows()).step_by(stride.max(1)) {
        // The point itself comes back first at distance 0.
        let found = nn
            .k_nearest(points.row(i), k + 1)
            .map_err(|e| anyhow::anyhow!("k-nearest query: {e}"))?;
        if let Some((p, _)) = found.last() {
            let d = (&p.to_owned() - &points.row(i))
                .mapv(|x| x * x)
                .sum()
                .sqrt();
            out.push(d);
        }
    }
    out.sort_by(f32::total_cmp);
    Ok(out)
}

/// The knee of an ascending curve: the value at the index farthest below
/// the straight line from the first to the last value. `None` for fewer
/// than three values or a flat curve.
pub fn knee(curve: &[f32]) -> Option<f32> {
    let n = curve.len();
    if n < 3 {
        return None;
    }
    let (first, last) = (curve[0], curve[n - 1]);
    if last <= first {
        return None;
    }
    let mut best = (0.0f32, None);
    for (i, &y) in curve.iter().enumerate() {
        let line = first + (last - first) * i as f32 / (n - 1) as f32;
        let gap = line - y;
        if gap > best.0 {
            best = (gap, Some(y));
        }
    }
    best.1
}

/// Suggested eps: the knee of the k-distance curve (k = `min_points - 1`,
/// DBSCAN counts the point itself), sampled on at most `sample` points.
/// Falls back to the curve's median when it has no knee.
pub fn suggest_eps(
    points: &Array2<f32>,
    min_points: usize,
    sample: usize,
    index: NeighbourIndex,
) -> anyhow::Result<Option<f64>> {
    let n = points.nrows();
    let k = min_points.saturating_sub(1).max(1);
    if n <= k {
        return Ok(None);
    }
    let stride = n.div_ceil(sample.max(1));
    let curve = k_distances(points, k, stride, index)?;
    let eps = knee(&curve).or_else(|| curve.get(curve.len() / 2).copied());
    Ok(eps.filter(|&e| e > 0.0).map(f64::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knee_of_a_hockey_stick() {
        let mut curve: Vec<f32> = (0..90).map(|i| 0.01 + i as f32 * 0.0001).collect();
        curve.extend((0..10).map(|i| 0.1 + i as f32 * 0.2));
        let k = knee(&curve).unwrap();
        assert!((0.015..=0.1).contains(&k), "{k}");
        assert_eq!(knee(&[1.0, 1.0, 1.0]), None);
        assert_eq!(knee(&[1.0, 2.0]), None);
    }

    #[test]
    fn eps_separates_tight_groups_from_the_gap_between_them() {
        // Two tight groups 1.0 apart: the suggestion is well under the gap.
        let mut p = Array2::<f32>::zeros((40, 2));
        for i in 0..40 {
            p[[i, 0]] = if i < 20 { 0.0 } else { 1.0 };
            p[[i, 1]] = (i % 20) as f32 * 0.001;
        }
        let eps = suggest_eps(&p, 4, 100, NeighbourIndex::Linear)
            .unwrap()
            .unwrap();
        assert!(eps > 0.0 && eps < 0.5, "{eps}");
    }
}
