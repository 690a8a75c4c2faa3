//! Resolving `--base-model`: a local Hugging Face layout directory, or a hub
//! id found in the hf-hub cache first and downloaded second.

use std::path::{Path, PathBuf};

use crate::error::{ModelError, Result};

/// The files of a BERT-family checkpoint in Hugging Face layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFiles {
    /// `config.json`.
    pub config: PathBuf,
    /// `model.safetensors`.
    pub weights: PathBuf,
    /// `tokenizer.json`.
    pub tokenizer: PathBuf,
}

/// File names a checkpoint must provide.
pub const REQUIRED_FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];

/// Where a base model came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A directory given on the command line.
    Directory,
    /// The local hf-hub cache.
    HubCache,
    /// Downloaded from the hub just now.
    Download,
}

fn from_dir(dir: &Path) -> Result<ModelFiles> {
    let file = |name: &str| -> Result<PathBuf> {
        let p = dir.join(name);
        if p.is_file() {
            Ok(p)
        } else {
            Err(ModelError::Format {
                path: dir.to_path_buf(),
                message: format!("model directory lacks {name} (needs {REQUIRED_FILES:?})"),
            })
        }
    };
    Ok(ModelFiles {
        config: file("config.json")?,
        weights: file("model.safetensors")?,
        tokenizer: file("tokenizer.json")?,
    })
}

/// The hf-hub cache: `$HF_HOME/hub`, else `~/.cache/huggingface/hub`;
/// `None` when neither variable is set.
pub fn hub_cache() -> Option<hf_hub::Cache> {
    let root = match std::env::var_os("HF_HOME") {
        Some(home) => PathBuf::from(home),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/huggingface"),
    };
    Some(hf_hub::Cache::new(root.join("hub")))
}

/// Resolves `spec` to checkpoint files: an existing directory is used as
/// is; otherwise `spec` is a hub id (`owner/name`) looked up in the hf-hub
/// cache (`HF_HOME`), then downloaded unless
/// `HF_HUB_OFFLINE` is set. Without a hub, `scripts/fetch-base-model.sh`
/// fills the cache for the default model.
pub fn resolve(spec: &str) -> Result<(ModelFiles, Source)> {
    let dir = Path::new(spec);
    if dir.is_dir() {
        return Ok((from_dir(dir)?, Source::Directory));
    }
    let cache = hub_cache();
    let found: Option<Vec<PathBuf>> = cache.as_ref().and_then(|c| {
        let cached = c.model(spec.to_string());
        REQUIRED_FILES.iter().map(|f| cached.get(f)).collect()
    });
    if let Some(paths) = found {
        let [config, weights, tokenizer]: [PathBuf; 3] =
            paths.try_into().expect("three required files");
        return Ok((
            ModelFiles {
                config,
                weights,
                tokenizer,
            },
            Source::HubCache,
        ));
    }
    let cache_dir = cache.as_ref().map_or("(no HF_HOME or HOME)".into(), |c| {
        c.path().display().to_string()
    });
    let not_found = |why: String| ModelError::Format {
        path: PathBuf::from(spec),
        message: format!(
            "base model not found: not a directory, not in the hf-hub cache at {}, and {why}. \
             Without network access run scripts/fetch-base-model.sh (all-MiniLM-L6-v2) or pass a \
             directory with {REQUIRED_FILES:?}",
            cache_dir
        ),
    };
    if std::env::var_os("HF_HUB_OFFLINE").is_some_and(|v| v != "0") {
        return Err(not_found("HF_HUB_OFFLINE is set".into()));
    }
    let cache = cache.ok_or_else(|| not_found("there is no cache directory".into()))?;
    let api = hf_hub::api::sync::ApiBuilder::from_cache(cache)
        .with_progress(true)
        .build()
        .map_err(|e| not_found(format!("the hub client failed to start ({e})")))?;
    let repo = api.model(spec.to_string());
    let mut paths = Vec::new();
    for f in REQUIRED_FILES {
        paths.push(
            repo.get(f)
                .map_err(|e| not_found(format!("downloading {f} failed ({e})")))?,
        );
    }
    let [config, weights, tokenizer]: [PathBuf; 3] =
        paths.try_into().expect("three required files");
    Ok((
        ModelFiles {
            config,
            weights,
            tokenizer,
        },
        Source::Download,
    ))
}
