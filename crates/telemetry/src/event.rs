//! What the decision path hands to telemetry: one [`DecisionEvent`] per check.

use std::sync::Arc;

use serde::Serialize;

use crate::DecisionLabel;

/// Kinds of `hallpass_call_path_anomalies_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// A call was denied (or would have been, in audit mode).
    Denied,
    /// A proven identity that no rule of this destination names.
    UnknownSource,
    /// An edge not in the learned baseline.
    NewEdge,
    /// An edge's rate far above its moving average.
    RateSpike,
    /// A time-bound grant was used after (or before) its window.
    GrantExpired,
    /// X.509 and JWT credentials named different identities.
    IdentityMismatch,
    /// A revoked identity or certificate was used.
    Revoked,
}

impl AnomalyKind {
    /// Every kind.
    pub const ALL: [AnomalyKind; 7] = [
        Self::Denied,
        Self::UnknownSource,
        Self::NewEdge,
        Self::RateSpike,
        Self::GrantExpired,
        Self::IdentityMismatch,
        Self::Revoked,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Denied => "denied",
            Self::UnknownSource => "unknown_source",
            Self::NewEdge => "new_edge",
            Self::RateSpike => "rate_spike",
            Self::GrantExpired => "grant_expired",
            Self::IdentityMismatch => "identity_mismatch",
            Self::Revoked => "revoked",
        }
    }
}

/// Route label of an edge whose request matched no rule.
pub const UNMATCHED_ROUTE: &str = "(unmatched)";

/// Bounded method label: a known HTTP method, else `OTHER`.
pub fn method_label(method: &str) -> &'static str {
    const METHODS: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
    ];
    METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("OTHER")
}

/// One decision, as telemetry sees it. Every field that can become a metric
/// label is bounded; the raw path is only present when explicitly enabled.
#[derive(Debug, Clone)]
pub struct DecisionEvent {
    /// Unix time in milliseconds.
    pub time_ms: i64,
    /// The decision.
    pub decision: DecisionLabel,
    /// Reason code, or `ok`.
    pub reason: &'static str,
    /// `enforce` or `audit`.
    pub mode: &'static str,
    /// Bounded source label.
    pub source_label: Arc<str>,
    /// The proven SPIFFE ID (audit log only; never a label).
    pub source_id: Option<Arc<str>>,
    /// Bounded destination label.
    pub destination: Arc<str>,
    /// Bounded method label (see [`method_label`]).
    pub method: &'static str,
    /// The matched route template, if a rule matched.
    pub route: Option<Arc<str>>,
    /// The matched rule, if any.
    pub rule: Option<Arc<str>>,
    /// Credential kinds that proved the caller: `x509`, `jwt`.
    pub credentials: &'static [&'static str],
    /// A proven caller that no rule of this destination names.
    pub unknown_source: bool,
    /// Envoy's `x-request-id`, only in the UUID form Envoy generates (see
    /// [`request_id`]).
    pub request_id: Option<String>,
    /// W3C trace id from `traceparent`, when present and valid.
    pub trace_id: Option<String>,
    /// The raw request path, only with `telemetry.log_raw_paths` (no PHI deployments).
    pub raw_path: Option<String>,
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
