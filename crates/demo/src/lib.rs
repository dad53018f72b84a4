//! `hallpass demo`: the whole data path on one machine, with nothing installed.
//!
//! It makes a throwaway PKI, writes the clinical-mesh policy and a config into
//! a temporary directory, starts the sidecar in-process on loopback, and sends
//! it real gRPC `Check` calls shaped exactly as Envoy sends them. Each scripted
//! call has an expected answer, so the demo doubles as a smoke test: [`run`]
//! says whether every answer was the expected one.
//!
//! Its certificates come from `hallpass-pki` (product code, not the test
//! kit). The `hallpass` binary links this crate only with its `demo`
//! feature, so the sidecar build carries none of it.

use std::collections::HashMap;
use std::time::Duration;

use envoy_types::ext_authz::v3::pb::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use hallpass_insights::{HttpClient, HttpOptions, InsightsError};
use hallpass_pki::{Ca, PkiError, Svid, SvidSpec};
use hallpass_server::{ServerError, Settings, Sidecar};

/// The demo's policy: the shipped example, so what the demo shows is what
/// we ship. `hallpass demo --print-policy` prints it.
pub const POLICY: &str = include_str!("../../../examples/policies/clinical-mesh.yaml");
/// Where [`POLICY`] lives in the repository.
pub const POLICY_SOURCE: &str = "examples/policies/clinical-mesh.yaml";
const LAB_RESULTS: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";

/// What stops the demo before it has a verdict.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// The temporary files (PKI, policy, config) could not be written.
    #[error("cannot write the demo's files: {0}")]
    Files(#[from] std::io::Error),
    /// The throwaway PKI could not be made.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The in-process sidecar did not start or failed.
    #[error("the demo's sidecar: {0}")]
    Sidecar(#[from] ServerError),
    /// The gRPC client could not connect to the in-process sidecar.
    #[error("cannot reach the in-process sidecar: {0}")]
    Connect(#[from] tonic::transport::Error),
    /// A `Check` call failed at the gRPC level (a decision is never that).
    #[error("Check failed: {0}")]
    Check(#[from] tonic::Status),
    /// The sidecar answered a `Check` without an HTTP response.
    #[error("the sidecar answered without an HTTP response")]
    NoHttpResponse,
    /// The admin endpoint's /metrics could not be read.
    #[error(transparent)]
    Metrics(#[from] InsightsError),
    /// The sidecar did not stop within the drain deadline.
    #[error("the sidecar did not stop in time")]
    Stop,
}

/// One scripted call.
struct Call {
    story: &'static str,
    caller: &'static str,
    credential: Option<Svid>,
    method: &'static str,
    path: &'static str,
    grpc: bool,
    expect: u16,
}

/// What came back.
struct Answer {
    status: u16,
    reason: String,
    source: String,
}

/// Run the demo: print the table of scripted calls and the metrics they
/// produced; `Ok(true)` when every call got its expected answer. With
/// `keep_serving`, keep the sidecar up (admin on 127.0.0.1:9902) until
/// Ctrl-C.
pub async fn run(keep_serving: bool) -> Result<bool, DemoError> {
    let dir = tempfile::tempdir()?;
    let hospital = Ca::root("hospital.example")?;
    let vendor = Ca::root("imaging-vendor.example")?;
    let rogue = Ca::root("hospital.example")?;
    std::fs::write(dir.path().join("hospital.pem"), hospital.cert_pem())?;
    std::fs::write(dir.path().join("vendor.pem"), vendor.cert_pem())?;
    std::fs::write(dir.path().join("policy.yaml"), POLICY)?;
    let config = format!(
        "authz:\n  listen: 127.0.0.1:0\nadmin:\n  listen: {admin}\nworkload:\n  id: {LAB_RESULTS}\n\
         trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: {d}/hospital.pem\n\
         \x20   - trust_domain: imaging-vendor.example\n      x509: {d}/vendor.pem\n\
         policy:\n  file: {d}/policy.yaml\ntelemetry:\n  audit_log: off\n",
        admin = if keep_serving {
            "127.0.0.1:9902"
        } else {
            "127.0.0.1:0"
        },
        d = dir.path().display(),
    );
    let settings = Settings::from_yaml(&config, std::iter::empty())?;
    let sidecar = Sidecar::bind(settings).await?;
    let authz = sidecar.authz_addr();
    let admin = sidecar.admin_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sidecar.run(async move {
        let _ = stopped.await;
    }));

    let id = |path: &str| format!("spiffe://hospital.example/{path}");
    let ehr = hospital.issue(&id("ns/clinical/sa/ehr-api"))?;
    let calls = vec![
        Call {
            story: "EHR reads a patient's results",
            caller: "ehr-api",
            credential: Some(ehr.clone()),
            method: "GET",
            path: "/patients/MRN-00417/results?since=2026-01-01",
            grpc: false,
            expect: 200,
        },
        Call {
            story: "EHR reads one result",
            caller: "ehr-api",
            credential: Some(ehr.clone()),
            method: "GET",
            path: "/patients/MRN-00417/results/981",
            grpc: false,
            expect: 200,
        },
        Call {
            story: "pharmacy looks up a result over gRPC",
            caller: "pharmacy",
            credential: Some(hospital.issue(&id("ns/pharmacy/sa/pharmacy"))?),
            method: "POST",
            path: "/lab.v1.Results/GetResult",
            grpc: true,
            expect: 200,
        },
        Call {
            story: "vendor uploads images (time-bound grant)",
            caller: "imaging vendor",
            credential: Some(vendor.issue("spiffe://imaging-vendor.example/uploader")?),
            method: "POST",
            path: "/imaging/uploads",
            grpc: false,
            expect: 200,
        },
        Call {
            story: "billing reaches for lab results",
            caller: "billing",
            credential: Some(hospital.issue(&id("ns/billing/sa/billing"))?),
            method: "GET",
            path: "/patients/MRN-00417/results",
            grpc: false,
            expect: 403,
        },
        Call {
            story: "EHR tries to delete results",
            caller: "ehr-api",
            credential: Some(ehr.clone()),
            method: "DELETE",
            path: "/patients/MRN-00417/results/981",
            grpc: false,
            expect: 403,
        },
        Call {
            story: "EHR walks out of its route with ..",
            caller: "ehr-api",
            credential: Some(ehr.clone()),
            method: "GET",
            path: "/patients/MRN-00417/results/../../admin",
            grpc: false,
            expect: 403,
        },
        Call {
            story: "vendor calls outside its grant",
            caller: "imaging vendor",
            credential: Some(vendor.issue("spiffe://imaging-vendor.example/uploader")?),
            method: "GET",
            path: "/patients/MRN-00417/results",
            grpc: false,
            expect: 403,
        },
        Call {
            story: "vendor uses a pilot grant that ran out",
            caller: "imaging vendor",
            credential: Some(vendor.issue("spiffe://imaging-vendor.example/uploader")?),
            method: "GET",
            path: "/imaging/studies/7",
            grpc: false,
            expect: 403,
        },
        Call {
            story: "certificate from a rogue CA claims to be EHR",
            caller: "rogue",
            credential: Some(rogue.issue(&id("ns/clinical/sa/ehr-api"))?),
            method: "GET",
            path: "/patients/MRN-00417/results",
            grpc: false,
            expect: 401,
        },
        Call {
            story: "retired fax gateway tries again",
            caller: "fax-gateway",
            credential: Some(hospital.issue(&id("ns/legacy/sa/fax-gateway"))?),
            method: "GET",
            path: "/patients/MRN-00417/results",
            grpc: false,
            expect: 401,
        },
        Call {
            story: "EHR with an expired certificate",
            caller: "ehr-api",
            credential: Some(
                hospital.issue_with(&SvidSpec::new(&id("ns/clinical/sa/ehr-api")).expired())?,
            ),
            method: "GET",
            path: "/patients/MRN-00417/results",
            grpc: false,
            expect: 401,
        },
        Call {
            story: "a caller with no certificate",
            caller: "(none)",
            credential: None,
            method: "GET",
            path: "/patients/MRN-00417/results",
            grpc: false,
            expect: 401,
        },
    ];

    let mut client = AuthorizationClient::connect(format!("http://{authz}")).await?;
    println!("hallpass demo: sidecar for {LAB_RESULTS}");
    println!("  authz gRPC on {authz}, admin on http://{admin}");
    println!(
        "  policy: {POLICY_SOURCE} (the shipped example; `hallpass demo --print-policy` prints it)\n"
    );
    println!(
        "{:<3} {:<46} {:<15} {:<7} {:<6} {:<24} x-hallpass-source",
        "ok?", "call", "caller", "method", "status", "reason"
    );
    let mut all_as_expected = true;
    for call in &calls {
        let answer = check(&mut client, call).await?;
        let ok = answer.status == call.expect;
        all_as_expected &= ok;
        println!(
            "{:<3} {:<46} {:<15} {:<7} {:<6} {:<24} {}",
            if ok { "ok" } else { "!!" },
            call.story,
            call.caller,
            call.method,
            answer.status,
            if answer.reason.is_empty() {
                "-"
            } else {
                &answer.reason
            },
            if answer.source.is_empty() {
                "-"
            } else {
                &answer.source
            },
        );
    }
    println!("(ok? says whether the answer is the one the demo expects: ok, or !! when not.)");
    println!("\nRaw paths (with MRNs and query strings) never reach a label or a log line.");
    let client = HttpClient::new(&HttpOptions::default())?;
    let url = |path: &str| {
        url::Url::parse(&format!("http://{admin}{path}"))
            .map_err(|e| InsightsError::Option(format!("the admin address {admin}: {e}")))
    };
    // The anomaly counters are the telemetry worker's: reading the call
    // graph first waits until it has handled every call above.
    client.get_text(&url("/callgraph")?).await?;
    let metrics = client.get_text(&url("/metrics")?).await?;
    println!("The decisions these calls produced (GET http://{admin}/metrics):\n");
    for line in metrics.lines().filter(|l| {
        l.starts_with("hallpass_decisions_total")
            || l.starts_with("hallpass_check_duration_seconds_count")
    }) {
        println!("  {line}");
    }
    println!(
        "\nThe unexpected call paths they showed (hallpass_call_path_anomalies_total; \
         the kinds are in docs/metrics.md#anomalies):\n"
    );
    let anomalies: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("hallpass_call_path_anomalies_total"))
        .collect();
    if anomalies.is_empty() {
        println!("  (none)");
    }
    for line in anomalies {
        println!("  {line}");
    }
    if !all_as_expected {
        println!("\nSome answers differed from what the demo expects (marked !!).");
    }

    if keep_serving {
        println!("\nStill serving. Try: curl -s http://{admin}/metrics   (Ctrl-C to stop)");
        let _ = tokio::signal::ctrl_c().await;
    }
    let _ = stop.send(());
    match tokio::time::timeout(Duration::from_secs(15), server).await {
        Ok(Ok(served)) => served?,
        Ok(Err(_)) | Err(_) => return Err(DemoError::Stop),
    }
    Ok(all_as_expected)
}

async fn check(
    client: &mut AuthorizationClient<tonic::transport::Channel>,
    call: &Call,
) -> Result<Answer, DemoError> {
    let mut headers = HashMap::new();
    headers.insert(":method".to_owned(), call.method.to_owned());
    headers.insert(":path".to_owned(), call.path.to_owned());
    if call.grpc {
        headers.insert("content-type".to_owned(), "application/grpc".to_owned());
    }
    // A caller may try to smuggle the identity header; hallpass replaces it.
    headers.insert(
        "x-hallpass-source".to_owned(),
        "spiffe://hospital.example/ns/clinical/sa/ehr-api".to_owned(),
    );
    let request = CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(Peer {
                certificate: call
                    .credential
                    .as_ref()
                    .map(Svid::envoy_encoded)
                    .unwrap_or_default(),
                ..Default::default()
            }),
            destination: Some(Peer {
                principal: LAB_RESULTS.to_owned(),
                ..Default::default()
            }),
            request: Some(Request {
                http: Some(HttpRequest {
                    method: call.method.to_owned(),
                    path: call.path.to_owned(),
                    host: "lab-results".to_owned(),
                    headers,
                    protocol: "HTTP/2".to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    let response = client.check(request).await?.into_inner();
    let header = |hs: &[envoy_types::ext_authz::v3::pb::HeaderValueOption], name: &str| {
        hs.iter()
            .filter_map(|h| h.header.as_ref())
            .find(|h| h.key == name)
            .map(|h| h.value.clone())
            .unwrap_or_default()
    };
    Ok(match response.http_response {
        Some(HttpResponse::OkResponse(ok)) => Answer {
            status: 200,
            reason: String::new(),
            source: header(&ok.headers, "x-hallpass-source"),
        },
        Some(HttpResponse::DeniedResponse(denied)) => Answer {
            status: denied
                .status
                .map_or(403, |s| u16::try_from(s.code).unwrap_or(403)),
            reason: header(&denied.headers, "x-hallpass-reason"),
            source: String::new(),
        },
        _ => return Err(DemoError::NoHttpResponse),
    })
}
