//! The telemetry worker end to end: events in, call graph, anomaly counters,
//! rule usage, the audit file and the persisted baseline out.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use hallpass_telemetry::{
    AuditTarget, Baseline, DeclaredEdge, DeclaredGraph, DenyReason, Method, Metrics,
    RateSpikeSettings, Telemetry, TelemetrySettings,
};

fn settings() -> TelemetrySettings {
    TelemetrySettings {
        audit: AuditTarget::Off,
        // No window: a baseline is given or everything is new.
        learning_window: Duration::ZERO,
        ..TelemetrySettings::default()
    }
}

/// [`settings`] with the audit log written to `path` (1 MiB files, `keep` old ones).
fn audit_to_file(path: &std::path::Path, keep: u32) -> TelemetrySettings {
    TelemetrySettings {
        audit: AuditTarget::File {
            path: path.to_path_buf(),
            max_bytes: 1 << 20,
            keep,
        },
        ..settings()
    }
}

fn start(settings: TelemetrySettings) -> (Telemetry, Metrics) {
    let metrics = Metrics::new().unwrap();
    let (telemetry, _task) = Telemetry::start(settings, metrics.clone());
    (telemetry, metrics)
}

fn declared(rules: &[&str]) -> DeclaredGraph {
    DeclaredGraph {
        edges: rules
            .iter()
            .map(|rule| DeclaredEdge {
                source: EHR.into(),
                destination: LAB.into(),
                rule: (*rule).into(),
                routes: vec![RESULTS.into()],
                methods: vec!["GET".into()],
                data_class: Default::default(),
            })
            .collect(),
    }
}

#[tokio::test]
async fn events_show_up_in_the_snapshot_with_their_flags() {
    let (telemetry, metrics) = start(settings());
    let t = now_ms();
    for i in 0..3 {
        telemetry.record(allow(t + i));
    }
    telemetry.record(deny(t + 5, BILLING, DenyReason::NoMatchingRule));
    let graph = telemetry.snapshot().await.unwrap();
    assert!(!graph.learning);
    assert_eq!(graph.observed.len(), 2);
    let reads = graph.observed.iter().find(|e| e.source == EHR).unwrap();
    assert_eq!(
        (
            reads.count,
            reads.allowed,
            reads.denied,
            reads.new,
            reads.in_baseline
        ),
        (3, 3, 0, true, false)
    );
    assert_eq!((reads.first_seen_ms, reads.last_seen_ms), (t, t + 2));
    assert_eq!(
        (reads.route.as_str(), reads.method.as_str()),
        (RESULTS, "GET")
    );
    let denied = graph.observed.iter().find(|e| e.source == BILLING).unwrap();
    assert_eq!((denied.route.as_str(), denied.denied), ("(unmatched)", 1));
    let text = metrics.encode().unwrap();
    assert_eq!(sample(&text, "hallpass_call_graph_edges"), Some(2.0));
    assert_eq!(
        sample(&text, "hallpass_telemetry_events_dropped_total"),
        Some(0.0)
    );
}

/// The scripted scenario: a known baseline, then a mix of traffic; every
/// anomaly counter ends at exactly the expected value.
#[tokio::test(start_paused = true)]
async fn a_scripted_traffic_scenario_produces_exact_anomaly_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baseline.json");
    let mut baseline = Baseline::new();
    baseline.edges.insert(key(EHR, RESULTS, "GET"));
    baseline.save(&path).unwrap();
    let (telemetry, metrics) = start(TelemetrySettings {
        baseline_path: Some(path),
        rate_window: Duration::from_secs(10),
        rate_spike: RateSpikeSettings {
            factor: 5.0,
            min_requests: 50,
            alpha: 0.3,
        },
        ..settings()
    });
    let t = now_ms();
    let fax = "spiffe://hospital.example/ns/legacy/sa/fax-gateway";
    let vendor = "spiffe://imaging-vendor.example/uploader";
    let other = "other:hospital.example";
    // Windows close at 10 s, 20 s, ...; act half-way between them.
    tokio::time::sleep(Duration::from_secs(5)).await;

    // Window 1: the baseline edge at 1 rps, and everything else once or twice.
    for _ in 0..10 {
        telemetry.record(allow(t));
    }
    let mut one = allow(t);
    one.route = Some(Arc::from("/patients/{patient}/results/{result}"));
    telemetry.record(one.clone());
    telemetry.record(one);
    for _ in 0..2 {
        let mut e = deny(t, BILLING, DenyReason::NoMatchingRule);
        e.anomalies.unknown_source = true;
        telemetry.record(e);
    }
    telemetry.record(deny(t, fax, DenyReason::Revoked));
    telemetry.record(deny(t, vendor, DenyReason::GrantExpired));
    telemetry.record(deny(t, EHR, DenyReason::IdentityMismatch));
    let mut stranger = deny(t, other, DenyReason::NoMatchingRule);
    stranger.anomalies.unknown_source = true;
    telemetry.record(stranger);
    telemetry.record(audit_deny(
        t,
        "spiffe://hospital.example/ns/pharmacy/sa/pharmacy",
    ));
    telemetry.flush().await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    // Windows 2 and 3: steady.
    for _ in 0..2 {
        for _ in 0..10 {
            telemetry.record(allow(t));
        }
        telemetry.flush().await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    // Window 4: ten times the usual rate.
    for _ in 0..100 {
        telemetry.record(allow(t));
    }
    telemetry.flush().await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    // Window 5: quiet again.
    tokio::time::sleep(Duration::from_secs(10)).await;
    telemetry.flush().await;

    let expect = [
        // The {result} route, and the (unmatched) edge of its identity_mismatch deny.
        (EHR, "new_edge", 2.0),
        (EHR, "rate_spike", 1.0),
        (EHR, "denied", 1.0),
        (EHR, "identity_mismatch", 1.0),
        (BILLING, "denied", 2.0),
        (BILLING, "unknown_source", 2.0),
        (BILLING, "new_edge", 1.0),
        (fax, "denied", 1.0),
        (fax, "revoked", 1.0),
        (fax, "new_edge", 1.0),
        (vendor, "denied", 1.0),
        (vendor, "grant_expired", 1.0),
        (vendor, "new_edge", 1.0),
        (other, "denied", 1.0),
        (other, "unknown_source", 1.0),
        (other, "new_edge", 1.0),
        (
            "spiffe://hospital.example/ns/pharmacy/sa/pharmacy",
            "denied",
            1.0,
        ),
        (
            "spiffe://hospital.example/ns/pharmacy/sa/pharmacy",
            "new_edge",
            1.0,
        ),
    ];
    let text = metrics.encode().unwrap();
    let mut total = 0.0;
    for (source, kind, want) in expect {
        let got = anomalies(&metrics, source, kind);
        assert_eq!(got, want, "{source} {kind}\n{text}");
        total += want;
    }
    let all: f64 = text
        .lines()
        .filter(|l| l.starts_with("hallpass_call_path_anomalies_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(all, total, "no other anomaly was counted\n{text}");
    let graph = telemetry.snapshot().await.unwrap();
    let spiked = graph
        .observed
        .iter()
        .find(|e| e.source == EHR && e.route == RESULTS)
        .unwrap();
    assert_eq!(spiked.count, 130);
    assert!(!spiked.spiking, "the flag clears in the quiet window");
    assert!(spiked.in_baseline && !spiked.new);
    assert!(spiked.ewma_rps > 0.0);
}

#[tokio::test]
async fn a_full_queue_drops_and_counts() {
    // The current-thread test runtime: the worker cannot run until we yield.
    let (telemetry, metrics) = start(TelemetrySettings {
        queue_capacity: 2,
        ..settings()
    });
    let t = now_ms();
    for _ in 0..5 {
        telemetry.record(allow(t));
    }
    assert_eq!(metrics.events_dropped.get(), 3);
    let graph = telemetry.snapshot().await.unwrap();
    assert_eq!(graph.observed[0].count, 2);
    let text = metrics.encode().unwrap();
    assert_eq!(
        sample(&text, "hallpass_telemetry_events_dropped_total"),
        Some(3.0)
    );
}

#[tokio::test]
async fn policy_loads_initialise_rule_usage_and_keep_old_timestamps() {
    let (telemetry, metrics) = start(settings());
    let series = |rule: &str| {
        format!(
            "hallpass_rule_last_match_timestamp_seconds{{destination=\"{LAB}\",rule=\"{rule}\"}}"
        )
    };
    telemetry.policy_loaded(declared(&["ehr-reads-results", "old-rule"]));
    telemetry.flush().await;
    let text = metrics.encode().unwrap();
    assert_eq!(sample(&text, &series("ehr-reads-results")), Some(0.0));
    assert_eq!(sample(&text, &series("old-rule")), Some(0.0));

    let t = 1_800_000_000_000;
    telemetry.record(allow(t));
    // Denies never touch rule usage.
    telemetry.record(deny(t + 9_000, BILLING, DenyReason::NoMatchingRule));
    telemetry.flush().await;
    let text = metrics.encode().unwrap();
    assert_eq!(
        sample(&text, &series("ehr-reads-results")),
        Some(1_800_000_000.0)
    );

    // A reload that drops one rule and adds another.
    telemetry.policy_loaded(declared(&["ehr-reads-results", "new-rule"]));
    telemetry.flush().await;
    let text = metrics.encode().unwrap();
    assert_eq!(
        sample(&text, &series("ehr-reads-results")),
        Some(1_800_000_000.0)
    );
    assert_eq!(sample(&text, &series("new-rule")), Some(0.0));
    assert_eq!(
        sample(&text, &series("old-rule")),
        None,
        "removed rules disappear"
    );
    let graph = telemetry.snapshot().await.unwrap();
    let usage: Vec<(&str, i64)> = graph
        .rules
        .iter()
        .map(|r| (r.rule.as_str(), r.last_match_seconds))
        .collect();
    assert_eq!(
        usage,
        [("ehr-reads-results", 1_800_000_000), ("new-rule", 0)]
    );
    assert_eq!(graph.declared.len(), 2);
}

#[tokio::test]
async fn shutdown_persists_the_learned_baseline_and_a_restart_keeps_learning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/baseline.json");
    let learning = TelemetrySettings {
        baseline_path: Some(path.clone()),
        learning_window: Duration::from_secs(3600),
        ..settings()
    };
    let (telemetry, _) = start(learning.clone());
    let t = now_ms();
    telemetry.record(allow(t));
    telemetry.record(deny(t, BILLING, DenyReason::NoMatchingRule));
    telemetry.record(audit_deny(t, "other:hospital.example"));
    let graph = telemetry.snapshot().await.unwrap();
    assert!(graph.learning && graph.observed.iter().all(|e| !e.new));
    telemetry.shutdown().await;
    telemetry.shutdown().await; // idempotent
    let saved = Baseline::load(&path).unwrap();
    let sources: Vec<&str> = saved.edges.iter().map(|e| e.source.as_ref()).collect();
    assert_eq!(
        sources,
        ["other:hospital.example", EHR],
        "denied edges are never learned"
    );
    let until = saved.learning_until_ms.unwrap();
    assert!(
        until > t + 3_500_000,
        "the window end is saved with the edges"
    );

    // A restart inside the window goes on learning (and learns more).
    let (telemetry, metrics) = start(learning.clone());
    let mut post = allow(now_ms());
    post.method = Method::Post;
    telemetry.record(post);
    let graph = telemetry.snapshot().await.unwrap();
    assert!(graph.learning);
    assert!(!graph.observed[0].new);
    assert_eq!(
        metrics.baseline_edges.get(),
        2,
        "the loaded baseline is counted"
    );
    telemetry.shutdown().await;
    let saved = Baseline::load(&path).unwrap();
    assert_eq!(saved.edges.len(), 3);
    assert_eq!(
        saved.learning_until_ms,
        Some(until),
        "the window is not extended"
    );

    // Once the window has passed, the saved baseline is final.
    let mut finished = saved.clone();
    finished.learning_until_ms = Some(now_ms() - 1);
    finished.save(&path).unwrap();
    let (telemetry, metrics) = start(learning);
    let mut put = allow(now_ms());
    put.method = Method::Put;
    telemetry.record(put);
    let graph = telemetry.snapshot().await.unwrap();
    assert!(!graph.learning && graph.observed[0].new);
    assert_eq!(anomalies(&metrics, EHR, "new_edge"), 1.0);
}

#[tokio::test]
async fn an_unreadable_baseline_is_learned_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baseline.json");
    std::fs::write(&path, "{ not json").unwrap();
    let (telemetry, _) = start(TelemetrySettings {
        baseline_path: Some(path.clone()),
        learning_window: Duration::from_secs(3600),
        ..settings()
    });
    telemetry.record(allow(now_ms()));
    assert!(telemetry.snapshot().await.unwrap().learning);
    telemetry.shutdown().await;
    assert_eq!(Baseline::load(&path).unwrap().edges.len(), 1);
}

#[tokio::test]
async fn the_audit_file_gets_one_line_per_decision_and_no_phi() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let (telemetry, metrics) = start(audit_to_file(&path, 2));
    let t = now_ms();
    for i in 0..4 {
        telemetry.record(allow(t + i));
    }
    telemetry.record(deny(t + 9, BILLING, DenyReason::NoMatchingRule));
    telemetry.flush().await;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    let ids: std::collections::BTreeSet<&str> = lines
        .iter()
        .map(|l| l["decision_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 5, "decision ids are unique");
    assert_eq!(lines[4]["reason"], "no_matching_rule");
    assert!(!text.contains(CANARY) && !metrics.encode().unwrap().contains(CANARY));
    assert_eq!(metrics.audit_write_errors.get(), 0);
}

#[tokio::test]
async fn the_edge_cap_is_counted_in_metrics() {
    let (telemetry, metrics) = start(TelemetrySettings {
        max_edges: 2,
        ..settings()
    });
    let t = now_ms();
    for route in ["/a", "/b", "/c", "/d"] {
        let mut e = allow(t);
        e.route = Some(Arc::from(route));
        telemetry.record(e);
    }
    telemetry.flush().await;
    assert_eq!(metrics.edges.get(), 2);
    assert_eq!(metrics.edges_dropped.get(), 2);
    assert_eq!(
        anomalies(&metrics, EHR, "new_edge"),
        2.0,
        "dropped edges raise nothing"
    );
}

#[tokio::test]
async fn an_unwritable_audit_log_counts_every_lost_record_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the log's directory should be: nothing can be written.
    let blocker = dir.path().join("logs");
    std::fs::write(&blocker, "not a directory").unwrap();
    let path = blocker.join("audit.jsonl");
    let (telemetry, metrics) = start(audit_to_file(&path, 1));
    let t = now_ms();
    telemetry.record(allow(t));
    telemetry.record(allow(t));
    telemetry.flush().await;
    assert_eq!(metrics.audit_write_errors.get(), 2);
    // Once the directory can be made, records are written again.
    std::fs::remove_file(&blocker).unwrap();
    telemetry.record(allow(t));
    telemetry.flush().await;
    assert_eq!(metrics.audit_write_errors.get(), 2);
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
}

/// Nobody has to ask: a batch reaches the file on its own once the worker's
/// batch delay has passed (polled, bounded; no time is asserted).
#[tokio::test]
async fn audit_records_reach_the_file_without_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let (telemetry, metrics) = start(audit_to_file(&path, 1));
    let t = now_ms();
    for i in 0..3 {
        telemetry.record(allow(t + i));
    }
    let mut lines = 0;
    for _ in 0..500 {
        lines = std::fs::read_to_string(&path)
            .map(|text| text.lines().count())
            .unwrap_or(0);
        if lines == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(lines, 3);
    assert_eq!(metrics.audit_write_errors.get(), 0);
}

#[tokio::test]
async fn a_break_glass_allow_is_audited_as_such_and_is_no_rule_use() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let (telemetry, metrics) = start(audit_to_file(&audit, 1));
    let t = 1_800_000_000_000;
    telemetry.record(hallpass_telemetry::DecisionEvent {
        source_label: Arc::from("other:hospital.example"),
        source_id: Some(Arc::from(BILLING)),
        rule: Some(Arc::from("bg-inc-4711")),
        break_glass: Some(hallpass_telemetry::BreakGlassMark {
            grant: Arc::from("bg-inc-4711"),
            ticket: Arc::from("INC-4711"),
            opened_by: Arc::from("alice"),
        }),
        ..allow(t)
    });
    telemetry.flush().await;
    let text = metrics.encode().unwrap();
    assert!(
        !text.contains("rule=\"bg-inc-4711\""),
        "a grant is not a rule of the policy\n{text}"
    );
    let record: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&audit).unwrap().trim()).unwrap();
    assert_eq!(record["decision"], "allow");
    assert_eq!(record["reason"], "break_glass");
    assert_eq!(record["source"], BILLING);
    assert_eq!(
        record["break_glass"],
        serde_json::json!({"grant": "bg-inc-4711", "ticket": "INC-4711", "opened_by": "alice"})
    );
}

/// `audit_required`: the sender hears `true` only once its record is in the
/// file, `false` while it cannot be written (and `audit_failing` says so),
/// `true` again once it can.
#[tokio::test]
async fn required_records_are_written_before_the_sender_hears_so() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("logs");
    let path = blocker.join("audit.jsonl");
    let (telemetry, metrics) = start(TelemetrySettings {
        audit_required: true,
        ..audit_to_file(&path, 1)
    });
    let t = now_ms();
    // Writable: written before the answer.
    let written = telemetry.record_required(allow(t)).unwrap().await;
    assert_eq!(written, Ok(true));
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    assert!(!telemetry.audit_failing(now_ms()));
    // Not writable (a file where the directory was): every sender hears `false`.
    std::fs::remove_dir_all(&blocker).unwrap();
    std::fs::write(&blocker, "not a directory").unwrap();
    let a = telemetry.record_required(allow(t)).unwrap();
    let b = telemetry.record_required(allow(t)).unwrap();
    assert_eq!((a.await, b.await), (Ok(false), Ok(false)));
    assert_eq!(metrics.audit_write_errors.get(), 2);
    assert!(telemetry.audit_failing(now_ms()));
    // Writable again: `true`, and no longer failing.
    std::fs::remove_file(&blocker).unwrap();
    assert_eq!(telemetry.record_required(allow(t)).unwrap().await, Ok(true));
    assert!(!telemetry.audit_failing(now_ms()));
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
}

/// The audit file deleted under the worker: the next batch notices and
/// creates it again, instead of writing on into the unlinked inode.
#[tokio::test]
async fn a_deleted_audit_file_is_created_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let (telemetry, metrics) = start(audit_to_file(&path, 1));
    let t = now_ms();
    telemetry.record(allow(t));
    telemetry.flush().await;
    std::fs::remove_file(&path).unwrap();
    telemetry.record(allow(t));
    telemetry.record(allow(t));
    telemetry.flush().await;
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
    assert_eq!(metrics.audit_write_errors.get(), 0);
}

#[tokio::test]
async fn rule_and_identity_usage_and_the_tracking_start_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baseline.json");
    let persisted = TelemetrySettings {
        baseline_path: Some(path.clone()),
        ..settings()
    };
    let series = format!(
        "hallpass_rule_last_match_timestamp_seconds{{destination=\"{LAB}\",rule=\"ehr-reads-results\"}}"
    );
    let (telemetry, metrics) = start(persisted.clone());
    let first_start = metrics.tracking_since.get();
    assert!(first_start > 0);
    telemetry.policy_loaded(declared(&["ehr-reads-results", "unused"]));
    let t = 1_800_000_000_000;
    telemetry.record(allow(t));
    // A denied call is still a call of a named identity.
    telemetry.record(deny(t + 5_000, BILLING, DenyReason::NoMatchingRule));
    telemetry.shutdown().await;

    let saved = Baseline::load(&path).unwrap();
    assert_eq!(
        saved.tracking_since_ms.map(|ms| ms / 1000),
        Some(first_start)
    );
    assert_eq!(saved.rules.len(), 1, "only rules that matched: {saved:?}");

    // A later start: the gauge is restored before any traffic, and so is the
    // tracking start (the restart does not reset "unused since").
    let (telemetry, metrics) = start(persisted);
    telemetry.policy_loaded(declared(&["ehr-reads-results", "unused"]));
    telemetry.flush().await;
    let text = metrics.encode().unwrap();
    assert_eq!(sample(&text, &series), Some(1_800_000_000.0));
    assert_eq!(
        sample(&text, "hallpass_rule_tracking_since_timestamp_seconds"),
        Some(first_start as f64)
    );
    let graph = telemetry.snapshot().await.unwrap();
    assert_eq!(graph.tracking_since_ms / 1000, first_start);
    let seen: Vec<(&str, i64)> = graph
        .sources
        .iter()
        .map(|u| (u.source.as_str(), u.last_seen_seconds))
        .collect();
    assert_eq!(seen, [(BILLING, 1_800_000_005), (EHR, 1_800_000_000)]);
    telemetry.shutdown().await;
}

/// The data class rides on the event: the audit record writes it (and
/// leaves it out when undeclared), the anomaly counter labels with it, and
/// the call graph's edge shows it.
#[tokio::test]
async fn the_data_class_is_audited_and_labels_the_anomaly_counter() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let (telemetry, metrics) = start(audit_to_file(&audit, 1));
    let t = 1_800_000_000_000;
    telemetry.record(hallpass_telemetry::DecisionEvent {
        data_class: hallpass_telemetry::DataClass::Phi,
        ..deny(t, BILLING, DenyReason::NoMatchingRule)
    });
    telemetry.record(allow(t + 1));
    telemetry.flush().await;
    let records: Vec<serde_json::Value> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["data_class"], "phi");
    assert!(records[1].get("data_class").is_none(), "{}", records[1]);
    let text = metrics.encode().unwrap();
    let series = |kind: &str, class: &str| {
        sample(
            &text,
            &format!(
                "hallpass_call_path_anomalies_total{{data_class=\"{class}\",destination=\"{LAB}\",kind=\"{kind}\",source=\"{BILLING}\"}}"
            ),
        )
    };
    assert_eq!(series("denied", "phi"), Some(1.0), "{text}");
    assert_eq!(series("new_edge", "phi"), Some(1.0), "{text}");
    assert_eq!(series("denied", "none"), None, "{text}");
    let graph = telemetry.snapshot().await.unwrap();
    let edge = graph.observed.iter().find(|e| e.source == BILLING).unwrap();
    assert_eq!(edge.data_class, hallpass_telemetry::DataClass::Phi);
}
