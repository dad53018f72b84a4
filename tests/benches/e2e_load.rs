//! End-to-end load benchmark through two real Envoys (a benchmark, not a test).
//!
//! caller Envoy --mTLS--> callee Envoy [authz variant] --> echo app, driven by
//! h2load. Variants, all measured in one run on the same machine:
//!
//! - `none`: no authz filter;
//! - `rbac`: Envoy's own in-process RBAC filter;
//! - `ext_authz noop`: ext_authz to a server that answers OK without looking,
//!   the floor no ext_authz server can beat;
//! - `hallpass`: ext_authz to `hallpass serve` (audit log off);
//! - `hallpass+audit`: the same with the default stdout audit log.
//!
//! Figures are reported as ratios against the floor measured in the same run.
//! Run with `scripts/bench-e2e.sh` (builds the release binary first).
//! `BENCH_REQUESTS` sets the loaded run's size (default 20000).

// A benchmark stops loudly on the unexpected, like a test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse,
};
use envoy_types::ext_authz::v3::{CheckResponseExt, OkHttpResponseBuilder};
use hallpass_e2e::{EchoApp, Ports, Proc, Workdir, wait_for_http_ok};

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

#[derive(Debug, Clone)]
struct Figures {
    rps: f64,
    loaded_p50_us: f64,
    loaded_p99_us: f64,
    idle_p50_us: f64,
    idle_p99_us: f64,
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

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let noop_port = hallpass_e2e::free_port()?;
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(AuthorizationServer::new(NoopAuthz))
            .serve(SocketAddr::from(([127, 0, 0, 1], noop_port))),
    );

    let variants: [(&str, &str, Option<&str>); 5] = [
        ("none", "bench/callee-none.yaml", None),
        ("rbac", "bench/callee-rbac.yaml", None),
        ("ext_authz noop", "callee.yaml", None),
        (
            "hallpass",
            "callee.yaml",
            Some("telemetry:\n  audit_log: off\n"),
        ),
        ("hallpass+audit", "callee.yaml", Some("")),
    ];
    let mut results = Vec::new();
    for (name, config, hallpass) in variants {
        let mut ports = Ports::fresh(app.addr().port())?;
        let _authz: Option<Proc> = match hallpass {
            Some(extra) => {
                let log_name = format!("hallpass-{}", results.len());
                let p = work.start_hallpass(
                    &log_name,
                    &format!("127.0.0.1:{}", ports.authz),
                    ports.admin,
                    extra,
                )?;
                wait_for_http_ok(
                    SocketAddr::from(([127, 0, 0, 1], ports.admin)),
                    "/readyz",
                    Duration::from_secs(20),
                )?;
                Some(p)
            }
            None => {
                ports.authz = noop_port;
                None
            }
        };
        let (callee, caller, url) =
            work.start_envoy_pair(&results.len().to_string(), config, &ports)?;

        h2load(&work, &url, 500, 1, 1).context("warm-up")?;
        let (idle_p50_us, idle_p99_us, _) = h2load(&work, &url, 3_000, 1, 1)?;
        let (loaded_p50_us, loaded_p99_us, rps) = h2load(&work, &url, requests, 8, 4)?;
        eprintln!("{name:>15}: {rps:>8.0} req/s  idle p50 {idle_p50_us:.0} us");
        results.push((
            name,
            Figures {
                rps,
                loaded_p50_us,
                loaded_p99_us,
                idle_p50_us,
                idle_p99_us,
            },
        ));
        drop(caller);
        drop(callee);
    }

    let floor = results
        .iter()
        .find(|(n, _)| *n == "ext_authz noop")
        .map(|(_, f)| f.clone())
        .context("no floor")?;
    println!(
        "\nEnd-to-end through caller Envoy -> callee Envoy -> app ({requests} requests loaded: h2load -c 8 -m 4; idle: -c 1 -m 1, 3000 requests)"
    );
    println!(
        "Ratios are to `ext_authz noop` (the floor for any ext_authz server) measured in this run.\n"
    );
    println!(
        "| variant | req/s (loaded) | throughput vs floor | loaded p50 µs | loaded p99 µs | idle p50 µs | idle p99 µs | idle p50 vs floor |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, f) in &results {
        println!(
            "| {name} | {:.0} | {:.2}x | {:.0} | {:.0} | {:.0} | {:.0} | {:.2}x |",
            f.rps,
            f.rps / floor.rps,
            f.loaded_p50_us,
            f.loaded_p99_us,
            f.idle_p50_us,
            f.idle_p99_us,
            f.idle_p50_us / floor.idle_p50_us
        );
    }
    drop(runtime);
    Ok(())
}

/// Run h2load; return (p50 µs, p99 µs, req/s). Every request must succeed with 200.
fn h2load(
    work: &Workdir,
    url: &str,
    n: u32,
    clients: u32,
    streams: u32,
) -> anyhow::Result<(f64, f64, f64)> {
    let log = work.path().join("h2load.log");
    // h2load appends to an existing log file.
    let _ = std::fs::remove_file(&log);
    let out = Command::new("h2load")
        .args([
            "-n",
            &n.to_string(),
            "-c",
            &clients.to_string(),
            "-m",
            &streams.to_string(),
            "-t",
            "1",
        ])
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
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    Ok((pct(0.50), pct(0.99), rps))
}
