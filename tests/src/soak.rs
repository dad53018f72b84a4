//! The soak (a benchmark, not a test; run it with `scripts/soak.sh`): a
//! steady request rate through the real Envoy pair (caller Envoy --mTLS-->
//! callee Envoy --ext_authz--> `hallpass serve` --> echo app) for a long
//! time, with a policy reload and a trust-bundle rotation every minute,
//! sampling hallpass every 10 s: RSS, open file descriptors, threads, and
//! the p50/p99 of the requests of the window (h2load's per-request log).
//!
//! The rotation: the bundle file gets a new extra CA of hospital.example
//! (the previous extra one goes), the mesh CA stays, so every caller keeps
//! verifying while hallpass swaps its bundle and drops its verification
//! cache. The reload: the policy file gets a new comment line, so hallpass
//! reads, compiles and swaps it (`hallpass_policy_reloads_total`).
//!
//! Fails (exit 1) when hallpass's RSS at the end is more than 10 % above its
//! RSS after the first minute, when the p99 of the last minute is more than
//! 50 % above the first minute's, or when any request is not answered 200.
//! Writes the samples as CSV (`--csv`, default target/soak.csv) and prints
//! a markdown summary.
//!
//! Usage: hallpass-soak [--duration SECS] [--rate RPS] [--every SECS]
//!                      [--rotate-every SECS] [--csv FILE]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hallpass_e2e::{EchoApp, Ports, Workdir, http, rss_kib, wait_for_http_ok, workspace_root};

struct Options {
    duration: u64,
    rate: u64,
    every: u64,
    rotate_every: u64,
    csv: PathBuf,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        duration: 600,
        rate: 200,
        every: 10,
        rotate_every: 60,
        csv: workspace_root().join("target/soak.csv"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .with_context(|| format!("{flag}: not a positive whole number: {value}"))
        };
        match flag.as_str() {
            "--duration" => o.duration = number()?,
            "--rate" => o.rate = number()?,
            "--every" => o.every = number()?,
            "--rotate-every" => o.rotate_every = number()?,
            "--csv" => o.csv = PathBuf::from(&value),
            _ => bail!("unknown option {flag}"),
        }
    }
    Ok(o)
}

/// One 10-second window.
struct Sample {
    t: u64,
    rss_kib: u64,
    fds: usize,
    threads: u64,
    requests: usize,
    non_200: usize,
    p50_ms: f64,
    p99_ms: f64,
    policy_reloads: f64,
    cache_misses: f64,
}

/// Write `text` to `path` whole (a temp file renamed over it), so hallpass
/// never reads half a file.
fn replace_file(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The value of a series (name and labels exactly as given) in Prometheus text.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(f64::NAN)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(rank).copied().unwrap_or(f64::NAN)
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

/// Run h2load at `rate` requests per second for `seconds`; the requests'
/// statuses and latencies (ms) from its log.
fn window(work: &Workdir, url: &str, rate: u64, seconds: u64) -> anyhow::Result<Vec<(u16, f64)>> {
    let log = work.path().join("h2load.log");
    // h2load appends to an existing log file.
    let _ = std::fs::remove_file(&log);
    let clients = 4;
    let out = Command::new("h2load")
        .args(["-D", &seconds.to_string(), "-c", &clients.to_string()])
        .args(["--rps", &(rate / clients).max(1).to_string()])
        .args(["-m", "1", "-t", "1"])
        .args(["-H", "x-demo-caller: ehr-api", "--log-file"])
        .arg(&log)
        .arg(url)
        .output()
        .context("cannot run h2load")?;
    if !out.status.success() {
        bail!("h2load failed:\n{}", String::from_utf8_lossy(&out.stdout));
    }
    let mut requests = Vec::new();
    for line in std::fs::read_to_string(&log)?.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        if let (Some(status), Some(us)) = (cols.get(1), cols.get(2)) {
            requests.push((status.parse()?, us.parse::<f64>()? / 1000.0));
        }
    }
    Ok(requests)
}

fn main() -> anyhow::Result<()> {
    let o = options()?;
    let work = Workdir::new()?;
    let app = EchoApp::start()?;
    let ports = Ports::fresh(app.addr().port())?;
    let admin = std::net::SocketAddr::from(([127, 0, 0, 1], ports.admin));

    let policy_text =
        std::fs::read_to_string(workspace_root().join("examples/policies/clinical-mesh.yaml"))?;
    let policy = work.path().join("policy.yaml");
    std::fs::write(&policy, &policy_text)?;
    let bundle = work.path().join("certs/bundle.pem");
    let mesh_ca = std::fs::read_to_string(&bundle)?;
    let trust = format!(
        "trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: {}\n",
        bundle.display()
    );
    let hallpass = work.start_hallpass_with_policy(
        "hallpass",
        &format!("127.0.0.1:{}", ports.authz),
        ports.admin,
        &policy,
        &trust,
    )?;
    wait_for_http_ok(admin, "/readyz", Duration::from_secs(30))?;
    let (_callee, _caller, url) = work.start_envoy_pair("soak", "callee.yaml", &ports)?;
    let pid = hallpass.pid();
    eprintln!(
        "soak: {} s at {} req/s, a sample every {} s, reload and rotation every {} s",
        o.duration, o.rate, o.every, o.rotate_every
    );

    let start = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut rotations = 0u64;
    while start.elapsed().as_secs() < o.duration {
        let requests = window(&work, &url, o.rate, o.every)?;
        let t = start.elapsed().as_secs();
        let metrics = http(admin, "GET", "/metrics", &[])?.body;
        let mut latencies: Vec<f64> = requests.iter().map(|(_, ms)| *ms).collect();
        latencies.sort_by(f64::total_cmp);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let threads = status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let sample = Sample {
            t,
            rss_kib: rss_kib(pid, "VmRSS")?,
            fds: std::fs::read_dir(format!("/proc/{pid}/fd"))?.count(),
            threads,
            requests: requests.len(),
            non_200: requests.iter().filter(|(s, _)| *s != 200).count(),
            p50_ms: percentile(&latencies, 0.5),
            p99_ms: percentile(&latencies, 0.99),
            policy_reloads: metric(
                &metrics,
                "hallpass_policy_reloads_total{result=\"success\"}",
            ),
            cache_misses: metric(
                &metrics,
                "hallpass_identity_cache_lookups_total{result=\"miss\"}",
            ),
        };
        eprintln!(
            "soak: t={:>4}s rss={} KiB fds={} threads={} requests={} non-200={} p99={:.2} ms",
            sample.t,
            sample.rss_kib,
            sample.fds,
            sample.threads,
            sample.requests,
            sample.non_200,
            sample.p99_ms
        );
        samples.push(sample);
        // Every minute: a policy reload and a bundle rotation.
        if t / o.rotate_every > rotations {
            rotations = t / o.rotate_every;
            replace_file(
                &policy,
                &format!("{policy_text}\n# soak reload {rotations}\n"),
            )?;
            let extra = hallpass_testkit::Ca::root("hospital.example")?;
            replace_file(&bundle, &format!("{mesh_ca}{}", extra.cert_pem()))?;
        }
    }

    write_csv(&o.csv, &samples)?;
    let verdict = judge(&samples, o.rotate_every);
    println!("{}", verdict.table);
    eprintln!("soak: samples in {}", o.csv.display());
    if !verdict.failures.is_empty() {
        bail!("soak failed: {}", verdict.failures.join("; "));
    }
    Ok(())
}

fn write_csv(path: &Path, samples: &[Sample]) -> anyhow::Result<()> {
    let mut csv = String::from(
        "t_s,rss_kib,fds,threads,requests,non_200,p50_ms,p99_ms,policy_reloads,cache_misses\n",
    );
    for s in samples {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{:.3},{:.3},{},{}\n",
            s.t,
            s.rss_kib,
            s.fds,
            s.threads,
            s.requests,
            s.non_200,
            s.p50_ms,
            s.p99_ms,
            s.policy_reloads,
            s.cache_misses
        ));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, csv)?;
    Ok(())
}

struct Verdict {
    table: String,
    failures: Vec<String>,
}

/// The pass/fail rules: RSS growth after the first minute, p99 drift from
/// the first minute to the last, and every request answered 200.
fn judge(samples: &[Sample], minute: u64) -> Verdict {
    let end = samples.last().map_or(0, |s| s.t);
    let first: Vec<&Sample> = samples.iter().filter(|s| s.t <= minute).collect();
    let last: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.t + minute > end && s.t > minute)
        .collect();
    let mut failures = Vec::new();
    let rss_ref = first.last().map_or(0, |s| s.rss_kib);
    let rss_end = samples.last().map_or(0, |s| s.rss_kib);
    let growth = rss_end as f64 / rss_ref.max(1) as f64 - 1.0;
    if growth > 0.10 {
        failures.push(format!(
            "RSS grew {:.1} % after the first minute ({rss_ref} -> {rss_end} KiB)",
            growth * 100.0
        ));
    }
    let p99_first = median(first.iter().map(|s| s.p99_ms));
    let p99_last = median(last.iter().map(|s| s.p99_ms));
    let drift = p99_last / p99_first - 1.0;
    if drift > 0.5 {
        failures.push(format!(
            "p99 drifted {:.0} % ({p99_first:.2} -> {p99_last:.2} ms)",
            drift * 100.0
        ));
    }
    if last.is_empty() {
        failures.push("too short: no sample after the first minute".to_owned());
    }
    let non_200: usize = samples.iter().map(|s| s.non_200).sum();
    if non_200 > 0 {
        failures.push(format!("{non_200} requests not answered 200"));
    }
    let requests: usize = samples.iter().map(|s| s.requests).sum();
    let (fds_min, fds_max) = samples.iter().fold((usize::MAX, 0), |(lo, hi), s| {
        (lo.min(s.fds), hi.max(s.fds))
    });
    let (thr_min, thr_max) = samples.iter().fold((u64::MAX, 0), |(lo, hi), s| {
        (lo.min(s.threads), hi.max(s.threads))
    });
    let reloads = samples.last().map_or(0.0, |s| s.policy_reloads)
        - samples.first().map_or(0.0, |s| s.policy_reloads);
    let table = format!(
        "| figure | value |\n|---|---|\n\
         | duration | {end} s, {} samples |\n\
         | requests | {requests} (non-200: {non_200}) |\n\
         | RSS after 1 min / at the end | {rss_ref} / {rss_end} KiB ({:+.1} %) |\n\
         | p99 first minute / last minute (median of 10 s windows) | {p99_first:.2} / {p99_last:.2} ms ({:+.0} %) |\n\
         | open fds min / max | {fds_min} / {fds_max} |\n\
         | threads min / max | {thr_min} / {thr_max} |\n\
         | policy reloads during the run | {reloads} |\n\
         | verdict | {} |",
        samples.len(),
        growth * 100.0,
        drift * 100.0,
        if failures.is_empty() {
            "pass".to_owned()
        } else {
            format!("FAIL: {}", failures.join("; "))
        }
    );
    Verdict { table, failures }
}
