//! The call graph as served on `/callgraph` (JSON) and `/callgraph.dot`;
//! `/callgraph.html` is drawn in `html.rs`.

use std::collections::BTreeMap;
use std::fmt::Write;

use hallpass_vocab::DeclaredEdge;
use serde::{Deserialize, Serialize};

/// An observed edge with its counters and flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedEdge {
    /// Bounded source label.
    pub source: String,
    /// Bounded destination label.
    pub destination: String,
    /// Route template or `(unmatched)`.
    pub route: String,
    /// Method label.
    pub method: String,
    /// Requests seen.
    pub count: u64,
    /// Allowed requests.
    pub allowed: u64,
    /// Denied requests (enforced or audit).
    pub denied: u64,
    /// Unix ms, first request.
    pub first_seen_ms: i64,
    /// Unix ms, last request.
    pub last_seen_ms: i64,
    /// Not in the baseline when first seen.
    pub new: bool,
    /// The last rate window was a spike.
    pub spiking: bool,
    /// In the learned baseline.
    pub in_baseline: bool,
    /// Moving average, requests per second.
    pub ewma_rps: f64,
}

/// When a rule last allowed a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleUsage {
    /// Destination SPIFFE ID.
    pub destination: String,
    /// Rule name.
    pub rule: String,
    /// Unix seconds, 0 = never since start.
    pub last_match_seconds: i64,
}

/// A snapshot of the declared and observed call graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallGraph {
    /// Unix ms of the snapshot.
    pub generated_at_ms: i64,
    /// The baseline is still being learned.
    pub learning: bool,
    /// What the policy allows.
    pub declared: Vec<DeclaredEdge>,
    /// What was seen.
    pub observed: Vec<ObservedEdge>,
    /// Rule usage.
    pub rules: Vec<RuleUsage>,
}

/// How an aggregated service-to-service link looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum LinkKind {
    /// Declared, never seen.
    Unused,
    /// Seen and allowed.
    Allowed,
    /// New since the baseline.
    New,
    /// Denied.
    Denied,
}

impl LinkKind {
    /// Every kind, least to most alarming.
    pub(crate) const ALL: [LinkKind; 4] = [Self::Unused, Self::Allowed, Self::New, Self::Denied];

    pub(crate) fn color(self) -> &'static str {
        match self {
            Self::Unused => "#9aa0a6",
            Self::Allowed => "#1e8e3e",
            Self::New => "#e37400",
            Self::Denied => "#d93025",
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Unused => "declared, unused",
            Self::Allowed => "allowed",
            Self::New => "new edge",
            Self::Denied => "denied",
        }
    }
}

/// Service-level links: (source, destination) → (kind, requests).
pub(crate) fn links(graph: &CallGraph) -> BTreeMap<(String, String), (LinkKind, u64)> {
    let mut out: BTreeMap<(String, String), (LinkKind, u64)> = BTreeMap::new();
    for d in &graph.declared {
        out.entry((d.source.clone(), d.destination.clone()))
            .or_insert((LinkKind::Unused, 0));
    }
    for o in &graph.observed {
        let kind = if o.denied > 0 {
            LinkKind::Denied
        } else if o.new {
            LinkKind::New
        } else {
            LinkKind::Allowed
        };
        let entry = out
            .entry((o.source.clone(), o.destination.clone()))
            .or_insert((kind, 0));
        entry.0 = entry.0.max(kind);
        entry.1 += o.count;
    }
    out
}

pub(crate) fn short(name: &str) -> String {
    // `spiffe://td/ns/x/sa/name` reads best as `name (x)`.
    let path: Vec<&str> = name.trim_start_matches("spiffe://").split('/').collect();
    match path.as_slice() {
        [_, "ns", ns, "sa", sa] => format!("{sa} ({ns})"),
        _ => name.trim_start_matches("spiffe://").to_owned(),
    }
}

pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Graphviz DOT of the service-level graph.
pub fn to_dot(graph: &CallGraph) -> String {
    let mut out =
        String::from("digraph hallpass {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n");
    for ((from, to), (kind, count)) in links(graph) {
        let style = if kind == LinkKind::Unused {
            "dashed"
        } else {
            "solid"
        };
        let _ = writeln!(
            out,
            "  \"{}\" -> \"{}\" [color=\"{}\", style={style}, label=\"{} ({count})\"];",
            from.replace('"', "'"),
            to.replace('"', "'"),
            kind.color(),
            kind.label()
        );
    }
    out.push_str("}\n");
    out
}
