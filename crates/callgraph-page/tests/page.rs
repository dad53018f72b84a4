//! `/callgraph.dot` and `/callgraph.html`: colours, flags, escaping, and a
//! page that is self-contained (nothing loaded from anywhere).

use hallpass_callgraph_page::{to_dot, to_html};
use hallpass_telemetry::{CallGraph, DeclaredEdge, ObservedEdge, RuleUsage};

const EHR: &str = "spiffe://hospital.example/ns/clinical/sa/ehr-api";
const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";
const BILLING: &str = "spiffe://hospital.example/ns/billing/sa/billing";
const RESULTS: &str = "/patients/{patient}/results";
const RED: &str = "#d93025";
const ORANGE: &str = "#e37400";
const GREEN: &str = "#1e8e3e";
const GREY: &str = "#9aa0a6";
const PHARMACY: &str = "spiffe://hospital.example/ns/pharmacy/sa/pharmacy";

fn observed(
    source: &str,
    destination: &str,
    route: &str,
    allowed: u64,
    denied: u64,
    new: bool,
) -> ObservedEdge {
    ObservedEdge {
        source: source.into(),
        destination: destination.into(),
        route: route.into(),
        method: "GET".into(),
        count: allowed + denied,
        allowed,
        denied,
        first_seen_ms: 1_000,
        last_seen_ms: 2_000,
        new,
        spiking: false,
        in_baseline: !new,
        ewma_rps: 0.5,
        data_class: Default::default(),
    }
}

fn graph() -> CallGraph {
    CallGraph {
        generated_at_ms: 10_000,
        learning: false,
        declared: vec![
            DeclaredEdge {
                source: EHR.into(),
                destination: LAB.into(),
                rule: "ehr-reads-results".into(),
                routes: vec![RESULTS.into()],
                methods: vec!["GET".into()],
                data_class: Default::default(),
            },
            DeclaredEdge {
                source: "spiffe://hospital.example/ns/pharmacy/**".into(),
                destination: LAB.into(),
                rule: "pharmacy-lookup".into(),
                routes: vec!["lab.v1.Results/GetResult".into()],
                methods: vec![],
                data_class: Default::default(),
            },
        ],
        observed: vec![
            observed(EHR, LAB, RESULTS, 40, 0, false),
            observed(BILLING, LAB, "(unmatched)", 0, 3, true),
            observed(PHARMACY, EHR, "/patients/{patient}/medications", 7, 0, true),
            observed(EHR, PHARMACY, "/prescriptions", 5, 0, false),
        ],
        rules: vec![
            RuleUsage {
                destination: LAB.into(),
                rule: "ehr-reads-results".into(),
                last_match_seconds: 9,
            },
            RuleUsage {
                destination: LAB.into(),
                rule: "pharmacy-lookup".into(),
                last_match_seconds: 0,
            },
        ],
        tracking_since_ms: 0,
        sources: Vec::new(),
    }
}

/// The SVG path elements (links) whose tooltip names `from → to`.
fn link<'a>(html: &'a str, from: &str, to: &str) -> &'a str {
    let title = format!("<title>{from} → {to}:");
    let at = html
        .find(&title)
        .unwrap_or_else(|| panic!("no link {from} → {to}"));
    let start = html[..at].rfind("<path ").unwrap();
    &html[start..at]
}

#[test]
fn dot_colours_links_by_what_was_seen() {
    let dot = to_dot(&graph());
    assert!(
        dot.starts_with("digraph hallpass {\n") && dot.ends_with("}\n"),
        "{dot}"
    );
    let line = |from: &str, to: &str| {
        dot.lines()
            .find(|l| l.contains(&format!("\"{from}\" -> \"{to}\"")))
            .unwrap_or_else(|| panic!("no {from} -> {to} in {dot}"))
            .to_owned()
    };
    assert!(line(BILLING, LAB).contains(RED) && line(BILLING, LAB).contains("denied (3)"));
    assert!(line(PHARMACY, EHR).contains(ORANGE) && line(PHARMACY, EHR).contains("new edge (7)"));
    assert!(line(EHR, LAB).contains(GREEN) && line(EHR, LAB).contains("allowed (40)"));
    let unused = line("spiffe://hospital.example/ns/pharmacy/**", LAB);
    assert!(
        unused.contains(GREY) && unused.contains("dashed"),
        "{unused}"
    );
}

#[test]
fn html_is_self_contained() {
    let html = to_html(&graph());
    assert!(html.starts_with("<!doctype html>"));
    assert!(!html.contains("<script"), "no scripts at all");
    assert!(!html.contains(" src=") && !html.contains("<link") && !html.contains("@import"));
    // The only URL is the SVG namespace; url(...) only points inside the page.
    let without_ns = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(
        !without_ns.contains("http://") && !without_ns.contains("https://"),
        "{html}"
    );
    assert!(html.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    for (i, _) in html.match_indices("url(") {
        assert!(
            html[i..].starts_with("url(#"),
            "external url() at {}",
            &html[i..i + 40]
        );
    }
    assert!(!html.contains("//fonts") && !html.contains("data:"));
}

#[test]
fn html_highlights_denied_red_and_new_orange() {
    let html = to_html(&graph());
    let denied = link(&html, "billing (billing)", "lab-results (clinical)");
    assert!(denied.contains(&format!("stroke=\"{RED}\"")), "{denied}");
    assert!(denied.contains("url(#arrow-Denied)"));
    let new = link(&html, "pharmacy (pharmacy)", "ehr-api (clinical)");
    assert!(new.contains(&format!("stroke=\"{ORANGE}\"")), "{new}");
    let allowed = link(&html, "ehr-api (clinical)", "lab-results (clinical)");
    assert!(
        allowed.contains(&format!("stroke=\"{GREEN}\"")),
        "{allowed}"
    );
    let unused = link(
        &html,
        "hospital.example/ns/pharmacy/**",
        "lab-results (clinical)",
    );
    assert!(
        unused.contains(GREY) && unused.contains("stroke-dasharray"),
        "{unused}"
    );
    // Rows of the edge table carry the same flags.
    assert!(html.contains("<tr class=\"denied\">") && html.contains("<tr class=\"new\">"));
    assert!(html.contains("denied, new"));
    // Two-way links are drawn as two distinct arcs.
    let there = link(&html, "ehr-api (clinical)", "pharmacy (pharmacy)");
    let back = link(&html, "pharmacy (pharmacy)", "ehr-api (clinical)");
    assert_ne!(there, back);
    assert!(there.contains(" Q") && back.contains(" Q"));
    // Rule usage, with the never-used rule marked.
    assert!(html.contains("<tr class=\"unused\"><td title=\"spiffe://hospital.example/ns/clinical/sa/lab-results\">lab-results (clinical)</td><td>pharmacy-lookup</td><td>never</td></tr>"), "{html}");
}

#[test]
fn html_escapes_names_and_notes_learning() {
    let mut g = graph();
    g.learning = true;
    g.observed
        .push(observed("other:<b>&\"x\"", LAB, "/a", 1, 0, false));
    let html = to_html(&g);
    assert!(!html.contains("<b>") && html.contains("other:&lt;b&gt;&amp;&quot;x&quot;"));
    assert!(html.contains("still learning the baseline"));
}

#[test]
fn rendering_is_deterministic_and_survives_odd_graphs() {
    assert_eq!(to_html(&graph()), to_html(&graph()));
    let empty = CallGraph {
        generated_at_ms: 0,
        learning: false,
        declared: vec![],
        observed: vec![],
        rules: vec![],
        tracking_since_ms: 0,
        sources: Vec::new(),
    };
    assert!(to_html(&empty).contains("<svg"));
    assert_eq!(
        to_dot(&empty),
        "digraph hallpass {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n}\n"
    );
    // A service calling itself, a cycle, and a wide fan-in.
    let mut g = graph();
    g.observed.push(observed(LAB, LAB, "/self", 1, 0, false));
    g.observed.push(observed(LAB, EHR, "/back", 1, 0, false));
    for i in 0..300 {
        g.observed.push(observed(
            &format!("spiffe://hospital.example/ns/n{i}/sa/s"),
            LAB,
            "/x",
            1,
            0,
            true,
        ));
    }
    let html = to_html(&g);
    assert!(html.contains("s (n299)") && html.contains("/self"));
    assert!(
        !html.contains("NaN") && !html.contains("inf"),
        "no broken coordinates"
    );
}
