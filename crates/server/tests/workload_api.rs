//! Trust bundles from the SPIFFE Workload API: the sidecar, a real
//! `spiffe` client inside it, and a fake SPIRE agent serving the public
//! Workload API proto on a Unix socket. Rotation, a dropped trust domain,
//! disconnects and readiness.

use crate::common;

use std::time::Duration;

use common::*;
use hallpass_testkit::Ca;
use hallpass_workload_api_fake::FakeWorkloadApi;

fn config_with_api(dir: &std::path::Path, endpoint: &str) -> String {
    format!(
        "authz:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nworkload:\n  id: {LAB}\n\
         trust:\n  workload_api: {endpoint}\n\
         policy:\n  file: {d}/policy.yaml\n  reload_interval_seconds: 1\n",
        d = dir.display()
    )
}

/// Poll a check until it gives `want` (the Workload API update is asynchronous).
async fn eventually(running: &mut Running, svid: &hallpass_testkit::Svid, want: (u16, &str)) {
    for _ in 0..100 {
        let (status, reason, _) = running
            .check(check_request(
                Some(svid),
                "",
                "",
                "GET",
                "/patients/1/results",
            ))
            .await;
        let got_reason = if status == 200 { "" } else { reason.as_str() };
        if (status, got_reason) == (want.0, want.1) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the check never answered {want:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_stream_rotate_drop_and_survive_disconnects() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
    let agent = FakeWorkloadApi::start(&dir.path().join("agent.sock")).unwrap();
    let mut running = Running::start(config_with_api(dir.path(), &agent.endpoint())).await;

    // Connected, but no bundles yet: not ready, and checks fail closed.
    let body = wait_until_ready(&running, false).await;
    assert!(
        body.contains("no bundles from the Workload API yet"),
        "{body}"
    );
    let old_ca = Ca::root("hospital.example").unwrap();
    let old_ehr = old_ca.issue(EHR).unwrap();
    let (status, reason, _) = running
        .check_svid(&old_ehr, "GET", "/patients/1/results")
        .await;
    assert_eq!((status, reason.as_str()), (403, "internal_error"));

    // Bundles arrive: ready, and the CA's SVIDs verify.
    let vendor = Ca::root("imaging-vendor.example").unwrap();
    agent.set_x509_bundles(vec![
        (
            "hospital.example".to_owned(),
            vec![old_ca.cert_der().to_vec()],
        ),
        (
            "imaging-vendor.example".to_owned(),
            vec![vendor.cert_der().to_vec()],
        ),
    ]);
    wait_until_ready(&running, true).await;
    eventually(&mut running, &old_ehr, (200, "")).await;

    // Rotation: the new CA replaces the old one; the old CA's SVIDs stop
    // verifying at once (the verification cache is dropped with the bundle).
    let new_ca = Ca::root("hospital.example").unwrap();
    let new_ehr = new_ca.issue(EHR).unwrap();
    agent.set_x509_bundles(vec![
        (
            "hospital.example".to_owned(),
            vec![new_ca.cert_der().to_vec()],
        ),
        (
            "imaging-vendor.example".to_owned(),
            vec![vendor.cert_der().to_vec()],
        ),
    ]);
    eventually(&mut running, &old_ehr, (401, "invalid_svid")).await;
    eventually(&mut running, &new_ehr, (200, "")).await;

    // A disconnect keeps the last good bundles, and the client reconnects.
    let opened = agent.x509_streams_opened();
    agent.disconnect_all();
    for _ in 0..100 {
        if agent.x509_streams_opened() > opened {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        agent.x509_streams_opened() > opened,
        "hallpass did not reconnect"
    );
    eventually(&mut running, &new_ehr, (200, "")).await;
    let (_, metrics) = running.get("/metrics").await;
    assert!(
        metrics.contains("hallpass_workload_api_reconnects_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hallpass_workload_api_connected 1"),
        "{metrics}"
    );
    assert!(metrics.contains("hallpass_trust_bundle_expiry_timestamp_seconds{trust_domain=\"imaging-vendor.example\"}"), "{metrics}");

    // An update without hospital.example drops that trust domain.
    agent.set_x509_bundles(vec![(
        "imaging-vendor.example".to_owned(),
        vec![vendor.cert_der().to_vec()],
    )]);
    eventually(&mut running, &new_ehr, (401, "untrusted_trust_domain")).await;
    let (_, metrics) = running.get("/metrics").await;
    assert!(
        !metrics.contains("trust_domain=\"hospital.example\""),
        "a dropped trust domain keeps its expiry series:\n{metrics}"
    );

    // The agent goes away entirely: the last bundles stay in force.
    agent.stop();
    let vendor_svid = vendor
        .issue("spiffe://imaging-vendor.example/uploader")
        .unwrap();
    let (status, source, _) = running
        .check_svid(&vendor_svid, "POST", "/imaging/uploads")
        .await;
    assert_eq!(
        (status, source.as_str()),
        (200, "spiffe://imaging-vendor.example/uploader")
    );
    // The agent comes back (a restart): hallpass reconnects on its own and
    // takes the new set, hospital.example included again.
    let socket = dir.path().join("agent.sock");
    let agent = FakeWorkloadApi::start(&socket).unwrap();
    agent.set_x509_bundles(vec![
        (
            "hospital.example".to_owned(),
            vec![new_ca.cert_der().to_vec()],
        ),
        (
            "imaging-vendor.example".to_owned(),
            vec![vendor.cert_der().to_vec()],
        ),
    ]);
    eventually(&mut running, &new_ehr, (200, "")).await;
    agent.stop();
    running.stop().await;
}
