//! Start-up and shutdown: bind, load the bundle in the background (the
//! server answers `/health` at once and 503 until the model is ready),
//! run the model worker, reload on SIGHUP, and on SIGTERM / Ctrl-C stop
//! accepting, finish in-flight requests, drain the queue, then exit.

use std::{
    future::Future,
    sync::{atomic::AtomicBool, Arc},
};

use anyhow::{Context, Result};
use models::device::parse_device;

use crate::{
    config::ServeConfig,
    infer::Infer,
    metrics,
    model::{ModelSlot, Reloader},
    queue::Queue,
    routes::{router, AppState},
    worker,
};

/// Serves until `shutdown` resolves, then drains and returns.
pub async fn run(
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    config.validate()?;
    let device = parse_device(&config.device)?;
    let metrics = metrics::install()?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.addr))?;
    let addr = listener.local_addr()?;

    let slot = Arc::new(ModelSlot::default());
    let queue = Arc::new(Queue::new(config.batch_limits()));
    let worker_alive = Arc::new(AtomicBool::new(false));
    let worker = worker::spawn(queue.clone(), worker_alive.clone())
        .context("cannot start the model worker")?;
    let precision = config.precision.for_device(&device);
    if !config.admin_enabled() {
        tracing::warn!(addr = %config.addr, "/admin/* answers 403: no --admin-token on a non-loopback address (--open-admin to allow)");
    }
    let reloader = Arc::new(Reloader::new(
        slot.clone(),
        config.model_dir.clone(),
        config.bundle_root(),
        config.campaign_map.clone(),
        device,
        precision,
    ));
    let infer = Arc::new(Infer::new(
        queue.clone(),
        slot.clone(),
        config.max_concurrent,
        config.request_timeout(),
        worker_alive,
    ));
    let state = Arc::new(AppState {
        infer,
        slot,
        queue: queue.clone(),
        reloader: reloader.clone(),
        metrics,
        config: config.clone(),
    });

    let initial = reloader.clone();
    tokio::spawn(async move {
        // A failure is logged and shown by /ready and /info; the server
        // stays up so a reload can fix it.
        let _ = initial.reload(None).await;
    });
    spawn_reload_on_sighup(reloader);

    println!("distill-guard serve listening on http://{addr}");
    tracing::info!(%addr, model_dir = %config.model_dir.display(), "listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .context("server failed")?;

    tracing::info!("no requests in flight: draining the queue");
    queue.close();
    tokio::task::spawn_blocking(move || worker.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the model worker panicked"))?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested: finishing in-flight requests");
}

/// Reloads the bundle from disk on every SIGHUP.
fn spawn_reload_on_sighup(reloader: Arc<Reloader>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot listen for SIGHUP: {e}");
                return;
            }
        };
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the bundle");
            // The outcome is logged by the reloader.
            let _ = reloader.reload(None).await;
        }
    });
    #[cfg(not(unix))]
    drop(reloader);
}
