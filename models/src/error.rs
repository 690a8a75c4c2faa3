//! Model errors.

use std::path::{Path, PathBuf};

/// Everything that can go wrong building, loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Tensor computation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// File concerned.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The tokenizer failed or lacks a required token.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A file has the wrong content.
    #[error("{}: {message}", path.display())]
    Format {
        /// File concerned.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A device name could not be used.
    #[error("device {name:?}: {message}")]
    Device {
        /// The name as given.
        name: String,
        /// Why it cannot be used.
        message: String,
    },
    /// An inference precision this CPU cannot run.
    #[error("{0}")]
    Precision(String),
}

impl ModelError {
    /// Wraps an I/O error with its path.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Result of model operations.
pub type Result<T> = std::result::Result<T, ModelError>;
