//! The real `promtool` (Debian's `prometheus` package, installed by
//! `scripts/install-test-deps.sh`) checks the shipped alert rules, runs their
//! unit tests, and lints a real `/metrics` exposition. These tests fail, never
//! skip, when promtool is missing.

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

/// `$PROMTOOL`, else `promtool` on PATH; a clear failure otherwise.
fn promtool() -> PathBuf {
    let candidate =
        std::env::var_os("PROMTOOL").map_or_else(|| PathBuf::from("promtool"), PathBuf::from);
    match Command::new(&candidate).arg("--version").output() {
        Ok(out) if out.status.success() => candidate,
        _ => panic!(
            "promtool not found ({}): run scripts/install-test-deps.sh (Debian package `prometheus`) \
             or set PROMTOOL",
            candidate.display()
        ),
    }
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/prometheus")
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(promtool())
        .args(args)
        .current_dir(examples())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn alert_rules_pass_promtool_check_rules() {
    let out = run(&["check", "rules", "hallpass-alerts.yaml"], None);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("SUCCESS: 18 rules found"), "{said}");
}

#[test]
fn alert_rules_pass_their_promtool_unit_tests() {
    let out = run(
        &[
            "test",
            "rules",
            "hallpass-alerts.test.yaml",
            "hallpass-alerts.days.test.yaml",
        ],
        None,
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert_eq!(said.matches("SUCCESS").count(), 2, "{said}");
}

#[test]
fn mesh_rules_pass_promtool_check_and_their_unit_tests() {
    let out = run(&["check", "rules", "hallpass-mesh-rules.yaml"], None);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("SUCCESS: 3 rules found"), "{said}");
    // The unit tests include a cold start, where every path looks new.
    let out = run(&["test", "rules", "hallpass-mesh-rules.test.yaml"], None);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert_eq!(said.matches("SUCCESS").count(), 1, "{said}");
}

#[test]
fn every_alert_has_a_unit_test() {
    let rules = std::fs::read_to_string(examples().join("hallpass-alerts.yaml")).unwrap();
    let tests = [
        "hallpass-alerts.test.yaml",
        "hallpass-alerts.days.test.yaml",
    ]
    .map(|f| std::fs::read_to_string(examples().join(f)).unwrap())
    .join("\n");
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(alerts.len(), 18);
    for alert in alerts {
        let firing = tests
            .split("- eval_time:")
            .filter(|case| case.contains(&format!("alertname: {alert}\n")))
            .map(|case| !case.contains("exp_alerts: []"))
            .collect::<Vec<_>>();
        assert!(firing.contains(&true), "{alert}: no case where it fires");
        assert!(
            firing.contains(&false),
            "{alert}: no case where it stays quiet"
        );
    }
}

#[tokio::test]
async fn the_metrics_exposition_passes_promtool_check_metrics() {
    let exposition = busy_exposition().await;
    for name in [
        "hallpass_decisions_total",
        "hallpass_call_path_anomalies_total",
        "hallpass_rule_last_match_timestamp_seconds",
        "hallpass_check_duration_seconds_bucket",
        "hallpass_trust_bundle_expiry_timestamp_seconds",
    ] {
        assert!(
            exposition.contains(&format!("\n{name}{{")),
            "{name} missing:\n{exposition}"
        );
    }
    let out = run(&["check", "metrics"], Some(&exposition));
    let said = text(&out);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{exposition}"
    );
}

/// The dashboard's PromQL, with Grafana's variables filled in, parses: each
/// expression becomes a recording rule that `promtool check rules` compiles.
#[test]
fn the_dashboard_promql_parses() {
    let path = examples().join("../grafana/hallpass-dashboard.json");
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let mut n = 0;
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m")
                .replace("$__range", "6h")
                .replace("$destination", ".*");
            assert!(!expr.contains('$'), "unhandled variable in {expr}");
            n += 1;
            rules.push_str(&format!(
                "      - record: hallpass:dashboard_{n}\n        expr: {}\n",
                serde_json::to_string(&expr).unwrap()
            ));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard-rules.yaml");
    std::fs::write(&file, rules).unwrap();
    let out = run(&["check", "rules", file.to_str().unwrap()], None);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("SUCCESS: {n} rules found")),
        "{said}"
    );
}
