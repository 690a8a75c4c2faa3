//! Score drift of the traffic served: the bins (of the bundle's validation
//! score reference) of the last [`DRIFT_WINDOW_SESSIONS`] sessions scored,
//! and their population stability index (`models::drift`), exported on
//! `/metrics`. Each loaded model has its own window, so a reload starts a
//! fresh one against the new bundle's reference.

use std::{collections::VecDeque, sync::Mutex};

use models::drift::ScoreReference;

/// Sessions the drift window holds.
pub const DRIFT_WINDOW_SESSIONS: usize = 10_000;

/// The bins of the most recent scores, and how many fall in each.
#[derive(Debug)]
pub struct ScoreWindow {
    reference: ScoreReference,
    capacity: usize,
    recent: Mutex<(VecDeque<u16>, Vec<u64>)>,
}

impl ScoreWindow {
    /// An empty window of at most `capacity` scores against `reference`.
    pub fn new(reference: ScoreReference, capacity: usize) -> Self {
        let bins = reference.shares.len();
        ScoreWindow {
            reference,
            capacity: capacity.max(1),
            recent: Mutex::new((VecDeque::with_capacity(capacity), vec![0; bins])),
        }
    }

    /// Adds one score, forgetting the oldest beyond the capacity.
    pub fn record(&self, score: f32) {
        if !score.is_finite() {
            return;
        }
        let bin = self.reference.bin(score);
        let mut guard = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let (order, counts) = &mut *guard;
        if order.len() == self.capacity {
            if let Some(old) = order.pop_front() {
                counts[usize::from(old)] -= 1;
            }
        }
        order.push_back(bin as u16);
        counts[bin] += 1;
    }

    /// Scores in the window, and their PSI (`None` while empty).
    pub fn psi(&self) -> (usize, Option<f64>) {
        let guard = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        (guard.0.len(), self.reference.psi_of_counts(&guard.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_forgets_old_scores_and_sees_the_move() {
        let even: Vec<f32> = (0..100).map(|i| i as f32 / 100.0).collect();
        let reference = ScoreReference::from_scores(&even, 10).unwrap();
        let window = ScoreWindow::new(reference, 100);
        assert_eq!(window.psi(), (0, None));
        for &s in &even {
            window.record(s);
        }
        let (n, psi) = window.psi();
        assert_eq!(n, 100);
        assert!(psi.unwrap() < 1e-9);
        // A hundred high scores push the even ones out: far from validation.
        for _ in 0..100 {
            window.record(0.999);
        }
        let (n, psi) = window.psi();
        assert_eq!(n, 100);
        assert!(psi.unwrap() > 0.25, "{psi:?}");
        window.record(f32::NAN);
        assert_eq!(window.psi().0, 100);
    }
}
