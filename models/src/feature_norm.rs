//! Standardisation of the behavioural features with statistics saved at
//! training time (`feature_norm.json` in a bundle).

use std::path::Path;

use datasets::{FeatureVector, FEATURE_NAMES, NUM_FEATURES};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// Standardised values are clipped to `[-CLIP, CLIP]`, so one wild value
/// (a burst of thousands of requests a minute) cannot dominate the head.
pub const CLIP: f32 = 6.0;

/// Per-feature mean and standard deviation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureNormalizer {
    /// Feature names, in vector order (checked against the code on load).
    pub names: Vec<String>,
    /// Training-set means.
    pub mean: Vec<f32>,
    /// Training-set standard deviations (1 where a feature is constant).
    pub std: Vec<f32>,
}

impl FeatureNormalizer {
    /// Fits mean and standard deviation on training feature vectors.
    pub fn fit(rows: &[FeatureVector]) -> Self {
        let n = rows.len().max(1) as f64;
        let mut mean = vec![0f64; NUM_FEATURES];
        for r in rows {
            for (m, v) in mean.iter_mut().zip(r) {
                *m += f64::from(*v) / n;
            }
        }
        let mut var = vec![0f64; NUM_FEATURES];
        for r in rows {
            for ((s, v), m) in var.iter_mut().zip(r).zip(&mean) {
                *s += (f64::from(*v) - m).powi(2) / n;
            }
        }
        FeatureNormalizer {
            names: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
            mean: mean.iter().map(|&m| m as f32).collect(),
            std: var
                .iter()
                .map(|&v| {
                    if v.sqrt() > 1e-6 {
                        v.sqrt() as f32
                    } else {
                        1.0
                    }
                })
                .collect(),
        }
    }

    /// Standardised, clipped copy of a feature vector.
    pub fn apply(&self, row: &FeatureVector) -> FeatureVector {
        let mut out = [0f32; NUM_FEATURES];
        for (i, o) in out.iter_mut().enumerate() {
            *o = ((row[i] - self.mean[i]) / self.std[i]).clamp(-CLIP, CLIP);
        }
        out
    }

    /// Standardised rows as a (rows, NUM_FEATURES) tensor.
    pub fn tensor(
        &self,
        rows: &[FeatureVector],
        device: &candle_core::Device,
    ) -> Result<candle_core::Tensor> {
        let values: Vec<f32> = rows.iter().flat_map(|r| self.apply(r)).collect();
        Ok(candle_core::Tensor::from_vec(
            values,
            (rows.len(), NUM_FEATURES),
            device,
        )?)
    }

    /// Reads `feature_norm.json`, checking it was made for these features.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        let norm: FeatureNormalizer =
            serde_json::from_str(&text).map_err(|e| ModelError::Format {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let expected: Vec<&str> = FEATURE_NAMES.to_vec();
        if norm.names != expected
            || norm.mean.len() != NUM_FEATURES
            || norm.std.len() != NUM_FEATURES
        {
            return Err(ModelError::Format {
                path: path.to_path_buf(),
                message: format!(
                    "feature statistics are for features {:?}, this build computes {expected:?}",
                    norm.names
                ),
            });
        }
        Ok(norm)
    }
}
