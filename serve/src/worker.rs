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

/// Padding allowed within a length group, as a share of its real tokens:
/// a batch is split into groups of similar length so that short sessions
/// are not padded to the longest of the batch (on a CPU, padding costs as
/// much as real tokens).
pub const MAX_PADDING_SHARE: f64 = 0.25;

/// Splits lengths sorted ascending into consecutive groups whose padded
/// size (count x longest) stays within `1 + max_padding` of their real
/// tokens; every group holds at least one length.
pub fn length_groups(sorted: &[usize], max_padding: f64) -> Vec<std::ops::Range<usize>> {
    let mut groups = Vec::new();
    let (mut start, mut real) = (0, 0usize);
    for (i, &len) in sorted.iter().enumerate() {
        let padded = (i + 1 - start) * len;
        if i > start && padded as f64 > (1.0 + max_padding) * (real + len) as f64 {
            groups.push(start..i);
            (start, real) = (i, 0);
        }
        real += len;
    }
    if start < sorted.len() {
        groups.push(start..sorted.len());
    }
    groups
}

fn run_batch(mut batch: Vec<Entry>) {
    let started = Instant::now();
    for e in &batch {
        metrics::queued(started - e.enqueued);
    }
    batch.sort_by_key(|e| e.ids.len());
    let lengths: Vec<usize> = batch.iter().map(|e| e.ids.len()).collect();
    let mut padded = 0;
    let mut entries = batch.into_iter();
    for group in length_groups(&lengths, MAX_PADDING_SHARE) {
        padded += group.len() * lengths[group.end - 1];
        let group: Vec<Entry> = entries.by_ref().take(group.len()).collect();
        run_group(group);
    }
    metrics::batch(lengths.len(), padded, started.elapsed());
}

/// Runs one model forward pass over entries of similar length and answers
/// them.
fn run_group(group: Vec<Entry>) {
    let model = group[0].model.clone();
    let ids: Vec<&[u32]> = group.iter().map(|e| e.ids.as_slice()).collect();
    let features: Vec<FeatureVector> = group.iter().map(|e| e.features).collect();
    let outcome = catch_unwind(AssertUnwindSafe(|| model.score(&ids, &features)));
    match outcome {
        Ok(Ok(scores)) => {
            for (entry, s) in group.into_iter().zip(scores) {
                let _ = entry.respond.send(Ok(Scored {
                    score: s.score,
                    embedding: s.embedding,
                }));
            }
        }
        Ok(Err(e)) => fail(group, format!("model failed on a batch: {e}")),
        Err(_) => fail(group, "model panicked on a batch".into()),
    }
}

fn fail(batch: Vec<Entry>, message: String) {
    tracing::error!(sessions = batch.len(), "{message}");
    for entry in batch {
        let _ = entry.respond.send(Err(ApiError::Internal(message.clone())));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use models::bundle::SessionScore;
    use tokio::sync::oneshot;

    use super::*;
    use crate::{backend::Backend, queue::BatchLimits};

    /// Scores a session by its length, fails, or panics.
    enum Fake {
        Length,
        Fails,
        Panics,
    }

    impl Backend for Fake {
        fn score(&self, ids: &[&[u32]], _: &[FeatureVector]) -> Result<Vec<SessionScore>, String> {
            match self {
                Fake::Length => Ok(ids
                    .iter()
                    .map(|i| SessionScore {
                        score: i.len() as f32,
                        embedding: Vec::new(),
                    })
                    .collect()),
                Fake::Fails => Err("broken backend".into()),
                Fake::Panics => panic!("the fake backend panics"),
            }
        }
    }

    /// Pushes sessions of these lengths for `backend` and waits for their
    /// answers, in order.
    fn run(queue: &Queue, backend: Fake, lengths: &[usize]) -> Vec<Result<f32, String>> {
        let backend: Arc<dyn Backend> = Arc::new(backend);
        let (entries, answers): (Vec<Entry>, Vec<_>) = lengths
            .iter()
            .map(|&n| {
                let (tx, rx) = oneshot::channel();
                let entry = Entry {
                    model: backend.clone(),
                    ids: vec![1; n],
                    features: [0.0; datasets::NUM_FEATURES],
                    enqueued: Instant::now(),
                    respond: tx,
                };
                (entry, rx)
            })
            .unzip();
        queue.push(entries).unwrap();
        answers
            .into_iter()
            .map(|rx| match rx.blocking_recv().unwrap() {
                Ok(scored) => Ok(scored.score),
                Err(e) => Err(e.to_string()),
            })
            .collect()
    }

    #[test]
    fn the_worker_answers_every_session_and_outlives_failing_batches() {
        let queue = Arc::new(Queue::new(BatchLimits {
            max_batch_size: 8,
            max_batch_tokens: 1000,
            max_wait: Duration::ZERO,
        }));
        let alive = Arc::new(AtomicBool::new(false));
        let worker = spawn(queue.clone(), alive.clone()).unwrap();
        assert_eq!(
            run(&queue, Fake::Length, &[7, 3, 40]),
            [Ok(7.0), Ok(3.0), Ok(40.0)]
        );
        for (backend, says) in [(Fake::Fails, "broken backend"), (Fake::Panics, "panicked")] {
            for answer in run(&queue, backend, &[5, 6]) {
                assert!(answer.as_ref().unwrap_err().contains(says), "{answer:?}");
            }
        }
        assert!(alive.load(Ordering::SeqCst));
        assert_eq!(run(&queue, Fake::Length, &[2]), [Ok(2.0)]);
        queue.close();
        worker.join().unwrap();
        assert!(!alive.load(Ordering::SeqCst));
    }

    #[test]
    fn groups_bound_the_padding() {
        assert!(length_groups(&[], 0.25).is_empty());
        assert_eq!(length_groups(&[7], 0.25), vec![0..1]);
        assert_eq!(length_groups(&[10, 10, 11, 12], 0.25), vec![0..4]);
        // 10 then 40: padding 10 to 40 would double the tokens.
        assert_eq!(
            length_groups(&[10, 40, 41, 128], 0.25),
            vec![0..1, 1..3, 3..4]
        );
        for lengths in [vec![3, 5, 8, 13, 21, 34, 55, 89, 128], vec![50; 9]] {
            let groups = length_groups(&lengths, 0.25);
            assert_eq!(groups.iter().map(|g| g.len()).sum::<usize>(), lengths.len());
            for g in groups {
                let real: usize = lengths[g.clone()].iter().sum();
                let padded = g.len() * lengths[g.end - 1];
                assert!(g.len() == 1 || padded as f64 <= 1.25 * real as f64, "{g:?}");
            }
        }
    }
}
