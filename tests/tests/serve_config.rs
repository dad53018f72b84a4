//! `hallpass serve`'s config through the real binary: `/config` shows what
//! the process runs with, environment overrides included, and a bad config
//! is refused before anything is bound, every problem in its place.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hallpass_e2e::{
    Proc, Workdir, free_ports, hallpass_bin, http, wait_for_http_ok, workspace_root,
};

const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";

#[test]
fn config_endpoint_of_a_running_sidecar_shows_the_environment_applied() {
    let work = Workdir::new().unwrap();
    let ports = free_ports(2).unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", ports[1]).parse().unwrap();
    let config = format!(
        "authz:\n  listen: 127.0.0.1:{authz}\nadmin:\n  listen: {admin}\n\
         trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: {certs}/bundle.pem\n\
         policy:\n  file: {policy}\n",
        authz = ports[0],
        certs = work.path().join("certs").display(),
        policy = workspace_root()
            .join("examples/policies/clinical-mesh.yaml")
            .display(),
    );
    let path = work.path().join("hallpass.yaml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new(hallpass_bin().unwrap());
    cmd.arg("serve")
        .arg("--config")
        .arg(&path)
        .env_remove("SPIFFE_ENDPOINT_SOCKET")
        .env("HALLPASS_WORKLOAD_ID", LAB)
        .env("HALLPASS_POLICY_RELOAD_INTERVAL_SECONDS", "7");
    let mut sidecar = Proc::spawn("hallpass", cmd, work.path().join("hallpass.log")).unwrap();
    if let Err(e) = wait_for_http_ok(admin, "/readyz", Duration::from_secs(30)) {
        panic!("{e}\n{}", sidecar.output());
    }

    let page = http(admin, "GET", "/config", &[]).unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    let v: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    // From the environment, not the file.
    assert_eq!(v["workload"]["id"], LAB);
    assert_eq!(v["policy"]["reload_interval_seconds"], 7);
    // From the file, and the defaults it left out.
    assert_eq!(v["admin"]["listen"], admin.to_string());
    assert_eq!(v["trust"]["bundles"][0]["trust_domain"], "hospital.example");
    assert_eq!(v["identity"]["clock_skew_seconds"], 30);
    assert_eq!(v["telemetry"]["audit_log"], "stdout");

    let status = sidecar.terminate(Duration::from_secs(15)).unwrap();
    assert!(status.success(), "{status:?}\n{}", sidecar.output());
}

#[test]
fn a_bad_config_is_refused_with_every_problem_in_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "trust:\n  bundles:\n    - trust_domain: Hospital.example\n      x509: /etc/hallpass/hospital.pem\n\
         admin:\n  lisen: 127.0.0.1:1\npolicy:\n  file: /p.yaml\n  reload_interval_seconds: 0\n",
    )
    .unwrap();
    let mut child = Command::new(hallpass_bin().unwrap())
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .env_remove("SPIFFE_ENDPOINT_SOCKET")
        .env("HALLPASS_AUTHZ_LISTEN", "localhost")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A refused config exits at once; one that started would serve forever.
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("hallpass serve started with an invalid config");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = path.display();
    for expected in [
        format!(
            "{file}:3:21: trust.bundles[0].trust_domain: write the trust domain name alone, in lower case"
        ),
        format!(
            "{file}:6:3: admin.lisen: unknown key; did you mean `listen`? valid keys are: listen"
        ),
        format!("{file}:9:28: policy.reload_interval_seconds: must be between 1 and 3600"),
        "$HALLPASS_AUTHZ_LISTEN: authz.listen: `localhost` is a host name".to_owned(),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}
