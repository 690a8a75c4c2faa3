//! Validated hyper-parameters of coordination discovery (linfa style: a
//! builder, checked once into [`ValidClusterParams`]).

use linfa::ParamGuard;
use linfa_nn::CommonNearestNeighbour;
use models::bundle::Threshold;
use thiserror::Error;

/// Neighbour index DBSCAN's range queries use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NeighbourIndex {
    /// k-d tree: fast in a few dimensions.
    KdTree,
    /// Ball tree.
    BallTree,
    /// Brute force: no build cost, best on unstructured high-dimensional data.
    Linear,
}

impl NeighbourIndex {
    /// The linfa-nn index.
    pub fn linfa(self) -> CommonNearestNeighbour {
        match self {
            NeighbourIndex::KdTree => CommonNearestNeighbour::KdTree,
            NeighbourIndex::BallTree => CommonNearestNeighbour::BallTree,
            NeighbourIndex::Linear => CommonNearestNeighbour::LinearSearch,
        }
    }
}

/// An invalid clustering parameter.
#[derive(Debug, Error, PartialEq)]
pub enum ClusterParamsError {
    /// eps must be in (0, 2] (points are unit vectors).
    #[error("eps must be in (0, 2] for unit vectors, got {0}")]
    Eps(f64),
    /// min_points must be at least 2.
    #[error("min_points must be at least 2, got {0}")]
    MinPoints(usize),
    /// min_accounts must be at least 2.
    #[error("min_accounts must be at least 2, got {0}")]
    MinAccounts(usize),
    /// Weights must be finite, non-negative and not both zero.
    #[error("text_weight {text} and feature_weight {features} must be >= 0 and not both 0")]
    Weights {
        /// Text weight given.
        text: f32,
        /// Feature weight given.
        features: f32,
    },
    /// PCA needs at least one output dimension.
    #[error("pca_dims must be at least 1 (or none to skip PCA)")]
    PcaDims,
    /// The propagation threshold is a probability.
    #[error("propagation_threshold must be in [0, 1], got {0}")]
    PropagationThreshold(f32),
    /// Blocked DBSCAN reduces each block with PCA.
    #[error("blocks ({0}) need pca_dims: every block is reduced with its own PCA")]
    BlocksWithoutPca(usize),
}

/// Checked hyper-parameters of [`super::discover`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ValidClusterParams {
    /// DBSCAN radius in the (unit-vector) point space; `None` = suggest it
    /// from the k-distance curve.
    pub eps: Option<f64>,
    /// DBSCAN core-point neighbourhood size (the point itself included).
    pub min_points: usize,
    /// Distinct accounts for a cluster to count as coordinated.
    pub min_accounts: usize,
    /// Weight of the (unit) text embedding in a point.
    pub text_weight: f32,
    /// Weight of the standardised behavioural features in a point.
    pub feature_weight: f32,
    /// Reduce points to this many dimensions with PCA first.
    pub pca_dims: Option<usize>,
    /// Neighbour index.
    pub index: NeighbourIndex,
    /// Mean account score from which an account in a coordinated cluster
    /// is flagged (propagation).
    pub propagation_threshold: f32,
    /// Seed of PCA's sample and solver.
    pub seed: u64,
    /// Split points into this many k-means blocks, each with its own PCA
    /// and DBSCAN (see [`super::blocks`]); 0 or 1 = one DBSCAN over all.
    pub blocks: usize,
}

/// Default DBSCAN neighbourhood size.
pub const DEFAULT_MIN_POINTS: usize = 4;
/// Default accounts for a coordinated cluster.
pub const DEFAULT_MIN_ACCOUNTS: usize = 3;
/// Default text weight.
pub const DEFAULT_TEXT_WEIGHT: f32 = 1.0;
/// Default feature weight.
pub const DEFAULT_FEATURE_WEIGHT: f32 = 0.5;
/// Default PCA dimensions.
pub const DEFAULT_PCA_DIMS: usize = 16;
/// Propagation threshold of a parameter set built without a bundle (the
/// CLI takes the one saved in the bundle, see [`ClusterArgs::params`]).
pub const DEFAULT_PROPAGATION_THRESHOLD: f32 = 0.5;
/// Default PCA seed.
pub const DEFAULT_SEED: u64 = 17;

/// Unchecked builder of [`ValidClusterParams`]; `check()` validates.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterParams(ValidClusterParams);

impl Default for ClusterParams {
    fn default() -> Self {
        ClusterParams(ValidClusterParams {
            eps: None,
            min_points: DEFAULT_MIN_POINTS,
            min_accounts: DEFAULT_MIN_ACCOUNTS,
            text_weight: DEFAULT_TEXT_WEIGHT,
            feature_weight: DEFAULT_FEATURE_WEIGHT,
            pca_dims: Some(DEFAULT_PCA_DIMS),
            index: NeighbourIndex::KdTree,
            propagation_threshold: DEFAULT_PROPAGATION_THRESHOLD,
            seed: DEFAULT_SEED,
            blocks: 0,
        })
    }
}

impl ClusterParams {
    /// Sets a fixed eps (`None` = suggest from the k-distance curve).
    pub fn eps(mut self, eps: Option<f64>) -> Self {
        self.0.eps = eps;
        self
    }
    /// Sets min_points.
    pub fn min_points(mut self, n: usize) -> Self {
        self.0.min_points = n;
        self
    }
    /// Sets min_accounts.
    pub fn min_accounts(mut self, n: usize) -> Self {
        self.0.min_accounts = n;
        self
    }
    /// Sets the text and feature weights.
    pub fn weights(mut self, text: f32, features: f32) -> Self {
        self.0.text_weight = text;
        self.0.feature_weight = features;
        self
    }
    /// Sets PCA output dimensions (`None` skips PCA).
    pub fn pca_dims(mut self, dims: Option<usize>) -> Self {
        self.0.pca_dims = dims;
        self
    }
    /// Sets the neighbour index.
    pub fn index(mut self, index: NeighbourIndex) -> Self {
        self.0.index = index;
        self
    }
    /// Sets the propagation threshold.
    pub fn propagation_threshold(mut self, t: f32) -> Self {
        self.0.propagation_threshold = t;
        self
    }
    /// Sets the number of k-means blocks (0 or 1: none).
    pub fn blocks(mut self, blocks: usize) -> Self {
        self.0.blocks = blocks;
        self
    }
    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.0.seed = seed;
        self
    }
}

impl ParamGuard for ClusterParams {
    type Checked = ValidClusterParams;
    type Error = ClusterParamsError;

    fn check_ref(&self) -> Result<&ValidClusterParams, ClusterParamsError> {
        let p = &self.0;
        if let Some(eps) = p.eps {
            if !(eps > 0.0 && eps <= 2.0) {
                return Err(ClusterParamsError::Eps(eps));
            }
        }
        if p.min_points < 2 {
            return Err(ClusterParamsError::MinPoints(p.min_points));
        }
        if p.min_accounts < 2 {
            return Err(ClusterParamsError::MinAccounts(p.min_accounts));
        }
        let weight_ok = |w: f32| w.is_finite() && w >= 0.0;
        if !weight_ok(p.text_weight)
            || !weight_ok(p.feature_weight)
            || p.text_weight + p.feature_weight == 0.0
        {
            return Err(ClusterParamsError::Weights {
                text: p.text_weight,
                features: p.feature_weight,
            });
        }
        if p.pca_dims == Some(0) {
            return Err(ClusterParamsError::PcaDims);
        }
        if p.blocks > 1 && p.pca_dims.is_none() {
            return Err(ClusterParamsError::BlocksWithoutPca(p.blocks));
        }
        if !(0.0..=1.0).contains(&p.propagation_threshold) {
            return Err(ClusterParamsError::PropagationThreshold(
                p.propagation_threshold,
            ));
        }
        Ok(p)
    }

    fn check(self) -> Result<ValidClusterParams, ClusterParamsError> {
        self.check_ref()?;
        Ok(self.0)
    }
}

/// Command-line flags of coordination discovery, shared by `train
/// cluster` and `train eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// DBSCAN radius between unit-vector points (sqrt(2 * (1 - cosine)));
    /// omitted: suggested from the k-distance curve.
    #[arg(long)]
    pub eps: Option<f64>,
    /// DBSCAN core-point neighbourhood size, the point itself included.
    #[arg(long, default_value_t = DEFAULT_MIN_POINTS)]
    pub min_points: usize,
    /// Distinct accounts for a cluster to count as coordinated.
    #[arg(long, default_value_t = DEFAULT_MIN_ACCOUNTS)]
    pub min_accounts: usize,
    /// Weight of the text embedding in a clustering point.
    #[arg(long, default_value_t = DEFAULT_TEXT_WEIGHT)]
    pub text_weight: f32,
    /// Weight of the standardised behavioural features (0 = text only).
    #[arg(long, default_value_t = DEFAULT_FEATURE_WEIGHT)]
    pub feature_weight: f32,
    /// PCA dimensions before DBSCAN (0 = no PCA).
    #[arg(long, default_value_t = DEFAULT_PCA_DIMS)]
    pub pca_dims: usize,
    /// Neighbour index of DBSCAN's range queries.
    #[arg(long, value_enum, default_value_t = NeighbourIndex::KdTree)]
    pub neighbour_index: NeighbourIndex,
    /// Mean account score from which an account in a coordinated cluster
    /// is flagged (cluster propagation) [default: the bundle's, chosen on
    /// validation for `fit --propagation-fpr`].
    #[arg(long)]
    pub propagation_threshold: Option<f32>,
    /// Seed of PCA's fitting sample.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub cluster_seed: u64,
    /// Large files: split sessions into this many k-means blocks, each
    /// with its own PCA and DBSCAN, one eps for all (0 = one DBSCAN over
    /// everything; see docs/evaluation.md).
    #[arg(long, default_value_t = 0)]
    pub blocks: usize,
}

impl ClusterArgs {
    /// The checked parameters; the propagation threshold, when not given,
    /// is the one saved with the bundle (`saved`).
    pub fn params(&self, saved: &Threshold) -> Result<ValidClusterParams, ClusterParamsError> {
        if self.propagation_threshold.is_none() && saved.propagation.is_none() {
            tracing::warn!(
                "the bundle saves no propagation threshold (it predates them): propagation uses the session threshold and adds no account; pass --propagation-threshold"
            );
        }
        ClusterParams::default()
            .eps(self.eps)
            .min_points(self.min_points)
            .min_accounts(self.min_accounts)
            .weights(self.text_weight, self.feature_weight)
            .pca_dims((self.pca_dims > 0).then_some(self.pca_dims))
            .index(self.neighbour_index)
            .propagation_threshold(
                self.propagation_threshold
                    .unwrap_or_else(|| saved.propagation_threshold()),
            )
            .seed(self.cluster_seed)
            .blocks(self.blocks)
            .check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_invalid_parameter_is_rejected() {
        let d = ClusterParams::default;
        assert!(d().check().is_ok());
        assert_eq!(
            d().eps(Some(0.0)).check(),
            Err(ClusterParamsError::Eps(0.0))
        );
        assert_eq!(
            d().eps(Some(2.5)).check(),
            Err(ClusterParamsError::Eps(2.5))
        );
        assert_eq!(
            d().min_points(1).check(),
            Err(ClusterParamsError::MinPoints(1))
        );
        assert_eq!(
            d().min_accounts(1).check(),
            Err(ClusterParamsError::MinAccounts(1))
        );
        assert!(matches!(
            d().weights(0.0, 0.0).check(),
            Err(ClusterParamsError::Weights { .. })
        ));
        assert!(matches!(
            d().weights(f32::NAN, 1.0).check(),
            Err(ClusterParamsError::Weights { .. })
        ));
        assert_eq!(
            d().pca_dims(Some(0)).check(),
            Err(ClusterParamsError::PcaDims)
        );
        assert_eq!(
            d().pca_dims(None).blocks(8).check(),
            Err(ClusterParamsError::BlocksWithoutPca(8))
        );
        assert_eq!(
            d().propagation_threshold(1.5).check(),
            Err(ClusterParamsError::PropagationThreshold(1.5))
        );
    }
}
