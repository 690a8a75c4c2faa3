//! Parquet files of [`ArrowRecord`]s: a streaming reader with the same
//! bad-row policies as the JSONL reader, and an atomic writer.

use std::{collections::HashSet, fs::File, marker::PhantomData, path::Path, path::PathBuf};

use parquet::{
    arrow::{arrow_reader::ParquetRecordBatchReaderBuilder, ArrowWriter},
    basic::{Compression, ZstdLevel},
    file::properties::WriterProperties,
};
use tempfile::NamedTempFile;

use super::{columns::FieldProblem, records::ArrowRecord};
use crate::{
    error::{DataError, LineError},
    reader::{check_record, BadLinePolicy, ReadStats, Record, KEPT_ERRORS},
    writer::{publish, temp_beside},
};

/// Rows decoded at a time: a reader holds one batch of them.
const BATCH_ROWS: usize = 4096;
/// Rows per row group a writer starts.
pub const ROW_GROUP_ROWS: usize = 65_536;

/// Iterator over the records of a Parquet file, one batch in memory at a
/// time. A missing column, a column of the wrong type or an unreadable
/// file ends iteration with an error under either policy; a bad value
/// fails its row, which [`BadLinePolicy::Skip`] skips and counts.
pub struct ParquetReader<T> {
    path: PathBuf,
    policy: BadLinePolicy,
    batches: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    /// Cumulative rows at the end of each row group.
    group_ends: Vec<u64>,
    /// File row of the next batch's first row.
    next_row: u64,
    pending: std::vec::IntoIter<(u64, Result<T, FieldProblem>)>,
    seen: HashSet<String>,
    stats: ReadStats,
    done: bool,
}

fn parquet_error(path: &Path, location: &str, source: parquet::errors::ParquetError) -> DataError {
    DataError::Parquet {
        path: path.to_path_buf(),
        location: location.into(),
        source,
    }
}

impl<T: ArrowRecord + Record> ParquetReader<T> {
    /// Opens `path`; fails when it is not a complete Parquet file.
    pub fn open(path: &Path, policy: BadLinePolicy) -> Result<Self, DataError> {
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| parquet_error(path, "footer", e))?;
        let group_ends = builder
            .metadata()
            .row_groups()
            .iter()
            .scan(0u64, |end, g| {
                *end += g.num_rows() as u64;
                Some(*end)
            })
            .collect();
        let batches = builder
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|e| parquet_error(path, "footer", e))?;
        Ok(ParquetReader {
            path: path.to_path_buf(),
            policy,
            batches,
            group_ends,
            next_row: 0,
            pending: Vec::new().into_iter(),
            seen: HashSet::new(),
            stats: ReadStats::default(),
            done: false,
        })
    }

    /// Counters so far (complete once the iterator is exhausted).
    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }

    /// Row group of file row `row`, and the row's index inside it.
    fn locate(&self, row: u64) -> (u64, u64) {
        let group = self.group_ends.partition_point(|&end| end <= row);
        let start = group.checked_sub(1).map_or(0, |g| self.group_ends[g]);
        (group as u64, row - start)
    }

    fn row_error(&self, row: u64, (field, message): FieldProblem) -> LineError {
        let (group, line) = self.locate(row);
        LineError {
            file: self.path.display().to_string(),
            line,
            row_group: Some(group),
            field: Some(field),
            message,
        }
    }

    /// Decodes the next batch into `pending`; `Err` ends iteration.
    fn next_batch(&mut self) -> Result<bool, DataError> {
        let Some(batch) = self.batches.next() else {
            return Ok(false);
        };
        let batch = batch.map_err(|e| {
            let (group, _) = self.locate(self.next_row);
            let source = parquet::errors::ParquetError::ArrowError(e.to_string());
            parquet_error(&self.path, &format!("row group {group}"), source)
        })?;
        let rows = T::from_batch(&batch).map_err(|p| DataError::Column {
            path: self.path.clone(),
            column: p.column,
            message: p.message,
        })?;
        let first = self.next_row;
        self.next_row += batch.num_rows() as u64;
        self.pending = (first..).zip(rows).collect::<Vec<_>>().into_iter();
        Ok(true)
    }
}

impl<T: ArrowRecord + Record> Iterator for ParquetReader<T> {
    type Item = Result<T, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let Some((row, decoded)) = self.pending.next() else {
                match self.next_batch() {
                    Ok(true) => continue,
                    Ok(false) => self.done = true,
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
                continue;
            };
            self.stats.lines += 1;
            let checked = decoded.and_then(|r| check_record(r, &mut self.seen));
            match checked {
                Ok(record) => {
                    self.stats.records += 1;
                    return Some(Ok(record));
                }
                Err(problem) => {
                    let err = self.row_error(row, problem);
                    if self.policy == BadLinePolicy::Strict {
                        self.done = true;
                        return Some(Err(err.into()));
                    }
                    tracing::debug!(%err, "skipping bad row");
                    self.stats.skipped += 1;
                    if self.stats.first_errors.len() < KEPT_ERRORS {
                        self.stats.first_errors.push(err);
                    }
                }
            }
        }
        None
    }
}

/// Writes records to a Parquet file (zstd, [`ROW_GROUP_ROWS`] rows per
/// row group) through a temporary file beside it, renamed into place by
/// [`Self::finish`]: a run that fails midway leaves the previous file
/// intact.
pub struct ParquetWriter<T> {
    path: PathBuf,
    writer: ArrowWriter<NamedTempFile>,
    buffer: Vec<T>,
    records: u64,
    _record: PhantomData<fn(T)>,
}

impl<T: ArrowRecord + Clone> ParquetWriter<T> {
    /// Starts a new file; nothing at `path` changes until [`Self::finish`].
    pub fn create(path: &Path) -> Result<Self, DataError> {
        let tmp = temp_beside(path)?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let writer = ArrowWriter::try_new(tmp, T::schema(), Some(properties))
            .map_err(|e| parquet_error(path, "schema", e))?;
        Ok(ParquetWriter {
            path: path.to_path_buf(),
            writer,
            buffer: Vec::with_capacity(BATCH_ROWS),
            records: 0,
            _record: PhantomData,
        })
    }

    /// Appends one record.
    pub fn write(&mut self, record: &T) -> Result<(), DataError> {
        self.buffer.push(record.clone());
        self.records += 1;
        if self.buffer.len() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DataError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let batch = T::to_batch(&self.buffer).map_err(|source| DataError::Arrow {
            path: self.path.clone(),
            source,
        })?;
        self.buffer.clear();
        self.writer
            .write(&batch)
            .map_err(|e| parquet_error(&self.path, "writing a row group", e))
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Writes the footer and atomically moves the file into place.
    pub fn finish(mut self) -> Result<PathBuf, DataError> {
        self.flush()?;
        let tmp = self
            .writer
            .into_inner()
            .map_err(|e| parquet_error(&self.path, "footer", e))?;
        publish(tmp, &self.path)?;
        Ok(self.path)
    }
}
