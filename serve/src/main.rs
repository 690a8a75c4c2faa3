//! `serve`: dynamically batched HTTP scoring of sessions.
#![forbid(unsafe_code)]

use clap::Parser;
use serve::{config::ServeConfig, server};

#[global_allocator]
static GLOBAL: models::allocator::MiMalloc = models::allocator::MiMalloc;

fn main() -> anyhow::Result<()> {
    models::allocator::retain_freed_memory();
    let config = ServeConfig::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if config.model_threads > 0 {
        // candle reads these when its thread pools start: set them before
        // any model code runs (no other thread exists yet).
        for var in ["RAYON_NUM_THREADS", "CANDLE_NUM_THREADS"] {
            if std::env::var_os(var).is_none() {
                std::env::set_var(var, config.model_threads.to_string());
            }
        }
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(server::run(config, server::shutdown_signal()))
}
