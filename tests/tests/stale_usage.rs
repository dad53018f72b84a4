//! End-to-end: a call through real Envoys (caller --mTLS--> callee
//! --ext_authz--> `hallpass serve` with `telemetry.baseline`) sets a rule's
//! last match; after a restart the sidecar restores it and the tracking
//! start from the baseline file, and `hallpass report --stale 30d` against
//! its admin endpoint names the grants and identities unused since then
//! (and not the one that was used before the restart).

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hallpass_e2e::{EchoApp, Ports, Workdir, hallpass_bin, http, wait_for_http_ok};

const EHR: &str = "spiffe://hospital.example/ns/clinical/sa/ehr-api";
const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";
const VENDOR: &str = "spiffe://imaging-vendor.example/uploader";
const DAY_MS: i64 = 86_400_000;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The value of one metric sample (the whole series text before the value).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn last_match_survives_a_restart_and_report_stale_names_the_unused_grants() {
    let work = Workdir::new().unwrap();
    let app = EchoApp::start().unwrap();
    let ports = Ports::fresh(app.addr().port()).unwrap();
    // A baseline file a sidecar wrote when it began tracking 60 days ago.
    let baseline = work.path().join("state/baseline.json");
    std::fs::create_dir_all(baseline.parent().unwrap()).unwrap();
    let now_ms = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let tracking_since_ms = now_ms - 60 * DAY_MS;
    std::fs::write(
        &baseline,
        serde_json::json!({"version": 1, "edges": [], "tracking_since_ms": tracking_since_ms})
            .to_string(),
    )
    .unwrap();
    let extra = format!("telemetry:\n  baseline: {}\n", baseline.display());
    let authz = format!("127.0.0.1:{}", ports.authz);

    let mut hallpass = work
        .start_hallpass("hallpass", &authz, ports.admin, &extra)
        .unwrap();
    if let Err(e) = wait_for_http_ok(addr(ports.admin), "/readyz", Duration::from_secs(20)) {
        panic!("hallpass not ready: {e}\n{}", hallpass.output());
    }
    let (_callee, _caller, _) = work
        .start_envoy_pair("stale", "callee.yaml", &ports)
        .unwrap();
    let status = http(
        addr(ports.caller),
        "GET",
        "/patients/12345/results",
        &[("x-demo-caller", "ehr-api")],
    )
    .unwrap()
    .status;
    assert_eq!(status, 200, "{}", hallpass.output());
    // SIGTERM persists the usage with the baseline.
    let exit = hallpass.terminate(Duration::from_secs(15)).unwrap();
    assert!(exit.success(), "hallpass exited with {exit}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&baseline).unwrap()).unwrap();
    assert_eq!(saved["tracking_since_ms"], tracking_since_ms, "{saved}");
    assert_eq!(saved["rules"][0]["rule"], "ehr-reads-results", "{saved}");
    assert_eq!(saved["sources"][0]["source"], EHR, "{saved}");

    // Restart: before any traffic, the gauges carry the persisted usage.
    let restarted = work
        .start_hallpass("hallpass-restarted", &authz, ports.admin, &extra)
        .unwrap();
    if let Err(e) = wait_for_http_ok(addr(ports.admin), "/readyz", Duration::from_secs(20)) {
        panic!("hallpass not ready again: {e}\n{}", restarted.output());
    }
    let metrics = http(addr(ports.admin), "GET", "/metrics", &[])
        .unwrap()
        .body;
    let last_match = sample(
        &metrics,
        &format!(
            "hallpass_rule_last_match_timestamp_seconds{{destination=\"{LAB}\",rule=\"ehr-reads-results\"}}"
        ),
    );
    assert_eq!(
        last_match,
        saved["rules"][0]["last_match_seconds"].as_f64(),
        "{metrics}"
    );
    assert!(last_match.is_some_and(|t| t > 0.0), "{metrics}");
    assert_eq!(
        sample(&metrics, "hallpass_rule_tracking_since_timestamp_seconds"),
        Some((tracking_since_ms / 1000) as f64),
        "{metrics}"
    );

    // The report, from the restarted sidecar's admin endpoint.
    let out = Command::new(hallpass_bin().unwrap())
        .args(["report", "--stale", "30d", "--format", "json", "--admin"])
        .arg(format!("http://127.0.0.1:{}", ports.admin))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    let lab_rules: Vec<&str> = report["stale_grants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["destination"] == LAB)
        .map(|g| g["rule"].as_str().unwrap())
        .collect();
    // Used before the restart: not stale. The others never matched in the
    // 60 days of tracking.
    assert!(!lab_rules.contains(&"ehr-reads-results"), "{report}");
    for unused in ["pharmacy-lookup", "imaging-vendor-pilot"] {
        assert!(lab_rules.contains(&unused), "{unused}: {report}");
    }
    let identities: Vec<(&str, &str)> = report["stale_identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["source"].as_str().unwrap(),
                i["destination"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(identities.contains(&(VENDOR, LAB)), "{report}");
    assert!(!identities.contains(&(EHR, LAB)), "{report}");
    assert_eq!(report["unknown_grants"], serde_json::json!([]), "{report}");
    drop(restarted);
    drop(app);
}
