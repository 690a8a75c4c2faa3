//! Batch scoring with an exported bundle.
//!
//! A reader thread pulls sessions from the input, tokenises them and
//! computes their behavioural features one chunk at a time, while the
//! calling thread runs the model on the previous chunk (length-sorted
//! batches, so padding stays small). Results come back chunk by chunk in
//! input order; memory is bounded by two chunks.

use std::sync::mpsc::sync_channel;

use anyhow::{anyhow, Result};
use datasets::{session_features, DataError, FeatureVector, Session};
use models::{bundle::Bundle, reasons::session_reasons};
use serde::{Deserialize, Serialize};

/// How batch scoring runs.
#[derive(Debug, Clone, Copy)]
pub struct ScoreOptions {
    /// Sessions per model batch.
    pub batch_size: usize,
    /// Sessions read, tokenised and scored per chunk.
    pub chunk_size: usize,
    /// Keep each session's pooled embedding (clustering needs it).
    pub keep_embeddings: bool,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions {
            batch_size: 32,
            chunk_size: 1024,
            keep_embeddings: false,
        }
    }
}

/// One scored session with what clustering and reports need.
#[derive(Debug, Clone)]
pub struct ScoredSession {
    /// The session as read.
    pub session: Session,
    /// Probability of extraction.
    pub score: f32,
    /// Pooled text embedding (empty unless kept).
    pub embedding: Vec<f32>,
    /// Standardised behavioural features.
    pub features: FeatureVector,
}

/// One line of a scores file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreRecord {
    /// The session scored.
    pub session_id: String,
    /// Its account.
    pub account_id: String,
    /// Probability of extraction.
    pub score: f32,
    /// Flagged by the session threshold, or by cluster propagation.
    pub flagged: bool,
    /// Coordinated-campaign cluster of the session (`null` when not
    /// clustered or noise).
    pub cluster_id: Option<usize>,
    /// Why the session scored as it did, most important first.
    pub reasons: Vec<String>,
}

impl ScoredSession {
    /// The session's scores-file line before clustering: flagged by the
    /// session threshold alone.
    pub fn record(&self, threshold: f32) -> ScoreRecord {
        ScoreRecord {
            session_id: self.session.session_id.clone(),
            account_id: self.session.account_id.clone(),
            score: self.score,
            flagged: self.score >= threshold,
            cluster_id: None,
            reasons: session_reasons(self.score, threshold, &self.features),
        }
    }
}

/// A chunk ready for the model.
struct PreparedChunk {
    sessions: Vec<Session>,
    encoded: Vec<Vec<u32>>,
    features: Vec<FeatureVector>,
}

/// Scores every session of `input`, handing results to `sink` one chunk at
/// a time, in input order. Returns the number of sessions scored. An input
/// error or a sink error stops the run.
pub fn score_sessions<I>(
    bundle: &Bundle,
    input: I,
    options: &ScoreOptions,
    mut sink: impl FnMut(Vec<ScoredSession>) -> Result<()>,
) -> Result<usize>
where
    I: Iterator<Item = Result<Session, DataError>> + Send,
{
    let chunk_size = options.chunk_size.max(1);
    let batch_size = options.batch_size.max(1);
    let tokenizer = &bundle.tokenizer;
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<Result<PreparedChunk>>(1);
        scope.spawn(move || {
            let mut input = input;
            loop {
                let mut sessions = Vec::with_capacity(chunk_size);
                for item in input.by_ref().take(chunk_size) {
                    match item {
                        Ok(s) => sessions.push(s),
                        Err(e) => {
                            let _ = tx.send(Err(e.into()));
                            return;
                        }
                    }
                }
                if sessions.is_empty() {
                    return;
                }
                let encoded: Result<Vec<Vec<u32>>> = sessions
                    .iter()
                    .map(|s| tokenizer.encode(s).map_err(|e| anyhow!(e)))
                    .collect();
                let prepared = encoded.map(|encoded| PreparedChunk {
                    features: sessions.iter().map(session_features).collect(),
                    encoded,
                    sessions,
                });
                let failed = prepared.is_err();
                if tx.send(prepared).is_err() || failed {
                    return;
                }
            }
        });
        let mut total = 0usize;
        for prepared in rx {
            let chunk = score_chunk(bundle, prepared?, batch_size, options.keep_embeddings)?;
            total += chunk.len();
            sink(chunk)?;
        }
        Ok(total)
    })
}

/// Scores every session of `input` with embeddings kept (clustering needs
/// them) and collects them in input order, counting progress on `bar`.
pub fn score_all<I>(
    bundle: &Bundle,
    input: I,
    options: &ScoreOptions,
    bar: &indicatif::ProgressBar,
) -> Result<Vec<ScoredSession>>
where
    I: Iterator<Item = Result<Session, DataError>> + Send,
{
    let options = ScoreOptions {
        keep_embeddings: true,
        ..*options
    };
    let mut scored = Vec::new();
    score_sessions(bundle, input, &options, |chunk| {
        bar.inc(chunk.len() as u64);
        scored.extend(chunk);
        Ok(())
    })?;
    bar.finish_and_clear();
    Ok(scored)
}

fn score_chunk(
    bundle: &Bundle,
    chunk: PreparedChunk,
    batch_size: usize,
    keep_embeddings: bool,
) -> Result<Vec<ScoredSession>> {
    let PreparedChunk {
        sessions,
        encoded,
        features,
    } = chunk;
    let mut order: Vec<usize> = (0..sessions.len()).collect();
    order.sort_by_key(|&i| encoded[i].len());
    let mut scored: Vec<Option<(f32, Vec<f32>)>> = vec![None; sessions.len()];
    for batch in order.chunks(batch_size) {
        let ids: Vec<&[u32]> = batch.iter().map(|&i| encoded[i].as_slice()).collect();
        let rows: Vec<FeatureVector> = batch.iter().map(|&i| features[i]).collect();
        for (&i, s) in batch.iter().zip(bundle.score_encoded(&ids, &rows)?) {
            let embedding = if keep_embeddings {
                s.embedding
            } else {
                Vec::new()
            };
            scored[i] = Some((s.score, embedding));
        }
    }
    Ok(sessions
        .into_iter()
        .zip(features)
        .zip(scored)
        .map(|((session, raw), scored)| {
            let (score, embedding) = scored.expect("every session of a chunk is scored");
            ScoredSession {
                session,
                score,
                embedding,
                features: bundle.norm.apply(&raw),
            }
        })
        .collect())
}
