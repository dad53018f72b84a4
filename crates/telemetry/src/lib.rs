//! hallpass telemetry: Prometheus metrics whose label sets are bounded by
//! construction.
//!
//! Label values never come from request data. `source` and `destination` are
//! SPIFFE IDs only when the policy names them (else `other:<trust domain>`),
//! `decision` and `reason` come from closed enums, and routes are templates.
//! The callers (the server) are responsible for handing in such values; this
//! crate owns the metric names, help texts and buckets so they stay stable.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Errors from building or encoding metrics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// The Prometheus client rejected a metric definition or encoding.
    #[error("prometheus: {0}")]
    Prometheus(#[from] prometheus::Error),
}

/// The decision label of `hallpass_decisions_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionLabel {
    /// Allowed.
    Allow,
    /// Denied and enforced.
    Deny,
    /// Would have been denied; let through because the destination is in audit mode.
    AuditDeny,
}

impl DecisionLabel {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::AuditDeny => "audit_deny",
        }
    }
}

/// Check-duration histogram buckets (seconds): the hallpass part of a check is
/// microseconds when warm, tens of microseconds for a fresh signature check.
const DURATION_BUCKETS: &[f64] = &[
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.025, 0.1,
];

/// Every metric hallpass exports, on one registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    decisions: IntCounterVec,
    /// Time spent in hallpass per check, from request decode to answer.
    pub check_duration: Histogram,
    reloads: IntCounterVec,
    bundle_expiry: IntGaugeVec,
}

impl Metrics {
    /// Register all metrics on a fresh registry.
    pub fn new() -> Result<Self, TelemetryError> {
        let registry = Registry::new();
        let decisions = IntCounterVec::new(
            Opts::new(
                "hallpass_decisions_total",
                "Authorization decisions, by bounded source, destination, decision and reason code.",
            ),
            &["source", "destination", "decision", "reason"],
        )?;
        let check_duration = Histogram::with_opts(
            HistogramOpts::new(
                "hallpass_check_duration_seconds",
                "Time hallpass spent deciding one Check call.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
        )?;
        let reloads = IntCounterVec::new(
            Opts::new(
                "hallpass_policy_reloads_total",
                "Policy loads and reloads, by result (success or failure).",
            ),
            &["result"],
        )?;
        let bundle_expiry = IntGaugeVec::new(
            Opts::new(
                "hallpass_trust_bundle_expiry_timestamp_seconds",
                "Unix time at which the first CA certificate of a trust domain's X.509 bundle expires.",
            ),
            &["trust_domain"],
        )?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(check_duration.clone()))?;
        registry.register(Box::new(reloads.clone()))?;
        registry.register(Box::new(bundle_expiry.clone()))?;
        // Make both results visible from the start, so rate() works at once.
        reloads.with_label_values(&["success"]);
        reloads.with_label_values(&["failure"]);
        Ok(Self {
            registry,
            decisions,
            check_duration,
            reloads,
            bundle_expiry,
        })
    }

    /// Count one decision. All four values must be bounded (see the crate docs).
    pub fn record_decision(
        &self,
        source: &str,
        destination: &str,
        decision: DecisionLabel,
        reason: &str,
    ) {
        self.decisions
            .with_label_values(&[source, destination, decision.as_str(), reason])
            .inc();
    }

    /// Count one policy load.
    pub fn record_reload(&self, success: bool) {
        self.reloads
            .with_label_values(&[if success { "success" } else { "failure" }])
            .inc();
    }

    /// Publish the expiry of a trust domain's bundle.
    pub fn set_bundle_expiry(&self, trust_domain: &str, unix_seconds: i64) {
        self.bundle_expiry
            .with_label_values(&[trust_domain])
            .set(unix_seconds);
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> Result<String, TelemetryError> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}
