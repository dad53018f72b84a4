//! The fault matrix, part A (docs/reliability.md): process, policy and audit
//! log faults, each under open-loop load through the real Envoy pair
//! (`hallpass_e2e::load`), each with its expectation written down before it
//! is measured. Every case asserts 0 wrong allows plus its own expectation.
//!
//! The test command runs the shortened versions (`HALLPASS_FAULT_SECS`
//! unset: a few seconds at a low rate); `HALLPASS_FAULT_SECS=30
//! HALLPASS_FAULT_RATE=1000` runs the full-length ones whose figures
//! docs/reliability.md records. Each case prints its table.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hallpass_e2e::load::{Answer, CallSpec, LoadSpec, Outcome, PolicyClock, Summary, Supervisor};
use hallpass_e2e::{
    EchoApp, Ports, Proc, Workdir, hallpass_bin, http, rss_kib, wait_for_http_ok, workspace_root,
};

const CLINICAL: &str = "examples/policies/clinical-mesh.yaml";
/// The harness's own settings: not passed to hallpass (which warns about
/// every `HALLPASS_*` variable it does not know).
const HARNESS_ENV: [&str; 3] = [
    "HALLPASS_FAULT_SECS",
    "HALLPASS_FAULT_RATE",
    "HALLPASS_FAULT_JSON_DIR",
];

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The Envoy pair, the app and hallpass's config; hallpass itself is
/// started by each case (directly, or under a [`Supervisor`]).
struct Rig {
    work: Workdir,
    ports: Ports,
    config: PathBuf,
    _envoys: (Proc, Proc),
    _app: EchoApp,
}

impl Rig {
    /// Write hallpass's config (policy file `policy`, `telemetry` lines
    /// given) and start the Envoy pair in front of where it will listen.
    fn new(policy: &Path, telemetry: &str) -> Rig {
        let work = Workdir::new().unwrap();
        let app = EchoApp::start().unwrap();
        let ports = Ports::fresh(app.addr().port()).unwrap();
        let config = work.path().join("hallpass.yaml");
        std::fs::write(
            &config,
            format!(
                "authz:\n  listen: 127.0.0.1:{authz}\nadmin:\n  listen: 127.0.0.1:{admin}\n\
                 workload:\n  id: spiffe://hospital.example/ns/clinical/sa/lab-results\n\
                 trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: {certs}/bundle.pem\n\
                 policy:\n  file: {policy}\n  reload_interval_seconds: 1\n\
                 telemetry:\n{telemetry}",
                authz = ports.authz,
                admin = ports.admin,
                certs = work.path().join("certs").display(),
                policy = policy.display(),
            ),
        )
        .unwrap();
        let envoys = work
            .start_envoy_pair("faults", "callee.yaml", &ports)
            .unwrap();
        Rig {
            work,
            ports,
            config,
            _envoys: (envoys.0, envoys.1),
            _app: app,
        }
    }

    /// The `hallpass serve` command of this rig (through `sh` when
    /// `shell_prefix` is given, e.g. to set a ulimit first).
    fn command(&self, shell_prefix: Option<&str>) -> Command {
        let bin = hallpass_bin().unwrap();
        let mut cmd = match shell_prefix {
            None => {
                let mut c = Command::new(bin);
                c.arg("serve").arg("--config").arg(&self.config);
                c
            }
            Some("without-dac-override") => {
                // Root that file permissions bind (as a non-root sidecar is).
                let mut c = Command::new("setpriv");
                c.args(["--bounding-set", "-dac_override,-dac_read_search,-fowner"])
                    .arg(bin)
                    .arg("serve")
                    .arg("--config")
                    .arg(&self.config);
                c
            }
            Some(prefix) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("{prefix}; exec \"$0\" serve --config \"$1\""))
                    .arg(bin)
                    .arg(&self.config);
                c
            }
        };
        cmd.env("HALLPASS_LOG", "info");
        for var in HARNESS_ENV {
            cmd.env_remove(var);
        }
        cmd
    }

    /// Start hallpass (log `name.log`) and wait until it is ready.
    fn start(&self, name: &str, shell_prefix: Option<&str>) -> Proc {
        let proc = Proc::spawn(
            name,
            self.command(shell_prefix),
            self.work.path().join(format!("{name}.log")),
        )
        .unwrap();
        if let Err(e) = wait_for_http_ok(self.admin(), "/readyz", Duration::from_secs(20)) {
            panic!("hallpass not ready: {e}\n{}", proc.output());
        }
        proc
    }

    fn admin(&self) -> SocketAddr {
        addr(self.ports.admin)
    }

    fn load(&self, scale: f64) -> LoadSpec {
        LoadSpec::from_env(addr(self.ports.caller), scale)
    }

    /// One metric sample's value (0 when absent or hallpass is down).
    fn metric(&self, series: &str) -> f64 {
        metric(self.admin(), series)
    }

    fn readyz(&self) -> u16 {
        http(self.admin(), "GET", "/readyz", &[]).map_or(0, |r| r.status)
    }
}

fn metric(admin: SocketAddr, series: &str) -> f64 {
    let Ok(r) = http(admin, "GET", "/metrics", &[]) else {
        return 0.0;
    };
    r.body
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The 0-wrong-allows check every case makes, with the table on failure.
fn assert_no_wrong_allows(s: &Summary) {
    let t = s.totals();
    assert_eq!(t.wrong_allows, 0, "wrong allows!\n{}", s.table());
    assert!(t.sent > 0);
}

/// Audit records with `"decision":"allow"` in `file` (and its rotations).
fn audited_allows(file: &Path) -> usize {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"decision\":\"allow\""))
        .count()
}

/// hallpass SIGKILLed under load and restarted by a supervisor loop.
///
/// Expectation: 0 wrong allows while it is down (the callee Envoy fails
/// closed: 403 without `x-hallpass-reason`); the first allowed call
/// scheduled after the new process is ready is answered right within a
/// few requests (figure reported, not asserted as time); with
/// `telemetry.audit_required: true` every allow the callers received has
/// its audit record in the file (records are written before the answer),
/// so none is lost to the kill.
#[test]
fn sigkill_under_load_fails_closed_and_restarts() {
    sigkill_case(true);
}

/// As [`sigkill_under_load_fails_closed_and_restarts`], with the default
/// `audit_required: false`: the same expectations for the answers; the
/// audit records the kill lost (answered allows without a record: those of
/// the last batch, about 5 ms) are counted and reported, not asserted.
#[test]
fn sigkill_with_the_default_audit_setting_reports_lost_records() {
    sigkill_case(false);
}

fn sigkill_case(required: bool) {
    let policy = workspace_root().join(CLINICAL);
    let rig = Rig::new(
        &policy,
        &format!("  audit_log: AUDIT\n  audit_required: {required}\n"),
    );
    let audit = rig.work.path().join("audit.jsonl");
    let text = std::fs::read_to_string(&rig.config)
        .unwrap()
        .replace("AUDIT", &audit.display().to_string());
    std::fs::write(&rig.config, text).unwrap();
    let cmd_rig = (rig.config.clone(), rig.work.path().to_path_buf());
    let supervisor = Supervisor::start(3, move |n| {
        let mut cmd = Command::new(hallpass_bin()?);
        cmd.arg("serve")
            .arg("--config")
            .arg(&cmd_rig.0)
            .env("HALLPASS_LOG", "info");
        for var in HARNESS_ENV {
            cmd.env_remove(var);
        }
        Proc::spawn("hallpass", cmd, cmd_rig.1.join(format!("hallpass-{n}.log")))
    })
    .unwrap();
    wait_for_http_ok(rig.admin(), "/readyz", Duration::from_secs(20)).unwrap();

    let spec = rig.load(1.0);
    let kill_after = spec.duration / 3;
    let load = spec.spawn();
    std::thread::sleep(kill_after);
    let killed_at = Instant::now();
    supervisor.signal("KILL").unwrap();
    // Bounded: readiness of the restarted process.
    let mut ready_at = None;
    for _ in 0..400 {
        std::thread::sleep(Duration::from_millis(5));
        if supervisor.starts().len() > 1 && rig.readyz() == 200 {
            ready_at = Some(Instant::now());
            break;
        }
    }
    let ready_at = ready_at.expect("the restarted hallpass never became ready");
    let s = load.join().unwrap().unwrap();
    let case = format!("sigkill_required_{required}");
    s.report(&case);
    assert_no_wrong_allows(&s);
    let t = s.totals();
    assert_eq!(t.wrong_denies, 0, "{}", s.table());
    assert_eq!(supervisor.starts().len(), 2, "one kill, one restart");

    let ready = s.offset(ready_at);
    let misses = s.misses_before_recovery(ready);
    let first = s.first_right_allow_after(ready).map(|x| x.at);
    println!(
        "sigkill: down for {:?} (kill to ready); first right allow {:?} after ready; \
         {misses} allowed calls missed after ready; fail-closed {}",
        ready_at - killed_at,
        first.map(|f| f.saturating_sub(ready)),
        t.fail_closed
    );
    assert!(
        misses <= 20,
        "service not back within 20 allowed calls of ready\n{}",
        s.table()
    );
    // Answered before the kill: every answer right.
    let kill = s.offset(killed_at);
    for x in s.samples.iter().filter(|x| x.at + x.latency < kill) {
        assert_eq!(x.outcome, Outcome::Right, "{x:?}\n{}", s.table());
    }

    // No lost audit record of an allow that was answered.
    let answered_allows = s
        .samples
        .iter()
        .filter(|x| x.outcome == Outcome::Right && x.expected_allow)
        .count();
    let audited = audited_allows(&audit);
    println!(
        "{case}: {answered_allows} allows answered, {audited} allow records audited, {} lost",
        answered_allows.saturating_sub(audited)
    );
    assert!(
        !required || audited >= answered_allows,
        "{} answered allows have no audit record",
        answered_allows - audited
    );
}

/// SIGTERM while loaded.
///
/// Expectation: checks in flight when the signal lands are answered (every
/// request answered before the exit is right, none is an error); after the
/// drain no new check is accepted (Envoy fails closed from then on); the
/// process exits 0 within the drain timeout (10 s) plus telemetry's flush.
#[test]
fn sigterm_under_load_drains_and_exits() {
    let policy = workspace_root().join(CLINICAL);
    let rig = Rig::new(&policy, "  audit_log: off\n");
    let mut hallpass = rig.start("hallpass", None);
    let spec = rig.load(1.0);
    let term_after = spec.duration / 2;
    let load = spec.spawn();
    std::thread::sleep(term_after);
    let termed_at = Instant::now();
    let status = hallpass.terminate(Duration::from_secs(15)).unwrap();
    let exited_at = Instant::now();
    let s = load.join().unwrap().unwrap();
    s.report("sigterm");
    println!(
        "sigterm: exited {status} {:?} after SIGTERM",
        exited_at - termed_at
    );
    assert!(status.success(), "{}", hallpass.output());
    assert_no_wrong_allows(&s);
    let t = s.totals();
    assert_eq!(t.wrong_denies, 0, "{}", s.table());
    assert_eq!(t.errors, 0, "{}", s.table());
    // Answered before the signal: right. After the exit: fail-closed.
    let (term, exit) = (s.offset(termed_at), s.offset(exited_at));
    for x in &s.samples {
        if x.at + x.latency < term {
            assert_eq!(x.outcome, Outcome::Right, "{x:?}\n{}", s.table());
        }
        if x.at > exit + Duration::from_millis(100) {
            assert_eq!(x.outcome, Outcome::FailClosed, "{x:?}\n{}", s.table());
        }
    }
    assert!(
        hallpass.output().contains("draining in-flight checks"),
        "{}",
        hallpass.output()
    );
}

/// Version 1 of the swap test: billing may read results, ehr-api only the
/// list (not one result).
const POLICY_V1: &str = "version: 1\ntrust_domains: [hospital.example]\nworkloads:\n\
  \x20 spiffe://hospital.example/ns/clinical/sa/lab-results:\n    mode: enforce\n    allow:\n\
  \x20     - name: ehr-reads-list\n        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]\n\
  \x20       methods: [GET]\n        paths: [\"/patients/{patient}/results\"]\n\
  \x20     - name: billing-reads\n        from: [spiffe://hospital.example/ns/billing/sa/billing]\n\
  \x20       methods: [GET]\n        paths: [\"/patients/{patient}/results\"]\n";

/// The mix with its answers under the clinical mesh (v0) and [`POLICY_V1`].
fn swap_mix() -> Vec<CallSpec> {
    use Answer::{Allow, Deny};
    let nmr = Deny(403, "no_matching_rule");
    let call = |caller, method, path, v0, v1| CallSpec {
        caller,
        method,
        path,
        answers: vec![v0, v1],
    };
    vec![
        call("ehr-api", "GET", "/patients/{i}/results", Allow, Allow),
        call("billing", "GET", "/patients/{i}/results", nmr, Allow),
        call("ehr-api", "GET", "/patients/{i}/results/7", Allow, nmr),
        call("pharmacy", "GET", "/patients/{i}/results", nmr, nmr),
        call("ehr-api", "DELETE", "/patients/{i}/results", nmr, nmr),
        call(
            "ehr-api",
            "GET",
            "/patients/{i}/results/",
            Deny(403, "ambiguous_path"),
            Deny(403, "ambiguous_path"),
        ),
    ]
}

/// Point the symlink `link` at `target`, atomically (a ConfigMap-style flip).
fn flip(link: &Path, target: &Path) {
    let tmp = link.with_extension("new");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).unwrap();
    std::fs::rename(&tmp, link).unwrap();
}

/// The policy replaced many times under load (valid files, alternating two
/// versions; a symlink flip, as a ConfigMap update does).
///
/// Expectation: 0 errors and 0 fail-closed answers; every answer right for
/// the version in force: the new one from its writing, the old one until
/// hallpass is seen to load the new one (its reload counter, polled every
/// 10 ms) plus 100 ms; p99 per second reported (a step above 2 × the run's
/// p99 is reported, not asserted).
#[test]
fn policy_swaps_under_load_answer_for_the_version_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let v0 = dir.path().join("v0.yaml");
    let v1 = dir.path().join("v1.yaml");
    std::fs::copy(workspace_root().join(CLINICAL), &v0).unwrap();
    std::fs::write(&v1, POLICY_V1).unwrap();
    let link = dir.path().join("policy.yaml");
    flip(&link, &v0);
    let rig = Rig::new(&link, "  audit_log: off\n");
    let _hallpass = rig.start("hallpass", None);
    let mut spec = rig.load(if LoadSpec::is_full_run() { 6.0 } else { 2.0 });
    // Each flip is followed until hallpass's reload counter moves (polled
    // every 10 ms): the old version may answer until then, plus a margin
    // for the poll and for checks already decided.
    let clock = PolicyClock::new(Duration::from_millis(100));
    spec.clock = clock.clone();
    spec.mix = swap_mix();
    let reloads = "hallpass_policy_reloads_total{result=\"success\"}";
    let reloads_before = rig.metric(reloads);
    let (duration, started) = (spec.duration, Instant::now());
    let load = spec.spawn();
    let mut seen = reloads_before;
    let mut lags = Vec::new();
    // `HALLPASS_SWAP_CONTROL=1`: the control run, the same load and no
    // swap, to tell the machine's own p99 steps from the swaps'.
    let control =
        std::env::var_os("HALLPASS_SWAP_CONTROL").is_some_and(|v| !v.is_empty() && v != "0");
    let swaps = if control { 0 } else { 100 };
    // 100 swaps at most; none in the last second (the run is ending).
    for n in 1..=swaps {
        std::thread::sleep(Duration::from_millis(100));
        if started.elapsed() + Duration::from_secs(2) > duration {
            break;
        }
        let version = n % 2;
        flip(&link, if version == 0 { &v0 } else { &v1 });
        let written = Instant::now();
        // Bounded: the reload interval is 1 s.
        for _ in 0..500 {
            if rig.metric(reloads) > seen {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        seen = rig.metric(reloads);
        let observed = Instant::now();
        lags.push(observed - written);
        clock.swapped_seen(version, written, observed);
    }
    let s = load.join().unwrap().unwrap();
    s.report("policy_swap");
    let reloads = rig.metric(reloads) - reloads_before;
    let t = s.totals();
    let max_lag = lags.iter().max().copied().unwrap_or_default();
    let seconds = s.per_second();
    let worst = seconds.iter().map(|c| c.p99_us).max().unwrap_or(0);
    let steps = seconds.iter().filter(|c| c.p99_us > t.p99_us * 2).count();
    println!(
        "policy_swap{}: {} swaps, {reloads} reloads seen (longest flip-to-reload {max_lag:?}); \
         run p99 {} us, worst second p99 {} us; {steps} of {} seconds above p99 x 2",
        if control { " CONTROL (no swap)" } else { "" },
        clock.swaps(),
        t.p99_us,
        worst,
        seconds.len(),
    );
    assert_no_wrong_allows(&s);
    assert_eq!(t.errors, 0, "{}", s.table());
    assert_eq!(t.fail_closed, 0, "{}", s.table());
    assert_eq!(t.wrong_denies, 0, "{}", s.table());
    if control {
        return;
    }
    assert!(clock.swaps() >= 1);
    assert!(reloads >= 1.0, "no reload seen");
}

/// A corrupt policy written over the good one during the run.
///
/// Expectation: the last good policy stays in force (every answer right
/// for it, 0 errors), the failure is counted in
/// `hallpass_policy_reloads_total{result="failure"}`, and /readyz stays
/// ready (a last good policy is in force).
#[test]
fn corrupt_policy_under_load_keeps_the_last_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::copy(workspace_root().join(CLINICAL), &file).unwrap();
    let rig = Rig::new(&file, "  audit_log: off\n");
    let _hallpass = rig.start("hallpass", None);
    let spec = rig.load(1.0);
    let corrupt_after = spec.duration / 4;
    let load = spec.spawn();
    std::thread::sleep(corrupt_after);
    // Half a file, then garbage: valid YAML prefix, invalid policy.
    std::fs::write(
        &file,
        "version: 1\nworkloads:\n  spiffe://hospital.example/ns/clinical/sa/lab-results:\n    allow: [{name: x, from: 7\n",
    )
    .unwrap();
    let s = load.join().unwrap().unwrap();
    s.report("corrupt_policy");
    assert_no_wrong_allows(&s);
    let t = s.totals();
    assert_eq!(t.right, t.sent, "{}", s.table());
    // Bounded: the failure is seen within a few reload intervals.
    let mut failures = 0.0;
    for _ in 0..100 {
        failures = rig.metric("hallpass_policy_reloads_total{result=\"failure\"}");
        if failures >= 1.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(failures >= 1.0, "the corrupt file was not counted");
    assert_eq!(rig.readyz(), 200, "the last good policy is in force");
}

/// The mix with every answer turned into the fail-closed deny that
/// `audit_required` gives when the record cannot be written.
fn audit_failing_mix() -> Vec<CallSpec> {
    hallpass_e2e::load::clinical_mix()
        .into_iter()
        .map(|mut c| {
            c.answers = vec![Answer::Deny(403, "internal_error")];
            c
        })
        .collect()
}

/// The audit log's file system is full (`RLIMIT_FSIZE` below the file's
/// size, `SIGXFSZ` ignored: every write fails with `EFBIG`, as with
/// `ENOSPC` on a full disk), from the first request on.
///
/// Expectation, `audit_required: false` (default): decisions unaffected
/// (every answer right, 0 errors), every lost record counted in
/// `hallpass_audit_log_write_errors_total`, /readyz ready, memory bounded
/// (the batch buffer is dropped on a failed write; RSS reported).
/// Expectation, `audit_required: true`: every call denied 403
/// `internal_error` (fail closed), /readyz not ready while writes fail.
#[test]
fn audit_disk_full_counts_errors_or_fails_closed() {
    for required in [false, true] {
        let policy = workspace_root().join(CLINICAL);
        let rig = Rig::new(&policy, "");
        let audit = rig.work.path().join("audit.jsonl");
        // Over the limit before the first record: 4 KiB file, 1 KiB limit.
        std::fs::write(&audit, vec![b'\n'; 4096]).unwrap();
        let text = std::fs::read_to_string(&rig.config).unwrap()
            + &format!(
                "  audit_log: {}\n  audit_required: {required}\n",
                audit.display()
            );
        std::fs::write(&rig.config, text).unwrap();
        let name = format!("hallpass-required-{required}");
        let proc = Proc::spawn(
            &name,
            rig.command(Some("trap '' XFSZ; ulimit -f 2")),
            rig.work.path().join(format!("{name}.log")),
        )
        .unwrap();
        // Ready at start (nothing written yet) in both settings.
        wait_for_http_ok(rig.admin(), "/readyz", Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("{e}\n{}", proc.output()));
        let mut spec = rig.load(1.0);
        if required {
            spec.mix = audit_failing_mix();
        }
        let s = spec.run().unwrap();
        let case = format!("audit_disk_full_required_{required}");
        s.report(&case);
        assert_no_wrong_allows(&s);
        let t = s.totals();
        assert_eq!(t.right, t.sent, "{case}\n{}", s.table());
        let errors = rig.metric("hallpass_audit_log_write_errors_total");
        let rss = rss_kib(proc.pid(), "VmHWM").unwrap_or(0);
        let readyz = rig.readyz();
        println!("{case}: {errors} write errors counted, /readyz {readyz}, peak RSS {rss} KiB");
        assert!(errors >= 1.0, "{case}: no write error counted");
        if required {
            assert_eq!(readyz, 503, "{case}: ready while audit writes fail");
        } else {
            assert!(
                errors >= t.sent as f64 * 0.9,
                "{case}: lost records not all counted ({errors} of {})",
                t.sent
            );
            assert_eq!(readyz, 200, "{case}");
        }
        assert_eq!(std::fs::metadata(&audit).unwrap().len(), 4096, "{case}");
    }
}

/// The audit log file deleted during the run (a careless cleanup, or a
/// rotation tool that does not signal).
///
/// Expectation, both settings: decisions unaffected (every answer right),
/// the writer sees the file is gone and creates it again, so the records
/// after the deletion are in the new file (not lost to an unlinked inode).
#[test]
fn audit_file_deleted_is_recreated() {
    for required in [false, true] {
        let policy = workspace_root().join(CLINICAL);
        let rig = Rig::new(&policy, "");
        let audit = rig.work.path().join("audit.jsonl");
        let text = std::fs::read_to_string(&rig.config).unwrap()
            + &format!(
                "  audit_log: {}\n  audit_required: {required}\n",
                audit.display()
            );
        std::fs::write(&rig.config, text).unwrap();
        let _hallpass = rig.start(&format!("hallpass-{required}"), None);
        let spec = rig.load(1.0);
        let delete_after = spec.duration / 3;
        let load = spec.spawn();
        std::thread::sleep(delete_after);
        std::fs::remove_file(&audit).unwrap();
        let deleted_at = Instant::now();
        let s = load.join().unwrap().unwrap();
        let case = format!("audit_file_deleted_required_{required}");
        s.report(&case);
        assert_no_wrong_allows(&s);
        let t = s.totals();
        assert_eq!(t.right, t.sent, "{case}\n{}", s.table());
        let after = s
            .samples
            .iter()
            .filter(|x| x.at > s.offset(deleted_at) && x.expected_allow)
            .count();
        let audited = audited_allows(&audit);
        println!("{case}: {after} allows answered after the deletion, {audited} in the new file");
        assert!(audited > 0, "{case}: nothing written after the deletion");
        if required {
            assert!(audited >= after, "{case}: records lost after the deletion");
        }
    }
}

/// The audit log's directory made read-only during the run, then the file
/// deleted (hallpass runs without `CAP_DAC_OVERRIDE`, so the permissions
/// bind it as they bind a non-root sidecar).
///
/// Expectation: read-only alone changes nothing (the open file stays
/// writable). Once the file must be created again, nothing can be written:
/// with `audit_required: false` decisions are unaffected and each lost
/// record is counted; with `true` every call from then on is denied 403
/// `internal_error` and /readyz is not ready.
#[test]
fn audit_dir_read_only_then_file_deleted() {
    for required in [false, true] {
        let policy = workspace_root().join(CLINICAL);
        let rig = Rig::new(&policy, "");
        let dir = rig.work.path().join("audit");
        std::fs::create_dir(&dir).unwrap();
        let audit = dir.join("audit.jsonl");
        let text = std::fs::read_to_string(&rig.config).unwrap()
            + &format!(
                "  audit_log: {}\n  audit_required: {required}\n",
                audit.display()
            );
        std::fs::write(&rig.config, text).unwrap();
        let _hallpass = rig.start(
            &format!("hallpass-{required}"),
            Some("without-dac-override"),
        );
        let mut spec = rig.load(1.0);
        // Version 1: audit records cannot be written.
        let clock = PolicyClock::new(Duration::from_millis(200));
        spec.clock = clock.clone();
        spec.mix = hallpass_e2e::load::clinical_mix()
            .into_iter()
            .map(|mut c| {
                let failing = if required {
                    Answer::Deny(403, "internal_error")
                } else {
                    c.answers[0]
                };
                c.answers.push(failing);
                c
            })
            .collect();
        let step = spec.duration / 3;
        let load = spec.spawn();
        std::thread::sleep(step);
        let mut mode = std::fs::metadata(&dir).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut mode, 0o555);
        std::fs::set_permissions(&dir, mode).unwrap();
        let size_at_read_only = std::fs::metadata(&audit).unwrap().len();
        std::thread::sleep(step);
        let grew = std::fs::metadata(&audit).unwrap().len() > size_at_read_only;
        std::fs::remove_file(&audit).unwrap();
        clock.swapped(1);
        let s = load.join().unwrap().unwrap();
        let case = format!("audit_dir_read_only_required_{required}");
        s.report(&case);
        assert_no_wrong_allows(&s);
        let t = s.totals();
        assert_eq!(t.right, t.sent, "{case}\n{}", s.table());
        assert!(
            grew,
            "{case}: records stopped while only the directory was read-only"
        );
        let errors = rig.metric("hallpass_audit_log_write_errors_total");
        let readyz = rig.readyz();
        println!("{case}: {errors} write errors counted, /readyz {readyz}");
        assert!(errors >= 1.0, "{case}");
        assert!(!audit.exists(), "{case}: the file could not be created");
        assert_eq!(readyz, if required { 503 } else { 200 }, "{case}");
    }
}
