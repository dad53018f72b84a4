//! In-process tests: a bound `Sidecar` driven by a real tonic gRPC client, with
//! generated certificates. These cover readiness, reload, audit mode and the
//! transport variants without Envoy (the Envoy path is in `tests/`).
#![allow(clippy::unwrap_used)]

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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tonic::transport::{Channel, Endpoint};

const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";
const PHARMACY_DEST: &str = "spiffe://hospital.example/ns/pharmacy/sa/pharmacy";
const EHR: &str = "spiffe://hospital.example/ns/clinical/sa/ehr-api";
const BILLING: &str = "spiffe://hospital.example/ns/billing/sa/billing";
const POLICY: &str = include_str!("../../../examples/policies/clinical-mesh.yaml");

struct Running {
    admin: std::net::SocketAddr,
    client: AuthorizationClient<Channel>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), hallpass_server::ServerError>>,
}

impl Running {
    async fn start(config: String) -> Running {
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

    async fn check(&mut self, req: CheckRequest) -> (u16, String, String) {
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

    async fn get(&self, path: &str) -> (u16, String) {
        let mut s = tokio::net::TcpStream::connect(self.admin).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).await.unwrap();
        let status = raw.split_whitespace().nth(1).unwrap().parse().unwrap();
        (
            status,
            raw.split_once("\r\n\r\n")
                .map(|(_, b)| b.to_owned())
                .unwrap_or_default(),
        )
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

fn tower_service_fn(
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

fn config(dir: &Path, extra: &str) -> String {
    format!(
        "authz:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\n\
         trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: {d}/bundle.pem\n\
         policy:\n  file: {d}/policy.yaml\n  reload_interval_seconds: 1\n{extra}",
        d = dir.display()
    )
}

fn check_request(
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

fn pki(dir: &Path) -> Ca {
    let ca = Ca::root("hospital.example").unwrap();
    std::fs::write(dir.join("bundle.pem"), ca.cert_pem()).unwrap();
    ca
}

async fn wait_until_ready(running: &Running, ready: bool) -> String {
    for _ in 0..100 {
        let (status, body) = running.get("/readyz").await;
        if (status == 200) == ready {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("readiness never became {ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_policy_fails_closed_until_a_valid_one_appears_then_bad_updates_keep_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki(dir.path());
    let ehr = ca.issue(EHR).unwrap();
    let mut running = Running::start(config(dir.path(), "")).await;

    // No policy file: not ready, and every check is a deny.
    let body = wait_until_ready(&running, false).await;
    assert!(body.contains("no valid policy loaded"), "{body}");
    let (status, reason, _) = running
        .check(check_request(
            Some(&ehr),
            "",
            LAB,
            "GET",
            "/patients/1/results",
        ))
        .await;
    assert_eq!((status, reason.as_str()), (403, "internal_error"));

    // The policy appears: ready, and the same call is allowed.
    std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
    wait_until_ready(&running, true).await;
    let (status, source, _) = running
        .check(check_request(
            Some(&ehr),
            "",
            LAB,
            "GET",
            "/patients/1/results",
        ))
        .await;
    assert_eq!((status, source.as_str()), (200, EHR));

    // An editor truncates the file, then writes garbage: the last good policy stays.
    std::fs::write(dir.path().join("policy.yaml"), "").unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    std::fs::write(
        dir.path().join("policy.yaml"),
        "version: 1\nworkloads: [oops\n",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (status, _, _) = running
        .check(check_request(
            Some(&ehr),
            "",
            LAB,
            "GET",
            "/patients/1/results",
        ))
        .await;
    assert_eq!(
        status, 200,
        "a bad policy file must not replace the last good one"
    );
    let (_, metrics) = running.get("/metrics").await;
    assert!(
        metrics.contains("hallpass_policy_reloads_total{result=\"success\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hallpass_policy_reloads_total{result=\"failure\"} 3"),
        "{metrics}"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_listener_answers_checks() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki(dir.path());
    std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
    // A stale socket file from an earlier run must not stop the bind.
    let sock = dir.path().join("authz.sock");
    std::fs::write(&sock, "stale").unwrap();
    let cfg = config(dir.path(), &format!("workload:\n  id: {LAB}\n")).replace(
        "127.0.0.1:0\nadmin",
        &format!("unix://{}\nadmin", sock.display()),
    );
    let mut running = Running::start(cfg).await;
    wait_until_ready(&running, true).await;
    let ehr = ca.issue(EHR).unwrap();
    let billing = ca.issue(BILLING).unwrap();
    assert_eq!(
        running
            .check(check_request(
                Some(&ehr),
                "",
                "",
                "GET",
                "/patients/1/results"
            ))
            .await
            .0,
        200
    );
    let (status, reason, body) = running
        .check(check_request(
            Some(&billing),
            "",
            "",
            "GET",
            "/patients/1/results",
        ))
        .await;
    assert_eq!((status, reason.as_str()), (403, "no_matching_rule"));
    assert_eq!(body, r#"{"error":"forbidden","reason":"no_matching_rule"}"#);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_mode_lets_denied_calls_through_and_counts_audit_deny() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki(dir.path());
    std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
    let mut running = Running::start(config(
        dir.path(),
        &format!("workload:\n  id: {PHARMACY_DEST}\n"),
    ))
    .await;
    wait_until_ready(&running, true).await;
    let billing = ca.issue(BILLING).unwrap();
    let (status, source, _) = running
        .check(check_request(
            Some(&billing),
            "",
            "",
            "GET",
            "/prescriptions",
        ))
        .await;
    assert_eq!(
        (status, source.as_str()),
        (200, BILLING),
        "audit mode lets the call through, still naming the caller"
    );
    // Even an unauthenticated call goes through in audit mode, without a source header.
    let (status, source, _) = running
        .check(check_request(None, "", "", "GET", "/prescriptions"))
        .await;
    assert_eq!((status, source.as_str()), (200, ""));
    let (_, metrics) = running.get("/metrics").await;
    assert!(metrics.contains(&format!("decision=\"audit_deny\",destination=\"{PHARMACY_DEST}\",reason=\"no_matching_rule\",source=\"{BILLING}\"}} 1")), "{metrics}");
    assert!(metrics.contains("decision=\"audit_deny\",destination=\"spiffe://hospital.example/ns/pharmacy/sa/pharmacy\",reason=\"no_identity\",source=\"unauthenticated\"} 1"), "{metrics}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_principal_mode_trusts_the_principal_and_denies_without_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
    let cfg = format!(
        "authz:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nidentity:\n  x509_from: envoy_principal\n\
         workload:\n  id: {LAB}\npolicy:\n  file: {}/policy.yaml\n",
        dir.path().display()
    );
    let mut running = Running::start(cfg).await;
    wait_until_ready(&running, true).await;
    let (status, source, _) = running
        .check(check_request(None, EHR, "", "GET", "/patients/1/results"))
        .await;
    assert_eq!((status, source.as_str()), (200, EHR));
    let (status, reason, body) = running
        .check(check_request(None, "", "", "GET", "/patients/1/results"))
        .await;
    assert_eq!((status, reason.as_str()), (401, "no_identity"));
    assert_eq!(
        body,
        r#"{"error":"unauthenticated","reason":"no_identity"}"#
    );
    let (status, reason, _) = running
        .check(check_request(
            None,
            "spiffe://HOSPITAL.example/x",
            "",
            "GET",
            "/",
        ))
        .await;
    assert_eq!(
        (status, reason.as_str()),
        (401, "invalid_svid"),
        "a non-canonical principal is not an identity"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_a_deny_never_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki(dir.path());
    std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
    let mut running = Running::start(config(dir.path(), "")).await;
    wait_until_ready(&running, true).await;
    let ehr = ca.issue(EHR).unwrap();

    // No attributes at all.
    let (status, reason, _) = running.check(CheckRequest { attributes: None }).await;
    assert_eq!((status, reason.as_str()), (403, "internal_error"));
    // No destination (no workload.id configured, no principal from Envoy).
    let (status, reason, _) = running
        .check(check_request(
            Some(&ehr),
            "",
            "",
            "GET",
            "/patients/1/results",
        ))
        .await;
    assert_eq!((status, reason.as_str()), (403, "internal_error"));
    // Garbage certificate field.
    let mut req = check_request(None, "", LAB, "GET", "/patients/1/results");
    req.attributes
        .as_mut()
        .unwrap()
        .source
        .as_mut()
        .unwrap()
        .certificate = "%2D%2D%2D%2D%2DBEGIN%20CERTIFICATE%2D%2D%2D%2D%2D%0Azzzz".into();
    let (status, reason, _) = running.check(req).await;
    assert_eq!((status, reason.as_str()), (401, "invalid_svid"));
    // A huge certificate field.
    let mut req = check_request(None, "", LAB, "GET", "/");
    req.attributes
        .as_mut()
        .unwrap()
        .source
        .as_mut()
        .unwrap()
        .certificate = "A".repeat(200_000);
    assert_eq!(running.check(req).await.1, "invalid_svid");
    // A destination principal that is not a SPIFFE ID.
    let (status, reason, _) = running
        .check(check_request(
            Some(&ehr),
            "",
            "https://evil.example/",
            "GET",
            "/",
        ))
        .await;
    assert_eq!((status, reason.as_str()), (403, "internal_error"));
    // The sidecar is still healthy and still allows the legitimate call.
    assert_eq!(
        running
            .check(check_request(
                Some(&ehr),
                "",
                LAB,
                "GET",
                "/patients/1/results"
            ))
            .await
            .0,
        200
    );
    running.stop().await;
}
