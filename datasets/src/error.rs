//! Errors that name the file, line and field at fault.

use std::{fmt, io, path::PathBuf};

/// One bad input line: where it is and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// File the line came from (as given by the caller).
    pub file: String,
    /// 1-based line number.
    pub line: u64,
    /// Field path inside the record (`events[2].ts`), or `None` when the
    /// line is not a JSON object at all.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(
                f,
                "{}:{}: field `{}`: {}",
                self.file, self.line, field, self.message
            ),
            None => write!(f, "{}:{}: {}", self.file, self.line, self.message),
        }
    }
}

impl std::error::Error for LineError {}

/// Everything that can go wrong reading or writing project data files.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A line broke the data contract.
    #[error("{0}")]
    Line(#[from] LineError),
    /// The file could not be opened, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// File concerned.
        path: PathBuf,
        /// Underlying error.
        source: io::Error,
    },
    /// A record could not be serialised.
    #[error("{}: cannot serialise record: {source}", path.display())]
    Serialize {
        /// File being written.
        path: PathBuf,
        /// Underlying error.
        source: serde_json::Error,
    },
}

impl DataError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }
}
