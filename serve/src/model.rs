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

use crate::{
    drift::{ScoreWindow, DRIFT_WINDOW_SESSIONS},
    error::ApiError,
    request::ModelRef,
};

/// A bundle ready to score, with the name and version responses carry.
pub struct LoadedModel {
    /// The bundle.
    pub bundle: Bundle,
    /// Name and version.
    pub model_ref: ModelRef,
    /// The account verdicts of the last batch job, when there is a map.
    pub campaign_map: Option<CampaignMap>,
    /// The drift of the scores this model gave (none when its bundle has
    /// no validation score reference).
    pub drift: Option<ScoreWindow>,
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
            drift: bundle
                .threshold
                .score_reference
                .clone()
                .map(|r| ScoreWindow::new(r, DRIFT_WINDOW_SESSIONS)),
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

/// `requested` (relative: to `root`) as an existing directory inside
/// `root`, after resolving links and `..`; the same error whether it is
/// missing or outside, so that answers do not map the host's files.
pub fn confine(root: &Path, requested: &Path) -> Result<PathBuf, ApiError> {
    let refused = || {
        ApiError::Forbidden(
            "model_dir must name an existing bundle directory under the server's bundle root \
             (--bundle-root)"
                .into(),
        )
    };
    let root = root.canonicalize().map_err(|_| refused())?;
    match root.join(requested).canonicalize() {
        Ok(dir) if dir.starts_with(&root) && dir.is_dir() => Ok(dir),
        _ => Err(refused()),
    }
}

/// What went wrong loading a bundle, naming files by their names only
/// (the log has the full error).
fn without_host_paths(error: &ModelError) -> String {
    let name = |path: &Path| {
        path.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    };
    match error {
        ModelError::Io { path, source } => format!("{}: {}", name(path), source.kind()),
        ModelError::Format { path, message } => format!("{}: {message}", name(path)),
        _ => "not a complete, valid bundle (the server log has the details)".into(),
    }
}

/// `dir` relative to `root` when inside it, else its last component.
fn name_under(root: &Path, dir: &Path) -> String {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    dir.strip_prefix(&root)
        .ok()
        .or_else(|| dir.file_name().map(Path::new))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

/// Loads bundles into a [`ModelSlot`], one load at a time (start-up,
/// `POST /admin/reload`, SIGHUP).
pub struct Reloader {
    slot: Arc<ModelSlot>,
    default_dir: PathBuf,
    bundle_root: PathBuf,
    campaign_map: Option<PathBuf>,
    device: Device,
    precision: Precision,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl Reloader {
    /// A reloader that loads `default_dir` unless told another directory
    /// under `bundle_root`, with the campaign map at `campaign_map` (else
    /// each bundle's own), onto `device` in `precision`.
    pub fn new(
        slot: Arc<ModelSlot>,
        default_dir: PathBuf,
        bundle_root: PathBuf,
        campaign_map: Option<PathBuf>,
        device: Device,
        precision: Precision,
    ) -> Self {
        Reloader {
            slot,
            default_dir,
            bundle_root,
            campaign_map,
            device,
            precision,
            one_at_a_time: tokio::sync::Mutex::new(()),
        }
    }

    /// Loads the bundle in `requested` (a client's choice: confined to the
    /// bundle root; default: the directory served now, or the configured
    /// one) off the async threads and swaps it in. A bundle that fails to
    /// load leaves the current model serving and returns the error, which
    /// names the bundle relative to the root and no other host path (the
    /// log has the details).
    pub async fn reload(&self, requested: Option<PathBuf>) -> Result<ModelRef, ApiError> {
        let _one = self.one_at_a_time.lock().await;
        let dir = match requested {
            Some(requested) => confine(&self.bundle_root, &requested)?,
            None => self
                .slot
                .current_dir()
                .unwrap_or_else(|| self.default_dir.clone()),
        };
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
                tracing::error!("cannot load bundle {}: {e}", dir.display());
                let message = format!(
                    "cannot load bundle {:?}: {}",
                    name_under(&self.bundle_root, &dir),
                    without_host_paths(&e)
                );
                self.slot.record_error(message.clone());
                Err(ApiError::BundleInvalid(message))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_paths_stay_under_the_bundle_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("bundles");
        std::fs::create_dir_all(root.join("b1")).unwrap();
        std::fs::create_dir_all(tmp.path().join("outside")).unwrap();
        let inside = confine(&root, Path::new("b1")).unwrap();
        assert_eq!(inside, root.join("b1").canonicalize().unwrap());
        assert_eq!(confine(&root, &root.join("b1")).unwrap(), inside);
        for refused in [
            PathBuf::from("/etc"),
            PathBuf::from("../outside"),
            PathBuf::from("b1/../../outside"),
            PathBuf::from("missing"),
            tmp.path().join("outside"),
        ] {
            let err = confine(&root, &refused).unwrap_err();
            assert!(
                matches!(err, ApiError::Forbidden(_)),
                "{refused:?}: {err:?}"
            );
            let text = err.to_string();
            assert!(!text.contains("etc") && !text.contains("outside"), "{text}");
        }
        assert_eq!(name_under(&root, &inside), "b1");
        assert_eq!(name_under(&root, Path::new("/srv/x/bundle")), "bundle");
    }

    #[cfg(unix)]
    #[test]
    fn a_link_out_of_the_root_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("bundles");
        std::fs::create_dir_all(&root).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("escape")).unwrap();
        assert!(confine(&root, Path::new("escape")).is_err());
    }
}
