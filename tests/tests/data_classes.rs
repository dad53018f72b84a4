//! Data classes (issue 15 §2) through real processes: caller Envoy --mTLS-->
//! callee Envoy --ext_authz--> `hallpass serve` --> echo app.
//!
//! Lab results declare `data_class: phi` for the destination, and the
//! billing read rule `billing`: a denied call from a caller no rule names
//! takes the destination's class (phi) on the anomaly counter and in the
//! audit record; an allowed call takes its rule's class.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use hallpass_e2e::{EchoApp, Ports, Workdir, http, wait_for_http_ok};

const EHR: &str = "spiffe://hospital.example/ns/clinical/sa/ehr-api";
const BILLING: &str = "spiffe://hospital.example/ns/billing/sa/billing";
const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn audit_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn a_phi_route_denied_to_an_unknown_caller_pages_by_class_on_metrics_and_audit() {
    let work = Workdir::new().unwrap();
    let policy = work.path().join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "version: 1\ntrust_domains: [hospital.example]\ndata_classes: [phi, billing]\n\
             workloads:\n  {LAB}:\n    data_class: phi\n    allow:\n\
             \x20     - name: ehr-reads-results\n        from: [{EHR}]\n        methods: [GET]\n        paths: [\"/patients/{{patient}}/results\"]\n\
             \x20     - name: ehr-reads-invoices\n        from: [{EHR}]\n        methods: [GET]\n        paths: [\"/invoices/{{id}}\"]\n        data_class: billing\n"
        ),
    )
    .unwrap();
    let audit = work.path().join("audit.log");
    let app = EchoApp::start().unwrap();
    let ports = Ports::fresh(app.addr().port()).unwrap();
    let hallpass = work
        .start_hallpass_with_policy(
            "hallpass",
            &format!("127.0.0.1:{}", ports.authz),
            ports.admin,
            &policy,
            &format!(
                "trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: {}/bundle.pem\n\
                 telemetry:\n  audit_log: {}\n",
                work.path().join("certs").display(),
                audit.display()
            ),
        )
        .unwrap();
    if let Err(e) = wait_for_http_ok(addr(ports.admin), "/readyz", Duration::from_secs(20)) {
        panic!("hallpass not ready: {e}\n{}", hallpass.output());
    }
    let (_callee, _caller, _) = work.start_envoy_pair("dc", "callee.yaml", &ports).unwrap();
    let call = |caller: &str, path: &str| {
        http(
            addr(ports.caller),
            "GET",
            path,
            &[("x-demo-caller", caller)],
        )
        .unwrap()
    };

    // Billing is named by no rule of lab results: denied, on phi data.
    let denied = call("billing", "/patients/1/results");
    assert_eq!(denied.status, 403, "{denied:?}\n{}", hallpass.output());
    // The EHR's reads: results (phi, the destination's class) and
    // invoices (the rule's own class, billing).
    assert_eq!(call("ehr-api", "/patients/1/results").status, 200);
    assert_eq!(call("ehr-api", "/invoices/7").status, 200);

    let mut records = Vec::new();
    for _ in 0..50 {
        records = audit_lines(&audit);
        if records.len() >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let find = |pred: &dyn Fn(&serde_json::Value) -> bool| {
        records
            .iter()
            .find(|r| pred(r))
            .unwrap_or_else(|| panic!("no such audit record in {records:#?}"))
            .clone()
    };
    let deny = find(&|r| r["decision"] == "deny");
    assert_eq!(deny["source"], BILLING);
    assert_eq!(deny["reason"], "no_matching_rule");
    assert_eq!(deny["data_class"], "phi", "{deny}");
    let results = find(&|r| r["rule"] == "ehr-reads-results");
    assert_eq!(results["data_class"], "phi", "{results}");
    let invoices = find(&|r| r["rule"] == "ehr-reads-invoices");
    assert_eq!(invoices["data_class"], "billing", "{invoices}");

    let metrics = http(addr(ports.admin), "GET", "/metrics", &[])
        .unwrap()
        .body;
    let anomaly = |kind: &str, class: &str| {
        metrics.lines().any(|l| {
            l.starts_with("hallpass_call_path_anomalies_total{")
                && l.contains(&format!("data_class=\"{class}\""))
                && l.contains(&format!("kind=\"{kind}\""))
                // Billing is named nowhere in this policy: its bounded label.
                && l.contains("source=\"other:hospital.example\"")
                && l.ends_with(" 1")
        })
    };
    assert!(anomaly("denied", "phi"), "{metrics}");
    assert!(anomaly("unknown_source", "phi"), "{metrics}");
    // Bounded: the label takes only the five class words.
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("hallpass_call_path_anomalies_total{"))
    {
        assert!(
            ["phi", "billing", "operational", "public", "none"]
                .iter()
                .any(|c| line.contains(&format!("data_class=\"{c}\""))),
            "{line}"
        );
    }
}
