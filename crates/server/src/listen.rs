//! Listen: bind the authz listener (TCP or a Unix socket) and the admin
//! listener, serve gRPC `Check` calls and the admin endpoints, reload files
//! and follow the Workload API in the background, and drain on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::serve::ListenerExt;
use envoy_types::ext_authz::v3::pb::AuthorizationServer;
use hallpass_telemetry::{Metrics, Telemetry};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

use crate::reload::Reloader;
use crate::{AuthzService, ListenAddr, ServerError, Settings, Shared, admin, conn_limit};

/// How long in-flight checks may take to finish after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between the two start-up reads of the policy and bundle files.
const STARTUP_SETTLE: Duration = Duration::from_millis(200);
/// Checks in flight on one authz HTTP/2 connection at most
/// (`SETTINGS_MAX_CONCURRENT_STREAMS`).
const MAX_STREAMS_PER_CONNECTION: u32 = 256;
/// How often an idle authz HTTP/2 connection is pinged, and how long the
/// answer may take before the connection is closed.
const HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
const HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// The gRPC health service name Envoy or kubelet can probe.
const AUTHZ_SERVICE_NAME: &str = "envoy.service.auth.v3.Authorization";

enum AuthzListener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

/// A bound, loaded sidecar, ready to [`run`](Sidecar::run).
pub struct Sidecar {
    shared: Arc<Shared>,
    reloader: Reloader,
    authz: AuthzListener,
    admin: TcpListener,
    telemetry_task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Sidecar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sidecar")
            .field("authz", &self.authz_addr())
            .finish_non_exhaustive()
    }
}

impl Sidecar {
    /// Load policy and bundles (failures leave the sidecar not ready, never
    /// open), then bind both listeners.
    pub async fn bind(settings: Settings) -> Result<Self, ServerError> {
        for w in &settings.warnings {
            tracing::warn!("{w}");
        }
        let metrics = Metrics::new()?;
        let (telemetry, telemetry_task) =
            Telemetry::start(settings.telemetry.clone(), metrics.clone());
        let shared = Arc::new(Shared::new(settings, metrics, telemetry));
        let mut reloader = Reloader::default();
        reloader.tick(&shared);
        // Every file is new at start-up: confirm with a second read after a
        // short pause rather than a whole reload interval.
        if reloader.settling() {
            tokio::time::sleep(STARTUP_SETTLE).await;
            reloader.tick(&shared);
        }

        let authz = match &shared.settings.authz_listen {
            ListenAddr::Tcp(addr) => AuthzListener::Tcp(bind_tcp("authz.listen", *addr).await?),
            ListenAddr::Unix(path) => {
                let bind_err = |source| ServerError::Bind {
                    listener: "authz.listen",
                    addr: format!("unix://{}", path.display()),
                    source,
                };
                // A socket file left by a previous run would make bind fail.
                if path.exists() {
                    std::fs::remove_file(path).map_err(bind_err)?;
                }
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(bind_err)?;
                }
                let listener = UnixListener::bind(path).map_err(bind_err)?;
                // Owner and group only: Envoy runs in the same pod (shared
                // group via fsGroup), nobody else needs to ask.
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
                    .map_err(bind_err)?;
                AuthzListener::Unix(listener, path.clone())
            }
        };
        let admin = bind_tcp("admin.listen", shared.settings.admin_listen).await?;
        Ok(Self {
            shared,
            reloader,
            authz,
            admin,
            telemetry_task,
        })
    }

    /// The bound authz address (`host:port` or `unix:///path`).
    pub fn authz_addr(&self) -> String {
        match &self.authz {
            AuthzListener::Tcp(l) => l
                .local_addr()
                .map_or_else(|_| "?".into(), |a| a.to_string()),
            AuthzListener::Unix(_, p) => format!("unix://{}", p.display()),
        }
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> Result<SocketAddr, ServerError> {
        Ok(self.admin.local_addr()?)
    }

    /// The shared state (for metrics and readiness).
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Serve until `shutdown` resolves, then stop taking new checks, finish
    /// the ones in flight (bounded by a drain timeout) and return.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServerError> {
        let Self {
            shared,
            mut reloader,
            authz,
            admin,
            telemetry_task,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };

        let (health, health_service) = tonic_health::server::health_reporter();
        let status_of = |shared: &Shared| {
            if shared.not_ready_reasons().is_empty() {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            }
        };
        let set_health = move |status| {
            let health = health.clone();
            async move {
                health.set_service_status(AUTHZ_SERVICE_NAME, status).await;
                health.set_service_status("", status).await;
            }
        };
        set_health(status_of(&shared)).await;

        // Reload loop: files and readiness, until shutdown.
        let reload_task = {
            let shared = shared.clone();
            let set_health = set_health.clone();
            let mut rx = stop_rx.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(shared.settings.reload_interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = tick.tick() => {
                            // Off the runtime's workers: compiling a large
                            // policy takes a while, and checks must never
                            // wait for it (they read the policy in force
                            // until the new one is swapped in).
                            let on = shared.clone();
                            reloader = tokio::task::spawn_blocking(move || {
                                reloader.tick(&on);
                                reloader
                            })
                            .await
                            // A panic in a reload (a bug) loses the state of
                            // the settling reads: start them again.
                            .unwrap_or_default();
                            set_health(status_of(&shared)).await;
                        }
                        _ = rx.changed() => break,
                    }
                }
            })
        };

        let workload_api_task = shared.settings.workload_api.clone().map(|endpoint| {
            tokio::spawn(crate::workload_api::run(
                shared.clone(),
                endpoint,
                stop_rx.clone(),
            ))
        });

        let service = AuthorizationServer::new(AuthzService::new(shared.clone()));
        // A peer that stops answering HTTP/2 pings is dropped, so a dead
        // connection gives its permit back (conn_limit.rs: the cap).
        // Streams per connection are bounded too: tonic's default (none)
        // would lift hyper's; Envoy's pool opens another connection
        // rather than exceed what the server announces.
        let router = tonic::transport::Server::builder()
            .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
            .http2_keepalive_interval(Some(HTTP2_KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(HTTP2_KEEPALIVE_TIMEOUT))
            .add_service(health_service)
            .add_service(service);
        let authz_task = {
            let signal = stopped(stop_rx.clone());
            match authz {
                // TCP_NODELAY on every accepted socket: an answer goes out
                // in several writes, and with Nagle on each one after the
                // first waits for the client's delayed ACK (~40 ms).
                AuthzListener::Tcp(l) => tokio::spawn(router.serve_with_incoming_shutdown(
                    conn_limit::limit(
                        TcpIncoming::from(l).with_nodelay(Some(true)),
                        shared.metrics.clone(),
                    ),
                    signal,
                )),
                AuthzListener::Unix(l, _) => tokio::spawn(router.serve_with_incoming_shutdown(
                    conn_limit::limit(UnixListenerStream::new(l), shared.metrics.clone()),
                    signal,
                )),
            }
        };
        let admin_task = {
            let signal = stopped(stop_rx.clone());
            let app = admin::router(shared.clone());
            // Same for the admin listener (probes and scrapes on keep-alive).
            let admin = admin.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "cannot set TCP_NODELAY on an admin connection");
                }
            });
            tokio::spawn(
                async move { axum::serve(admin, app).with_graceful_shutdown(signal).await },
            )
        };
        tracing::info!(
            ready = shared.not_ready_reasons().is_empty(),
            "hallpass serving"
        );

        shutdown.await;
        tracing::info!("shutdown requested: draining in-flight checks");
        shared.draining.store(true, Ordering::Relaxed);
        set_health(ServingStatus::NotServing).await;
        let _ = stop_tx.send(true);

        let drained = tokio::time::timeout(DRAIN_TIMEOUT, authz_task).await;
        let _ = reload_task.await;
        if let Some(task) = workload_api_task {
            let _ = task.await;
        }
        match drained {
            Ok(Ok(result)) => result?,
            Ok(Err(join)) => tracing::error!(error = %join, "authz server task failed"),
            Err(_) => tracing::warn!("drain timeout reached; closing remaining connections"),
        }
        if let Ok(Ok(Err(e))) = tokio::time::timeout(Duration::from_secs(2), admin_task).await {
            tracing::warn!(error = %e, "admin server stopped with an error");
        }
        // Last: write what telemetry has queued and persist the baseline.
        shared.telemetry.shutdown().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), telemetry_task).await;
        tracing::info!("hallpass stopped");
        Ok(())
    }
}

async fn bind_tcp(listener: &'static str, addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind {
            listener,
            addr: addr.to_string(),
            source,
        })
}
