//! Scoring one request: admission (bounded in-flight requests, 429
//! beyond, granted before the body is read), tokenisation and features on the blocking pool (off the model
//! worker), queueing, and waiting for the worker's results under the
//! per-request timeout. Dropping the future (client gone, timeout) closes
//! the result channels, so the queue drops the work.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use datasets::{session_features, Session};
use models::{prompt_head::PromptHead, reasons::session_reasons};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::{
    error::ApiError,
    model::{LoadedModel, ModelSlot},
    queue::{Entry, Queue},
    request::{AccountResult, ParsedRequest, SessionResult},
};

/// Everything needed to score requests.
pub struct Infer {
    queue: Arc<Queue>,
    slot: Arc<ModelSlot>,
    permits: Arc<Semaphore>,
    max_concurrent: usize,
    timeout: Duration,
    worker_alive: Arc<AtomicBool>,
}

/// One admitted request's place among the in-flight ones (released when
/// dropped).
pub struct Admission {
    _permit: OwnedSemaphorePermit,
}

/// A session on its way through the queue.
struct Pending {
    session_id: String,
    account_id: String,
    model: Arc<LoadedModel>,
    zscores: datasets::FeatureVector,
    result: oneshot::Receiver<Result<crate::queue::Scored, ApiError>>,
}

impl Infer {
    /// Scoring over `queue` with the model in `slot`, at most
    /// `max_concurrent` requests in flight, each given `timeout`.
    pub fn new(
        queue: Arc<Queue>,
        slot: Arc<ModelSlot>,
        max_concurrent: usize,
        timeout: Duration,
        worker_alive: Arc<AtomicBool>,
    ) -> Self {
        Infer {
            queue,
            slot,
            permits: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
            timeout,
            worker_alive,
        }
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.max_concurrent - self.permits.available_permits()
    }

    /// Whether a model is loaded and the worker runs; the reason if not.
    pub fn readiness(&self) -> Result<Arc<LoadedModel>, ApiError> {
        if !self.worker_alive.load(Ordering::SeqCst) {
            return Err(ApiError::NotReady("the model worker is not running".into()));
        }
        self.slot.current().ok_or_else(|| {
            ApiError::NotReady(match self.slot.last_error() {
                Some(e) => format!("no model loaded: {e}"),
                None => "no model loaded yet".into(),
            })
        })
    }

    /// Admits one request, or refuses it with 429 when `max_concurrent`
    /// are in flight. Taken before the body is read or parsed, so overload
    /// costs nothing more than the refusal.
    pub fn admit(&self) -> Result<Admission, ApiError> {
        let permit = self.permits.clone().try_acquire_owned().map_err(|_| {
            ApiError::Overloaded(format!(
                "{} requests in flight, the limit: retry later",
                self.max_concurrent
            ))
        })?;
        Ok(Admission { _permit: permit })
    }

    /// Scores a validated, admitted request; results in request order.
    /// The admission is held until the results are ready.
    pub async fn score(
        &self,
        _admission: &Admission,
        request: ParsedRequest,
    ) -> Result<Vec<SessionResult>, ApiError> {
        let model = self.readiness()?;
        let prompt_head = match (request.prompt_only, &model.bundle.prompt_head) {
            (false, _) => None,
            (true, Some(head)) => Some(head.clone()),
            (true, None) => {
                return Err(ApiError::Validation(format!(
                    "model {:?} has no prompt head (prompt_head.json) to score bare \
                     `prompts`: send `sessions`, or load a bundle trained by `train run` \
                     or completed by `train prompt-head`",
                    model.model_ref.name
                )))
            }
        };
        let want_embedding = request.return_embedding;
        let work = async {
            let sessions = request.sessions;
            let (entries, pending) = tokio::task::spawn_blocking(move || prepare(&model, sessions))
                .await
                .map_err(|e| ApiError::Internal(format!("tokeniser failed: {e}")))??;
            self.queue.push(entries)?;
            let mut results = Vec::with_capacity(pending.len());
            for p in pending {
                let scored = p.result.await.map_err(|_| {
                    ApiError::Internal("the model worker dropped the request".into())
                })??;
                let (score, threshold, reasons) = match &prompt_head {
                    Some(head) => prompt_verdict(head, &scored.embedding),
                    None => session_verdict(&p.model, &p.zscores, scored.score),
                };
                results.push(SessionResult {
                    session_id: p.session_id,
                    score,
                    flagged: score >= threshold,
                    threshold,
                    model: p.model.model_ref.clone(),
                    reasons,
                    account: mapped_account(&p.model, &p.account_id),
                    embedding: want_embedding.then_some(scored.embedding),
                });
            }
            Ok(results)
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| {
                ApiError::Timeout(format!(
                    "not scored within the {} ms request timeout",
                    self.timeout.as_millis()
                ))
            })?
    }
}

/// A session's score, threshold and reasons; the score enters the score
/// histogram and the drift window (prompt-only scores do not: they are
/// another distribution).
fn session_verdict(
    model: &LoadedModel,
    zscores: &datasets::FeatureVector,
    score: f32,
) -> (f32, f32, Vec<String>) {
    let threshold = model.bundle.threshold.threshold;
    crate::metrics::score(score);
    if let Some(window) = &model.drift {
        window.record(score);
    }
    (score, threshold, session_reasons(score, threshold, zscores))
}

/// A bare prompt's score by the prompt head, its threshold and reason.
fn prompt_verdict(head: &PromptHead, embedding: &[f32]) -> (f32, f32, Vec<String>) {
    let reason = "prompt-only score: the prompt's text alone, without session behaviour".into();
    (head.score(embedding), head.threshold, vec![reason])
}

/// The campaign map's verdict on `account_id`, when `model` has a map
/// that holds it.
fn mapped_account(model: &LoadedModel, account_id: &str) -> Option<AccountResult> {
    let map = model.campaign_map.as_ref()?;
    let entry = map.lookup(account_id)?;
    Some(AccountResult {
        account_id: account_id.to_string(),
        verdict: entry.verdict,
        score: entry.score,
        campaign_id: entry.campaign_id.clone(),
        reasons: entry.reasons.clone(),
        window_start: map.window_start.clone(),
        window_end: map.window_end.clone(),
    })
}

/// Tokenises sessions and computes their features for `model`.
fn prepare(
    model: &Arc<LoadedModel>,
    sessions: Vec<Session>,
) -> Result<(Vec<Entry>, Vec<Pending>), ApiError> {
    let mut entries = Vec::with_capacity(sessions.len());
    let mut pending = Vec::with_capacity(sessions.len());
    for (i, session) in sessions.into_iter().enumerate() {
        let ids = model.bundle.tokenizer.encode(&session).map_err(|e| {
            ApiError::Validation(format!("field `sessions[{i}]`: cannot tokenise: {e}"))
        })?;
        let features = session_features(&session);
        let (tx, rx) = oneshot::channel();
        entries.push(Entry {
            model: model.clone() as Arc<dyn crate::backend::Backend>,
            ids,
            features,
            enqueued: Instant::now(),
            respond: tx,
        });
        pending.push(Pending {
            session_id: session.session_id,
            account_id: session.account_id,
            model: model.clone(),
            zscores: model.bundle.norm.apply(&features),
            result: rx,
        });
    }
    Ok((entries, pending))
}
