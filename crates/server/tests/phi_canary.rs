//! A patient-identifier canary in every header, the path, the query, the
//! body, the method, the principals and the credentials of a check must
//! reach no sink: not the audit log, not a log line (at debug level), not
//! the metrics, not the dynamic metadata or headers of the answer, and not
//! the call graph in any of its forms.

use crate::common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use envoy_types::ext_authz::v3::pb::CheckRequest;
use hallpass_testkit::{Ca, JwtAlg, JwtIssuer, bundle_json};

/// The canary: MRN-shaped, and matched case-insensitively (a trust domain
/// made from it is lower-cased).
const MRN: &str = "MRN-5551234";

/// Everything written through `tracing`, at every level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() -> Captured {
    let captured = Captured::default();
    let writer = captured.clone();
    // nextest runs each test in its own process, so the global subscriber
    // is this test's alone.
    let _ = tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish(),
    );
    captured
}

/// Every header a caller could send, each carrying the canary (and one
/// whose name is the canary).
fn hostile_headers(req: CheckRequest) -> CheckRequest {
    let mut req = req;
    for (name, value) in [
        ("x-request-id", MRN.to_owned()),
        ("traceparent", format!("00-{MRN}-00f067aa0ba902b7-01")),
        ("tracestate", format!("mrn={MRN}")),
        ("x-b3-traceid", MRN.to_owned()),
        ("x-forwarded-for", MRN.to_owned()),
        ("user-agent", MRN.to_owned()),
        ("referer", format!("https://ehr/patients/{MRN}")),
        ("cookie", format!("patient={MRN}")),
        ("x-hallpass-source", MRN.to_owned()),
        ("x-hallpass-reason", MRN.to_owned()),
        (":authority", MRN.to_owned()),
        (":path", format!("/patients/{MRN}/results")),
        ("host", MRN.to_owned()),
        ("x-envoy-original-path", format!("/{MRN}")),
        ("x-patient", MRN.to_owned()),
        (&format!("x-{MRN}").to_ascii_lowercase(), MRN.to_owned()),
    ] {
        req = with_header(req, name, &value);
    }
    if let Some(http) = req
        .attributes
        .as_mut()
        .and_then(|a| a.request.as_mut())
        .and_then(|r| r.http.as_mut())
    {
        http.body = format!("{{\"mrn\":\"{MRN}\"}}");
        http.query = format!("mrn={MRN}");
        http.fragment = MRN.to_owned();
    }
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_in_every_request_field_reaches_no_sink() {
    let logs = capture_logs();
    let (dir, ca) = clinical_dir();
    let jwt = JwtIssuer::new("hospital.example", JwtAlg::Es256, "hospital-jwt-1").unwrap();
    std::fs::write(
        dir.path().join("bundle.jwks.json"),
        bundle_json(&[&jwt], &[]),
    )
    .unwrap();
    let audit = dir.path().join("audit.jsonl");
    let cfg = config(
        dir.path(),
        &format!(
            "workload:\n  id: {LAB}\nidentity:\n  jwt:\n    audiences: [lab-results]\n\
             telemetry:\n  audit_log: {}\n",
            audit.display()
        ),
    )
    .replace(
        "      x509: ",
        &format!(
            "      jwt: {}/bundle.jwks.json\n      x509: ",
            dir.path().display()
        ),
    );
    let mut running = Running::start_ready(cfg).await;
    let ehr = ca.issue(EHR).unwrap();
    let billing = ca.issue(BILLING).unwrap();
    // A CA of a trust domain named after the patient: its SVID is refused
    // as untrusted, and the name must not show up in the refusal's log.
    let rogue = Ca::root("mrn-5551234.example")
        .unwrap()
        .issue(&format!("spiffe://mrn-5551234.example/ns/{MRN}/sa/x"))
        .unwrap();
    let path = format!("/patients/{MRN}/results?mrn={MRN}#{MRN}");

    let mut cases: Vec<(&str, CheckRequest, u16)> = vec![
        (
            "allowed",
            check_request(Some(&ehr), MRN, MRN, "GET", &path),
            200,
        ),
        (
            "denied",
            check_request(Some(&billing), MRN, MRN, "GET", &path),
            403,
        ),
        ("method", check_request(Some(&ehr), "", "", MRN, &path), 403),
        (
            "no identity",
            check_request(None, MRN, MRN, "GET", &path),
            401,
        ),
        (
            "certificate field",
            {
                let mut r = check_request(None, "", "", "GET", &path);
                r.attributes
                    .as_mut()
                    .unwrap()
                    .source
                    .as_mut()
                    .unwrap()
                    .certificate = MRN.to_owned();
                r
            },
            401,
        ),
        (
            "untrusted trust domain",
            check_request(Some(&rogue), "", "", "GET", &path),
            401,
        ),
    ];
    cases.push((
        "bearer token",
        with_header(
            check_request(Some(&ehr), "", "", "GET", &path),
            "authorization",
            &format!("Bearer {MRN}.{MRN}.{MRN}"),
        ),
        401,
    ));
    cases.push((
        "xfcc",
        with_header(
            check_request(Some(&ehr), "", "", "GET", &path),
            "x-forwarded-client-cert",
            &format!("By={MRN};Hash={MRN};Cert=\"{MRN}\";Chain=\"{MRN}\";URI={MRN}"),
        ),
        401,
    ));
    let mut answers = String::new();
    for (what, req, want) in cases {
        let req = if what == "bearer token" || what == "xfcc" {
            req
        } else {
            hostile_headers(req)
        };
        let response = running.client.check(req).await.unwrap().into_inner();
        let status = match response.http_response.as_ref().unwrap() {
            envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse::OkResponse(_) => 200,
            envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse::DeniedResponse(d) => {
                u16::try_from(d.status.as_ref().unwrap().code).unwrap()
            }
            other => panic!("{what}: {other:?}"),
        };
        assert_eq!(status, want, "{what}: {response:?}");
        // Headers, body, status message and dynamic metadata of the answer.
        answers.push_str(&format!("{what}: {response:?}\n"));
    }

    let mut sinks = vec![("answers", answers)];
    for endpoint in [
        "/metrics",
        "/callgraph",
        "/callgraph.dot",
        "/callgraph.html",
    ] {
        sinks.push((endpoint, running.get(endpoint).await.1));
    }
    running.stop().await;
    sinks.push(("audit log", std::fs::read_to_string(&audit).unwrap()));
    sinks.push((
        "logs",
        String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned(),
    ));
    let canary = MRN.to_ascii_lowercase();
    let digits = &MRN[4..];
    for (sink, text) in &sinks {
        let lower = text.to_ascii_lowercase();
        assert!(
            !lower.contains(&canary) && !lower.contains(digits),
            "the canary reached {sink}:\n{text}"
        );
    }
    // The sinks were really written to.
    let audit_lines = sinks
        .iter()
        .find(|(s, _)| *s == "audit log")
        .unwrap()
        .1
        .lines()
        .count();
    assert_eq!(audit_lines, 8);
    assert!(
        sinks
            .iter()
            .any(|(s, t)| *s == "logs" && t.contains("X.509-SVID rejected"))
    );
}
