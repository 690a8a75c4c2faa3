//! Loading Hugging Face safetensors checkpoints into a trainable `VarMap`.
//!
//! A memory-mapped `VarBuilder` is read-only, so the model is first built on
//! a `VarMap` (which creates every variable), then each variable is set from
//! the checkpoint. Tensor names may carry a `bert.` prefix (most BERT
//! checkpoints) or not (sentence-transformers exports such as
//! all-MiniLM-L6-v2); both are accepted.

use std::path::Path;

use candle_nn::VarMap;

use crate::error::{ModelError, Result};

/// What a checkpoint load did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Variables set from the checkpoint.
    pub loaded: Vec<String>,
    /// Optional variables the checkpoint lacks (they keep their
    /// initialisation), e.g. a new classification head.
    pub initialised: Vec<String>,
    /// Checkpoint tensors no variable uses (e.g. `pooler.*`).
    pub unused: Vec<String>,
}

/// Sets every variable of `varmap` from the safetensors file at `path`.
/// Variables for which `optional(name)` is true may be absent; any other
/// absent variable, or a shape mismatch, is an error naming the tensor.
pub fn load_into(
    varmap: &VarMap,
    path: &Path,
    optional: impl Fn(&str) -> bool,
) -> Result<LoadReport> {
    let vars = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    let device = match vars.values().next() {
        Some(v) => v.device().clone(),
        None => candle_core::Device::Cpu,
    };
    let tensors =
        candle_core::safetensors::load(path, &device).map_err(|e| ModelError::Format {
            path: path.to_path_buf(),
            message: format!("not a readable safetensors file: {e}"),
        })?;
    let prefix = if tensors.keys().any(|k| k.starts_with("bert.")) {
        "bert."
    } else {
        ""
    };
    let mut report = LoadReport::default();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for name in names {
        let var = &vars[name];
        let key = format!("{prefix}{name}");
        let tensor = tensors.get(&key).or_else(|| tensors.get(name.as_str()));
        match tensor {
            Some(t) => {
                if t.dims() != var.dims() {
                    return Err(ModelError::Format {
                        path: path.to_path_buf(),
                        message: format!(
                            "tensor `{key}` has shape {:?}, the model expects {:?}",
                            t.dims(),
                            var.dims()
                        ),
                    });
                }
                var.set(&t.to_dtype(var.dtype())?)?;
                report.loaded.push(name.clone());
            }
            None if optional(name) => report.initialised.push(name.clone()),
            None => {
                return Err(ModelError::Format {
                    path: path.to_path_buf(),
                    message: format!("missing tensor `{key}`"),
                })
            }
        }
    }
    let mut unused: Vec<String> = tensors
        .keys()
        .filter(|k| {
            let bare = k.strip_prefix(prefix).unwrap_or(k);
            !vars.contains_key(bare) && !vars.contains_key(k.as_str())
        })
        .cloned()
        .collect();
    unused.sort();
    report.unused = unused;
    tracing::debug!(
        loaded = report.loaded.len(),
        initialised = report.initialised.len(),
        unused = report.unused.len(),
        "checkpoint loaded from {}",
        path.display()
    );
    Ok(report)
}
