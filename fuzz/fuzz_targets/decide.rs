//! The whole decision, from the bytes of a `CheckRequest` to the answer and
//! the telemetry event: prost-decode → `AuthzService::answer` (decide, answer,
//! the panic guard) → `Shared::record` and `Shared::event` (from what decide
//! returned) → the audit line, against a real compiled policy and real trust
//! bundles (generated with the test kit), through a sidecar bound the way
//! `hallpass serve` binds it.
//!
//! Invariants, checked on every input:
//! - nothing panics (a caught panic counts too: `hallpass_panics_total`);
//! - a call is never let through an enforcing destination, and
//!   `x-hallpass-source` is never set, without a credential in the request
//!   that the harness itself knows to be valid, trusted and not revoked, and
//!   the header names exactly that credential's identity;
//! - a deny carries a known reason code, with 401 or 403 to match;
//! - the audit line is JSON with no raw path and a request ID only as a UUID.
//!
//! The input's first byte picks a template request (a valid caller, a
//! revoked one, a JWT, an XFCC chain, ...); the rest is protobuf merged over
//! it, so the fuzzer starts next to every interesting path instead of having
//! to find a certificate. Credential fields equal to a token (`@ehr`,
//! `Bearer @jwt-ehr`, `@xfcc-chain`, ...) are swapped for the real thing.
#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use base64::Engine;
use envoy_types::ext_authz::v3::pb::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer, Request};
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use hallpass_server::{AuthzService, Settings, Shared, Sidecar};
use hallpass_testkit::{Ca, JwtAlg, JwtClaims, JwtIssuer, SvidSpec, bundle_json};
use libfuzzer_sys::fuzz_target;
use prost::Message;

const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";
const PHARMACY_DEST: &str = "spiffe://hospital.example/ns/pharmacy/sa/pharmacy";
const EHR: &str = "spiffe://hospital.example/ns/clinical/sa/ehr-api";
const BILLING: &str = "spiffe://hospital.example/ns/billing/sa/billing";
const FAX: &str = "spiffe://hospital.example/ns/legacy/sa/fax-gateway";
const PHARMACY: &str = "spiffe://hospital.example/ns/pharmacy/sa/pharmacy";
const PARTNER: &str = "spiffe://partner.example/ns/apps/sa/portal";
const REVOKED_SERIAL: u64 = 0x0bad_c0de;
const REASONS: [&str; 12] = [
    "no_identity",
    "invalid_svid",
    "untrusted_trust_domain",
    "expired_credential",
    "revoked",
    "invalid_jwt",
    "jwt_audience_mismatch",
    "identity_mismatch",
    "no_matching_rule",
    "grant_expired",
    "ambiguous_path",
    "internal_error",
];

/// A credential the harness made, and the identity it proves when valid.
struct Credential {
    /// What a request carries instead of it.
    token: &'static str,
    /// The real value.
    value: String,
    /// The identity, when the credential is valid, trusted and not revoked.
    vouches_for: Option<&'static str>,
}

struct Fixture {
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    shared: Arc<Shared>,
    service: AuthzService,
    now_ms: i64,
    certs: Vec<(Credential, Vec<u8>)>,
    /// PEM body (base64) of the intermediate CA, for the chain leaf.
    intermediate_b64: String,
    chain_leaf_der: Vec<u8>,
    jwts: Vec<Credential>,
    xfcc: Vec<Credential>,
    templates: Vec<CheckRequest>,
}

fn request(
    cert: &str,
    dest: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(Peer {
                certificate: cert.into(),
                ..Default::default()
            }),
            destination: Some(Peer {
                principal: dest.into(),
                ..Default::default()
            }),
            request: Some(Request {
                http: Some(HttpRequest {
                    method: method.into(),
                    path: path.into(),
                    headers: headers
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

fn pem_body(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let ca = Ca::root("hospital.example").expect("ca");
        let partner_ca = Ca::root("partner.example").expect("partner ca");
        let rogue = Ca::root("hospital.example").expect("rogue");
        let intermediate = ca.intermediate().expect("intermediate");
        let jwt = JwtIssuer::new("hospital.example", JwtAlg::Es256, "k1").expect("issuer");
        std::fs::write(d.join("bundle.pem"), ca.cert_pem()).expect("write");
        std::fs::write(d.join("partner.pem"), partner_ca.cert_pem()).expect("write");
        std::fs::write(d.join("bundle.jwks.json"), bundle_json(&[&jwt], &[])).expect("write");
        let policy = include_str!("../../examples/policies/clinical-mesh.yaml")
            .replace(
                "  ids: [spiffe://hospital.example/ns/legacy/sa/fax-gateway]",
                &format!(
                    "  ids: [spiffe://hospital.example/ns/legacy/sa/fax-gateway]\n  serials:\n    - trust_domain: hospital.example\n      serial: \"{REVOKED_SERIAL:x}\""
                ),
            )
            .replace(
                "      - name: pharmacy-lookup",
                "      - name: billing-deletes-with-jwt\n        from: [spiffe://hospital.example/ns/billing/sa/billing]\n        methods: [DELETE]\n        paths: [\"/patients/{patient}/results/{result}\"]\n        require_jwt: true\n        headers: {x-tenant: hospital}\n      - name: pharmacy-lookup",
            );
        std::fs::write(d.join("policy.yaml"), policy).expect("write");
        let config = format!(
            "authz:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\n\
             trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: {d}/bundle.pem\n      jwt: {d}/bundle.jwks.json\n\
             \x20   - trust_domain: partner.example\n      x509: {d}/partner.pem\n\
             identity:\n  jwt:\n    audiences: [lab-results]\n\
             policy:\n  file: {d}/policy.yaml\n\
             telemetry:\n  audit_log: {d}/audit.jsonl\n  audit_log_max_bytes: 1048576\n  audit_log_max_files: 1\n",
            d = d.display()
        );
        let settings = Settings::from_yaml(&config, std::iter::empty()).expect("settings");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let shared = rt.block_on(async {
            let sidecar = Sidecar::bind(settings).await.expect("bind");
            sidecar.shared()
        });
        assert!(shared.not_ready_reasons().is_empty(), "{:?}", shared.not_ready_reasons());
        let service = AuthzService::new(shared.clone());

        let issue = |ca: &Ca, id: &str| ca.issue(id).expect("issue");
        let mut serial_spec = SvidSpec::new(EHR);
        serial_spec.serial = Some(REVOKED_SERIAL);
        let chain_leaf = intermediate.issue(EHR).expect("issue");
        // notBefore after notAfter, both within the clock skew: once a panic.
        let mut inverted = SvidSpec::new(EHR);
        let now = time::OffsetDateTime::now_utc();
        inverted.not_before = now + time::Duration::seconds(10);
        inverted.not_after = now + time::Duration::seconds(5);
        let certs = [
            ("@ehr", issue(&ca, EHR), Some(EHR)),
            ("@billing", issue(&ca, BILLING), Some(BILLING)),
            ("@pharmacy", issue(&ca, PHARMACY), Some(PHARMACY)),
            ("@fax", issue(&ca, FAX), None),
            ("@serial-revoked", ca.issue_with(&serial_spec).expect("issue"), None),
            ("@partner", issue(&partner_ca, PARTNER), None),
            ("@rogue", issue(&rogue, EHR), None),
            ("@expired", ca.issue_with(&SvidSpec::new(EHR).expired()).expect("issue"), None),
            ("@chain", chain_leaf.clone(), None),
            ("@inverted", ca.issue_with(&inverted).expect("issue"), None),
        ]
        .into_iter()
        .map(|(token, svid, vouches_for)| {
            (Credential { token, value: svid.envoy_encoded(), vouches_for }, svid.cert_der.clone())
        })
        .collect();
        let hour = hallpass_testkit::unix_now() + 3600;
        let mint = |sub: &str, aud: &str| {
            jwt.mint(&JwtClaims::new(sub, aud).with_exp(Some(hour))).expect("mint")
        };
        let jwts = vec![
            Credential { token: "@jwt-ehr", value: mint(EHR, "lab-results"), vouches_for: Some(EHR) },
            Credential { token: "@jwt-billing", value: mint(BILLING, "lab-results"), vouches_for: Some(BILLING) },
            Credential { token: "@jwt-fax", value: mint(FAX, "lab-results"), vouches_for: None },
            Credential { token: "@jwt-wrong-aud", value: mint(EHR, "billing"), vouches_for: None },
        ];
        let chain = format!(
            "By={LAB};Hash=00;Cert=\"{c}\";Chain=\"{c}{i}\";URI={EHR}",
            c = chain_leaf.envoy_encoded(),
            i = hallpass_testkit_encode(intermediate.cert_pem()),
        );
        let xfcc = vec![Credential { token: "@xfcc-chain", value: chain, vouches_for: None }];
        let templates = vec![
            request("@ehr", LAB, "GET", "/patients/p1/results", &[("x-request-id", "5f0c2a7e-1b7d-4c1e-9d3a-8f2b6c4d1e00")]),
            request("@billing", LAB, "DELETE", "/patients/p1/results/r2", &[("authorization", "Bearer @jwt-billing"), ("x-tenant", "hospital")]),
            request("@pharmacy", LAB, "POST", "/lab.v1.Results/GetResult", &[("content-type", "application/grpc")]),
            request("@fax", PHARMACY_DEST, "POST", "/prescriptions", &[("x-hallpass-source", EHR)]),
            request("@serial-revoked", LAB, "GET", "/patients/p1/results", &[]),
            request("@partner", PHARMACY_DEST, "POST", "/prescriptions", &[]),
            request("@chain", LAB, "GET", "/patients/p1/results/r1", &[("x-forwarded-client-cert", "@xfcc-chain")]),
            request("", LAB, "GET", "/patients/p1/results", &[("authorization", "Bearer @jwt-ehr")]),
            request("@ehr", LAB, "GET", "/patients/p1/results", &[("authorization", "Bearer @jwt-billing")]),
            request("@expired", BILLING, "POST", "/charges", &[("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]),
            request("@rogue", LAB, "GET", "/patients/../admin", &[]),
            request("@ehr", PHARMACY_DEST, "POST", "/prescriptions", &[("authorization", "Bearer @jwt-wrong-aud")]),
            request("@billing", PHARMACY_DEST, "GET", "/anything", &[]),
            request("@inverted", LAB, "GET", "/patients/p1/results", &[]),
            request("@ehr", LAB, "GET", "/imaging/studies/s1", &[]),
        ];
        Fixture {
            rt,
            _dir: dir,
            shared,
            service,
            now_ms: hallpass_testkit::unix_now_ms(),
            certs,
            intermediate_b64: pem_body(intermediate.cert_pem()),
            chain_leaf_der: chain_leaf.cert_der.clone(),
            jwts,
            xfcc,
            templates,
        }
    })
}

/// URL-encode PEM the way Envoy does (the test kit's encoding, for a CA).
fn hallpass_testkit_encode(pem: &str) -> String {
    percent_encoding::utf8_percent_encode(pem, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Swap tokens for the real credentials.
fn substitute(f: &Fixture, check: &mut CheckRequest) {
    let Some(attrs) = check.attributes.as_mut() else {
        return;
    };
    if let Some(source) = attrs.source.as_mut()
        && let Some((c, _)) = f.certs.iter().find(|(c, _)| c.token == source.certificate)
    {
        source.certificate = c.value.clone();
    }
    let Some(http) = attrs.request.as_mut().and_then(|r| r.http.as_mut()) else {
        return;
    };
    if let Some(auth) = http.headers.get_mut("authorization")
        && let Some(j) = f
            .jwts
            .iter()
            .find(|j| auth.strip_prefix("Bearer ") == Some(j.token))
    {
        *auth = format!("Bearer {}", j.value);
    }
    if let Some(x) = http.headers.get_mut("x-forwarded-client-cert")
        && let Some(c) = f.xfcc.iter().find(|c| c.token == x.as_str())
    {
        *x = c.value.clone();
    }
}

/// Identities the request's own credentials prove, by the harness's
/// reckoning (a superset of what a correct verifier accepts).
fn provable(f: &Fixture, check: &CheckRequest) -> Vec<&'static str> {
    let mut ids = Vec::new();
    let Some(attrs) = check.attributes.as_ref() else {
        return ids;
    };
    let headers: HashMap<String, String> = attrs
        .request
        .as_ref()
        .and_then(|r| r.http.as_ref())
        .map(|h| h.headers.clone())
        .unwrap_or_default();
    let cert = attrs
        .source
        .as_ref()
        .map(|p| p.certificate.as_str())
        .unwrap_or("");
    if let Ok(decoded) = hallpass_identity::decode_envoy_certificate(cert)
        && let Some(leaf) = decoded.first()
    {
        for (c, der) in &f.certs {
            if leaf.as_ref() == der.as_slice()
                && let Some(id) = c.vouches_for
            {
                ids.push(id);
            }
        }
        // The chain leaf proves EHR when its intermediate is at hand.
        if leaf.as_ref() == f.chain_leaf_der.as_slice() {
            let decoded_text = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .replace(['\n', '\r'], "")
            };
            let xfcc = headers
                .get("x-forwarded-client-cert")
                .map(|h| decoded_text(h))
                .unwrap_or_default();
            if decoded_text(cert).contains(&f.intermediate_b64)
                || xfcc.contains(&f.intermediate_b64)
            {
                ids.push(EHR);
            }
        }
    }
    if let Some(auth) = headers.get("authorization") {
        let lenient = base64::engine::GeneralPurpose::new(
            &base64::alphabet::URL_SAFE,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_allow_trailing_bits(true)
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let parts = |t: &str| -> Option<Vec<Vec<u8>>> {
            t.split('.').map(|p| lenient.decode(p).ok()).collect()
        };
        let presented = auth
            .trim()
            .split_once(' ')
            .map(|(_, t)| t.trim())
            .and_then(parts);
        for j in &f.jwts {
            if presented.is_some()
                && presented == parts(&j.value)
                && let Some(id) = j.vouches_for
            {
                ids.push(id);
            }
        }
    }
    ids
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let (pick, bytes) = data.split_first().unwrap_or((&0, &[]));
    let mut check = f.templates[usize::from(*pick) % f.templates.len()].clone();
    // tonic decodes the same way; bytes that are not a CheckRequest never
    // reach Check.
    if check.merge(bytes).is_err() {
        return;
    }
    substitute(f, &mut check);

    let (decided, response) = f.service.answer(&check, f.now_ms);
    f.shared.record(&decided, f.now_ms);
    let event = f.shared.event(&decided, f.now_ms);
    f.rt.block_on(f.shared.telemetry.flush());
    for stage in ["decide", "record", "telemetry"] {
        assert_eq!(
            f.shared.metrics.panics.with_label_values(&[stage]).get(),
            0,
            "a panic was caught at {stage}"
        );
    }

    let destination = check
        .attributes
        .as_ref()
        .and_then(|a| a.destination.as_ref())
        .map(|p| p.principal.as_str())
        .unwrap_or("");
    let ids = provable(f, &check);
    match response.http_response.as_ref().expect("an answer") {
        HttpResponse::OkResponse(ok) => {
            let source: Vec<&str> = ok
                .headers
                .iter()
                .filter_map(|h| h.header.as_ref())
                .filter(|h| h.key.eq_ignore_ascii_case("x-hallpass-source"))
                .map(|h| h.value.as_str())
                .collect();
            match source.as_slice() {
                [] => assert!(
                    destination == PHARMACY_DEST,
                    "let through {destination} (enforcing) without naming a caller"
                ),
                [id] => assert!(
                    ids.contains(id),
                    "x-hallpass-source {id} without a valid credential for it (provable: {ids:?})"
                ),
                many => panic!("x-hallpass-source set {} times", many.len()),
            }
            if destination != PHARMACY_DEST {
                assert!(
                    decided.outcome.decision.is_allow(),
                    "an enforcing destination let a deny through"
                );
            }
        }
        HttpResponse::DeniedResponse(denied) => {
            let reason = denied
                .headers
                .iter()
                .filter_map(|h| h.header.as_ref())
                .find(|h| h.key == "x-hallpass-reason")
                .map(|h| h.value.as_str())
                .expect("a deny names its reason");
            assert!(REASONS.contains(&reason), "unknown reason {reason}");
            let status = denied.status.as_ref().map(|s| s.code).unwrap_or_default();
            let unauthenticated = REASONS[..8].contains(&reason);
            assert_eq!(status, if unauthenticated { 401 } else { 403 }, "{reason}");
            assert!(
                denied
                    .headers
                    .iter()
                    .filter_map(|h| h.header.as_ref())
                    .all(|h| h.key != "x-hallpass-source")
            );
        }
        other => panic!("unexpected answer {other:?}"),
    }

    let line = hallpass_telemetry::audit_line(&event, "fuzz");
    let record: serde_json::Value = serde_json::from_str(&line).expect("the audit line is JSON");
    assert!(record.get("path").is_none(), "a raw path in the audit line");
    if let Some(id) = record.get("request_id") {
        let id = id.as_str().unwrap_or("");
        assert!(
            hallpass_telemetry::request_id(id).as_deref() == Some(id),
            "request_id {id:?} is not a UUID"
        );
    }
});
