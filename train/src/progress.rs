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
