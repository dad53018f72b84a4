//! The main rejection reasons, through real Envoy processes: a caller Envoy
//! presents each bad credential over mTLS to a callee Envoy that leaves
//! certificate verification to hallpass (`callee-hallpass-verifies.yaml`),
//! and hallpass's 401 and reason code must come back to the caller.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use hallpass_e2e::{
    EchoApp, Ports, Workdir, envoy_bin, free_ports, http, wait_for_http_ok, wait_for_port,
    write_private_file,
};
use hallpass_testkit::{
    Ca, JwtAlg, JwtClaims, JwtIssuer, Kid, SignatureSpec, SvidSpec, bundle_json,
};
use rcgen::KeyUsagePurpose;
use serde_json::json;

const EHR: &str = "spiffe://hospital.example/ns/clinical/sa/ehr-api";
const BILLING: &str = "spiffe://hospital.example/ns/billing/sa/billing";
const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A caller Envoy with one upstream cluster per credential; `x-credential`
/// picks it.
fn caller_config(certs: &Path, names: &[&str], listen: u16, callee: u16) -> serde_json::Value {
    let routes: Vec<_> = names
        .iter()
        .map(|n| json!({"match": {"prefix": "/", "headers": [{"name": "x-credential", "string_match": {"exact": n}}]}, "route": {"cluster": n}}))
        .collect();
    let clusters: Vec<_> = names
        .iter()
        .map(|n| {
            json!({
                "name": n, "type": "STATIC", "connect_timeout": "1s",
                "load_assignment": {"cluster_name": n, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": callee}}}}]}]},
                "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": {"http2_protocol_options": {}}}},
                "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                    "common_tls_context": {
                        "alpn_protocols": ["h2"],
                        "tls_certificates": [{"certificate_chain": {"filename": certs.join(format!("{n}.pem"))}, "private_key": {"filename": certs.join(format!("{n}.key"))}}],
                        "validation_context": {"trusted_ca": {"filename": certs.join("bundle.pem")}}
                    }}}
            })
        })
        .collect();
    json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{"name": "out", "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen}},
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "out", "codec_type": "AUTO",
                    "normalize_path": true, "merge_slashes": true,
                    "path_with_escaped_slashes_action": "REJECT_REQUEST",
                    "common_http_protocol_options": {"headers_with_underscores_action": "REJECT_REQUEST"},
                    "route_config": {"name": "out", "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]},
                    "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]
                }}]}]}],
            "clusters": clusters
        }
    })
}

#[test]
fn bad_credentials_are_refused_with_hallpass_reasons_through_envoy() {
    let work = Workdir::new().unwrap();
    let certs = work.path().join("certs");
    // The mesh CA is in certs/bundle.pem; re-read it to issue more.
    let ca = Ca::root("hospital.example").unwrap();
    std::fs::write(certs.join("bundle.pem"), ca.cert_pem()).unwrap();
    let lab = ca.issue(LAB).unwrap();
    std::fs::write(certs.join("lab-results.pem"), lab.full_chain_pem()).unwrap();
    write_private_file(&certs.join("lab-results.key"), &lab.key_pem);
    let rogue = Ca::root("hospital.example").unwrap();
    let evil = Ca::root("evil.example").unwrap();
    let mut ca_leaf = SvidSpec::new(EHR);
    ca_leaf.is_ca = true;
    ca_leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
    ];
    let credentials = [
        ("good", ca.issue(EHR).unwrap()),
        ("rogue-ca", rogue.issue(EHR).unwrap()),
        (
            "other-domain",
            evil.issue("spiffe://evil.example/ns/x/sa/y").unwrap(),
        ),
        (
            "expired",
            ca.issue_with(&SvidSpec::new(EHR).expired()).unwrap(),
        ),
        ("ca-as-leaf", ca.issue_with(&ca_leaf).unwrap()),
    ];
    for (name, svid) in &credentials {
        std::fs::write(certs.join(format!("{name}.pem")), svid.full_chain_pem()).unwrap();
        write_private_file(&certs.join(format!("{name}.key")), &svid.key_pem);
    }
    let jwt = JwtIssuer::new("hospital.example", JwtAlg::Es256, "k1").unwrap();
    std::fs::write(certs.join("bundle.jwks.json"), bundle_json(&[&jwt], &[])).unwrap();

    let app = EchoApp::start().unwrap();
    let ports = Ports::fresh(app.addr().port()).unwrap();
    let extra = format!(
        "trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: {c}/bundle.pem\n      jwt: {c}/bundle.jwks.json\n\
         identity:\n  jwt:\n    audiences: [lab-results]\ntelemetry:\n  audit_log: \"off\"\n",
        c = certs.display()
    );
    let hallpass = work
        .start_hallpass_with(
            "hallpass",
            &format!("127.0.0.1:{}", ports.authz),
            ports.admin,
            &extra,
        )
        .unwrap();
    if let Err(e) = wait_for_http_ok(addr(ports.admin), "/readyz", Duration::from_secs(20)) {
        panic!("hallpass not ready: {e}\n{}", hallpass.output());
    }
    let callee = work
        .start_envoy(
            "callee",
            "callee-hallpass-verifies.yaml",
            &ports.rewrites(),
            &[],
        )
        .unwrap();
    let names: Vec<&str> = credentials.iter().map(|(n, _)| *n).collect();
    let caller_port = free_ports(1).unwrap()[0];
    let caller_path = work.path().join("caller.json");
    let caller_config = caller_config(&certs, &names, caller_port, ports.callee);
    hallpass_e2e::check_envoy_hardening(&caller_config).unwrap();
    std::fs::write(&caller_path, caller_config.to_string()).unwrap();
    let mut cmd = std::process::Command::new(envoy_bin().unwrap());
    cmd.arg("-c").arg(&caller_path).args([
        "--use-dynamic-base-id",
        "--concurrency",
        "1",
        "-l",
        "warning",
    ]);
    let caller = hallpass_e2e::Proc::spawn("caller", cmd, work.path().join("caller.log")).unwrap();
    for (port, proc) in [(ports.callee, &callee), (caller_port, &caller)] {
        if let Err(e) = wait_for_port(addr(port), Duration::from_secs(30)) {
            panic!("Envoy did not start: {e}\n{}", proc.output());
        }
    }
    let call = |credential: &str, auth: Option<&str>| {
        let mut headers = vec![("x-credential", credential)];
        if let Some(a) = auth {
            headers.push(("authorization", a));
        }
        http(addr(caller_port), "GET", "/patients/1/results", &headers).unwrap()
    };
    let expect = |credential: &str, auth: Option<&str>, status: u16, reason: &str| {
        let r = call(credential, auth);
        assert_eq!(
            r.status,
            status,
            "{credential} {auth:?}: {r:?}\n{}",
            hallpass.output()
        );
        assert_eq!(
            r.headers.get("x-hallpass-reason").map(String::as_str),
            Some(reason),
            "{credential}: {r:?}"
        );
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["reason"], reason);
    };

    assert_eq!(call("good", None).status, 200);
    expect("rogue-ca", None, 401, "invalid_svid");
    expect("other-domain", None, 401, "untrusted_trust_domain");
    expect("expired", None, 401, "expired_credential");
    expect("ca-as-leaf", None, 401, "invalid_svid");

    let bearer = |t: String| format!("Bearer {t}");
    let good_jwt = bearer(jwt.mint_for(EHR, "lab-results").unwrap());
    assert_eq!(call("good", Some(&good_jwt)).status, 200);
    let none = bearer(
        jwt.mint(
            &JwtClaims::new(EHR, "lab-results")
                .with_alg("none")
                .with_kid(Kid::Omit)
                .with_signature(SignatureSpec::Empty),
        )
        .unwrap(),
    );
    expect("good", Some(&none), 401, "invalid_jwt");
    expect(
        "good",
        Some(&bearer(jwt.mint_for(EHR, "billing").unwrap())),
        401,
        "jwt_audience_mismatch",
    );
    expect(
        "good",
        Some(&bearer(jwt.mint_for(BILLING, "lab-results").unwrap())),
        401,
        "identity_mismatch",
    );
}
