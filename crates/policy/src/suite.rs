//! `hallpass policy test`: decision test cases for a policy file.
//!
//! A test file is YAML:
//!
//! ```yaml
//! defaults:                       # optional, applied to every case
//!   destination: spiffe://hospital.example/ns/clinical/sa/lab-results
//!   time: 2026-06-01T00:00:00Z
//!   credentials: [x509]
//! tests:
//!   - name: the EHR reads a result
//!     source: spiffe://hospital.example/ns/clinical/sa/ehr-api
//!     method: GET                 # default GET; gRPC cases are POST
//!     path: /patients/p-1/results # or grpc: lab.v1.Results/GetResult
//!     headers: {x-tenant: north}  # optional
//!     credentials: [x509, jwt]    # what the caller proved; [] is no identity
//!     expect:
//!       decision: allow           # allow | deny | audit_deny
//!       rule: ehr-reads-results   # optional, allow only
//!       route: "/patients/{patient}/results"   # optional, allow only
//!       # reason: no_matching_rule             # optional, deny and audit_deny only
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use hallpass_diagnostics::de;
use serde::Deserialize;
use spiffe::SpiffeId;

use crate::compile::{format_rfc3339, parse_serial};
use crate::locate::{Location, LocationIndex, child_path, item_path};
use crate::{
    CompiledPolicy, Decision, DenyReason, Mode, Observer, Problem, Problems, Request, RuleVerdict,
    SourcePattern, parse_rfc3339_ms,
};

/// The test file with each case left unread, so that a malformed case
/// costs only itself: every case is read, and reported, on its own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuite {
    #[serde(default)]
    defaults: DefaultsDocument,
    tests: Vec<serde_yaml_ng::Value>,
}

/// `inner` (a key path inside a case) as a path from the document root.
fn case_path(at: &str, inner: &str) -> String {
    if inner.is_empty() || inner == hallpass_diagnostics::path::ROOT {
        at.to_owned()
    } else if inner.starts_with('[') {
        format!("{at}{inner}")
    } else {
        format!("{at}.{inner}")
    }
}

/// The test file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteDocument {
    /// Values every case inherits unless it sets its own.
    #[serde(default)]
    pub defaults: DefaultsDocument,
    /// The cases, run in order.
    pub tests: Vec<CaseDocument>,
}

/// The `defaults` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultsDocument {
    /// Destination SPIFFE ID.
    pub destination: Option<String>,
    /// Caller SPIFFE ID.
    pub source: Option<String>,
    /// RFC 3339 time of the call.
    pub time: Option<String>,
    /// What the caller proved.
    pub credentials: Option<Vec<Credential>>,
}

/// One test case as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseDocument {
    /// Shown in the results.
    pub name: String,
    /// Caller SPIFFE ID.
    pub source: Option<String>,
    /// Destination SPIFFE ID.
    pub destination: Option<String>,
    /// HTTP method (default `GET`, `POST` for gRPC).
    pub method: Option<String>,
    /// Request path, query allowed.
    pub path: Option<String>,
    /// gRPC method `package.Service/Method` (instead of `path`).
    pub grpc: Option<String>,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// RFC 3339 time of the call.
    pub time: Option<String>,
    /// What the caller proved: `x509`, `jwt`, both, or none.
    pub credentials: Option<Vec<Credential>>,
    /// Serial of the caller's X.509-SVID (hex), to test `revoked.serials`.
    pub serial: Option<String>,
    /// The expected answer.
    pub expect: ExpectDocument,
}

/// A kind of credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Credential {
    /// An X.509-SVID (mTLS).
    X509,
    /// A JWT-SVID.
    Jwt,
}

/// The `expect` section.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExpectDocument {
    /// `allow`, `deny` or `audit_deny`.
    pub decision: String,
    /// Reason code of a deny.
    pub reason: Option<String>,
    /// Rule that allows.
    pub rule: Option<String>,
    /// Route label of the allow.
    pub route: Option<String>,
}

/// One runnable case.
#[derive(Debug, Clone)]
pub struct Case {
    /// The case's name.
    pub name: String,
    /// Key path in the test file, e.g. `tests[3]`.
    pub at: String,
    /// Where the case starts in the test file.
    pub location: Option<Location>,
    source: SpiffeId,
    destination: SpiffeId,
    method: String,
    path: String,
    headers: HashMap<String, String>,
    /// Unix milliseconds.
    now_ms: i64,
    x509: bool,
    jwt: bool,
    serial: Option<Vec<u8>>,
    expect: ExpectDocument,
}

/// A parsed test file.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The cases in file order.
    pub cases: Vec<Case>,
}

/// What a case got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actual {
    /// `allow`, `deny` or `audit_deny`.
    pub decision: &'static str,
    /// The deny reason code.
    pub reason: Option<&'static str>,
    /// The allowing rule.
    pub rule: Option<String>,
    /// The allowing route.
    pub route: Option<String>,
    /// The allowing rule's place in its destination's `allow` list, as the
    /// evaluator reported it: two rules of one name are told apart.
    pub rule_index: Option<usize>,
}

/// The result of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case.
    pub case: Case,
    /// What the policy answered.
    pub actual: Actual,
    /// Every expected field matched.
    pub passed: bool,
}

/// The results of a suite.
#[derive(Debug, Clone)]
pub struct SuiteReport {
    /// One per case, in order.
    pub results: Vec<CaseResult>,
}

impl Suite {
    /// Parse a test file. Cases without a `time` (and no default) run at
    /// `now_ms` (Unix milliseconds). Every problem is reported with its key
    /// path and line:column.
    pub fn from_yaml(text: &str, now_ms: i64) -> Result<Self, Vec<Problem>> {
        // Every unknown key and wrong type at once, each located.
        let mut problems = Problems::new();
        let raw = de::yaml_value(text, &mut problems)
            .and_then(|v| de::from_value::<RawSuite>(v, &mut problems));
        let Some(raw) = raw else {
            return problems.finish(None, text, None);
        };
        // Each case on its own: one malformed case does not hide the others.
        let mut read = Vec::new();
        for (i, value) in raw.tests.into_iter().enumerate() {
            let at = item_path("tests", i);
            let mut found = Problems::new();
            let case = de::from_value::<CaseDocument>(value, &mut found);
            let clean = found.is_empty();
            for mut p in found.into_vec() {
                p.path = case_path(&at, &p.path);
                if p.message.contains("expected struct ExpectDocument") {
                    p.message = "`expect` is a mapping, for example \
                        `{decision: deny, reason: no_matching_rule}` or \
                        `{decision: allow, rule: NAME}`"
                        .into();
                }
                problems.push(p);
            }
            if let Some(case) = case.filter(|_| clean) {
                read.push((at, case));
            }
        }
        let doc = SuiteDocument {
            defaults: raw.defaults,
            tests: Vec::new(),
        };
        let index = LocationIndex::new(text);
        let mut cases = Vec::new();
        for (at, c) in &read {
            let at = at.clone();
            let mut bad = |field: &str, message: String| {
                let path = field
                    .split('.')
                    .filter(|f| !f.is_empty())
                    .fold(at.clone(), |p, f| child_path(&p, f));
                let location = index.value(&path);
                problems.push(Problem::new(path, message).at(location));
            };
            let id = |field: &str, text: Option<&String>, bad: &mut dyn FnMut(&str, String)| {
                let Some(text) = text else {
                    bad(
                        field,
                        format!("missing `{field}` (set it here or in defaults)"),
                    );
                    return None;
                };
                match SourcePattern::parse(text) {
                    Ok(SourcePattern::Exact(id)) => Some(id),
                    Ok(_) => {
                        bad(field, "an exact SPIFFE ID, not a pattern".into());
                        None
                    }
                    Err(e) => {
                        bad(field, e);
                        None
                    }
                }
            };
            let source = id(
                "source",
                c.source.as_ref().or(doc.defaults.source.as_ref()),
                &mut bad,
            );
            let destination = id(
                "destination",
                c.destination.as_ref().or(doc.defaults.destination.as_ref()),
                &mut bad,
            );
            let (method, path) = match (&c.path, &c.grpc) {
                (Some(p), None) => (c.method.clone().unwrap_or_else(|| "GET".into()), p.clone()),
                (None, Some(g)) => {
                    if c.method.as_deref().is_some_and(|m| m != "POST") {
                        bad("method", "gRPC calls are POST".into());
                    }
                    ("POST".to_owned(), format!("/{g}"))
                }
                _ => {
                    bad("", "give exactly one of `path` and `grpc`".into());
                    (String::new(), String::new())
                }
            };
            let time = c.time.as_ref().or(doc.defaults.time.as_ref());
            let now = match time.map(|t| parse_rfc3339_ms(t)) {
                None => now_ms,
                Some(Ok(t)) => t,
                Some(Err(e)) => {
                    bad("time", e);
                    now_ms
                }
            };
            let credentials = c
                .credentials
                .clone()
                .or_else(|| doc.defaults.credentials.clone())
                .unwrap_or_else(|| vec![Credential::X509]);
            let serial = c.serial.as_ref().and_then(|s| match parse_serial(s) {
                Ok(s) => Some(s),
                Err(e) => {
                    bad("serial", e);
                    None
                }
            });
            let e = &c.expect;
            match e.decision.as_str() {
                "allow" => {
                    if e.reason.is_some() {
                        bad("expect.reason", "an allow has no reason; remove it".into());
                    }
                }
                "deny" | "audit_deny" => {
                    if e.rule.is_some() || e.route.is_some() {
                        bad(
                            "expect",
                            "a deny names no rule or route; expect a `reason` instead".into(),
                        );
                    }
                }
                other => bad(
                    "expect.decision",
                    format!("`{other}`: expected allow, deny or audit_deny"),
                ),
            }
            if let Some(r) = &e.reason
                && !DenyReason::ALL.iter().any(|d| d.code() == r)
            {
                bad(
                    "expect.reason",
                    format!(
                        "`{r}` is not a reason code; one of {}",
                        DenyReason::ALL.map(DenyReason::code).join(", ")
                    ),
                );
            }
            if let (Some(source), Some(destination)) = (source, destination) {
                cases.push(Case {
                    name: c.name.clone(),
                    location: index.value(&at),
                    at,
                    source,
                    destination,
                    method,
                    path,
                    headers: c
                        .headers
                        .iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                        .collect(),
                    now_ms: now,
                    x509: credentials.contains(&Credential::X509),
                    jwt: credentials.contains(&Credential::Jwt),
                    serial,
                    expect: c.expect.clone(),
                });
            }
        }
        problems.finish(Some(Self { cases }), text, None)
    }

    /// Run every case against a policy.
    pub fn run(&self, policy: &CompiledPolicy) -> SuiteReport {
        let results = self
            .cases
            .iter()
            .map(|case| {
                let actual = case.decide(policy);
                let e = &case.expect;
                let passed = e.decision == actual.decision
                    && e.reason.as_deref().is_none_or(|r| Some(r) == actual.reason)
                    && e.rule
                        .as_deref()
                        .is_none_or(|r| Some(r) == actual.rule.as_deref())
                    && e.route
                        .as_deref()
                        .is_none_or(|r| Some(r) == actual.route.as_deref());
                CaseResult {
                    case: case.clone(),
                    actual,
                    passed,
                }
            })
            .collect();
        SuiteReport { results }
    }
}

/// Notes the rule the evaluator allowed with: the first `Match` verdict
/// (the evaluator stops there).
#[derive(Debug, Default)]
struct MatchedRule(Option<usize>);

impl Observer for MatchedRule {
    fn rule(&mut self, index: usize, verdict: &RuleVerdict<'_>) {
        if self.0.is_none() && matches!(verdict, RuleVerdict::Match(_)) {
            self.0 = Some(index);
        }
    }
}

impl Case {
    fn decide(&self, policy: &CompiledPolicy) -> Actual {
        let mut matched = MatchedRule::default();
        let (decision, mode) = if !self.x509 && !self.jwt {
            // The sidecar answers this before the policy (401 no_identity).
            let mode = policy
                .workload(&self.destination)
                .map_or(Mode::Enforce, |w| w.mode);
            (Decision::deny(DenyReason::NoIdentity), mode)
        } else {
            let req = Request {
                source: &self.source,
                method: crate::Method::parse(&self.method),
                path: &self.path,
                headers: &self.headers,
                has_jwt: self.jwt,
                serial: self.serial.as_deref().filter(|_| self.x509),
                now_ms: self.now_ms,
            };
            let evaluation = policy.evaluate_with(&self.destination, &req, &mut matched);
            (evaluation.decision, evaluation.mode)
        };
        match decision {
            Decision::Allow { rule, route } => Actual {
                decision: "allow",
                reason: None,
                rule: Some(rule.to_string()),
                route: Some(route.to_string()),
                rule_index: matched.0,
            },
            Decision::Deny { reason } => Actual {
                decision: match mode {
                    Mode::Enforce => "deny",
                    Mode::Audit => "audit_deny",
                },
                reason: Some(reason.code()),
                rule: None,
                route: None,
                rule_index: None,
            },
        }
    }

    /// The request in one line.
    pub fn summary(&self) -> String {
        let mut creds = Vec::new();
        if self.x509 {
            creds.push("x509");
        }
        if self.jwt {
            creds.push("jwt");
        }
        let mut headers: Vec<String> = self
            .headers
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        headers.sort();
        format!(
            "{} {} from {} to {} at {}, credentials [{}]{}",
            self.method,
            self.path,
            self.source,
            self.destination,
            format_rfc3339(self.now_ms),
            creds.join(", "),
            if headers.is_empty() {
                String::new()
            } else {
                format!(", headers [{}]", headers.join(", "))
            }
        )
    }

    /// The `hallpass policy explain` command that shows this case's trace.
    pub fn explain_command(&self, policy_file: &str) -> String {
        let mut cmd = format!(
            "hallpass policy explain {policy_file} --source {} --destination {} --method {} --path '{}' --time {}",
            self.source,
            self.destination,
            self.method,
            self.path,
            format_rfc3339(self.now_ms)
        );
        let mut headers: Vec<_> = self.headers.iter().collect();
        headers.sort();
        for (k, v) in headers {
            let _ = write!(cmd, " --header '{k}={v}'");
        }
        if self.jwt {
            cmd.push_str(" --jwt");
        }
        cmd
    }
}

impl SuiteReport {
    /// Cases that passed.
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed).count()
    }

    /// Cases that failed.
    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    /// One line per case, a diff under each failure, and the closing
    /// `N passed, M failed` line.
    pub fn to_text(&self, tests_file: &str, policy_file: &str) -> String {
        let mut out = String::new();
        for r in &self.results {
            let c = &r.case;
            if r.passed {
                let _ = writeln!(out, "PASS {}", c.name);
                continue;
            }
            let at = c
                .location
                .map(|l| format!("{tests_file}:{l}"))
                .unwrap_or_else(|| tests_file.to_owned());
            let _ = writeln!(out, "FAIL {} ({at}, {})", c.name, c.at);
            let _ = writeln!(out, "    request:  {}", c.summary());
            let _ = writeln!(out, "    --- expected");
            let _ = writeln!(out, "    +++ actual");
            let e = &c.expect;
            let a = &r.actual;
            let fields: [(&str, Option<&str>, Option<&str>); 4] = [
                ("decision", Some(e.decision.as_str()), Some(a.decision)),
                ("reason", e.reason.as_deref(), a.reason),
                ("rule", e.rule.as_deref(), a.rule.as_deref()),
                ("route", e.route.as_deref(), a.route.as_deref()),
            ];
            for (name, want, got) in fields {
                let label = format!("{name}:");
                match (want, got) {
                    (None, None) => {}
                    (None, Some(g)) => {
                        let _ = writeln!(out, "      {label:<9} {g}");
                    }
                    (Some(w), g) if Some(w) == g => {
                        let _ = writeln!(out, "      {label:<9} {w}");
                    }
                    (Some(w), g) => {
                        let _ = writeln!(out, "    - {label:<9} {w}");
                        let _ = writeln!(out, "    + {label:<9} {}", g.unwrap_or("(none)"));
                    }
                }
            }
            let _ = writeln!(out, "    trace:    {}", c.explain_command(policy_file));
        }
        let _ = writeln!(out, "{} passed, {} failed", self.passed(), self.failed());
        out
    }
}

/// How much of a policy a suite exercises (`hallpass policy test
/// --coverage`), like `opa test --coverage`.
///
/// A rule is covered when at least one case was allowed by it: the rule the
/// evaluator matched, known by its place in the destination's `allow` list,
/// so two rules of one name are told apart. Every case counts, failing ones
/// too: they exercise the policy all the same (and fail the run anyway).
/// The percentage is covered rules / rules, per destination and over every
/// destination of the policy.
///
/// Deny reasons are listed, not counted in the percentage: a reason is
/// expected when some case's `expect.reason` names it (for that
/// destination). They are listed because a suite of allows alone does not
/// show that least privilege denies; they are not counted because one
/// expected deny says little about how many ways there are to be denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// One per destination with an entry in the policy, in ID order.
    pub destinations: Vec<DestinationCoverage>,
    /// Reasons the mesh-wide sections give alike for every destination:
    /// `untrusted_trust_domain` (`trust_domains`), and `revoked` when the
    /// policy revokes an ID or a serial. A case at any destination expects
    /// them.
    pub mesh_reasons: Vec<ReasonCoverage>,
}

/// The coverage of one destination's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationCoverage {
    /// The destination's SPIFFE ID.
    pub destination: String,
    /// Its rules, in file order.
    pub rules: Vec<RuleCoverage>,
    /// The reasons its rules can give: `no_matching_rule` always,
    /// `grant_expired` when one of its rules has a time window.
    pub reasons: Vec<ReasonCoverage>,
}

/// How many cases one rule allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCoverage {
    /// Place in the destination's `allow` list.
    pub index: usize,
    /// The rule's name.
    pub name: String,
    /// Cases the rule allowed.
    pub cases: usize,
}

/// How many cases expect one deny reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReasonCoverage {
    /// The reason.
    pub reason: DenyReason,
    /// Cases whose `expect.reason` is this reason.
    pub cases: usize,
}

impl DestinationCoverage {
    /// Rules at least one case exercised.
    pub fn covered(&self) -> usize {
        self.rules.iter().filter(|r| r.cases > 0).count()
    }

    /// Rules of the destination.
    pub fn total(&self) -> usize {
        self.rules.len()
    }

    /// Rules no case exercised, in file order.
    pub fn uncovered_rules(&self) -> impl Iterator<Item = &RuleCoverage> {
        self.rules.iter().filter(|r| r.cases == 0)
    }

    /// Reasons no case expects.
    pub fn unexpected_reasons(&self) -> impl Iterator<Item = DenyReason> + '_ {
        unexpected(&self.reasons)
    }
}

fn unexpected(reasons: &[ReasonCoverage]) -> impl Iterator<Item = DenyReason> + '_ {
    reasons.iter().filter(|r| r.cases == 0).map(|r| r.reason)
}

impl Coverage {
    /// Rules at least one case exercised, over every destination.
    pub fn covered(&self) -> usize {
        self.destinations
            .iter()
            .map(DestinationCoverage::covered)
            .sum()
    }

    /// Rules of the policy.
    pub fn total(&self) -> usize {
        self.destinations
            .iter()
            .map(DestinationCoverage::total)
            .sum()
    }

    /// Is the overall coverage at least `min_percent` (0 to 100)? A policy
    /// without rules is fully covered.
    pub fn meets(&self, min_percent: f64) -> bool {
        // usize to f64 is exact for any realistic number of rules.
        self.covered() as f64 * 100.0 >= min_percent * self.total() as f64
    }

    /// The overall percentage as text, rounded down to a tenth, so that
    /// `100.0 %` is shown only when every rule is covered.
    pub fn percent_text(&self) -> String {
        percent_text(self.covered(), self.total())
    }

    /// A line per destination, the rules no case exercised and the reasons
    /// no case expects under it, the mesh-wide reasons no case expects,
    /// then the overall `coverage: C/T rules (P %)` line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for d in &self.destinations {
            let _ = writeln!(
                out,
                "  {}: {}/{} rules ({})",
                d.destination,
                d.covered(),
                d.total(),
                percent_text(d.covered(), d.total())
            );
            for r in d.uncovered_rules() {
                let _ = writeln!(
                    out,
                    "    rule not exercised: {} (allow[{}])",
                    r.name, r.index
                );
            }
            for reason in d.unexpected_reasons() {
                let _ = writeln!(out, "    reason no case expects: {}", reason.code());
            }
        }
        let mesh: Vec<&str> = unexpected(&self.mesh_reasons)
            .map(DenyReason::code)
            .collect();
        if !mesh.is_empty() {
            let _ = writeln!(
                out,
                "  mesh-wide reasons no case expects: {}",
                mesh.join(", ")
            );
        }
        let _ = writeln!(
            out,
            "coverage: {}/{} rules ({})",
            self.covered(),
            self.total(),
            self.percent_text()
        );
        out
    }
}

/// `covered / total` in per cent, rounded down to a tenth.
fn percent_text(covered: usize, total: usize) -> String {
    if total == 0 {
        return "no rules".to_owned();
    }
    let tenths = covered.saturating_mul(1000) / total;
    format!("{}.{} %", tenths / 10, tenths % 10)
}

impl SuiteReport {
    /// The coverage of `policy` by these results (see [`Coverage`]).
    pub fn coverage(&self, policy: &CompiledPolicy) -> Coverage {
        let expecting = |reason: DenyReason, destination: Option<&SpiffeId>| {
            self.results
                .iter()
                .filter(|r| destination.is_none_or(|d| &r.case.destination == d))
                .filter(|r| r.case.expect.reason.as_deref() == Some(reason.code()))
                .count()
        };
        let mut ids: Vec<&SpiffeId> = policy.destinations().collect();
        ids.sort_by_key(|id| id.to_string());
        let destinations = ids
            .into_iter()
            .filter_map(|id| policy.workload(id).map(|w| (id, w)))
            .map(|(id, workload)| {
                let rules = workload
                    .rules
                    .iter()
                    .enumerate()
                    .map(|(index, rule)| RuleCoverage {
                        index,
                        name: rule.name.to_string(),
                        cases: self
                            .results
                            .iter()
                            .filter(|r| {
                                &r.case.destination == id && r.actual.rule_index == Some(index)
                            })
                            .count(),
                    })
                    .collect();
                let windowed = workload
                    .rules
                    .iter()
                    .any(|r| r.not_before_ms.is_some() || r.not_after_ms.is_some());
                let reasons = [DenyReason::NoMatchingRule, DenyReason::GrantExpired]
                    .into_iter()
                    .filter(|r| *r != DenyReason::GrantExpired || windowed)
                    .map(|reason| ReasonCoverage {
                        reason,
                        cases: expecting(reason, Some(id)),
                    })
                    .collect();
                DestinationCoverage {
                    destination: id.to_string(),
                    rules,
                    reasons,
                }
            })
            .collect();
        let mesh_reasons = [DenyReason::UntrustedTrustDomain, DenyReason::Revoked]
            .into_iter()
            .filter(|r| *r != DenyReason::Revoked || policy.revokes_any())
            .map(|reason| ReasonCoverage {
                reason,
                cases: expecting(reason, None),
            })
            .collect();
        Coverage {
            destinations,
            mesh_reasons,
        }
    }
}
