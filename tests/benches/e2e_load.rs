//! End-to-end load benchmark through two real Envoys (a benchmark, not a test).
//!
//! caller Envoy --mTLS--> callee Envoy [ext_authz] --> echo app, driven by
//! h2load, the caller's leaf certificate forwarded to the authz server
//! (`include_peer_certificate`). Seven variants, all started at once and
//! measured in interleaved rounds (each round runs every variant, in an
//! order rotated from round to round), medians over the rounds:
//!
//! - `floor tcp`, `floor uds`: ext_authz to a server that answers OK without
//!   looking (a tonic server on tokio's default runtime, a worker per core;
//!   this benchmark's own binary started again as a separate process), over
//!   loopback TCP and a Unix socket: the floor no ext_authz server can beat;
//! - `floor tcp 1 worker`: the same on a one-worker runtime, the shape
//!   `hallpass serve` runs on (its ratios are still to `floor tcp`);
//! - `hallpass tcp`, `hallpass uds`: `hallpass serve` with a 200-rule policy,
//!   full X.509-SVID verification of the forwarded certificate, telemetry
//!   on and the audit log written to a file;
//! - `hallpass audit off`: the same over TCP, with `telemetry.audit_log: off`;
//! - `hallpass recommended`: the transport docs/envoy.md recommends (Unix
//!   socket, `allowed_headers` trimmed to what hallpass reads), audit log to
//!   a file (`examples/envoy/callee-recommended.yaml`).
//!
//! Figures per variant: loaded throughput (h2load `-c 8 -m 16`), the authz
//! server's CPU per check (user + system time from `/proc/<pid>/stat` over
//! the loaded run, divided by its requests), unloaded latency (`-c 1 -m 1`:
//! mean and p99) and the authz server's peak RSS (`VmHWM`) after the loaded
//! runs. Ratios are to the floor measured in the same run. A markdown table
//! goes to stdout, the numbers as JSON to `BENCH_JSON` (default
//! `target/bench-e2e.json`).
//!
//! With `E2E_HALLPASS_BASELINE_BIN` set, an eighth variant, `baseline tcp`,
//! runs that build of hallpass as `hallpass tcp` runs this one, to measure
//! what a change buys in the same run; `E2E_HALLPASS_BASELINE_ENV`
//! (`K=V,K=V`) sets environment variables for that variant only.
//!
//! Settings (environment): `BENCH_REQUESTS` (loaded run size, 20000),
//! `BENCH_IDLE_REQUESTS` (unloaded run size, 2000), `BENCH_ROUNDS` (3),
//! `BENCH_ONLY` (comma-separated variant names to run, floors always run),
//! `BENCH_PERF` (a variant name: after the rounds, one more loaded run of it
//! under `perf record --call-graph dwarf`, written to `BENCH_PERF_OUT`, default
//! `target/perf-e2e.data`; not counted in the figures). hallpass inherits
//! the environment (`TOKIO_WORKER_THREADS` tries another runtime shape); the
//! floors do not take it (`floor tcp 1 worker` sets its own).
//! Run with `scripts/bench-e2e.sh` (builds the release binary first).

// A benchmark stops loudly on the unexpected, like a test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse,
};
use envoy_types::ext_authz::v3::{CheckResponseExt, OkHttpResponseBuilder};
use hallpass_e2e::policy_gen::{PolicySpec, generate};
use hallpass_e2e::{
    EchoApp, Ports, Proc, Workdir, clock_ticks, cpu_seconds, rss_kib, wait_for_http_ok,
    workspace_root,
};

/// The environment variable that turns this binary into the floor server.
const FLOOR_ENV: &str = "HALLPASS_BENCH_FLOOR_LISTEN";

#[derive(Debug, Default)]
struct NoopAuthz;

#[tonic::async_trait]
impl Authorization for NoopAuthz {
    async fn check(
        &self,
        _: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        let mut response = CheckResponse::default();
        response
            .set_status(tonic::Status::ok(""))
            .set_http_response(OkHttpResponseBuilder::new());
        Ok(tonic::Response::new(response))
    }
}

/// The floor server: answers every Check OK, on `listen` (`host:port` or
/// `unix:PATH`), with hallpass's runtime shape and TCP_NODELAY.
fn serve_floor(listen: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let router =
            tonic::transport::Server::builder().add_service(AuthorizationServer::new(NoopAuthz));
        match listen.strip_prefix("unix:") {
            Some(path) => {
                let _ = std::fs::remove_file(path);
                let listener = tokio::net::UnixListener::bind(path)?;
                router
                    .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener))
                    .await?;
            }
            None => {
                let listener = tokio::net::TcpListener::bind(listen).await?;
                router
                    .serve_with_incoming(
                        tonic::transport::server::TcpIncoming::from(listener)
                            .with_nodelay(Some(true)),
                    )
                    .await?;
            }
        }
        anyhow::Ok(())
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    /// The no-op server; `one_worker`: on a one-worker tokio runtime (the
    /// shape `hallpass serve` uses), else tokio's default (one per core).
    Floor { one_worker: bool },
    /// `hallpass serve`; `baseline`: the binary of `E2E_HALLPASS_BASELINE_BIN`.
    Hallpass { audit: bool, baseline: bool },
}

#[derive(Debug, Clone, Copy)]
struct Variant {
    name: &'static str,
    server: Server,
    uds: bool,
    /// The shipped callee config.
    config: &'static str,
    /// The floor its ratios are taken to.
    floor: &'static str,
}

const VARIANTS: [Variant; 7] = [
    Variant {
        name: "floor tcp",
        server: Server::Floor { one_worker: false },
        uds: false,
        config: "callee.yaml",
        floor: "floor tcp",
    },
    Variant {
        name: "floor tcp 1 worker",
        server: Server::Floor { one_worker: true },
        uds: false,
        config: "callee.yaml",
        floor: "floor tcp",
    },
    Variant {
        name: "floor uds",
        server: Server::Floor { one_worker: false },
        uds: true,
        config: "callee-uds.yaml",
        floor: "floor uds",
    },
    Variant {
        name: "hallpass tcp",
        server: Server::Hallpass {
            audit: true,
            baseline: false,
        },
        uds: false,
        config: "callee.yaml",
        floor: "floor tcp",
    },
    Variant {
        name: "hallpass uds",
        server: Server::Hallpass {
            audit: true,
            baseline: false,
        },
        uds: true,
        config: "callee-uds.yaml",
        floor: "floor uds",
    },
    Variant {
        name: "hallpass audit off",
        server: Server::Hallpass {
            audit: false,
            baseline: false,
        },
        uds: false,
        config: "callee.yaml",
        floor: "floor tcp",
    },
    // The stretch goal compares it with the default-TCP floor.
    Variant {
        name: "hallpass recommended",
        server: Server::Hallpass {
            audit: true,
            baseline: false,
        },
        uds: true,
        config: "callee-recommended.yaml",
        floor: "floor tcp",
    },
];

/// One variant, running: its authz server, Envoys and URL.
struct Running {
    variant: Variant,
    server: Proc,
    _callee: Proc,
    _caller: Proc,
    url: String,
}

/// One round's figures of one variant.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    rps: f64,
    cpu_us: f64,
    idle_mean_us: f64,
    idle_p99_us: f64,
}

/// The medians of a variant, and its peak RSS.
#[derive(Debug, Clone, Copy)]
struct Figures {
    rps: f64,
    cpu_us: f64,
    idle_mean_us: f64,
    idle_p99_us: f64,
    peak_rss_mib: f64,
}

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    if let Ok(listen) = std::env::var(FLOOR_ENV) {
        return serve_floor(&listen);
    }
    let requests = env_u32("BENCH_REQUESTS", 20_000);
    let idle_requests = env_u32("BENCH_IDLE_REQUESTS", 2_000);
    let rounds = env_u32("BENCH_ROUNDS", 3).max(1);
    let only: Option<Vec<String>> = std::env::var("BENCH_ONLY")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
    if Command::new("h2load").arg("--version").output().is_err() {
        bail!("h2load is missing: run scripts/install-test-deps.sh (Debian nghttp2-client)");
    }
    let work = Workdir::new()?;
    let app = EchoApp::start()?;
    let policy = work.path().join("policy-200.yaml");
    std::fs::write(&policy, generate(&PolicySpec::callee(200)))?;
    let ticks = clock_ticks()?;

    let mut variants = VARIANTS.to_vec();
    // Another build of hallpass measured in the same run (what a change buys).
    if std::env::var_os("E2E_HALLPASS_BASELINE_BIN").is_some() {
        variants.push(Variant {
            name: "baseline tcp",
            server: Server::Hallpass {
                audit: true,
                baseline: true,
            },
            uds: false,
            config: "callee.yaml",
            floor: "floor tcp",
        });
    }
    let mut running = Vec::new();
    for variant in variants {
        let wanted = matches!(variant.server, Server::Floor { .. })
            || only
                .as_ref()
                .is_none_or(|o| o.iter().any(|n| n == variant.name));
        if wanted {
            running.push(start(&work, &app, &policy, variant, running.len())?);
        }
    }
    for r in &running {
        h2load(&work, &r.url, 1_000, 8, 16)
            .with_context(|| format!("warm-up of {}", r.variant.name))?;
    }

    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); running.len()];
    for round in 0..rounds as usize {
        for k in 0..running.len() {
            let i = (k + round) % running.len();
            let r = &running[i];
            let idle = h2load(&work, &r.url, idle_requests, 1, 1)?;
            let pid = r.server.pid();
            let before = cpu_seconds(pid, ticks)?;
            let loaded = h2load(&work, &r.url, requests, 8, 16)?;
            let after = cpu_seconds(pid, ticks)?;
            let sample = Sample {
                rps: loaded.rps,
                cpu_us: (after - before) * 1e6 / f64::from(requests),
                idle_mean_us: idle.mean(),
                idle_p99_us: idle.pct(0.99),
            };
            eprintln!(
                "round {round}: {:>20}: {:>7.0} req/s  {:>5.1} us CPU/check  unloaded mean {:>4.0} us  p99 {:>4.0} us",
                r.variant.name, sample.rps, sample.cpu_us, sample.idle_mean_us, sample.idle_p99_us
            );
            samples[i].push(sample);
        }
    }

    if let Ok(name) = std::env::var("BENCH_PERF") {
        let out = std::env::var_os("BENCH_PERF_OUT").map_or_else(
            || workspace_root().join("target/perf-e2e.data"),
            PathBuf::from,
        );
        let r = running
            .iter()
            .find(|r| r.variant.name == name)
            .with_context(|| format!("BENCH_PERF: no running variant {name:?}"))?;
        profile(&work, r, requests, &out)?;
        eprintln!("perf data of {name} written to {}", out.display());
    }

    let mut figures = Vec::new();
    for (r, s) in running.iter().zip(&samples) {
        let median = |f: fn(&Sample) -> f64| median(s.iter().map(f).collect());
        figures.push((
            r.variant,
            Figures {
                rps: median(|s| s.rps),
                cpu_us: median(|s| s.cpu_us),
                idle_mean_us: median(|s| s.idle_mean_us),
                idle_p99_us: median(|s| s.idle_p99_us),
                peak_rss_mib: rss_kib(r.server.pid(), "VmHWM")? as f64 / 1024.0,
            },
        ));
    }
    report(&figures, requests, idle_requests, rounds)?;
    drop(running);
    drop(app);
    Ok(())
}

/// Start a variant's authz server and its Envoy pair.
fn start(
    work: &Workdir,
    app: &EchoApp,
    policy: &Path,
    variant: Variant,
    index: usize,
) -> anyhow::Result<Running> {
    let ports = Ports::fresh(app.addr().port())?;
    let socket = format!("authz-{index}.sock");
    let listen = if variant.uds {
        format!("unix://{}", work.path().join(&socket).display())
    } else {
        format!("127.0.0.1:{}", ports.authz)
    };
    let name = format!("authz-{index}");
    let server = match variant.server {
        Server::Floor { one_worker } => {
            let mut cmd = Command::new(std::env::current_exe()?);
            let floor_listen = match listen.strip_prefix("unix://") {
                Some(path) => format!("unix:{path}"),
                None => listen.clone(),
            };
            // The floor keeps tokio's default shape whatever hallpass is tried with.
            cmd.env(FLOOR_ENV, floor_listen)
                .env_remove("TOKIO_WORKER_THREADS");
            if one_worker {
                cmd.env("TOKIO_WORKER_THREADS", "1");
            }
            let p = Proc::spawn(&name, cmd, work.path().join(format!("{name}.log")))?;
            if variant.uds {
                wait_for_file(&work.path().join(&socket), Duration::from_secs(20))?;
            } else {
                hallpass_e2e::wait_for_port(
                    SocketAddr::from(([127, 0, 0, 1], ports.authz)),
                    Duration::from_secs(20),
                )?;
            }
            p
        }
        Server::Hallpass { audit, baseline } => {
            let audit_log = if audit {
                work.path()
                    .join(format!("audit-{index}.jsonl"))
                    .display()
                    .to_string()
            } else {
                "off".to_owned()
            };
            let extra = format!(
                "trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: {}/bundle.pem\n\
                 telemetry:\n  audit_log: {audit_log}\n",
                work.path().join("certs").display()
            );
            let p = if baseline {
                let config = work.path().join(format!("{name}.yaml"));
                std::fs::write(
                    &config,
                    format!(
                        "authz:\n  listen: {listen}\nadmin:\n  listen: 127.0.0.1:{}\n\
                         workload:\n  id: {}\npolicy:\n  file: {}\n{extra}",
                        ports.admin,
                        hallpass_e2e::policy_gen::CALLEE,
                        policy.display()
                    ),
                )?;
                let mut cmd = Command::new(
                    std::env::var_os("E2E_HALLPASS_BASELINE_BIN").context("no baseline binary")?,
                );
                cmd.arg("serve").arg("--config").arg(&config);
                // `K=V,K=V`: the environment only the baseline runs with
                // (`TOKIO_WORKER_THREADS=1` tries another runtime shape).
                if let Ok(vars) = std::env::var("E2E_HALLPASS_BASELINE_ENV") {
                    for (k, v) in vars.split(',').filter_map(|kv| kv.split_once('=')) {
                        cmd.env(k, v);
                    }
                }
                Proc::spawn(&name, cmd, work.path().join(format!("{name}.log")))?
            } else {
                work.start_hallpass_with_policy(&name, &listen, ports.admin, policy, &extra)?
            };
            wait_for_http_ok(
                SocketAddr::from(([127, 0, 0, 1], ports.admin)),
                "/readyz",
                Duration::from_secs(20),
            )
            .with_context(|| p.output())?;
            p
        }
    };
    let (callee, caller, url) = work.start_envoy_pair_with(
        &index.to_string(),
        variant.config,
        &ports,
        &[("hallpass-authz.sock", &socket)],
    )?;
    Ok(Running {
        variant,
        server,
        _callee: callee,
        _caller: caller,
        url,
    })
}

fn wait_for_file(path: &Path, within: Duration) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if path.exists() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("{} did not appear within {within:?}", path.display())
}

/// One more loaded run of `r`, under `perf record -g` attached to its
/// authz server.
fn profile(work: &Workdir, r: &Running, requests: u32, out: &Path) -> anyhow::Result<()> {
    let mut perf = Command::new("perf")
        // DWARF unwinding: release builds keep no frame pointers.
        .args(["record", "-F", "999", "--call-graph", "dwarf,16384"])
        .args(["-p", &r.server.pid().to_string(), "-o"])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("perf is missing: apt-get install linux-perf")?;
    std::thread::sleep(Duration::from_millis(500));
    let run = h2load(work, &r.url, requests, 8, 16);
    let _ = Command::new("kill")
        .args(["-INT", &perf.id().to_string()])
        .status();
    perf.wait()?;
    run.map(|_| ())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn report(
    figures: &[(Variant, Figures)],
    requests: u32,
    idle_requests: u32,
    rounds: u32,
) -> anyhow::Result<()> {
    let floor = |name: &str| {
        figures
            .iter()
            .find(|(v, _)| v.name == name)
            .map(|(_, f)| *f)
            .with_context(|| format!("no {name} figures"))
    };
    let floor_tcp = floor("floor tcp")?;
    println!(
        "\nEnd-to-end through caller Envoy -> callee Envoy -> echo app; {rounds} interleaved rounds, medians. \
         Loaded: {requests} requests, h2load -c 8 -m 16. Unloaded: {idle_requests} requests, -c 1 -m 1."
    );
    println!(
        "CPU: the authz server's user+system time over the loaded run / requests. Ratios and deltas are to the floor named in the row, in this run.\n"
    );
    println!(
        "| variant | req/s | vs floor tcp | vs its floor | CPU µs/check | CPU vs its floor | unloaded mean µs | unloaded p99 µs | mean − floor µs | p99 − floor µs | peak RSS MiB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut json = Vec::new();
    for (v, f) in figures {
        let base = floor(v.floor)?;
        let row = serde_json::json!({
            "variant": v.name,
            "floor": v.floor,
            "rps": f.rps,
            "rps_vs_floor_tcp": f.rps / floor_tcp.rps,
            "rps_vs_floor": f.rps / base.rps,
            "cpu_us_per_check": f.cpu_us,
            "cpu_vs_floor": f.cpu_us / base.cpu_us,
            "unloaded_mean_us": f.idle_mean_us,
            "unloaded_p99_us": f.idle_p99_us,
            "unloaded_mean_over_floor_us": f.idle_mean_us - base.idle_mean_us,
            "unloaded_p99_over_floor_us": f.idle_p99_us - base.idle_p99_us,
            "peak_rss_mib": f.peak_rss_mib,
        });
        println!(
            "| {} ({}) | {:.0} | {:.2}x | {:.2}x | {:.1} | {:.2}x | {:.0} | {:.0} | {:+.0} | {:+.0} | {:.1} |",
            v.name,
            v.floor,
            f.rps,
            f.rps / floor_tcp.rps,
            f.rps / base.rps,
            f.cpu_us,
            f.cpu_us / base.cpu_us,
            f.idle_mean_us,
            f.idle_p99_us,
            f.idle_mean_us - base.idle_mean_us,
            f.idle_p99_us - base.idle_p99_us,
            f.peak_rss_mib
        );
        json.push(row);
    }
    let out = std::env::var_os("BENCH_JSON").map_or_else(
        || workspace_root().join("target/bench-e2e.json"),
        PathBuf::from,
    );
    let doc = serde_json::json!({
        "requests": requests,
        "idle_requests": idle_requests,
        "rounds": rounds,
        "load": "h2load -c 8 -m 16",
        "variants": json,
    });
    std::fs::write(&out, serde_json::to_string_pretty(&doc)?)?;
    println!("\nJSON: {}", out.display());
    Ok(())
}

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

    fn mean(&self) -> f64 {
        self.latencies.iter().sum::<f64>() / self.latencies.len().max(1) as f64
    }
}

/// Run h2load; every request must succeed with 200.
fn h2load(work: &Workdir, url: &str, n: u32, clients: u32, streams: u32) -> anyhow::Result<Run> {
    let log = work.path().join("h2load.log");
    // h2load appends to an existing log file.
    let _ = std::fs::remove_file(&log);
    let out = Command::new("h2load")
        .args(["-n", &n.to_string(), "-c", &clients.to_string()])
        .args(["-m", &streams.to_string(), "-t", "1"])
        .args(["-H", "x-demo-caller: ehr-api", "--log-file"])
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
    let mut latencies = Vec::new();
    for line in std::fs::read_to_string(&log)?.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 3 {
            continue;
        }
        if cols[1] != "200" {
            bail!(
                "a benchmark request got status {} (every variant must allow this call)\n{text}",
                cols[1]
            );
        }
        latencies.push(cols[2].parse::<f64>()?);
    }
    if latencies.len() != n as usize {
        bail!("h2load logged {} of {n} requests\n{text}", latencies.len());
    }
    latencies.sort_by(f64::total_cmp);
    Ok(Run { rps, latencies })
}
