//! Time bounds through the gRPC API, against the real clock: a time-bound
//! grant and an X.509-SVID end at their own millisecond, not up to a second
//! later (the time was once truncated to whole seconds before comparing).

use crate::common;

use std::time::Duration;

use common::*;
use hallpass_testkit::{SvidSpec, unix_now_ms};
use time::OffsetDateTime;

const PROBER: &str = "spiffe://hospital.example/ns/ops/sa/prober";

/// Sleep until the wall clock reads `at_ms` (Unix milliseconds).
async fn sleep_until_ms(at_ms: i64) {
    let wait = at_ms - unix_now_ms();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap())).await;
    }
}

fn rfc3339(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_and_certificates_end_at_their_millisecond() {
    let (dir, ca) = clinical_dir();
    // A whole second at least 1.5 s away: every bound below is relative to it.
    let edge = (unix_now_ms() + 2500) / 1000;
    let end = rfc3339(edge);
    let half_past = format!("{}.500Z", end.trim_end_matches('Z'));
    std::fs::write(
        dir.path().join("policy.yaml"),
        format!(
            "version: 1\ntrust_domains: [hospital.example]\nworkloads:\n  {LAB}:\n    allow:\n\
             \x20     - name: ending\n        from: [{EHR}]\n        not_after: {end}\n\
             \x20     - name: starting\n        from: [{BILLING}]\n        not_before: {half_past}\n\
             \x20     - name: probes\n        from: [{PROBER}]\n"
        ),
    )
    .unwrap();
    // No skew, so the certificate's own notAfter is the edge.
    let extra = format!("workload:\n  id: {LAB}\nidentity:\n  clock_skew_seconds: 0\n");
    let mut running = Running::start_ready(config(dir.path(), &extra)).await;
    let ehr = ca.issue(EHR).unwrap();
    let billing = ca.issue(BILLING).unwrap();
    let mut spec = SvidSpec::new(PROBER);
    spec.not_after = OffsetDateTime::from_unix_timestamp(edge).unwrap();
    let prober = ca.issue_with(&spec).unwrap();

    // Before the edge: the grant holds, the other has not begun, the
    // certificate is valid (and now cached).
    assert!(
        unix_now_ms() < edge * 1000 - 200,
        "the set-up took too long"
    );
    assert_eq!(running.check_svid(&ehr, "GET", "/x").await.0, 200);
    let (status, reason, _) = running.check_svid(&billing, "GET", "/x").await;
    assert_eq!((status, reason.as_str()), (403, "grant_expired"));
    assert_eq!(running.check_svid(&prober, "GET", "/x").await.0, 200);

    // 150 ms past the edge, inside the same whole second.
    sleep_until_ms(edge * 1000 + 150).await;
    let (status, reason, _) = running.check_svid(&ehr, "GET", "/x").await;
    assert_eq!(
        (status, reason.as_str()),
        (403, "grant_expired"),
        "a grant is not honoured after its not_after"
    );
    let (status, reason, _) = running.check_svid(&billing, "GET", "/x").await;
    assert_eq!(
        (status, reason.as_str()),
        (403, "grant_expired"),
        "a grant is not honoured before its not_before (.500)"
    );
    let (status, reason, _) = running.check_svid(&prober, "GET", "/x").await;
    assert_eq!(
        (status, reason.as_str()),
        (401, "expired_credential"),
        "a certificate is not accepted after its notAfter, cached or not"
    );
    assert!(
        unix_now_ms() < edge * 1000 + 500,
        "the checks after the edge took too long to prove anything"
    );

    // Past not_before's .500: the second grant begins.
    sleep_until_ms(edge * 1000 + 550).await;
    assert_eq!(running.check_svid(&billing, "GET", "/x").await.0, 200);
    running.stop().await;
}

/// A certificate whose notBefore is later than its notAfter, both within the
/// clock skew of now, signed by the trusted CA. It once made `Check` panic
/// (a cancelled stream, nothing counted or audited); now it is a 401 with
/// its reason, counted like every deny.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inverted_certificate_window_is_invalid_svid_not_a_panic() {
    let (dir, ca) = clinical_dir();
    let mut running =
        Running::start_ready(config(dir.path(), &format!("workload:\n  id: {LAB}\n"))).await;
    let now = unix_now_ms() / 1000;
    let mut spec = SvidSpec::new(EHR);
    spec.not_before = OffsetDateTime::from_unix_timestamp(now + 10).unwrap();
    spec.not_after = OffsetDateTime::from_unix_timestamp(now + 5).unwrap();
    let inverted = ca.issue_with(&spec).unwrap();
    for _ in 0..2 {
        let (status, reason, _) = running
            .check_svid(&inverted, "GET", "/patients/1/results")
            .await;
        assert_eq!((status, reason.as_str()), (401, "invalid_svid"));
    }
    let (_, metrics) = running.get("/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("hallpass_decisions_total")
                && l.contains("reason=\"invalid_svid\"")
                && l.ends_with(" 2")),
        "{metrics}"
    );
    assert!(
        metrics.contains("hallpass_panics_total{stage=\"decide\"} 0"),
        "{metrics}"
    );
    running.stop().await;
}
