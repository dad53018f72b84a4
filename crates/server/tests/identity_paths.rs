//! The identity paths of a check through a running sidecar: JWT-SVIDs alone
//! and with an X.509-SVID, `require_jwt`, identity mismatch, XFCC from a
//! trusted proxy, revocation by certificate serial, and the verification cache.

use crate::common;

use common::*;
use hallpass_testkit::{Ca, JwtAlg, JwtClaims, JwtIssuer, SvidSpec, bundle_json};

const VENDOR: &str = "spiffe://imaging-vendor.example/uploader";
const GATEWAY: &str = "spiffe://hospital.example/ns/edge/sa/gateway";

/// Policy: the clinical mesh, plus a rule that needs a JWT and a serial to revoke.
fn policy(serial_hex: &str) -> String {
    POLICY.replace(
        "revoked:\n  ids: [spiffe://hospital.example/ns/legacy/sa/fax-gateway]",
        &format!(
            "revoked:\n  ids: [spiffe://hospital.example/ns/legacy/sa/fax-gateway]\n  serials:\n    - trust_domain: hospital.example\n      serial: \"{serial_hex}\""
        ),
    )
    .replace(
        "      - name: pharmacy-lookup",
        "      - name: ehr-deletes-with-jwt\n        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]\n        methods: [DELETE]\n        paths: [\"/patients/{patient}/results/{result}\"]\n        require_jwt: true\n      - name: pharmacy-lookup",
    )
}

struct Fixture {
    _dir: tempfile::TempDir,
    running: Running,
    ca: Ca,
    jwt: JwtIssuer,
}

async fn start(extra_identity: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::root("hospital.example").unwrap();
    let jwt = JwtIssuer::new("hospital.example", JwtAlg::Es256, "hospital-jwt-1").unwrap();
    std::fs::write(dir.path().join("bundle.pem"), ca.cert_pem()).unwrap();
    std::fs::write(
        dir.path().join("bundle.jwks.json"),
        bundle_json(&[&jwt], &[]),
    )
    .unwrap();
    std::fs::write(dir.path().join("policy.yaml"), policy("0badc0de")).unwrap();
    let config = format!(
        "authz:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nworkload:\n  id: {LAB}\n\
         trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: {d}/bundle.pem\n      jwt: {d}/bundle.jwks.json\n\
         identity:\n  jwt:\n    audiences: [lab-results]\n{extra_identity}\
         policy:\n  file: {d}/policy.yaml\ntelemetry:\n  audit_log: \"off\"\n",
        d = dir.path().display()
    );
    let running = Running::start(config).await;
    wait_until_ready(&running, true).await;
    Fixture {
        _dir: dir,
        running,
        ca,
        jwt,
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_svids_alone_together_and_mismatched() {
    let mut f = start("").await;
    let ehr = f.ca.issue(EHR).unwrap();
    let token = f.jwt.mint_for(EHR, "lab-results").unwrap();
    let path = "/patients/1/results/2";

    // A JWT alone proves the caller.
    let req = with_header(
        check_request(None, "", "", "GET", path),
        "authorization",
        &bearer(&token),
    );
    assert_eq!(f.running.check(req).await.0, 200);
    // require_jwt: DELETE needs the JWT as well as the certificate.
    let (status, reason, _) = f.running.check_svid(&ehr, "DELETE", path).await;
    assert_eq!((status, reason.as_str()), (403, "no_matching_rule"));
    let req = with_header(
        check_request(Some(&ehr), "", "", "DELETE", path),
        "authorization",
        &bearer(&token),
    );
    let (status, source, _) = f.running.check(req).await;
    assert_eq!((status, source.as_str()), (200, EHR));
    // Certificate and token naming different workloads.
    let billing_token = f.jwt.mint_for(BILLING, "lab-results").unwrap();
    let req = with_header(
        check_request(Some(&ehr), "", "", "GET", path),
        "authorization",
        &bearer(&billing_token),
    );
    let (status, reason, _) = f.running.check(req).await;
    assert_eq!((status, reason.as_str()), (401, "identity_mismatch"));
    // A token for another audience, and a garbage token.
    let other = f.jwt.mint_for(EHR, "billing").unwrap();
    let req = with_header(
        check_request(Some(&ehr), "", "", "GET", path),
        "authorization",
        &bearer(&other),
    );
    assert_eq!(f.running.check(req).await.1, "jwt_audience_mismatch");
    let req = with_header(
        check_request(Some(&ehr), "", "", "GET", path),
        "authorization",
        "Bearer a.b.c",
    );
    assert_eq!(f.running.check(req).await.1, "invalid_jwt");
    // Another scheme in `authorization` is not a JWT-SVID: the certificate decides.
    let req = with_header(
        check_request(Some(&ehr), "", "", "GET", path),
        "authorization",
        "Basic Zm9vOmJhcg==",
    );
    assert_eq!(f.running.check(req).await.0, 200);
    // An expired token.
    let expired = f
        .jwt
        .mint(
            &JwtClaims::new(EHR, "lab-results").with_exp(Some(hallpass_testkit::unix_now() - 3600)),
        )
        .unwrap();
    let req = with_header(
        check_request(Some(&ehr), "", "", "GET", path),
        "authorization",
        &bearer(&expired),
    );
    assert_eq!(f.running.check(req).await.1, "expired_credential");

    let (_, metrics) = f.running.get("/metrics").await;
    assert!(
        metrics.contains("hallpass_identity_cache_lookups_total{result=\"hit\"}"),
        "{metrics}"
    );
    // Credential posture: the testkit's SVIDs live 25 h, over the 24 h default;
    // its JWTs live 5 min, under the 1 h default.
    assert!(
        metrics.contains("hallpass_credential_lifetime_seconds_count{kind=\"x509\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hallpass_long_lived_credentials_total{kind=\"x509\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hallpass_long_lived_credentials_total{kind=\"jwt\"} 0"),
        "{metrics}"
    );
    f.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_jwt_denies_a_certificate_alone() {
    let mut f = start("    required: true\n").await;
    let ehr = f.ca.issue(EHR).unwrap();
    let (status, reason, _) = f
        .running
        .check_svid(&ehr, "GET", "/patients/1/results")
        .await;
    assert_eq!((status, reason.as_str()), (401, "no_identity"));
    f.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_revoked_by_serial_is_denied_and_its_sibling_is_not() {
    let mut f = start("").await;
    let mut spec = SvidSpec::new(EHR);
    spec.serial = Some(0x0bad_c0de);
    let revoked = f.ca.issue_with(&spec).unwrap();
    let fresh = f.ca.issue(EHR).unwrap();
    let (status, reason, _) = f
        .running
        .check_svid(&revoked, "GET", "/patients/1/results")
        .await;
    assert_eq!((status, reason.as_str()), (401, "revoked"));
    assert_eq!(
        f.running
            .check_svid(&fresh, "GET", "/patients/1/results")
            .await
            .0,
        200
    );
    f.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xfcc_is_believed_only_from_a_trusted_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::root("hospital.example").unwrap();
    std::fs::write(dir.path().join("bundle.pem"), ca.cert_pem()).unwrap();
    std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
    let config = format!(
        "authz:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nworkload:\n  id: {LAB}\n\
         trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: {d}/bundle.pem\n\
         identity:\n  x509_from: xfcc\n  xfcc:\n    trusted_proxies: [{GATEWAY}]\n\
         policy:\n  file: {d}/policy.yaml\ntelemetry:\n  audit_log: \"off\"\n",
        d = dir.path().display()
    );
    let mut running = Running::start_ready(config).await;
    let gateway = ca.issue(GATEWAY).unwrap();
    let intermediate = ca.intermediate().unwrap();
    let ehr = intermediate.issue(EHR).unwrap();
    let billing = ca.issue(BILLING).unwrap();
    let encoded_chain = {
        let mut chain = ehr.clone();
        chain.cert_pem = ehr.full_chain_pem();
        chain.envoy_encoded()
    };
    let xfcc = format!(
        "By={GATEWAY};Cert=\"{}\";Chain=\"{encoded_chain}\";URI={EHR}",
        ehr.envoy_encoded()
    );
    let path = "/patients/1/results";

    // From the gateway, the XFCC caller (via an intermediate in Chain=) is the identity.
    let req = with_header(
        check_request(Some(&gateway), "", "", "GET", path),
        "x-forwarded-client-cert",
        &xfcc,
    );
    let (status, source, _) = running.check(req).await;
    assert_eq!((status, source.as_str()), (200, EHR));
    // The same header from a peer that is not a trusted proxy is not believed.
    let req = with_header(
        check_request(Some(&billing), "", "", "GET", path),
        "x-forwarded-client-cert",
        &xfcc,
    );
    let (status, reason, _) = running.check(req).await;
    assert_eq!((status, reason.as_str()), (401, "invalid_svid"));
    // The gateway without an XFCC header proves no caller.
    let (status, reason, _) = running.check_svid(&gateway, "GET", path).await;
    assert_eq!((status, reason.as_str()), (401, "no_identity"));
    // A malformed header is a deny, not a guess.
    let req = with_header(
        check_request(Some(&gateway), "", "", "GET", path),
        "x-forwarded-client-cert",
        "Cert=\"unterminated",
    );
    assert_eq!(running.check(req).await.1, "invalid_svid");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_jwt_from_a_federated_domain_needs_that_domains_jwt_bundle() {
    let mut f = start("").await;
    let vendor_jwt = JwtIssuer::new("imaging-vendor.example", JwtAlg::Rs256, "vendor-1").unwrap();
    let token = vendor_jwt.mint_for(VENDOR, "lab-results").unwrap();
    let req = with_header(
        check_request(None, "", "", "POST", "/imaging/uploads"),
        "authorization",
        &bearer(&token),
    );
    let (status, reason, _) = f.running.check(req).await;
    assert_eq!((status, reason.as_str()), (401, "untrusted_trust_domain"));
    f.running.stop().await;
}
