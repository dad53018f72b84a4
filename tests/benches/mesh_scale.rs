//! Policy at mesh scale (issue 17): a benchmark, not a test.
//!
//! Through the same two real Envoys as `e2e_load` (caller Envoy --mTLS-->
//! callee Envoy --ext_authz--> `hallpass serve`), with policies written by
//! `hallpass_e2e::policy_gen`, it prints each figure of the goal
//! table, every one measured in this run:
//!
//! - hallpass CPU per denied call ÷ per allowed call (CPU from
//!   `/proc/<pid>/stat`, divided by requests; h2load `-c 4 -m 8`), with the
//!   callee's 10 rules and 10,000 rules (`/**` source patterns). The denied
//!   caller is proven and named by no rule (`unknown_source`);
//! - the sidecar's RSS with a 5,000-destination × 10-rule file, with
//!   `workload.id` set (it keeps its own destination) and without (it keeps
//!   every destination);
//! - start (spawn to `/readyz` 200) and reload time (the compile, from the
//!   sidecar's `policy loaded` log line) with that file, and the slowest
//!   check answered while it reloads;
//! - `hallpass policy check` on that file, and on a copy with three
//!   problems in three destinations (all three must be reported);
//! - RSS growth per rule between the 10- and the 10,000-rule sidecars.
//!
//! Run with `scripts/bench-mesh-scale.sh`. `BENCH_REQUESTS` sets the size
//! of each measured h2load run (default 20000).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hallpass_e2e::policy_gen::{CALLEE, PolicySpec, generate};
use hallpass_e2e::{
    EchoApp, Ports, Proc, Workdir, clock_ticks, cpu_seconds, free_port, hallpass_bin, rss_kib,
};

/// One h2load run: requests per second and the latencies (µs) sorted.
struct Run {
    rps: f64,
    latencies: Vec<f64>,
}

impl Run {
    fn pct(&self, p: f64) -> f64 {
        let last = self.latencies.len().saturating_sub(1);
        self.latencies
            .get(((last as f64) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    }
}

fn main() -> anyhow::Result<()> {
    let requests: u32 = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    if Command::new("h2load").arg("--version").output().is_err() {
        bail!("h2load is missing: run scripts/install-test-deps.sh (Debian nghttp2-client)");
    }
    let work = Workdir::new()?;
    let app = EchoApp::start()?;
    let ticks = clock_ticks()?;

    let write = |name: &str, spec: &PolicySpec| -> anyhow::Result<PathBuf> {
        let path = work.path().join(name);
        std::fs::write(&path, generate(spec))?;
        Ok(path)
    };
    let small = write("callee-10.yaml", &PolicySpec::callee(10))?;
    let large = write("callee-10000.yaml", &PolicySpec::callee(10_000))?;
    let mesh = write("mesh-5000x10.yaml", &PolicySpec::mesh(5_000, 10))?;
    let mesh_bytes = std::fs::metadata(&mesh)?.len();

    // 1. CPU per denied and per allowed call, and RSS per rule.
    let mut cpu = Vec::new();
    for (rules, policy) in [(10, &small), (10_000, &large)] {
        let mut ports = Ports::fresh(app.addr().port())?;
        ports.authz = free_port()?;
        let (sidecar, _) = start_sidecar(&work, &format!("cpu-{rules}"), &ports, policy, true)?;
        let (_callee, _caller, url) =
            work.start_envoy_pair(&rules.to_string(), "callee.yaml", &ports)?;
        h2load(&work, &url, "ehr-api", 200, 1_000, 4, 8).context("warm-up, allowed")?;
        h2load(&work, &url, "billing", 403, 1_000, 4, 8).context("warm-up, denied")?;
        // Interleaved rounds, so drift in the machine's load hits both alike.
        let (mut allowed, mut denied) = ((0.0, 0.0), (0.0, 0.0));
        for _ in 0..2 {
            for (caller, status, sum) in [
                ("ehr-api", 200, &mut allowed),
                ("billing", 403, &mut denied),
            ] {
                let before = cpu_seconds(sidecar.pid(), ticks)?;
                let run = h2load(&work, &url, caller, status, requests, 4, 8)?;
                sum.0 += cpu_seconds(sidecar.pid(), ticks)? - before;
                sum.1 += run.rps / 2.0;
            }
        }
        let per = |s: f64| s / f64::from(2 * requests) * 1e6;
        cpu.push((
            rules,
            per(allowed.0),
            per(denied.0),
            allowed.1,
            denied.1,
            rss_kib(sidecar.pid(), "VmRSS")?,
        ));
    }

    // 2. The mesh-wide file: start, RSS, reload, checks during the reload.
    let mut ports = Ports::fresh(app.addr().port())?;
    ports.authz = free_port()?;
    let (sidecar, start) = start_sidecar(&work, "mesh", &ports, &mesh, true)?;
    let start_compile_ms = last_load_ms(&sidecar)?;
    let (_callee, _caller, url) = work.start_envoy_pair("mesh", "callee.yaml", &ports)?;
    h2load(&work, &url, "ehr-api", 200, 1_000, 1, 1).context("warm-up, mesh")?;
    let rss_started = rss_kib(sidecar.pid(), "VmRSS")?;
    let quiet = h2load(&work, &url, "ehr-api", 200, 3_000, 1, 1)?;
    // Reload: a changed file, while one client keeps calling.
    let reload_url = url.clone();
    let reload_dir = work.path().join("reload");
    std::fs::create_dir_all(&reload_dir)?;
    let during = std::thread::spawn(move || {
        h2load_in(&reload_dir, &reload_url, "ehr-api", 200, 3_000, 1, 1)
    });
    std::thread::sleep(Duration::from_millis(100));
    let loads_before = count_loads(&sidecar);
    let mut text = std::fs::read_to_string(&mesh)?;
    text.push_str("# reloaded\n");
    let staged = work.path().join("mesh.staged");
    std::fs::write(&staged, text)?;
    std::fs::rename(&staged, &mesh)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while count_loads(&sidecar) == loads_before {
        if Instant::now() > deadline {
            bail!(
                "the changed policy was not loaded within 30 s\n{}",
                sidecar.output()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let reload_ms = last_load_ms(&sidecar)?;
    let during = during
        .join()
        .map_err(|_| anyhow::anyhow!("h2load thread panicked"))??;
    let rss_reloaded = rss_kib(sidecar.pid(), "VmRSS")?;
    let hwm = rss_kib(sidecar.pid(), "VmHWM")?;
    drop(sidecar);

    // The same file without workload.id: every destination kept.
    let mut ports = Ports::fresh(app.addr().port())?;
    ports.authz = free_port()?;
    let (whole, _) = start_sidecar(&work, "mesh-whole", &ports, &mesh, false)?;
    let rss_whole = rss_kib(whole.pid(), "VmRSS")?;
    drop(whole);

    // 3. `policy check` on the file, and on a copy with three problems.
    let check_clean = policy_check(&mesh)?;
    if !check_clean.1 {
        bail!("policy check rejected the generated file");
    }
    let broken = work.path().join("mesh-broken.yaml");
    let text = std::fs::read_to_string(&mesh)?;
    // One problem of each kind in three destinations' first rules.
    let text = inject(
        &text,
        "ns/svc-10/sa/svc-10:\n",
        "from: [",
        "from: [not-an-id, ",
    )?;
    let text = inject(
        &text,
        "ns/svc-2000/sa/svc-2000:\n",
        "methods: [GET, POST]",
        "methods: [FETCH]",
    )?;
    let text = inject(
        &text,
        "ns/svc-4000/sa/svc-4000:\n",
        "        methods:",
        "        not_after: yesterday\n        methods:",
    )?;
    std::fs::write(&broken, text)?;
    let started = Instant::now();
    let out = Command::new(hallpass_bin()?)
        .args(["policy", "check"])
        .arg(&broken)
        .output()?;
    let check_broken = started.elapsed().as_secs_f64();
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let found = [
        "svc-10/sa/svc-10",
        "svc-2000/sa/svc-2000",
        "svc-4000/sa/svc-4000",
    ]
    .iter()
    .filter(|d| report.contains(*d))
    .count();

    // The table.
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "\nPolicy at mesh scale (hallpass behind real Envoys; h2load -c 4 -m 8, {requests} requests per run, 2 interleaved runs each; hallpass CPU from /proc)\n"
    );
    println!("| figure | measured | goal |\n|---|---:|---|");
    for (rules, allowed, denied, rps_allowed, rps_denied, _) in &cpu {
        println!(
            "| CPU per denied ÷ per allowed call, {rules} rules{} | {:.2} ({denied:.1} µs ÷ {allowed:.1} µs; {rps_denied:.0} ÷ {rps_allowed:.0} req/s) | ≤ 1.25 |",
            if *rules > 10 {
                " (`/**` source patterns)"
            } else {
                ""
            },
            denied / allowed,
        );
    }
    println!(
        "| sidecar RSS, {} destinations × 10 rules ({:.1} MB of YAML), workload.id set | {:.1} MiB after start, {:.1} MiB after a reload (peak {:.1} MiB) | ≤ 64 MB |",
        5_000,
        mesh_bytes as f64 / 1e6,
        mib(rss_started),
        mib(rss_reloaded),
        mib(hwm)
    );
    println!(
        "| the same without workload.id (every destination kept) | {:.1} MiB | (for comparison) |",
        mib(rss_whole)
    );
    println!(
        "| start: spawn to /readyz 200 (of which the policy load) | {:.2} s ({start_compile_ms} ms) | ≤ 1 s |",
        start.as_secs_f64()
    );
    println!("| reload: the policy load | {reload_ms} ms | ≤ 1 s |");
    println!(
        "| slowest check during the reload ÷ without one (-c 1 -m 1, 3000 requests) | {:.2} ({:.0} µs ÷ {:.0} µs; p99 {:.0} ÷ {:.0} µs) | decisions never wait |",
        during.pct(1.0) / quiet.pct(1.0),
        during.pct(1.0),
        quiet.pct(1.0),
        during.pct(0.99),
        quiet.pct(0.99)
    );
    println!(
        "| `hallpass policy check` on that file; with 3 problems in 3 destinations | {:.2} s; {check_broken:.2} s, {found} of 3 reported | ≤ 2 s, every problem |",
        check_clean.0
    );
    let (small_rss, large_rss) = (
        cpu.first().map_or(0, |c| c.5),
        cpu.get(1).map_or(0, |c| c.5),
    );
    println!(
        "| RSS growth per rule, 10 → 10,000 rules (compiled rules and allocator-retained parse memory) | {:.1} KiB ({:.1} → {:.1} MiB) | published |",
        (large_rss.saturating_sub(small_rss)) as f64 / 9_990.0,
        mib(small_rss),
        mib(large_rss)
    );
    if out.status.success() || found != 3 {
        bail!("policy check must report all three problems; it reported {found}:\n{report}");
    }
    Ok(())
}

/// `text` with the first `from` after `anchor` replaced by `to`.
fn inject(text: &str, anchor: &str, from: &str, to: &str) -> anyhow::Result<String> {
    let at = text.find(anchor).context("anchor not in the file")?;
    let (head, tail) = text.split_at(at);
    Ok(format!("{head}{}", tail.replacen(from, to, 1)))
}

/// Start `hallpass serve` on `policy` (for the callee when `scoped`),
/// trusting the mesh CA; returns it and the time from spawn to ready.
fn start_sidecar(
    work: &Workdir,
    name: &str,
    ports: &Ports,
    policy: &Path,
    scoped: bool,
) -> anyhow::Result<(Proc, Duration)> {
    let workload = if scoped {
        format!("workload:\n  id: {CALLEE}\n")
    } else {
        String::new()
    };
    let config = format!(
        "authz:\n  listen: 127.0.0.1:{authz}\nadmin:\n  listen: 127.0.0.1:{admin}\n{workload}\
         policy:\n  file: {policy}\ntrust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: {certs}/bundle.pem\n\
         telemetry:\n  audit_log: off\n",
        authz = ports.authz,
        admin = ports.admin,
        policy = policy.display(),
        certs = work.path().join("certs").display(),
    );
    let path = work.path().join(format!("{name}.yaml"));
    std::fs::write(&path, config)?;
    let mut cmd = Command::new(hallpass_bin()?);
    cmd.arg("serve")
        .arg("--config")
        .arg(&path)
        .env("HALLPASS_LOG", "info");
    let started = Instant::now();
    let proc = Proc::spawn(name, cmd, work.path().join(format!("{name}.log")))?;
    let admin = SocketAddr::from(([127, 0, 0, 1], ports.admin));
    let deadline = started + Duration::from_secs(30);
    loop {
        if let Ok(resp) = hallpass_testkit::http::get(admin, "/readyz")
            && resp.status == 200
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("{name} not ready within 30 s\n{}", proc.output());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok((proc, started.elapsed()))
}

/// `policy loaded` lines in the sidecar's log.
fn count_loads(sidecar: &Proc) -> usize {
    sidecar.output().matches("\"policy loaded\"").count()
}

/// `elapsed_ms` of the last `policy loaded` log line.
fn last_load_ms(sidecar: &Proc) -> anyhow::Result<u64> {
    let output = sidecar.output();
    let line = output
        .lines()
        .rev()
        .find(|l| l.contains("\"policy loaded\""))
        .context("no policy loaded line")?;
    let json: serde_json::Value = serde_json::from_str(line)?;
    json.pointer("/fields/elapsed_ms")
        .and_then(serde_json::Value::as_u64)
        .with_context(|| format!("no elapsed_ms in {line}"))
}

/// `hallpass policy check FILE`: seconds taken and whether it passed.
fn policy_check(file: &Path) -> anyhow::Result<(f64, bool)> {
    let started = Instant::now();
    let out = Command::new(hallpass_bin()?)
        .args(["policy", "check"])
        .arg(file)
        .output()?;
    Ok((started.elapsed().as_secs_f64(), out.status.success()))
}

fn h2load(
    work: &Workdir,
    url: &str,
    caller: &str,
    status: u16,
    n: u32,
    clients: u32,
    streams: u32,
) -> anyhow::Result<Run> {
    h2load_in(work.path(), url, caller, status, n, clients, streams)
}

/// Run h2load as `caller` (the caller Envoy's `x-demo-caller`); every
/// request must get `status`.
fn h2load_in(
    dir: &Path,
    url: &str,
    caller: &str,
    status: u16,
    n: u32,
    clients: u32,
    streams: u32,
) -> anyhow::Result<Run> {
    let log = dir.join("h2load.log");
    // h2load appends to an existing log file.
    let _ = std::fs::remove_file(&log);
    let out = Command::new("h2load")
        .args(["-n", &n.to_string(), "-c", &clients.to_string()])
        .args(["-m", &streams.to_string(), "-t", "1"])
        .args(["-H", &format!("x-demo-caller: {caller}"), "--log-file"])
        .arg(&log)
        .arg(url)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rps = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("finished in ")
                .and_then(|r| r.split(", ").nth(1))
        })
        .and_then(|s| s.trim_end_matches(" req/s").parse::<f64>().ok())
        .with_context(|| format!("cannot read h2load output:\n{text}"))?;
    let want = status.to_string();
    let mut latencies = Vec::new();
    for line in std::fs::read_to_string(&log)?.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        let (Some(got), Some(us)) = (cols.get(1), cols.get(2)) else {
            continue;
        };
        if *got != want {
            bail!("a request as {caller} got status {got}, not {want}\n{text}");
        }
        latencies.push(us.parse::<f64>()?);
    }
    if latencies.len() != n as usize {
        bail!("h2load logged {} of {n} requests\n{text}", latencies.len());
    }
    latencies.sort_by(f64::total_cmp);
    Ok(Run { rps, latencies })
}
