//! Atomic JSONL writers: records go to a temporary file beside the target,
//! which is renamed over it only by [`JsonlWriter::finish`]. A run that
//! fails midway leaves the previous file intact.

use std::{
    fs,
    io::{BufWriter, Write},
    path::{Path, PathBuf},
};

use flate2::{write::GzEncoder, Compression, GzBuilder};
use serde::Serialize;
use tempfile::NamedTempFile;

use crate::error::DataError;

enum Sink {
    Plain(BufWriter<NamedTempFile>),
    // Boxed: the encoder's state is several times the plain writer's.
    Gzip(Box<GzEncoder<BufWriter<NamedTempFile>>>),
}

/// Writes one JSON object per line to `path` (gzip when it ends in `.gz`).
pub struct JsonlWriter {
    path: PathBuf,
    sink: Sink,
    records: u64,
}

impl JsonlWriter {
    /// Starts a new file; nothing at `path` changes until [`Self::finish`].
    pub fn create(path: &Path) -> Result<Self, DataError> {
        let tmp = temp_beside(path)?;
        let buffered = BufWriter::with_capacity(1 << 16, tmp);
        let sink = if path.extension().is_some_and(|e| e == "gz") {
            // No file name or mtime in the header: same records, same bytes.
            Sink::Gzip(Box::new(
                GzBuilder::new().write(buffered, Compression::default()),
            ))
        } else {
            Sink::Plain(buffered)
        };
        Ok(JsonlWriter {
            path: path.to_path_buf(),
            sink,
            records: 0,
        })
    }

    /// Appends one record as a line.
    pub fn write<T: Serialize>(&mut self, record: &T) -> Result<(), DataError> {
        let out: &mut dyn Write = match &mut self.sink {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.as_mut(),
        };
        serde_json::to_writer(&mut *out, record).map_err(|source| DataError::Serialize {
            path: self.path.clone(),
            source,
        })?;
        out.write_all(b"\n")
            .map_err(|e| DataError::io(&self.path, e))?;
        self.records += 1;
        Ok(())
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Flushes and atomically moves the file into place.
    pub fn finish(self) -> Result<PathBuf, DataError> {
        let path = self.path;
        let buffered = match self.sink {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish().map_err(|e| DataError::io(&path, e))?,
        };
        let tmp = buffered
            .into_inner()
            .map_err(|e| DataError::io(&path, e.into_error()))?;
        publish(tmp, &path)?;
        Ok(path)
    }
}

/// Makes a finished temporary file readable like any other output, syncs
/// it and renames it over `path`.
pub(crate) fn publish(tmp: NamedTempFile, path: &Path) -> Result<(), DataError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(|e| DataError::io(path, e))?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| DataError::io(path, e))?;
    tmp.persist(path)
        .map_err(|e| DataError::io(path, e.error))?;
    Ok(())
}

/// Writes `contents` to `path` atomically (temporary file, then rename).
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), DataError> {
    let mut tmp = temp_beside(path)?;
    tmp.write_all(contents)
        .map_err(|e| DataError::io(path, e))?;
    publish(tmp, path)
}

/// Builds a directory atomically: `fill` writes every file into a fresh
/// staging directory beside `dir`, which then takes `dir`'s place. The
/// previous `dir` is moved aside and removed only once the new one is in
/// place, so a failure at any point leaves it intact. `io_error` turns an
/// I/O failure on a path into the caller's error type.
pub fn replace_dir<E>(
    dir: &Path,
    io_error: impl Fn(&Path, std::io::Error) -> E,
    fill: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<PathBuf, E> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(|e| io_error(&parent, e))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}.staging-"))
        .tempdir_in(&parent)
        .map_err(|e| io_error(&parent, e))?;
    fill(staging.path())?;
    let staged = staging.keep();
    let retired = parent.join(format!(".{name}.previous"));
    if retired.exists() {
        fs::remove_dir_all(&retired).map_err(|e| io_error(&retired, e))?;
    }
    if dir.exists() {
        fs::rename(dir, &retired).map_err(|e| io_error(dir, e))?;
    }
    fs::rename(&staged, dir).map_err(|e| io_error(dir, e))?;
    if retired.exists() {
        fs::remove_dir_all(&retired).map_err(|e| io_error(&retired, e))?;
    }
    Ok(dir.to_path_buf())
}

/// A temporary file in `path`'s directory (created if missing), so the
/// final rename stays on one file system.
pub(crate) fn temp_beside(path: &Path) -> Result<NamedTempFile, DataError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    NamedTempFile::new_in(dir).map_err(|e| DataError::io(dir, e))
}
