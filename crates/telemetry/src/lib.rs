//! hallpass telemetry: Prometheus metrics whose label sets are bounded by
//! construction.
//!
//! Label values never come from request data. `source` and `destination` are
//! SPIFFE IDs only when the policy names them (else `other:<trust domain>`),
//! `decision` and `reason` come from closed enums, and routes are templates.
//! The callers (the server) are responsible for handing in such values; this
//! crate owns the metric names, help texts and buckets so they stay stable.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
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
    /// Identity cache lookups that found a verified credential.
    pub cache_hits: IntCounter,
    /// Identity cache lookups that had to verify.
    pub cache_misses: IntCounter,
    /// Entries dropped to keep the identity cache under its cap.
    pub cache_evictions: IntCounter,
    /// 1 while a Workload API stream is up.
    pub workload_api_connected: IntGauge,
    /// Workload API (re)connection attempts after the first.
    pub workload_api_reconnects: IntCounter,
    /// Bundle updates received from the Workload API, by kind.
    workload_api_updates: IntCounterVec,
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
        let counter = |name: &str, help: &str| IntCounter::with_opts(Opts::new(name, help));
        let cache_lookups = IntCounterVec::new(
            Opts::new(
                "hallpass_identity_cache_lookups_total",
                "Verified-credential cache lookups, by result (hit or miss).",
            ),
            &["result"],
        )?;
        let cache_hits = cache_lookups.with_label_values(&["hit"]);
        let cache_misses = cache_lookups.with_label_values(&["miss"]);
        let cache_evictions = counter(
            "hallpass_identity_cache_evictions_total",
            "Entries dropped to keep the verified-credential cache under its cap.",
        )?;
        let workload_api_connected = IntGauge::with_opts(Opts::new(
            "hallpass_workload_api_connected",
            "1 while the SPIFFE Workload API bundle streams are up, else 0.",
        ))?;
        let workload_api_reconnects = counter(
            "hallpass_workload_api_reconnects_total",
            "Workload API reconnection attempts after a stream ended or failed.",
        )?;
        let workload_api_updates = IntCounterVec::new(
            Opts::new(
                "hallpass_workload_api_updates_total",
                "Bundle sets received from the Workload API, by kind (x509 or jwt).",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(cache_lookups))?;
        registry.register(Box::new(cache_evictions.clone()))?;
        registry.register(Box::new(workload_api_connected.clone()))?;
        registry.register(Box::new(workload_api_reconnects.clone()))?;
        registry.register(Box::new(workload_api_updates.clone()))?;
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
            cache_hits,
            cache_misses,
            cache_evictions,
            workload_api_connected,
            workload_api_reconnects,
            workload_api_updates,
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

    /// Forget every trust domain's expiry (before publishing the current set).
    pub fn reset_bundle_expiry(&self) {
        self.bundle_expiry.reset();
    }

    /// Count one bundle update from the Workload API (`x509` or `jwt`).
    pub fn record_workload_api_update(&self, kind: &'static str) {
        self.workload_api_updates.with_label_values(&[kind]).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> Result<String, TelemetryError> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}
