//! `/callgraph.html`: a self-contained page (no scripts, styles, fonts or
//! images from elsewhere) that draws the service-level call graph as an
//! inline SVG, followed by the observed edges and the rule-usage table.
//!
//! Layout: services are placed in columns by call depth (callers left of the
//! services they call; cycles are broken where a depth-first walk meets
//! them), ordered within a column by the average row of their callers. Links
//! that run both ways, or within a column, are drawn as arcs that bend to
//! the right of their direction, so `A → B` and `B → A` never overlap.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use hallpass_telemetry::CallGraph;

use crate::{LinkKind, escape, links, short};

/// Box height and the vertical gap between boxes of a column.
const BOX_H: f64 = 34.0;
const ROW_H: f64 = 80.0;
/// Horizontal room between columns (for the links and their labels).
const COL_GAP: f64 = 120.0;
const MARGIN: f64 = 24.0;
/// Rough width of a 12px sans-serif character, to size the boxes.
const CHAR_W: f64 = 7.0;

/// A placed service box (centre and half sizes).
#[derive(Debug, Clone, Copy)]
struct Placed {
    x: f64,
    y: f64,
    hw: f64,
    hh: f64,
}

impl Placed {
    /// Where a ray from the centre in direction `(dx, dy)` leaves the box
    /// (plus `pad`).
    fn border(&self, dx: f64, dy: f64, pad: f64) -> (f64, f64) {
        let len = (dx * dx + dy * dy).sqrt();
        if len < f64::EPSILON {
            return (self.x, self.y);
        }
        let (ux, uy) = (dx / len, dy / len);
        let sx = if ux.abs() > f64::EPSILON {
            (self.hw + pad) / ux.abs()
        } else {
            f64::INFINITY
        };
        let sy = if uy.abs() > f64::EPSILON {
            (self.hh + pad) / uy.abs()
        } else {
            f64::INFINITY
        };
        let s = sx.min(sy);
        (self.x + ux * s, self.y + uy * s)
    }
}

/// Column (call depth) of every node: longest path from a node nobody
/// calls, over the links that are not back edges of a depth-first walk.
///
/// Every index is below `nodes.len()` (the caller builds `edges` from
/// `nodes`); one that is not is left out rather than indexed.
fn columns(nodes: &[String], edges: &BTreeSet<(usize, usize)>) -> Vec<usize> {
    let n = nodes.len();
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in edges {
        if a != b
            && b < n
            && let Some(callees) = out.get_mut(a)
        {
            callees.push(b);
        }
    }
    // Iterative DFS: 0 = unvisited, 1 = on the stack, 2 = done.
    let mut state = vec![0_u8; n];
    let set = |state: &mut [u8], i: usize, to: u8| {
        if let Some(s) = state.get_mut(i) {
            *s = to;
        }
    };
    let mut forward: BTreeSet<(usize, usize)> = BTreeSet::new();
    let has_caller: BTreeSet<usize> = edges.iter().filter(|(a, b)| a != b).map(|e| e.1).collect();
    let roots = (0..n)
        .filter(|i| !has_caller.contains(i))
        .chain(0..n)
        .collect::<Vec<_>>();
    for root in roots {
        if state.get(root) != Some(&0) {
            continue;
        }
        let mut stack = vec![(root, 0_usize)];
        set(&mut state, root, 1);
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&to) = out.get(node).and_then(|callees| callees.get(*next)) {
                *next += 1;
                match state.get(to) {
                    Some(0) => {
                        forward.insert((node, to));
                        set(&mut state, to, 1);
                        stack.push((to, 0));
                    }
                    Some(1) | None => {} // a back edge: ignored for the columns
                    Some(_) => {
                        forward.insert((node, to));
                    }
                }
            } else {
                set(&mut state, node, 2);
                stack.pop();
            }
        }
    }
    // Longest path over the forward edges (a DAG): relax n times at most.
    let mut col = vec![0_usize; n];
    for _ in 0..n {
        let mut changed = false;
        for &(a, b) in &forward {
            let Some(depth) = col.get(a).map(|c| c + 1) else {
                continue;
            };
            if let Some(cb) = col.get_mut(b)
                && *cb < depth
            {
                *cb = depth;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    col
}

/// Place every node: columns by depth, rows ordered by the callers' rows.
fn layout(
    nodes: &[String],
    edges: &BTreeSet<(usize, usize)>,
) -> (Vec<Placed>, Vec<usize>, f64, f64) {
    let col = columns(nodes, edges);
    let ncols = col.iter().copied().max().map_or(1, |m| m + 1);
    let mut by_col: Vec<Vec<usize>> = vec![Vec::new(); ncols];
    for (i, c) in col.iter().enumerate() {
        if let Some(members) = by_col.get_mut(*c) {
            members.push(i);
        }
    }
    // Rows: the first column by name, then each node by the mean row of the
    // nodes linked to it in earlier columns (stable, so ties keep name order).
    let mut row = vec![0.0_f64; nodes.len()];
    for (c, members) in by_col.iter_mut().enumerate() {
        let mut keyed: Vec<(f64, usize)> = members
            .iter()
            .map(|&i| {
                let linked: Vec<f64> = edges
                    .iter()
                    .filter_map(|&(a, b)| {
                        let other = if b == i {
                            a
                        } else if a == i {
                            b
                        } else {
                            return None;
                        };
                        if col.get(other).is_some_and(|&oc| oc < c) {
                            row.get(other).copied()
                        } else {
                            None
                        }
                    })
                    .collect();
                let key = if linked.is_empty() {
                    f64::MAX
                } else {
                    linked.iter().sum::<f64>() / linked.len() as f64
                };
                (key, i)
            })
            .collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
        *members = keyed.into_iter().map(|(_, i)| i).collect();
        for (r, &i) in members.iter().enumerate() {
            if let Some(slot) = row.get_mut(i) {
                *slot = r as f64;
            }
        }
    }
    let half_width = |i: usize| {
        let chars = nodes.get(i).map_or(0, |n| short(n).chars().count()) as f64;
        (chars * CHAR_W + 24.0).max(90.0) / 2.0
    };
    // At least three rows of room, so arcs over skipped columns stay inside.
    let rows = by_col.iter().map(Vec::len).max().unwrap_or(1).max(3);
    let height = rows as f64 * ROW_H + 2.0 * MARGIN;
    let mut placed = vec![
        Placed {
            x: 0.0,
            y: 0.0,
            hw: 45.0,
            hh: BOX_H / 2.0
        };
        nodes.len()
    ];
    let mut x = MARGIN;
    for members in &by_col {
        let widest = members.iter().map(|&i| half_width(i)).fold(45.0, f64::max);
        // Spread each column over the full height, so the links into a
        // sparse column fan out instead of bunching in the middle.
        let step = (height - 2.0 * MARGIN) / members.len().max(1) as f64;
        for (r, &i) in members.iter().enumerate() {
            if let Some(slot) = placed.get_mut(i) {
                *slot = Placed {
                    x: x + widest,
                    y: MARGIN + (r as f64 + 0.5) * step,
                    hw: half_width(i),
                    hh: BOX_H / 2.0,
                };
            }
        }
        x += 2.0 * widest + COL_GAP;
    }
    let width = (x - COL_GAP + MARGIN).max(320.0);
    (placed, col, width, height)
}

/// `1234567` as `1,234,567`, for reports people read.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `5 s ago`, `3 h ago`, `40 d ago`, or `never`.
fn ago(now_ms: i64, then_s: i64) -> String {
    if then_s <= 0 {
        return "never".into();
    }
    let s = (now_ms / 1000 - then_s).max(0);
    match s {
        0..120 => format!("{s} s ago"),
        120..7200 => format!("{} min ago", s / 60),
        7200..172_800 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// Draw the service-level graph as SVG.
fn svg(graph: &CallGraph) -> String {
    let links = links(graph);
    let nodes: Vec<String> = links
        .keys()
        .flat_map(|(a, b)| [a.clone(), b.clone()])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let index: BTreeMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let edges: BTreeSet<(usize, usize)> = links
        .keys()
        .filter_map(|(a, b)| Some((*index.get(a.as_str())?, *index.get(b.as_str())?)))
        .collect();
    let spiking: BTreeSet<(&str, &str)> = graph
        .observed
        .iter()
        .filter(|o| o.spiking)
        .map(|o| (o.source.as_str(), o.destination.as_str()))
        .collect();
    let (placed, col, w, h) = layout(&nodes, &edges);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" role=\"img\" aria-label=\"call graph\" font-family=\"sans-serif\">\n<defs>"
    );
    for kind in LinkKind::ALL {
        let _ = write!(
            svg,
            "<marker id=\"arrow-{k:?}\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerUnits=\"userSpaceOnUse\" markerWidth=\"11\" markerHeight=\"11\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"{c}\"/></marker>",
            k = kind,
            c = kind.color()
        );
    }
    svg.push_str("</defs>\n");
    let mut labels = String::new();
    // Unused (dashed, grey) links first, so the live ones are drawn on top.
    let mut ordered: Vec<_> = links.iter().collect();
    ordered.sort_by_key(|(_, (kind, _))| *kind);
    for ((from, to), (kind, count)) in ordered {
        let (Some(&a), Some(&b)) = (index.get(from.as_str()), index.get(to.as_str())) else {
            continue;
        };
        let (Some(&p), Some(&q), Some(&col_a), Some(&col_b)) =
            (placed.get(a), placed.get(b), col.get(a), col.get(b))
        else {
            continue;
        };
        let title = escape(&format!(
            "{} → {}: {} ({} requests)",
            short(from),
            short(to),
            kind.label(),
            thousands(*count)
        ));
        let style = format!(
            "stroke=\"{c}\" stroke-width=\"{sw}\" fill=\"none\"{dash} marker-end=\"url(#arrow-{k:?})\"",
            c = kind.color(),
            sw = if matches!(kind, LinkKind::Denied | LinkKind::New) {
                2.6
            } else {
                1.8
            },
            dash = if *kind == LinkKind::Unused {
                " stroke-dasharray=\"6 4\""
            } else {
                ""
            },
            k = kind,
        );
        let (mx, my);
        if a == b {
            // A service calling itself: a loop over the top of its box.
            let (x0, y0) = (p.x - 14.0, p.y - p.hh);
            let (x1, y1) = (p.x + 14.0, p.y - p.hh - 2.0);
            let _ = writeln!(
                svg,
                "<path d=\"M{x0:.1},{y0:.1} C{:.1},{:.1} {:.1},{:.1} {x1:.1},{y1:.1}\" {style}><title>{title}</title></path>",
                p.x - 30.0,
                y0 - 40.0,
                p.x + 30.0,
                y0 - 40.0
            );
            (mx, my) = (p.x, y0 - 34.0);
        } else {
            let (dx, dy) = (q.x - p.x, q.y - p.y);
            let len = (dx * dx + dy * dy).sqrt().max(1.0);
            let reverse = edges.contains(&(b, a));
            let span = col_a.abs_diff(col_b);
            // Bend to one side of the direction of travel: links within a
            // column, and links over skipped columns, arc around the boxes
            // in between; a link that also runs back gets its own arc.
            let bend = if span == 0 {
                (0.3 * len).clamp(40.0, 160.0)
            } else {
                (span - 1) as f64 * 48.0 + if reverse { 26.0 } else { 0.0 }
            };
            let (mut nx, mut ny) = (-dy / len, dx / len);
            if span > 1 && ((p.y + q.y) / 2.0 - h / 2.0) * ny > 0.0 {
                // An arc over skipped columns bends away from the middle.
                (nx, ny) = (-nx, -ny);
            }
            let (cx, cy) = ((p.x + q.x) / 2.0 - nx * bend, (p.y + q.y) / 2.0 - ny * bend);
            let (sx, sy) = p.border(cx - p.x, cy - p.y, 1.0);
            let (ex, ey) = q.border(cx - q.x, cy - q.y, 2.0);
            let _ = writeln!(
                svg,
                "<path d=\"M{sx:.1},{sy:.1} Q{cx:.1},{cy:.1} {ex:.1},{ey:.1}\" {style}><title>{title}</title></path>"
            );
            // The midpoint of the quadratic curve.
            (mx, my) = (
                0.25 * sx + 0.5 * cx + 0.25 * ex,
                0.25 * sy + 0.5 * cy + 0.25 * ey,
            );
        }
        if *kind != LinkKind::Unused {
            let spike = if spiking.contains(&(from.as_str(), to.as_str())) {
                ", spiking"
            } else {
                ""
            };
            let _ = writeln!(
                labels,
                "<text x=\"{mx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"11\" fill=\"{c}\" stroke=\"#ffffff\" stroke-width=\"7\" stroke-linejoin=\"round\" paint-order=\"stroke\">{}{spike}</text>",
                my + 4.0,
                thousands(*count),
                c = kind.color(),
            );
        }
    }
    svg.push_str(&labels);
    for (name, p) in nodes.iter().zip(&placed) {
        let pattern = name.ends_with("/*") || name.ends_with("/**");
        let other = name.starts_with("other:") || name == "unauthenticated" || name == "unknown";
        let _ = writeln!(
            svg,
            "<g><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"8\" fill=\"{}\" stroke=\"#3c4043\"{}/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\" fill=\"#202124\">{}</text><title>{}</title></g>",
            p.x - p.hw,
            p.y - p.hh,
            2.0 * p.hw,
            2.0 * p.hh,
            if other { "#f1f3f4" } else { "#ffffff" },
            if pattern {
                " stroke-dasharray=\"4 3\""
            } else {
                ""
            },
            p.x,
            p.y + 4.0,
            escape(&short(name)),
            escape(name)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A self-contained HTML page: an SVG drawing of the service-level graph
/// (allowed green, new orange, denied red, declared-but-unused dashed grey),
/// the observed edges and the rules with their last match. No external
/// scripts, styles or fonts; request data never appears (labels only).
pub fn to_html(graph: &CallGraph) -> String {
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
        let class = if e.denied > 0 {
            " class=\"denied\""
        } else if e.new {
            " class=\"new\""
        } else {
            ""
        };
        let _ = writeln!(
            rows,
            "<tr{class}><td title=\"{}\">{}</td><td title=\"{}\">{}</td><td>{}</td><td class=\"route\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{flags}</td></tr>",
            escape(&e.source),
            escape(&short(&e.source)),
            escape(&e.destination),
            escape(&short(&e.destination)),
            escape(&e.method),
            escape(&e.route),
            thousands(e.count),
            thousands(e.denied),
            ago(graph.generated_at_ms, e.last_seen_ms / 1000),
        );
    }
    let mut rules = String::new();
    for r in &graph.rules {
        let _ = writeln!(
            rules,
            "<tr{}><td title=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            if r.last_match_seconds == 0 {
                " class=\"unused\""
            } else {
                ""
            },
            escape(&r.destination),
            escape(&short(&r.destination)),
            escape(&r.rule),
            ago(graph.generated_at_ms, r.last_match_seconds)
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
            "<span class=\"key\"><span class=\"swatch\" style=\"background:{}\"></span>{}</span>",
            k.color(),
            k.label()
        )
    })
    .collect::<String>();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>hallpass call graph</title>\n\
         <style>\
         body{{font-family:sans-serif;margin:20px 24px;color:#202124}}\
         h1{{font-size:22px;margin:0 0 6px}} h2{{font-size:16px;margin:22px 0 6px}}\
         p.legend{{font-size:13px;margin:0 0 8px}} .key{{margin-right:18px;white-space:nowrap}}\
         .swatch{{display:inline-block;width:18px;height:4px;vertical-align:middle;margin-right:6px}}\
         .note{{color:#5f6368}} svg{{max-width:100%;height:auto}}\
         table{{border-collapse:collapse;font-size:12px}}\
         td,th{{border:1px solid #dadce0;padding:3px 8px;text-align:left}} th{{background:#f8f9fa}}\
         td.n{{text-align:right}} td.route{{font-family:monospace}}\
         tr.denied td{{background:#fce8e6}} tr.new td{{background:#fef7e0}} tr.unused td{{color:#80868b}}\
         </style>\n</head><body>\n<h1>hallpass call graph</h1>\n\
         <p class=\"legend\">{legend}<span class=\"note\">numbers are requests; dashed boxes are source patterns{learning}</span></p>\n{svg}\n\
         <h2>Observed edges</h2>\n<table><tr><th>source</th><th>destination</th><th>method</th><th>route</th><th>requests</th><th>denied</th><th>last seen</th><th>flags</th></tr>\n{rows}</table>\n\
         <h2>Rules</h2>\n<table><tr><th>destination</th><th>rule</th><th>last match</th></tr>\n{rules}</table>\n</body></html>\n",
        svg = svg(graph),
        learning = if graph.learning {
            "; still learning the baseline, so nothing is new yet"
        } else {
            ""
        },
    )
}
