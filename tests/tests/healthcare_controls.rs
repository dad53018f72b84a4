//! The healthcare controls of issue 15 through real processes: caller Envoy
//! --mTLS--> callee Envoy --ext_authz--> `hallpass serve` --> echo app.
//!
//! - JWT-SVID replay protection: a rule with `jwt_replay: deny`; the same
//!   token sent twice through Envoy is denied `jwt_replayed` the second time.
//! - Break-glass: `hallpass breakglass open` (the real binary) writes the
//!   overlay file, the running sidecar picks it up at its next reload, a call
//!   that was 403 becomes 200 (counted, gauged, audited with the ticket);
//!   `close`, and expiry, make it 403 again.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hallpass_e2e::{
    EchoApp, HttpResponse, Ports, Proc, Workdir, hallpass_bin, http, wait_for_http_ok,
    wait_for_port,
};
use hallpass_testkit::{JwtAlg, JwtClaims, JwtIssuer, bundle_json};

const EHR: &str = "spiffe://hospital.example/ns/clinical/sa/ehr-api";
const BILLING: &str = "spiffe://hospital.example/ns/billing/sa/billing";
const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

struct Mesh {
    _work: Workdir,
    ports: Ports,
    hallpass: Proc,
    jwt: JwtIssuer,
    _caller: Proc,
    _callee: Proc,
    _app: EchoApp,
}

impl Mesh {
    /// The mesh, with hallpass deciding by `policy` and `extra` config
    /// (`policy:` keys beyond `file` go in `policy_extra`).
    fn start(policy: &str, policy_extra: &str, extra: &str) -> Mesh {
        let work = Workdir::new().unwrap();
        let certs = work.path().join("certs");
        let jwt = JwtIssuer::new("hospital.example", JwtAlg::Es256, "k1").unwrap();
        std::fs::write(certs.join("bundle.jwks.json"), bundle_json(&[&jwt], &[])).unwrap();
        let app = EchoApp::start().unwrap();
        let ports = Ports::fresh(app.addr().port()).unwrap();
        let file = work.path().join("policy.yaml");
        std::fs::write(&file, policy).unwrap();
        let config = format!(
            "authz:\n  listen: 127.0.0.1:{authz}\nadmin:\n  listen: 127.0.0.1:{admin}\n\
             workload:\n  id: {LAB}\n\
             policy:\n  file: {file}\n  reload_interval_seconds: 1\n{policy_extra}\
             trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: {c}/bundle.pem\n      jwt: {c}/bundle.jwks.json\n\
             identity:\n  jwt:\n    audiences: [lab-results]\n{extra}",
            authz = ports.authz,
            admin = ports.admin,
            file = file.display(),
            c = certs.display(),
        );
        let config_path = work.path().join("hallpass.yaml");
        std::fs::write(&config_path, config).unwrap();
        let mut cmd = std::process::Command::new(hallpass_bin().unwrap());
        cmd.arg("serve")
            .arg("--config")
            .arg(&config_path)
            .env("HALLPASS_LOG", "info");
        let hallpass = Proc::spawn("hallpass", cmd, work.path().join("hallpass.log")).unwrap();
        if let Err(e) = wait_for_http_ok(addr(ports.admin), "/readyz", Duration::from_secs(20)) {
            panic!("hallpass not ready: {e}\n{}", hallpass.output());
        }
        let callee = work
            .start_envoy("callee", "callee.yaml", &ports.rewrites(), &[])
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
            _work: work,
            ports,
            hallpass,
            jwt,
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

    /// Poll (bounded: 30 s) until `call` gives `status`; the last response.
    fn until_status(&self, status: u16, call: impl Fn() -> HttpResponse) -> HttpResponse {
        for _ in 0..150 {
            let r = call();
            if r.status == status {
                return r;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "never answered {status}: last {:?}\n{}",
            call(),
            self.hallpass.output()
        );
    }
}

fn reason(r: &HttpResponse) -> Option<&str> {
    r.headers.get("x-hallpass-reason").map(String::as_str)
}

/// The value of the first series of `metrics` whose line starts with
/// `name{` and contains every one of `labels`.
fn series(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn a_replayed_jwt_svid_is_denied_on_a_write_route_through_envoy() {
    let policy = format!(
        "version: 1\ntrust_domains: [hospital.example]\nworkloads:\n  {LAB}:\n    allow:\n\
         \x20     - name: ehr-reads-results\n        from: [{EHR}]\n        methods: [GET]\n        paths: [\"/patients/{{patient}}/results\"]\n\
         \x20     - name: ehr-writes-results\n        from: [{EHR}]\n        methods: [POST]\n        paths: [\"/patients/{{patient}}/results\"]\n        jwt_replay: deny\n"
    );
    let mesh = Mesh::start(&policy, "", "");
    let token = |jti: Option<&str>| {
        let mut claims = JwtClaims::new(EHR, "lab-results");
        if let Some(jti) = jti {
            claims = claims.claim("jti", serde_json::json!(jti));
        }
        format!("Bearer {}", mesh.jwt.mint(&claims).unwrap())
    };
    let post = |auth: Option<&str>, path: &str| {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        mesh.call("ehr-api", "POST", path, &headers)
    };
    let results = "/patients/1/results";
    let a = token(Some("order-7f3a"));

    // First use: allowed, and the app sees the proven caller.
    let first = post(Some(&a), results);
    assert_eq!(first.status, 200, "{first:?}\n{}", mesh.hallpass.output());
    // The same token again: a replay, 401.
    let again = post(Some(&a), results);
    assert_eq!(again.status, 401, "{again:?}");
    assert_eq!(reason(&again), Some("jwt_replayed"));
    let body: serde_json::Value = serde_json::from_str(&again.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"error": "unauthenticated", "reason": "jwt_replayed"})
    );
    // Another jti is its own single use.
    assert_eq!(post(Some(&token(Some("order-9c21"))), results).status, 200);
    // No jti: it cannot be shown to be single-use.
    let no_jti = post(Some(&token(None)), results);
    assert_eq!(
        (no_jti.status, reason(&no_jti)),
        (401, Some("jwt_replayed"))
    );
    // Without a token the rule (which implies require_jwt) does not match.
    let bare = post(None, results);
    assert_eq!(
        (bare.status, reason(&bare)),
        (403, Some("no_matching_rule"))
    );
    // A denied call does not consume the jti: the same token still works
    // where a rule allows it.
    let c = token(Some("order-c0de"));
    let elsewhere = post(Some(&c), "/patients/1/notes");
    assert_eq!(elsewhere.status, 403, "{elsewhere:?}");
    assert_eq!(post(Some(&c), results).status, 200);
    // Reads carry no replay protection: the used token still reads.
    let read = mesh.call("ehr-api", "GET", results, &[("authorization", &a)]);
    assert_eq!(read.status, 200, "{read:?}");

    let metrics = mesh.metrics();
    assert_eq!(
        series(
            &metrics,
            "hallpass_decisions_total",
            &["decision=\"deny\"", "reason=\"jwt_replayed\""]
        ),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        series(&metrics, "hallpass_jwt_replay_cache_entries", &[]),
        Some(3.0),
        "{metrics}"
    );
    assert_eq!(
        series(&metrics, "hallpass_jwt_replay_cache_full_total", &[]),
        Some(0.0)
    );
}

/// Run `hallpass breakglass …` (the real binary); its output, and panic
/// unless it exits `code`.
fn breakglass(overlay: &Path, args: &[&str], code: i32) -> String {
    let out = std::process::Command::new(hallpass_bin().unwrap())
        .arg("breakglass")
        .args(args)
        .arg("--overlay")
        .arg(overlay)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(code), "breakglass {args:?}: {text}");
    text
}

fn audit_lines(path: &PathBuf) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn break_glass_opened_by_the_cli_lets_a_call_through_until_closed_or_expired() {
    let policy = format!(
        "version: 1\ntrust_domains: [hospital.example]\nworkloads:\n  {LAB}:\n    allow:\n\
         \x20     - name: ehr-reads-results\n        from: [{EHR}]\n        methods: [GET]\n        paths: [\"/patients/{{patient}}/results\"]\n"
    );
    let probe = Workdir::new().unwrap();
    let overlay = probe.path().join("break-glass.yaml");
    let audit = probe.path().join("audit.log");
    let mesh = Mesh::start(
        &policy,
        &format!("  break_glass_file: {}\n", overlay.display()),
        &format!("telemetry:\n  audit_log: {}\n", audit.display()),
    );
    let results = "/patients/1/results";
    let read = || mesh.call("billing", "GET", results, &[]);

    // No grant (no overlay file at all): billing may not read results.
    let denied = read();
    assert_eq!(
        (denied.status, reason(&denied)),
        (403, Some("no_matching_rule")),
        "{}",
        mesh.hallpass.output()
    );

    // A grant without its required fields is refused by the CLI.
    let refused = breakglass(
        &overlay,
        &[
            "open",
            "--from",
            BILLING,
            "--to",
            LAB,
            "--reason",
            " ",
            "--ticket",
            "INC-4711",
            "--opened-by",
            "alice",
            "--expires-in",
            "1h",
        ],
        1,
    );
    assert!(refused.contains("break_glass[0].reason"), "{refused}");
    // Longer than the maximum: refused too.
    let too_long = breakglass(
        &overlay,
        &[
            "open",
            "--from",
            BILLING,
            "--to",
            LAB,
            "--reason",
            "EHR downtime",
            "--ticket",
            "INC-4711",
            "--opened-by",
            "alice",
            "--expires-in",
            "5h",
        ],
        1,
    );
    assert!(too_long.contains("longer than the maximum"), "{too_long}");
    assert!(!overlay.exists());

    let opened = breakglass(
        &overlay,
        &[
            "open",
            "--from",
            BILLING,
            "--to",
            LAB,
            "--method",
            "GET",
            "--path",
            "/patients/{patient}/results",
            "--reason",
            "EHR downtime procedure",
            "--ticket",
            "INC-4711",
            "--opened-by",
            "alice@hospital.example",
            "--expires-in",
            "1h",
        ],
        0,
    );
    assert!(
        opened.contains("opened break-glass grant bg-inc-4711"),
        "{opened}"
    );

    // The sidecar picks the overlay up at its next reload.
    let allowed = mesh.until_status(200, read);
    let echoed: serde_json::Value = serde_json::from_str(&allowed.body).unwrap();
    assert_eq!(echoed["x-hallpass-source"], BILLING);
    // Only what the grant names: a write is still denied.
    let write = mesh.call("billing", "POST", results, &[]);
    assert_eq!(
        (write.status, reason(&write)),
        (403, Some("no_matching_rule"))
    );

    let metrics = mesh.metrics();
    let grant = "grant=\"bg-inc-4711\"";
    assert!(
        series(
            &metrics,
            "hallpass_break_glass_calls_total",
            &[grant, &format!("destination=\"{LAB}\"")]
        )
        .is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    assert!(
        series(&metrics, "hallpass_break_glass_active", &[grant]).is_some_and(|t| t > 0.0),
        "{metrics}"
    );
    assert!(
        series(
            &metrics,
            "hallpass_decisions_total",
            &["decision=\"allow\"", "reason=\"break_glass\""]
        )
        .is_some_and(|n| n >= 1.0),
        "{metrics}"
    );

    // The audit record is marked as break-glass, with the ticket.
    let mut marked = None;
    for _ in 0..50 {
        marked = audit_lines(&audit)
            .into_iter()
            .find(|r| r["reason"] == "break_glass");
        if marked.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let marked = marked.unwrap_or_else(|| panic!("no break_glass audit record: {audit:?}"));
    assert_eq!(marked["decision"], "allow");
    assert_eq!(marked["source"], BILLING);
    assert_eq!(marked["rule"], "bg-inc-4711");
    assert_eq!(marked["route"], "/patients/{patient}/results");
    assert_eq!(marked["break_glass"]["ticket"], "INC-4711");
    assert_eq!(marked["break_glass"]["opened_by"], "alice@hospital.example");

    let listed = breakglass(&overlay, &["list", "--format", "json"], 0);
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed[0]["name"], "bg-inc-4711");
    assert_eq!(listed[0]["state"], "open");

    // Closed: 403 again, and the gauge drops the grant.
    breakglass(&overlay, &["close", "bg-inc-4711"], 0);
    let closed = mesh.until_status(403, read);
    assert_eq!(reason(&closed), Some("no_matching_rule"));
    for _ in 0..50 {
        if series(&mesh.metrics(), "hallpass_break_glass_active", &[grant]).is_none() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        series(&mesh.metrics(), "hallpass_break_glass_active", &[grant]),
        None
    );
    // Closing it twice is an error that names what is open.
    breakglass(&overlay, &["close", "bg-inc-4711"], 1);

    // A short grant: used while open, inert once expired.
    breakglass(
        &overlay,
        &[
            "open",
            "--from",
            BILLING,
            "--to",
            LAB,
            "--reason",
            "mass-casualty drill",
            "--ticket",
            "INC-4712",
            "--opened-by",
            "bob",
            "--expires-in",
            "8s",
            "--name",
            "short",
        ],
        0,
    );
    mesh.until_status(200, read);
    let expired = mesh.until_status(403, read);
    assert_eq!(reason(&expired), Some("no_matching_rule"));
    let listed = breakglass(&overlay, &["list"], 0);
    assert!(listed.contains("short [expired]"), "{listed}");
}
