//! Decision counters: slot arithmetic lands on the right series, and
//! out-of-range indices fall back to a label lookup without panicking.

use crate::common;

use std::sync::Arc;

use common::*;
use hallpass_telemetry::{DecisionCounters, DecisionLabel, DenyReason, Metrics};

fn series(source: &str, destination: &str, decision: &str, reason: &str) -> String {
    format!(
        "hallpass_decisions_total{{decision=\"{decision}\",destination=\"{destination}\",reason=\"{reason}\",source=\"{source}\"}}"
    )
}

/// One label table serves sources and destinations (as a policy's does).
const LABELS: [&str; 5] = [EHR, BILLING, "other:hospital.example", LAB, "other"];

fn counters(metrics: &Metrics) -> DecisionCounters {
    DecisionCounters::new(metrics, LABELS.iter().map(|l| Arc::from(*l)).collect())
}

/// Every reason slot: the deny reasons, then `ok` (an allow).
fn reasons() -> Vec<Option<DenyReason>> {
    DenyReason::ALL
        .into_iter()
        .map(Some)
        .chain([None])
        .collect()
}

fn reason_code(reason: Option<DenyReason>) -> &'static str {
    reason.map_or("ok", DenyReason::code)
}

#[test]
fn every_combination_lands_on_its_own_series() {
    let metrics = Metrics::new().unwrap();
    let c = counters(&metrics);
    assert_eq!(c.slots_per_destination(), 5 * 3 * 14);
    let sources = [EHR, BILLING, "other:hospital.example"];
    let destinations = [LAB, "other"];
    let index = |label: &str| LABELS.iter().position(|l| *l == label).unwrap();
    // Count each combination a distinct number of times.
    let mut n = 0;
    for s in sources {
        for d in destinations {
            for decision in DecisionLabel::ALL {
                for r in reasons() {
                    n += 1;
                    for _ in 0..n {
                        c.inc(index(s), index(d), decision, r);
                    }
                }
            }
        }
    }
    let text = metrics.encode().unwrap();
    let mut n = 0;
    for s in sources {
        for d in destinations {
            for decision in DecisionLabel::ALL {
                for r in reasons() {
                    n += 1;
                    let name = series(s, d, decision.as_str(), reason_code(r));
                    assert_eq!(sample(&text, &name), Some(f64::from(n)), "{name}");
                }
            }
        }
    }
}

#[test]
fn only_used_combinations_are_exported() {
    let metrics = Metrics::new().unwrap();
    let c = counters(&metrics);
    c.inc(0, 3, DecisionLabel::Allow, None);
    let text = metrics.encode().unwrap();
    let lines = text
        .lines()
        .filter(|l| l.starts_with("hallpass_decisions_total{"))
        .count();
    assert_eq!(lines, 1, "{text}");
    assert_eq!(sample(&text, &series(EHR, LAB, "allow", "ok")), Some(1.0));
}

#[test]
fn out_of_range_indices_fall_back_without_panicking() {
    let metrics = Metrics::new().unwrap();
    let c = counters(&metrics);
    let no_rule = Some(DenyReason::NoMatchingRule);
    c.inc(99, 3, DecisionLabel::Deny, no_rule);
    c.inc(0, 99, DecisionLabel::Deny, no_rule);
    c.inc(usize::MAX, usize::MAX, DecisionLabel::AuditDeny, None);
    let text = metrics.encode().unwrap();
    assert_eq!(
        sample(&text, &series("unknown", LAB, "deny", "no_matching_rule")),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, &series(EHR, "unknown", "deny", "no_matching_rule")),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, &series("unknown", "unknown", "audit_deny", "ok")),
        Some(1.0)
    );
}

#[test]
fn an_empty_label_space_never_panics() {
    let metrics = Metrics::new().unwrap();
    let c = DecisionCounters::new(&metrics, Vec::new());
    assert_eq!(c.slots_per_destination(), 0);
    c.inc(0, 0, DecisionLabel::Allow, None);
    let text = metrics.encode().unwrap();
    assert_eq!(
        sample(&text, &series("unknown", "unknown", "allow", "ok")),
        Some(1.0)
    );
}

#[test]
fn counters_are_shared_with_metrics_recorded_by_label() {
    let metrics = Metrics::new().unwrap();
    let c = counters(&metrics);
    c.inc(1, 3, DecisionLabel::Deny, Some(DenyReason::NoMatchingRule));
    metrics.record_decision(
        BILLING,
        LAB,
        DecisionLabel::Deny,
        Some(DenyReason::NoMatchingRule),
    );
    let text = metrics.encode().unwrap();
    assert_eq!(
        sample(&text, &series(BILLING, LAB, "deny", "no_matching_rule")),
        Some(2.0)
    );
}
