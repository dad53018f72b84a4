//! Record: count one decision and hand its event to telemetry (design §2
//! step 5), from what [`Shared::decide`] returned. The record step never
//! reads the `CheckRequest`: decide read what it needs once.

use hallpass_policy::Decision;
use hallpass_telemetry::{AuditTarget, BreakGlassMark, DecisionEvent, request_id, trace_id};

use crate::{Decided, Shared};

impl Shared {
    /// Count one decision and hand its [`event`](Self::event) to telemetry
    /// (a non-blocking queue push).
    pub fn record(&self, decided: &Decided<'_>, time_ms: i64) {
        let outcome = &decided.outcome;
        let reason = outcome.decision.deny_reason();
        if let Some(grant) = &outcome.break_glass {
            // Rare by design, so a label lookup is fine here.
            self.metrics.record_break_glass(
                &outcome.source_label,
                &outcome.destination_label,
                &grant.name,
            );
            self.telemetry.record(self.event(decided, time_ms));
            return;
        }
        match &outcome.counter {
            Some(slot) => slot.policy.counters.inc(
                slot.source,
                slot.destination,
                outcome.decision_label(),
                reason,
            ),
            None => self.metrics.record_decision(
                &outcome.source_label,
                &outcome.destination_label,
                outcome.decision_label(),
                reason,
            ),
        }
        self.telemetry.record(self.event(decided, time_ms));
    }

    /// The telemetry event of one decision: bounded labels, the proven ID
    /// (for the audit record only), correlation IDs in their fixed formats,
    /// and never the raw path unless `telemetry.log_raw_paths` is set.
    pub fn event(&self, decided: &Decided<'_>, time_ms: i64) -> DecisionEvent {
        let Decided { outcome, request } = decided;
        let (rule, route) = match &outcome.decision {
            Decision::Allow { rule, route } => (Some(rule.clone()), Some(route.clone())),
            Decision::Deny { .. } => (None, None),
        };
        DecisionEvent {
            time_ms,
            decision: outcome.decision_label(),
            reason: outcome.decision.deny_reason(),
            mode: outcome.mode,
            source_label: outcome.source_label.clone(),
            // Only the audit record uses the full ID: skip the allocation without one.
            source_id: outcome
                .source_text
                .as_ref()
                .filter(|_| self.settings.telemetry.audit != AuditTarget::Off)
                .cloned(),
            destination: outcome.destination_label.clone(),
            method: request.method,
            route,
            rule,
            credentials: outcome.credentials,
            anomalies: outcome.anomalies(),
            request_id: request.request_id.and_then(request_id),
            trace_id: request.traceparent.and_then(trace_id),
            raw_path: self.settings.log_raw_paths.then(|| request.path.to_owned()),
            path_issue: outcome.path_issue,
            break_glass: outcome.break_glass.as_ref().map(|g| BreakGlassMark {
                grant: g.name.clone(),
                ticket: g.ticket.clone(),
                opened_by: g.opened_by.clone(),
            }),
        }
    }
}
