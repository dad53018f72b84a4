//! Data classes through the CLI: `policy check --require-data-class` (exit
//! 1, each rule without a class at file:line:col) and `hallpass report`
//! grouping unused grants and anomalies by class.

use crate::common::*;

fn policy(destination_class: &str) -> String {
    format!(
        "version: 1\ntrust_domains: [hospital.example]\nworkloads:\n  {LAB}:\n{destination_class}    allow:\n\
         \x20     - name: ehr-reads-results\n        from: [{EHR}]\n        methods: [GET]\n\
         \x20     - name: ehr-reads-invoices\n        from: [{EHR}]\n        paths: [\"/invoices/{{id}}\"]\n        data_class: billing\n"
    )
}

#[test]
fn require_data_class_fails_a_rule_without_one_at_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let file = temp_file(&dir, "p.yaml", &policy(""));
    let run = hallpass(&["policy", "check", &file]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let run = hallpass(&["policy", "check", &file, "--require-data-class"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(&format!(
            "{file}:6:9: error[missing_data_class]: workloads.\"{LAB}\".allow[0]: rule `ehr-reads-results` has no data class"
        )),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("ehr-reads-invoices"), "{}", run.stdout);
    // A destination class covers every rule of the destination.
    let covered = temp_file(&dir, "covered.yaml", &policy("    data_class: phi\n"));
    let run = hallpass(&["policy", "check", &covered, "--require-data-class"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    // An unknown class is an error with a guess, whatever the flag.
    let typo = temp_file(&dir, "typo.yaml", &policy("    data_class: phy\n"));
    let run = hallpass(&["policy", "check", &typo]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("did you mean `phi`?"), "{}", run.stdout);
}

#[cfg(feature = "tools")]
#[test]
fn report_groups_unused_grants_and_anomalies_by_data_class() {
    const BILLING: &str = "spiffe://hospital.example/ns/billing/sa/billing";
    let graph = serde_json::json!({
        "generated_at_ms": 1_800_000_000_000_i64,
        "learning": false,
        "declared": [
            {"source": EHR, "destination": LAB, "rule": "ehr-reads-results", "routes": [], "methods": [], "data_class": "phi"},
            {"source": EHR, "destination": LAB, "rule": "ehr-reads-invoices", "routes": ["/invoices/{id}"], "methods": [], "data_class": "billing"},
            {"source": EHR, "destination": LAB, "rule": "ehr-health", "routes": ["/healthz"], "methods": []}
        ],
        "observed": [
            {"source": BILLING, "destination": LAB, "route": "(unmatched)", "method": "GET",
             "count": 4, "allowed": 0, "denied": 4, "first_seen_ms": 1, "last_seen_ms": 2,
             "new": true, "spiking": false, "in_baseline": false, "ewma_rps": 0.0, "data_class": "phi"},
            {"source": EHR, "destination": LAB, "route": "/patients/{p}/results", "method": "GET",
             "count": 3, "allowed": 3, "denied": 0, "first_seen_ms": 1, "last_seen_ms": 2,
             "new": false, "spiking": false, "in_baseline": true, "ewma_rps": 0.0, "data_class": "phi"}
        ],
        "rules": [
            {"destination": LAB, "rule": "ehr-reads-results", "last_match_seconds": 1_799_999_000_i64},
            {"destination": LAB, "rule": "ehr-reads-invoices", "last_match_seconds": 0},
            {"destination": LAB, "rule": "ehr-health", "last_match_seconds": 0}
        ]
    });
    let dir = tempfile::tempdir().unwrap();
    let file = temp_file(&dir, "callgraph.json", &graph.to_string());
    let run = hallpass(&["report", "--state", &file]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let text = &run.stdout;
    assert!(text.contains("\nBy data class (3)\n"), "{text}");
    assert!(
        text.contains("  phi          0 never used, 0 stale, 1 anomalous edges (4 denied calls)\n"),
        "{text}"
    );
    assert!(
        text.contains("  billing      1 never used, 0 stale, 0 anomalous edges (0 denied calls)\n"),
        "{text}"
    );
    assert!(
        text.contains("  none         1 never used, 0 stale, 0 anomalous edges (0 denied calls)\n"),
        "{text}"
    );

    let run = hallpass(&["report", "--state", &file, "--format", "json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        report["by_data_class"],
        serde_json::json!([
            {"data_class": "phi", "never_used": 0, "stale": 0, "anomalous_edges": 1, "denied_calls": 4},
            {"data_class": "billing", "never_used": 1, "stale": 0, "anomalous_edges": 0, "denied_calls": 0},
            {"data_class": "none", "never_used": 1, "stale": 0, "anomalous_edges": 0, "denied_calls": 0}
        ])
    );
    let never: Vec<(&str, &str)> = report["never_used"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap(),
                f["data_class"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        never,
        [("ehr-health", "none"), ("ehr-reads-invoices", "billing")]
    );
}
