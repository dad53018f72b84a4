//! `hallpass policy explain`: the evaluation of one request, step by step.
//!
//! The trace is written by an [`Observer`] of the evaluator itself
//! ([`CompiledPolicy::evaluate_with`], the function the sidecar decides
//! with): the decision shown is the evaluator's, and so is the verdict on
//! every rule it looked at. The rules it never looked at (they do not name
//! the caller, or none of their routes matches the path) are then described
//! condition by condition, so the trace can say why each one did not match.

use std::fmt;
use std::sync::Arc;

use spiffe::SpiffeId;

use crate::compile::{CompiledRule, CompiledWorkload, format_rfc3339};
use crate::evaluate::{Observer, RuleVerdict};
use crate::{
    CompiledPolicy, Decision, Method, Mode, NormalizedPath, PathIssue, Request,
    UndefinedDestination,
};

/// One check, passed or not, with what was compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What was checked: `destination`, `trust domain`, `source`, `method`, …
    pub what: &'static str,
    /// Did it hold?
    pub ok: bool,
    /// The values compared, in words.
    pub detail: String,
}

/// The evaluator's verdict on one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleOutcome {
    /// Not looked at: the rule does not name the caller, or none of its
    /// routes matches the path.
    NotCandidate,
    /// A required header or JWT-SVID is missing.
    Conditions,
    /// A route matches the path, but not with this method.
    Method,
    /// Every condition holds but the time window.
    OutsideWindow {
        /// The route label that matched.
        route: Arc<str>,
    },
    /// Every condition holds.
    Match {
        /// The route label that matched.
        route: Arc<str>,
    },
}

impl From<&RuleVerdict<'_>> for RuleOutcome {
    fn from(verdict: &RuleVerdict<'_>) -> Self {
        match verdict {
            RuleVerdict::Conditions => Self::Conditions,
            RuleVerdict::Method => Self::Method,
            RuleVerdict::OutsideWindow(route) => Self::OutsideWindow {
                route: Arc::clone(route),
            },
            RuleVerdict::Match(route) => Self::Match {
                route: Arc::clone(route),
            },
        }
    }
}

/// How one rule fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTrace {
    /// Index in the destination's `allow` list.
    pub index: usize,
    /// The rule's name.
    pub name: Arc<str>,
    /// Source, method, route, headers, JWT and time window, in that order.
    pub checks: Vec<Step>,
    /// The evaluator's verdict.
    pub outcome: RuleOutcome,
}

impl RuleTrace {
    /// Every condition holds, time window included.
    pub fn matches(&self) -> bool {
        matches!(self.outcome, RuleOutcome::Match { .. })
    }
}

/// The evaluation of one request, for people.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// The decision: the evaluator's, the one the sidecar makes.
    pub decision: Decision,
    /// The destination's mode.
    pub mode: Mode,
    /// The request as given.
    pub request: String,
    /// Checks before the rules: destination entry, trust domain, revocation, path.
    pub steps: Vec<Step>,
    /// Every rule of the destination, when the checks before them passed.
    pub rules: Vec<RuleTrace>,
    /// The index of the rule that decided, if one allowed.
    pub winner: Option<usize>,
}

/// The observer that writes the trace while the evaluator decides.
struct Tracer<'q> {
    /// The destination, when the policy does not define it: the same check
    /// the sidecar makes of its `workload.id`.
    undefined: Option<UndefinedDestination>,
    req: &'q Request<'q>,
    steps: Vec<Step>,
    /// The normalised path's segments, once the path check passed.
    segments: Option<Vec<String>>,
    /// Verdicts on the rules the evaluator looked at, by index.
    verdicts: Vec<Option<RuleOutcome>>,
}

impl Observer for Tracer<'_> {
    const EVERY_RULE: bool = true;

    fn destination(&mut self, workload: Option<&CompiledWorkload>) {
        let Some(workload) = workload else {
            self.steps.push(Step {
                what: "destination",
                ok: false,
                detail: self
                    .undefined
                    .as_ref()
                    .map_or_else(|| "not in the policy".to_owned(), ToString::to_string),
            });
            return;
        };
        self.verdicts = vec![None; workload.rules.len()];
        let note = match workload.mode {
            Mode::Enforce => "",
            Mode::Audit => " (a deny is recorded as audit_deny and let through)",
        };
        self.steps.push(Step {
            what: "destination",
            ok: true,
            detail: format!(
                "{} rule(s), mode {}{note}",
                workload.rules.len(),
                workload.mode
            ),
        });
    }

    fn trust_domain(&mut self, trusted: bool) {
        let td = self.req.source.trust_domain();
        self.steps.push(Step {
            what: "trust domain",
            ok: trusted,
            detail: if trusted {
                format!("{td} is listed in trust_domains")
            } else {
                format!("{td} is not listed in trust_domains")
            },
        });
    }

    fn revocation(&mut self, id_revoked: bool, serial_revoked: bool) {
        self.steps.push(Step {
            what: "revocation",
            ok: !(id_revoked || serial_revoked),
            detail: match (id_revoked, serial_revoked) {
                (true, _) => format!("{} is in revoked.ids", self.req.source),
                (_, true) => "the certificate serial is in revoked.serials".into(),
                _ if self.req.serial.is_some() => {
                    "neither the ID nor the certificate serial is revoked".into()
                }
                _ => "the ID is not revoked (no certificate serial given)".into(),
            },
        });
    }

    fn path(&mut self, path: Result<&NormalizedPath<'_>, PathIssue>) {
        let raw = self.req.path;
        let path = match path {
            Ok(path) => path,
            Err(issue) => {
                self.steps.push(Step {
                    what: "path",
                    ok: false,
                    detail: format!(
                        "{raw:?} is ambiguous ({}): {}",
                        issue.code(),
                        issue.describe()
                    ),
                });
                return;
            }
        };
        let segments: Vec<String> = path.segments().iter().map(|s| s.to_string()).collect();
        let shown: String = if segments.is_empty() {
            "/".into()
        } else {
            segments.iter().map(|s| format!("/{s}")).collect()
        };
        self.steps.push(Step {
            what: "path",
            ok: true,
            detail: format!(
                "{raw:?} normalises to {shown} ({} segment(s); query stripped, escapes decoded)",
                segments.len()
            ),
        });
        self.segments = Some(segments);
    }

    fn rule(&mut self, index: usize, verdict: &RuleVerdict<'_>) {
        if let Some(slot) = self.verdicts.get_mut(index) {
            *slot = Some(verdict.into());
        }
    }
}

impl CompiledPolicy {
    /// Evaluate one request and say why, rule by rule. The decision comes
    /// from [`CompiledPolicy::evaluate_with`], the sidecar's evaluator.
    pub fn explain(&self, destination: &SpiffeId, req: &Request<'_>) -> Explanation {
        let request = format!(
            "{} {}\n  from {}\n  to   {}\n  at   {}, credentials: {}",
            req.method,
            req.path,
            req.source,
            destination,
            format_rfc3339(req.now_ms),
            if req.has_jwt { "x509, jwt" } else { "x509" },
        );
        let mut tracer = Tracer {
            undefined: self.undefined_destination(destination),
            req,
            steps: Vec::new(),
            segments: None,
            verdicts: Vec::new(),
        };
        let evaluation = self.evaluate_with(destination, req, &mut tracer);
        let rules: Vec<RuleTrace> = match (self.workload(destination), &tracer.segments) {
            (Some(workload), Some(segments)) => workload
                .rules
                .iter()
                .enumerate()
                .map(|(index, rule)| {
                    let outcome = tracer
                        .verdicts
                        .get_mut(index)
                        .and_then(Option::take)
                        .unwrap_or(RuleOutcome::NotCandidate);
                    RuleTrace {
                        index,
                        name: rule.name.clone(),
                        checks: describe(rule, req, segments),
                        outcome,
                    }
                })
                .collect(),
            _ => Vec::new(),
        };
        let winner = rules.iter().find(|r| r.matches()).map(|r| r.index);
        Explanation {
            decision: evaluation.decision,
            mode: evaluation.mode,
            request,
            steps: tracer.steps,
            rules,
            winner,
        }
    }
}

fn list<T: fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let items: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    format!("[{}]", items.join(", "))
}

/// The route label the rule's routes give this method and path, headers,
/// JWT and time aside: `paths` for a method the rule allows, then `grpc` for
/// a `POST`; a rule with neither allows any path.
fn described_route<'r, S: AsRef<str>>(
    rule: &'r CompiledRule,
    method: Method,
    segments: &[S],
) -> Option<&'r str> {
    let method_ok = rule.method_ok(method);
    if rule.paths.is_none() && rule.grpc.is_none() {
        return method_ok.then_some(crate::compile::ANY_ROUTE);
    }
    let http = rule
        .paths
        .iter()
        .flatten()
        .filter(|_| method_ok)
        .find(|(t, _)| t.matches(segments))
        .map(|(_, label)| &**label);
    let grpc = || {
        rule.grpc
            .iter()
            .flatten()
            .filter(|_| method == Method::Post)
            .find(|(g, _)| g.matches(segments))
            .map(|(_, label)| &**label)
    };
    http.or_else(grpc)
}

/// Each condition of one rule against the request, in words: source,
/// method, route, headers, JWT and time window.
fn describe<S: AsRef<str>>(rule: &CompiledRule, req: &Request<'_>, segments: &[S]) -> Vec<Step> {
    let mut checks = Vec::new();
    let source = rule.from.iter().find(|p| p.matches(req.source));
    checks.push(Step {
        what: "source",
        ok: source.is_some(),
        detail: match source {
            Some(p) => format!("matches {p}"),
            None => format!("not named by {}", list(&rule.from)),
        },
    });
    let has_http = rule.paths.is_some() || rule.grpc.is_none();
    let http_method = rule.method_ok(req.method);
    let grpc_method = rule.grpc.is_some() && req.method == Method::Post;
    let methods = match &rule.methods {
        None => "any method".to_owned(),
        Some(ms) => list(ms),
    };
    let mut method_detail = if has_http {
        match (&rule.methods, http_method) {
            (None, _) => "any method".to_owned(),
            (Some(_), true) => format!("{} is in {methods}", req.method),
            (Some(_), false) => format!("{} is not in {methods}", req.method),
        }
    } else {
        String::new()
    };
    if rule.grpc.is_some() {
        if !method_detail.is_empty() {
            method_detail.push_str("; ");
        }
        method_detail.push_str(if req.method == Method::Post {
            "gRPC calls are POST"
        } else {
            "gRPC patterns need POST"
        });
    }
    checks.push(Step {
        what: "method",
        ok: (has_http && http_method) || grpc_method,
        detail: method_detail,
    });
    let route = described_route(rule, req.method, segments);
    let route_detail = match (route, &rule.paths, &rule.grpc) {
        (Some(r), None, None) => format!("any path (the rule lists no paths or grpc): {r}"),
        (Some(r), _, _) => format!("matches {r}"),
        (None, None, None) => "any path, but not this method".to_owned(),
        (None, paths, grpc) => {
            let mut tried: Vec<String> = Vec::new();
            for (t, _) in paths.iter().flatten() {
                let note = if t.matches(segments) {
                    " (the path matches, the method does not)"
                } else {
                    ""
                };
                tried.push(format!("{}{note}", t.as_str()));
            }
            for (g, _) in grpc.iter().flatten() {
                let note = if g.matches(segments) {
                    " (matches, but gRPC needs POST)"
                } else {
                    ""
                };
                tried.push(format!("grpc {}{note}", g.as_str()));
            }
            format!("nothing matches; tried {}", list(tried))
        }
    };
    checks.push(Step {
        what: "route",
        ok: route.is_some(),
        detail: route_detail,
    });
    let missing: Vec<String> = rule
        .headers
        .iter()
        .filter(|(k, v)| req.headers.get(k) != Some(v))
        .map(|(k, v)| match req.headers.get(k) {
            Some(got) => format!("{k}: want {v:?}, got {got:?}"),
            None => format!("{k}: want {v:?}, absent"),
        })
        .collect();
    checks.push(Step {
        what: "headers",
        ok: missing.is_empty(),
        detail: if rule.headers.is_empty() {
            "none required".into()
        } else if missing.is_empty() {
            format!(
                "all present: {}",
                list(rule.headers.iter().map(|(k, v)| format!("{k}={v}")))
            )
        } else {
            missing.join("; ")
        },
    });
    checks.push(Step {
        what: "jwt",
        ok: !rule.require_jwt || req.has_jwt,
        detail: match (rule.require_jwt, req.has_jwt) {
            (false, _) => "not required".into(),
            (true, true) => "required, presented".into(),
            (true, false) => "required, not presented".into(),
        },
    });
    let in_window = rule.in_window(req.now_ms);
    let window = match (rule.not_before_ms, rule.not_after_ms) {
        (None, None) => "no time window".to_owned(),
        (nb, na) => format!(
            "{} .. {}",
            nb.map_or("(open)".into(), format_rfc3339),
            na.map_or("(open)".into(), format_rfc3339)
        ),
    };
    checks.push(Step {
        what: "time",
        ok: in_window,
        detail: match (
            in_window,
            rule.not_before_ms.is_some_and(|t| req.now_ms < t),
        ) {
            (true, _) => window,
            (false, true) => format!("not yet valid: {window}"),
            (false, false) => format!("expired: {window}"),
        },
    });
    checks
}

fn mark(ok: bool) -> &'static str {
    if ok { "[ok]" } else { "[no]" }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.decision {
            Decision::Allow { rule, route } => {
                writeln!(f, "decision: allow (rule {rule}, route {route})")?;
            }
            Decision::Deny { reason } => match self.mode {
                Mode::Enforce => writeln!(f, "decision: deny ({})", reason.code())?,
                Mode::Audit => writeln!(
                    f,
                    "decision: audit_deny ({}): audit mode records the deny and lets the call through",
                    reason.code()
                )?,
            },
        }
        writeln!(f, "request: {}", self.request)?;
        writeln!(f, "checks:")?;
        for s in &self.steps {
            writeln!(f, "  {} {:<12} {}", mark(s.ok), s.what, s.detail)?;
        }
        if self.steps.iter().any(|s| !s.ok) {
            return writeln!(f, "rules: not considered (the request was decided above)");
        }
        if self.rules.is_empty() {
            return writeln!(f, "rules: none (an empty allow list allows nothing)");
        }
        writeln!(
            f,
            "rules (file order; the first whose every condition holds decides):"
        )?;
        for r in &self.rules {
            let verdict = match (self.winner, &r.outcome) {
                (Some(w), RuleOutcome::Match { .. }) if w == r.index => "MATCH: decides".to_owned(),
                (Some(w), RuleOutcome::Match { .. }) => {
                    format!("matches too, but #{w} comes first")
                }
                (_, RuleOutcome::OutsideWindow { .. }) => {
                    "would match, but is outside its time window".to_owned()
                }
                _ => "no match".to_owned(),
            };
            writeln!(f, "  #{} {}: {verdict}", r.index, r.name)?;
            for c in &r.checks {
                writeln!(f, "      {} {:<8} {}", mark(c.ok), c.what, c.detail)?;
            }
        }
        Ok(())
    }
}
