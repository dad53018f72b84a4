//! `x-hallpass-source` names only a caller that is proven, trusted and not
//! revoked, in every mode. Audit mode lets a revoked caller (or one from a
//! trust domain the policy does not list) through, but the answer removes
//! the header instead of vouching for it; an application that trusts the
//! header must never see a revoked identity in it.

use crate::common;

use common::*;
use envoy_types::ext_authz::v3::pb::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use hallpass_testkit::{Ca, SvidSpec};

const FAX: &str = "spiffe://hospital.example/ns/legacy/sa/fax-gateway";
const PARTNER: &str = "spiffe://partner.example/ns/apps/sa/portal";
const SERIAL: u64 = 0x0bad_c0de;

/// What an allowed (or audit-denied) answer does with `x-hallpass-source`:
/// the value it sets, and whether it removes a header the caller sent.
async fn source_header(running: &mut Running, req: CheckRequest) -> (Option<String>, bool) {
    let response = running.client.check(req).await.unwrap().into_inner();
    match response.http_response.unwrap() {
        HttpResponse::OkResponse(ok) => (
            ok.headers
                .iter()
                .filter_map(|h| h.header.as_ref())
                .find(|h| h.key == "x-hallpass-source")
                .map(|h| h.value.clone()),
            ok.headers_to_remove
                .iter()
                .any(|h| h == "x-hallpass-source"),
        ),
        other => panic!("expected the call to be let through, got {other:?}"),
    }
}

/// The clinical policy, with a certificate serial revoked, served for
/// `destination`; the sidecar also trusts a CA of partner.example, a trust
/// domain the policy does not list. `extra` goes under the top level,
/// `policy_extra` under `policy:`.
async fn start(
    destination: &str,
    extra: &str,
    policy_extra: &str,
) -> (tempfile::TempDir, Running, Ca, Ca) {
    let (dir, ca) = clinical_dir();
    let partner = Ca::root("partner.example").unwrap();
    std::fs::write(dir.path().join("partner.pem"), partner.cert_pem()).unwrap();
    std::fs::write(
        dir.path().join("policy.yaml"),
        POLICY.replace(
            "  ids: [spiffe://hospital.example/ns/legacy/sa/fax-gateway]",
            &format!(
                "  ids: [spiffe://hospital.example/ns/legacy/sa/fax-gateway]\n  serials:\n\
                 \x20   - trust_domain: hospital.example\n      serial: \"{SERIAL:x}\""
            ),
        ),
    )
    .unwrap();
    let config = format!(
        "authz:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nworkload:\n  id: {destination}\n\
         trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: {d}/bundle.pem\n\
         \x20   - trust_domain: partner.example\n      x509: {d}/partner.pem\n\
         policy:\n  file: {d}/policy.yaml\n{policy_extra}{extra}",
        d = dir.path().display()
    );
    let running = Running::start_ready(config).await;
    (dir, running, ca, partner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_mode_never_vouches_for_a_revoked_or_untrusted_caller() {
    let (_dir, mut running, ca, partner) = start(PHARMACY_DEST, "", "").await;
    let revoked_id = ca.issue(FAX).unwrap();
    let mut spec = SvidSpec::new(EHR);
    spec.serial = Some(SERIAL);
    let revoked_serial = ca.issue_with(&spec).unwrap();
    let untrusted = partner.issue(PARTNER).unwrap();
    for (what, svid) in [
        ("revoked ID", &revoked_id),
        ("revoked serial", &revoked_serial),
        ("trust domain not in the policy", &untrusted),
    ] {
        // The caller also forges the header; it must be removed, not kept.
        let req = with_header(
            check_request(Some(svid), "", "", "POST", "/prescriptions"),
            "x-hallpass-source",
            EHR,
        );
        assert_eq!(
            source_header(&mut running, req).await,
            (None, true),
            "{what}: let through (audit), but never named"
        );
    }

    // Proven, trusted, not revoked: named, allowed or audit-denied alike.
    let ehr = ca.issue(EHR).unwrap();
    let billing = ca.issue(BILLING).unwrap();
    for (svid, path) in [(&ehr, "/prescriptions"), (&billing, "/anything")] {
        let req = check_request(Some(svid), "", "", "POST", path);
        assert_eq!(
            source_header(&mut running, req).await,
            (Some(svid.spiffe_id.clone()), false)
        );
    }

    let (_, metrics) = running.get("/metrics").await;
    for reason in ["revoked", "untrusted_trust_domain", "no_matching_rule"] {
        assert!(
            metrics.contains(&format!(
                "decision=\"audit_deny\",destination=\"{PHARMACY_DEST}\",reason=\"{reason}\""
            )),
            "{reason}: {metrics}"
        );
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_principal_mode_in_audit_never_vouches_for_the_revoked() {
    let (_dir, mut running, _ca, _partner) = start(
        PHARMACY_DEST,
        "identity:\n  x509_from: envoy_principal\n",
        "",
    )
    .await;
    for principal in [FAX, PARTNER] {
        let req = check_request(None, principal, "", "POST", "/prescriptions");
        assert_eq!(source_header(&mut running, req).await, (None, true));
    }
    let req = check_request(None, EHR, "", "POST", "/prescriptions");
    assert_eq!(
        source_header(&mut running, req).await,
        (Some(EHR.to_owned()), false)
    );
    running.stop().await;
}
