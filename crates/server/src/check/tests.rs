//! A panic inside one check, injected through the crate's test-only fault
//! path, and answered through the real gRPC service.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use envoy_types::ext_authz::v3::pb::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use hallpass_testkit::{Ca, Svid};

use crate::{Settings, Sidecar};

const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";
const EHR: &str = "spiffe://hospital.example/ns/clinical/sa/ehr-api";
const POLICY: &str = include_str!("../../../../examples/policies/clinical-mesh.yaml");

fn request(svid: &Svid, path: &str) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(Peer {
                certificate: svid.envoy_encoded(),
                ..Default::default()
            }),
            request: Some(Request {
                http: Some(HttpRequest {
                    method: "GET".into(),
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

/// Status and `x-hallpass-reason` (deny) or `x-hallpass-source` (allow).
fn status(response: envoy_types::ext_authz::v3::pb::CheckResponse) -> (u16, String) {
    let header = |hs: &[envoy_types::ext_authz::v3::pb::HeaderValueOption], name: &str| {
        hs.iter()
            .filter_map(|h| h.header.as_ref())
            .find(|h| h.key == name)
            .map(|h| h.value.clone())
            .unwrap_or_default()
    };
    match response.http_response.unwrap() {
        HttpResponse::OkResponse(ok) => (200, header(&ok.headers, "x-hallpass-source")),
        HttpResponse::DeniedResponse(d) => (
            u16::try_from(d.status.unwrap().code).unwrap(),
            header(&d.headers, "x-hallpass-reason"),
        ),
        other => panic!("unexpected response {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_check_is_a_counted_audited_internal_error_deny() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::root("hospital.example").unwrap();
    std::fs::write(dir.path().join("bundle.pem"), ca.cert_pem()).unwrap();
    std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
    let audit = dir.path().join("audit.jsonl");
    let config = format!(
        "authz:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nworkload:\n  id: {LAB}\n\
         trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: {d}/bundle.pem\n\
         policy:\n  file: {d}/policy.yaml\ntelemetry:\n  audit_log: {a}\n",
        d = dir.path().display(),
        a = audit.display()
    );
    let sidecar = Sidecar::bind(Settings::from_yaml(&config, std::iter::empty()).unwrap())
        .await
        .unwrap();
    let shared = sidecar.shared();
    shared.fault_path.set("/boom".to_owned()).unwrap();
    let authz = sidecar.authz_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(sidecar.run(async move {
        let _ = stopped.await;
    }));
    let mut client = AuthorizationClient::connect(format!("http://{authz}"))
        .await
        .unwrap();
    let ehr = ca.issue(EHR).unwrap();

    // Verified (and cached) first, then the decision panics: still an answer.
    let answer = client
        .check(request(&ehr, "/boom"))
        .await
        .expect("a panic is answered, not a cancelled stream")
        .into_inner();
    assert_eq!(status(answer), (403, "internal_error".to_owned()));

    // The same caller, the same connection: decisions go on.
    for _ in 0..2 {
        let answer = client
            .check(request(&ehr, "/patients/1/results"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(status(answer), (200, EHR.to_owned()));
    }

    // Counted and audited like any other deny.
    shared.telemetry.flush().await;
    let metrics = shared.metrics.encode().unwrap();
    assert!(
        metrics.contains("hallpass_panics_total{stage=\"decide\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("hallpass_decisions_total")
                && l.contains("reason=\"internal_error\"")
                && l.contains("decision=\"deny\"")
                && l.ends_with(" 1")),
        "{metrics}"
    );
    let log = std::fs::read_to_string(&audit).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert!(
        lines[0].contains(r#""decision":"deny","reason":"internal_error""#),
        "{log}"
    );

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// `telemetry.audit_required`: an allow's record is in the file when its
/// answer arrives; while the record cannot be written, the check is denied
/// `internal_error` (counted so) and the sidecar is not ready; once the
/// file can be written again, allows come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_required_writes_before_answering_and_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::root("hospital.example").unwrap();
    std::fs::write(dir.path().join("bundle.pem"), ca.cert_pem()).unwrap();
    std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
    let audit = dir.path().join("audit.jsonl");
    let config = format!(
        "authz:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nworkload:\n  id: {LAB}\n\
         trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: {d}/bundle.pem\n\
         policy:\n  file: {d}/policy.yaml\ntelemetry:\n  audit_log: {a}\n  audit_required: true\n",
        d = dir.path().display(),
        a = audit.display()
    );
    let sidecar = Sidecar::bind(Settings::from_yaml(&config, std::iter::empty()).unwrap())
        .await
        .unwrap();
    let shared = sidecar.shared();
    let authz = sidecar.authz_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(sidecar.run(async move {
        let _ = stopped.await;
    }));
    let mut client = AuthorizationClient::connect(format!("http://{authz}"))
        .await
        .unwrap();
    let ehr = ca.issue(EHR).unwrap();

    // Written before the answer: in the file without any flush.
    assert_eq!(
        check(&mut client, &ehr, "/patients/1/results").await,
        (200, EHR.to_owned())
    );
    let log = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.contains(r#""decision":"allow""#), "{log}");
    assert!(shared.not_ready_reasons().is_empty());

    // A directory where the file was: nothing can be written.
    std::fs::remove_file(&audit).unwrap();
    std::fs::create_dir(&audit).unwrap();
    assert_eq!(
        check(&mut client, &ehr, "/patients/1/results").await,
        (403, "internal_error".to_owned())
    );
    assert_eq!(
        check(&mut client, &ehr, "/patients/1/notes").await,
        (403, "internal_error".to_owned())
    );
    assert!(
        shared
            .not_ready_reasons()
            .iter()
            .any(|r| r.contains("audit")),
        "{:?}",
        shared.not_ready_reasons()
    );
    let metrics = shared.metrics.encode().unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("hallpass_decisions_total")
                && l.contains("reason=\"internal_error\"")
                && l.ends_with(" 2")),
        "{metrics}"
    );
    assert!(
        metrics.contains("hallpass_audit_log_write_errors_total 2"),
        "{metrics}"
    );

    // Writable again: allowed, recorded, ready.
    std::fs::remove_dir(&audit).unwrap();
    assert_eq!(
        check(&mut client, &ehr, "/patients/1/results").await,
        (200, EHR.to_owned())
    );
    assert_eq!(std::fs::read_to_string(&audit).unwrap().lines().count(), 1);
    assert!(shared.not_ready_reasons().is_empty());

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

async fn check(
    client: &mut AuthorizationClient<tonic::transport::Channel>,
    svid: &Svid,
    path: &str,
) -> (u16, String) {
    status(
        client
            .check(request(svid, path))
            .await
            .unwrap()
            .into_inner(),
    )
}

/// A sidecar on this runtime (no audit log), a gRPC client of it, the CA
/// its bundle trusts, and how to stop it.
async fn serving() -> (
    tempfile::TempDir,
    std::sync::Arc<crate::Shared>,
    AuthorizationClient<tonic::transport::Channel>,
    Ca,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), crate::ServerError>>,
) {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::root("hospital.example").unwrap();
    std::fs::write(dir.path().join("bundle.pem"), ca.cert_pem()).unwrap();
    std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
    let config = format!(
        "authz:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nworkload:\n  id: {LAB}\n\
         trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: {d}/bundle.pem\n\
         policy:\n  file: {d}/policy.yaml\n",
        d = dir.path().display(),
    );
    let sidecar = Sidecar::bind(Settings::from_yaml(&config, std::iter::empty()).unwrap())
        .await
        .unwrap();
    let shared = sidecar.shared();
    let authz = sidecar.authz_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(sidecar.run(async move {
        let _ = stopped.await;
    }));
    let client = AuthorizationClient::connect(format!("http://{authz}"))
        .await
        .unwrap();
    (dir, shared, client, ca, stop, task)
}

/// Wait (bounded: 60 s) until `n` verifications have reached the gate.
async fn reached(shared: &crate::Shared, n: usize) {
    let reached = || {
        shared
            .verify_gate
            .reached
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    for _ in 0..1200 {
        if reached() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(reached(), n, "verifications at the gate");
}

/// A caller whose certificate is cached is answered while another caller's
/// verification is held in flight: on ONE runtime worker (as `hallpass
/// serve` runs), a check that verifies is decided on the verification
/// lane, not on the worker. Ordering only: the cached caller's answer must come first;
/// decided inline, it would wait until the held verification ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_cached_caller_is_answered_while_a_verification_is_in_flight() {
    let (_dir, shared, mut client, ca, stop, task) = serving().await;
    let ehr = ca.issue(EHR).unwrap();
    // Verified once: cached from now on.
    assert_eq!(
        check(&mut client, &ehr, "/patients/1/results").await,
        (200, EHR.to_owned())
    );
    reached(&shared, 1).await;

    shared.verify_gate.close();
    // The same ID in a new certificate: new bytes, so a verification.
    let newcomer = ca.issue(EHR).unwrap();
    let mut second = client.clone();
    let mut held =
        tokio::spawn(async move { check(&mut second, &newcomer, "/patients/2/results").await });
    reached(&shared, 2).await;

    let cached = check(&mut client, &ehr, "/patients/3/results");
    tokio::pin!(cached);
    let first = tokio::select! {
        // A tie goes to the held check: the test then fails.
        biased;
        held_first = &mut held => Err(held_first),
        answer = &mut cached => Ok(answer),
    };
    let answer = first.unwrap_or_else(|held| {
        panic!("the held verification was answered before the cached caller: {held:?}")
    });
    assert_eq!(answer, (200, EHR.to_owned()));
    assert!(!held.is_finished(), "the gate is still closed");
    // The cached caller verified nothing.
    assert_eq!(
        shared
            .verify_gate
            .reached
            .load(std::sync::atomic::Ordering::SeqCst),
        2
    );

    shared.verify_gate.open();
    assert_eq!(held.await.unwrap(), (200, EHR.to_owned()));
    let metrics = shared.metrics.encode().unwrap();
    for line in [
        "hallpass_identity_cache_lookups_total{result=\"hit\"} 1",
        "hallpass_identity_cache_lookups_total{result=\"miss\"} 2",
        "hallpass_verification_lane_full_total 0",
        "hallpass_verification_lane_timeouts_total 0",
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// A verification held past the lane's bound: the check is denied
/// `internal_error` (fail closed, counted), not left to Envoy's timeout; a
/// cached caller is still answered meanwhile; once the lane is free, a new
/// certificate is verified and allowed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_verification_the_lane_does_not_decide_in_time_is_denied_internal_error() {
    let (_dir, shared, mut client, ca, stop, task) = serving().await;
    let ehr = ca.issue(EHR).unwrap();
    assert_eq!(
        check(&mut client, &ehr, "/patients/1/results").await,
        (200, EHR.to_owned())
    );
    reached(&shared, 1).await;

    shared.verify_gate.close();
    let late = ca.issue(EHR).unwrap();
    let started = std::time::Instant::now();
    assert_eq!(
        check(&mut client, &late, "/patients/3/results").await,
        (403, "internal_error".to_owned())
    );
    // Denied by the bound, not by a failed verification.
    assert!(started.elapsed() >= crate::verify_lane::LANE_WAIT);
    assert_eq!(
        check(&mut client, &ehr, "/patients/4/results").await,
        (200, EHR.to_owned())
    );
    let metrics = shared.metrics.encode().unwrap();
    for line in [
        "hallpass_verification_lane_timeouts_total 1",
        "hallpass_verification_lane_full_total 0",
        "hallpass_decisions_total{decision=\"deny\",destination=\"unknown\",reason=\"internal_error\"",
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }

    shared.verify_gate.open();
    let fresh = ca.issue(EHR).unwrap();
    assert_eq!(
        check(&mut client, &fresh, "/patients/5/results").await,
        (200, EHR.to_owned())
    );
    assert_eq!(
        shared
            .verify_gate
            .reached
            .load(std::sync::atomic::Ordering::SeqCst),
        3
    );
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
