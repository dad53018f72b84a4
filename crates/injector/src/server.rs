//! The HTTPS webhook server: `/mutate`, `/mutate/namespace`, `/validate`,
//! `/healthz`, `/readyz`, `/metrics`, over rustls with a reloading
//! certificate.
//!
//! Any pod in the cluster network can open a connection to the webhook, so
//! every resource a client can hold is bounded ([`crate::Limits`]): open
//! connections (the permit is taken before `accept`), the TLS handshake's
//! time, the request head's time (which also bounds an idle keep-alive
//! connection), the body's time and size (3 MiB, the API server's own
//! limit), and how many bodies are read or handled at once. HTTP/1.1 only:
//! the API server speaks it, and it leaves no stream multiplexing to bound.
//! What a client was cut off by is counted in
//! `hallpass_injector_limited_total{limit}`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::config::InjectorConfig;
use crate::error::InjectorError;
use crate::inject::Scope;
use crate::posture::Override;
use crate::review::{self, ReviewOutcome, Reviewed, Webhook};
use crate::tls::{Reload, ReloadingCert};

/// Largest request head hyper buffers (its minimum is 8 KiB).
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// After shutdown, connections get this long to finish what is in flight.
const DRAIN: Duration = Duration::from_secs(10);
/// The limits that cut a client off, for `hallpass_injector_limited_total`.
const LIMITS: [&str; 4] = [
    "handshake_timeout",
    "header_timeout",
    "body_timeout",
    "body_too_large",
];

/// The injector's metrics (on `/metrics`).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reviews: IntCounterVec,
    review_seconds: HistogramVec,
    cert_reloads: IntCounterVec,
    cert_not_after: IntGauge,
    overrides: IntCounterVec,
    limited: IntCounterVec,
    connections: IntGauge,
}

impl Metrics {
    fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let reviews = IntCounterVec::new(
            Opts::new(
                "hallpass_injector_reviews_total",
                "AdmissionReviews answered, by outcome (injected, skipped, rejected, invalid) and reason.",
            ),
            &["outcome", "reason"],
        )?;
        let review_seconds = HistogramVec::new(
            HistogramOpts::new(
                "hallpass_injector_review_duration_seconds",
                "Time to answer one AdmissionReview, body parsed to answer serialized.",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05,
            ]),
            &["outcome"],
        )?;
        let cert_reloads = IntCounterVec::new(
            Opts::new(
                "hallpass_injector_certificate_reloads_total",
                "Serving certificate reloads that changed it (success) or failed (failure).",
            ),
            &["result"],
        )?;
        let overrides = IntCounterVec::new(
            Opts::new(
                "hallpass_injector_overrides_total",
                "Overrides of a protected pod's posture that the chart allowed and the injector applied, by override (overrides.<name>).",
            ),
            &["override"],
        )?;
        let limited = IntCounterVec::new(
            Opts::new(
                "hallpass_injector_limited_total",
                "Clients cut off by a limit (handshake_timeout, header_timeout, body_timeout, body_too_large).",
            ),
            &["limit"],
        )?;
        let connections = IntGauge::new(
            "hallpass_injector_connections",
            "Connections open now (at most limits.maxConnections).",
        )?;
        let cert_not_after = IntGauge::new(
            "hallpass_injector_certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate, Unix seconds.",
        )?;
        registry.register(Box::new(reviews.clone()))?;
        registry.register(Box::new(review_seconds.clone()))?;
        registry.register(Box::new(cert_reloads.clone()))?;
        registry.register(Box::new(cert_not_after.clone()))?;
        registry.register(Box::new(overrides.clone()))?;
        registry.register(Box::new(limited.clone()))?;
        registry.register(Box::new(connections.clone()))?;
        for limit in LIMITS {
            limited.with_label_values(&[limit]);
        }
        for outcome in ["injected", "skipped", "allowed", "rejected", "invalid"] {
            review_seconds.with_label_values(&[outcome]);
        }
        for o in Override::ALL {
            overrides.with_label_values(&[o.as_str()]);
        }
        for result in ["success", "failure"] {
            cert_reloads.with_label_values(&[result]);
        }
        Ok(Self {
            registry,
            reviews,
            review_seconds,
            cert_reloads,
            cert_not_after,
            overrides,
            limited,
            connections,
        })
    }

    fn limited(&self, limit: &'static str) {
        self.limited.with_label_values(&[limit]).inc();
    }

    fn record(&self, reviewed: &Reviewed, elapsed: Duration) {
        let outcome = reviewed.outcome;
        for o in &reviewed.overrides {
            self.overrides.with_label_values(&[o.as_str()]).inc();
        }
        let reason = match outcome {
            ReviewOutcome::Skipped(why) => why,
            _ => "",
        };
        self.reviews
            .with_label_values(&[outcome.as_str(), reason])
            .inc();
        self.review_seconds
            .with_label_values(&[outcome.as_str()])
            .observe(elapsed.as_secs_f64());
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail on I/O; a malformed family is a bug
        // here, and an empty answer makes it visible.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

#[derive(Debug)]
struct App {
    config: InjectorConfig,
    metrics: Metrics,
    /// Request bodies being read or handled.
    requests: Arc<Semaphore>,
}

/// A bound, not yet serving, injector.
#[derive(Debug)]
pub struct Injector {
    app: Arc<App>,
    cert: Arc<ReloadingCert>,
    tcp: TcpListener,
}

impl Injector {
    /// Load the certificate and bind the listener.
    pub async fn bind(config: InjectorConfig) -> Result<Self, InjectorError> {
        let cert = Arc::new(ReloadingCert::load(
            &config.tls.cert_file,
            &config.tls.key_file,
        )?);
        let tcp = TcpListener::bind(config.listen)
            .await
            .map_err(|source| InjectorError::Bind {
                addr: config.listen.to_string(),
                source,
            })?;
        let metrics = Metrics::new()?;
        metrics.cert_not_after.set(cert.not_after());
        let requests = Arc::new(Semaphore::new(config.limits.max_requests_in_flight));
        Ok(Self {
            app: Arc::new(App {
                config,
                metrics,
                requests,
            }),
            cert,
            tcp,
        })
    }

    /// The bound address (the port, when the config said 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Serve until `shutdown` resolves, then finish requests in flight.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), InjectorError> {
        let tls = TlsAcceptor::from(self.cert.server_config()?);
        let app = self.app.clone();
        let watcher = {
            let app = app.clone();
            let cert = self.cert.clone();
            tokio::spawn(
                cert.clone()
                    .watch(app.config.reload_interval(), move |result| match result {
                        Ok(Reload::Changed) => {
                            app.metrics
                                .cert_reloads
                                .with_label_values(&["success"])
                                .inc();
                            app.metrics.cert_not_after.set(cert.not_after());
                        }
                        Ok(Reload::Unchanged) => {}
                        Err(_) => app
                            .metrics
                            .cert_reloads
                            .with_label_values(&["failure"])
                            .inc(),
                    }),
            )
        };
        let router = router(app.clone());
        let limits = app.config.limits.clone();
        let connections = Arc::new(Semaphore::new(limits.max_connections));
        let (stop, stopping) = watch::channel(false);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            // The permit is taken before accept: over the cap, clients wait
            // in the kernel's queue instead of costing memory here.
            let permit = tokio::select! {
                () = &mut shutdown => break,
                permit = connections.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (tcp, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.tcp.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let connection = Connection {
                app: app.clone(),
                tls: tls.clone(),
                router: router.clone(),
                stopping: stopping.clone(),
            };
            tokio::spawn(async move {
                let _permit = permit;
                connection.serve(tcp, peer).await;
            });
        }
        drop(self.tcp);
        let _ = stop.send(true);
        // Every connection holds a permit until it ends.
        let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
        if tokio::time::timeout(DRAIN, connections.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!("connections still open after the drain period; closing them");
        }
        watcher.abort();
        Ok(())
    }
}

/// One accepted TCP connection.
struct Connection {
    app: Arc<App>,
    tls: TlsAcceptor,
    router: Router,
    stopping: watch::Receiver<bool>,
}

impl Connection {
    async fn serve(mut self, tcp: TcpStream, peer: SocketAddr) {
        let metrics = &self.app.metrics;
        metrics.connections.inc();
        let limits = &self.app.config.limits;
        let handshake = Duration::from_secs(limits.handshake_timeout_seconds);
        match tokio::time::timeout(handshake, self.tls.accept(tcp)).await {
            Err(_) => {
                metrics.limited("handshake_timeout");
                tracing::debug!(%peer, "TLS handshake timed out");
            }
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
            Ok(Ok(stream)) => {
                let mut http = hyper::server::conn::http1::Builder::new();
                http.timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(limits.header_timeout_seconds))
                    .max_buf_size(MAX_HEAD_BYTES)
                    .keep_alive(true);
                let conn = http.serve_connection(
                    TokioIo::new(stream),
                    TowerToHyperService::new(self.router.clone()),
                );
                let mut conn = std::pin::pin!(conn);
                let result = tokio::select! {
                    result = conn.as_mut() => result,
                    () = async { let _ = self.stopping.wait_for(|stop| *stop).await; } => {
                        conn.as_mut().graceful_shutdown();
                        conn.await
                    }
                };
                if let Err(e) = result {
                    if e.is_timeout() {
                        metrics.limited("header_timeout");
                    }
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
            }
        }
        metrics.connections.dec();
    }
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/mutate", post(mutate_pod))
        .route("/mutate/namespace", post(mutate_namespace))
        .route("/validate", post(validate))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(|| async { "ready\n" }))
        .route("/metrics", get(metrics))
        .with_state(app)
}

async fn mutate_pod(State(app): State<Arc<App>>, body: Body) -> Response {
    handle(&app, Webhook::Mutate(Scope::Pod), body).await
}

async fn mutate_namespace(State(app): State<Arc<App>>, body: Body) -> Response {
    handle(&app, Webhook::Mutate(Scope::Namespace), body).await
}

async fn validate(State(app): State<Arc<App>>, body: Body) -> Response {
    handle(&app, Webhook::Validate, body).await
}

/// Read the body within its limits, then answer it. The request slot is
/// held until the answer is built, so at most `maxRequestsInFlight` bodies
/// (of at most `maxBodyBytes`) are in memory at once.
async fn handle(app: &App, webhook: Webhook, body: Body) -> Response {
    let limits = &app.config.limits;
    let too_large = || {
        app.metrics.limited("body_too_large");
        closing(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "an AdmissionReview is at most {} bytes\n",
                limits.max_body_bytes
            ),
        )
    };
    // A Content-Length above the limit is refused before a byte is read.
    if body.size_hint().lower() > u64::try_from(limits.max_body_bytes).unwrap_or(u64::MAX) {
        return too_large();
    }
    let read = async {
        let slot = app.requests.clone().acquire_owned().await;
        let bytes = Limited::new(body, limits.max_body_bytes).collect().await;
        (slot, bytes)
    };
    let deadline = Duration::from_secs(limits.body_timeout_seconds);
    let (slot, bytes) = match tokio::time::timeout(deadline, read).await {
        Ok(read) => read,
        Err(_) => {
            app.metrics.limited("body_timeout");
            return closing(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} s\n",
                    limits.body_timeout_seconds
                ),
            );
        }
    };
    let bytes = match bytes {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(),
        Err(e) => {
            return closing(
                StatusCode::BAD_REQUEST,
                format!("cannot read the body: {e}\n"),
            );
        }
    };
    let response = answer(app, webhook, &bytes);
    drop(slot);
    response
}

/// An error answer that also closes the connection (its body may be unread).
fn closing(status: StatusCode, message: String) -> Response {
    (status, [(header::CONNECTION, "close")], message).into_response()
}

fn answer(app: &App, webhook: Webhook, body: &[u8]) -> Response {
    let started = Instant::now();
    let reviewed = review::answer_review(&app.config, webhook, body);
    let response = match review::to_wire(&reviewed.review).and_then(|v| serde_json::to_vec(&v)) {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the answer: {e}\n"),
        )
            .into_response(),
    };
    app.metrics.record(&reviewed, started.elapsed());
    response
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.encode(),
    )
        .into_response()
}
