//! The HTTPS webhook server: `/mutate`, `/mutate/namespace`, `/healthz`,
//! `/readyz`, `/metrics`, over rustls with a reloading certificate.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::InjectorConfig;
use crate::error::InjectorError;
use crate::inject::Scope;
use crate::posture::Override;
use crate::review::{self, ReviewOutcome, Reviewed, Webhook};
use crate::tls::{Reload, ReloadingCert};

/// Largest AdmissionReview accepted (the API server's own request limit is 3 MiB).
const MAX_BODY: usize = 8 * 1024 * 1024;
/// A client that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once.
const MAX_HANDSHAKES: usize = 256;

/// The injector's metrics (on `/metrics`).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reviews: IntCounterVec,
    review_seconds: HistogramVec,
    cert_reloads: IntCounterVec,
    cert_not_after: IntGauge,
    overrides: IntCounterVec,
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
        let cert_not_after = IntGauge::new(
            "hallpass_injector_certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate, Unix seconds.",
        )?;
        registry.register(Box::new(reviews.clone()))?;
        registry.register(Box::new(review_seconds.clone()))?;
        registry.register(Box::new(cert_reloads.clone()))?;
        registry.register(Box::new(cert_not_after.clone()))?;
        registry.register(Box::new(overrides.clone()))?;
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
        })
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
        Ok(Self {
            app: Arc::new(App { config, metrics }),
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
        let listener = TlsListener::start(self.tcp, tls)?;
        let result = axum::serve(listener, router(app))
            .with_graceful_shutdown(shutdown)
            .await;
        watcher.abort();
        result.map_err(InjectorError::Io)
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
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app)
}

async fn mutate_pod(State(app): State<Arc<App>>, body: Bytes) -> Response {
    handle(&app, Webhook::Mutate(Scope::Pod), &body)
}

async fn mutate_namespace(State(app): State<Arc<App>>, body: Bytes) -> Response {
    handle(&app, Webhook::Mutate(Scope::Namespace), &body)
}

async fn validate(State(app): State<Arc<App>>, body: Bytes) -> Response {
    handle(&app, Webhook::Validate, &body)
}

fn handle(app: &App, webhook: Webhook, body: &[u8]) -> Response {
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

/// Accepted TLS connections for axum. Handshakes run in their own tasks (a
/// slow client cannot hold up the others) and are bounded in time and number.
struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    acceptor: JoinHandle<()>,
}

impl TlsListener {
    fn start(tcp: TcpListener, tls: TlsAcceptor) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        let acceptor = tokio::spawn(async move {
            loop {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let (stream, peer) = match tcp.accept().await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let tls = tls.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self {
            ready,
            local,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The acceptor only stops when the listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
