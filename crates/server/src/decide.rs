//! Decide: one `CheckRequest` in; out, the [`Outcome`] the answer is built
//! from and the [`RequestFacts`] the record step needs, together a
//! [`Decided`]. A synchronous function of the request, the policy in force
//! and the trust bundles in force (design §2 steps 1 to 4): the destination,
//! the caller's identity (`caller.rs`), then the policy's one evaluator.
//! Anything missing is an `internal_error` deny: hallpass fails closed.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::CheckRequest;
use hallpass_identity::{SpiffeId, parse_spiffe_id_strict};
use hallpass_policy::{BreakGlassGrant, Decision, FixedLabel, MetricLabel, NoTrace, Request};
use hallpass_vocab::{
    Anomalies, Credentials, DataClass, DecisionLabel, DenyReason, Method, Mode, PathIssue,
};

use crate::caller::Jti;
use crate::replay::Replay;
use crate::{LoadedPolicy, Shared};

impl Shared {
    /// The replay check of a single-use JWT-SVID (`jwt_replay: deny`): the
    /// deny reason, or `None` when this is its first use. A token without a
    /// `jti` cannot be shown to be single-use, and a full cache cannot
    /// remember it: both are denied `jwt_replayed` too (fail closed).
    fn consume_jti(&self, jti: Option<Jti>, now_ms: i64) -> Option<DenyReason> {
        let Some(jti) = jti else {
            return Some(DenyReason::JwtReplayed);
        };
        let (found, entries) = self.replay.consume(jti.key, jti.expires_ms, now_ms);
        let controls = &self.metrics.controls;
        controls
            .jwt_replay_entries
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
        match found {
            Replay::Fresh => None,
            Replay::Replayed => Some(DenyReason::JwtReplayed),
            Replay::Full => {
                controls.jwt_replay_cache_full.inc();
                Some(DenyReason::JwtReplayed)
            }
        }
    }
}

/// Metric label for a caller that proved no identity.
const UNAUTHENTICATED: &str = "unauthenticated";
/// Metric label for a destination that is not known.
const UNKNOWN: &str = "unknown";

/// Where an outcome's `hallpass_decisions_total` counter lives: the policy
/// that decided, whose label table the two positions index.
#[derive(Debug, Clone)]
pub struct CounterSlot {
    /// The policy that decided (kept alive until the count is made, even if
    /// a reload swaps it out meanwhile).
    pub policy: Arc<LoadedPolicy>,
    /// Position of the `source` label in the policy's label table.
    pub source: usize,
    /// Position of the `destination` label.
    pub destination: usize,
}

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
    /// `source` as text, present exactly when `source` is: made once per
    /// verified credential (the verification cache keeps it), so the
    /// answer's header and the audit record copy it rather than format it.
    pub source_text: Option<Arc<str>>,
    /// The proven caller's trust domain is listed in the policy and neither
    /// its ID nor its certificate is revoked: the only case in which the
    /// answer names it to the application (see [`Outcome::vouched_source`]).
    pub vouched: bool,
    /// Bounded `source` label.
    pub source_label: Arc<str>,
    /// Bounded `destination` label.
    pub destination_label: Arc<str>,
    /// Credential kinds that proved the caller.
    pub credentials: Credentials,
    /// A proven caller that no rule of the destination names.
    pub unknown_source: bool,
    /// The counter of this outcome (absent when no policy was loaded).
    pub counter: Option<CounterSlot>,
    /// Why the path is ambiguous, on an `ambiguous_path` deny (a fixed
    /// code for the audit record: never the path itself).
    pub path_issue: Option<PathIssue>,
    /// The emergency grant that allowed the call, when no rule did
    /// (the decision is then an allow whose `rule` is the grant's name).
    pub break_glass: Option<Arc<BreakGlassGrant>>,
    /// The call's data class: the allowing rule's, else the destination's
    /// (`none` when undeclared, or before the destination is known).
    pub data_class: DataClass,
}

impl Outcome {
    /// A deny before anything about the request is known: no caller, and the
    /// `unknown` destination label.
    pub(crate) fn denied(reason: DenyReason) -> Self {
        Self {
            decision: Decision::deny(reason),
            mode: Mode::Enforce,
            source: None,
            source_text: None,
            vouched: false,
            source_label: Arc::from(UNAUTHENTICATED),
            destination_label: Arc::from(UNKNOWN),
            credentials: Credentials::NONE,
            unknown_source: false,
            counter: None,
            path_issue: None,
            break_glass: None,
            data_class: DataClass::None,
        }
    }

    /// The identity `x-hallpass-source` may carry: a caller that is proven,
    /// trusted and not revoked, in every mode. An audit-mode deny lets a
    /// revoked or untrusted caller through, but never vouches for it.
    pub fn vouched_source(&self) -> Option<&SpiffeId> {
        self.source.as_ref().filter(|_| self.vouched)
    }

    /// [`Self::vouched_source`] as text.
    pub fn vouched_source_text(&self) -> Option<&str> {
        self.vouched_source().and(self.source_text.as_deref())
    }

    /// Does the call go through (allowed, or denied in audit mode)?
    pub fn lets_through(&self) -> bool {
        self.decision.is_allow() || self.mode == Mode::Audit
    }

    /// The `decision` metric label.
    pub fn decision_label(&self) -> DecisionLabel {
        DecisionLabel::of(self.decision.is_allow(), self.mode)
    }

    /// The anomalies this decision shows (the telemetry worker adds the
    /// ones that need the call history).
    pub fn anomalies(&self) -> Anomalies {
        Anomalies::of(
            self.decision_label(),
            self.decision.deny_reason(),
            self.unknown_source,
        )
    }
}

/// What the record step needs of the request, read once, when deciding:
/// borrowed from the `CheckRequest`, never copied on the way. Its `Debug`
/// leaves the path and the header values out: they may carry patient data.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestFacts<'r> {
    /// The request method.
    pub method: Method,
    /// The raw `:path`, query included: recorded only with
    /// `telemetry.log_raw_paths` (meshes without patient data).
    pub path: &'r str,
    /// Envoy's `x-request-id`, as sent (the record keeps only a UUID).
    pub request_id: Option<&'r str>,
    /// The W3C `traceparent` header, as sent.
    pub traceparent: Option<&'r str>,
}

impl fmt::Debug for RequestFacts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestFacts")
            .field("method", &self.method)
            .field("path", &"(withheld)")
            .field("request_id", &self.request_id.map(|_| "(withheld)"))
            .field("traceparent", &self.traceparent.map(|_| "(withheld)"))
            .finish()
    }
}

impl<'r> RequestFacts<'r> {
    /// Read the facts of `check`; empty ones for a request without HTTP
    /// attributes.
    pub fn read(check: &'r CheckRequest) -> Self {
        let Some(http) = check
            .attributes
            .as_ref()
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref())
        else {
            return Self::default();
        };
        let header = |name: &str| http.headers.get(name).map(String::as_str);
        Self {
            method: Method::parse(&http.method),
            path: &http.path,
            request_id: header("x-request-id"),
            traceparent: header("traceparent"),
        }
    }
}

/// Everything one decision produced: what to answer, and what to record.
#[derive(Debug, Clone)]
pub struct Decided<'r> {
    /// The decision and its labels.
    pub outcome: Outcome,
    /// The request facts the record step needs.
    pub request: RequestFacts<'r>,
}

impl<'r> Decided<'r> {
    /// The `internal_error` deny of a check whose decision failed (a caught
    /// panic): nothing of the decision survives, the request facts are read
    /// again so that the record still names the call.
    pub(crate) fn failed(check: &'r CheckRequest) -> Self {
        Self {
            outcome: Outcome::denied(DenyReason::InternalError),
            request: RequestFacts::read(check),
        }
    }
}

impl Shared {
    /// Decide one Check call. `now_ms` is Unix milliseconds: credential
    /// windows and time-bound grants are compared at that precision.
    pub fn decide<'r>(&self, check: &'r CheckRequest, now_ms: i64) -> Decided<'r> {
        let request = RequestFacts::read(check);
        let outcome = self.outcome(check, request.method, now_ms);
        Decided { outcome, request }
    }

    fn outcome(&self, check: &CheckRequest, method: Method, now_ms: i64) -> Outcome {
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
        let mode = self
            .settings
            .mode_override
            .unwrap_or_else(|| policy.mode(&destination));
        // A deny before the rules (no identity, …) still touches the
        // destination's data: it takes the destination's class.
        let destination_class = policy
            .workload(&destination)
            .map_or(DataClass::None, |w| w.data_class);
        let counter = |source: &MetricLabel| {
            Some(CounterSlot {
                policy: loaded.clone(),
                source: source.index,
                destination: destination_label.index,
            })
        };
        let deny = |reason, source: Option<(SpiffeId, Arc<str>)>, source_label: MetricLabel| {
            let (source, source_text) = source.unzip();
            Outcome {
                decision: Decision::deny(reason),
                mode,
                source,
                source_text,
                vouched: false,
                counter: counter(&source_label),
                source_label: source_label.text,
                destination_label: destination_label.text.clone(),
                credentials: Credentials::NONE,
                unknown_source: false,
                path_issue: None,
                break_glass: None,
                data_class: destination_class,
            }
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
            return deny(
                DenyReason::InternalError,
                Some((caller.id, caller.text)),
                source_label,
            );
        };
        #[cfg(test)]
        if self.fault_path.get() == Some(&http.path) {
            panic!("a fault injected by a test");
        }
        let request = Request {
            source: &caller.id,
            method,
            path: &http.path,
            headers: &http.headers,
            has_jwt: caller.has_jwt,
            serial: caller.serial.as_deref(),
            now_ms,
        };
        // The policy's one evaluator: the decision, whether the caller may be
        // named to the application (known even for a destination the policy
        // has no entry for), and whether any rule names it at all (found by
        // the same index walk: a deny costs no rescan of the rules).
        let mut evaluation = policy.evaluate_with(&destination, &request, &mut NoTrace);
        if evaluation.single_use_jwt {
            // Only a call the rule allows consumes the `jti`: a denied call
            // must not burn a token the caller may still use where allowed.
            if let Some(reason) = self.consume_jti(caller.jti, now_ms) {
                evaluation.decision = Decision::deny(reason);
            }
        }
        // Break-glass: the last step before default deny, and only then.
        let unknown_source = evaluation.unknown_source();
        let no_rule = matches!(
            evaluation.decision.deny_reason(),
            Some(DenyReason::NoMatchingRule | DenyReason::GrantExpired)
        );
        let break_glass = (no_rule && evaluation.vouched)
            .then(|| {
                self.break_glass_grant(policy, &destination, &caller.id, method, &http.path, now_ms)
            })
            .flatten();
        if let Some((grant, route)) = &break_glass {
            evaluation.decision = Decision::Allow {
                rule: grant.name.clone(),
                route: route.clone(),
            };
        }
        Outcome {
            unknown_source: unknown_source && break_glass.is_none(),
            decision: evaluation.decision,
            mode,
            source: Some(caller.id),
            source_text: Some(caller.text),
            vouched: evaluation.vouched,
            counter: counter(&source_label),
            source_label: source_label.text,
            destination_label: destination_label.text,
            credentials: caller.credentials,
            path_issue: evaluation.path_issue,
            // An emergency grant is no rule: the call keeps the
            // destination's class, which a deny already carries.
            data_class: evaluation.data_class,
            break_glass: break_glass.map(|(grant, _)| grant),
        }
    }
}
