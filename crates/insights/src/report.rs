//! Unused and over-broad permissions (`hallpass report`), from the call
//! graph of one or more sidecars or of Prometheus.
//!
//! Three findings:
//! - rules that never matched (`last_match_seconds == 0`: not since the
//!   sidecar started) or not for `unused_after_days`;
//! - identities a rule names exactly that were never seen calling that
//!   destination;
//! - rules to narrow: a rule that allows any method, more methods than were
//!   used, any path (`/**`, no `paths`, `Service/*`), routes never used, or a
//!   source pattern when only a few named callers used it.
//!
//! Observed edges carry route templates, not rules, so an edge is credited
//! to the first rule of its destination (in policy order) that covers it.
//! The declared edges are parsed once into the policy crate's matchers
//! ([`SourcePattern`], [`RouteTemplate`], [`GrpcPattern`]) and the observed
//! labels into typed values, so "covers" means what it means in the
//! sidecar: segment-wise source patterns, templates that cover templates.
//! That is the policy's own first-match order, but time windows, headers and
//! JWT requirements are not known here.

use std::collections::BTreeSet;

use hallpass_identity::{SpiffeId, TrustDomain};
use hallpass_policy::{GrpcPattern, RouteTemplate, SourcePattern};
use hallpass_telemetry::{CallGraph, DataClass, DeclaredEdge, Escaped, ObservedEdge};
use serde::Serialize;

use crate::rfc3339;
use crate::source::rules_in_order;

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
    /// Unused grants and anomalous edges counted per data class, in the
    /// order phi, billing, operational, public, none; classes with nothing
    /// to count are left out.
    pub by_data_class: Vec<ClassGroup>,
}

/// What the report found for one data class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassGroup {
    /// The class (`none` for rules and edges without one).
    pub data_class: DataClass,
    /// Rules never used since their sidecar started.
    pub never_used: usize,
    /// Rules not used for more than the threshold.
    pub stale: usize,
    /// Observed edges showing an anomaly: new (not in the baseline),
    /// spiking, or with denied calls.
    pub anomalous_edges: usize,
    /// Denied calls on those edges.
    pub denied_calls: u64,
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
    /// The rule's data class, from the declared graph (`none` when
    /// undeclared or not found there).
    pub data_class: DataClass,
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

/// Route label of an edge whose call matched a rule that allows any path.
const ANY_PATH: &str = "*";

/// An observed source label, typed: an exact ID when the policy names the
/// caller, `other:<trust domain>` for an unnamed caller of a listed trust
/// domain, anything else (`unauthenticated`, `other:untrusted`) unproven.
#[derive(Debug)]
enum Caller {
    Named(SpiffeId),
    Other(TrustDomain),
    Unproven,
}

impl Caller {
    fn parse(label: &str) -> Self {
        if let Some(td) = label.strip_prefix("other:") {
            return TrustDomain::new(td).map_or(Self::Unproven, Self::Other);
        }
        match SourcePattern::parse(label) {
            Ok(SourcePattern::Exact(id)) => Self::Named(id),
            _ => Self::Unproven,
        }
    }

    /// Could `pattern` have let this caller in? An unnamed caller of a trust
    /// domain can only have come in through a pattern of that domain.
    fn fits(&self, pattern: &SourcePattern) -> bool {
        match self {
            Self::Named(id) => pattern.matches(id),
            Self::Other(td) => {
                !matches!(pattern, SourcePattern::Exact(_)) && pattern.trust_domain() == td
            }
            Self::Unproven => false,
        }
    }
}

/// A route: a path template or a gRPC method pattern.
#[derive(Debug)]
enum Route {
    Http(RouteTemplate),
    Grpc(GrpcPattern),
}

impl Route {
    /// A declared route or an observed route label; `None` for anything
    /// else (`*`, `(unmatched)`, Prometheus's `(all routes)`).
    fn parse(text: &str) -> Option<Self> {
        if text.starts_with('/') {
            RouteTemplate::parse(text).ok().map(Self::Http)
        } else {
            GrpcPattern::parse(text).ok().map(Self::Grpc)
        }
    }

    /// Does every call `other` stands for also match `self`?
    fn covers(&self, other: &Route) -> bool {
        match (self, other) {
            (Self::Http(a), Self::Http(b)) => a.covers(b),
            (Self::Grpc(a), Self::Grpc(b)) => a.covers(b),
            _ => false,
        }
    }

    /// `/**` or `Service/*`: cannot be narrowed from templates.
    fn is_wildcard(&self) -> bool {
        match self {
            Self::Http(t) => t.any_depth(),
            Self::Grpc(g) => g.method().is_none(),
        }
    }
}

/// One rule of the declared graph, parsed once.
struct Rule<'g> {
    destination: &'g str,
    name: &'g str,
    edges: Vec<&'g DeclaredEdge>,
    /// One per declared source; `None` when it does not parse (fits nothing).
    sources: Vec<Option<SourcePattern>>,
    /// The declared routes as written, each with its parsed form.
    routes: Vec<(&'g str, Option<Route>)>,
    methods: &'g [String],
}

impl<'g> Rule<'g> {
    fn new(destination: &'g str, name: &'g str, edges: Vec<&'g DeclaredEdge>) -> Self {
        let first = edges.first().copied();
        Self {
            destination,
            name,
            sources: edges
                .iter()
                .map(|d| SourcePattern::parse(&d.source).ok())
                .collect(),
            routes: first
                .map(|d| {
                    d.routes
                        .iter()
                        .map(|r| (r.as_str(), Route::parse(r)))
                        .collect()
                })
                .unwrap_or_default(),
            methods: first.map(|d| d.methods.as_slice()).unwrap_or_default(),
            edges,
        }
    }

    fn allows_any_path(&self) -> bool {
        self.routes.is_empty()
    }

    /// Would this rule have matched the calls of `edge`?
    fn fits(&self, edge: &Observed<'_>) -> bool {
        let source_ok = self.sources.iter().flatten().any(|p| edge.caller.fits(p));
        let route_ok = match &edge.route {
            // A rule without paths or gRPC patterns labels its calls `*`.
            None => self.allows_any_path() && edge.edge.route == ANY_PATH,
            Some(route) => self
                .routes
                .iter()
                .any(|(_, declared)| declared.as_ref().is_some_and(|d| d.covers(route))),
        };
        // Methods do not apply to gRPC patterns.
        let method_ok = matches!(edge.route, Some(Route::Grpc(_)))
            || self.methods.is_empty()
            || self.methods.contains(&edge.edge.method);
        source_ok && route_ok && method_ok
    }
}

/// An observed edge with its labels parsed.
struct Observed<'g> {
    edge: &'g ObservedEdge,
    caller: Caller,
    route: Option<Route>,
}

impl<'g> Observed<'g> {
    fn new(edge: &'g ObservedEdge) -> Self {
        Self {
            edge,
            caller: Caller::parse(&edge.source),
            route: Route::parse(&edge.route),
        }
    }

    fn is_http(&self) -> bool {
        match &self.route {
            Some(route) => matches!(route, Route::Http(_)),
            None => self.edge.route == ANY_PATH,
        }
    }
}

fn exact_id(text: &str) -> Option<SpiffeId> {
    match SourcePattern::parse(text) {
        Ok(SourcePattern::Exact(id)) => Some(id),
        _ => None,
    }
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
            data_class: graph
                .declared
                .iter()
                .find(|d| d.destination == r.destination && d.rule == r.rule)
                .map_or(DataClass::None, |d| d.data_class),
        };
        if r.last_match_seconds <= 0 {
            never_used.push(finding);
        } else if now_s - r.last_match_seconds > threshold {
            finding.days_ago = Some((now_s - r.last_match_seconds) / 86_400);
            stale.push(finding);
        }
    }

    let observed: Vec<Observed<'_>> = graph.observed.iter().map(Observed::new).collect();

    // Exact identities allowed but never seen calling the destination.
    let seen: Vec<(&SpiffeId, &str)> = observed
        .iter()
        .filter_map(|o| match &o.caller {
            Caller::Named(id) => Some((id, o.edge.destination.as_str())),
            _ => None,
        })
        .collect();
    let mut unseen_identities: Vec<IdentityFinding> = Vec::new();
    for d in &graph.declared {
        let Some(id) = exact_id(&d.source) else {
            continue;
        };
        if seen
            .iter()
            .any(|(s, dest)| **s == id && *dest == d.destination)
        {
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

    // Credit each allowed edge to the first rule (in policy order) that fits it.
    let rules: Vec<Rule<'_>> = rules_in_order(graph)
        .into_iter()
        .map(|(destination, name, edges)| Rule::new(destination, name, edges))
        .collect();
    let mut credited: Vec<Vec<&Observed<'_>>> = rules.iter().map(|_| Vec::new()).collect();
    for edge in observed.iter().filter(|o| o.edge.allowed > 0) {
        let first = rules
            .iter()
            .position(|r| r.destination == edge.edge.destination && r.fits(edge));
        if let Some(used) = first.and_then(|i| credited.get_mut(i)) {
            used.push(edge);
        }
    }
    let narrower = rules
        .iter()
        .zip(&credited)
        // Unused rules are reported above.
        .filter(|(_, used)| !used.is_empty())
        .filter_map(|(rule, used)| narrowing(rule, used))
        .collect();
    let by_data_class = by_data_class(&never_used, &stale, &graph.observed);
    Report {
        sources,
        generated_at_ms: graph.generated_at_ms,
        learning: graph.learning,
        unused_after_days,
        never_used,
        stale,
        unseen_identities,
        narrower,
        by_data_class,
    }
}

/// Unused grants and anomalous edges per data class (severity follows the
/// data: an unused grant to PHI is worth removing first).
fn by_data_class(
    never_used: &[RuleFinding],
    stale: &[RuleFinding],
    observed: &[ObservedEdge],
) -> Vec<ClassGroup> {
    DataClass::ALL
        .into_iter()
        .map(|class| {
            let anomalous: Vec<&ObservedEdge> = observed
                .iter()
                .filter(|e| e.data_class == class && (e.new || e.spiking || e.denied > 0))
                .collect();
            ClassGroup {
                data_class: class,
                never_used: never_used.iter().filter(|f| f.data_class == class).count(),
                stale: stale.iter().filter(|f| f.data_class == class).count(),
                anomalous_edges: anomalous.len(),
                denied_calls: anomalous.iter().map(|e| e.denied).sum(),
            }
        })
        .filter(|g| g.never_used + g.stale + g.anomalous_edges > 0)
        .collect()
}

fn sorted<'a>(items: impl Iterator<Item = &'a str>) -> Vec<String> {
    items
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(str::to_owned)
        .collect()
}

fn narrowing(rule: &Rule<'_>, used: &[&Observed<'_>]) -> Option<Narrowing> {
    let declared_sources: Vec<String> = rule.edges.iter().map(|d| d.source.clone()).collect();
    let declared_routes: Vec<String> = rule.routes.iter().map(|(t, _)| (*t).to_owned()).collect();
    let declared_methods = rule.methods.to_vec();
    let observed_sources = sorted(used.iter().map(|o| o.edge.source.as_str()));
    let observed_routes = sorted(used.iter().map(|o| o.edge.route.as_str()));
    let observed_methods = sorted(
        used.iter()
            .filter(|o| o.is_http())
            .map(|o| o.edge.method.as_str()),
    );
    let mut suggestions = Vec::new();

    // Methods: any method but only a few used, or some never used.
    let has_http = rule.allows_any_path()
        || rule
            .routes
            .iter()
            .any(|(_, r)| matches!(r, Some(Route::Http(_))));
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
    let wild: Vec<&str> = rule
        .routes
        .iter()
        .filter(|(_, r)| r.as_ref().is_some_and(Route::is_wildcard))
        .map(|(text, _)| *text)
        .collect();
    if rule.allows_any_path() || !wild.is_empty() {
        suggestions.push(format!(
            "paths: allows {} -> learn the templates actually called with `hallpass policy suggest --from-audit-log` (telemetry.log_raw_paths on a mesh without PHI)",
            if rule.allows_any_path() {
                "any path".to_owned()
            } else {
                wild.join(", ")
            }
        ));
    }
    let unused_routes: Vec<&str> = rule
        .routes
        .iter()
        .filter(|(_, r)| {
            r.as_ref().is_some_and(|declared| {
                !declared.is_wildcard()
                    && !used
                        .iter()
                        .any(|o| o.route.as_ref().is_some_and(|seen| declared.covers(seen)))
            })
        })
        .map(|(text, _)| *text)
        .collect();
    if !unused_routes.is_empty() {
        suggestions.push(format!(
            "routes never used: {} -> remove them",
            unused_routes.join(", ")
        ));
    }
    // Sources: a pattern used only by a few callers the policy names.
    let patterns = rule
        .sources
        .iter()
        .any(|p| !matches!(p, Some(SourcePattern::Exact(_))));
    let all_named = used.iter().all(|o| matches!(o.caller, Caller::Named(_)));
    if patterns && observed_sources.len() <= FEW && all_named {
        suggestions.push(format!(
            "from: {} used only by {} -> from: [{}]",
            declared_sources.join(", "),
            observed_sources.join(", "),
            observed_sources.join(", ")
        ));
    }
    (!suggestions.is_empty()).then(|| Narrowing {
        destination: rule.destination.to_owned(),
        rule: rule.name.to_owned(),
        declared_sources,
        declared_routes,
        declared_methods,
        observed_sources,
        observed_routes,
        observed_methods,
        requests: used.iter().map(|o| o.edge.allowed).sum(),
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
        let _ = writeln!(out, "\nBy data class ({})", self.by_data_class.len());
        for g in &self.by_data_class {
            let _ = writeln!(
                out,
                "  {:<11}  {} never used, {} stale, {} anomalous edges ({} denied calls)",
                g.data_class.as_str(),
                g.never_used,
                g.stale,
                g.anomalous_edges,
                g.denied_calls
            );
        }
        out
    }
}
