//! [`FakeWorkloadApi`]: the handle a test uses to run and steer the fake agent.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::net::UnixListener;
use tokio::sync::oneshot;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Server;

use crate::pb::spiffe_workload_api_server::SpiffeWorkloadApiServer;
use crate::pb::{JwtBundlesResponse, X509BundlesResponse};
use crate::service::{State, WorkloadApi, require_security_header};

/// A fake SPIRE agent serving the SPIFFE Workload API on a Unix socket.
///
/// Dropping it (or calling [`FakeWorkloadApi::stop`]) stops serving, ends open
/// streams with `UNAVAILABLE` and removes the socket file.
#[derive(Debug)]
pub struct FakeWorkloadApi {
    state: Arc<State>,
    socket_path: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
}

impl FakeWorkloadApi {
    /// Binds `socket_path` and serves the Workload API on a spawned task.
    ///
    /// Until a bundle set is given, bundle streams open but send nothing, like
    /// an agent that has not synced yet.
    ///
    /// # Errors
    ///
    /// Fails if the socket cannot be bound, for example because a file already
    /// exists at `socket_path` (a stale socket is not removed for you).
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime.
    pub fn start(socket_path: &Path) -> io::Result<Self> {
        let listener = UnixListener::bind(socket_path)?;
        let state = Arc::new(State::new());
        let service = SpiffeWorkloadApiServer::with_interceptor(
            WorkloadApi {
                state: Arc::clone(&state),
            },
            require_security_header,
        );
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async {
                // Either an explicit stop or a dropped handle shuts down.
                let _ = stopped.await;
            });
        tokio::spawn(server);
        Ok(Self {
            state,
            socket_path: socket_path.to_owned(),
            shutdown: Some(shutdown),
        })
    }

    /// The socket this fake listens on.
    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    /// The endpoint string for `spiffe::WorkloadApiClient::connect_to` or
    /// `SPIFFE_ENDPOINT_SOCKET`: `unix:<socket path>`.
    pub fn endpoint(&self) -> String {
        format!("unix:{}", self.socket_path.display())
    }

    /// Replaces the whole X.509 bundle set and pushes it to every open
    /// `FetchX509Bundles` stream.
    ///
    /// Each entry is a trust domain name (`example.org`; a trust domain ID
    /// `spiffe://example.org` is taken as is) and its CA certificates in DER.
    /// On the wire, as SPIRE sends it, the key is the trust domain ID and the
    /// value is the certificates' DER concatenated. A trust domain that appears
    /// twice keeps its last entry. An empty set is sent as it is; the `spiffe`
    /// client rejects such a message (`MissingRequiredField`).
    pub fn set_x509_bundles(&self, bundles: impl IntoIterator<Item = (String, Vec<Vec<u8>>)>) {
        let bundles = bundles
            .into_iter()
            .map(|(trust_domain, certs)| (trust_domain_id(trust_domain), certs.concat()))
            .collect();
        self.state.x509.send_replace(Some(X509BundlesResponse {
            crl: Vec::new(),
            bundles,
        }));
    }

    /// Replaces the whole JWT bundle set and pushes it to every open
    /// `FetchJWTBundles` stream.
    ///
    /// Each entry is a trust domain name (or ID, as for
    /// [`FakeWorkloadApi::set_x509_bundles`]) and its JWKS document as JSON
    /// bytes (`{"keys":[...]}`), sent unchanged under the trust domain ID.
    pub fn set_jwt_bundles(&self, bundles: impl IntoIterator<Item = (String, Vec<u8>)>) {
        let bundles = bundles
            .into_iter()
            .map(|(trust_domain, jwks)| (trust_domain_id(trust_domain), jwks))
            .collect();
        self.state
            .jwt
            .send_replace(Some(JwtBundlesResponse { bundles }));
    }

    /// Ends every open bundle stream with `UNAVAILABLE`, as an agent restart
    /// would. The server keeps accepting calls, and new streams get the
    /// current sets straight away.
    pub fn disconnect_all(&self) {
        self.state
            .disconnects
            .send_replace("fake Workload API dropped the stream");
    }

    /// How many `FetchX509Bundles` calls have been accepted (calls refused for
    /// a missing security header do not count).
    pub fn x509_streams_opened(&self) -> usize {
        self.state.x509_streams_opened.load(Ordering::SeqCst)
    }

    /// How many `FetchJWTBundles` calls have been accepted (calls refused for
    /// a missing security header do not count).
    pub fn jwt_streams_opened(&self) -> usize {
        self.state.jwt_streams_opened.load(Ordering::SeqCst)
    }

    /// Stops serving and removes the socket file; the same as dropping.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for FakeWorkloadApi {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // Stop accepting, then end the open streams so that the server's
            // graceful shutdown does not wait on them.
            let _ = shutdown.send(());
            self.state
                .disconnects
                .send_replace("fake Workload API stopped");
        }
        // Best effort: the file may already be gone.
        let _ = std::fs::remove_file(&self.socket_path);
    }
}

/// SPIRE keys bundles by trust domain ID, `spiffe://<name>`.
fn trust_domain_id(trust_domain: String) -> String {
    if trust_domain.starts_with("spiffe://") {
        trust_domain
    } else {
        format!("spiffe://{trust_domain}")
    }
}
