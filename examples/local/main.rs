//! `hallpass-local-mesh`: a small hospital mesh on one machine, no containers.
//!
//! It starts, on loopback only: an echo app, an inbound Envoy (mTLS +
//! ext_authz) and a `hallpass serve` sidecar for each destination
//! (lab-results, pharmacy, billing); an outbound Envoy for each caller
//! (ehr-api, pharmacy, billing, a retired fax gateway, an imaging vendor in a
//! federated trust domain); and Prometheus with hallpass's alert rules. It then
//! plays a normal day, lets the sidecars learn their baselines, plays an
//! incident, and prints what an on-call engineer would see.
//!
//! `--policy FILE` uses another policy (edit it while the mesh runs: every
//! sidecar reloads it). `--quick` shortens every phase (the test command runs it). `--keep` leaves
//! everything running until Enter is pressed (or Ctrl-C, which the terminal
//! sends to every process of the group). Every process is stopped by PID on exit.

// A demo and test harness (in the test-only hallpass-e2e crate): it stops
// loudly on the unexpected, like a test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hallpass_e2e::{
    EchoApp, Proc, check_envoy_hardening, envoy_bin, free_ports, hallpass_bin, http,
    wait_for_http_ok, wait_for_port, workspace_root,
};
use hallpass_pki::{Ca, write_private};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

const HOSPITAL: &str = "hospital.example";
const VENDOR_TD: &str = "imaging-vendor.example";

/// `(name, SPIFFE ID)` of every workload; the trust domain is in the ID.
const WORKLOADS: &[(&str, &str)] = &[
    (
        "ehr-api",
        "spiffe://hospital.example/ns/clinical/sa/ehr-api",
    ),
    (
        "lab-results",
        "spiffe://hospital.example/ns/clinical/sa/lab-results",
    ),
    (
        "pharmacy",
        "spiffe://hospital.example/ns/pharmacy/sa/pharmacy",
    ),
    ("billing", "spiffe://hospital.example/ns/billing/sa/billing"),
    (
        "fax-gateway",
        "spiffe://hospital.example/ns/legacy/sa/fax-gateway",
    ),
    ("vendor", "spiffe://imaging-vendor.example/uploader"),
];
const DESTINATIONS: &[&str] = &["lab-results", "pharmacy", "billing"];
const CALLERS: &[&str] = &["ehr-api", "pharmacy", "billing", "fax-gateway", "vendor"];

/// Take the next port of the pool.
trait NextPort {
    fn next_port(&mut self) -> anyhow::Result<u16>;
}

impl<I: Iterator<Item = u16>> NextPort for I {
    fn next_port(&mut self) -> anyhow::Result<u16> {
        self.next().context("port pool exhausted")
    }
}

fn id_of(name: &str) -> &'static str {
    WORKLOADS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, id)| *id)
        .unwrap_or_default()
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Timings of one run.
#[derive(Debug, Clone, Copy)]
struct Pace {
    learning: Duration,
    normal_rounds: u32,
    spike: u32,
}

struct Mesh {
    dir: PathBuf,
    policy: PathBuf,
    procs: Vec<Proc>,
    _apps: Vec<EchoApp>,
    outbound: BTreeMap<&'static str, u16>,
    admin: BTreeMap<&'static str, u16>,
    prometheus: u16,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let keep = args.iter().any(|a| a == "--keep");
    let pace = if quick {
        Pace {
            learning: Duration::from_secs(6),
            normal_rounds: 6,
            spike: 120,
        }
    } else {
        Pace {
            learning: Duration::from_secs(15),
            normal_rounds: 20,
            spike: 300,
        }
    };
    let policy = match args.iter().position(|a| a == "--policy") {
        Some(i) => std::fs::canonicalize(args.get(i + 1).context("--policy needs a file")?)?,
        None => workspace_root().join("examples/policies/clinical-mesh.yaml"),
    };
    let base = match args.iter().position(|a| a == "--dir") {
        Some(i) => PathBuf::from(args.get(i + 1).context("--dir needs a path")?),
        None => std::env::temp_dir().join(format!("hallpass-local-mesh-{}", std::process::id())),
    };
    std::fs::create_dir_all(&base)?;
    let started = Instant::now();
    println!("hallpass local mesh: working directory {}", base.display());
    // A port chosen free can be taken by another program before our process
    // binds it; then start again with new ports (bounded).
    let mut attempt = 0;
    let mesh = loop {
        attempt += 1;
        let dir = if attempt == 1 {
            base.clone()
        } else {
            base.join(format!("retry-{attempt}"))
        };
        match Mesh::start(&dir, pace, &policy) {
            Ok(mesh) => break mesh,
            Err(e) if attempt < 3 => eprintln!("mesh start failed, retrying with new ports: {e:#}"),
            Err(e) => return Err(e),
        }
    };
    println!(
        "started {} processes in {:.1}s; playing a normal day",
        mesh.procs.len(),
        started.elapsed().as_secs_f64()
    );

    let normal = mesh.normal_day(pace)?;
    // Let the learning windows close, then keep the normal traffic going.
    let learning_done = started + pace.learning + Duration::from_secs(2);
    while Instant::now() < learning_done {
        mesh.normal_day(Pace {
            normal_rounds: 1,
            ..pace
        })?;
        std::thread::sleep(Duration::from_millis(300));
    }
    mesh.wait_for_history(pace)?;
    println!("baselines learned ({normal} normal calls); now an incident");
    let incident = mesh.incident(pace)?;
    let summary = mesh.on_call_summary(&incident)?;
    println!("{summary}");
    if keep {
        println!(
            "\nStill running (Prometheus on http://127.0.0.1:{}). Press Enter to stop.",
            mesh.prometheus
        );
        let (tx, rx) = std::sync::mpsc::channel();
        ctrlc_wait(tx);
        let _ = rx.recv();
    }
    drop(mesh);
    Ok(())
}

/// Signal `tx` when a line (or end of input) arrives on standard input.
fn ctrlc_wait(tx: std::sync::mpsc::Sender<()>) {
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        let _ = tx.send(());
    });
}

impl Mesh {
    fn start(dir: &Path, pace: Pace, policy: &Path) -> anyhow::Result<Mesh> {
        let certs = dir.join("certs");
        std::fs::create_dir_all(&certs)?;
        let hospital = Ca::root(HOSPITAL)?;
        let vendor = Ca::root(VENDOR_TD)?;
        std::fs::write(certs.join("bundle-hospital.pem"), hospital.cert_pem())?;
        std::fs::write(certs.join("bundle-vendor.pem"), vendor.cert_pem())?;
        std::fs::write(
            certs.join("mesh-bundle.pem"),
            format!("{}{}", hospital.cert_pem(), vendor.cert_pem()),
        )?;
        for (name, id) in WORKLOADS {
            let ca = if id.contains(VENDOR_TD) {
                &vendor
            } else {
                &hospital
            };
            let svid = ca.issue(id)?;
            std::fs::write(certs.join(format!("{name}.pem")), svid.full_chain_pem())?;
            write_private(&certs.join(format!("{name}.key")), &svid.key_pem)?;
        }
        let envoy = envoy_bin()?;
        let hallpass = hallpass_bin()?;
        let mut procs = Vec::new();
        let mut apps = Vec::new();
        let mut inbound = BTreeMap::new();
        let mut admin = BTreeMap::new();
        // Every port of the run, distinct, chosen up front.
        let mut ports = free_ports(DESTINATIONS.len() * 3 + CALLERS.len() + 1)?.into_iter();
        for dest in DESTINATIONS {
            let app = EchoApp::start()?;
            let (authz, admin_port, in_port) =
                (ports.next_port()?, ports.next_port()?, ports.next_port()?);
            let config = hallpass_config(dir, dest, authz, admin_port, pace, policy);
            let config_path = dir.join(format!("hallpass-{dest}.yaml"));
            std::fs::write(&config_path, config)?;
            let mut cmd = Command::new(&hallpass);
            cmd.args(["serve", "--config"]).arg(&config_path).env(
                "HALLPASS_LOG",
                std::env::var("MESH_HALLPASS_LOG").unwrap_or_else(|_| "warn".into()),
            );
            procs.push(Proc::spawn(
                &format!("hallpass-{dest}"),
                cmd,
                dir.join(format!("hallpass-{dest}.log")),
            )?);
            let envoy_config = dir.join(format!("envoy-inbound-{dest}.json"));
            write_envoy_config(
                &envoy_config,
                &inbound_envoy(&certs, dest, in_port, authz, app.addr().port()),
            )?;
            procs.push(spawn_envoy(
                &envoy,
                &envoy_config,
                dir,
                &format!("envoy-inbound-{dest}"),
            )?);
            inbound.insert(*dest, in_port);
            admin.insert(*dest, admin_port);
            apps.push(app);
        }
        let mut outbound = BTreeMap::new();
        for caller in CALLERS {
            let port = ports.next_port()?;
            let config = dir.join(format!("envoy-outbound-{caller}.json"));
            write_envoy_config(&config, &outbound_envoy(&certs, caller, port, &inbound))?;
            procs.push(spawn_envoy(
                &envoy,
                &config,
                dir,
                &format!("envoy-outbound-{caller}"),
            )?);
            outbound.insert(*caller, port);
        }
        let prometheus = ports.next_port()?;
        procs.push(start_prometheus(dir, prometheus, &admin)?);

        for (dest, port) in &admin {
            wait_for_http_ok(addr(*port), "/readyz", Duration::from_secs(30))
                .with_context(|| format!("hallpass for {dest} not ready"))?;
        }
        for port in inbound.values().chain(outbound.values()) {
            wait_for_port(addr(*port), Duration::from_secs(30))?;
        }
        wait_for_http_ok(addr(prometheus), "/-/ready", Duration::from_secs(30))
            .context("Prometheus not ready")?;
        // A port answering is not proof that our process answers on it.
        for proc in &mut procs {
            if !proc.is_running() {
                bail!("{} exited during start:\n{}", proc.name(), proc.output());
            }
        }
        Ok(Mesh {
            dir: dir.to_path_buf(),
            policy: policy.to_path_buf(),
            procs,
            _apps: apps,
            outbound,
            admin,
            prometheus,
        })
    }

    /// One call through `caller`'s outbound Envoy to `dest`; returns the status.
    fn call(
        &self,
        caller: &str,
        dest: &str,
        method: &str,
        path: &str,
        grpc: bool,
    ) -> anyhow::Result<u16> {
        let port = self
            .outbound
            .get(caller)
            .copied()
            .context("unknown caller")?;
        let mut headers = vec![("host", dest)];
        if grpc {
            headers.push(("content-type", "application/grpc"));
        }
        // `host` is set by `http`; the route matches on it.
        let response = http_with_host(addr(port), method, path, dest, &headers[1..])?;
        Ok(response)
    }

    fn normal_day(&self, pace: Pace) -> anyhow::Result<u32> {
        let mut calls = 0;
        for round in 0..pace.normal_rounds {
            let mrn = format!("MRN-{:05}", 1000 + round);
            for (caller, dest, method, path, grpc) in [
                (
                    "ehr-api",
                    "lab-results",
                    "GET",
                    format!("/patients/{mrn}/results"),
                    false,
                ),
                (
                    "ehr-api",
                    "lab-results",
                    "GET",
                    format!("/patients/{mrn}/results/{round}"),
                    false,
                ),
                (
                    "pharmacy",
                    "lab-results",
                    "POST",
                    "/lab.v1.Results/GetResult".to_owned(),
                    true,
                ),
                ("ehr-api", "billing", "POST", "/charges".to_owned(), false),
                (
                    "ehr-api",
                    "pharmacy",
                    "POST",
                    "/prescriptions".to_owned(),
                    false,
                ),
                (
                    "vendor",
                    "lab-results",
                    "POST",
                    "/imaging/uploads".to_owned(),
                    false,
                ),
            ] {
                let status = self.call(caller, dest, method, &path, grpc)?;
                if status != 200 {
                    bail!("normal traffic {caller} -> {dest} {method} {path} got {status}");
                }
                calls += 1;
            }
        }
        Ok(calls)
    }

    fn incident(&self, pace: Pace) -> anyhow::Result<Vec<(String, u16)>> {
        let mut seen = Vec::new();
        // A burst on a normal edge: the rate-spike detector's case. It
        // comes first: the demo's new-path alert looks back only seconds
        // (`offset 5s`), so the new edges must be read soon after they appear.
        for i in 0..pace.spike {
            self.call(
                "ehr-api",
                "lab-results",
                "GET",
                &format!("/patients/MRN-{:05}/results", 2000 + i),
                false,
            )?;
        }
        seen.push((
            format!("EHR bursts {} reads of lab results", pace.spike),
            200,
        ));
        let mut step = |what: &str,
                        caller: &str,
                        dest: &str,
                        method: &str,
                        path: &str|
         -> anyhow::Result<()> {
            let status = self.call(caller, dest, method, path, false)?;
            seen.push((what.to_owned(), status));
            Ok(())
        };
        step(
            "billing suddenly pulls lab results",
            "billing",
            "lab-results",
            "GET",
            "/patients/MRN-01001/results",
        )?;
        step(
            "billing pulls more lab results",
            "billing",
            "lab-results",
            "GET",
            "/patients/MRN-01002/results",
        )?;
        step(
            "the retired fax gateway tries again",
            "fax-gateway",
            "lab-results",
            "GET",
            "/patients/MRN-01001/results",
        )?;
        step(
            "the vendor calls outside its grant",
            "vendor",
            "lab-results",
            "GET",
            "/patients/MRN-01001/results",
        )?;
        step(
            "the vendor uses its expired pilot grant",
            "vendor",
            "lab-results",
            "GET",
            "/imaging/studies/7",
        )?;
        step(
            "billing writes prescriptions (pharmacy is in audit mode)",
            "billing",
            "pharmacy",
            "POST",
            "/prescriptions",
        )?;
        Ok(seen)
    }

    /// Keep the normal day going until Prometheus's look-back (the demo's
    /// rules use `offset 5s`) already holds every normal call path, so none
    /// of them reads as new when the incident starts. Bounded: a slow
    /// machine gets a clear error, not a wrong demo.
    fn wait_for_history(&self, pace: Pace) -> anyhow::Result<()> {
        let count = |promql: &str| -> anyhow::Result<u64> {
            Ok(self
                .query(promql)?
                .first()
                .and_then(|r| r["value"][1].as_str())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0))
        };
        for _ in 0..60 {
            let now = count("count(group by (source, destination) (hallpass_decisions_total))")?;
            let before = count(
                "count(group by (source, destination) \
                 (max_over_time(hallpass_decisions_total[1h] offset 6s)))",
            )?;
            if now > 0 && before == now {
                return Ok(());
            }
            self.normal_day(Pace {
                normal_rounds: 1,
                ..pace
            })?;
            std::thread::sleep(Duration::from_millis(300));
        }
        bail!("Prometheus did not hold the normal day's call paths in time")
    }

    fn query(&self, promql: &str) -> anyhow::Result<Vec<Value>> {
        let path = format!(
            "/api/v1/query?query={}",
            utf8_percent_encode(promql, NON_ALPHANUMERIC)
        );
        let response = http(addr(self.prometheus), "GET", &path, &[])?;
        let body: Value = serde_json::from_str(&response.body)
            .with_context(|| format!("Prometheus said: {}", response.body))?;
        Ok(body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    fn on_call_summary(&self, incident: &[(String, u16)]) -> anyhow::Result<String> {
        // Wait until Prometheus has scraped and evaluated the incident: the
        // mesh-wide new-path alert fires and the burst is counted as a rate
        // spike (bounded). A fixed sleep raced the alert's short look-back on
        // a loaded machine.
        std::thread::sleep(Duration::from_secs(2));
        for _ in 0..40 {
            let new_path = self
                .firing()?
                .iter()
                .any(|a| a == "HallpassMeshNewCallPath");
            let spike = !self
                .query("hallpass_call_path_anomalies_total{kind=\"rate_spike\"} > 0")?
                .is_empty();
            if new_path && spike {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let mut out = String::from("\n=== what happened ===\n");
        for (what, status) in incident {
            out.push_str(&format!("  {status}  {what}\n"));
        }
        out.push_str(
            "\n=== denials by reason (Prometheus: sum by source, destination, reason) ===\n",
        );
        for r in self.query(
            "sum by (source, destination, reason) (hallpass_decisions_total{decision!=\"allow\"})",
        )? {
            let m = &r["metric"];
            out.push_str(&format!(
                "  {:>4}  {} -> {}  {}\n",
                r["value"][1].as_str().unwrap_or("?"),
                short(m["source"].as_str().unwrap_or("")),
                short(m["destination"].as_str().unwrap_or("")),
                m["reason"].as_str().unwrap_or("")
            ));
        }
        out.push_str("\n=== call-path anomalies ===\n");
        for r in self
            .query("sum by (source, destination, kind) (hallpass_call_path_anomalies_total) > 0")?
        {
            let m = &r["metric"];
            out.push_str(&format!(
                "  {:>4}  {:<17} {} -> {}\n",
                r["value"][1].as_str().unwrap_or("?"),
                m["kind"].as_str().unwrap_or(""),
                short(m["source"].as_str().unwrap_or("")),
                short(m["destination"].as_str().unwrap_or(""))
            ));
        }
        out.push_str("\n=== alerts firing ===\n");
        let alerts = http(addr(self.prometheus), "GET", "/api/v1/alerts", &[])?;
        let alerts: Value = serde_json::from_str(&alerts.body)?;
        let mut firing: Vec<String> = alerts["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["state"] == "firing")
            .map(|a| {
                let l = &a["labels"];
                format!(
                    "  {:<32} {} -> {}",
                    l["alertname"].as_str().unwrap_or(""),
                    short(l["source"].as_str().unwrap_or("-")),
                    short(l["destination"].as_str().unwrap_or("-"))
                )
            })
            .collect();
        firing.sort();
        firing.dedup();
        if firing.is_empty() {
            out.push_str("  (none)\n");
        }
        for f in firing {
            out.push_str(&f);
            out.push('\n');
        }
        out.push_str("\n=== mesh-wide report (hallpass report --prometheus) ===\n");
        let report = Command::new(hallpass_bin()?)
            .arg("report")
            .arg("--prometheus")
            .arg(format!("http://127.0.0.1:{}", self.prometheus))
            .arg("--policy")
            .arg(&self.policy)
            .output()?;
        if !report.status.success() {
            bail!(
                "hallpass report --prometheus failed: {}",
                String::from_utf8_lossy(&report.stderr)
            );
        }
        for line in String::from_utf8_lossy(&report.stdout).lines().skip(1) {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
        out.push_str("\n=== where to look ===\n");
        for (dest, port) in &self.admin {
            out.push_str(&format!(
                "  {dest:<12} http://127.0.0.1:{port}/callgraph.html\n"
            ));
        }
        out.push_str(&format!(
            "  Prometheus   http://127.0.0.1:{}/alerts\n",
            self.prometheus
        ));
        out.push_str(&format!(
            "  audit logs   {}/audit-*.jsonl\n",
            self.dir.display()
        ));
        Ok(out)
    }

    /// Names of the alerts currently firing.
    fn firing(&self) -> anyhow::Result<Vec<String>> {
        let alerts = http(addr(self.prometheus), "GET", "/api/v1/alerts", &[])?;
        let alerts: Value = serde_json::from_str(&alerts.body)?;
        Ok(alerts["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["state"] == "firing")
            .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_owned))
            .collect())
    }
}

fn short(id: &str) -> String {
    id.rsplit('/').next().unwrap_or(id).to_owned()
}

/// An HTTP/1.1 request with an explicit Host header (the outbound route
/// key); the status.
fn http_with_host(
    target: SocketAddr,
    method: &str,
    path: &str,
    host: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<u16> {
    let request = hallpass_testkit::http::Request::new(method, path)
        .host(host)
        .headers(headers);
    Ok(hallpass_testkit::http::send(target, &request)
        .with_context(|| format!("{method} http://{host}{path} via {target}"))?
        .status)
}

/// Write an Envoy config, once it is as strict as the shipped ones
/// (`hallpass_e2e::check_envoy_hardening`, docs/envoy.md).
fn write_envoy_config(path: &Path, config: &Value) -> anyhow::Result<()> {
    check_envoy_hardening(config).with_context(|| format!("{} is not hardened", path.display()))?;
    std::fs::write(path, serde_json::to_string_pretty(config)?)?;
    Ok(())
}

fn spawn_envoy(envoy: &Path, config: &Path, dir: &Path, name: &str) -> anyhow::Result<Proc> {
    let mut cmd = Command::new(envoy);
    cmd.arg("-c")
        .arg(config)
        .args([
            "--use-dynamic-base-id",
            "--concurrency",
            "1",
            "-l",
            "warning",
        ])
        .current_dir(dir);
    Proc::spawn(name, cmd, dir.join(format!("{name}.log")))
}

fn hallpass_config(
    dir: &Path,
    dest: &str,
    authz: u16,
    admin: u16,
    pace: Pace,
    policy: &Path,
) -> String {
    let certs = dir.join("certs");
    format!(
        "authz:\n  listen: 127.0.0.1:{authz}\nadmin:\n  listen: 127.0.0.1:{admin}\nworkload:\n  id: {id}\n\
         trust:\n  bundles:\n    - trust_domain: {HOSPITAL}\n      x509: {c}/bundle-hospital.pem\n    - trust_domain: {VENDOR_TD}\n      x509: {c}/bundle-vendor.pem\n\
         policy:\n  file: {policy}\n\
         telemetry:\n  audit_log: {d}/audit-{dest}.jsonl\n  baseline: {d}/baseline-{dest}.json\n  learning_window_seconds: {learn}\n  rate_window_seconds: 2\n  rate_spike_min_requests: 20\n",
        id = id_of(dest),
        c = certs.display(),
        d = dir.display(),
        policy = policy.display(),
        learn = pace.learning.as_secs(),
    )
}

fn tls_context(certs: &Path, name: &str) -> Value {
    json!({
        "tls_params": {"tls_maximum_protocol_version": "TLSv1_3"},
        "tls_certificates": [{
            "certificate_chain": {"filename": certs.join(format!("{name}.pem"))},
            "private_key": {"filename": certs.join(format!("{name}.key"))}
        }],
        "validation_context": {"trusted_ca": {"filename": certs.join("mesh-bundle.pem")}}
    })
}

fn static_cluster(name: &str, port: u16, http2: bool) -> Value {
    let mut cluster = json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}
    });
    if http2 {
        cluster["typed_extension_protocol_options"] = json!({
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}}
            }
        });
    }
    cluster
}

fn admin_block() -> Value {
    json!({"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}})
}

/// The callee side: mTLS, path normalisation, ext_authz to hallpass, app.
fn inbound_envoy(certs: &Path, dest: &str, port: u16, authz: u16, app: u16) -> Value {
    json!({
        "admin": admin_block(),
        "static_resources": {
            "listeners": [{
                "name": "inbound",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                "filter_chains": [{
                    "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                        "require_client_certificate": true,
                        "common_tls_context": tls_context(certs, dest)
                    }},
                    "filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "inbound",
                        "codec_type": "AUTO",
                        "forward_client_cert_details": "SANITIZE",
                        "normalize_path": true,
                        "merge_slashes": true,
                        "path_with_escaped_slashes_action": "REJECT_REQUEST",
                        "common_http_protocol_options": {"headers_with_underscores_action": "REJECT_REQUEST"},
                        "route_config": {"name": "inbound", "virtual_hosts": [{"name": "app", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "app"}}]}]},
                        "http_filters": [
                            {"name": "envoy.filters.http.ext_authz", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
                                "transport_api_version": "V3",
                                "grpc_service": {"envoy_grpc": {"cluster_name": "hallpass"}, "timeout": "0.5s"},
                                "include_peer_certificate": true,
                                "failure_mode_allow": false,
                                "status_on_error": {"code": "Forbidden"}
                            }},
                            {"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
                        ]
                    }}]
                }]
            }],
            "clusters": [static_cluster("app", app, false), static_cluster("hallpass", authz, true)]
        }
    })
}

/// The caller side: plain HTTP in, the Host header picks the destination,
/// mTLS out with the caller's SVID, checking the destination's SPIFFE ID.
fn outbound_envoy(certs: &Path, caller: &str, port: u16, inbound: &BTreeMap<&str, u16>) -> Value {
    let hosts: Vec<Value> = inbound
        .keys()
        .map(|dest| json!({"name": dest, "domains": [dest], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": format!("to_{dest}")}}]}))
        .collect();
    let clusters: Vec<Value> = inbound
        .iter()
        .map(|(dest, in_port)| {
            let mut cluster = static_cluster(&format!("to_{dest}"), *in_port, true);
            let mut tls = tls_context(certs, caller);
            tls["alpn_protocols"] = json!(["h2"]);
            tls["validation_context"]["match_typed_subject_alt_names"] = json!([{"san_type": "URI", "matcher": {"exact": id_of(dest)}}]);
            cluster["transport_socket"] = json!({"name": "envoy.transport_sockets.tls", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "common_tls_context": tls
            }});
            cluster
        })
        .collect();
    json!({
        "admin": admin_block(),
        "static_resources": {
            "listeners": [{
                "name": "outbound",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "outbound",
                    "codec_type": "AUTO",
                    "normalize_path": true,
                    "merge_slashes": true,
                    "path_with_escaped_slashes_action": "REJECT_REQUEST",
                    "common_http_protocol_options": {"headers_with_underscores_action": "REJECT_REQUEST"},
                    "route_config": {"name": "outbound", "virtual_hosts": hosts},
                    "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]
                }}]}]
            }],
            "clusters": clusters
        }
    })
}

/// Prometheus scraping every sidecar, with hallpass's rules. The demo's
/// copies of the alert rules fire at once (`for: 0s`) and use short windows;
/// the shipped files are unit-tested by promtool with their real durations.
fn start_prometheus(dir: &Path, port: u16, admin: &BTreeMap<&str, u16>) -> anyhow::Result<Proc> {
    let rules_dir = workspace_root().join("examples/prometheus");
    let mut rule_files = Vec::new();
    for name in ["hallpass-alerts.yaml", "hallpass-mesh-rules.yaml"] {
        let source = rules_dir.join(name);
        if !source.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&source)?;
        let fast: String = text
            .lines()
            .map(|l| match l.trim_start().strip_prefix("for:") {
                Some(_) => format!("{}for: 0s", &l[..l.len() - l.trim_start().len()]),
                None => l.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n")
            // The normal day lasts longer than this offset, the incident less.
            .replace("offset 10m", "offset 5s");
        let target = dir.join(format!("demo-{name}"));
        std::fs::write(&target, fast)?;
        rule_files.push(target);
    }
    let mut config =
        String::from("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n");
    for f in &rule_files {
        config.push_str(&format!("  - {}\n", f.display()));
    }
    config.push_str("scrape_configs:\n  - job_name: hallpass\n    static_configs:\n");
    for (dest, port) in admin {
        config.push_str(&format!(
            "      - targets: ['127.0.0.1:{port}']\n        labels: {{workload: {dest}}}\n"
        ));
    }
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, config)?;
    let mut cmd = Command::new("prometheus");
    cmd.arg(format!("--config.file={}", path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("prometheus-data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn");
    Proc::spawn("prometheus", cmd, dir.join("prometheus.log"))
}
