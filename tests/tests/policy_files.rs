//! A policy of several files through real Envoy (issue 14 part 1):
//! `policy.files` names a directory with a platform file (trust domains,
//! revocations) and two team files. Real mTLS callers are allowed and denied
//! by the combined set; a conflicting team file written at runtime is kept
//! out (the last good set keeps answering, the failure is counted and logged
//! with both files); a revocation added to the platform file reaches the
//! sidecar within one reload.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hallpass_e2e::{
    EchoApp, HttpResponse, Ports, Proc, Workdir, hallpass_bin, http, wait_for_http_ok,
};

const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";
const PHARMACY: &str = "spiffe://hospital.example/ns/pharmacy/sa/pharmacy";

const PLATFORM: &str = "version: 1\ntrust_domains: [hospital.example]\nrevoked:\n  ids: []\n";

fn platform_revoking(id: &str) -> String {
    format!("version: 1\ntrust_domains: [hospital.example]\nrevoked:\n  ids: [{id}]\n")
}

/// The clinical team's file: who may read lab results.
const CLINICAL: &str = "\
version: 1
owner: [\"spiffe://hospital.example/ns/clinical/**\"]
workloads:
  spiffe://hospital.example/ns/clinical/sa/lab-results:
    allow:
      - name: ehr-reads-results
        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]
        methods: [GET]
        paths: [\"/patients/{patient}/results\"]
      - name: pharmacy-reads-results
        from: [spiffe://hospital.example/ns/pharmacy/sa/pharmacy]
        methods: [GET]
        paths: [\"/patients/{patient}/results\"]
";

/// The pharmacy team's file: its own destination only.
const PHARMACY_TEAM: &str = "\
version: 1
owner: [\"spiffe://hospital.example/ns/pharmacy/**\"]
workloads:
  spiffe://hospital.example/ns/pharmacy/sa/dispensing:
    allow:
      - name: ehr-dispenses
        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]
        methods: [POST]
        paths: [\"/dispense\"]
";

/// Another team's file that also defines lab-results (and lets billing in).
const CONFLICTING: &str = "\
version: 1
workloads:
  spiffe://hospital.example/ns/clinical/sa/lab-results:
    allow:
      - name: billing-reads-everything
        from: [spiffe://hospital.example/ns/billing/sa/billing]
";

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Write a file whole (the sidecar never sees it half-written).
fn put(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

fn reloads(admin: SocketAddr, result: &str) -> u64 {
    let metrics = http(admin, "GET", "/metrics", &[]).unwrap().body;
    let prefix = format!("hallpass_policy_reloads_total{{result=\"{result}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Wait (bounded) until the `result` reload counter passes `above`.
fn wait_reload(admin: SocketAddr, result: &str, above: u64, sidecar: &Proc) -> u64 {
    for _ in 0..200 {
        let now = reloads(admin, result);
        if now > above {
            return now;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no {result} reload after {above}\n{}", sidecar.output());
}

fn status(caller: &str, port: u16) -> (u16, Option<String>) {
    let r: HttpResponse = http(
        addr(port),
        "GET",
        "/patients/p-1/results",
        &[("x-demo-caller", caller)],
    )
    .unwrap();
    (r.status, r.headers.get("x-hallpass-reason").cloned())
}

#[test]
fn a_directory_of_team_files_and_a_platform_file_through_envoy() {
    let work = Workdir::new().unwrap();
    let app = EchoApp::start().unwrap();
    let ports = Ports::fresh(app.addr().port()).unwrap();
    let dir = work.path().join("policy.d");
    std::fs::create_dir(&dir).unwrap();
    put(&dir, "00-platform.yaml", PLATFORM);
    put(&dir, "clinical.yaml", CLINICAL);
    put(&dir, "pharmacy.yaml", PHARMACY_TEAM);
    std::fs::write(dir.join("README.md"), "not a policy").unwrap();

    let config = format!(
        "authz:\n  listen: 127.0.0.1:{authz}\nadmin:\n  listen: 127.0.0.1:{admin}\n\
         workload:\n  id: {LAB}\n\
         trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: {certs}/bundle.pem\n\
         policy:\n  reload_interval_seconds: 1\n  files:\n    - {dir}\n",
        authz = ports.authz,
        admin = ports.admin,
        certs = work.path().join("certs").display(),
        dir = dir.display(),
    );
    let path = work.path().join("hallpass.yaml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new(hallpass_bin().unwrap());
    cmd.arg("serve")
        .arg("--config")
        .arg(&path)
        .env_remove("SPIFFE_ENDPOINT_SOCKET")
        .env("HALLPASS_LOG", "info");
    let mut sidecar = Proc::spawn("hallpass", cmd, work.path().join("hallpass.log")).unwrap();
    let admin = addr(ports.admin);
    if let Err(e) = wait_for_http_ok(admin, "/readyz", Duration::from_secs(30)) {
        panic!("hallpass not ready: {e}\n{}", sidecar.output());
    }
    let (_callee, _caller, _) = work
        .start_envoy_pair("files", "callee.yaml", &ports)
        .unwrap();

    // The combined set decides: the clinical team's rules, the platform's
    // trust domains.
    assert_eq!(
        status("ehr-api", ports.caller).0,
        200,
        "{}",
        sidecar.output()
    );
    assert_eq!(status("pharmacy", ports.caller).0, 200);
    assert_eq!(
        status("billing", ports.caller),
        (403, Some("no_matching_rule".into()))
    );

    // A team file that also defines lab-results: the reload is refused,
    // counted, and logged with both files; the last good set still answers.
    let failures = reloads(admin, "failure");
    put(&dir, "zz-billing.yaml", CONFLICTING);
    wait_reload(admin, "failure", failures, &sidecar);
    assert_eq!(
        status("billing", ports.caller),
        (403, Some("no_matching_rule".into())),
        "the conflicting file must not be in force"
    );
    assert_eq!(status("ehr-api", ports.caller).0, 200);
    let log = sidecar.output();
    let clinical = dir.join("clinical.yaml").display().to_string();
    let billing = dir.join("zz-billing.yaml").display().to_string();
    assert!(
        log.contains(&format!("{billing}:3:3: "))
            && log.contains(&format!("is also defined in {clinical}:4:3")),
        "the failure names both files and lines:\n{log}"
    );
    assert!(
        !log.contains("/patients/p-1"),
        "a raw path reached the log:\n{log}"
    );

    // The conflict goes away, then the platform revokes pharmacy: the next
    // reload carries it to this sidecar.
    let successes = reloads(admin, "success");
    std::fs::remove_file(dir.join("zz-billing.yaml")).unwrap();
    let successes = wait_reload(admin, "success", successes, &sidecar);
    assert_eq!(status("pharmacy", ports.caller).0, 200);
    put(&dir, "00-platform.yaml", &platform_revoking(PHARMACY));
    wait_reload(admin, "success", successes, &sidecar);
    assert_eq!(
        status("pharmacy", ports.caller),
        (401, Some("revoked".into())),
        "{}",
        sidecar.output()
    );
    assert_eq!(status("ehr-api", ports.caller).0, 200);

    let stopped = sidecar.terminate(Duration::from_secs(15)).unwrap();
    assert!(stopped.success(), "hallpass exited with {stopped}");
}
