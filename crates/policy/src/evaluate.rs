//! The evaluator: the one function that decides a request.
//!
//! [`CompiledPolicy::evaluate_with`] runs the checks before the rules (a
//! destination entry, the trust domain, revocation, the path), then walks the
//! destination's source index to the rules that name the caller and have a
//! route matching the path, and takes the first, in file order, whose every
//! condition holds. It reports what it does to an [`Observer`]:
//!
//! - the sidecar and [`CompiledPolicy::evaluate`] pass [`NoTrace`], whose
//!   methods are empty and inlined away, so tracing costs nothing there;
//! - [`CompiledPolicy::explain`] passes an observer that writes down each
//!   step, so its decision is the evaluator's by construction.
//!
//! The cost of a decision does not depend on how many rules the destination
//! has, allowed or denied: rules that do not name the caller are never
//! looked at, and whether any rule names it comes out of the same index walk.

use std::sync::Arc;

use spiffe::SpiffeId;

use crate::compile::{CompiledRule, CompiledWorkload};
use crate::trie::{RouteHit, RouteKind};
use crate::{
    CompiledPolicy, DataClass, Decision, DenyReason, Method, Mode, NormalizedPath, PathIssue,
    Request, parse_path,
};

/// What the evaluator reports as it decides. Every method has an empty
/// default body, so an observer implements only what it wants to see, and
/// [`NoTrace`] compiles to nothing.
pub trait Observer {
    /// Go on evaluating the candidate rules after the first match, so every
    /// one gets a verdict (`explain` shows them all). The decision is the
    /// first match either way.
    const EVERY_RULE: bool = false;

    /// The destination's entry, or `None` when the policy has none (a deny,
    /// decided before anything else).
    fn destination(&mut self, _workload: Option<&CompiledWorkload>) {}

    /// Whether the caller's trust domain is listed.
    fn trust_domain(&mut self, _trusted: bool) {}

    /// Whether the caller's ID, or its certificate's serial, is revoked.
    fn revocation(&mut self, _id_revoked: bool, _serial_revoked: bool) {}

    /// The request path, normalised, or why it is ambiguous.
    fn path(&mut self, _path: Result<&NormalizedPath<'_>, PathIssue>) {}

    /// The verdict on one candidate rule: a rule that names the caller and
    /// has a route matching the path (`index` is its place in the
    /// destination's `allow` list). Rules that are not candidates are never
    /// looked at, and so never reported.
    fn rule(&mut self, _index: usize, _verdict: &RuleVerdict<'_>) {}
}

/// The observer that observes nothing: the decision path's.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTrace;

impl Observer for NoTrace {}

/// How a candidate rule (one that names the caller and has a route matching
/// the path) fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleVerdict<'a> {
    /// A required header is missing or different, or a required JWT-SVID
    /// was not presented.
    Conditions,
    /// A route matches the path, but not with this method (the rule's
    /// `methods` for HTTP routes, `POST` for gRPC patterns).
    Method,
    /// Every condition holds but the time window: the route label.
    OutsideWindow(&'a Arc<str>),
    /// Every condition holds: the route label.
    Match(&'a Arc<str>),
}

/// Everything one evaluation found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// The decision.
    pub decision: Decision,
    /// The destination's mode (enforce when the policy has no entry for it).
    pub mode: Mode,
    /// The caller's trust domain is listed and neither its ID nor its
    /// certificate serial is revoked: the only callers hallpass ever names
    /// to the application. Known whether or not the destination has an entry.
    pub vouched: bool,
    /// Some rule of the destination names the caller (exactly or by a
    /// pattern), whatever its routes and conditions. Known once the checks
    /// before the rules pass; false before that.
    pub source_named: bool,
    /// Why the path is ambiguous, on an `ambiguous_path` deny; `None`
    /// otherwise (also when the path was never looked at).
    pub path_issue: Option<PathIssue>,
    /// The rule that allowed sets `jwt_replay: deny`: the allow stands only
    /// if the caller's JWT-SVID `jti` is fresh, which the sidecar (holding
    /// the replay cache) decides. False on a deny.
    pub single_use_jwt: bool,
    /// The data class of the call: the allowing rule's (its own or its
    /// destination's), else the destination's; [`DataClass::None`] when
    /// undeclared or the policy has no entry for the destination.
    pub data_class: DataClass,
}

impl Evaluation {
    /// A proven caller that passed the checks before the rules, was denied
    /// for want of a rule, and is not named by any rule of the destination:
    /// the `unknown_source` anomaly.
    pub fn unknown_source(&self) -> bool {
        !self.source_named && self.decision == Decision::deny(DenyReason::NoMatchingRule)
    }
}

impl CompiledPolicy {
    /// Decide one request for `destination`. Returns the decision and the
    /// destination's mode (enforce when the destination has no entry).
    pub fn evaluate(&self, destination: &SpiffeId, req: &Request<'_>) -> (Decision, Mode) {
        let evaluation = self.evaluate_with(destination, req, &mut NoTrace);
        (evaluation.decision, evaluation.mode)
    }

    /// Decide one request for `destination`, telling `observer` each step.
    ///
    /// The order of the checks is part of the semantics: a destination
    /// without an entry denies `no_matching_rule` first; then an unlisted
    /// trust domain, a revoked ID or serial, and an ambiguous path deny with
    /// their own reasons; then the first rule in file order whose every
    /// condition holds allows, and a rule that would have matched outside its
    /// time window turns the deny into `grant_expired`.
    pub fn evaluate_with<O: Observer>(
        &self,
        destination: &SpiffeId,
        req: &Request<'_>,
        observer: &mut O,
    ) -> Evaluation {
        let workload = self.workload(destination);
        let trusted = self.trusts(req.source.trust_domain());
        let id_revoked = self.is_revoked_id(req.source);
        let serial_revoked = self.is_revoked_serial(req);
        let mut out = Evaluation {
            decision: Decision::deny(DenyReason::NoMatchingRule),
            mode: workload.map_or(Mode::Enforce, |w| w.mode),
            vouched: trusted && !id_revoked && !serial_revoked,
            source_named: false,
            path_issue: None,
            single_use_jwt: false,
            data_class: workload.map_or(DataClass::None, |w| w.data_class),
        };
        observer.destination(workload);
        let Some(workload) = workload else {
            return out;
        };
        observer.trust_domain(trusted);
        if !trusted {
            out.decision = Decision::deny(DenyReason::UntrustedTrustDomain);
            return out;
        }
        observer.revocation(id_revoked, serial_revoked);
        if id_revoked || serial_revoked {
            out.decision = Decision::deny(DenyReason::Revoked);
            return out;
        }
        let path = parse_path(req.path);
        observer.path(path.as_ref().map_err(|issue| *issue));
        let path = match path {
            Ok(path) => path,
            Err(issue) => {
                out.decision = Decision::deny(DenyReason::AmbiguousPath);
                out.path_issue = Some(issue);
                return out;
            }
        };
        let (decision, source_named, allowing) = workload.decide(req, path.segments(), observer);
        out.decision = decision;
        out.source_named = source_named;
        if let Some(rule) = allowing {
            out.single_use_jwt = rule.single_use_jwt;
            out.data_class = rule.data_class;
        }
        out
    }

    /// Does any rule of `destination` name `source`, exactly or by a
    /// pattern? Answered by the source index (a hash lookup and a walk as
    /// deep as the ID), never by a scan of the rules.
    pub fn names_source(&self, destination: &SpiffeId, source: &SpiffeId) -> bool {
        self.workload(destination)
            .is_some_and(|w| w.index.names(source))
    }
}

impl CompiledWorkload {
    /// The rules' part of a decision: the first candidate in file order whose
    /// every condition holds, found through the index. Also returns whether
    /// any rule names the caller, and the allowing rule (whose JWT-SVID may
    /// be single-use, and whose data class is the call's).
    fn decide<O: Observer, S: AsRef<str>>(
        &self,
        req: &Request<'_>,
        segments: &[S],
        observer: &mut O,
    ) -> (Decision, bool, Option<&CompiledRule>) {
        let mut hits: Vec<&RouteHit> = Vec::new();
        let named = self.index.matches(req.source, segments, &mut hits);
        crate::probe::count_hits(hits.len());
        hits.sort_unstable_by_key(|h| (h.rule, h.position));
        let mut allowed: Option<(Decision, &CompiledRule)> = None;
        let mut expired = false;
        for group in hits.chunk_by(|a, b| a.rule == b.rule) {
            let Some(index) = group.first().map(|h| h.rule) else {
                continue;
            };
            let Some(rule) = self.rules.get(index) else {
                continue;
            };
            let verdict = rule.verdict(req, group);
            observer.rule(index, &verdict);
            match verdict {
                RuleVerdict::Match(route) if allowed.is_none() => {
                    let decision = Decision::Allow {
                        rule: rule.name.clone(),
                        route: route.clone(),
                    };
                    if !O::EVERY_RULE {
                        return (decision, named, Some(rule));
                    }
                    allowed = Some((decision, rule));
                }
                RuleVerdict::OutsideWindow(_) => expired = true,
                _ => {}
            }
        }
        match allowed {
            Some((decision, rule)) => (decision, named, Some(rule)),
            None => (
                Decision::deny(if expired {
                    DenyReason::GrantExpired
                } else {
                    DenyReason::NoMatchingRule
                }),
                named,
                None,
            ),
        }
    }
}

impl CompiledRule {
    /// The verdict on this rule, given its route hits for the request (every
    /// one names the caller and matches the path; sorted by position, so the
    /// first that fits the method gives the route label).
    fn verdict<'h>(&self, req: &Request<'_>, hits: &[&'h RouteHit]) -> RuleVerdict<'h> {
        crate::probe::count();
        if !self.credentials_and_headers_hold(req) {
            return RuleVerdict::Conditions;
        }
        let Some(hit) = hits.iter().find(|h| match h.kind {
            RouteKind::Http | RouteKind::Any => self.method_ok(req.method),
            RouteKind::Grpc => req.method == Method::Post,
        }) else {
            return RuleVerdict::Method;
        };
        if self.in_window(req.now_ms) {
            RuleVerdict::Match(&hit.label)
        } else {
            RuleVerdict::OutsideWindow(&hit.label)
        }
    }
}
