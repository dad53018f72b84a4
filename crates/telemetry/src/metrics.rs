//! The Prometheus registry: every metric name, help text and bucket lives here.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use hallpass_vocab::{
    AnomalyKind, CredentialKind, DataClass, DecisionLabel, DenyReason, reason_label,
};

use crate::TelemetryError;

/// Check-duration histogram buckets (seconds): the hallpass part of a check is
/// microseconds when warm, tens of microseconds for a fresh signature check.
const DURATION_BUCKETS: &[f64] = &[
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.025, 0.1,
];

/// Credential lifetime buckets (seconds): 5 min … 1 year. SPIRE's defaults
/// are 1 h (X.509-SVID) and 5 min (JWT-SVID).
const LIFETIME_BUCKETS: &[f64] = &[
    300.0,
    900.0,
    3600.0,
    4.0 * 3600.0,
    12.0 * 3600.0,
    86_400.0,
    7.0 * 86_400.0,
    30.0 * 86_400.0,
    90.0 * 86_400.0,
    365.0 * 86_400.0,
];

/// Every metric hallpass exports, on one registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    pub(crate) decisions: IntCounterVec,
    /// Time spent in hallpass per check, from request decode to answer.
    pub check_duration: Histogram,
    reloads: IntCounterVec,
    bundle_expiry: IntGaugeVec,
    pub(crate) anomalies: IntCounterVec,
    pub(crate) rule_last_match: IntGaugeVec,
    /// Identity cache lookups that found a verified credential.
    pub cache_hits: IntCounter,
    /// Identity cache lookups that had to verify.
    pub cache_misses: IntCounter,
    /// Entries dropped to keep the identity cache under its cap.
    pub cache_evictions: IntCounter,
    /// 1 while a Workload API stream is up.
    pub workload_api_connected: IntGauge,
    /// 1 while the policy in force defines this sidecar's `workload.id`
    /// (or, without `workload.id`, once a policy is loaded); 0 otherwise.
    pub policy_workload_defined: IntGauge,
    /// Workload API (re)connection attempts after the first.
    pub workload_api_reconnects: IntCounter,
    workload_api_updates: IntCounterVec,
    /// Decision events dropped because the telemetry queue was full.
    pub events_dropped: IntCounter,
    /// Edges not tracked because the call-graph table was full.
    pub edges_dropped: IntCounter,
    /// Edges currently tracked.
    pub edges: IntGauge,
    /// Edges in the learned baseline.
    pub baseline_edges: IntGauge,
    /// Audit records that could not be written.
    pub audit_write_errors: IntCounter,
    /// Checks whose decision panicked (each answered as an `internal_error`
    /// deny), and decision events whose telemetry panicked.
    pub panics: IntCounterVec,
    credential_lifetime: HistogramVec,
    long_lived_credentials: IntCounterVec,
    /// Authz connections open now (TCP or Unix socket).
    pub authz_connections: IntGauge,
    /// Authz connections closed at accept: the open ones were at the cap.
    pub authz_connections_refused: IntCounter,
    /// Authz connections closed because no byte came within the deadline
    /// after accept (an idle or slowloris client).
    pub authz_connections_idle_closed: IntCounter,
    /// Unix time the metrics (the sidecar) started: the uptime reference of
    /// the "never used" alert on `hallpass_rule_last_match_timestamp_seconds`.
    pub start_time: IntGauge,
    /// Break-glass and JWT replay metrics.
    pub controls: crate::ControlMetrics,
    /// The verification lane's refusal counters.
    pub verification_lane: crate::VerificationLaneMetrics,
    /// Unix time rule and identity usage tracking began, carried across
    /// restarts in the baseline file: a rule whose last match is 0 has been
    /// unused at least since then.
    pub tracking_since: IntGauge,
}

fn counter(name: &str, help: &str) -> Result<IntCounter, TelemetryError> {
    Ok(IntCounter::with_opts(Opts::new(name, help))?)
}

fn gauge(name: &str, help: &str) -> Result<IntGauge, TelemetryError> {
    Ok(IntGauge::with_opts(Opts::new(name, help))?)
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> Result<IntCounterVec, TelemetryError> {
    Ok(IntCounterVec::new(Opts::new(name, help), labels)?)
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> Result<IntGaugeVec, TelemetryError> {
    Ok(IntGaugeVec::new(Opts::new(name, help), labels)?)
}

impl Metrics {
    /// Register all metrics on a fresh registry.
    pub fn new() -> Result<Self, TelemetryError> {
        let decisions = counter_vec(
            "hallpass_decisions_total",
            "Authorization decisions, by bounded source, destination, decision and reason code.",
            &["source", "destination", "decision", "reason"],
        )?;
        let check_duration = Histogram::with_opts(
            HistogramOpts::new(
                "hallpass_check_duration_seconds",
                "Time hallpass spent deciding one Check call.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
        )?;
        let reloads = counter_vec(
            "hallpass_policy_reloads_total",
            "Policy loads and reloads, by result (success or failure).",
            &["result"],
        )?;
        let bundle_expiry = gauge_vec(
            "hallpass_trust_bundle_expiry_timestamp_seconds",
            "Unix time at which the earliest-expiring CA certificate of a trust domain's X.509 bundle expires.",
            &["trust_domain"],
        )?;
        let anomalies = counter_vec(
            "hallpass_call_path_anomalies_total",
            "Unexpected call paths, by bounded source, destination, kind and data class.",
            &["source", "destination", "kind", "data_class"],
        )?;
        let rule_last_match = gauge_vec(
            "hallpass_rule_last_match_timestamp_seconds",
            "Unix time a rule last allowed a request (0 = never since start): the unused-permission signal.",
            &["destination", "rule"],
        )?;
        let cache_lookups = counter_vec(
            "hallpass_identity_cache_lookups_total",
            "Verified-credential cache lookups, by result (hit or miss).",
            &["result"],
        )?;
        let cache_hits = cache_lookups.with_label_values(&["hit"]);
        let cache_misses = cache_lookups.with_label_values(&["miss"]);
        let cache_evictions = counter(
            "hallpass_identity_cache_evictions_total",
            "Entries dropped to keep the verified-credential cache under its cap.",
        )?;
        let workload_api_connected = gauge(
            "hallpass_workload_api_connected",
            "1 while the SPIFFE Workload API bundle streams are up, else 0.",
        )?;
        let policy_workload_defined = gauge(
            "hallpass_policy_workload_defined",
            "1 while the policy in force defines this sidecar's workload.id (without workload.id: once a policy is loaded), else 0: every call is denied.",
        )?;
        let workload_api_reconnects = counter(
            "hallpass_workload_api_reconnects_total",
            "Workload API reconnection attempts after a stream ended or failed.",
        )?;
        let workload_api_updates = counter_vec(
            "hallpass_workload_api_updates_total",
            "Bundle sets received from the Workload API, by kind (x509 or jwt).",
            &["kind"],
        )?;
        let events_dropped = counter(
            "hallpass_telemetry_events_dropped_total",
            "Decision events not recorded (call graph, anomalies, audit log) because the telemetry queue was full.",
        )?;
        let edges_dropped = counter(
            "hallpass_call_graph_edges_dropped_total",
            "Observations of edges not tracked (or not learned) because the call-graph table (or the baseline) was at its cap.",
        )?;
        let edges = gauge(
            "hallpass_call_graph_edges",
            "Edges (source, destination, route, method) currently tracked.",
        )?;
        let baseline_edges = gauge(
            "hallpass_call_graph_baseline_edges",
            "Edges in the learned call-path baseline.",
        )?;
        let audit_write_errors = counter(
            "hallpass_audit_log_write_errors_total",
            "Audit records that could not be written.",
        )?;

        let panics = counter_vec(
            "hallpass_panics_total",
            "Panics caught on the decision path, by stage: decide (the check was answered as an internal_error deny, counted and audited), record (the decision's metrics or event), telemetry (the worker's handling of one event). Any non-zero value is a bug to report.",
            &["stage"],
        )?;
        for stage in ["decide", "record", "telemetry"] {
            panics.with_label_values(&[stage]);
        }

        let credential_lifetime = HistogramVec::new(
            HistogramOpts::new(
                "hallpass_credential_lifetime_seconds",
                "Total lifetime (not_after - not_before, or exp - iat) of each distinct credential verified, by kind (x509 or jwt).",
            )
            .buckets(LIFETIME_BUCKETS.to_vec()),
            &["kind"],
        )?;
        let long_lived_credentials = counter_vec(
            "hallpass_long_lived_credentials_total",
            "Distinct credentials verified whose lifetime exceeds identity.max_lifetime (x509 24h, jwt 1h by default), by kind.",
            &["kind"],
        )?;
        for kind in CredentialKind::ALL {
            long_lived_credentials.with_label_values(&[kind.as_str()]);
        }

        let authz_connections = gauge(
            "hallpass_authz_connections",
            "Connections to the authz listener open now.",
        )?;
        let authz_connections_refused = counter(
            "hallpass_authz_connections_refused_total",
            "Connections to the authz listener closed at accept because the open ones were at the cap (1024).",
        )?;
        let authz_connections_idle_closed = counter(
            "hallpass_authz_connections_idle_closed_total",
            "Connections to the authz listener closed because no byte arrived within 10 s of accept (idle or slowloris clients).",
        )?;

        let start_time = gauge(
            "hallpass_start_time_seconds",
            "Unix time this hallpass process started.",
        )?;
        start_time.set(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        );

        let tracking_since = gauge(
            "hallpass_rule_tracking_since_timestamp_seconds",
            "Unix time rule usage tracking began (the first start recorded in telemetry.baseline, else this start): a rule whose last match is 0 has been unused at least since then.",
        )?;
        tracking_since.set(start_time.get());

        let registry = Registry::new();
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(decisions.clone()),
            Box::new(check_duration.clone()),
            Box::new(reloads.clone()),
            Box::new(bundle_expiry.clone()),
            Box::new(anomalies.clone()),
            Box::new(rule_last_match.clone()),
            Box::new(cache_lookups),
            Box::new(cache_evictions.clone()),
            Box::new(workload_api_connected.clone()),
            Box::new(policy_workload_defined.clone()),
            Box::new(workload_api_reconnects.clone()),
            Box::new(workload_api_updates.clone()),
            Box::new(events_dropped.clone()),
            Box::new(edges_dropped.clone()),
            Box::new(edges.clone()),
            Box::new(baseline_edges.clone()),
            Box::new(audit_write_errors.clone()),
            Box::new(panics.clone()),
            Box::new(start_time.clone()),
            Box::new(authz_connections.clone()),
            Box::new(authz_connections_refused.clone()),
            Box::new(authz_connections_idle_closed.clone()),
            Box::new(tracking_since.clone()),
            Box::new(credential_lifetime.clone()),
            Box::new(long_lived_credentials.clone()),
        ];
        for c in collectors {
            registry.register(c)?;
        }
        let controls = crate::ControlMetrics::register(&registry)?;
        let verification_lane = crate::VerificationLaneMetrics::register(&registry)?;
        // Make both results visible from the start, so rate() works at once.
        reloads.with_label_values(&["success"]);
        reloads.with_label_values(&["failure"]);
        Ok(Self {
            registry,
            decisions,
            check_duration,
            reloads,
            bundle_expiry,
            anomalies,
            rule_last_match,
            cache_hits,
            cache_misses,
            cache_evictions,
            workload_api_connected,
            policy_workload_defined,
            workload_api_reconnects,
            workload_api_updates,
            events_dropped,
            edges_dropped,
            edges,
            baseline_edges,
            audit_write_errors,
            panics,
            start_time,
            authz_connections,
            authz_connections_refused,
            authz_connections_idle_closed,
            tracking_since,
            credential_lifetime,
            long_lived_credentials,
            controls,
            verification_lane,
        })
    }

    /// Record the lifetime of a freshly verified credential, and count it as
    /// long-lived when it exceeds `max_seconds`.
    pub fn record_credential_lifetime(
        &self,
        kind: CredentialKind,
        lifetime_seconds: i64,
        max_seconds: i64,
    ) {
        self.credential_lifetime
            .with_label_values(&[kind.as_str()])
            .observe(lifetime_seconds.max(0) as f64);
        if lifetime_seconds > max_seconds {
            self.long_lived_credentials
                .with_label_values(&[kind.as_str()])
                .inc();
        }
    }

    /// Count one decision by label lookup. The hot path uses
    /// [`DecisionCounters`](crate::DecisionCounters) instead.
    pub fn record_decision(
        &self,
        source: &str,
        destination: &str,
        decision: DecisionLabel,
        reason: Option<DenyReason>,
    ) {
        self.decisions
            .with_label_values(&[source, destination, decision.as_str(), reason_label(reason)])
            .inc();
    }

    /// Count one call allowed by the break-glass grant `grant`:
    /// `hallpass_decisions_total{decision="allow",reason="break_glass"}` and
    /// `hallpass_break_glass_calls_total` (labels bounded: the policy's
    /// source and destination labels, a grant name of a capped list).
    pub fn record_break_glass(&self, source: &str, destination: &str, grant: &str) {
        self.decisions
            .with_label_values(&[
                source,
                destination,
                DecisionLabel::Allow.as_str(),
                hallpass_vocab::BREAK_GLASS_REASON,
            ])
            .inc();
        self.controls
            .break_glass_calls
            .with_label_values(&[source, destination, grant])
            .inc();
    }

    /// Count one panic caught at `stage` (`decide`, `record`, `telemetry`).
    pub fn record_panic(&self, stage: &'static str) {
        self.panics.with_label_values(&[stage]).inc();
    }

    /// Count one anomaly, touching data of `class`.
    pub fn record_anomaly(
        &self,
        source: &str,
        destination: &str,
        kind: AnomalyKind,
        class: DataClass,
    ) {
        self.anomalies
            .with_label_values(&[source, destination, kind.as_str(), class.as_str()])
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

    /// Count one bundle update from the Workload API, by the kind of
    /// credential the bundles verify.
    pub fn record_workload_api_update(&self, kind: CredentialKind) {
        self.workload_api_updates
            .with_label_values(&[kind.as_str()])
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> Result<String, TelemetryError> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}
