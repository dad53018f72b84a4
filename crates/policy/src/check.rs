//! `hallpass policy check`: every error with its place, then lints.
//!
//! Errors (the file cannot be loaded) and warnings (it loads, but something
//! in it is probably not what its author meant) are both [`Problem`]s with a
//! stable code, a key path and a line:column, told apart by [`Severity`].

use std::collections::HashMap;

pub use hallpass_diagnostics::{Report, Severity};

use crate::compile::format_rfc3339;
use crate::load::{load_document, locate_problems};
use crate::locate::{LocationIndex, child_path, item_path};
use crate::{
    CompiledPolicy, CompiledRule, Method, Mode, PolicyDocument, PolicyError, Problem, SourcePattern,
};

/// A grant that ends within this many seconds is worth a warning.
pub const EXPIRY_WARNING_SECONDS: i64 = 7 * 24 * 3600;

/// Unix seconds now.
pub fn unix_now() -> i64 {
    unix_now_ms().div_euclid(1000)
}

/// Unix milliseconds now.
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// What a check asks beyond loading and the lints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Every rule must have a data class, its own `data_class` or its
    /// destination's (`--require-data-class`): a rule without one is an
    /// error (`missing_data_class`).
    pub require_data_class: bool,
}

/// Load, compile and lint a policy text; time-based lints are relative to
/// `now` (Unix seconds).
pub fn check(text: &str, now: i64) -> Report {
    check_with(text, now, CheckOptions::default())
}

/// [`check`], with `options`.
pub fn check_with(text: &str, now: i64, options: CheckOptions) -> Report {
    let doc = match load_document(text) {
        Ok(doc) => doc,
        Err(problems) => return errors(&problems),
    };
    let policy = match CompiledPolicy::compile(&doc) {
        Ok(p) => p,
        Err(PolicyError::Invalid(problems)) => return errors(&locate_problems(problems, text)),
        Err(e) => {
            return errors(&[Problem::new(
                hallpass_diagnostics::path::ROOT,
                e.to_string(),
            )]);
        }
    };
    let mut lints = Lints {
        findings: Vec::new(),
        options,
    };
    lints.run(&doc, &policy, now);
    let mut findings = lints.findings;
    // Located only when there is something to say: indexing every key of a
    // mesh-wide file costs more than the rest of the check.
    if !findings.is_empty() {
        let index = LocationIndex::for_paths(text, findings.iter().map(|f| f.path.as_str()));
        for finding in &mut findings {
            finding.location = index.locate(&finding.path);
        }
    }
    findings.sort_by_key(|f| (f.location, f.severity));
    Report::new(findings)
}

/// [`check`] for a policy of several files (`policy.files`): every file's
/// problems, every problem of the set as a whole (a destination in two
/// files, mesh-wide sections in a team file or in two files, a destination
/// outside its file's owner scope: all of them, not the first), then the
/// lints of the combined policy. Each finding names its file.
pub fn check_files(files: &[crate::PolicyFile], now: i64) -> Report {
    check_files_with(files, now, CheckOptions::default())
}

/// [`check_files`], with `options`.
pub fn check_files_with(files: &[crate::PolicyFile], now: i64, options: CheckOptions) -> Report {
    let mut findings = crate::set::check_set(files, |doc, policy| {
        let mut lints = Lints {
            findings: Vec::new(),
            options,
        };
        lints.run(doc, policy, now);
        lints.findings
    });
    findings
        .sort_by(|a, b| (&a.file, a.location, a.severity).cmp(&(&b.file, b.location, b.severity)));
    Report::new(findings)
}

fn errors(problems: &[Problem]) -> Report {
    let mut findings = problems.to_vec();
    findings.sort_by_key(|f| f.location);
    Report::new(findings)
}

struct Lints {
    findings: Vec<Problem>,
    options: CheckOptions,
}

impl Lints {
    fn warn(&mut self, code: &'static str, path: String, message: String) {
        self.findings.push(Problem::warning(code, path, message));
    }

    fn run(&mut self, doc: &PolicyDocument, policy: &CompiledPolicy, now: i64) {
        self.break_glass(policy, now);
        let listed = |td: &str| doc.trust_domains.iter().any(|t| t == td);
        for (dest, wl) in &doc.workloads {
            let base = child_path("workloads", dest);
            let Ok(SourcePattern::Exact(dest_id)) = SourcePattern::parse(dest) else {
                continue;
            };
            if !listed(dest_id.trust_domain().as_str()) {
                self.warn(
                    "unlisted_trust_domain",
                    base.clone(),
                    format!(
                        "trust domain `{}` of this destination is not in trust_domains",
                        dest_id.trust_domain()
                    ),
                );
            }
            if wl.mode == Mode::Audit {
                self.warn(
                    "audit_mode",
                    child_path(&base, "mode"),
                    "audit mode: denies are only recorded (audit_deny) and the calls go through; \
                     switch to enforce once the audit log shows no unexpected denies"
                        .into(),
                );
            }
            let Some(workload) = policy.workload(&dest_id) else {
                continue;
            };
            let allow = child_path(&base, "allow");
            let mut names: HashMap<&str, usize> = HashMap::new();
            for (j, rule) in workload.rules.iter().enumerate() {
                let at = item_path(&allow, j);
                if let Some(first) = names.get(&*rule.name) {
                    self.warn(
                        "duplicate_rule_name",
                        child_path(&at, "name"),
                        format!(
                            "`{}` is also the name of allow[{first}]; metrics and logs cannot tell the two apart",
                            rule.name
                        ),
                    );
                } else {
                    names.insert(&rule.name, j);
                }
                if let Some((i, earlier)) = workload
                    .rules
                    .iter()
                    .take(j)
                    .enumerate()
                    .find(|(_, earlier)| rule_covers(earlier, rule))
                {
                    self.warn(
                        "shadowed_rule",
                        at.clone(),
                        format!(
                            "never decides: allow[{i}] (`{}`) comes first and matches every request this rule matches",
                            earlier.name
                        ),
                    );
                }
                self.sources(rule, &at, &listed);
                self.similar_sources(policy, rule, &at);
                self.grant(rule, &at, now);
                self.allows_everything(rule, &at);
                self.replay_on_reads(rule, &at);
                if self.options.require_data_class && !rule.data_class.is_declared() {
                    self.findings.push(Problem::error(
                        "missing_data_class",
                        at.clone(),
                        format!(
                            "rule `{}` has no data class: give it `data_class:` (one of \
                             phi, billing, operational, public), or give its destination one",
                            rule.name
                        ),
                    ));
                }
            }
        }
    }

    /// An emergency grant past its expiry is inert: say so, so that it is
    /// removed rather than left for someone to extend.
    fn break_glass(&mut self, policy: &CompiledPolicy, now: i64) {
        for (i, grant) in policy.break_glass().grants().iter().enumerate() {
            if grant.expires_ms <= now.saturating_mul(1000) {
                self.warn(
                    "break_glass_expired",
                    format!("break_glass[{i}].expires"),
                    format!(
                        "grant `{}` (ticket {}) expired at {}; it is inert: remove it",
                        grant.name,
                        grant.ticket,
                        format_rfc3339(grant.expires_ms)
                    ),
                );
            }
        }
    }

    /// `jwt_replay: deny` is meant for writes: on a read (or on any method,
    /// when the rule lists none), a client's or a proxy's retry of the same
    /// request is denied `jwt_replayed`.
    fn replay_on_reads(&mut self, rule: &CompiledRule, at: &str) {
        if !rule.single_use_jwt || rule.paths.is_none() && rule.grpc.is_some() {
            return;
        }
        let reads = [Method::Get, Method::Head, Method::Options];
        let on_reads = rule
            .methods
            .as_ref()
            .is_none_or(|m| m.iter().any(|m| reads.contains(m)));
        if on_reads {
            self.warn(
                "jwt_replay_on_reads",
                child_path(at, "jwt_replay"),
                "jwt_replay: deny on idempotent methods (GET, HEAD, OPTIONS, or a rule without \
                 `methods`): a retried request is denied jwt_replayed; list only the write \
                 methods (POST, PUT, PATCH, DELETE)"
                    .into(),
            );
        }
    }

    fn sources(&mut self, rule: &CompiledRule, at: &str, listed: &impl Fn(&str) -> bool) {
        let from = child_path(at, "from");
        for (k, pattern) in rule.from.iter().enumerate() {
            let path = item_path(&from, k);
            if !listed(pattern.trust_domain().as_str()) {
                self.warn(
                    "unlisted_trust_domain",
                    path.clone(),
                    format!(
                        "trust domain `{}` is not in trust_domains, so this source is never accepted",
                        pattern.trust_domain()
                    ),
                );
            }
            if !matches!(pattern, SourcePattern::Exact(_)) && pattern.prefix_segments().len() < 2 {
                self.warn(
                    "wide_source",
                    path,
                    format!(
                        "`{pattern}` is wider than one namespace; name a namespace \
                         (spiffe://{}/ns/NAME/**) or exact workloads",
                        pattern.trust_domain()
                    ),
                );
            }
        }
    }

    /// An exact source one or two letters away from a destination is most
    /// likely that destination mistyped: such a rule never matches its
    /// intended caller, and nothing else would say so.
    fn similar_sources(&mut self, policy: &CompiledPolicy, rule: &CompiledRule, at: &str) {
        let from = child_path(at, "from");
        for (k, pattern) in rule.from.iter().enumerate() {
            let SourcePattern::Exact(id) = pattern else {
                continue;
            };
            if let Some(near) = policy.closest_destination(id) {
                self.warn(
                    "similar_id",
                    item_path(&from, k),
                    format!("`{id}` is not a destination of this policy; did you mean `{near}`?"),
                );
            }
        }
    }

    fn grant(&mut self, rule: &CompiledRule, at: &str, now: i64) {
        let Some(end_ms) = rule.not_after_ms else {
            return;
        };
        let end = end_ms.div_euclid(1000);
        let path = child_path(at, "not_after");
        if end_ms < now.saturating_mul(1000) {
            self.warn(
                "grant_expired",
                path,
                format!(
                    "this grant ended at {}; it allows nothing now (calls get grant_expired): remove it or renew it",
                    format_rfc3339(end_ms)
                ),
            );
        } else if end - now <= EXPIRY_WARNING_SECONDS {
            let days = (end - now) / 86_400;
            self.warn(
                "grant_expiring",
                path,
                format!(
                    "this grant ends at {} (in {days} day(s)); renew it or let its callers know",
                    format_rfc3339(end_ms)
                ),
            );
        }
    }

    fn allows_everything(&mut self, rule: &CompiledRule, at: &str) {
        if !every_method(&rule.methods) {
            return;
        }
        let any_path = rule.paths.is_none() && rule.grpc.is_none();
        let root_any = rule
            .paths
            .iter()
            .flatten()
            .any(|(t, _)| t.any_depth() && t.segments().len() == 0);
        if any_path || root_any {
            let what = if any_path { "every path" } else { "/**" };
            self.warn(
                "allows_everything",
                at.to_owned(),
                format!(
                    "allows every method on {what}; list the methods and paths the caller needs"
                ),
            );
        }
    }
}

/// No `methods`, or every method a rule can name.
fn every_method(methods: &Option<Vec<Method>>) -> bool {
    methods
        .as_ref()
        .is_none_or(|ms| Method::NAMED.iter().all(|m| ms.contains(m)))
}

fn methods_cover(a: &Option<Vec<Method>>, b: &Option<Vec<Method>>) -> bool {
    match (a, b) {
        (None, _) => true,
        // A list, even of all nine, never covers "any method": a method no
        // rule can name (`PROPFIND`) is allowed only by a rule without a list.
        (Some(_), None) => false,
        (Some(a), Some(b)) => b.iter().all(|m| a.contains(m)),
    }
}

/// Does rule `a` match every request rule `b` matches (so that `b`, coming
/// later, never decides)? Conservative: `false` when unsure.
pub(crate) fn rule_covers(a: &CompiledRule, b: &CompiledRule) -> bool {
    let sources = b
        .from
        .iter()
        .all(|pb| a.from.iter().any(|pa| pa.covers(pb)));
    let jwt = !a.require_jwt || b.require_jwt;
    let headers = a
        .headers
        .iter()
        .all(|(k, v)| b.headers.iter().any(|(k2, v2)| k == k2 && v == v2));
    let window = a
        .not_before_ms
        .is_none_or(|x| b.not_before_ms.is_some_and(|y| y >= x))
        && a.not_after_ms
            .is_none_or(|x| b.not_after_ms.is_some_and(|y| y <= x));
    sources && jwt && headers && window && routes_cover(a, b)
}

fn routes_cover(a: &CompiledRule, b: &CompiledRule) -> bool {
    let a_any = a.paths.is_none() && a.grpc.is_none();
    let b_any = b.paths.is_none() && b.grpc.is_none();
    if b_any {
        return a_any && methods_cover(&a.methods, &b.methods);
    }
    let http_ok = b.paths.iter().flatten().all(|(tb, _)| {
        methods_cover(&a.methods, &b.methods)
            && (a_any || a.paths.iter().flatten().any(|(ta, _)| ta.covers(tb)))
    });
    let grpc_ok = b.grpc.iter().flatten().all(|(gb, _)| {
        if a.grpc.iter().flatten().any(|(ga, _)| ga.covers(gb)) {
            return true;
        }
        if !a.method_ok(Method::Post) {
            return false;
        }
        let as_path = match gb.method() {
            Some(m) => format!("/{}/{m}", gb.service()),
            None => format!("/{}/{{method}}", gb.service()),
        };
        a_any
            || crate::RouteTemplate::parse(&as_path)
                .is_ok_and(|tb| a.paths.iter().flatten().any(|(ta, _)| ta.covers(&tb)))
    });
    http_ok && grpc_ok
}
