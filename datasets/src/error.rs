//! Errors that name the file, line and field at fault.

use std::{fmt, io, path::PathBuf};

/// One bad input line (JSONL) or row (Parquet): where it is and what is
/// wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// File the line came from (as given by the caller).
    pub file: String,
    /// JSONL: 1-based line number. Parquet: the row's index inside
    /// `row_group`, from 0.
    pub line: u64,
    /// Parquet only: the row group's index in the file, from 0.
    pub row_group: Option<u64>,
    /// Field path inside the record (`events[2].ts`), or `None` when the
    /// line is not a JSON object at all.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.row_group {
            Some(group) => write!(f, "{}: row group {group}, row {}", self.file, self.line)?,
            None => write!(f, "{}:{}", self.file, self.line)?,
        }
        match &self.field {
            Some(field) => write!(f, ": field `{field}`: {}", self.message),
            None => write!(f, ": {}", self.message),
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
    /// A column of a Parquet file is missing or of a type that cannot be
    /// read as the field it holds.
    #[error("{}: column `{column}`: {message}", path.display())]
    Column {
        /// File concerned.
        path: PathBuf,
        /// Column path (`events.ts`).
        column: String,
        /// What is wrong.
        message: String,
    },
    /// A Parquet file could not be decoded (not Parquet, truncated, a
    /// corrupt page) or encoded.
    #[error("{}: {location}: {source}", path.display())]
    Parquet {
        /// File concerned.
        path: PathBuf,
        /// Where in the file: `footer`, `row group 3`, ...
        location: String,
        /// Underlying error.
        source: parquet::errors::ParquetError,
    },
    /// Records could not be turned into Arrow arrays.
    #[error("{}: cannot build Arrow arrays: {source}", path.display())]
    Arrow {
        /// File being written.
        path: PathBuf,
        /// Underlying error.
        source: arrow_schema::ArrowError,
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
