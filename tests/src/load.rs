//! The load-and-fault harness: an open-loop HTTP load generator that knows
//! the right answer to every request it sends (docs/reliability.md).
//!
//! Requests go at a fixed rate (open loop: the schedule never waits for an
//! answer, and latency is measured from the scheduled send time, so a
//! stalled server shows up as latency, not as a lower rate) to the caller
//! Envoy of the real Envoy pair ([`crate::Workdir::start_envoy_pair`]). The
//! caller Envoy presents one of several client certificates
//! (`x-demo-caller`), the callee Envoy asks a real `hallpass serve`, and
//! each [`CallSpec`] carries its oracle: the answer under every policy
//! version the run may see. A [`PolicyClock`] knows when each version was
//! put in force; a response is right when it is the answer of a version
//! that could be in force at the time ([`PolicyClock::candidates`]).
//!
//! Every response falls in exactly one [`Outcome`]. A **wrong allow** is
//! strict: a 2xx for a request that no candidate version allows, or a 2xx
//! that does not hand the app the caller's proven identity
//! (`x-hallpass-source`). Envoy's own fail-closed deny (403 without
//! `x-hallpass-reason`, or a 5xx: hallpass down or timing out) is
//! [`Outcome::FailClosed`], never an allow; no HTTP answer at all (connect
//! failure, timeout, the generator's in-flight bound) is
//! [`Outcome::Error`].
//!
//! Duration and rate come from `HALLPASS_FAULT_SECS` and
//! `HALLPASS_FAULT_RATE` ([`LoadSpec::from_env`]): the defaults are the
//! shortened runs of the test command; the full runs of the benchmark set
//! them higher.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::Proc;

/// The SPIFFE ID behind each `x-demo-caller` of `examples/envoy/caller.yaml`.
pub fn caller_id(caller: &str) -> String {
    let sa = match caller {
        "billing" => "billing/sa/billing",
        "pharmacy" => "pharmacy/sa/pharmacy",
        _ => "clinical/sa/ehr-api",
    };
    format!("spiffe://hospital.example/ns/{sa}")
}

/// The right answer to one call under one policy version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 2xx, with the caller's proven identity handed to the app.
    Allow,
    /// This status with this `x-hallpass-reason`.
    Deny(u16, &'static str),
}

/// One kind of request of the mix, with its oracle.
#[derive(Debug, Clone)]
pub struct CallSpec {
    /// `x-demo-caller`: which client certificate the caller Envoy presents.
    pub caller: &'static str,
    /// HTTP method.
    pub method: &'static str,
    /// Path; `{i}` is replaced by the request's sequence number.
    pub path: &'static str,
    /// The answer under policy version 0, 1, … (one entry per version).
    pub answers: Vec<Answer>,
}

impl CallSpec {
    /// A call with the same answer under every version.
    pub fn fixed(
        caller: &'static str,
        method: &'static str,
        path: &'static str,
        answer: Answer,
    ) -> Self {
        Self {
            caller,
            method,
            path,
            answers: vec![answer],
        }
    }

    /// The answer under `version` (the last one given, for versions past it).
    pub fn answer(&self, version: usize) -> Option<Answer> {
        self.answers
            .get(version)
            .or_else(|| self.answers.last())
            .copied()
    }
}

/// The mixed traffic of `examples/policies/clinical-mesh.yaml` towards
/// lab-results, from three identities: 3 of 7 calls allowed, the others
/// denied for different reasons.
pub fn clinical_mix() -> Vec<CallSpec> {
    use Answer::{Allow, Deny};
    vec![
        CallSpec::fixed("ehr-api", "GET", "/patients/{i}/results", Allow),
        CallSpec::fixed(
            "billing",
            "GET",
            "/patients/{i}/results",
            Deny(403, "no_matching_rule"),
        ),
        CallSpec::fixed("ehr-api", "GET", "/patients/{i}/results/7", Allow),
        CallSpec::fixed(
            "pharmacy",
            "GET",
            "/patients/{i}/results",
            Deny(403, "no_matching_rule"),
        ),
        CallSpec::fixed("ehr-api", "GET", "/patients/{i}/results", Allow),
        CallSpec::fixed(
            "ehr-api",
            "DELETE",
            "/patients/{i}/results",
            Deny(403, "no_matching_rule"),
        ),
        CallSpec::fixed(
            "ehr-api",
            "GET",
            "/patients/{i}/results/",
            Deny(403, "ambiguous_path"),
        ),
    ]
}

/// When each policy version was put in force, and for how long after the
/// next one was written it may still answer.
#[derive(Debug)]
pub struct PolicyClock {
    /// `(written, seen, version)`, in order; version 0 from the epoch.
    swaps: Mutex<Vec<(Instant, Instant, usize)>>,
    window: Duration,
}

impl PolicyClock {
    /// Version 0 in force from now. `window`: how long after a swap is
    /// seen (or written, when not observed) the old version may still answer.
    pub fn new(window: Duration) -> Arc<Self> {
        let epoch = Instant::now();
        Arc::new(Self {
            swaps: Mutex::new(vec![(epoch, epoch, 0)]),
            window,
        })
    }

    /// Record that `version` is written now (call right after writing it);
    /// the old version may answer for `window` more.
    pub fn swapped(&self, version: usize) {
        let now = Instant::now();
        self.swapped_seen(version, now, now);
    }

    /// Record that `version` was written at `written` and that hallpass was
    /// seen to load it at `seen` (its reload counter moved): the old
    /// version may answer until `seen` (plus `window`), the new one from
    /// `written`.
    pub fn swapped_seen(&self, version: usize, written: Instant, seen: Instant) {
        if let Ok(mut swaps) = self.swaps.lock() {
            swaps.push((written, seen, version));
        }
    }

    /// How many swaps were recorded.
    pub fn swaps(&self) -> usize {
        self.swaps.lock().map_or(0, |s| s.len().saturating_sub(1))
    }

    /// The versions that could answer a request sent at `sent` and
    /// answered at `done`: each version whose time in force (from its
    /// writing to the next version's `seen` plus the window) overlaps
    /// `[sent, done]`.
    pub fn candidates(&self, sent: Instant, done: Instant) -> Vec<usize> {
        let Ok(swaps) = self.swaps.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, (written, _, version)) in swaps.iter().enumerate() {
            let until = swaps.get(i + 1).map(|(_, seen, _)| *seen + self.window);
            let overlaps = *written <= done && until.is_none_or(|u| u >= sent);
            if overlaps && !out.contains(version) {
                out.push(*version);
            }
        }
        out
    }
}

/// What became of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Outcome {
    /// The answer of a version that could be in force.
    Right,
    /// A 2xx no candidate version gives, or one without the caller's identity.
    WrongAllow,
    /// A hallpass deny that is not the right answer (wrong status or reason,
    /// or an allowed call denied).
    WrongDeny,
    /// Envoy's own deny: 403 without `x-hallpass-reason`, or a 5xx.
    FailClosed,
    /// No HTTP answer (connect failure, timeout, in-flight bound reached).
    Error,
}

/// One request's record.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Scheduled send time, from the start of the run.
    pub at: Duration,
    /// Scheduled send to last byte of the answer.
    pub latency: Duration,
    /// What it was.
    pub outcome: Outcome,
    /// The answer was expected to be an allow (under the version in force at send).
    pub expected_allow: bool,
}

/// Totals of a run, or of one second of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests scheduled.
    pub sent: u64,
    /// [`Outcome::Right`].
    pub right: u64,
    /// [`Outcome::WrongAllow`]: must be 0, always.
    pub wrong_allows: u64,
    /// [`Outcome::WrongDeny`].
    pub wrong_denies: u64,
    /// [`Outcome::FailClosed`].
    pub fail_closed: u64,
    /// [`Outcome::Error`].
    pub errors: u64,
    /// Median latency, microseconds (answered requests).
    pub p50_us: u64,
    /// 99th percentile latency, microseconds (answered requests).
    pub p99_us: u64,
}

impl Counts {
    fn of(samples: &[Sample]) -> Self {
        let mut c = Self {
            sent: samples.len() as u64,
            ..Self::default()
        };
        let mut lat: Vec<u64> = Vec::with_capacity(samples.len());
        for s in samples {
            match s.outcome {
                Outcome::Right => c.right += 1,
                Outcome::WrongAllow => c.wrong_allows += 1,
                Outcome::WrongDeny => c.wrong_denies += 1,
                Outcome::FailClosed => c.fail_closed += 1,
                Outcome::Error => c.errors += 1,
            }
            if s.outcome != Outcome::Error {
                lat.push(u64::try_from(s.latency.as_micros()).unwrap_or(u64::MAX));
            }
        }
        lat.sort_unstable();
        c.p50_us = percentile(&lat, 50);
        c.p99_us = percentile(&lat, 99);
        c
    }

    /// As a JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "sent": self.sent, "right": self.right, "wrong_allows": self.wrong_allows,
            "wrong_denies": self.wrong_denies, "fail_closed": self.fail_closed,
            "errors": self.errors, "p50_us": self.p50_us, "p99_us": self.p99_us,
        })
    }
}

fn percentile(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = (sorted.len() * p / 100).min(sorted.len() - 1);
    sorted[i]
}

/// The result of a run: every request's [`Sample`], in schedule order.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Target rate, requests per second.
    pub rate: u32,
    /// Scheduled length of the run.
    pub duration: Duration,
    /// When the run started (sample times count from here).
    pub start: Instant,
    /// One per scheduled request.
    pub samples: Vec<Sample>,
}

impl Summary {
    /// Totals over the whole run.
    pub fn totals(&self) -> Counts {
        Counts::of(&self.samples)
    }

    /// Totals over the samples scheduled in `[from, to)` (from the start).
    pub fn between(&self, from: Duration, to: Duration) -> Counts {
        let picked: Vec<Sample> = self
            .samples
            .iter()
            .filter(|s| s.at >= from && s.at < to)
            .copied()
            .collect();
        Counts::of(&picked)
    }

    /// Totals per second of the run.
    pub fn per_second(&self) -> Vec<Counts> {
        let secs = self.duration.as_secs().max(1);
        (0..secs)
            .map(|s| self.between(Duration::from_secs(s), Duration::from_secs(s + 1)))
            .collect()
    }

    /// `instant` as an offset from the start of the run.
    pub fn offset(&self, instant: Instant) -> Duration {
        instant.saturating_duration_since(self.start)
    }

    /// The first sample scheduled at or after `from` that expected an allow
    /// and got it: where service is back after a fault.
    pub fn first_right_allow_after(&self, from: Duration) -> Option<&Sample> {
        self.samples
            .iter()
            .find(|s| s.at >= from && s.expected_allow && s.outcome == Outcome::Right)
    }

    /// Requests expected to be allowed, scheduled from `from` on, that were
    /// not answered right before the first one that was (the retries a
    /// caller would need after a fault).
    pub fn misses_before_recovery(&self, from: Duration) -> usize {
        self.samples
            .iter()
            .filter(|s| s.at >= from && s.expected_allow)
            .take_while(|s| s.outcome != Outcome::Right)
            .count()
    }

    /// A markdown table: the totals, then one row per second.
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| second | sent | right | wrong allows | wrong denies | fail-closed | errors | p50 ms | p99 ms |\n|---|---|---|---|---|---|---|---|---|\n",
        );
        let row = |out: &mut String, label: &str, c: &Counts| {
            let _ = writeln!(
                out,
                "| {label} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} |",
                c.sent,
                c.right,
                c.wrong_allows,
                c.wrong_denies,
                c.fail_closed,
                c.errors,
                c.p50_us as f64 / 1000.0,
                c.p99_us as f64 / 1000.0
            );
        };
        row(&mut out, "total", &self.totals());
        for (i, c) in self.per_second().iter().enumerate() {
            row(&mut out, &i.to_string(), c);
        }
        out
    }

    /// Totals and the per-second series as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "rate": self.rate,
            "seconds": self.duration.as_secs_f64(),
            "totals": self.totals().to_json(),
            "per_second": self.per_second().iter().map(Counts::to_json).collect::<Vec<_>>(),
        })
    }

    /// Print the table (and the JSON, to `HALLPASS_FAULT_JSON_DIR/<name>.json`
    /// when set) under a heading naming the case: what the docs quote.
    pub fn report(&self, name: &str) {
        println!(
            "== {name}: {} req/s for {:.1} s\n{}",
            self.rate,
            self.duration.as_secs_f64(),
            self.table()
        );
        if let Some(dir) = std::env::var_os("HALLPASS_FAULT_JSON_DIR") {
            let path = std::path::Path::new(&dir).join(format!("{name}.json"));
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(path, self.to_json().to_string());
        }
    }
}

/// What to send.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Requests per second.
    pub rate: u32,
    /// How long.
    pub duration: Duration,
    /// The caller Envoy's plain HTTP listener.
    pub target: SocketAddr,
    /// The calls, sent round-robin.
    pub mix: Vec<CallSpec>,
    /// Policy versions in force over time.
    pub clock: Arc<PolicyClock>,
    /// Requests in flight at most; a request beyond is an [`Outcome::Error`].
    pub max_in_flight: u32,
    /// Per-request timeout (an [`Outcome::Error`]).
    pub timeout: Duration,
}

/// Default shortened run: seconds.
pub const DEFAULT_SECS: f64 = 3.0;
/// Default shortened run: requests per second.
pub const DEFAULT_RATE: u32 = 200;

impl LoadSpec {
    /// The clinical mix at `HALLPASS_FAULT_RATE` req/s (default
    /// [`DEFAULT_RATE`]) for `HALLPASS_FAULT_SECS` seconds (default
    /// [`DEFAULT_SECS`]), scaled by `scale` (a case that needs a longer run).
    pub fn from_env(target: SocketAddr, scale: f64) -> Self {
        let secs = std::env::var("HALLPASS_FAULT_SECS")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(DEFAULT_SECS);
        let rate = std::env::var("HALLPASS_FAULT_RATE")
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or(DEFAULT_RATE);
        Self {
            rate: rate.max(1),
            duration: Duration::from_secs_f64((secs * scale).max(0.5)),
            target,
            mix: clinical_mix(),
            clock: PolicyClock::new(Duration::ZERO),
            max_in_flight: 2000,
            timeout: Duration::from_secs(5),
        }
    }

    /// Whether this is a full run (`HALLPASS_FAULT_SECS` set).
    pub fn is_full_run() -> bool {
        std::env::var_os("HALLPASS_FAULT_SECS").is_some()
    }

    /// Run on a thread of its own; join the handle for the [`Summary`].
    pub fn spawn(self) -> std::thread::JoinHandle<anyhow::Result<Summary>> {
        std::thread::spawn(move || self.run())
    }

    /// Run to the end (blocking).
    pub fn run(self) -> anyhow::Result<Summary> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        rt.block_on(self.run_async())
    }

    async fn run_async(self) -> anyhow::Result<Summary> {
        anyhow::ensure!(!self.mix.is_empty(), "an empty mix");
        let spec = Arc::new(self);
        let total = (spec.duration.as_secs_f64() * f64::from(spec.rate)) as usize;
        let pool: Arc<Mutex<Vec<BufReader<TcpStream>>>> = Arc::new(Mutex::new(Vec::new()));
        let in_flight = Arc::new(AtomicU32::new(0));
        let start = Instant::now();
        let tstart = tokio::time::Instant::from_std(start);
        let mut tasks = Vec::with_capacity(total);
        for i in 0..total {
            let at = Duration::from_secs_f64(i as f64 / f64::from(spec.rate));
            tokio::time::sleep_until(tstart + at).await;
            let spec = spec.clone();
            let pool = pool.clone();
            let in_flight = in_flight.clone();
            tasks.push(tokio::spawn(async move {
                let call = &spec.mix[i % spec.mix.len()];
                if in_flight.fetch_add(1, Ordering::AcqRel) >= spec.max_in_flight {
                    in_flight.fetch_sub(1, Ordering::AcqRel);
                    return (at, Instant::now(), None);
                }
                let path = call.path.replace("{i}", &i.to_string());
                let got = tokio::time::timeout(spec.timeout, send(&spec, &pool, call, &path)).await;
                in_flight.fetch_sub(1, Ordering::AcqRel);
                (at, Instant::now(), got.ok().and_then(Result::ok))
            }));
        }
        // Judged once the run is over: the clock then knows every swap,
        // including one a response arrived before the test recorded it.
        let mut samples = Vec::with_capacity(total);
        for (i, task) in tasks.into_iter().enumerate() {
            let (at, done, reply) = task.await.context("a load task failed")?;
            let call = &spec.mix[i % spec.mix.len()];
            let sent = start + at;
            let expected_allow = spec
                .clock
                .candidates(sent, sent)
                .last()
                .and_then(|v| call.answer(*v))
                == Some(Answer::Allow);
            let (outcome, latency) = match reply {
                Some(reply) => (
                    judge(&spec.clock, call, sent, done, &reply),
                    done.saturating_duration_since(sent),
                ),
                None => (Outcome::Error, Duration::ZERO),
            };
            samples.push(Sample {
                at,
                latency,
                outcome,
                expected_allow,
            });
        }
        Ok(Summary {
            rate: spec.rate,
            duration: spec.duration,
            start,
            samples,
        })
    }
}

/// What the generator keeps of a response.
#[derive(Debug)]
struct Reply {
    status: u16,
    reason: Option<String>,
    /// The app was handed the caller's identity in `x-hallpass-source`.
    source_ok: bool,
}

/// Judge one response against the call's oracle.
fn judge(clock: &PolicyClock, call: &CallSpec, sent: Instant, done: Instant, r: &Reply) -> Outcome {
    let answers: Vec<Answer> = clock
        .candidates(sent, done)
        .into_iter()
        .filter_map(|v| call.answer(v))
        .collect();
    if (200..300).contains(&r.status) {
        // The app must be told who called, as hallpass proved it.
        if answers.contains(&Answer::Allow) && r.source_ok {
            Outcome::Right
        } else {
            Outcome::WrongAllow
        }
    } else if let Some(reason) = &r.reason {
        if answers.contains(&Answer::Deny(r.status, reason_static(reason))) {
            Outcome::Right
        } else {
            Outcome::WrongDeny
        }
    } else if r.status == 403 || r.status >= 500 {
        Outcome::FailClosed
    } else {
        // A 4xx of Envoy's own (bad request): not what the oracle expects.
        Outcome::WrongDeny
    }
}

/// The reason codes the oracle names, as `'static` (unknown ones never match).
fn reason_static(reason: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "no_identity",
        "invalid_svid",
        "untrusted_trust_domain",
        "expired_credential",
        "revoked",
        "invalid_jwt",
        "jwt_audience_mismatch",
        "identity_mismatch",
        "no_matching_rule",
        "grant_expired",
        "ambiguous_path",
        "internal_error",
        "jwt_replayed",
    ];
    KNOWN
        .iter()
        .find(|k| **k == reason)
        .copied()
        .unwrap_or("(unknown)")
}

/// One request on a pooled keep-alive connection (a new one if none is idle).
async fn send(
    spec: &LoadSpec,
    pool: &Mutex<Vec<BufReader<TcpStream>>>,
    call: &CallSpec,
    path: &str,
) -> anyhow::Result<Reply> {
    let idle = pool.lock().ok().and_then(|mut p| p.pop());
    let mut conn = match idle {
        Some(c) => c,
        None => {
            let s = TcpStream::connect(spec.target).await?;
            s.set_nodelay(true)?;
            BufReader::new(s)
        }
    };
    let request = format!(
        "{} {path} HTTP/1.1\r\nhost: lab-results\r\nx-demo-caller: {}\r\n\r\n",
        call.method, call.caller
    );
    conn.get_mut().write_all(request.as_bytes()).await?;
    let (mut reply, body, keep) = read_reply(&mut conn).await?;
    let source = format!("\"x-hallpass-source\":\"{}\"", caller_id(call.caller));
    reply.source_ok = body.contains(&source);
    if keep && let Ok(mut p) = pool.lock() {
        p.push(conn);
    }
    Ok(reply)
}

/// Read one HTTP/1.1 response (content-length or chunked body). Returns it,
/// its body and whether the connection may be reused.
async fn read_reply(conn: &mut BufReader<TcpStream>) -> anyhow::Result<(Reply, String, bool)> {
    let mut line = String::new();
    anyhow::ensure!(conn.read_line(&mut line).await? > 0, "connection closed");
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .context("no status")?
        .parse()?;
    let (mut length, mut chunked, mut keep, mut reason) = (0usize, false, true, None);
    for _ in 0..200 {
        line.clear();
        anyhow::ensure!(conn.read_line(&mut line).await? > 0, "truncated headers");
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            match k.as_str() {
                "content-length" => length = v.parse()?,
                "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                "connection" => keep = !v.eq_ignore_ascii_case("close"),
                "x-hallpass-reason" => reason = Some(v.to_owned()),
                _ => {}
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        for _ in 0..10_000 {
            line.clear();
            conn.read_line(&mut line).await?;
            let size = usize::from_str_radix(line.trim(), 16)?;
            let mut chunk = vec![0; size + 2];
            conn.read_exact(&mut chunk).await?;
            chunk.truncate(size);
            body.extend_from_slice(&chunk);
            if size == 0 {
                break;
            }
        }
    } else {
        body.resize(length.min(1 << 20), 0);
        conn.read_exact(&mut body).await?;
    }
    Ok((
        Reply {
            status,
            reason,
            source_ok: false,
        },
        String::from_utf8_lossy(&body).into_owned(),
        keep,
    ))
}

/// Keeps a process running: starts it, and restarts it (at most
/// `max_restarts` times) whenever it exits, like a kubelet or systemd would.
/// Polls every 10 ms; records when each start happened.
#[derive(Debug)]
pub struct Supervisor {
    current: Arc<Mutex<Option<Proc>>>,
    starts: Arc<Mutex<Vec<Instant>>>,
    exits: Arc<Mutex<Vec<Instant>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Supervisor {
    /// Start `spawn(n)` (n = 0, 1, … for each start) and watch it.
    pub fn start(
        max_restarts: usize,
        spawn: impl Fn(usize) -> anyhow::Result<Proc> + Send + 'static,
    ) -> anyhow::Result<Self> {
        let first = spawn(0)?;
        let current = Arc::new(Mutex::new(Some(first)));
        let starts = Arc::new(Mutex::new(vec![Instant::now()]));
        let exits = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s, e, st) = (current.clone(), starts.clone(), exits.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut restarts = 0;
            while !st.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
                let Ok(mut guard) = c.lock() else { return };
                let running = guard.as_mut().is_some_and(Proc::is_running);
                if running || restarts >= max_restarts {
                    continue;
                }
                if let Ok(mut e) = e.lock() {
                    e.push(Instant::now());
                }
                restarts += 1;
                // Keep the old one's log; its process is gone already.
                match spawn(restarts) {
                    Ok(p) => {
                        *guard = Some(p);
                        if let Ok(mut s) = s.lock() {
                            s.push(Instant::now());
                        }
                    }
                    Err(err) => eprintln!("supervisor: restart {restarts} failed: {err:#}"),
                }
            }
        });
        Ok(Self {
            current,
            starts,
            exits,
            stop,
            thread: Some(thread),
        })
    }

    /// The PID of the process running now (0 if none).
    pub fn pid(&self) -> u32 {
        self.current
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(Proc::pid))
            .unwrap_or(0)
    }

    /// Send `signal` (`KILL`, `TERM`, …) to the process running now.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.pid();
        anyhow::ensure!(pid != 0, "no process to signal");
        let ok = Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()?
            .success();
        anyhow::ensure!(ok, "kill -{signal} {pid} failed");
        Ok(())
    }

    /// When each start happened (the first one included).
    pub fn starts(&self) -> Vec<Instant> {
        self.starts.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// When each exit was noticed.
    pub fn exits(&self) -> Vec<Instant> {
        self.exits.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The output of the process running now.
    pub fn output(&self) -> String {
        self.current
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(Proc::output))
            .unwrap_or_default()
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Ok(mut g) = self.current.lock()
            && let Some(mut p) = g.take()
        {
            p.kill();
        }
    }
}
