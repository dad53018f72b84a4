//! End-to-end: caller Envoy --mTLS--> callee Envoy --ext_authz--> `hallpass serve`
//! --> echo app, all real processes on loopback, using the shipped configs.

use std::net::SocketAddr;
use std::time::Duration;

use hallpass_e2e::{
    EchoApp, HttpResponse, Ports, Proc, Workdir, http, validate_envoy_config, wait_for_http_ok,
    wait_for_port, workspace_root,
};

const EHR: &str = "spiffe://hospital.example/ns/clinical/sa/ehr-api";
const BILLING: &str = "spiffe://hospital.example/ns/billing/sa/billing";
/// A patient identifier that must never show up in a log line or a metric.
const MRN: &str = "MRN-5551234";

struct Mesh {
    work: Workdir,
    ports: Ports,
    hallpass: Proc,
    _caller: Proc,
    _callee: Proc,
    _app: EchoApp,
}

impl Mesh {
    /// Start the app, hallpass, the callee Envoy (`callee_config`) and the caller Envoy.
    fn start(uds: bool) -> Mesh {
        Self::start_with(uds, None)
    }

    /// [`Self::start`], with hallpass deciding by `policy` (YAML text) instead
    /// of the shipped clinical mesh.
    fn start_with(uds: bool, policy: Option<&str>) -> Mesh {
        let work = Workdir::new().unwrap();
        let app = EchoApp::start().unwrap();
        let ports = Ports::fresh(app.addr().port()).unwrap();
        let socket = work.path().join("hallpass-authz.sock");
        let (authz_listen, callee_config, extra) = if uds {
            (
                format!("unix://{}", socket.display()),
                "callee-uds.yaml",
                vec![(
                    "path: hallpass-authz.sock".to_owned(),
                    format!("path: {}", socket.display()),
                )],
            )
        } else {
            (format!("127.0.0.1:{}", ports.authz), "callee.yaml", vec![])
        };
        let hallpass = match policy {
            None => work
                .start_hallpass("hallpass", &authz_listen, ports.admin, "")
                .unwrap(),
            Some(text) => {
                let file = work.path().join("policy.yaml");
                std::fs::write(&file, text).unwrap();
                let trust = format!(
                    "trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: {}/bundle.pem\n",
                    work.path().join("certs").display()
                );
                work.start_hallpass_with_policy(
                    "hallpass",
                    &authz_listen,
                    ports.admin,
                    &file,
                    &trust,
                )
                .unwrap()
            }
        };
        let admin = addr(ports.admin);
        if let Err(e) = wait_for_http_ok(admin, "/readyz", Duration::from_secs(20)) {
            panic!("hallpass not ready: {e}\n{}", hallpass.output());
        }
        let extra: Vec<(&str, &str)> = extra
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let callee = work
            .start_envoy("callee", callee_config, &ports.rewrites(), &extra)
            .unwrap();
        let caller = work
            .start_envoy("caller", "caller.yaml", &ports.rewrites(), &[])
            .unwrap();
        for (port, proc) in [(ports.callee, &callee), (ports.caller, &caller)] {
            if let Err(e) = wait_for_port(addr(port), Duration::from_secs(30)) {
                panic!("Envoy did not start: {e}\n{}", proc.output());
            }
        }
        Mesh {
            work,
            ports,
            hallpass,
            _caller: caller,
            _callee: callee,
            _app: app,
        }
    }

    /// A request through the caller's Envoy, as workload `caller`.
    fn call(&self, caller: &str, method: &str, path: &str, extra: &[(&str, &str)]) -> HttpResponse {
        let mut headers = vec![("x-demo-caller", caller)];
        headers.extend_from_slice(extra);
        http(addr(self.ports.caller), method, path, &headers).unwrap()
    }

    fn metrics(&self) -> String {
        http(addr(self.ports.admin), "GET", "/metrics", &[])
            .unwrap()
            .body
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn seen_source(response: &HttpResponse) -> String {
    let echoed: serde_json::Value = serde_json::from_str(&response.body).unwrap_or_default();
    echoed["x-hallpass-source"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn assert_denied(response: &HttpResponse, status: u16, reason: &str) {
    assert_eq!(response.status, status, "{response:?}");
    assert_eq!(
        response
            .headers
            .get("x-hallpass-reason")
            .map(String::as_str),
        Some(reason),
        "{response:?}"
    );
    let body: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    let error = if status == 401 {
        "unauthenticated"
    } else {
        "forbidden"
    };
    assert_eq!(body, serde_json::json!({"error": error, "reason": reason}));
}

#[test]
fn tcp_mesh_allows_denies_and_fails_closed() {
    let mut mesh = Mesh::start(false);
    let results = format!("/patients/{MRN}/results?since=2026-01-01");

    // Allowed: the app sees who called, as hallpass proved it.
    let ok = mesh.call("ehr-api", "GET", &results, &[]);
    assert_eq!(ok.status, 200, "{ok:?}\n{}", mesh.hallpass.output());
    assert_eq!(seen_source(&ok), EHR);

    // A forged identity header is replaced, not appended to.
    let forged = mesh.call(
        "ehr-api",
        "GET",
        &results,
        &[("x-hallpass-source", BILLING)],
    );
    assert_eq!(forged.status, 200);
    assert_eq!(seen_source(&forged), EHR);

    // The same header spelt with underscores, which CGI/WSGI-style apps read
    // as x-hallpass-source: refused before it gets anywhere.
    let underscored = mesh.call(
        "ehr-api",
        "GET",
        &results,
        &[("x_hallpass_source", BILLING)],
    );
    assert_eq!(underscored.status, 400, "{underscored:?}");
    assert!(!underscored.body.contains(BILLING), "{underscored:?}");

    // A patient identifier in every header hallpass could record: it must
    // reach neither the audit log, nor a log line, nor a metric (checked
    // below, after shutdown).
    let traceparent = format!("00-{MRN}-00f067aa0ba902b7-01");
    let cookie = format!("patient={MRN}");
    let canary = mesh.call(
        "ehr-api",
        "GET",
        &results,
        &[
            ("x-request-id", MRN),
            ("traceparent", &traceparent),
            ("x-b3-traceid", MRN),
            ("user-agent", MRN),
            ("referer", MRN),
            ("cookie", &cookie),
            ("x-patient", MRN),
        ],
    );
    assert_eq!(canary.status, 200, "{canary:?}");

    // A caller the policy does not name for this destination.
    assert_denied(
        &mesh.call("billing", "GET", &results, &[]),
        403,
        "no_matching_rule",
    );
    // The right caller, the wrong path or method.
    assert_denied(
        &mesh.call("ehr-api", "GET", &format!("/patients/{MRN}/notes"), &[]),
        403,
        "no_matching_rule",
    );
    assert_denied(
        &mesh.call("ehr-api", "DELETE", &results, &[]),
        403,
        "no_matching_rule",
    );
    // A trailing `/` reaches hallpass as sent (Envoy's path settings do not
    // strip it) and is denied as ambiguous; the audit record names the cause.
    assert_denied(
        &mesh.call("ehr-api", "GET", &format!("/patients/{MRN}/results/"), &[]),
        403,
        "ambiguous_path",
    );
    // gRPC-only rule: pharmacy over plain HTTP GET is not allowed.
    assert_denied(
        &mesh.call("pharmacy", "GET", &results, &[]),
        403,
        "no_matching_rule",
    );

    // Metrics: bounded labels, and never the raw path.
    let metrics = mesh.metrics();
    let allow = format!(
        "hallpass_decisions_total{{decision=\"allow\",destination=\"spiffe://hospital.example/ns/clinical/sa/lab-results\",reason=\"ok\",source=\"{EHR}\"}} 3"
    );
    assert!(metrics.contains(&allow), "{metrics}");
    assert!(
        metrics.contains(&format!(
            "reason=\"no_matching_rule\",source=\"{BILLING}\"}} 1"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("hallpass_check_duration_seconds_count 8"),
        "{metrics}"
    );
    assert!(!metrics.contains(MRN));
    // The real exposition passes Prometheus's own linter.
    let mut lint = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is needed (scripts/install-test-deps.sh)");
    std::io::Write::write_all(&mut lint.stdin.take().unwrap(), metrics.as_bytes()).unwrap();
    let lint = lint.wait_with_output().unwrap();
    assert!(
        lint.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );

    // Graceful stop on SIGTERM, then Envoy fails closed.
    let status = mesh.hallpass.terminate(Duration::from_secs(15)).unwrap();
    assert!(status.success(), "hallpass exited with {status}");
    let log = mesh.hallpass.output();
    assert!(
        log.contains("\"route\":\"/patients/{patient}/results\""),
        "audit log lacks the route template:\n{log}"
    );
    assert!(
        log.contains("\"reason\":\"ambiguous_path\",")
            && log.contains("\"path_issue\":\"trailing_slash\""),
        "audit log lacks the ambiguous path's cause:\n{log}"
    );
    assert!(
        !log.contains(MRN),
        "a patient identifier reached the log:\n{log}"
    );
    assert!(
        !log.contains("since=2026"),
        "a query string reached the log:\n{log}"
    );
    let down = mesh.call("ehr-api", "GET", &results, &[]);
    assert_eq!(
        down.status, 403,
        "with hallpass stopped Envoy must deny: {down:?}"
    );
    assert_eq!(seen_source(&down), "");
    drop(mesh.work);
}

#[test]
fn unix_socket_mesh_allows_and_denies() {
    let mesh = Mesh::start(true);
    let ok = mesh.call("ehr-api", "GET", "/patients/7/results/3", &[]);
    assert_eq!(ok.status, 200, "{ok:?}\n{}", mesh.hallpass.output());
    assert_eq!(seen_source(&ok), EHR);
    assert_denied(
        &mesh.call("billing", "GET", "/patients/7/results/3", &[]),
        403,
        "no_matching_rule",
    );
}

/// Audit mode lets a revoked caller through, and real Envoy must then hand
/// the app no `x-hallpass-source` at all: not hallpass's, and not the one
/// the caller forged.
#[test]
fn audit_mode_lets_a_revoked_caller_through_without_naming_it() {
    let policy = format!(
        "version: 1\ntrust_domains: [hospital.example]\nrevoked:\n  ids: [{BILLING}]\nworkloads:\n\
         \x20 spiffe://hospital.example/ns/clinical/sa/lab-results:\n    mode: audit\n    allow:\n\
         \x20     - name: ehr-reads\n        from: [{EHR}]\n"
    );
    let mesh = Mesh::start_with(false, Some(&policy));
    let path = format!("/patients/{MRN}/results");
    for forged in [None, Some(EHR)] {
        let extra: Vec<(&str, &str)> = forged
            .map(|f| ("x-hallpass-source", f))
            .into_iter()
            .collect();
        let revoked = mesh.call("billing", "GET", &path, &extra);
        assert_eq!(
            revoked.status, 200,
            "audit mode lets it through: {revoked:?}"
        );
        assert_eq!(
            seen_source(&revoked),
            "",
            "the app must not be told a revoked caller's identity (forged: {forged:?})"
        );
    }
    // A proven, trusted, unrevoked caller the rules do not name: named.
    let unnamed = mesh.call("pharmacy", "GET", &path, &[("x-hallpass-source", EHR)]);
    assert_eq!(unnamed.status, 200, "{unnamed:?}");
    assert_eq!(
        seen_source(&unnamed),
        "spiffe://hospital.example/ns/pharmacy/sa/pharmacy"
    );
    let ok = mesh.call("ehr-api", "GET", &path, &[]);
    assert_eq!(seen_source(&ok), EHR);
    let metrics = mesh.metrics();
    assert!(
        metrics.contains(&format!("decision=\"audit_deny\",destination=\"spiffe://hospital.example/ns/clinical/sa/lab-results\",reason=\"revoked\",source=\"{BILLING}\"}} 2")),
        "{metrics}"
    );
}

#[test]
fn every_shipped_envoy_config_validates() {
    let work = Workdir::new().unwrap();
    let mut checked = 0;
    let mut dirs = vec![workspace_root().join("examples/envoy")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                validate_envoy_config(&path, work.path()).unwrap();
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 5,
        "expected at least 5 shipped Envoy configs, found {checked}"
    );
}
