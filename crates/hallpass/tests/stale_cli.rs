//! `hallpass report --stale <age>`: stale grants and offboarding candidates
//! from a saved call graph, and "unknown" rather than a guess while usage
//! has been tracked for less than the age.

use crate::common::*;

const NOW_S: i64 = 1_800_000_000;
const DAY: i64 = 86_400;
const PHARMACY: &str = "spiffe://hospital.example/ns/pharmacy/sa/pharmacy";
const BILLING: &str = "spiffe://hospital.example/ns/billing/sa/billing";

/// Three rules of the lab: one used yesterday (by the EHR), one last used
/// 40 days ago (by billing), one never (pharmacy); tracking began
/// `tracking_days` ago (None: an older sidecar that does not say).
fn callgraph(tracking_days: Option<i64>) -> String {
    let mut graph = serde_json::json!({
        "generated_at_ms": NOW_S * 1000,
        "learning": false,
        "declared": [
            {"source": EHR, "destination": LAB, "rule": "ehr-reads", "routes": ["/r"], "methods": ["GET"]},
            {"source": BILLING, "destination": LAB, "rule": "billing-reads", "routes": ["/b"], "methods": ["GET"]},
            {"source": PHARMACY, "destination": LAB, "rule": "pharmacy-reads", "routes": ["/p"], "methods": ["GET"]}
        ],
        "observed": [{
            "source": EHR, "destination": LAB, "route": "/r", "method": "GET",
            "count": 3, "allowed": 3, "denied": 0, "first_seen_ms": 1,
            "last_seen_ms": (NOW_S - DAY) * 1000,
            "new": false, "spiking": false, "in_baseline": true, "ewma_rps": 0.0
        }],
        "rules": [
            {"destination": LAB, "rule": "ehr-reads", "last_match_seconds": NOW_S - DAY},
            {"destination": LAB, "rule": "billing-reads", "last_match_seconds": NOW_S - 40 * DAY},
            {"destination": LAB, "rule": "pharmacy-reads", "last_match_seconds": 0}
        ],
        "sources": [
            {"source": BILLING, "destination": LAB, "last_seen_seconds": NOW_S - 40 * DAY}
        ]
    });
    if let Some(days) = tracking_days {
        graph["tracking_since_ms"] = ((NOW_S - days * DAY) * 1000).into();
    }
    graph.to_string()
}

fn stale_json(file: &str, age: &str) -> serde_json::Value {
    let run = hallpass(&[
        "report", "--state", file, "--stale", age, "--format", "json",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

fn names(list: &serde_json::Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v[key].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn stale_lists_grants_and_identities_unused_for_the_age() {
    let dir = tempfile::tempdir().unwrap();
    let file = temp_file(&dir, "callgraph.json", &callgraph(Some(60)));
    let report = stale_json(&file, "30d");
    // Billing last matched 40 days ago; pharmacy never in 60 days of tracking.
    assert_eq!(
        names(&report["stale_grants"], "rule"),
        ["billing-reads", "pharmacy-reads"]
    );
    assert_eq!(
        names(&report["stale_identities"], "source"),
        [BILLING, PHARMACY]
    );
    assert_eq!(report["unknown_grants"], serde_json::json!([]));
    assert_eq!(report["unknown_identities"], serde_json::json!([]));

    // 45 days: billing (40 days ago) is no longer stale.
    let report = stale_json(&file, "45d");
    assert_eq!(names(&report["stale_grants"], "rule"), ["pharmacy-reads"]);
    assert_eq!(names(&report["stale_identities"], "source"), [PHARMACY]);

    let run = hallpass(&["report", "--state", &file, "--stale", "30d"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("Grants unused for 30d (2)")
            && run.stdout.contains("Identities with no call for 30d"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("pharmacy-reads  none since tracking began"),
        "{}",
        run.stdout
    );
}

#[test]
fn stale_says_unknown_while_tracking_is_younger_than_the_age() {
    let dir = tempfile::tempdir().unwrap();
    for (name, tracking) in [("young.json", Some(10)), ("old-sidecar.json", None)] {
        let file = temp_file(&dir, name, &callgraph(tracking));
        let report = stale_json(&file, "30d");
        // A last match 40 days ago is proof; "never" in 10 days is not.
        assert_eq!(names(&report["stale_grants"], "rule"), ["billing-reads"]);
        assert_eq!(names(&report["unknown_grants"], "rule"), ["pharmacy-reads"]);
        assert_eq!(names(&report["unknown_identities"], "source"), [PHARMACY]);
    }
    let file = temp_file(&dir, "young.json", &callgraph(Some(10)));
    let run = hallpass(&["report", "--state", &file, "--stale", "30d"]);
    assert!(
        run.stdout.contains(&format!(
            "Unknown (tracking began {}, less than 30d ago) (2)",
            hallpass_insights::rfc3339(NOW_S - 10 * DAY)
        )),
        "{}",
        run.stdout
    );
}

#[test]
fn a_bad_age_is_a_usage_error_that_says_what_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let file = temp_file(&dir, "callgraph.json", &callgraph(Some(60)));
    for (age, says) in [
        ("30", "give a unit"),
        ("30x", "unknown unit"),
        ("0d", "more than 0"),
        ("d", "whole number"),
        ("99999d", "at most 3650d"),
    ] {
        let run = hallpass(&["report", "--state", &file, "--stale", age]);
        assert_eq!(run.code, 64, "{age}: {}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(says), "{age}: {}", run.stderr);
        assert!(run.stdout.is_empty());
    }
}

#[test]
fn baseline_usage_fields_load_and_hostile_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = |rule: &str| {
        serde_json::json!({"version": 1, "edges": [],
            "tracking_since_ms": 1_700_000_000_000_i64,
            "rules": [{"destination": LAB, "rule": rule, "last_match_seconds": NOW_S}],
            "sources": [{"source": EHR, "destination": LAB, "last_seen_seconds": NOW_S}]})
        .to_string()
    };
    let good = temp_file(&dir, "good.json", &baseline("ehr-reads"));
    let run = hallpass(&["baseline", "show", &good]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let bad = temp_file(&dir, "bad.json", &baseline("reads\u{1b}[2J"));
    let run = hallpass(&["baseline", "show", &bad]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("rule name"), "{}", run.stderr);
    assert!(!run.stderr.contains('\u{1b}'), "{}", run.stderr);
    // Merging keeps the usage (the latest match, the latest tracking start).
    let out = dir.path().join("merged.json").display().to_string();
    let run = hallpass(&["baseline", "merge", &good, &good, "-o", &out]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let merged: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(merged["tracking_since_ms"], 1_700_000_000_000_i64);
    assert_eq!(merged["rules"][0]["last_match_seconds"], NOW_S);
}
