//! Shared helpers for the telemetry tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use hallpass_telemetry::{
    Anomalies, AnomalyKind, AuditTarget, CredentialKind, Credentials, DataClass, DecisionEvent,
    DecisionLabel, DeclaredEdge, DeclaredGraph, DenyReason, EdgeKey, Method, Metrics, Mode,
    Telemetry, TelemetrySettings,
};

pub const EHR: &str = "spiffe://hospital.example/ns/clinical/sa/ehr-api";
pub const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";
pub const BILLING: &str = "spiffe://hospital.example/ns/billing/sa/billing";
pub const RESULTS: &str = "/patients/{patient}/results";
/// A PHI canary: a medical record number in a raw path.
pub const CANARY: &str = "MRN-0000000";

/// An allowed GET by the EHR on lab results, at `time_ms`.
pub fn allow(time_ms: i64) -> DecisionEvent {
    DecisionEvent {
        time_ms,
        decision: DecisionLabel::Allow,
        reason: None,
        mode: Mode::Enforce,
        source_label: Arc::from(EHR),
        source_id: Some(Arc::from(EHR)),
        destination: Arc::from(LAB),
        method: Method::Get,
        route: Some(Arc::from(RESULTS)),
        rule: Some(Arc::from("ehr-reads-results")),
        credentials: Credentials::NONE.with(CredentialKind::X509),
        anomalies: Anomalies::default(),
        request_id: Some("5f0c2a7e-1b7d-4c1e-9d3a-8f2b6c4d1e00".into()),
        trace_id: None,
        raw_path: None,
        path_issue: None,
        data_class: DataClass::None,
        break_glass: None,
    }
}

/// An enforced deny of `source` (a label) on lab results, with the
/// anomalies the decision path would find for `reason`.
pub fn deny(time_ms: i64, source: &str, reason: DenyReason) -> DecisionEvent {
    DecisionEvent {
        decision: DecisionLabel::Deny,
        reason: Some(reason),
        anomalies: Anomalies::of(DecisionLabel::Deny, Some(reason), false),
        source_label: Arc::from(source),
        source_id: Some(Arc::from(source)),
        route: None,
        rule: None,
        ..allow(time_ms)
    }
}

/// The same event in an audit-mode destination.
pub fn audit_deny(time_ms: i64, source: &str) -> DecisionEvent {
    DecisionEvent {
        decision: DecisionLabel::AuditDeny,
        mode: Mode::Audit,
        anomalies: Anomalies::of(
            DecisionLabel::AuditDeny,
            Some(DenyReason::NoMatchingRule),
            false,
        ),
        ..deny(time_ms, source, DenyReason::NoMatchingRule)
    }
}

pub fn key(source: &str, route: &str, method: &str) -> EdgeKey {
    EdgeKey {
        source: Arc::from(source),
        destination: Arc::from(LAB),
        route: Arc::from(route),
        method: Arc::from(method),
    }
}

/// The value of one series in an exposition, if present.
pub fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

/// `hallpass_call_path_anomalies_total` for lab results, or 0 when absent.
pub fn anomalies(metrics: &Metrics, source: &str, kind: &str) -> f64 {
    let text = metrics.encode().unwrap();
    sample(
        &text,
        &format!(
            "hallpass_call_path_anomalies_total{{data_class=\"none\",destination=\"{LAB}\",kind=\"{kind}\",source=\"{source}\"}}"
        ),
    )
    .unwrap_or(0.0)
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// A real exposition after decisions, anomalies of every kind, rule usage,
/// bundle expiry, cache lookups and Workload API updates.
pub async fn busy_exposition() -> String {
    let metrics = Metrics::new().unwrap();
    let (telemetry, _task) = Telemetry::start(
        TelemetrySettings {
            audit: AuditTarget::Off,
            learning_window: Duration::ZERO,
            ..TelemetrySettings::default()
        },
        metrics.clone(),
    );
    telemetry.policy_loaded(DeclaredGraph {
        edges: vec![DeclaredEdge {
            source: EHR.into(),
            destination: LAB.into(),
            rule: "ehr-reads-results".into(),
            routes: vec![RESULTS.into()],
            methods: vec!["GET".into()],
            data_class: Default::default(),
        }],
    });
    let t = now_ms();
    telemetry.record(allow(t));
    telemetry.record(deny(t, BILLING, DenyReason::NoMatchingRule));
    telemetry.record(audit_deny(t, "other:hospital.example"));
    telemetry.flush().await;
    metrics.record_decision(EHR, LAB, DecisionLabel::Allow, None);
    metrics.record_decision(
        BILLING,
        LAB,
        DecisionLabel::Deny,
        Some(DenyReason::NoMatchingRule),
    );
    metrics.record_decision(
        "other:hospital.example",
        LAB,
        DecisionLabel::AuditDeny,
        Some(DenyReason::NoMatchingRule),
    );
    for kind in AnomalyKind::ALL {
        metrics.record_anomaly(BILLING, LAB, kind, DataClass::None);
    }
    metrics.record_reload(true);
    metrics.set_bundle_expiry("hospital.example", 1_900_000_000);
    metrics.check_duration.observe(0.000_042);
    metrics.cache_hits.inc();
    metrics.cache_misses.inc();
    metrics.workload_api_connected.set(1);
    metrics.record_workload_api_update(CredentialKind::X509);
    metrics.encode().unwrap()
}
