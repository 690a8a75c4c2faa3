//! Labeled session files prepared for training: token ids, raw feature
//! vectors and labels, plus the file's hash for provenance.

use std::path::Path;

use anyhow::{bail, Result};
use datasets::{
    read_sessions, session_features, sha256_file, BadLinePolicy, FeatureVector, Label, Session,
};
use models::{bundle::DataFile, SessionTokenizer};
use rand::{seq::SliceRandom, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One labeled split, tokenised.
pub struct LabeledSplit {
    /// The sessions, in file order.
    pub sessions: Vec<Session>,
    /// Token ids per session.
    pub encoded: Vec<Vec<u32>>,
    /// Raw (not normalised) behavioural features per session.
    pub features: Vec<FeatureVector>,
    /// 1.0 for extraction, 0.0 for benign.
    pub labels: Vec<f32>,
    /// Provenance of the file.
    pub file: DataFile,
}

/// An I/O failure on `path`, as an error that names the path.
pub fn io_error(path: &Path, error: std::io::Error) -> anyhow::Error {
    anyhow::Error::new(error).context(format!("writing {}", path.display()))
}

/// Reads a labeled sessions file (strict: the first bad line stops the run;
/// every session must carry a label).
pub fn read_labeled(path: &Path) -> Result<Vec<Session>> {
    let mut sessions = Vec::new();
    for s in read_sessions(path, BadLinePolicy::Strict)? {
        let s = s?;
        if s.label.is_none() {
            bail!(
                "{}: session {:?} has no label (training needs labeled sessions)",
                path.display(),
                s.session_id
            );
        }
        sessions.push(s);
    }
    if sessions.is_empty() {
        bail!("{}: no sessions", path.display());
    }
    Ok(sessions)
}

impl LabeledSplit {
    /// Reads, tokenises and featurises a labeled file. With `sample` set
    /// to `(n, seed)`, keeps a seeded random sample of at most `n` sessions
    /// (in file order).
    pub fn load(
        path: &Path,
        tokenizer: &SessionTokenizer,
        sample: Option<(usize, u64)>,
    ) -> Result<Self> {
        let mut sessions = read_labeled(path)?;
        if let Some((n, seed)) = sample.filter(|&(n, _)| n < sessions.len()) {
            let mut keep: Vec<usize> = (0..sessions.len()).collect();
            keep.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
            keep.truncate(n);
            keep.sort_unstable();
            let mut all: Vec<Option<Session>> = sessions.into_iter().map(Some).collect();
            sessions = keep.into_iter().filter_map(|i| all[i].take()).collect();
        }
        let encoded = sessions
            .iter()
            .map(|s| tokenizer.encode(s))
            .collect::<models::Result<Vec<_>>>()?;
        let features = sessions.iter().map(session_features).collect();
        let labels = sessions
            .iter()
            .map(|s| {
                if s.label == Some(Label::Extraction) {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        let file = DataFile {
            path: path.display().to_string(),
            sha256: sha256_file(path)?,
            sessions: sessions.len(),
        };
        Ok(LabeledSplit {
            sessions,
            encoded,
            features,
            labels,
            file,
        })
    }

    /// Appends `other`'s sessions (its provenance is the caller's to keep).
    pub fn append(&mut self, other: LabeledSplit) {
        self.sessions.extend(other.sessions);
        self.encoded.extend(other.encoded);
        self.features.extend(other.features);
        self.labels.extend(other.labels);
    }

    /// Whether each session is extraction.
    pub fn positives(&self) -> Vec<bool> {
        self.labels.iter().map(|&l| l > 0.5).collect()
    }
}
