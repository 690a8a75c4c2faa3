//! The batching queue: tokenised sessions wait here until the model worker
//! takes the next batch, formed first-come first-served under a maximum
//! batch size and a token budget (padded tokens: sessions x longest).
//! Entries whose client went away are dropped when a batch is formed.

use std::{
    collections::VecDeque,
    sync::{Arc, Condvar, Mutex},
    time::{Duration, Instant},
};

use datasets::FeatureVector;
use tokio::sync::oneshot;

use crate::{backend::Backend, error::ApiError, metrics};

/// What the worker sends back for one session.
#[derive(Debug, Clone)]
pub struct Scored {
    /// Probability of extraction.
    pub score: f32,
    /// Pooled text embedding.
    pub embedding: Vec<f32>,
}

/// One tokenised session waiting for the model.
pub struct Entry {
    /// The model it was tokenised for (and will be scored with).
    pub model: Arc<dyn Backend>,
    /// Token ids.
    pub ids: Vec<u32>,
    /// Raw behavioural features.
    pub features: FeatureVector,
    /// When it entered the queue.
    pub enqueued: Instant,
    /// Where its result goes; closed when the client went away.
    pub respond: oneshot::Sender<Result<Scored, ApiError>>,
}

/// How batches are formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most sessions per batch.
    pub max_batch_size: usize,
    /// Most padded tokens per batch (sessions x longest); a single session
    /// over the budget still forms a batch of one.
    pub max_batch_tokens: usize,
    /// How long the oldest entry may wait for a batch to fill (zero: take
    /// what is queued the moment the worker is free).
    pub max_wait: Duration,
}

struct State {
    entries: VecDeque<Entry>,
    closed: bool,
}

/// The queue between request handlers and the model worker.
pub struct Queue {
    state: Mutex<State>,
    ready: Condvar,
    limits: BatchLimits,
}

impl Queue {
    /// An empty, open queue.
    pub fn new(limits: BatchLimits) -> Self {
        Queue {
            state: Mutex::new(State {
                entries: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
            limits,
        }
    }

    /// Batching limits.
    pub fn limits(&self) -> BatchLimits {
        self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a request's entries (kept together, in order).
    pub fn push(&self, mut entries: Vec<Entry>) -> Result<(), ApiError> {
        let now = Instant::now();
        for e in &mut entries {
            e.enqueued = now;
        }
        let mut state = self.lock();
        if state.closed {
            return Err(ApiError::NotReady("the server is shutting down".into()));
        }
        state.entries.extend(entries);
        metrics::queue_depth(state.entries.len());
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// Sessions waiting now.
    pub fn depth(&self) -> usize {
        self.lock().entries.len()
    }

    /// Stops accepting entries; the worker drains what is queued, then
    /// [`Queue::next_batch`] returns `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Blocks until a batch is ready (or the queue is closed and empty).
    pub fn next_batch(&self) -> Option<Vec<Entry>> {
        let mut state = self.lock();
        loop {
            while state.entries.is_empty() {
                if state.closed {
                    return None;
                }
                state = self.ready.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            let deadline = state.entries[0].enqueued + self.limits.max_wait;
            while !state.closed && !is_full(&state.entries, &self.limits) {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                state = self
                    .ready
                    .wait_timeout(state, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            let (batch, dropped) = take_batch(&mut state.entries, &self.limits);
            metrics::queue_depth(state.entries.len());
            metrics::dropped(dropped);
            if !batch.is_empty() {
                return Some(batch);
            }
        }
    }
}

/// Padded tokens of a batch of `n` sessions whose longest has `longest`
/// tokens.
fn padded_tokens(n: usize, longest: usize) -> usize {
    n * longest
}

fn is_full(entries: &VecDeque<Entry>, limits: &BatchLimits) -> bool {
    if entries.len() >= limits.max_batch_size {
        return true;
    }
    let longest = entries.iter().map(|e| e.ids.len()).max().unwrap_or(0);
    padded_tokens(entries.len() + 1, longest) > limits.max_batch_tokens
}

/// Takes the next batch off the front of `entries`: first come first
/// served, entries of the front entry's model only, stopping before the
/// batch would pass `max_batch_size` or `max_batch_tokens` (at least one
/// entry always goes). Entries whose client went away are removed and
/// counted, not scored. Returns the batch and the number dropped.
pub fn take_batch(entries: &mut VecDeque<Entry>, limits: &BatchLimits) -> (Vec<Entry>, usize) {
    let mut batch: Vec<Entry> = Vec::new();
    let mut dropped = 0;
    let mut longest = 0;
    let mut kept = VecDeque::new();
    while let Some(entry) = entries.pop_front() {
        if entry.respond.is_closed() {
            dropped += 1;
            continue;
        }
        if let Some(first) = batch.first() {
            if !Arc::ptr_eq(&first.model, &entry.model) {
                kept.push_back(entry);
                continue;
            }
            let would_be = padded_tokens(batch.len() + 1, longest.max(entry.ids.len()));
            if batch.len() >= limits.max_batch_size || would_be > limits.max_batch_tokens {
                entries.push_front(entry);
                break;
            }
        }
        longest = longest.max(entry.ids.len());
        batch.push(entry);
    }
    // Entries of another model keep their place ahead of the rest.
    while let Some(entry) = kept.pop_back() {
        entries.push_front(entry);
    }
    (batch, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datasets::NUM_FEATURES;

    /// A backend that is never run: the queue only groups by model.
    struct Idle;

    impl Backend for Idle {
        fn score(
            &self,
            _: &[&[u32]],
            _: &[datasets::FeatureVector],
        ) -> std::result::Result<Vec<models::bundle::SessionScore>, String> {
            Err("not run in these tests".into())
        }
    }

    fn model() -> Arc<dyn Backend> {
        Arc::new(Idle)
    }

    type Result = oneshot::Receiver<std::result::Result<Scored, ApiError>>;

    fn entry(model: &Arc<dyn Backend>, tokens: usize) -> (Entry, Result) {
        let (tx, rx) = oneshot::channel();
        let entry = Entry {
            model: model.clone(),
            ids: vec![1; tokens],
            features: [0.0; NUM_FEATURES],
            enqueued: Instant::now(),
            respond: tx,
        };
        (entry, rx)
    }

    fn limits(size: usize, tokens: usize) -> BatchLimits {
        BatchLimits {
            max_batch_size: size,
            max_batch_tokens: tokens,
            max_wait: Duration::ZERO,
        }
    }

    fn lengths(batch: &[Entry]) -> Vec<usize> {
        batch.iter().map(|e| e.ids.len()).collect()
    }

    #[test]
    fn batches_are_fifo_under_size_and_token_limits() {
        let m = model();
        let (entries, _rx): (VecDeque<Entry>, Vec<Result>) = [10, 10, 50, 5, 5, 5, 200]
            .iter()
            .map(|&n| entry(&m, n))
            .unzip();
        let mut queue = entries;
        let lim = limits(3, 60);
        let (b, d) = take_batch(&mut queue, &lim);
        assert_eq!((lengths(&b), d), (vec![10, 10], 0));
        let (b, _) = take_batch(&mut queue, &lim);
        assert_eq!(lengths(&b), vec![50]);
        let (b, _) = take_batch(&mut queue, &lim);
        assert_eq!(lengths(&b), vec![5, 5, 5], "stops at the batch size");
        let (b, _) = take_batch(&mut queue, &lim);
        assert_eq!(
            lengths(&b),
            vec![200],
            "a session over the budget goes alone"
        );
        assert!(queue.is_empty());
    }

    #[test]
    fn abandoned_entries_are_dropped_and_models_never_mix() {
        let (a, b) = (model(), model());
        let (e1, r1) = entry(&a, 3);
        let (e2, r2) = entry(&a, 4);
        let (e3, _r3) = entry(&b, 5);
        let (e4, _r4) = entry(&a, 6);
        let (e5, _r5) = entry(&b, 7);
        drop(r1);
        let mut queue = VecDeque::from([e1, e2, e3, e4, e5]);
        let lim = limits(8, 1000);
        let (batch, dropped) = take_batch(&mut queue, &lim);
        assert_eq!((lengths(&batch), dropped), (vec![4, 6], 1));
        assert!(batch.iter().all(|e| Arc::ptr_eq(&e.model, &a)));
        let (batch, _) = take_batch(&mut queue, &lim);
        assert_eq!(lengths(&batch), vec![5, 7]);
        drop(r2);
    }

    #[test]
    fn next_batch_waits_for_company_only_up_to_max_wait() {
        let m = model();
        let wait = Duration::from_millis(150);
        let queue = Queue::new(BatchLimits {
            max_wait: wait,
            ..limits(2, 1000)
        });
        let (e, _r1) = entry(&m, 3);
        queue.push(vec![e]).unwrap();
        let started = Instant::now();
        assert_eq!(queue.next_batch().unwrap().len(), 1);
        assert!(started.elapsed() >= wait, "a lone entry waits for company");
        let ((e1, _r2), (e2, _r3)) = (entry(&m, 3), entry(&m, 3));
        queue.push(vec![e1, e2]).unwrap();
        let started = Instant::now();
        assert_eq!(queue.next_batch().unwrap().len(), 2);
        assert!(started.elapsed() < wait, "a full batch goes at once");
        queue.close();
        assert!(queue.next_batch().is_none());
        let (e, _r4) = entry(&m, 3);
        assert_eq!(queue.push(vec![e]).unwrap_err().error_type(), "not_ready");
    }
}
