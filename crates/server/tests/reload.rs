//! Reloading policy and bundle files: only content that has settled (read
//! the same on two consecutive ticks) is loaded, so a file caught half-way
//! through a write never replaces the last good one; a Kubernetes ConfigMap
//! update, an atomic `..data` symlink swap, is loaded at the first tick that
//! sees it.
//!
//! The tests first find the reload loop's phase (the moment a change takes
//! effect is a tick), then time each write against it, with at least 0.25 s
//! of margin on every side of the 1 s interval.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use hallpass_testkit::{Ca, Svid};

/// A policy for lab-results in which EHR may GET `marker`, plus `rules`.
fn policy(marker: &str, rules: &str) -> String {
    format!(
        "version: 1\ntrust_domains: [hospital.example]\nworkloads:\n  {LAB}:\n    allow:\n\
         \x20     - name: marker\n        from: [{EHR}]\n        methods: [GET]\n        paths: [\"{marker}\"]\n{rules}"
    )
}

/// Status of a GET by `svid` on `path`.
async fn status(running: &mut Running, svid: &Svid, path: &str) -> u16 {
    running.check_svid(svid, "GET", path).await.0
}

/// Write a policy with a new marker and wait until it is in force: the
/// returned instant is (within a few ms) a tick of the reload loop.
async fn tick_phase(
    running: &mut Running,
    file: &Path,
    ehr: &Svid,
    marker: &str,
    rules: &str,
) -> Instant {
    std::fs::write(file, policy(marker, rules)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if status(running, ehr, marker).await == 200 {
            return Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the policy with {marker} was never loaded");
}

async fn sleep_until(at: Instant) {
    tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
}

/// A vendor rule that is safe only whole: its `require_jwt` and its `paths`
/// come after the part that names the caller. Cut after `from:`, the file is
/// still a valid policy, and one that lets the vendor call anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_written_in_two_parts_is_never_loaded_half_way() {
    let (dir, ca) = clinical_dir();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, policy("/start", "")).unwrap();
    let mut running =
        Running::start_ready(config(dir.path(), &format!("workload:\n  id: {LAB}\n"))).await;
    let ehr = ca.issue(EHR).unwrap();
    let billing = ca.issue(BILLING).unwrap();
    let whole = policy(
        "/whole",
        &format!(
            "      - name: billing-summary\n        from: [{BILLING}]\n        methods: [GET]\n\
             \x20       paths: [\"/billing/summary\"]\n        require_jwt: true\n"
        ),
    );
    let cut = whole
        .find("        methods: [GET]\n        paths: [\"/billing")
        .unwrap();
    let (first, second) = whole.split_at(cut);
    assert!(hallpass_policy::CompiledPolicy::from_yaml(first).is_ok());

    let tick = tick_phase(&mut running, &file, &ehr, "/sync", "").await;
    // Ticks at tick + 1 s, + 2 s, ...: the first part is there for the one
    // at + 1 s only.
    sleep_until(tick + Duration::from_millis(250)).await;
    std::fs::write(&file, first).unwrap();
    let resume = tick + Duration::from_millis(1600);
    while Instant::now() < resume {
        assert_eq!(
            status(&mut running, &billing, "/patients/1/results").await,
            403,
            "the first half of the policy was loaded"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut append = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    std::io::Write::write_all(&mut append, second.as_bytes()).unwrap();
    drop(append);
    // Whole and unchanged at + 2 s and + 3 s: in force after + 3 s.
    let settled = tick + Duration::from_millis(3400);
    while Instant::now() < settled {
        assert_eq!(
            status(&mut running, &billing, "/patients/1/results").await,
            403,
            "a loosened policy was in force"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(status(&mut running, &ehr, "/whole").await, 200);
    let (code, reason, _) = running
        .check_svid(&billing, "GET", "/billing/summary")
        .await;
    assert_eq!(
        (code, reason.as_str()),
        (403, "no_matching_rule"),
        "JWT required"
    );
    let (_, metrics) = running.get("/metrics").await;
    assert!(
        metrics.contains("hallpass_policy_reloads_total{result=\"failure\"} 0"),
        "the half-written file was not even tried: {metrics}"
    );
    running.stop().await;
}

/// Kubernetes updates a mounted ConfigMap atomically: the files go into a
/// new timestamped directory, then the `..data` symlink is swapped to it.
/// Such a swap is complete when it happens, so it is loaded at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_symlink_swap_is_loaded_at_the_first_tick_that_sees_it() {
    let (dir, ca) = clinical_dir();
    let mount = dir.path().join("mount");
    let version = |name: &str, text: &str| {
        let d = mount.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("policy.yaml"), text).unwrap();
    };
    let swap_to = |name: &str| {
        let tmp = mount.join("..data_tmp");
        std::os::unix::fs::symlink(name, &tmp).unwrap();
        std::fs::rename(&tmp, mount.join("..data")).unwrap();
    };
    version("..2026_01_01_00_00_00.1", &policy("/v1", ""));
    swap_to("..2026_01_01_00_00_00.1");
    std::os::unix::fs::symlink("..data/policy.yaml", mount.join("policy.yaml")).unwrap();
    let cfg = config(dir.path(), &format!("workload:\n  id: {LAB}\n")).replace(
        &format!("file: {}/policy.yaml", dir.path().display()),
        &format!("file: {}/policy.yaml", mount.display()),
    );
    let mut running = Running::start_ready(cfg).await;
    let ehr = ca.issue(EHR).unwrap();
    assert_eq!(status(&mut running, &ehr, "/v1").await, 200);

    // Find the phase with a swap, then swap again right after a tick.
    version("..2026_01_01_00_00_00.2", &policy("/v2", ""));
    swap_to("..2026_01_01_00_00_00.2");
    let deadline = Instant::now() + Duration::from_secs(5);
    while status(&mut running, &ehr, "/v2").await != 200 {
        assert!(Instant::now() < deadline, "the first swap was never loaded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let tick = Instant::now();
    sleep_until(tick + Duration::from_millis(250)).await;
    version("..2026_01_01_00_00_00.3", &policy("/v3", ""));
    swap_to("..2026_01_01_00_00_00.3");
    std::fs::remove_dir_all(mount.join("..2026_01_01_00_00_00.1")).unwrap();
    // In force by the next tick (+ 1 s), not one later.
    let deadline = tick + Duration::from_millis(1600);
    loop {
        if status(&mut running, &ehr, "/v3").await == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a ConfigMap swap waited more than one tick"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status(&mut running, &ehr, "/v2").await, 403);
    running.stop().await;
}

/// The bundle files are reloaded by the same loop, with the same rule. A
/// rotation that writes the new CA first and the old one second, with a
/// pause between, must not leave the old CA's callers untrusted meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_written_in_two_parts_is_never_loaded_half_way() {
    let (dir, old_ca) = clinical_dir();
    let bundle = dir.path().join("bundle.pem");
    let new_ca = Ca::root("hospital.example").unwrap();
    let mut running =
        Running::start_ready(config(dir.path(), &format!("workload:\n  id: {LAB}\n"))).await;
    let ehr_old = old_ca.issue(EHR).unwrap();
    let ehr_new = new_ca.issue(EHR).unwrap();
    let path = "/patients/1/results";
    assert_eq!(status(&mut running, &ehr_old, path).await, 200);

    let reads =
        format!("      - name: ehr-reads\n        from: [{EHR}]\n        paths: [\"{path}\"]\n");
    let tick = tick_phase(
        &mut running,
        &dir.path().join("policy.yaml"),
        &ehr_old,
        "/sync",
        &reads,
    )
    .await;
    sleep_until(tick + Duration::from_millis(250)).await;
    std::fs::write(&bundle, new_ca.cert_pem()).unwrap();
    let resume = tick + Duration::from_millis(1600);
    while Instant::now() < resume {
        let (code, reason, _) = running.check_svid(&ehr_old, "GET", path).await;
        assert_eq!(
            (code, reason.as_str()),
            (200, EHR),
            "the old CA was dropped by a half-written bundle"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut append = std::fs::OpenOptions::new()
        .append(true)
        .open(&bundle)
        .unwrap();
    std::io::Write::write_all(&mut append, old_ca.cert_pem().as_bytes()).unwrap();
    drop(append);
    sleep_until(tick + Duration::from_millis(3400)).await;
    assert_eq!(status(&mut running, &ehr_old, path).await, 200);
    assert_eq!(status(&mut running, &ehr_new, path).await, 200);
    wait_until_ready(&running, true).await;
    running.stop().await;
}
