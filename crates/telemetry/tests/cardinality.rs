//! Bounded by construction: thousands of distinct callers and patient paths
//! leave the metric series and the call graph the size the labels allow, and
//! neither a caller's own SPIFFE ID (when the policy does not name it) nor a
//! raw path reaches a metric or the call graph.

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use hallpass_callgraph_page::{to_dot, to_html};
use hallpass_telemetry::{
    AuditTarget, DecisionLabel, DenyReason, Metrics, Telemetry, TelemetrySettings,
};

/// Series of one metric family in an exposition.
fn series(text: &str, family: &str) -> usize {
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")))
        .count()
}

#[tokio::test]
async fn thousands_of_identities_and_paths_stay_bounded_and_unlogged() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let metrics = Metrics::new().unwrap();
    let (telemetry, _task) = Telemetry::start(
        TelemetrySettings {
            audit: AuditTarget::File {
                path: audit.clone(),
                max_bytes: 64 << 20,
                keep: 1,
            },
            learning_window: Duration::ZERO,
            queue_capacity: 100_000,
            ..TelemetrySettings::default()
        },
        metrics.clone(),
    );
    let t = now_ms();
    let n = 5_000;
    for i in 0..n {
        // A caller the policy does not name: its label is the trust domain's.
        let id = format!("spiffe://hospital.example/ns/tenant-{i}/sa/app-{i}");
        let mrn = format!("MRN-{:07}", 1_000_000 + i);
        let mut e = deny(t, "other:hospital.example", DenyReason::NoMatchingRule);
        e.source_id = Some(Arc::from(id.as_str()));
        e.anomalies.unknown_source = true;
        e.request_id = Some(format!("req-{i}"));
        // The raw path reaches telemetry only with log_raw_paths; even then it
        // must never become a label or an edge.
        e.raw_path = (i % 2 == 0).then(|| format!("/patients/{mrn}/results"));
        metrics.record_decision(&e.source_label, &e.destination, e.decision, e.reason);
        telemetry.record(e);
        // A named caller on a templated route, with a fresh patient each time.
        let a = allow(t);
        metrics.record_decision(&a.source_label, &a.destination, DecisionLabel::Allow, None);
        telemetry.record(a);
    }
    let graph = telemetry.snapshot().await.unwrap();
    let text = metrics.encode().unwrap();
    assert_eq!(metrics.events_dropped.get(), 0);
    assert_eq!(series(&text, "hallpass_decisions_total"), 2, "{text}");
    // denied, unknown_source and new_edge for the stranger; new_edge for the EHR.
    assert_eq!(
        series(&text, "hallpass_call_path_anomalies_total"),
        4,
        "{text}"
    );
    assert_eq!(graph.observed.len(), 2);
    assert_eq!(metrics.edges.get(), 2);
    let total: u64 = graph.observed.iter().map(|e| e.count).sum();
    assert_eq!(total, 2 * n);

    // Nothing request-specific in metrics, the call graph or its renderings.
    let json = serde_json::to_string(&graph).unwrap();
    for published in [&text, &json, &to_dot(&graph), &to_html(&graph)] {
        assert!(!published.contains("tenant-"), "a caller's own ID leaked");
        assert!(!published.contains("MRN-"), "a patient identifier leaked");
        assert!(!published.contains("req-"), "a request id leaked");
    }
    // The audit log has the caller's proven ID (that is its job), and the raw
    // path only where telemetry was handed one.
    let log = std::fs::read_to_string(&audit).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len() as u64, 2 * n);
    let sources: BTreeSet<&str> = lines
        .iter()
        .filter_map(|l| l.split("\"source\":\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(sources.len() as u64, n + 1);
    assert_eq!(log.matches("MRN-").count() as u64, n / 2);
}
