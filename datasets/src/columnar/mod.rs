//! Parquet beside JSONL. Every command that reads or writes a data file
//! picks the format from the file's extension ([`DataFormat::of_path`]):
//! `.parquet` or `.pq` is Parquet, anything else JSONL (plain or gzip).
//! The Arrow layout mirrors `docs/data-format.md`: sessions hold their
//! events as a list of structs, raw request logs are a flat table.

mod columns;
mod parquet_file;
mod records;

use std::{io::BufRead, path::Path, path::PathBuf};

use serde::Serialize;

pub use columns::{timestamp_type, Column, ColumnProblem, Columns, FieldProblem, Kind};
pub use parquet_file::{ParquetReader, ParquetWriter, ROW_GROUP_ROWS};
pub use records::{text_array, time_array, ArrowRecord};

use crate::{
    error::DataError,
    reader::{open_input, BadLinePolicy, JsonlReader, ReadStats, Record},
    writer::JsonlWriter,
};

/// The two file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFormat {
    /// One JSON object per line, plain or gzip.
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

impl DataFormat {
    /// Parquet for a `.parquet` or `.pq` extension (any case), else JSONL.
    pub fn of_path(path: &Path) -> Self {
        let ext = path.extension().map(|e| e.to_ascii_lowercase());
        match ext.as_ref().and_then(|e| e.to_str()) {
            Some("parquet" | "pq") => DataFormat::Parquet,
            _ => DataFormat::Jsonl,
        }
    }
}

/// A stream of records from a file of either format.
pub enum RecordSource<T> {
    /// A JSONL file.
    Jsonl(JsonlReader<T, Box<dyn BufRead + Send>>),
    /// A Parquet file.
    Parquet(ParquetReader<T>),
}

impl<T: Record + ArrowRecord> RecordSource<T> {
    /// Opens `path` in the format of its extension.
    pub fn open(path: &Path, policy: BadLinePolicy) -> Result<Self, DataError> {
        Ok(match DataFormat::of_path(path) {
            DataFormat::Jsonl => RecordSource::Jsonl(JsonlReader::new(
                open_input(path)?,
                path.display().to_string(),
                policy,
            )),
            DataFormat::Parquet => RecordSource::Parquet(ParquetReader::open(path, policy)?),
        })
    }

    /// Counters so far (complete once the iterator is exhausted).
    pub fn stats(&self) -> &ReadStats {
        match self {
            RecordSource::Jsonl(r) => r.stats(),
            RecordSource::Parquet(r) => r.stats(),
        }
    }
}

impl<T: Record + ArrowRecord> Iterator for RecordSource<T> {
    type Item = Result<T, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            RecordSource::Jsonl(r) => r.next(),
            RecordSource::Parquet(r) => r.next(),
        }
    }
}

/// An atomic writer of records to a file of either format.
// One per open file: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
pub enum RecordSink<T> {
    /// A JSONL file (gzip when the name ends in `.gz`).
    Jsonl(JsonlWriter),
    /// A Parquet file.
    Parquet(ParquetWriter<T>),
}

impl<T: Serialize + ArrowRecord + Clone> RecordSink<T> {
    /// Starts `path` in the format of its extension; nothing at `path`
    /// changes until [`Self::finish`].
    pub fn create(path: &Path) -> Result<Self, DataError> {
        Ok(match DataFormat::of_path(path) {
            DataFormat::Jsonl => RecordSink::Jsonl(JsonlWriter::create(path)?),
            DataFormat::Parquet => RecordSink::Parquet(ParquetWriter::create(path)?),
        })
    }

    /// Appends one record.
    pub fn write(&mut self, record: &T) -> Result<(), DataError> {
        match self {
            RecordSink::Jsonl(w) => w.write(record),
            RecordSink::Parquet(w) => w.write(record),
        }
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        match self {
            RecordSink::Jsonl(w) => w.records(),
            RecordSink::Parquet(w) => w.records(),
        }
    }

    /// Completes the file and moves it into place.
    pub fn finish(self) -> Result<PathBuf, DataError> {
        match self {
            RecordSink::Jsonl(w) => w.finish(),
            RecordSink::Parquet(w) => w.finish(),
        }
    }
}
