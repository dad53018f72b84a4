//! The Kubernetes layout of issue 14 part 1, through real Envoy: the
//! `config.yaml` the chart renders (`helm template`), the platform's
//! ConfigMap and the team's written the way the kubelet writes a ConfigMap
//! volume (a timestamped directory, `..data` swapped atomically, one symlink
//! per key), the `HALLPASS_*` variables the injector sets.
//!
//! - The namespace has no team ConfigMap yet (the optional volume is empty):
//!   the sidecar starts, denies every call, and says so in `/readyz` and
//!   `hallpass_policy_workload_defined`.
//! - The lab team applies its own ConfigMap: its rules are in force at the
//!   next reload.
//! - The team adds a file that defines the pharmacy's destination: refused
//!   by the owner scope, counted, the last good set keeps answering.
//! - The platform revokes a caller in its ConfigMap: in force at the next
//!   reload.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hallpass_e2e::{EchoApp, Ports, Proc, Workdir, hallpass_bin, http, workspace_root};

const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";
const EHR: &str = "spiffe://hospital.example/ns/clinical/sa/ehr-api";

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A directory written as the kubelet writes a ConfigMap volume
/// (`AtomicWriter`): the data in `..<timestamp>/`, `..data` pointing at it
/// (replaced by a rename, so a reader sees the old set or the new one), and
/// each key a symlink through `..data`. An optional ConfigMap that does not
/// exist is an empty data set.
struct ConfigMapVolume {
    dir: PathBuf,
    generation: u32,
}

impl ConfigMapVolume {
    fn new(dir: PathBuf) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        let mut volume = Self { dir, generation: 0 };
        volume.write(&BTreeMap::new());
        volume
    }

    fn write(&mut self, data: &BTreeMap<String, String>) {
        self.generation += 1;
        let stamp = format!("..2026_12_02_14_00_00.{:09}", self.generation);
        let target = self.dir.join(&stamp);
        std::fs::create_dir(&target).unwrap();
        for (key, text) in data {
            std::fs::write(target.join(key), text).unwrap();
        }
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&stamp, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
        for key in data.keys() {
            let link = self.dir.join(key);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(format!("..data/{key}"), &link).unwrap();
            }
        }
        for entry in std::fs::read_dir(&self.dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with("..") && name != "..data" && name != stamp {
                std::fs::remove_dir_all(entry.path()).unwrap();
            } else if !name.starts_with('.') && !data.contains_key(&name) {
                std::fs::remove_file(entry.path()).unwrap();
            }
        }
    }
}

/// `data` of the one ConfigMap in a manifest file.
fn configmap_data(text: &str) -> BTreeMap<String, String> {
    let doc: serde_json::Value = serde_yaml_ng::from_str(text).unwrap();
    doc["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

/// Helm (`$HELM_BIN`, the project's `target/tools/bin/helm`, or `helm` on
/// `PATH`; it answers `version`, not `--version`). Missing is a failure.
fn helm() -> PathBuf {
    let candidates: Vec<PathBuf> = match std::env::var_os("HELM_BIN") {
        Some(p) => vec![PathBuf::from(p)],
        None => vec![
            workspace_root().join("target/tools/bin/helm"),
            PathBuf::from("helm"),
        ],
    };
    candidates
        .iter()
        .find(|c| {
            Command::new(c)
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "helm is not installed (looked at {candidates:?}): run scripts/install-test-deps.sh"
            )
        })
}

/// The chart's platform ConfigMap for namespace `clinical`.
fn rendered_mesh_configmap() -> BTreeMap<String, String> {
    let root = workspace_root();
    let out = Command::new(helm())
        .arg("template")
        .arg("hallpass")
        .arg(root.join("charts/hallpass"))
        .args(["--namespace", "hallpass-system"])
        .args(["--set", "policy.namespaces={clinical}"])
        .args(["--set", "trustDomain=hospital.example"])
        .arg("--set-file")
        .arg(format!(
            "policy.mesh.content={}",
            root.join("examples/kubernetes/policy/mesh.yaml").display()
        ))
        .args(["--show-only", "templates/mesh-configmap.yaml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    configmap_data(&String::from_utf8(out.stdout).unwrap())
}

fn metric(admin: SocketAddr, series: &str) -> Option<u64> {
    let metrics = http(admin, "GET", "/metrics", &[]).unwrap().body;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{series} ")))
        .and_then(|v| v.trim().parse().ok())
}

fn reloads(admin: SocketAddr, result: &str) -> u64 {
    metric(
        admin,
        &format!("hallpass_policy_reloads_total{{result=\"{result}\"}}"),
    )
    .unwrap_or(0)
}

/// Wait (bounded) until the `result` reload counter passes `above`.
fn wait_reload(admin: SocketAddr, result: &str, above: u64, sidecar: &Proc) -> u64 {
    for _ in 0..300 {
        let now = reloads(admin, result);
        if now > above {
            return now;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no {result} reload after {above}\n{}", sidecar.output());
}

fn call(caller: &str, port: u16) -> (u16, Option<String>) {
    let r = http(
        addr(port),
        "GET",
        "/patients/p-1/results",
        &[("x-demo-caller", caller)],
    )
    .unwrap();
    (r.status, r.headers.get("x-hallpass-reason").cloned())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn the_charts_layout_team_rules_owner_scope_and_a_platform_revocation_through_envoy() {
    let work = Workdir::new().unwrap();
    let app = EchoApp::start().unwrap();
    let ports = Ports::fresh(app.addr().port()).unwrap();
    let root = work.path().join("etc-hallpass");
    let state = work.path().join("state");
    std::fs::create_dir(&state).unwrap();

    // The platform's ConfigMap as the chart renders it, at the paths the
    // injector mounts it (moved under this test's directory).
    let mesh_data = rendered_mesh_configmap();
    assert_eq!(
        mesh_data.keys().collect::<Vec<_>>(),
        ["break-glass.yaml", "config.yaml", "policy.yaml"]
    );
    let mesh_dir = root.join("mesh");
    let team_dir = root.join("team");
    let relocate = |text: &str| {
        text.replace("/etc/hallpass/mesh/", &format!("{}/", mesh_dir.display()))
            .replace("/etc/hallpass/team/", &format!("{}/", team_dir.display()))
            .replace("/var/lib/hallpass", &state.display().to_string())
    };
    let config = relocate(&mesh_data["config.yaml"]);
    assert!(config.contains("owner: workload_namespace"), "{config}");
    // The workload API is the injector's (SPIFFE_ENDPOINT_SOCKET); here the
    // mesh CA is a file.
    let config = format!(
        "{config}\ntrust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: {}/bundle.pem\n",
        work.path().join("certs").display()
    );
    let mut mesh = ConfigMapVolume::new(mesh_dir.clone());
    let mut platform = mesh_data.clone();
    platform.insert("config.yaml".into(), config);
    mesh.write(&platform);
    // The namespace's team has not written its ConfigMap yet.
    let mut team = ConfigMapVolume::new(team_dir.clone());

    let mut cmd = Command::new(hallpass_bin().unwrap());
    cmd.arg("serve")
        .arg("--config")
        .arg(mesh_dir.join("config.yaml"))
        .env_remove("SPIFFE_ENDPOINT_SOCKET")
        .env(
            "HALLPASS_AUTHZ_LISTEN",
            format!("127.0.0.1:{}", ports.authz),
        )
        .env(
            "HALLPASS_ADMIN_LISTEN",
            format!("127.0.0.1:{}", ports.admin),
        )
        .env("HALLPASS_IDENTITY_X509_FROM", "peer_certificate")
        .env("HALLPASS_WORKLOAD_ID", LAB)
        .env("HALLPASS_POLICY_RELOAD_INTERVAL_SECONDS", "1")
        .env("HALLPASS_LOG", "info");
    let mut sidecar = Proc::spawn("hallpass", cmd, work.path().join("hallpass.log")).unwrap();
    let admin = addr(ports.admin);
    let mut ready = None;
    for _ in 0..300 {
        if let Ok(r) = http(admin, "GET", "/readyz", &[])
            && r.status == 200
        {
            ready = Some(r.body);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let Some(body) = ready else {
        panic!(
            "a namespace without a team ConfigMap must still start and be ready\n{}",
            sidecar.output()
        );
    };
    let (_callee, _caller, _) = work.start_envoy_pair("k8s", "callee.yaml", &ports).unwrap();

    // 1. No team rules: every call denied, and visibly so.
    assert!(
        body.starts_with(&format!(
            "ready\nwarning: workload.id {LAB} is not a destination in the policy, so every call to it is denied"
        )),
        "{body}"
    );
    assert_eq!(metric(admin, "hallpass_policy_workload_defined"), Some(0));
    // The chart's break-glass overlay (no grants) is where the config says.
    assert_eq!(
        metric(
            admin,
            "hallpass_break_glass_overlay_reloads_total{result=\"failure\"}"
        )
        .unwrap_or(0),
        0,
        "{}",
        sidecar.output()
    );
    assert_eq!(
        call("ehr-api", ports.caller),
        (403, Some("no_matching_rule".into())),
        "{}",
        sidecar.output()
    );

    // 2. The lab team applies its own ConfigMap (the shipped example).
    let lab = configmap_data(&read(
        &workspace_root().join("examples/kubernetes/teams/clinical.yaml"),
    ));
    let successes = reloads(admin, "success");
    team.write(&lab);
    let successes = wait_reload(admin, "success", successes, &sidecar);
    assert_eq!(call("ehr-api", ports.caller).0, 200, "{}", sidecar.output());
    assert_eq!(
        call("billing", ports.caller),
        (403, Some("no_matching_rule".into()))
    );
    assert_eq!(http(admin, "GET", "/readyz", &[]).unwrap().body, "ready\n");
    assert_eq!(metric(admin, "hallpass_policy_workload_defined"), Some(1));

    // 3. The team also writes a rule for the pharmacy's destination: outside
    // its namespace, so the whole set is refused, the failure counted, and
    // the last good set keeps answering.
    let mut overreach = lab.clone();
    overreach.insert(
        "pharmacy-grab.yaml".into(),
        "version: 1\nworkloads:\n  spiffe://hospital.example/ns/pharmacy/sa/pharmacy:\n    allow:\n      \
         - name: billing-dispenses\n        from: [spiffe://hospital.example/ns/billing/sa/billing]\n"
            .into(),
    );
    let failures = reloads(admin, "failure");
    team.write(&overreach);
    wait_reload(admin, "failure", failures, &sidecar);
    assert_eq!(call("ehr-api", ports.caller).0, 200);
    assert_eq!(
        call("billing", ports.caller),
        (403, Some("no_matching_rule".into()))
    );
    let log = sidecar.output();
    assert!(
        log.contains("pharmacy-grab.yaml"),
        "the refusal names the file:\n{log}"
    );
    assert!(
        !log.contains("/patients/p-1"),
        "a raw path reached the log:\n{log}"
    );

    // The team takes it back.
    team.write(&lab);
    let successes = wait_reload(admin, "success", successes, &sidecar);

    // 4. The platform revokes the EHR in its ConfigMap: in force at the
    // next reload, without touching the team's.
    let mut revoking = platform.clone();
    revoking.insert(
        "policy.yaml".into(),
        read(&workspace_root().join("examples/kubernetes/policy/mesh.yaml"))
            .replace("ids: [", &format!("ids: [{EHR}, ")),
    );
    mesh.write(&revoking);
    wait_reload(admin, "success", successes, &sidecar);
    let (status, reason) = call("ehr-api", ports.caller);
    assert_eq!(reason.as_deref(), Some("revoked"), "{}", sidecar.output());
    assert_eq!(status, 401);

    let stopped = sidecar.terminate(Duration::from_secs(15)).unwrap();
    assert!(stopped.success(), "hallpass exited with {stopped}");
}
