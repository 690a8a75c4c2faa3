//! Streaming JSONL readers with the two bad-line policies of the spec.
//!
//! Files are read one line at a time (plain or gzip, detected by magic
//! bytes), so memory does not grow with the file. Blank lines are ignored.

use std::{
    collections::HashSet,
    fs::File,
    io::{BufRead, BufReader, Read},
    path::Path,
};

use flate2::read::MultiGzDecoder;
use serde::de::DeserializeOwned;

use crate::{
    error::{DataError, LineError},
    schema::Session,
};

/// What a reader does with a line that breaks the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum BadLinePolicy {
    /// Stop at the first bad line with its error (default for training).
    #[default]
    Strict,
    /// Skip bad lines, counting them (default for scoring).
    Skip,
}

/// How many of the skipped lines' errors a reader keeps for reporting.
pub const KEPT_ERRORS: usize = 20;

/// Counters a reader keeps while it streams.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Non-blank lines (Parquet: rows) read.
    pub lines: u64,
    /// Records returned.
    pub records: u64,
    /// Lines (rows) skipped under [`BadLinePolicy::Skip`].
    pub skipped: u64,
    /// The first [`KEPT_ERRORS`] skipped lines' errors.
    pub first_errors: Vec<LineError>,
}

/// A record type a [`JsonlReader`] can read: deserialise, then check the
/// rules serde cannot express.
pub trait Record: DeserializeOwned {
    /// Validates (and normalises, e.g. sorts) the record. On failure returns
    /// the field path and a message.
    fn validate(&mut self) -> Result<(), (String, String)>;

    /// A key that must be unique within a file, if the format has one.
    fn unique_key(&self) -> Option<&str> {
        None
    }

    /// Name of the unique key's field, used in duplicate errors.
    const UNIQUE_FIELD: &'static str = "";
}

impl Record for Session {
    fn validate(&mut self) -> Result<(), (String, String)> {
        Session::validate(self)
    }

    fn unique_key(&self) -> Option<&str> {
        Some(&self.session_id)
    }

    const UNIQUE_FIELD: &'static str = "session_id";
}

/// Validates a decoded record and checks that its unique key (if any) is
/// not in `seen`, adding it. On failure returns the field path and a
/// message.
pub(crate) fn check_record<T: Record>(
    mut record: T,
    seen: &mut HashSet<String>,
) -> Result<T, (String, String)> {
    record.validate()?;
    if let Some(key) = record.unique_key() {
        if !seen.insert(key.to_owned()) {
            return Err((
                T::UNIQUE_FIELD.into(),
                format!("duplicate value {key:?} (must be unique within a file)"),
            ));
        }
    }
    Ok(record)
}

/// Iterator over the records of a JSONL stream.
///
/// Under [`BadLinePolicy::Strict`] the first bad line is returned as an
/// error and iteration ends; under [`BadLinePolicy::Skip`] bad lines are
/// counted in [`ReadStats`] and iteration goes on. An I/O error always
/// ends iteration.
pub struct JsonlReader<T, R> {
    input: R,
    file: String,
    policy: BadLinePolicy,
    line_no: u64,
    buf: Vec<u8>,
    seen: HashSet<String>,
    stats: ReadStats,
    done: bool,
    _record: std::marker::PhantomData<fn() -> T>,
}

/// Reader of the sessions format.
pub type SessionReader<R> = JsonlReader<Session, R>;

/// Opens a data file (plain or gzip) for buffered reading.
pub fn open_input(path: &Path) -> Result<Box<dyn BufRead + Send>, DataError> {
    let mut file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut magic = [0u8; 2];
    let n = read_prefix(&mut file, &mut magic).map_err(|e| DataError::io(path, e))?;
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(BufReader::new(MultiGzDecoder::new(
            BufReader::new(file),
        ))))
    } else {
        Ok(Box::new(BufReader::with_capacity(1 << 16, file)))
    }
}

/// Hex sha256 of a file's bytes (data provenance in bundles and reports).
pub fn sha256_file(path: &Path) -> Result<String, DataError> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut file = File::open(path).map_err(|e| DataError::io(path, e))?;
    std::io::copy(&mut file, &mut hasher).map_err(|e| DataError::io(path, e))?;
    Ok(format!("{:x}", hasher.finalize()))
}

fn read_prefix(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Opens a sessions file (JSONL, gzip JSONL or Parquet, by extension)
/// for streaming.
pub fn read_sessions(
    path: &Path,
    policy: BadLinePolicy,
) -> Result<crate::RecordSource<Session>, DataError> {
    crate::RecordSource::open(path, policy)
}

impl<T: Record, R: BufRead> JsonlReader<T, R> {
    /// Wraps a buffered stream; `file` is the name used in errors.
    pub fn new(input: R, file: impl Into<String>, policy: BadLinePolicy) -> Self {
        JsonlReader {
            input,
            file: file.into(),
            policy,
            line_no: 0,
            buf: Vec::new(),
            seen: HashSet::new(),
            stats: ReadStats::default(),
            done: false,
            _record: std::marker::PhantomData,
        }
    }

    /// Counters so far (complete once the iterator is exhausted).
    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }

    fn line_error(&self, field: Option<String>, message: String) -> LineError {
        LineError {
            file: self.file.clone(),
            line: self.line_no,
            row_group: None,
            field,
            message,
        }
    }

    fn parse_line(&mut self) -> Result<T, LineError> {
        let text = std::str::from_utf8(&self.buf)
            .map_err(|e| self.line_error(None, format!("invalid UTF-8 ({e})")))?;
        if !text.trim_start().starts_with('{') {
            return Err(self.line_error(None, "a record must be a JSON object".into()));
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let record: T =
            serde_path_to_error::deserialize(&mut de).map_err(|e| self.json_error(&e))?;
        de.end().map_err(|e| {
            self.line_error(None, format!("invalid JSON: {}", describe_json_error(&e)))
        })?;
        check_record(record, &mut self.seen)
            .map_err(|(field, message)| self.line_error(Some(field), message))
    }

    fn json_error(&self, err: &serde_path_to_error::Error<serde_json::Error>) -> LineError {
        let inner = err.inner();
        let message = describe_json_error(inner);
        if !inner.is_data() {
            return self.line_error(None, format!("invalid JSON: {message}"));
        }
        let path = err.path().to_string();
        let mut field = if path == "." { String::new() } else { path };
        // serde reports a missing field at its parent; name the field itself.
        if let Some(name) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(name);
        }
        if field.is_empty() {
            field.push_str("(record)");
        }
        self.line_error(Some(field), message)
    }
}

/// serde_json's message with its "at line 1 column N" suffix turned into
/// a column (every record is one line).
fn describe_json_error(err: &serde_json::Error) -> String {
    let full = err.to_string();
    match full.rfind(" at line ") {
        Some(at) => format!("{} (column {})", &full[..at], err.column()),
        None => full,
    }
}

impl<T: Record, R: BufRead> Iterator for JsonlReader<T, R> {
    type Item = Result<T, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            match self.input.read_until(b'\n', &mut self.buf) {
                Ok(0) => self.done = true,
                Ok(_) => {
                    self.line_no += 1;
                    if self.buf.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    self.stats.lines += 1;
                    match self.parse_line() {
                        Ok(record) => {
                            self.stats.records += 1;
                            return Some(Ok(record));
                        }
                        Err(err) if self.policy == BadLinePolicy::Skip => {
                            tracing::debug!(%err, "skipping bad line");
                            self.stats.skipped += 1;
                            if self.stats.first_errors.len() < KEPT_ERRORS {
                                self.stats.first_errors.push(err);
                            }
                        }
                        Err(err) => {
                            self.done = true;
                            return Some(Err(err.into()));
                        }
                    }
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(DataError::io(self.file.clone(), e)));
                }
            }
        }
        None
    }
}
