//! Warm starts (`fit --init-from BUNDLE`): fine-tuning that begins from an
//! exported bundle's encoder, head and feature normalisation instead of the
//! base model and a fresh head, as a retrain does when a new campaign has
//! been labeled (start from the detector in production, add the labels).

use std::path::Path;

use anyhow::{bail, Context, Result};
use models::{
    base_model::{self, ModelFiles},
    bundle::{read_json, BundleMetadata, ParentBundle, HEAD_FILE, METADATA_FILE, NORM_FILE},
    FeatureNormalizer, HeadConfig,
};

/// What a warm start takes from the bundle it begins from.
pub struct WarmStart {
    /// Its encoder config, weights (encoder and head) and tokenizer.
    pub files: ModelFiles,
    /// Its head shape and session input (token budget, prompts kept).
    pub head: HeadConfig,
    /// Its feature normalisation.
    pub norm: FeatureNormalizer,
    /// The base model it was fine-tuned from.
    pub base_model: String,
    /// What the new bundle records as its parent.
    pub parent: ParentBundle,
}

/// Reads the bundle in `dir` for a warm start.
pub fn load(dir: &Path) -> Result<WarmStart> {
    if !dir.is_dir() {
        bail!("--init-from {}: no such bundle directory", dir.display());
    }
    let context = || format!("--init-from {}", dir.display());
    let (files, _) = base_model::resolve(&dir.display().to_string()).with_context(context)?;
    let head: HeadConfig = read_json(&dir.join(HEAD_FILE)).with_context(context)?;
    let norm: FeatureNormalizer = read_json(&dir.join(NORM_FILE)).with_context(context)?;
    let metadata: BundleMetadata = read_json(&dir.join(METADATA_FILE)).with_context(context)?;
    let sha = datasets::sha256_file(&files.weights).with_context(context)?;
    Ok(WarmStart {
        base_model: metadata.base_model,
        parent: ParentBundle {
            dir: dir.display().to_string(),
            name: metadata.name,
            version: sha[..12].to_string(),
            created_at: metadata.created_at,
            data_files: metadata.data_files,
        },
        files,
        head,
        norm,
    })
}
