//! In-process tests: a bound `Sidecar` driven by a real tonic gRPC client, with
//! generated certificates. These cover readiness, reload, audit mode and the
//! transport variants without Envoy (the Envoy path is in `tests/`).

use crate::common;

use std::time::Duration;

use common::*;
use envoy_types::ext_authz::v3::pb::CheckRequest;

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

    // An editor truncates the file, then writes garbage: the last good policy
    // stays. Each is left long enough to settle (two reads a tick apart).
    std::fs::write(dir.path().join("policy.yaml"), "").unwrap();
    tokio::time::sleep(Duration::from_millis(2300)).await;
    std::fs::write(
        dir.path().join("policy.yaml"),
        "version: 1\nworkloads: [oops\n",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2300)).await;
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
    let (dir, ca) = clinical_dir();
    // A stale socket file from an earlier run must not stop the bind.
    let sock = dir.path().join("authz.sock");
    std::fs::write(&sock, "stale").unwrap();
    let cfg = config(dir.path(), &format!("workload:\n  id: {LAB}\n")).replace(
        "127.0.0.1:0\nadmin",
        &format!("unix://{}\nadmin", sock.display()),
    );
    let mut running = Running::start_ready(cfg).await;
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "the authz socket is for owner and group only");
    let ehr = ca.issue(EHR).unwrap();
    let billing = ca.issue(BILLING).unwrap();
    assert_eq!(
        running
            .check_svid(&ehr, "GET", "/patients/1/results")
            .await
            .0,
        200
    );
    let (status, reason, body) = running
        .check_svid(&billing, "GET", "/patients/1/results")
        .await;
    assert_eq!((status, reason.as_str()), (403, "no_matching_rule"));
    assert_eq!(body, r#"{"error":"forbidden","reason":"no_matching_rule"}"#);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_mode_lets_denied_calls_through_and_counts_audit_deny() {
    let (dir, ca) = clinical_dir();
    let mut running = Running::start_ready(config(
        dir.path(),
        &format!("workload:\n  id: {PHARMACY_DEST}\n"),
    ))
    .await;
    let billing = ca.issue(BILLING).unwrap();
    let (status, source, _) = running.check_svid(&billing, "GET", "/prescriptions").await;
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
    let mut running = Running::start_ready(cfg).await;
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
    let (dir, ca) = clinical_dir();
    let mut running = Running::start_ready(config(dir.path(), "")).await;
    let ehr = ca.issue(EHR).unwrap();

    // No attributes at all.
    let (status, reason, _) = running.check(CheckRequest { attributes: None }).await;
    assert_eq!((status, reason.as_str()), (403, "internal_error"));
    // No destination (no workload.id configured, no principal from Envoy).
    let (status, reason, _) = running.check_svid(&ehr, "GET", "/patients/1/results").await;
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

/// `policy.mode` (`HALLPASS_POLICY_MODE`) can only make a sidecar stricter
/// than its policy: `enforce` enforces a destination the policy audits, and
/// `audit` is refused, because one auditing replica of an enforced
/// destination would let denied calls through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_mode_override_only_makes_a_sidecar_stricter() {
    let (dir, ca) = clinical_dir();
    let with_mode = |mode: &str| {
        config(dir.path(), &format!("workload:\n  id: {PHARMACY_DEST}\n")).replace(
            "  reload_interval_seconds: 1\n",
            &format!("  reload_interval_seconds: 1\n  mode: {mode}\n"),
        )
    };
    let err = hallpass_server::Settings::from_yaml(&with_mode("audit"), std::iter::empty())
        .unwrap_err()
        .to_string();
    assert!(err.contains("policy.mode"), "{err}");
    assert!(err.contains("only `enforce` is allowed here"), "{err}");
    let err = hallpass_server::Settings::from_yaml(
        &config(dir.path(), ""),
        [("HALLPASS_POLICY_MODE".to_owned(), "audit".to_owned())],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("policy.mode"), "the variable too: {err}");

    // Pharmacy audits in the policy; this sidecar enforces it.
    let mut running = Running::start_ready(with_mode("enforce")).await;
    let billing = ca.issue(BILLING).unwrap();
    let (status, reason, _) = running.check_svid(&billing, "GET", "/prescriptions").await;
    assert_eq!(
        (status, reason.as_str()),
        (403, "no_matching_rule"),
        "pharmacy audits in the policy; this sidecar enforces"
    );
    let (_, metrics) = running.get("/metrics").await;
    assert!(
        metrics.contains(&format!("decision=\"deny\",destination=\"{PHARMACY_DEST}\",reason=\"no_matching_rule\",source=\"{BILLING}\"}} 1")),
        "{metrics}"
    );
    assert!(
        !metrics.contains("decision=\"audit_deny\",destination"),
        "{metrics}"
    );
    running.stop().await;
}

/// Issue 14 item 1: a mistyped `workload.id` (a valid ID the policy does
/// not define) denies every call, so the sidecar says so: `/readyz`'s body
/// names the ID with a "did you mean", and `hallpass_policy_workload_defined`
/// is 0. It stays ready (the policy's answer is deny, as for an entry that
/// allows nothing; a pod that only makes calls has no entry and must still
/// become ready). A reload that defines it clears both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_id_the_policy_does_not_define_is_named_in_readyz_and_a_metric() {
    let (dir, ca) = clinical_dir();
    let typo = LAB.replace("lab-results", "lab-result");
    let mut running =
        Running::start(config(dir.path(), &format!("workload:\n  id: {typo}\n"))).await;
    let body = wait_until_ready(&running, true).await;
    assert_eq!(
        body,
        format!(
            "ready\nwarning: workload.id {typo} is not a destination in the policy, so every \
             call to it is denied; did you mean {LAB}?\n"
        )
    );
    let (_, metrics) = running.get("/metrics").await;
    assert!(
        metrics.contains("\nhallpass_policy_workload_defined 0\n"),
        "{metrics}"
    );
    let ehr = ca.issue(EHR).unwrap();
    let (status, reason, _) = running.check_svid(&ehr, "GET", "/patients/1/results").await;
    assert_eq!((status, reason.as_str()), (403, "no_matching_rule"));

    // The policy gains the destination: the warning goes on the next load.
    std::fs::write(dir.path().join("policy.yaml"), POLICY.replace(LAB, &typo)).unwrap();
    let mut body = String::new();
    for _ in 0..100 {
        body = running.get("/readyz").await.1;
        if body == "ready\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(body, "ready\n");
    let (_, metrics) = running.get("/metrics").await;
    assert!(
        metrics.contains("\nhallpass_policy_workload_defined 1\n"),
        "{metrics}"
    );
    let (status, _, _) = running.check_svid(&ehr, "GET", "/patients/1/results").await;
    assert_eq!(status, 200);
    running.stop().await;
}
