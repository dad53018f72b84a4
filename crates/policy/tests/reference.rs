//! The reference semantics of a decision, written as plainly as possible: a
//! scan of every rule of the destination in file order, each condition
//! checked with the matchers themselves. No index, no shared code with the
//! evaluator beyond the parsed rule.
//!
//! It is the specification the property tests hold the evaluator to
//! (`proptest_matchers.rs`), and the linear contrast of the decision bench
//! (`benches/decide.rs` includes this file). Nothing in the library calls it:
//! it lives with the tests so that nothing in production can.

use hallpass_policy::{CompiledPolicy, CompiledRule, Decision, DenyReason, Method, Mode, Request};
use spiffe::SpiffeId;

/// What [`CompiledPolicy::evaluate`] must answer, found by a linear scan.
pub fn evaluate_linear(
    policy: &CompiledPolicy,
    destination: &SpiffeId,
    req: &Request<'_>,
) -> (Decision, Mode) {
    let Some(workload) = policy.workload(destination) else {
        return (Decision::deny(DenyReason::NoMatchingRule), Mode::Enforce);
    };
    let deny = |reason| (Decision::deny(reason), workload.mode);
    if !policy.trusts(req.source.trust_domain()) {
        return deny(DenyReason::UntrustedTrustDomain);
    }
    if policy.is_revoked_id(req.source) || policy.is_revoked_serial(req) {
        return deny(DenyReason::Revoked);
    }
    let Some(path) = hallpass_policy::normalize_path(req.path) else {
        return deny(DenyReason::AmbiguousPath);
    };
    let segments = path.segments();
    let mut expired = false;
    for rule in &workload.rules {
        if !rule.from.iter().any(|p| p.matches(req.source)) {
            continue;
        }
        let Some(route) = route(rule, req, segments) else {
            continue;
        };
        if rule.in_window(req.now_ms) {
            let allow = Decision::Allow {
                rule: rule.name.clone(),
                route: route.into(),
            };
            return (allow, workload.mode);
        }
        expired = true;
    }
    deny(if expired {
        DenyReason::GrantExpired
    } else {
        DenyReason::NoMatchingRule
    })
}

/// The route label of a rule for the request, time window aside: headers
/// and JWT must hold; then the first of `paths` that matches, for a method
/// the rule lists (or any, without a list); else the first `grpc` pattern,
/// for a `POST`; a rule with neither allows any path (`*`).
fn route<S: AsRef<str>>(rule: &CompiledRule, req: &Request<'_>, segments: &[S]) -> Option<String> {
    let headers = rule
        .headers
        .iter()
        .all(|(k, v)| req.headers.get(k) == Some(v));
    if !headers || (rule.require_jwt && !req.has_jwt) {
        return None;
    }
    let method_ok = rule
        .methods
        .as_ref()
        .is_none_or(|ms| ms.contains(&req.method));
    if rule.paths.is_none() && rule.grpc.is_none() {
        return method_ok.then(|| "*".to_owned());
    }
    let http = rule
        .paths
        .iter()
        .flatten()
        .filter(|_| method_ok)
        .find(|(t, _)| t.matches(segments))
        .map(|(_, label)| label.to_string());
    http.or_else(|| {
        rule.grpc
            .iter()
            .flatten()
            .filter(|_| req.method == Method::Post)
            .find(|(g, _)| g.matches(segments))
            .map(|(_, label)| label.to_string())
    })
}
