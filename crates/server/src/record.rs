//! Record: count one decision and hand its event to telemetry (design §2
//! step 5), from what [`Shared::decide`] returned. The record step never
//! reads the `CheckRequest`: decide read what it needs once.

use hallpass_policy::Decision;
use std::time::Duration;

use envoy_types::ext_authz::v3::pb::CheckResponse;
use hallpass_telemetry::{
    AuditTarget, BreakGlassMark, DecisionEvent, DenyReason, Mode, request_id, trace_id,
};

/// The longest a check waits for its audit record under
/// `telemetry.audit_required` (Envoy's own ext_authz timeout is shorter).
pub const AUDIT_WAIT: Duration = Duration::from_secs(2);

use crate::{Decided, Shared};

impl Shared {
    /// Count one decision and hand its [`event`](Self::event) to telemetry
    /// (a non-blocking queue push).
    pub fn record(&self, decided: &Decided<'_>, time_ms: i64) {
        self.count(decided);
        self.telemetry.record(self.event(decided, time_ms));
    }

    /// Count one decision in `hallpass_decisions_total` (a break-glass
    /// allow also in `hallpass_break_glass_calls_total`).
    pub fn count(&self, decided: &Decided<'_>) {
        let outcome = &decided.outcome;
        let reason = outcome.decision.deny_reason();
        if let Some(grant) = &outcome.break_glass {
            // Rare by design, so a label lookup is fine here.
            self.metrics.record_break_glass(
                &outcome.source_label,
                &outcome.destination_label,
                &grant.name,
            );
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
    }

    /// `telemetry.audit_required`: hand the decision's event to telemetry
    /// and wait (at most 2 s, `AUDIT_WAIT`) until its audit record is written.
    /// Written: the decision is counted and `answer` goes back. Not written
    /// (a failed write, a full queue, the worker gone, too slow): the check
    /// is denied `internal_error` instead, whatever the decision and the
    /// destination's mode, and counted so. Fail closed: no call goes
    /// through without its record.
    pub async fn record_required(
        &self,
        decided: Decided<'_>,
        answer: CheckResponse,
        time_ms: i64,
    ) -> CheckResponse {
        let written = match self
            .telemetry
            .record_required(self.event(&decided, time_ms))
        {
            Some(rx) => matches!(tokio::time::timeout(AUDIT_WAIT, rx).await, Ok(Ok(true))),
            None => false,
        };
        if written {
            self.count(&decided);
            return answer;
        }
        let mut failed = decided;
        failed.outcome.decision = Decision::deny(DenyReason::InternalError);
        failed.outcome.mode = Mode::Enforce;
        // Denied after all: no emergency grant let this call through.
        failed.outcome.break_glass = None;
        self.count(&failed);
        crate::answer::check_response(&failed.outcome)
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
            data_class: outcome.data_class,
            break_glass: outcome.break_glass.as_ref().map(|g| BreakGlassMark {
                grant: g.name.clone(),
                ticket: g.ticket.clone(),
                opened_by: g.opened_by.clone(),
            }),
        }
    }
}
