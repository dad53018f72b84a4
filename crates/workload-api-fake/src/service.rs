//! The `SpiffeWorkloadAPI` gRPC service behind [`crate::FakeWorkloadApi`].

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::pb::spiffe_workload_api_server::SpiffeWorkloadApi;
use crate::pb::{
    JwtBundlesRequest, JwtBundlesResponse, JwtsvidRequest, JwtsvidResponse, ValidateJwtsvidRequest,
    ValidateJwtsvidResponse, X509BundlesRequest, X509BundlesResponse, X509svidRequest,
    X509svidResponse,
};

/// gRPC metadata key that SPIRE requires on every Workload API call, with the
/// value `true`.
pub const SECURITY_HEADER: &str = "workload.spiffe.io";

/// Message of the `INVALID_ARGUMENT` status for a call without
/// [`SECURITY_HEADER`]; the same words as the SPIRE agent.
pub const SECURITY_HEADER_MISSING: &str = "security header missing from request";

/// State shared by the handle the test holds and the running service.
#[derive(Debug)]
pub(crate) struct State {
    /// The current X.509 bundle set; `None` until the test sets one.
    pub(crate) x509: watch::Sender<Option<X509BundlesResponse>>,
    /// The current JWT bundle set; `None` until the test sets one.
    pub(crate) jwt: watch::Sender<Option<JwtBundlesResponse>>,
    /// Each send ends every open stream with `UNAVAILABLE` and this message.
    pub(crate) disconnects: watch::Sender<&'static str>,
    pub(crate) x509_streams_opened: AtomicUsize,
    pub(crate) jwt_streams_opened: AtomicUsize,
}

impl State {
    pub(crate) fn new() -> Self {
        Self {
            x509: watch::Sender::new(None),
            jwt: watch::Sender::new(None),
            disconnects: watch::Sender::new(""),
            x509_streams_opened: AtomicUsize::new(0),
            jwt_streams_opened: AtomicUsize::new(0),
        }
    }
}

/// The service implementation; cheap to clone into tonic.
#[derive(Debug)]
pub(crate) struct WorkloadApi {
    pub(crate) state: Arc<State>,
}

type BundleStream<M> = ReceiverStream<Result<M, Status>>;

#[tonic::async_trait]
impl SpiffeWorkloadApi for WorkloadApi {
    type FetchX509SVIDStream = BundleStream<X509svidResponse>;
    type FetchX509BundlesStream = BundleStream<X509BundlesResponse>;
    type FetchJWTBundlesStream = BundleStream<JwtBundlesResponse>;

    async fn fetch_x509svid(
        &self,
        _request: Request<X509svidRequest>,
    ) -> Result<Response<Self::FetchX509SVIDStream>, Status> {
        Err(Status::unimplemented(
            "the fake Workload API serves bundles only",
        ))
    }

    async fn fetch_x509_bundles(
        &self,
        _request: Request<X509BundlesRequest>,
    ) -> Result<Response<Self::FetchX509BundlesStream>, Status> {
        self.state
            .x509_streams_opened
            .fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(bundle_stream(
            self.state.x509.subscribe(),
            self.state.disconnects.subscribe(),
        )))
    }

    async fn fetch_jwtsvid(
        &self,
        _request: Request<JwtsvidRequest>,
    ) -> Result<Response<JwtsvidResponse>, Status> {
        Err(Status::unimplemented(
            "the fake Workload API serves bundles only",
        ))
    }

    async fn fetch_jwt_bundles(
        &self,
        _request: Request<JwtBundlesRequest>,
    ) -> Result<Response<Self::FetchJWTBundlesStream>, Status> {
        self.state.jwt_streams_opened.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(bundle_stream(
            self.state.jwt.subscribe(),
            self.state.disconnects.subscribe(),
        )))
    }

    async fn validate_jwtsvid(
        &self,
        _request: Request<ValidateJwtsvidRequest>,
    ) -> Result<Response<ValidateJwtsvidResponse>, Status> {
        Err(Status::unimplemented(
            "the fake Workload API serves bundles only",
        ))
    }
}

/// Interceptor: the SPIRE agent's check that the call carries exactly one
/// `workload.spiffe.io` value and that it is `true`.
pub(crate) fn require_security_header(request: Request<()>) -> Result<Request<()>, Status> {
    let mut values = request.metadata().get_all(SECURITY_HEADER).iter();
    let present = matches!(
        (values.next(), values.next()),
        (Some(value), None) if value.as_bytes() == b"true"
    );
    if present {
        Ok(request)
    } else {
        Err(Status::invalid_argument(SECURITY_HEADER_MISSING))
    }
}

/// Streams the current bundle set (once there is one) and every later one,
/// until a disconnect or until the client goes away.
///
/// `watch` keeps only the newest value, so sets replaced faster than the
/// client reads may be skipped; each message is a complete set, so nothing is
/// lost but the intermediate states.
fn bundle_stream<M>(
    mut bundles: watch::Receiver<Option<M>>,
    mut disconnects: watch::Receiver<&'static str>,
) -> BundleStream<M>
where
    M: Clone + Send + Sync + 'static,
{
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        loop {
            let current = bundles.borrow_and_update().clone();
            if let Some(message) = current {
                tokio::select! {
                    sent = tx.send(Ok(message)) => {
                        if sent.is_err() {
                            return;
                        }
                    }
                    _ = disconnects.changed() => break,
                }
            }
            tokio::select! {
                changed = bundles.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                _ = disconnects.changed() => break,
                () = tx.closed() => return,
            }
        }
        let reason = *disconnects.borrow();
        let reason = if reason.is_empty() {
            "fake Workload API stopped"
        } else {
            reason
        };
        // The client may be gone already; then there is nobody to tell.
        let _ = tx.send(Err(Status::unavailable(reason))).await;
    });
    ReceiverStream::new(rx)
}
