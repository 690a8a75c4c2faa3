//! Progress bars of long-running commands (indicatif, drawn on stderr).

use indicatif::{ProgressBar, ProgressStyle};

/// A bar for `len` items of work named `what`.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} [{elapsed}] {bar:30} {pos}/{len} {msg}")
            .expect("valid progress template"),
    );
    bar.set_prefix(what.to_string());
    bar
}

/// A counter with throughput for work of unknown length (streaming input).
pub fn counter(what: &str, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {{prefix}} [{{elapsed}}] {{pos}} {unit} ({{per_sec}})"
        ))
        .expect("valid progress template"),
    );
    bar.set_prefix(what.to_string());
    bar
}

/// Wall-clock seconds of each step of a multi-step job, in order.
#[derive(Debug, Default)]
pub struct StepClock {
    steps: Vec<(&'static str, f64)>,
}

impl StepClock {
    /// Runs `step`, recording how long it took under `name`.
    pub fn time<T>(&mut self, name: &'static str, step: impl FnOnce() -> T) -> T {
        let started = std::time::Instant::now();
        let out = step();
        self.steps.push((name, started.elapsed().as_secs_f64()));
        out
    }

    /// `name Ns, name Ns, ...`.
    pub fn summary(&self) -> String {
        self.steps
            .iter()
            .map(|(name, s)| format!("{name} {s:.0}s"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_listed_in_order_with_their_seconds() {
        let mut clock = StepClock::default();
        let x = clock.time("first", || 2 + 2);
        clock.time("second", || {
            std::thread::sleep(std::time::Duration::from_millis(600))
        });
        assert_eq!(x, 4);
        let summary = clock.summary();
        assert!(summary.starts_with("first 0s, second "), "{summary}");
        assert!(
            summary.ends_with("s") && !summary.contains("second 0s"),
            "{summary}"
        );
    }
}
