//! Clustering points: each session's unit text embedding and standardised
//! behavioural features, weighted, concatenated, L2-normalised, and
//! optionally reduced with PCA (then normalised again), so that Euclidean
//! distance tracks cosine distance: `d = sqrt(2 * (1 - cos))`.

use linfa::{
    traits::{Fit, Predict},
    DatasetBase,
};
use linfa_reduction::Pca;
use ndarray::{Array2, Axis};
use rand::{seq::index::sample, SeedableRng};
use rand_chacha::ChaCha8Rng;

use datasets::NUM_FEATURES;

/// PCA is fitted on at most this many points (then applied to all).
pub const PCA_FIT_SAMPLE: usize = 5000;

fn normalise_rows(points: &mut Array2<f32>) {
    for mut row in points.rows_mut() {
        let norm = row.dot(&row).sqrt();
        if norm > 0.0 {
            row /= norm;
        }
    }
}

/// One point per session: `text_weight * e / |e|` next to
/// `feature_weight * z / sqrt(NUM_FEATURES)`, then L2-normalised.
/// `embeddings` and `features` are parallel slices.
pub fn session_points(
    embeddings: &[&[f32]],
    features: &[&[f32; NUM_FEATURES]],
    text_weight: f32,
    feature_weight: f32,
) -> Array2<f32> {
    let text_dim = embeddings.first().map_or(0, |e| e.len());
    let use_features = feature_weight > 0.0;
    let dim = text_dim + if use_features { NUM_FEATURES } else { 0 };
    let mut points = Array2::<f32>::zeros((embeddings.len(), dim));
    let feature_scale = feature_weight / (NUM_FEATURES as f32).sqrt();
    for (i, (e, f)) in embeddings.iter().zip(features).enumerate() {
        let mut row = points.row_mut(i);
        let norm = e.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        for (j, x) in e.iter().enumerate() {
            row[j] = text_weight * x / norm;
        }
        if use_features {
            for (j, z) in f.iter().enumerate() {
                row[text_dim + j] = feature_scale * z;
            }
        }
    }
    normalise_rows(&mut points);
    points
}

/// Projects points on their top `dims` principal components (fitted on a
/// seeded sample of at most [`PCA_FIT_SAMPLE`] points) and normalises the
/// result. Points already in `dims` dimensions or fewer are returned as is.
pub fn reduce(points: Array2<f32>, dims: usize, seed: u64) -> anyhow::Result<Array2<f32>> {
    let (n, d) = points.dim();
    if dims >= d || n < 2 {
        return Ok(points);
    }
    let dims = dims.min(n - 1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut rows = sample(&mut rng, n, n.min(PCA_FIT_SAMPLE)).into_vec();
    rows.sort_unstable();
    let fit_rows = points.select(Axis(0), &rows).mapv(f64::from);
    let pca = Pca::params(dims)
        .fit(&DatasetBase::from(fit_rows))
        .map_err(|e| anyhow::anyhow!("PCA to {dims} dimensions: {e}"))?;
    let mut reduced = pca.predict(&points.mapv(f64::from)).mapv(|x| x as f32);
    normalise_rows(&mut reduced);
    Ok(reduced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_unit_and_weighted() {
        let e1 = [3.0f32, 4.0];
        let f1 = [0f32; NUM_FEATURES];
        let mut f2 = [0f32; NUM_FEATURES];
        f2[0] = (NUM_FEATURES as f32).sqrt();
        let p = session_points(&[&e1, &e1], &[&f1, &f2], 1.0, 1.0);
        assert_eq!(p.dim(), (2, 2 + NUM_FEATURES));
        for row in p.rows() {
            assert!((row.dot(&row) - 1.0).abs() < 1e-6);
        }
        // Row 0: features are zero, so only the text part remains.
        assert!((p[[0, 0]] - 0.6).abs() < 1e-6);
        // Row 1: text (0.6, 0.8) and feature 1.0 weigh the same, then normalise.
        let s = 2f32.sqrt();
        assert!((p[[1, 0]] - 0.6 / s).abs() < 1e-6);
        assert!((p[[1, 2]] - 1.0 / s).abs() < 1e-6);
        // Without features the dimension is the text's.
        assert_eq!(session_points(&[&e1], &[&f1], 1.0, 0.0).dim(), (1, 2));
    }

    #[test]
    fn pca_keeps_the_dominant_structure() {
        // Two groups separated along one axis in 8 dimensions, plus noise.
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut p = Array2::<f32>::zeros((60, 8));
        for i in 0..60 {
            p[[i, 0]] = if i < 30 { 1.0 } else { -1.0 };
            for j in 1..8 {
                p[[i, j]] = rand::Rng::random_range(&mut rng, -0.05..0.05);
            }
        }
        let r = reduce(p, 2, 7).unwrap();
        assert_eq!(r.dim(), (60, 2));
        let same = r.row(0).dot(&r.row(1));
        let other = r.row(0).dot(&r.row(45));
        assert!(same > 0.9, "{same}");
        assert!(other < -0.9, "{other}");
    }
}
