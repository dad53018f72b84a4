//! What every long-running command needs from the process: the async
//! runtime, logging, and the signals that stop it.

/// A multi-threaded tokio runtime (the demo and the injector).
#[cfg(any(feature = "demo", feature = "injector"))]
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// The sidecar's runtime: one worker thread unless `TOKIO_WORKER_THREADS`
/// says otherwise. A check is microseconds of work; on a small pod whose
/// cores the workload and Envoy share, a second worker mostly moved tasks
/// between threads and woke them: one worker cost a fifth less CPU per
/// check through real Envoy (docs/performance.md, "What each change
/// bought"). Policy compiles run on the blocking pool, never on it.
pub fn serve_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(1);
    }
    builder.enable_all().build()
}

/// Resolves on SIGTERM (Kubernetes) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM; only Ctrl-C will stop hallpass");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// JSON lines on stdout; level from `HALLPASS_LOG` (default `info`).
pub fn init_json_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HALLPASS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        // A log line that cannot be written (stdout on a full disk) is lost,
        // not reported on stderr: `eprintln!` panics when stderr fails too,
        // and the panic hook logs, so the process aborted.
        .log_internal_errors(false)
        .init();
}

/// Warnings only, on stderr, so the demo's table stays readable.
#[cfg(feature = "demo")]
pub fn init_quiet_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HALLPASS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .init();
}
