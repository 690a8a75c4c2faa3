//! What the model worker runs, in the manner of text-embeddings-inference's
//! `Backend`: sessions of similar length in (token ids and raw behavioural
//! features), one score and pooled embedding per session out. The candle
//! bundle of a [`LoadedModel`] is the implementation served; the queue and
//! the worker only see the trait, so they are tested with fakes and other
//! backends (another precision, a device) slot in without touching them.

use datasets::FeatureVector;
use models::bundle::SessionScore;

use crate::model::LoadedModel;

/// A model the worker can run.
pub trait Backend: Send + Sync {
    /// Scores sessions, in order; an error fails the whole group.
    fn score(
        &self,
        ids: &[&[u32]],
        features: &[FeatureVector],
    ) -> Result<Vec<SessionScore>, String>;
}

impl Backend for LoadedModel {
    fn score(
        &self,
        ids: &[&[u32]],
        features: &[FeatureVector],
    ) -> Result<Vec<SessionScore>, String> {
        self.bundle
            .score_encoded(ids, features)
            .map_err(|e| e.to_string())
    }
}
