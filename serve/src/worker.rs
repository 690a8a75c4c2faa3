//! The model worker: one thread that takes batches off the queue and runs
//! them back to back, so the model is never used from two threads at once.
//! A failing or panicking batch answers its sessions with a 500 and the
//! worker goes on.

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::Instant,
};

use datasets::FeatureVector;

use crate::{
    error::ApiError,
    metrics,
    queue::{Entry, Queue, Scored},
};

/// Clears the worker's liveness flag however the thread ends.
struct AliveGuard(Arc<AtomicBool>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// Starts the worker; `alive` is true while it runs. It returns once the
/// queue is closed and drained.
pub fn spawn(queue: Arc<Queue>, alive: Arc<AtomicBool>) -> std::io::Result<JoinHandle<()>> {
    alive.store(true, Ordering::SeqCst);
    std::thread::Builder::new()
        .name("model-worker".into())
        .spawn(move || {
            let _guard = AliveGuard(alive);
            while let Some(batch) = queue.next_batch() {
                run_batch(batch);
            }
            tracing::info!("model worker stopped: queue closed and drained");
        })
}

fn run_batch(batch: Vec<Entry>) {
    let started = Instant::now();
    for e in &batch {
        metrics::queued(started - e.enqueued);
    }
    let model = batch[0].model.clone();
    let ids: Vec<&[u32]> = batch.iter().map(|e| e.ids.as_slice()).collect();
    let features: Vec<FeatureVector> = batch.iter().map(|e| e.features).collect();
    let longest = ids.iter().map(|i| i.len()).max().unwrap_or(0);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        model.bundle.score_encoded(&ids, &features)
    }));
    metrics::batch(batch.len(), batch.len() * longest, started.elapsed());
    match outcome {
        Ok(Ok(scores)) => {
            for (entry, s) in batch.into_iter().zip(scores) {
                let _ = entry.respond.send(Ok(Scored {
                    score: s.score,
                    embedding: s.embedding,
                }));
            }
        }
        Ok(Err(e)) => fail(batch, format!("model failed on a batch: {e}")),
        Err(_) => fail(batch, "model panicked on a batch".into()),
    }
}

fn fail(batch: Vec<Entry>, message: String) {
    tracing::error!(sessions = batch.len(), "{message}");
    for entry in batch {
        let _ = entry.respond.send(Err(ApiError::Internal(message.clone())));
    }
}
