//! Telemetry through a running sidecar: anomaly counters, the call graph
//! endpoints, the audit log file, and the baseline persisted at shutdown.

use crate::common;

use std::time::Duration;

use common::*;
use hallpass_telemetry::{Baseline, CallGraph};

const MRN: &str = "MRN-7654321";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anomalies_callgraph_audit_log_and_baseline() {
    let (dir, ca) = clinical_dir();
    let audit = dir.path().join("audit/decisions.jsonl");
    let baseline = dir.path().join("state/baseline.json");
    // A baseline that knows only EHR's reads: everything else is new.
    let mut known = Baseline::new();
    known.edges.insert(hallpass_telemetry::EdgeKey {
        source: EHR.into(),
        destination: LAB.into(),
        route: "/patients/{patient}/results".into(),
        method: "GET".into(),
    });
    known.save(&baseline).unwrap();
    let extra = format!(
        "workload:\n  id: {LAB}\ntelemetry:\n  audit_log: {}\n  baseline: {}\n",
        audit.display(),
        baseline.display()
    );
    let mut running = Running::start_ready(config(dir.path(), &extra)).await;

    let ehr = ca.issue(EHR).unwrap();
    let billing = ca.issue(BILLING).unwrap();
    let stranger = ca
        .issue("spiffe://hospital.example/ns/research/sa/etl")
        .unwrap();
    let results = format!("/patients/{MRN}/results?name=Jane");
    let one = format!("/patients/{MRN}/results/9");
    for _ in 0..3 {
        assert_eq!(
            running
                .check(check_request(Some(&ehr), "", "", "GET", &results))
                .await
                .0,
            200
        );
    }
    assert_eq!(
        running
            .check(check_request(Some(&ehr), "", "", "GET", &one))
            .await
            .0,
        200
    );
    assert_eq!(
        running
            .check(check_request(Some(&billing), "", "", "GET", &results))
            .await
            .0,
        403
    );
    assert_eq!(
        running
            .check(check_request(Some(&stranger), "", "", "GET", &results))
            .await
            .0,
        403
    );

    let (_, graph) = running.get("/callgraph").await;
    let graph: CallGraph = serde_json::from_str(&graph).unwrap();
    assert!(
        !graph.learning,
        "a baseline file was given, so nothing is learned"
    );
    let edge = |source: &str, route: &str| {
        graph
            .observed
            .iter()
            .find(|e| e.source == source && e.route == route)
            .unwrap_or_else(|| panic!("no edge {source} {route} in {:#?}", graph.observed))
            .clone()
    };
    let reads = edge(EHR, "/patients/{patient}/results");
    assert_eq!(
        (reads.count, reads.new, reads.in_baseline),
        (3, false, true)
    );
    assert!(edge(EHR, "/patients/{patient}/results/{result}").new);
    let denied = edge(BILLING, "(unmatched)");
    assert_eq!((denied.denied, denied.new), (1, true));
    assert!(
        graph
            .declared
            .iter()
            .any(|d| d.rule == "ehr-reads-results" && d.source == EHR)
    );
    let usage = graph
        .rules
        .iter()
        .find(|r| r.rule == "ehr-reads-results")
        .unwrap();
    assert!(usage.last_match_seconds > 0);
    assert_eq!(
        graph
            .rules
            .iter()
            .find(|r| r.rule == "pharmacy-lookup")
            .unwrap()
            .last_match_seconds,
        0
    );

    let (_, metrics) = running.get("/metrics").await;
    let anomaly = |source: &str, kind: &str| {
        format!(
            "hallpass_call_path_anomalies_total{{data_class=\"none\",destination=\"{LAB}\",kind=\"{kind}\",source=\"{source}\"}} 1"
        )
    };
    assert!(metrics.contains(&anomaly(EHR, "new_edge")), "{metrics}");
    assert!(metrics.contains(&anomaly(BILLING, "denied")), "{metrics}");
    assert!(metrics.contains(&anomaly(BILLING, "new_edge")), "{metrics}");
    // billing is named by the policy (as a destination), but no rule of lab-results names it.
    assert!(
        metrics.contains(&anomaly(BILLING, "unknown_source")),
        "{metrics}"
    );
    assert!(
        metrics.contains(&anomaly("other:hospital.example", "unknown_source")),
        "{metrics}"
    );
    assert!(metrics.contains(&format!("hallpass_rule_last_match_timestamp_seconds{{destination=\"{LAB}\",rule=\"pharmacy-lookup\"}} 0")), "{metrics}");
    assert!(!metrics.contains(MRN) && !metrics.contains("Jane"));

    let (status, dot) = running.get("/callgraph.dot").await;
    assert_eq!(status, 200);
    assert!(
        dot.starts_with("digraph hallpass {") && dot.contains("denied"),
        "{dot}"
    );
    let (status, html) = running.get("/callgraph.html").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("<svg") && !html.contains("<script"),
        "self-contained, no scripts"
    );
    assert!(!html.contains(MRN));

    running.stop().await;

    // The audit log: one line per decision, templates only.
    let log = std::fs::read_to_string(&audit).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6, "{log}");
    assert_eq!(lines[0]["route"], "/patients/{patient}/results");
    assert_eq!(lines[0]["credentials"], serde_json::json!(["x509"]));
    assert_eq!(lines[4]["decision"], "deny");
    assert_eq!(lines[4]["reason"], "no_matching_rule");
    let ids: std::collections::HashSet<&str> = lines
        .iter()
        .map(|l| l["decision_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 6, "decision ids are unique");
    assert!(!log.contains(MRN) && !log.contains("Jane"), "{log}");

    // The baseline survives the restart untouched: only learning adds to it.
    let saved = Baseline::load(&baseline).unwrap();
    assert_eq!(saved.edges.len(), 1);
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learning_window_writes_a_baseline_at_shutdown() {
    let (dir, ca) = clinical_dir();
    let baseline = dir.path().join("baseline.json");
    let extra = format!(
        "workload:\n  id: {LAB}\ntelemetry:\n  audit_log: \"off\"\n  baseline: {}\n  learning_window_seconds: 3600\n",
        baseline.display()
    );
    let mut running = Running::start_ready(config(dir.path(), &extra)).await;
    let ehr = ca.issue(EHR).unwrap();
    let billing = ca.issue(BILLING).unwrap();
    assert_eq!(
        running
            .check_svid(&ehr, "GET", "/patients/1/results")
            .await
            .0,
        200
    );
    assert_eq!(
        running
            .check_svid(&billing, "GET", "/patients/1/results")
            .await
            .0,
        403
    );
    let (_, graph) = running.get("/callgraph").await;
    let graph: CallGraph = serde_json::from_str(&graph).unwrap();
    assert!(graph.learning);
    assert!(
        graph.observed.iter().all(|e| !e.new),
        "nothing is new while learning"
    );
    running.stop().await;
    let saved = Baseline::load(&baseline).unwrap();
    let sources: Vec<&str> = saved.edges.iter().map(|e| e.source.as_ref()).collect();
    assert_eq!(
        sources,
        [EHR],
        "allowed edges are learned, denied ones never"
    );
}

/// An `ambiguous_path` deny keeps its stable reason code, and its audit
/// record says which cause (`path_issue`), never the path (issue 14, item 5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_path_is_audited_with_its_cause_not_the_path() {
    let (dir, ca) = clinical_dir();
    let audit = dir.path().join("audit.jsonl");
    let extra = format!(
        "workload:\n  id: {LAB}\ntelemetry:\n  audit_log: {}\n",
        audit.display()
    );
    let mut running = Running::start_ready(config(dir.path(), &extra)).await;
    let ehr = ca.issue(EHR).unwrap();
    for path in [
        format!("/patients/{MRN}/results/"),
        format!("/patients/{MRN}/../admin"),
        format!("/patients/{MRN}/results"),
    ] {
        let (status, reason, _) = running.check_svid(&ehr, "GET", &path).await;
        let want = if path.ends_with("/results") {
            (200, EHR.to_owned())
        } else {
            (403, "ambiguous_path".to_owned())
        };
        assert_eq!((status, reason), want, "{path}");
    }
    running.stop().await;

    let log = std::fs::read_to_string(&audit).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert_eq!(lines[0]["reason"], "ambiguous_path");
    assert_eq!(lines[0]["path_issue"], "trailing_slash", "{log}");
    assert_eq!(lines[1]["path_issue"], "dot_segment", "{log}");
    assert!(lines[2].get("path_issue").is_none(), "{log}");
    assert!(!log.contains(MRN) && !log.contains("admin"), "{log}");
}
