//! The model being served: a loaded bundle with its name and version, held
//! in a slot that reloads swap atomically. Requests keep the `Arc` of the
//! model they were tokenised with, so a swap never mixes two models in one
//! request and never drops in-flight work.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use candle_core::Device;
use models::{
    bundle::Bundle,
    bundle::WEIGHTS_FILE,
    campaign_map::{CampaignMap, CAMPAIGN_MAP_FILE},
    ModelError, Precision,
};

use crate::{error::ApiError, request::ModelRef};

/// A bundle ready to score, with the name and version responses carry.
pub struct LoadedModel {
    /// The bundle.
    pub bundle: Bundle,
    /// Name and version.
    pub model_ref: ModelRef,
    /// The account verdicts of the last batch job, when there is a map.
    pub campaign_map: Option<CampaignMap>,
}

/// The campaign map to load with the bundle in `dir`: `map` when given,
/// else the bundle's own `campaign_map.json` when it has one.
fn campaign_map_of(dir: &Path, map: Option<&Path>) -> Result<Option<CampaignMap>, ModelError> {
    match map {
        Some(path) => CampaignMap::load(path).map(Some),
        None => {
            let path = dir.join(CAMPAIGN_MAP_FILE);
            path.is_file().then(|| CampaignMap::load(&path)).transpose()
        }
    }
}

impl LoadedModel {
    /// Loads the bundle in `dir` onto `device` in `precision`, with the
    /// campaign map at `map` (or the bundle's own); the version is the
    /// first 12 hex digits of the weights file's sha256.
    pub fn load(
        dir: &Path,
        device: &Device,
        precision: Precision,
        map: Option<&Path>,
    ) -> Result<Self, ModelError> {
        let campaign_map = campaign_map_of(dir, map)?;
        let mut bundle = Bundle::load(dir, device)?;
        bundle.set_precision(precision)?;
        let weights = dir.join(WEIGHTS_FILE);
        let sha = datasets::sha256_file(&weights).map_err(|e| ModelError::Format {
            path: weights.clone(),
            message: e.to_string(),
        })?;
        Ok(LoadedModel {
            model_ref: ModelRef {
                name: bundle.metadata.name.clone(),
                version: sha[..12].to_string(),
            },
            bundle,
            campaign_map,
        })
    }
}

/// The model currently served (none until the first load succeeds), and
/// where it came from.
#[derive(Default)]
pub struct ModelSlot {
    current: RwLock<Option<(Arc<LoadedModel>, PathBuf)>>,
    last_error: RwLock<Option<String>>,
}

impl ModelSlot {
    /// The model requests should use now.
    pub fn current(&self) -> Option<Arc<LoadedModel>> {
        read(&self.current).as_ref().map(|(m, _)| m.clone())
    }

    /// Directory of the model served now.
    pub fn current_dir(&self) -> Option<PathBuf> {
        read(&self.current).as_ref().map(|(_, d)| d.clone())
    }

    /// Why the last load failed, if it did.
    pub fn last_error(&self) -> Option<String> {
        read(&self.last_error).clone()
    }

    /// Swaps in a new model; requests already holding the old one finish
    /// with it.
    pub fn install(&self, model: Arc<LoadedModel>, dir: PathBuf) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some((model, dir));
        *self.last_error.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn record_error(&self, message: String) {
        *self.last_error.write().unwrap_or_else(|e| e.into_inner()) = Some(message);
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

/// Loads bundles into a [`ModelSlot`], one load at a time (start-up,
/// `POST /admin/reload`, SIGHUP).
pub struct Reloader {
    slot: Arc<ModelSlot>,
    default_dir: PathBuf,
    campaign_map: Option<PathBuf>,
    device: Device,
    precision: Precision,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl Reloader {
    /// A reloader that loads `default_dir` unless told another directory,
    /// with the campaign map at `campaign_map` (else each bundle's own),
    /// onto `device` in `precision`.
    pub fn new(
        slot: Arc<ModelSlot>,
        default_dir: PathBuf,
        campaign_map: Option<PathBuf>,
        device: Device,
        precision: Precision,
    ) -> Self {
        Reloader {
            slot,
            default_dir,
            campaign_map,
            device,
            precision,
            one_at_a_time: tokio::sync::Mutex::new(()),
        }
    }

    /// Loads the bundle in `dir` (default: the directory served now, or
    /// the configured one) off the async threads and swaps it in. A bundle
    /// that fails to load leaves the current model serving and returns the
    /// error.
    pub async fn reload(&self, dir: Option<PathBuf>) -> Result<ModelRef, ApiError> {
        let _one = self.one_at_a_time.lock().await;
        let dir = dir
            .or_else(|| self.slot.current_dir())
            .unwrap_or_else(|| self.default_dir.clone());
        let device = self.device.clone();
        let load_dir = dir.clone();
        let map = self.campaign_map.clone();
        let precision = self.precision;
        let loaded = tokio::task::spawn_blocking(move || {
            LoadedModel::load(&load_dir, &device, precision, map.as_deref())
        })
        .await
        .map_err(|e| ApiError::Internal(format!("bundle loader failed: {e}")))?;
        match loaded {
            Ok(model) => {
                let model_ref = model.model_ref.clone();
                let kernels = model.bundle.kernels().to_string();
                self.slot.install(Arc::new(model), dir.clone());
                tracing::info!(dir = %dir.display(), name = %model_ref.name, version = %model_ref.version, kernels = %kernels, "model loaded");
                Ok(model_ref)
            }
            Err(e) => {
                let message = format!("cannot load bundle {}: {e}", dir.display());
                tracing::error!("{message}");
                self.slot.record_error(message.clone());
                Err(ApiError::BundleInvalid(message))
            }
        }
    }
}
