//! Shared helpers for the in-process sidecar tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use envoy_types::ext_authz::v3::pb::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use hallpass_server::{Settings, Sidecar};
use hallpass_testkit::{Ca, Svid};
use tokio::sync::oneshot;
use tonic::transport::{Channel, Endpoint};

pub const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";
pub const PHARMACY_DEST: &str = "spiffe://hospital.example/ns/pharmacy/sa/pharmacy";
pub const EHR: &str = "spiffe://hospital.example/ns/clinical/sa/ehr-api";
pub const BILLING: &str = "spiffe://hospital.example/ns/billing/sa/billing";
pub const POLICY: &str = include_str!("../../../../examples/policies/clinical-mesh.yaml");

pub struct Running {
    pub admin: std::net::SocketAddr,
    pub client: AuthorizationClient<Channel>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), hallpass_server::ServerError>>,
}

impl Running {
    /// [`Self::start`], then wait until `/readyz` says ready.
    pub async fn start_ready(config: String) -> Running {
        let running = Self::start(config).await;
        wait_until_ready(&running, true).await;
        running
    }

    pub async fn start(config: String) -> Running {
        let settings = Settings::from_yaml(&config, std::iter::empty()).unwrap();
        let sidecar = Sidecar::bind(settings).await.unwrap();
        let authz = sidecar.authz_addr();
        let admin = sidecar.admin_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(sidecar.run(async move {
            let _ = stopped.await;
        }));
        let channel = match authz.strip_prefix("unix://") {
            Some(path) => {
                let path = path.to_owned();
                Endpoint::from_static("http://uds")
                    .connect_with_connector(tower_service_fn(path))
                    .await
                    .unwrap()
            }
            None => Endpoint::from_shared(format!("http://{authz}"))
                .unwrap()
                .connect()
                .await
                .unwrap(),
        };
        Running {
            admin,
            client: AuthorizationClient::new(channel),
            stop: Some(stop),
            task,
        }
    }

    /// [`Self::check`] for a caller that presents `svid` through Envoy, to
    /// the configured workload.
    pub async fn check_svid(
        &mut self,
        svid: &Svid,
        method: &str,
        path: &str,
    ) -> (u16, String, String) {
        self.check(check_request(Some(svid), "", "", method, path))
            .await
    }

    pub async fn check(&mut self, req: CheckRequest) -> (u16, String, String) {
        let response = self
            .client
            .check(req)
            .await
            .expect("a decision is never a gRPC error")
            .into_inner();
        let find = |hs: &[envoy_types::ext_authz::v3::pb::HeaderValueOption], name: &str| {
            hs.iter()
                .filter_map(|h| h.header.as_ref())
                .find(|h| h.key == name)
                .map(|h| h.value.clone())
                .unwrap_or_default()
        };
        match response.http_response.unwrap() {
            HttpResponse::OkResponse(ok) => {
                (200, find(&ok.headers, "x-hallpass-source"), String::new())
            }
            HttpResponse::DeniedResponse(d) => (
                u16::try_from(d.status.unwrap().code).unwrap(),
                find(&d.headers, "x-hallpass-reason"),
                d.body,
            ),
            other => panic!("unexpected response {other:?}"),
        }
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = hallpass_testkit::http::get_async(self.admin, path)
            .await
            .unwrap();
        (response.status, response.body)
    }

    pub async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

pub fn tower_service_fn(
    path: String,
) -> impl tower_service::Service<
    tonic::transport::Uri,
    Response = hyper_util::rt::TokioIo<tokio::net::UnixStream>,
    Error = std::io::Error,
    Future = impl Send,
> + Clone {
    tower::service_fn(move |_| {
        let path = path.clone();
        async move {
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                tokio::net::UnixStream::connect(path).await?,
            ))
        }
    })
}

pub fn config(dir: &Path, extra: &str) -> String {
    format!(
        "authz:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\n\
         trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: {d}/bundle.pem\n\
         policy:\n  file: {d}/policy.yaml\n  reload_interval_seconds: 1\n{extra}",
        d = dir.display()
    )
}

pub fn check_request(
    svid: Option<&Svid>,
    principal: &str,
    destination: &str,
    method: &str,
    path: &str,
) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(Peer {
                certificate: svid.map(Svid::envoy_encoded).unwrap_or_default(),
                principal: principal.to_owned(),
                ..Default::default()
            }),
            destination: Some(Peer {
                principal: destination.to_owned(),
                ..Default::default()
            }),
            request: Some(Request {
                http: Some(HttpRequest {
                    method: method.into(),
                    path: path.into(),
                    headers: HashMap::new(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

pub fn pki(dir: &Path) -> Ca {
    let ca = Ca::root("hospital.example").unwrap();
    std::fs::write(dir.join("bundle.pem"), ca.cert_pem()).unwrap();
    ca
}

/// A fresh directory holding the test CA's bundle and the clinical-mesh
/// policy, the files [`config`] points at.
pub fn clinical_dir() -> (tempfile::TempDir, Ca) {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki(dir.path());
    std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
    (dir, ca)
}

pub async fn wait_until_ready(running: &Running, ready: bool) -> String {
    for _ in 0..100 {
        let (status, body) = running.get("/readyz").await;
        if (status == 200) == ready {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("readiness never became {ready}");
}

/// Add a request header to a check request.
pub fn with_header(mut req: CheckRequest, name: &str, value: &str) -> CheckRequest {
    if let Some(http) = req
        .attributes
        .as_mut()
        .and_then(|a| a.request.as_mut())
        .and_then(|r| r.http.as_mut())
    {
        http.headers.insert(name.to_owned(), value.to_owned());
    }
    req
}
