//! Logging set-up shared by the project's command-line tools.

/// Sends `tracing` output to stderr, filtered by `RUST_LOG` (default
/// `warn`; `RUST_LOG=info` shows stage logs).
pub fn init() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}
