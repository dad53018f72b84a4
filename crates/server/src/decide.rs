use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwapOption;
use envoy_types::ext_authz::v3::pb::CheckRequest;
use hallpass_identity::{
    JwtSvidVerifier, SpiffeId, VerificationCache, X509SvidVerifier, parse_spiffe_id_strict,
};
use hallpass_policy::{
    CompiledPolicy, Decision, DenyReason, FixedLabel, MetricLabel, Mode, Request,
};
use hallpass_telemetry::{
    AuditTarget, DecisionCounters, DecisionEvent, DecisionLabel, Metrics, Telemetry, method_label,
    request_id, trace_id,
};

use crate::caller::Verified;
use crate::config::{JwtSettings, Settings, X509From};
use crate::trust::TrustStore;

/// Metric label for a caller that proved no identity.
const UNAUTHENTICATED: &str = "unauthenticated";
/// Metric label for a destination that is not known.
const UNKNOWN: &str = "unknown";

/// Everything the decision path and the admin endpoints share. Readers never
/// take a lock: policy and bundles are swapped whole.
#[derive(Debug)]
pub struct Shared {
    pub(crate) settings: Settings,
    pub(crate) policy: ArcSwapOption<LoadedPolicy>,
    pub(crate) trust: TrustStore,
    pub(crate) draining: AtomicBool,
    pub(crate) x509: X509SvidVerifier,
    pub(crate) jwt: Option<(JwtSettings, JwtSvidVerifier)>,
    pub(crate) cache: VerificationCache<Verified>,
    /// The metrics registry.
    pub metrics: Metrics,
    /// The telemetry worker (call graph, anomalies, audit log).
    pub telemetry: Telemetry,
    /// A request path whose decision panics: the unit tests' way to prove
    /// that a panic still ends in a counted, audited deny. Compiled into the
    /// crate's own test build only, never into a library or binary that
    /// ships (nor into the integration tests' build of the crate).
    #[cfg(test)]
    pub(crate) fault_path: std::sync::OnceLock<String>,
}

/// A compiled policy with the decision-counter handles of its label space.
#[derive(Debug)]
pub struct LoadedPolicy {
    /// The matcher.
    pub policy: CompiledPolicy,
    /// `hallpass_decisions_total` handles, indexed by the policy's labels.
    pub counters: DecisionCounters,
}

impl LoadedPolicy {
    /// Pair a policy with counter slots for its labels.
    pub fn new(policy: CompiledPolicy, metrics: &Metrics) -> Self {
        let reasons = DenyReason::ALL
            .iter()
            .map(|r| r.code())
            .chain([OK_REASON])
            .collect();
        let counters = DecisionCounters::new(metrics, policy.labels().to_vec(), reasons);
        Self { policy, counters }
    }
}

/// The `reason` label of an allow; its slot follows the deny reasons.
const OK_REASON: &str = "ok";

/// The result of one check, with its bounded labels.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The policy's (or identity's) decision.
    pub decision: Decision,
    /// The destination's mode.
    pub mode: Mode,
    /// The proven caller, if any (also when it is revoked or its trust
    /// domain is not listed: the audit record names who tried).
    pub source: Option<SpiffeId>,
    /// The proven caller's trust domain is listed in the policy and neither
    /// its ID nor its certificate is revoked: the only case in which the
    /// answer names it to the application (see [`Outcome::vouched_source`]).
    pub vouched: bool,
    /// Bounded `source` label.
    pub source_label: Arc<str>,
    /// Bounded `destination` label.
    pub destination_label: Arc<str>,
    /// Credential kinds that proved the caller.
    pub credentials: &'static [&'static str],
    /// A proven caller that no rule of the destination names.
    pub unknown_source: bool,
    /// The policy that decided and the label positions in it, for the
    /// counter handles (absent when no policy was loaded).
    pub labelled_by: Option<(Arc<LoadedPolicy>, usize, usize)>,
}

impl Outcome {
    /// A deny before anything about the request is known: no caller, and the
    /// `unknown` destination label.
    pub(crate) fn denied(reason: DenyReason) -> Self {
        Self {
            decision: Decision::deny(reason),
            mode: Mode::Enforce,
            source: None,
            vouched: false,
            source_label: Arc::from(UNAUTHENTICATED),
            destination_label: Arc::from(UNKNOWN),
            credentials: &[],
            unknown_source: false,
            labelled_by: None,
        }
    }

    /// The identity `x-hallpass-source` may carry: a caller that is proven,
    /// trusted and not revoked, in every mode. An audit-mode deny lets a
    /// revoked or untrusted caller through, but never vouches for it.
    pub fn vouched_source(&self) -> Option<&SpiffeId> {
        self.source.as_ref().filter(|_| self.vouched)
    }

    /// Does the call go through (allowed, or denied in audit mode)?
    pub fn lets_through(&self) -> bool {
        self.decision.is_allow() || self.mode == Mode::Audit
    }

    /// The `decision` metric label.
    pub fn decision_label(&self) -> DecisionLabel {
        match (&self.decision, self.mode) {
            (Decision::Allow { .. }, _) => DecisionLabel::Allow,
            (Decision::Deny { .. }, Mode::Audit) => DecisionLabel::AuditDeny,
            (Decision::Deny { .. }, Mode::Enforce) => DecisionLabel::Deny,
        }
    }

    /// The `reason` metric label: the deny reason code, or `ok` for an allow.
    pub fn reason_label(&self) -> &'static str {
        match &self.decision {
            Decision::Allow { .. } => "ok",
            Decision::Deny { reason } => reason.code(),
        }
    }
}

impl Shared {
    /// Shared state for `settings` with nothing loaded yet (not ready).
    pub fn new(settings: Settings, metrics: Metrics, telemetry: Telemetry) -> Self {
        let x509 = X509SvidVerifier::new(settings.clock_skew);
        let jwt = settings.jwt.clone().map(|j| {
            (
                j.clone(),
                JwtSvidVerifier::new(j.audiences, settings.clock_skew),
            )
        });
        let cache = VerificationCache::new(settings.cache_max_entries);
        Self {
            settings,
            policy: ArcSwapOption::empty(),
            trust: TrustStore::default(),
            draining: AtomicBool::new(false),
            x509,
            jwt,
            cache,
            metrics,
            telemetry,
            #[cfg(test)]
            fault_path: std::sync::OnceLock::new(),
        }
    }

    /// Why the sidecar is not ready, or an empty list when it is.
    pub fn not_ready_reasons(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.policy.load().is_none() {
            out.push("no valid policy loaded");
        }
        let bundles = self.trust.current();
        if self.settings.x509_from != X509From::EnvoyPrincipal
            && bundles.as_ref().is_none_or(|b| b.is_empty())
        {
            out.push("no X.509 trust bundle loaded");
        }
        if self.jwt.is_some()
            && bundles
                .as_ref()
                .is_none_or(|b| b.jwt_iter().next().is_none())
        {
            out.push("no JWT bundle loaded");
        }
        if !self.settings.bundles.is_empty() && !self.trust.files_complete.load(Ordering::Relaxed) {
            out.push("a configured bundle file failed to load");
        }
        if self.settings.workload_api.is_some() && !self.trust.api_x509_seen.load(Ordering::Relaxed)
        {
            out.push("no bundles from the Workload API yet");
        }
        if self.draining.load(Ordering::Relaxed) {
            out.push("shutting down");
        }
        out
    }

    /// Decide one Check call. `now_ms` is Unix milliseconds: credential
    /// windows and time-bound grants are compared at that precision.
    pub fn decide(&self, check: &CheckRequest, now_ms: i64) -> Outcome {
        let Some(loaded) = self.policy.load_full() else {
            return Outcome::denied(DenyReason::InternalError);
        };
        let policy = &loaded.policy;
        let Some(attrs) = check.attributes.as_ref() else {
            return Outcome::denied(DenyReason::InternalError);
        };
        // Borrowed when configured: no copy of the ID per request.
        let destination = match &self.settings.workload_id {
            Some(id) => Some(Cow::Borrowed(id)),
            None => attrs
                .destination
                .as_ref()
                .and_then(|d| parse_spiffe_id_strict(&d.principal).ok())
                .map(Cow::Owned),
        };
        let Some(destination) = destination else {
            return Outcome::denied(DenyReason::InternalError);
        };
        let destination_label = policy.destination_label(&destination);
        let workload = policy.workload(&destination);
        let mode = self
            .settings
            .mode_override
            .unwrap_or_else(|| workload.map_or(Mode::Enforce, |w| w.mode));
        let deny = |reason, source: Option<SpiffeId>, source_label: MetricLabel| Outcome {
            decision: Decision::deny(reason),
            mode,
            source,
            vouched: false,
            labelled_by: Some((loaded.clone(), source_label.index, destination_label.index)),
            source_label: source_label.text,
            destination_label: destination_label.text.clone(),
            credentials: &[],
            unknown_source: false,
        };

        let caller = match self.caller(attrs, now_ms) {
            Ok(caller) => caller,
            Err(reason) => {
                return deny(
                    reason,
                    None,
                    policy.fixed_label(FixedLabel::Unauthenticated),
                );
            }
        };
        let source_label = policy.source_label(&caller.id);

        let Some(http) = attrs.request.as_ref().and_then(|r| r.http.as_ref()) else {
            return deny(DenyReason::InternalError, Some(caller.id), source_label);
        };
        #[cfg(test)]
        if self.fault_path.get() == Some(&http.path) {
            panic!("a fault injected by a test");
        }
        let request = Request {
            source: &caller.id,
            method: &http.method,
            path: &http.path,
            headers: &http.headers,
            has_jwt: caller.has_jwt,
            serial: caller.serial.as_deref(),
            now_ms,
        };
        let (decision, _) = policy.evaluate(&destination, &request);
        // Checked on its own, not read off the decision: a destination the
        // policy has no entry for is decided before these checks run.
        let vouched = policy.trusts(caller.id.trust_domain())
            && !policy.is_revoked_id(&caller.id)
            && !policy.is_revoked_serial(&request);
        // A proven, non-revoked caller that no rule of this destination names.
        let unknown_source = decision == Decision::deny(DenyReason::NoMatchingRule)
            && workload.is_none_or(|w| {
                !w.rules
                    .iter()
                    .any(|r| r.from.iter().any(|p| p.matches(&caller.id)))
            });
        Outcome {
            decision,
            mode,
            source: Some(caller.id),
            vouched,
            labelled_by: Some((loaded.clone(), source_label.index, destination_label.index)),
            source_label: source_label.text,
            destination_label: destination_label.text,
            credentials: caller.credentials,
            unknown_source,
        }
    }

    /// Count one outcome and hand its [`event`](Self::event) to telemetry.
    pub fn record(&self, outcome: &Outcome, check: &CheckRequest, time_ms: i64) {
        match &outcome.labelled_by {
            Some((loaded, source, destination)) => {
                let reason = match &outcome.decision {
                    Decision::Allow { .. } => DenyReason::ALL.len(),
                    Decision::Deny { reason } => reason.index(),
                };
                loaded
                    .counters
                    .inc(*source, *destination, outcome.decision_label(), reason);
            }
            None => self.metrics.record_decision(
                &outcome.source_label,
                &outcome.destination_label,
                outcome.decision_label(),
                outcome.reason_label(),
            ),
        }
        self.telemetry.record(self.event(outcome, check, time_ms));
    }

    /// The telemetry event of one decision: bounded labels, the proven ID
    /// (for the audit record only), correlation IDs in their fixed formats,
    /// and never the raw path unless `telemetry.log_raw_paths` is set.
    pub fn event(&self, outcome: &Outcome, check: &CheckRequest, time_ms: i64) -> DecisionEvent {
        let http = check
            .attributes
            .as_ref()
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref());
        let header = |name: &str| http.and_then(|h| h.headers.get(name)).map(String::as_str);
        let (rule, route) = match &outcome.decision {
            Decision::Allow { rule, route } => (Some(rule.clone()), Some(route.clone())),
            Decision::Deny { .. } => (None, None),
        };
        DecisionEvent {
            time_ms,
            decision: outcome.decision_label(),
            reason: outcome.reason_label(),
            mode: match outcome.mode {
                Mode::Enforce => "enforce",
                Mode::Audit => "audit",
            },
            source_label: outcome.source_label.clone(),
            // Only the audit record uses the full ID: skip the allocation without one.
            source_id: outcome
                .source
                .as_ref()
                .filter(|_| self.settings.telemetry.audit != AuditTarget::Off)
                .map(|id| Arc::from(id.to_string())),
            destination: outcome.destination_label.clone(),
            method: method_label(http.map_or("", |h| h.method.as_str())),
            route,
            rule,
            credentials: outcome.credentials,
            unknown_source: outcome.unknown_source,
            request_id: header("x-request-id").and_then(request_id),
            trace_id: header("traceparent").and_then(trace_id),
            raw_path: self
                .settings
                .log_raw_paths
                .then(|| http.map(|h| h.path.clone()).unwrap_or_default()),
        }
    }
}
