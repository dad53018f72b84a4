//! The call graph drawn for people: `/callgraph.html`, a self-contained
//! page with an inline SVG of the service-level graph and the tables of
//! observed edges and rule usage ([`to_html`]), and Graphviz DOT
//! ([`to_dot`]).
//!
//! The sidecar's admin endpoint serves both, so this crate is linked by the
//! sidecar binary; it is kept out of `hallpass-telemetry`, which runs on
//! every request's path, because it is presentation, not measurement. It
//! reads only a [`CallGraph`] snapshot, whose labels are bounded and carry
//! no request data, and escapes every string it draws.

mod html;

use std::collections::BTreeMap;
use std::fmt::Write;

use hallpass_telemetry::CallGraph;

pub use html::{thousands, to_html};

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
