//! What the decision path hands to telemetry: one [`DecisionEvent`] per check.

use std::sync::Arc;

use hallpass_vocab::{
    Anomalies, Credentials, DataClass, DecisionLabel, DenyReason, Method, Mode, PathIssue,
};

/// Route label of an edge whose request matched no rule.
pub const UNMATCHED_ROUTE: &str = "(unmatched)";

/// One decision, as telemetry sees it. Every field that can become a metric
/// label is bounded; the raw path is only present when explicitly enabled.
#[derive(Debug, Clone)]
pub struct DecisionEvent {
    /// Unix time in milliseconds.
    pub time_ms: i64,
    /// The decision.
    pub decision: DecisionLabel,
    /// Why it was denied; `None` for an allow (labelled `ok`).
    pub reason: Option<DenyReason>,
    /// The destination's mode.
    pub mode: Mode,
    /// Bounded source label.
    pub source_label: Arc<str>,
    /// The proven SPIFFE ID (audit log only; never a label).
    pub source_id: Option<Arc<str>>,
    /// Bounded destination label.
    pub destination: Arc<str>,
    /// The request method (bounded: unknown methods are `OTHER`).
    pub method: Method,
    /// The matched route template, if a rule matched.
    pub route: Option<Arc<str>>,
    /// The matched rule, if any.
    pub rule: Option<Arc<str>>,
    /// Credential kinds that proved the caller.
    pub credentials: Credentials,
    /// The anomalies the decision path found (denied, unknown source,
    /// revoked, identity mismatch, grant expired); the worker adds the ones
    /// that need the call history (new edge, rate spike).
    pub anomalies: Anomalies,
    /// Envoy's `x-request-id`, only in the UUID form Envoy generates (see
    /// [`request_id`]).
    pub request_id: Option<String>,
    /// W3C trace id from `traceparent`, when present and valid.
    pub trace_id: Option<String>,
    /// The raw request path, only with `telemetry.log_raw_paths` (no PHI deployments).
    pub raw_path: Option<String>,
    /// Why the path is ambiguous, on an `ambiguous_path` deny: a fixed code
    /// (`trailing_slash`, `dot_segment`, …), never the path.
    pub path_issue: Option<PathIssue>,
    /// The data class of the call (bounded: five values): the audit
    /// record's `data_class` and the anomaly counter's label.
    pub data_class: DataClass,
    /// The emergency grant that allowed the call, when one did: the audit
    /// record's reason is then `break_glass`, with the grant and ticket.
    pub break_glass: Option<BreakGlassMark>,
}

/// What the audit record keeps of the break-glass grant that allowed a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassMark {
    /// The grant's name (also the `grant` metric label).
    pub grant: Arc<str>,
    /// The ticket the grant was opened under.
    pub ticket: Arc<str>,
    /// Who opened it.
    pub opened_by: Arc<str>,
}

/// Extract a W3C trace id (`traceparent: 00-<32 hex>-<16 hex>-<2 hex>`).
pub fn trace_id(traceparent: &str) -> Option<String> {
    let mut parts = traceparent.trim().split('-');
    let (_version, trace) = (parts.next()?, parts.next()?);
    let ok = trace.len() == 32
        && trace
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        && trace.bytes().any(|b| b != b'0');
    ok.then(|| trace.to_owned())
}

/// `x-request-id` for the audit record: only in the form Envoy generates, a
/// UUID (`8-4-4-4-12` hex digits), recorded in lower case; anything else is
/// left out. The audit log holds nothing a caller can write freely: a
/// looser rule (letters, digits and `-`) once let `MRN-12345` through.
pub fn request_id(value: &str) -> Option<String> {
    const GROUPS: [usize; 5] = [8, 4, 4, 4, 12];
    let mut parts = value.split('-');
    let ok = GROUPS.iter().all(|&len| {
        parts
            .next()
            .is_some_and(|p| p.len() == len && p.bytes().all(|b| b.is_ascii_hexdigit()))
    }) && parts.next().is_none();
    ok.then(|| value.to_ascii_lowercase())
}
