//! Validated hyper-parameters of coordination discovery (linfa style: a
//! builder, checked once into [`ValidClusterParams`]).

use linfa::ParamGuard;
use linfa_nn::CommonNearestNeighbour;
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
}

/// Unchecked builder of [`ValidClusterParams`]; `check()` validates.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterParams(ValidClusterParams);

impl Default for ClusterParams {
    fn default() -> Self {
        ClusterParams(ValidClusterParams {
            eps: None,
            min_points: 4,
            min_accounts: 3,
            text_weight: 1.0,
            feature_weight: 0.5,
            pca_dims: Some(32),
            index: NeighbourIndex::KdTree,
            propagation_threshold: 0.5,
            seed: 17,
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
            d().propagation_threshold(1.5).check(),
            Err(ClusterParamsError::PropagationThreshold(1.5))
        );
    }
}
