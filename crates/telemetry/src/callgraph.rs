//! The call graph as served on `/callgraph` (JSON), `/callgraph.dot` and
//! `/callgraph.html` (a self-contained page with an inline SVG drawing).

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// A rule's permission for one source pattern: an edge of the declared graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredEdge {
    /// Source pattern as written in the policy.
    pub source: String,
    /// Destination SPIFFE ID.
    pub destination: String,
    /// Rule name.
    pub rule: String,
    /// Route templates and gRPC patterns (empty = any path).
    pub routes: Vec<String>,
    /// Methods (empty = any).
    pub methods: Vec<String>,
}

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
enum LinkKind {
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
    fn color(self) -> &'static str {
        match self {
            Self::Unused => "#9aa0a6",
            Self::Allowed => "#1e8e3e",
            Self::New => "#e37400",
            Self::Denied => "#d93025",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Unused => "declared, unused",
            Self::Allowed => "allowed",
            Self::New => "new edge",
            Self::Denied => "denied",
        }
    }
}

/// Service-level links: (source, destination) → (kind, requests).
fn links(graph: &CallGraph) -> BTreeMap<(String, String), (LinkKind, u64)> {
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

fn short(name: &str) -> String {
    // `spiffe://td/ns/x/sa/name` reads best as `name (x)`.
    let path: Vec<&str> = name.trim_start_matches("spiffe://").split('/').collect();
    match path.as_slice() {
        [_, "ns", ns, "sa", sa] => format!("{sa} ({ns})"),
        _ => name.trim_start_matches("spiffe://").to_owned(),
    }
}

fn escape(text: &str) -> String {
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

/// A self-contained HTML page: an SVG drawing (nodes on a circle, coloured
/// edges) and the edge table. No external scripts, styles or fonts.
pub fn to_html(graph: &CallGraph) -> String {
    let links = links(graph);
    let mut nodes: Vec<String> = links
        .keys()
        .flat_map(|(a, b)| [a.clone(), b.clone()])
        .collect();
    nodes.sort();
    nodes.dedup();
    let (w, h) = (900.0_f64, 560.0_f64);
    let (cx, cy, r) = (w / 2.0, h / 2.0, 210.0_f64);
    #[allow(clippy::cast_precision_loss)]
    let n = nodes.len().max(1) as f64;
    let pos: BTreeMap<&str, (f64, f64)> = nodes
        .iter()
        .enumerate()
        .map(|(i, name)| {
            #[allow(clippy::cast_precision_loss)]
            let a = std::f64::consts::TAU * i as f64 / n - std::f64::consts::FRAC_PI_2;
            (name.as_str(), (cx + r * a.cos(), cy + r * a.sin()))
        })
        .collect();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"call graph\">\n\
         <defs>"
    );
    for kind in [
        LinkKind::Unused,
        LinkKind::Allowed,
        LinkKind::New,
        LinkKind::Denied,
    ] {
        let _ = write!(
            svg,
            "<marker id=\"arrow-{k:?}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"{c}\"/></marker>",
            k = kind,
            c = kind.color()
        );
    }
    svg.push_str("</defs>\n");
    for ((from, to), (kind, count)) in &links {
        let (Some(&(x1, y1)), Some(&(x2, y2))) = (pos.get(from.as_str()), pos.get(to.as_str()))
        else {
            continue;
        };
        // Stop short of the node box so the arrow head stays visible.
        let (dx, dy) = (x2 - x1, y2 - y1);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        let (ex, ey) = (x2 - dx / len * 60.0, y2 - dy / len * 22.0);
        let dash = if *kind == LinkKind::Unused {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let width = if *kind == LinkKind::Denied || *kind == LinkKind::New {
            3
        } else {
            2
        };
        let _ = writeln!(
            svg,
            "<line x1=\"{x1:.0}\" y1=\"{y1:.0}\" x2=\"{ex:.0}\" y2=\"{ey:.0}\" stroke=\"{c}\" stroke-width=\"{width}\"{dash} marker-end=\"url(#arrow-{k:?})\"><title>{t}</title></line>",
            c = kind.color(),
            k = kind,
            t = escape(&format!(
                "{} → {}: {} ({count} requests)",
                short(from),
                short(to),
                kind.label()
            )),
        );
    }
    for (name, (x, y)) in &pos {
        let label = escape(&short(name));
        let _ = writeln!(
            svg,
            "<g><rect x=\"{:.0}\" y=\"{:.0}\" width=\"120\" height=\"36\" rx=\"8\" fill=\"#ffffff\" stroke=\"#3c4043\"/><text x=\"{x:.0}\" y=\"{:.0}\" text-anchor=\"middle\" font-family=\"sans-serif\" font-size=\"12\">{label}</text><title>{}</title></g>",
            x - 60.0,
            y - 18.0,
            y + 4.0,
            escape(name)
        );
    }
    svg.push_str("</svg>");

    let mut rows = String::new();
    for e in &graph.observed {
        let flags = [
            (e.denied > 0).then_some("denied"),
            e.new.then_some("new"),
            e.spiking.then_some("rate spike"),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        let _ = writeln!(
            rows,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if e.denied > 0 {
                "denied"
            } else if e.new {
                "new"
            } else {
                ""
            },
            escape(&e.source),
            escape(&e.destination),
            escape(&e.method),
            escape(&e.route),
            e.count,
            e.denied,
            flags
        );
    }
    let legend: String = [
        LinkKind::Allowed,
        LinkKind::New,
        LinkKind::Denied,
        LinkKind::Unused,
    ]
    .iter()
    .map(|k| {
        format!(
            "<span style=\"color:{}\">&#9632; {}</span>",
            k.color(),
            k.label()
        )
    })
    .collect::<Vec<_>>()
    .join(" &nbsp; ");
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>hallpass call graph</title>\n\
         <style>body{{font-family:sans-serif;margin:24px;color:#202124}} table{{border-collapse:collapse;margin-top:16px}}\
         td,th{{border:1px solid #dadce0;padding:4px 8px;font-size:13px}} tr.denied td{{background:#fce8e6}} tr.new td{{background:#fef7e0}}</style>\n\
         </head><body>\n<h1>hallpass call graph</h1>\n<p>{legend}{learning}</p>\n{svg}\n\
         <table><tr><th>source</th><th>destination</th><th>route</th><th>requests</th><th>denied</th><th>flags</th></tr>\n{rows}</table>\n</body></html>\n",
        learning = if graph.learning {
            " &nbsp; (still learning the baseline)"
        } else {
            ""
        },
    )
}
