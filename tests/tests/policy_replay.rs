//! End-to-end: calls through real Envoys (caller --mTLS--> callee
//! --ext_authz--> `hallpass serve`) write an audit log; `hallpass policy
//! replay` re-decides it under candidate policies: the same policy changes
//! nothing (exit 0), a candidate that drops a used route fails the gate
//! (exit 1) naming the edge, route, rule and count, and a denied call with
//! no route template is reported as needing the concrete path.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use hallpass_e2e::{EchoApp, Ports, Workdir, hallpass_bin, http, wait_for_http_ok, workspace_root};

const EHR: &str = "spiffe://hospital.example/ns/clinical/sa/ehr-api";
const BILLING: &str = "spiffe://hospital.example/ns/billing/sa/billing";
const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn replay(candidate: &Path, log: &Path, extra: &[&str]) -> (Output, String) {
    let out = Command::new(hallpass_bin().unwrap())
        .args(["policy", "replay"])
        .arg(candidate)
        .arg("--audit-log")
        .arg(log)
        .args(extra)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

#[test]
fn replay_of_an_envoy_audit_log_gates_a_candidate_that_drops_a_used_route() {
    let work = Workdir::new().unwrap();
    let app = EchoApp::start().unwrap();
    let ports = Ports::fresh(app.addr().port()).unwrap();
    let log = work.path().join("audit.jsonl");
    let mut hallpass = work
        .start_hallpass(
            "hallpass",
            &format!("127.0.0.1:{}", ports.authz),
            ports.admin,
            &format!("telemetry:\n  audit_log: {}\n", log.display()),
        )
        .unwrap();
    if let Err(e) = wait_for_http_ok(addr(ports.admin), "/readyz", Duration::from_secs(20)) {
        panic!("hallpass not ready: {e}\n{}", hallpass.output());
    }
    let (_callee, _caller, _) = work
        .start_envoy_pair("replay", "callee.yaml", &ports)
        .unwrap();
    let call = |who: &str, method: &str, path: &str| {
        http(addr(ports.caller), method, path, &[("x-demo-caller", who)])
            .unwrap()
            .status
    };
    // Two routes of one rule are used; billing is named by no rule; the
    // ehr-api's read of notes matches no route.
    assert_eq!(call("ehr-api", "GET", "/patients/12345/results"), 200);
    assert_eq!(call("ehr-api", "GET", "/patients/12345/results/9"), 200);
    assert_eq!(call("ehr-api", "GET", "/patients/777/results/3"), 200);
    assert_eq!(call("billing", "GET", "/patients/12345/results"), 403);
    assert_eq!(call("ehr-api", "GET", "/patients/12345/notes"), 403);
    // SIGTERM writes every queued record first.
    let status = hallpass.terminate(Duration::from_secs(15)).unwrap();
    assert!(status.success(), "hallpass exited with {status}");
    let audit = std::fs::read_to_string(&log).unwrap();
    assert_eq!(audit.lines().count(), 5, "{audit}");

    // The policy in force changes nothing.
    let shipped = workspace_root().join("examples/policies/clinical-mesh.yaml");
    let (out, text) = replay(&shipped, &log, &[]);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("replayed 5 of 5 audit records"), "{text}");
    assert!(text.contains("0 newly denied, 0 newly allowed"), "{text}");
    // The notes read: the rule names the caller, its templates are not the
    // notes path, but the record has no path to prove it.
    assert!(text.contains("1 undetermined"), "{text}");
    assert!(text.contains("needs the concrete path"), "{text}");

    // A candidate without the `/patients/{patient}/results/{result}` route.
    let shipped_text = std::fs::read_to_string(&shipped).unwrap();
    let dropped = shipped_text.replace(
        r#"paths: ["/patients/{patient}/results", "/patients/{patient}/results/{result}"]"#,
        r#"paths: ["/patients/{patient}/results"]"#,
    );
    assert_ne!(
        dropped, shipped_text,
        "the shipped policy changed: fix the test"
    );
    let candidate = work.path().join("candidate.yaml");
    std::fs::write(&candidate, &dropped).unwrap();
    let (out, text) = replay(&candidate, &log, &[]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("Newly denied (2 calls):"), "{text}");
    assert!(
        text.contains(&format!(
            "{EHR} -> {LAB}  GET /patients/{{patient}}/results/{{result}}\n    \
             was allowed by rule ehr-reads-results; now deny no_matching_rule\n    2 calls, first 20"
        )),
        "{text}"
    );
    // The same as JSON, for tools.
    let (out, text) = replay(&candidate, &log, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["newly_denied"], 2, "{json}");
    assert_eq!(json["unchanged"], 2, "{json}");
    let change = &json["changes"][0];
    assert_eq!(change["change"], "newly_denied", "{json}");
    assert_eq!(change["source"], EHR);
    assert_eq!(change["destination"], LAB);
    assert_eq!(change["route"], "/patients/{patient}/results/{result}");
    assert_eq!(change["recorded"], "ehr-reads-results");
    assert_eq!(change["count"], 2);
    assert!(
        change["first_seen"].as_str().unwrap() <= change["last_seen"].as_str().unwrap(),
        "{json}"
    );

    // A candidate that lets billing read any path of lab-results: its denied
    // call is newly allowed, which does not fail the gate.
    let widened = shipped_text.replace(
        "      - name: pharmacy-lookup",
        &format!(
            "      - name: billing-reads-everything\n        from: [{BILLING}]\n        methods: [GET]\n      - name: pharmacy-lookup"
        ),
    );
    std::fs::write(&candidate, &widened).unwrap();
    let (out, text) = replay(&candidate, &log, &[]);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("Newly allowed (1 calls):"), "{text}");
    assert!(
        text.contains("was deny no_matching_rule; now allowed by rule billing-reads-everything"),
        "{text}"
    );
    drop(app);
}
