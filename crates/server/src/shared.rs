//! What every step of the data path and the admin endpoints share: the
//! settings, the policy and trust bundles in force (swapped whole, never
//! locked by readers), the verifiers and their cache, metrics and telemetry;
//! and whether the sidecar is ready.

use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::{ArcSwap, ArcSwapOption};
use hallpass_identity::{JwtSvidVerifier, VerificationCache, X509SvidVerifier};
use hallpass_policy::{BreakGlassGrants, CompiledPolicy, UndefinedDestination};
use hallpass_telemetry::{DecisionCounters, Metrics, Telemetry};
use spiffe::SpiffeId;

use crate::caller::Verified;
use crate::config::{JwtSettings, Settings, X509From};
use crate::replay::{DEFAULT_REPLAY_CACHE_ENTRIES, ReplayCache};
use crate::trust::TrustStore;

/// The `/readyz` warning while the Workload API is down after bundles came
/// from it (see [`Shared::readiness_warnings`]).
const WORKLOAD_API_DOWN: &str =
    "Workload API disconnected: checks use the last bundles received; reconnecting";

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
    /// `jti`s seen on rules with `jwt_replay: deny`.
    pub(crate) replay: ReplayCache,
    /// The break-glass overlay's grants in force (swapped whole on reload).
    pub(crate) break_glass: ArcSwap<BreakGlassGrants>,
    /// The metrics registry.
    pub metrics: Metrics,
    /// The telemetry worker (call graph, anomalies, audit log).
    pub telemetry: Telemetry,
    /// The verification lane: checks that must verify a credential are
    /// decided there, off the runtime worker, at a lower CPU priority
    /// (verify_lane.rs).
    pub(crate) verify_lane: crate::verify_lane::VerifyLane,
    /// Where the unit tests hold verifications (verify_lane.rs).
    #[cfg(test)]
    pub(crate) verify_gate: crate::verify_lane::VerifyGate,
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
    /// This sidecar's `workload.id`, when the policy does not define it:
    /// every call is denied ([`Shared::readiness_warnings`]).
    pub undefined_workload: Option<UndefinedDestination>,
}

impl LoadedPolicy {
    /// Pair a policy with counter slots for its labels, and check that it
    /// defines `workload` (the sidecar's `workload.id`, when set).
    pub fn new(policy: CompiledPolicy, workload: Option<&SpiffeId>, metrics: &Metrics) -> Self {
        let counters = DecisionCounters::new(metrics, policy.labels().to_vec());
        let undefined_workload = workload.and_then(|id| policy.undefined_destination(id));
        Self {
            policy,
            counters,
            undefined_workload,
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
        let replay = ReplayCache::new(
            settings
                .jwt
                .as_ref()
                .map_or(DEFAULT_REPLAY_CACHE_ENTRIES, |j| j.replay_cache_max_entries),
        );
        Self {
            settings,
            policy: ArcSwapOption::empty(),
            trust: TrustStore::default(),
            draining: AtomicBool::new(false),
            x509,
            jwt,
            cache,
            replay,
            break_glass: ArcSwap::from_pointee(BreakGlassGrants::empty()),
            metrics,
            telemetry,
            verify_lane: crate::verify_lane::VerifyLane::start(),
            #[cfg(test)]
            verify_gate: crate::verify_lane::VerifyGate::default(),
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
        if self.settings.telemetry.audit_required
            && self.telemetry.audit_failing(crate::check::unix_now_ms())
        {
            out.push("audit records cannot be written (telemetry.audit_required)");
        }
        out
    }

    /// What is wrong without making the sidecar unready: the policy in
    /// force does not define `workload.id`. Every call is then denied, as
    /// for a destination whose entry allows nothing, and that is the
    /// policy's answer, not a failure to get one; and the injector sets
    /// `workload.id` on every pod, including those that only make calls
    /// and so have no entry, which must still become ready.
    ///
    /// Also: the Workload API stream is down after bundles came from it.
    /// Checks go on with the last bundles received (the agent restarting
    /// must not take the mesh down), so the sidecar stays ready; the
    /// warning says which bundles it decides with.
    pub fn readiness_warnings(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .policy
            .load()
            .as_ref()
            .and_then(|loaded| loaded.undefined_workload.as_ref())
            .map(|undefined| format!("workload.id {undefined}"))
            .into_iter()
            .collect();
        if self.settings.workload_api.is_some()
            && self.trust.api_x509_seen.load(Ordering::Relaxed)
            && self.metrics.workload_api_connected.get() == 0
        {
            out.push(WORKLOAD_API_DOWN.to_owned());
        }
        out
    }
}
