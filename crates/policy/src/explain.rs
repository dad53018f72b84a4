//! `hallpass policy explain`: the evaluation of one request, step by step.
//!
//! The trace walks every rule of the destination in file order and checks
//! each condition separately, so it can say why a rule did not match; its
//! decision is the one [`CompiledPolicy::evaluate`] gives (the tests hold the
//! two together).

use std::fmt;
use std::sync::Arc;

use spiffe::SpiffeId;

use crate::compile::{CompiledRule, format_rfc3339};
use crate::{CompiledPolicy, Decision, DenyReason, Mode, Request, normalize_path};

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

/// How one rule fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTrace {
    /// Index in the destination's `allow` list.
    pub index: usize,
    /// The rule's name.
    pub name: Arc<str>,
    /// Source, method, route, headers, JWT and time window, in that order.
    pub checks: Vec<Step>,
    /// The route label when source, method, path, headers and JWT all match.
    pub route: Option<Arc<str>>,
    /// Whether the time window holds as well.
    pub in_window: bool,
}

impl RuleTrace {
    /// Every condition holds, time window included.
    pub fn matches(&self) -> bool {
        self.route.is_some() && self.in_window
    }
}

/// The evaluation of one request, for people.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// The decision (the same as [`CompiledPolicy::evaluate`]).
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

impl CompiledPolicy {
    /// Evaluate one request and say why, rule by rule.
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
        let mut out = Explanation {
            decision: Decision::deny(DenyReason::NoMatchingRule),
            mode: Mode::Enforce,
            request,
            steps: Vec::new(),
            rules: Vec::new(),
            winner: None,
        };
        let Some(workload) = self.workload(destination) else {
            out.steps.push(Step {
                what: "destination",
                ok: false,
                detail: format!("{destination} has no entry in the policy: every call is denied"),
            });
            return out;
        };
        out.mode = workload.mode;
        out.steps.push(Step {
            what: "destination",
            ok: true,
            detail: format!(
                "{} rule(s), mode {}",
                workload.rules.len(),
                match workload.mode {
                    Mode::Enforce => "enforce",
                    Mode::Audit => "audit (a deny is recorded as audit_deny and let through)",
                }
            ),
        });
        let td = req.source.trust_domain();
        let trusted = self.trusts(td);
        out.steps.push(Step {
            what: "trust domain",
            ok: trusted,
            detail: if trusted {
                format!("{td} is listed in trust_domains")
            } else {
                format!("{td} is not listed in trust_domains")
            },
        });
        if !trusted {
            out.decision = Decision::deny(DenyReason::UntrustedTrustDomain);
            return out;
        }
        let id_revoked = self.is_revoked_id(req.source);
        let serial_revoked = self.is_revoked_serial(req);
        out.steps.push(Step {
            what: "revocation",
            ok: !(id_revoked || serial_revoked),
            detail: match (id_revoked, serial_revoked) {
                (true, _) => format!("{} is in revoked.ids", req.source),
                (_, true) => "the certificate serial is in revoked.serials".into(),
                _ if req.serial.is_some() => {
                    "neither the ID nor the certificate serial is revoked".into()
                }
                _ => "the ID is not revoked (no certificate serial given)".into(),
            },
        });
        if id_revoked || serial_revoked {
            out.decision = Decision::deny(DenyReason::Revoked);
            return out;
        }
        let Some(path) = normalize_path(req.path) else {
            out.steps.push(Step {
                what: "path",
                ok: false,
                detail: format!(
                    "{:?} is ambiguous (dot or empty segment, encoded / or \\, bad escape or too long)",
                    req.path
                ),
            });
            out.decision = Decision::deny(DenyReason::AmbiguousPath);
            return out;
        };
        let segments = path.segments();
        let shown: String = if segments.is_empty() {
            "/".into()
        } else {
            segments.iter().map(|s| format!("/{s}")).collect()
        };
        out.steps.push(Step {
            what: "path",
            ok: true,
            detail: format!(
                "{:?} normalises to {shown} ({} segment(s); query stripped, escapes decoded)",
                req.path,
                segments.len()
            ),
        });
        let mut expired = false;
        for (index, rule) in workload.rules.iter().enumerate() {
            let trace = trace_rule(index, rule, req, segments);
            if out.winner.is_none() {
                if trace.matches() {
                    out.winner = Some(index);
                    out.decision = Decision::Allow {
                        rule: rule.name.clone(),
                        route: trace
                            .route
                            .clone()
                            .unwrap_or_else(crate::compile::any_route),
                    };
                } else if trace.route.is_some() {
                    expired = true;
                }
            }
            out.rules.push(trace);
        }
        if out.winner.is_none() && expired {
            out.decision = Decision::deny(DenyReason::GrantExpired);
        }
        out
    }
}

fn list<T: fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let items: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    format!("[{}]", items.join(", "))
}

fn trace_rule<S: AsRef<str>>(
    index: usize,
    rule: &CompiledRule,
    req: &Request<'_>,
    segments: &[S],
) -> RuleTrace {
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
    let grpc_method = rule.grpc.is_some() && req.method == "POST";
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
        method_detail.push_str(if req.method == "POST" {
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
    let route = rule.route_ignoring_conditions(req.method, segments);
    let route_detail = match (&route, &rule.paths, &rule.grpc) {
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
    let route = rule.route_for(req, segments).filter(|_| source.is_some());
    RuleTrace {
        index,
        name: rule.name.clone(),
        checks,
        route,
        in_window,
    }
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
            let verdict = match (self.winner, r.matches(), &r.route) {
                (Some(w), true, _) if w == r.index => "MATCH: decides".to_owned(),
                (Some(w), true, _) => format!("matches too, but #{w} comes first"),
                (_, false, Some(_)) => "would match, but is outside its time window".to_owned(),
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
