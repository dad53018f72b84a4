//! `hallpass report`: unused and over-broad permissions, from a running
//! sidecar's `/callgraph` or a saved copy of it.
//!
//! Three findings:
//! - rules that never matched (`last_match_seconds == 0`: not since the
//!   sidecar started) or not for `--unused-after` days;
//! - identities a rule names exactly that were never seen calling that
//!   destination;
//! - rules to narrow: a rule that allows any method, more methods than were
//!   used, any path (`/**`, no `paths`, `Service/*`), routes never used, or a
//!   source pattern when only a few named callers used it.
//!
//! Observed edges carry route templates, not rules, so an edge is credited
//! to the first rule of its destination (in policy order) whose source,
//! route and method fit it. That is the policy's own first-match order, but
//! time windows, headers and JWT requirements are not known here.
//!
//! Exit codes: 0 the report was printed; 1 a source could not be read;
//! 2 usage errors.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Args, ValueEnum};
use hallpass_policy::SourcePattern;
use hallpass_telemetry::{CallGraph, DeclaredEdge, Escaped, ObservedEdge, json_for_terminal};
use serde::Serialize;

use super::fetch::{self, Source};
use super::rfc3339;

/// Arguments of `hallpass report`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("from").required(true).multiple(true).args(["admin", "state", "prometheus"])))]
pub struct ReportArgs {
    /// A running sidecar's admin address, e.g. http://127.0.0.1:9902.
    /// Repeat for every sidecar of a destination.
    #[arg(long, value_name = "URL")]
    pub admin: Vec<String>,
    /// A saved `/callgraph` JSON document. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub state: Vec<PathBuf>,
    /// A Prometheus that scrapes the sidecars (the mesh-wide view), e.g.
    /// http://127.0.0.1:9090. Edges are per (source, destination) there.
    #[arg(long, value_name = "URL")]
    pub prometheus: Vec<String>,
    /// The policy file, for the declared edges of a `--prometheus` report.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Report rules whose last match is older than this many days.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub unused_after: u64,
    /// `text` for people, `json` for tools.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Sections of aligned lines.
    Text,
    /// One JSON object.
    Json,
}

/// What `hallpass report` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Where the call graph came from.
    pub sources: Vec<String>,
    /// Snapshot time (the latest of the sources), Unix ms.
    pub generated_at_ms: i64,
    /// A source was still learning its baseline.
    pub learning: bool,
    /// The `--unused-after` threshold.
    pub unused_after_days: u64,
    /// Rules that never allowed a request since their sidecar started.
    pub never_used: Vec<RuleFinding>,
    /// Rules whose last match is older than the threshold.
    pub stale: Vec<RuleFinding>,
    /// Exact identities a rule allows that never called the destination.
    pub unseen_identities: Vec<IdentityFinding>,
    /// Rules that allow more than was used.
    pub narrower: Vec<Narrowing>,
}

/// A rule and when it last matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleFinding {
    /// Destination SPIFFE ID.
    pub destination: String,
    /// Rule name.
    pub rule: String,
    /// Unix seconds, 0 = never.
    pub last_match_seconds: i64,
    /// Whole days since the last match (absent when never).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_ago: Option<i64>,
}

/// An allowed identity that was never seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityFinding {
    /// The SPIFFE ID a rule names.
    pub source: String,
    /// The destination it may call.
    pub destination: String,
    /// The rules that allow it.
    pub rules: Vec<String>,
}

/// A rule that could be narrower, with what was used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Narrowing {
    /// Destination SPIFFE ID.
    pub destination: String,
    /// Rule name.
    pub rule: String,
    /// Source patterns as declared.
    pub declared_sources: Vec<String>,
    /// Routes as declared (empty = any path).
    pub declared_routes: Vec<String>,
    /// Methods as declared (empty = any).
    pub declared_methods: Vec<String>,
    /// Source labels seen using it.
    pub observed_sources: Vec<String>,
    /// Route labels seen.
    pub observed_routes: Vec<String>,
    /// Methods seen.
    pub observed_methods: Vec<String>,
    /// Requests credited to the rule.
    pub requests: u64,
    /// What to change, one line each.
    pub suggestions: Vec<String>,
}

/// At most this many observed methods or named sources make a narrowing of
/// "any method" or of a source pattern worth suggesting.
const FEW: usize = 3;

/// Run `hallpass report`; returns the exit code.
pub fn run(args: &ReportArgs) -> ExitCode {
    let sources: Vec<Source> = args
        .admin
        .iter()
        .map(|u| Source::Admin(u.clone()))
        .chain(args.state.iter().map(|p| Source::State(p.clone())))
        .chain(
            args.prometheus
                .iter()
                .map(|u| Source::Prometheus(u.clone(), args.policy.clone())),
        )
        .collect();
    let graph = match fetch::load_all(&sources) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {}", Escaped(&format!("{e:#}")));
            return ExitCode::from(1);
        }
    };
    let names: Vec<String> = sources.iter().map(ToString::to_string).collect();
    let report = analyze(&graph, names, args.unused_after);
    match args.format {
        Format::Text => print!("{}", report.to_text()),
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{}", json_for_terminal(&json)),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        },
    }
    ExitCode::SUCCESS
}

/// Does a declared source pattern cover an observed source label? Labels
/// are exact IDs when the policy names the caller, else `other:<td>`.
fn source_fits(pattern: &str, label: &str) -> bool {
    if pattern == label {
        return true;
    }
    let Ok(parsed) = SourcePattern::parse(pattern) else {
        return false;
    };
    if let Some(td) = label.strip_prefix("other:") {
        // An unnamed caller of that trust domain: only a pattern can fit it.
        return !matches!(parsed, SourcePattern::Exact(_)) && parsed.trust_domain().as_str() == td;
    }
    match SourcePattern::parse(label) {
        Ok(SourcePattern::Exact(id)) => parsed.matches(&id),
        _ => false,
    }
}

/// Does a declared rule's route list and method list fit an observed edge?
fn route_fits(rule: &DeclaredEdge, edge: &ObservedEdge) -> bool {
    let grpc = !edge.route.starts_with('/') && edge.route != "*";
    let route_ok = if rule.routes.is_empty() {
        edge.route == "*"
    } else {
        rule.routes.contains(&edge.route)
    };
    // Methods do not apply to gRPC patterns.
    let method_ok = grpc || rule.methods.is_empty() || rule.methods.contains(&edge.method);
    route_ok && method_ok
}

fn is_wildcard_route(route: &str) -> bool {
    route == "*" || route.ends_with("/**") || route.ends_with("/*")
}

fn is_exact_id(text: &str) -> bool {
    matches!(SourcePattern::parse(text), Ok(SourcePattern::Exact(_)))
}

/// The analysis behind `hallpass report`.
pub fn analyze(graph: &CallGraph, sources: Vec<String>, unused_after_days: u64) -> Report {
    let now_s = graph.generated_at_ms / 1000;
    let threshold = i64::try_from(unused_after_days.saturating_mul(86_400)).unwrap_or(i64::MAX);
    let mut never_used = Vec::new();
    let mut stale = Vec::new();
    for r in &graph.rules {
        let mut finding = RuleFinding {
            destination: r.destination.clone(),
            rule: r.rule.clone(),
            last_match_seconds: r.last_match_seconds,
            days_ago: None,
        };
        if r.last_match_seconds <= 0 {
            never_used.push(finding);
        } else if now_s - r.last_match_seconds > threshold {
            finding.days_ago = Some((now_s - r.last_match_seconds) / 86_400);
            stale.push(finding);
        }
    }

    // Exact identities allowed but never seen calling the destination.
    let seen: BTreeSet<(&str, &str)> = graph
        .observed
        .iter()
        .map(|e| (e.source.as_str(), e.destination.as_str()))
        .collect();
    let mut unseen_identities: Vec<IdentityFinding> = Vec::new();
    for d in &graph.declared {
        if !is_exact_id(&d.source) || seen.contains(&(d.source.as_str(), d.destination.as_str())) {
            continue;
        }
        match unseen_identities
            .iter_mut()
            .find(|f| f.source == d.source && f.destination == d.destination)
        {
            Some(f) if !f.rules.contains(&d.rule) => f.rules.push(d.rule.clone()),
            Some(_) => {}
            None => unseen_identities.push(IdentityFinding {
                source: d.source.clone(),
                destination: d.destination.clone(),
                rules: vec![d.rule.clone()],
            }),
        }
    }
    unseen_identities.sort_by(|a, b| (&a.destination, &a.source).cmp(&(&b.destination, &b.source)));

    // Credit each allowed edge to the first rule (in policy order) it fits.
    let rules = fetch::rules_in_order(graph);
    let mut credited: Vec<Vec<&ObservedEdge>> = vec![Vec::new(); rules.len()];
    for edge in graph.observed.iter().filter(|e| e.allowed > 0) {
        let first = rules.iter().position(|((destination, _), decl)| {
            *destination == edge.destination
                && decl
                    .iter()
                    .any(|d| source_fits(&d.source, &edge.source) && route_fits(d, edge))
        });
        if let Some(i) = first {
            credited[i].push(edge);
        }
    }
    let mut narrower = Vec::new();
    for (((destination, rule), decl), used) in rules.iter().zip(&credited) {
        if used.is_empty() {
            continue; // unused rules are reported above
        }
        if let Some(n) = narrowing(destination, rule, decl, used) {
            narrower.push(n);
        }
    }
    Report {
        sources,
        generated_at_ms: graph.generated_at_ms,
        learning: graph.learning,
        unused_after_days,
        never_used,
        stale,
        unseen_identities,
        narrower,
    }
}

fn narrowing(
    destination: &str,
    rule: &str,
    decl: &[&DeclaredEdge],
    used: &[&ObservedEdge],
) -> Option<Narrowing> {
    let declared_sources: Vec<String> = decl.iter().map(|d| d.source.clone()).collect();
    let declared_routes = decl[0].routes.clone();
    let declared_methods = decl[0].methods.clone();
    let set = |f: fn(&ObservedEdge) -> &str| -> Vec<String> {
        used.iter()
            .map(|e| f(e).to_owned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let observed_sources = set(|e| &e.source);
    let observed_routes = set(|e| &e.route);
    let http: Vec<&&ObservedEdge> = used
        .iter()
        .filter(|e| e.route.starts_with('/') || e.route == "*")
        .collect();
    let observed_methods: Vec<String> = http
        .iter()
        .map(|e| e.method.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut suggestions = Vec::new();

    // Methods: any method but only a few used, or some never used.
    let has_http = declared_routes.is_empty() || declared_routes.iter().any(|r| r.starts_with('/'));
    if has_http && !observed_methods.is_empty() {
        let unused: Vec<&str> = declared_methods
            .iter()
            .filter(|m| !observed_methods.contains(m))
            .map(String::as_str)
            .collect();
        if declared_methods.is_empty() && observed_methods.len() <= FEW {
            suggestions.push(format!(
                "methods: allows any method, used only {} -> methods: [{}]",
                observed_methods.join(", "),
                observed_methods.join(", ")
            ));
        } else if !unused.is_empty() {
            suggestions.push(format!(
                "methods: {} never used -> methods: [{}]",
                unused.join(", "),
                observed_methods.join(", ")
            ));
        }
    }
    // Routes: wildcards cannot be narrowed from templates; unused ones can go.
    let wild: Vec<&String> = declared_routes
        .iter()
        .filter(|r| is_wildcard_route(r))
        .collect();
    if declared_routes.is_empty() || !wild.is_empty() {
        suggestions.push(format!(
            "paths: allows {} -> learn the templates actually called with `hallpass policy suggest --from-audit-log` (telemetry.log_raw_paths on a mesh without PHI)",
            if declared_routes.is_empty() {
                "any path".to_owned()
            } else {
                wild.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
            }
        ));
    }
    let unused_routes: Vec<&String> = declared_routes
        .iter()
        .filter(|r| !is_wildcard_route(r) && !observed_routes.contains(r))
        .collect();
    if !unused_routes.is_empty() {
        suggestions.push(format!(
            "routes never used: {} -> remove them",
            unused_routes
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    // Sources: a pattern used only by a few callers the policy names.
    let patterns = declared_sources.iter().any(|s| !is_exact_id(s));
    if patterns && observed_sources.len() <= FEW && observed_sources.iter().all(|s| is_exact_id(s))
    {
        suggestions.push(format!(
            "from: {} used only by {} -> from: [{}]",
            declared_sources.join(", "),
            observed_sources.join(", "),
            observed_sources.join(", ")
        ));
    }
    (!suggestions.is_empty()).then(|| Narrowing {
        destination: destination.to_owned(),
        rule: rule.to_owned(),
        declared_sources,
        declared_routes,
        declared_methods,
        observed_sources,
        observed_routes,
        observed_methods,
        requests: used.iter().map(|e| e.allowed).sum(),
        suggestions,
    })
}

impl Report {
    /// The text form.
    ///
    /// Every string from the call graph is escaped for the terminal
    /// ([`Escaped`]): the graph may come from a file a compromised workload
    /// wrote.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "hallpass report: {} at {}{}",
            Escaped(&self.sources.join(", ")),
            rfc3339(self.generated_at_ms / 1000),
            if self.learning {
                " (still learning the baseline)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "\nRules never used since the sidecar started ({})",
            self.never_used.len()
        );
        for f in &self.never_used {
            let _ = writeln!(out, "  {}  {}", Escaped(&f.destination), Escaped(&f.rule));
        }
        let _ = writeln!(
            out,
            "\nRules not used for more than {} days ({})",
            self.unused_after_days,
            self.stale.len()
        );
        for f in &self.stale {
            let _ = writeln!(
                out,
                "  {}  {}  last match {} ({} days ago)",
                Escaped(&f.destination),
                Escaped(&f.rule),
                rfc3339(f.last_match_seconds),
                f.days_ago.unwrap_or_default()
            );
        }
        let _ = writeln!(
            out,
            "\nIdentities allowed but never seen ({})",
            self.unseen_identities.len()
        );
        for f in &self.unseen_identities {
            let _ = writeln!(
                out,
                "  {} -> {}  (rules: {})",
                Escaped(&f.source),
                Escaped(&f.destination),
                Escaped(&f.rules.join(", "))
            );
        }
        let _ = writeln!(out, "\nRules to narrow ({})", self.narrower.len());
        for n in &self.narrower {
            let _ = writeln!(
                out,
                "  {}  {}  ({} requests)",
                Escaped(&n.destination),
                Escaped(&n.rule),
                n.requests
            );
            for s in &n.suggestions {
                let _ = writeln!(out, "    {}", Escaped(s));
            }
        }
        out
    }
}
