//! A least-privilege policy from what was seen (`hallpass policy suggest`).
//!
//! Input is an audit log (JSON lines, rotated files too) or a saved
//! `/callgraph`. Each call that went through (`allow`, or `audit_deny` with
//! `no_matching_rule` in an audit-mode destination) is grouped by
//! destination, source and method, and becomes one rule naming exactly that
//! source (never a pattern), that method, and the route templates seen.
//! gRPC calls become a `grpc:` rule per source.
//!
//! Paths: with `telemetry.log_raw_paths` the audit log has raw paths, and
//! templates are inferred (see `templates.rs`: identifiers become `{id}`);
//! otherwise the matched route templates are used, and `audit_deny` records
//! (which matched no rule, so have no template) are skipped. Calls denied
//! for any other reason (revoked, expired grant, bad credentials…) never
//! become rules.
//!
//! The output is checked with `CompiledPolicy::from_yaml` before it is
//! returned, and [`write()`] replaces a file atomically, never through a
//! planted symlink.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use hallpass_callgraph_page::thousands;
use hallpass_policy::{CompiledPolicy, Mode, RouteTemplate, SourcePattern, parse_path};
use hallpass_telemetry::{CallGraph, json_for_terminal, write_atomically};
use serde::Deserialize;

use crate::InsightsError;
use crate::templates::{self, grpc_method};

/// What was seen for one method of one (destination, source).
#[derive(Debug, Default)]
struct MethodCalls {
    /// Concrete paths (decoded segments), from raw audit paths.
    paths: BTreeSet<Vec<String>>,
    /// Route templates already known (matched rules).
    templates: BTreeSet<String>,
    /// A call matched a rule that allows any path (route `*`).
    any_path: bool,
    requests: u64,
}

/// What was seen from one source at one destination.
#[derive(Debug, Default)]
struct Calls {
    http: BTreeMap<String, MethodCalls>,
    /// gRPC method patterns → requests.
    grpc: BTreeMap<String, u64>,
}

/// Everything usable, keyed by (destination, source), plus what was skipped.
#[derive(Debug, Default)]
pub struct Observations {
    calls: BTreeMap<(String, String), Calls>,
    /// Items read: audit records, or a call graph's call paths.
    records: u64,
    /// Requests the usable items stand for.
    requests: u64,
    /// The items are call paths (each standing for many requests).
    call_paths: bool,
    /// Items skipped, by reason (fixed words: never a path or an ID).
    skipped: BTreeMap<Cow<'static, str>, u64>,
    /// The suggestion joins a policy of several files: it leaves the
    /// mesh-wide `trust_domains` to the platform's file.
    team_file: bool,
}

impl Observations {
    /// The calls in audit log files (JSON lines, rotated ones too).
    pub fn from_audit_logs(files: &[PathBuf]) -> Result<Self, InsightsError> {
        let mut obs = Self::default();
        for path in files {
            std::fs::File::open(path)
                .and_then(|f| read_audit_log(BufReader::new(f), &mut obs))
                .map_err(|source| InsightsError::Read {
                    path: path.clone(),
                    source,
                })?;
        }
        Ok(obs)
    }

    /// The allowed edges of a saved `/callgraph` document.
    pub fn from_callgraph_file(path: &Path) -> Result<Self, InsightsError> {
        let text = std::fs::read_to_string(path).map_err(|source| InsightsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let graph: CallGraph = serde_json::from_str(&text).map_err(|e| InsightsError::Invalid {
            origin: path.display().to_string(),
            message: format!("not a hallpass call graph: {e}"),
        })?;
        let mut obs = Self::default();
        read_callgraph(&graph, &mut obs);
        Ok(obs)
    }

    /// Distinct (destination, source) pairs with usable calls.
    pub fn calls_len(&self) -> usize {
        self.calls.len()
    }

    /// Suggest a file to add to the policy in force: drop the calls to
    /// every destination `defined` says it defines already, and leave the
    /// mesh-wide `trust_domains` to its platform file; how many
    /// destinations were dropped. The suggestion can then be added to that
    /// policy without defining a destination or a mesh-wide section twice.
    pub fn drop_destinations(&mut self, defined: impl Fn(&str) -> bool) -> usize {
        self.team_file = true;
        let dropped: BTreeSet<String> = self
            .calls
            .keys()
            .filter(|(d, _)| defined(d))
            .map(|(d, _)| d.clone())
            .collect();
        self.calls.retain(|(d, _), _| !dropped.contains(d));
        dropped.len()
    }

    /// Distinct destinations with usable calls.
    pub fn destinations(&self) -> usize {
        self.calls
            .keys()
            .map(|(d, _)| d)
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// Items read, usable or not: audit records, or call paths (see
    /// [`Observations::counted`]).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// `n` of what was read, spelled out: `1 audit record`, `6 call paths`.
    pub fn counted(&self, n: u64) -> String {
        plural(
            n,
            if self.call_paths {
                "call path"
            } else {
                "audit record"
            },
        )
    }

    /// Items skipped, all reasons.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// Items skipped, by reason.
    pub fn skipped(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.skipped.iter().map(|(why, n)| (why.as_ref(), *n))
    }

    fn skip(&mut self, why: impl Into<Cow<'static, str>>) {
        *self.skipped.entry(why.into()).or_default() += 1;
    }

    /// Record one call; `route` is a matched template (or `*` or a gRPC
    /// pattern), `path` a raw request path.
    fn add(
        &mut self,
        destination: &str,
        source: &str,
        method: &str,
        route: &str,
        path: Option<&str>,
        n: u64,
    ) {
        self.records += 1;
        let exact = |s: &str| matches!(SourcePattern::parse(s), Ok(SourcePattern::Exact(_)));
        if !exact(source) {
            return self.skip("the source is not a proven SPIFFE ID (a label such as other:<td>)");
        }
        if !exact(destination) {
            return self.skip("the destination is not a SPIFFE ID");
        }
        if hallpass_policy::Method::named(method).is_none() {
            return self.skip("the method is not one a policy can name");
        }
        enum Seen {
            Path(Vec<String>),
            Template(String),
            AnyPath,
            Grpc(String),
        }
        let seen = match (path, route) {
            (Some(raw), _) => {
                let normal = match parse_path(raw) {
                    Ok(normal) => normal,
                    // The cause, as the audit record's `path_issue` names it.
                    Err(issue) => {
                        return self.skip(format!(
                            "the raw path is ambiguous, path_issue {}: {} (hallpass denies it as ambiguous_path anyway)",
                            issue.code(),
                            issue.describe()
                        ));
                    }
                };
                let segments: Vec<String> =
                    normal.segments().iter().map(|s| s.to_string()).collect();
                match grpc_method(method, &segments) {
                    Some(g) => Seen::Grpc(g),
                    None => Seen::Path(segments),
                }
            }
            (None, "" | hallpass_telemetry::UNMATCHED_ROUTE) => {
                return self.skip(
                    "no path and no matched route (an audit_deny without telemetry.log_raw_paths)",
                );
            }
            (None, "*") => Seen::AnyPath,
            (None, r) if r.starts_with('/') => Seen::Template(r.to_owned()),
            (None, g) => Seen::Grpc(g.to_owned()),
        };
        let calls = self
            .calls
            .entry((destination.to_owned(), source.to_owned()))
            .or_default();
        if let Seen::Grpc(g) = seen {
            self.requests += n;
            *calls.grpc.entry(g).or_default() += n;
            return;
        }
        self.requests += n;
        let m = calls.http.entry(method.to_owned()).or_default();
        m.requests += n;
        match seen {
            Seen::Path(segments) => {
                m.paths.insert(segments);
            }
            Seen::Template(t) => {
                m.templates.insert(t);
            }
            Seen::AnyPath => m.any_path = true,
            Seen::Grpc(_) => {}
        }
    }
}

/// One audit record, as `crates/telemetry/src/audit.rs` writes it.
#[derive(Debug, Deserialize)]
struct AuditRecord {
    decision: String,
    reason: String,
    source: String,
    destination: String,
    method: String,
    #[serde(default)]
    route: String,
    #[serde(default)]
    path: Option<String>,
}

/// Read audit log lines into `obs`.
pub fn read_audit_log(reader: impl BufRead, obs: &mut Observations) -> std::io::Result<()> {
    for line in reader.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let Ok(r) = serde_json::from_str::<AuditRecord>(&line) else {
            obs.records += 1;
            obs.skip("not an audit record");
            continue;
        };
        let through =
            r.decision == "allow" || (r.decision == "audit_deny" && r.reason == "no_matching_rule");
        if !through {
            obs.records += 1;
            obs.skip("denied (or would be for a reason other than no_matching_rule)");
            continue;
        }
        obs.add(
            &r.destination,
            &r.source,
            &r.method,
            &r.route,
            r.path.as_deref(),
            1,
        );
    }
    Ok(())
}

/// Read a call graph's allowed edges into `obs`.
pub fn read_callgraph(graph: &CallGraph, obs: &mut Observations) {
    obs.call_paths = true;
    for e in &graph.observed {
        if e.allowed == 0 {
            obs.records += 1;
            obs.skip("denied");
            continue;
        }
        obs.add(
            &e.destination,
            &e.source,
            &e.method,
            &e.route,
            None,
            e.allowed,
        );
    }
}

/// `1 request`, `1,200 requests`: every noun here takes a plain `s`.
pub fn plural(n: u64, noun: &str) -> String {
    let s = if n == 1 { "" } else { "s" };
    format!("{} {noun}{s}", thousands(n))
}

/// `spiffe://td/ns/x/sa/name` → `name`; else the last path segment.
fn caller_name(source: &str) -> String {
    let path = source.trim_start_matches("spiffe://");
    let segments: Vec<&str> = path.split('/').collect();
    let base = match segments.as_slice() {
        [_, "ns", _, "sa", sa] => (*sa).to_owned(),
        [.., last] => (*last).to_owned(),
        [] => "caller".to_owned(),
    };
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.trim_matches('-').to_owned();
    if clean.is_empty() {
        "caller".into()
    } else {
        clean
    }
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
/// A YAML double-quoted string (JSON's escapes are YAML's), with nothing a
/// terminal would act on left raw.
fn quoted(text: &str) -> String {
    let json = serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into());
    json_for_terminal(&json).into_owned()
}

fn quoted_list<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    let items: Vec<String> = items.into_iter().map(|s| quoted(s)).collect();
    format!("[{}]", items.join(", "))
}

/// Templates for one method: inferred from paths, plus known templates;
/// any template another one covers is dropped.
fn route_templates(calls: &MethodCalls, max_literals: usize) -> Vec<String> {
    let mut all: Vec<String> = calls.templates.iter().cloned().collect();
    let paths: Vec<Vec<String>> = calls.paths.iter().cloned().collect();
    for t in templates::infer(&paths, max_literals) {
        all.push(templates::render(&t));
    }
    let parsed: Vec<(String, RouteTemplate)> = all
        .into_iter()
        .filter_map(|t| RouteTemplate::parse(&t).ok().map(|p| (t, p)))
        .collect();
    let mut keep: Vec<String> = Vec::new();
    for (i, (text, t)) in parsed.iter().enumerate() {
        let covered = parsed.iter().enumerate().any(|(j, (_, u))| {
            // Covered by another; of two equivalent ones keep the first.
            j != i && u.covers(t) && (!t.covers(u) || j < i)
        });
        if !covered && !keep.contains(text) {
            keep.push(text.clone());
        }
    }
    keep.sort();
    keep
}

/// The suggested policy text; `origin` says what it was made from (it
/// goes into the header comment).
pub fn policy_yaml(obs: &Observations, mode: Mode, max_literals: usize, origin: &str) -> String {
    let mut trust_domains = BTreeSet::new();
    for (destination, source) in obs.calls.keys() {
        for id in [destination, source] {
            if let Ok(p) = SourcePattern::parse(id) {
                trust_domains.insert(p.trust_domain().to_string());
            }
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Suggested by `hallpass policy suggest` from {origin}.\n\
         # Least privilege for the calls seen: each rule names one caller, one\n\
         # method and the route templates it used.\n\
         # Read {}{}, {} skipped.\n\
         # Review it: literal path segments come from real requests. Start in\n\
         # audit mode, watch for audit_deny, then switch to enforce.",
        obs.counted(obs.records),
        if obs.call_paths {
            format!(" ({})", plural(obs.requests, "request"))
        } else {
            String::new()
        },
        thousands(obs.skipped_total()),
    );
    let _ = writeln!(out, "version: 1");
    if obs.team_file {
        let _ = writeln!(
            out,
            "# trust_domains {} come from the platform's file.",
            quoted_list(&trust_domains)
        );
    } else {
        let _ = writeln!(out, "trust_domains: {}", quoted_list(&trust_domains));
    }
    let _ = writeln!(out, "workloads:");
    let mut current = None;
    let mut names: BTreeSet<String> = BTreeSet::new();
    for ((destination, source), calls) in &obs.calls {
        if current != Some(destination) {
            let _ = writeln!(out, "  {}:", quoted(destination));
            let _ = writeln!(
                out,
                "    mode: {}",
                match mode {
                    Mode::Audit => "audit",
                    Mode::Enforce => "enforce",
                }
            );
            let _ = writeln!(out, "    allow:");
            current = Some(destination);
            names.clear();
        }
        let caller = caller_name(source);
        let mut unique = |base: String| {
            let mut name = base.clone();
            let mut n = 2;
            while !names.insert(name.clone()) {
                name = format!("{base}-{n}");
                n += 1;
            }
            name
        };
        for (method, m) in &calls.http {
            let name = unique(format!("{caller}-{}", method.to_ascii_lowercase()));
            let templates = route_templates(m, max_literals);
            let distinct = if m.paths.is_empty() {
                String::new()
            } else {
                format!(", {}", plural(m.paths.len() as u64, "distinct path"))
            };
            let _ = writeln!(out, "      - name: {}", quoted(&name));
            let _ = writeln!(out, "        # {}{distinct}", plural(m.requests, "request"));
            let _ = writeln!(out, "        from: {}", quoted_list([source]));
            let _ = writeln!(out, "        methods: {}", quoted_list([method]));
            if m.any_path {
                let _ = writeln!(
                    out,
                    "        # the calls matched a rule that allows any path: narrow it by hand,\n\
                     \x20       # or suggest again from an audit log with telemetry.log_raw_paths"
                );
            } else {
                let _ = writeln!(out, "        paths: {}", quoted_list(&templates));
            }
        }
        if !calls.grpc.is_empty() {
            let name = unique(format!("{caller}-grpc"));
            let requests: u64 = calls.grpc.values().sum();
            let methods: Vec<String> = calls.grpc.keys().cloned().collect();
            let _ = writeln!(out, "      - name: {}", quoted(&name));
            let _ = writeln!(out, "        # {}", plural(requests, "gRPC request"));
            let _ = writeln!(out, "        from: {}", quoted_list([source]));
            let _ = writeln!(out, "        grpc: {}", quoted_list(&methods));
        }
    }
    out
}

/// A suggested policy that compiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    /// The policy YAML.
    pub text: String,
    /// Rules in it.
    pub rules: usize,
    /// Destinations in it.
    pub destinations: usize,
}

/// The least-privilege policy for `obs`, checked by compiling it; `None`
/// when nothing went through to a named destination.
pub fn suggest(
    obs: &Observations,
    mode: Mode,
    max_literals: usize,
    origin: &str,
) -> Result<Option<Suggestion>, InsightsError> {
    if obs.calls.is_empty() {
        return Ok(None);
    }
    let text = policy_yaml(obs, mode, max_literals, origin);
    if let Err(e) = CompiledPolicy::from_yaml(&text) {
        return Err(InsightsError::Invalid {
            origin: "the suggested policy".into(),
            message: format!("does not compile (a hallpass bug): {e}\n{text}"),
        });
    }
    let rules = text.matches("\n      - name: ").count();
    Ok(Some(Suggestion {
        text,
        rules,
        destinations: obs.destinations(),
    }))
}

/// Write the suggestion to `path`, atomically and never through a planted
/// symlink.
pub fn write(suggestion: &Suggestion, path: &Path) -> Result<(), InsightsError> {
    write_atomically(path, suggestion.text.as_bytes()).map_err(|e| InsightsError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
