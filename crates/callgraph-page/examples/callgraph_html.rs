//! Print `/callgraph.html` for a realistic clinical-mesh call graph, or with
//! `--dot` / `--json` the other two renderings of it.
//!
//! `scripts/screenshot-callgraph.sh` renders this page in headless Chromium
//! to make `docs/img/callgraph.png`.
//!
//! ```sh
//! cargo run -p hallpass-callgraph-page --example callgraph_html > /tmp/callgraph.html
//! ```

use hallpass_callgraph_page::{to_dot, to_html};
use hallpass_telemetry::{CallGraph, DeclaredEdge, ObservedEdge, RuleUsage};

const TD: &str = "spiffe://hospital.example";
const NOW_MS: i64 = 1_788_000_000_000;

fn id(path: &str) -> String {
    format!("{TD}/{path}")
}

fn declared(
    source: &str,
    destination: &str,
    rule: &str,
    routes: &[&str],
    methods: &[&str],
) -> DeclaredEdge {
    DeclaredEdge {
        source: source.to_owned(),
        destination: destination.to_owned(),
        rule: rule.to_owned(),
        routes: routes.iter().map(|r| (*r).to_owned()).collect(),
        methods: methods.iter().map(|m| (*m).to_owned()).collect(),
        data_class: Default::default(),
    }
}

struct Seen<'a> {
    source: &'a str,
    destination: &'a str,
    method: &'a str,
    route: &'a str,
    allowed: u64,
    denied: u64,
    new: bool,
    spiking: bool,
}

fn observed(s: &Seen<'_>) -> ObservedEdge {
    let ewma_rps = (s.allowed + s.denied) as f64 / 3600.0;
    ObservedEdge {
        source: s.source.to_owned(),
        destination: s.destination.to_owned(),
        route: s.route.to_owned(),
        method: s.method.to_owned(),
        count: s.allowed + s.denied,
        allowed: s.allowed,
        denied: s.denied,
        first_seen_ms: NOW_MS - 86_400_000,
        last_seen_ms: NOW_MS - 5_000,
        new: s.new,
        spiking: s.spiking,
        in_baseline: !s.new && s.denied == 0,
        ewma_rps,
        data_class: Default::default(),
    }
}

fn graph() -> CallGraph {
    let ehr = id("ns/clinical/sa/ehr-api");
    let lab = id("ns/clinical/sa/lab-results");
    let billing = id("ns/billing/sa/billing");
    let pharmacy = id("ns/pharmacy/sa/pharmacy");
    let scheduler = id("ns/clinical/sa/scheduler");
    let vendor = "spiffe://imaging-vendor.example/uploader".to_owned();
    let pharmacy_ns = id("ns/pharmacy/**");
    let declared = vec![
        declared(
            &ehr,
            &lab,
            "ehr-reads-results",
            &[
                "/patients/{patient}/results",
                "/patients/{patient}/results/{result}",
            ],
            &["GET"],
        ),
        declared(
            &pharmacy_ns,
            &lab,
            "pharmacy-lookup",
            &["lab.v1.Results/GetResult"],
            &[],
        ),
        declared(
            &vendor,
            &lab,
            "imaging-vendor-upload",
            &["/imaging/uploads"],
            &["POST"],
        ),
        declared(
            &vendor,
            &lab,
            "imaging-vendor-pilot",
            &["/imaging/studies/{study}"],
            &["GET"],
        ),
        declared(
            &ehr,
            &billing,
            "ehr-posts-charges",
            &["/charges"],
            &["POST"],
        ),
        declared(
            &ehr,
            &pharmacy,
            "ehr-sends-prescriptions",
            &["/prescriptions"],
            &["POST"],
        ),
        declared(
            &scheduler,
            &ehr,
            "scheduler-books",
            &["/appointments"],
            &["POST", "PUT"],
        ),
    ];
    let seen = [
        Seen {
            source: &ehr,
            destination: &lab,
            method: "GET",
            route: "/patients/{patient}/results",
            allowed: 18_204,
            denied: 0,
            new: false,
            spiking: false,
        },
        Seen {
            source: &ehr,
            destination: &lab,
            method: "GET",
            route: "/patients/{patient}/results/{result}",
            allowed: 9_731,
            denied: 0,
            new: false,
            spiking: true,
        },
        Seen {
            source: "other:hospital.example",
            destination: &lab,
            method: "POST",
            route: "lab.v1.Results/GetResult",
            allowed: 2_113,
            denied: 0,
            new: false,
            spiking: false,
        },
        Seen {
            source: &vendor,
            destination: &lab,
            method: "POST",
            route: "/imaging/uploads",
            allowed: 412,
            denied: 0,
            new: false,
            spiking: false,
        },
        Seen {
            source: &billing,
            destination: &lab,
            method: "GET",
            route: "(unmatched)",
            allowed: 0,
            denied: 37,
            new: true,
            spiking: false,
        },
        Seen {
            source: &ehr,
            destination: &billing,
            method: "POST",
            route: "/charges",
            allowed: 5_530,
            denied: 0,
            new: false,
            spiking: false,
        },
        Seen {
            source: &ehr,
            destination: &pharmacy,
            method: "POST",
            route: "/prescriptions",
            allowed: 1_208,
            denied: 0,
            new: false,
            spiking: false,
        },
        Seen {
            source: &scheduler,
            destination: &ehr,
            method: "POST",
            route: "/appointments",
            allowed: 2_950,
            denied: 0,
            new: false,
            spiking: false,
        },
        Seen {
            source: &scheduler,
            destination: &billing,
            method: "GET",
            route: "(unmatched)",
            allowed: 0,
            denied: 4,
            new: false,
            spiking: false,
        },
        Seen {
            source: &pharmacy,
            destination: &ehr,
            method: "GET",
            route: "/patients/{patient}/medications",
            allowed: 61,
            denied: 0,
            new: true,
            spiking: false,
        },
    ];
    let rules = declared
        .iter()
        .map(|d| RuleUsage {
            destination: d.destination.clone(),
            rule: d.rule.clone(),
            last_match_seconds: match d.rule.as_str() {
                "imaging-vendor-pilot" => 0,
                "imaging-vendor-upload" => NOW_MS / 1000 - 40 * 86_400,
                _ => NOW_MS / 1000 - 5,
            },
        })
        .collect();
    CallGraph {
        generated_at_ms: NOW_MS,
        learning: false,
        declared,
        observed: seen.iter().map(observed).collect(),
        rules,
        tracking_since_ms: 0,
        sources: Vec::new(),
    }
}

fn main() {
    let graph = graph();
    match std::env::args().nth(1).as_deref() {
        Some("--dot") => print!("{}", to_dot(&graph)),
        Some("--json") => match serde_json::to_string_pretty(&graph) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        },
        _ => print!("{}", to_html(&graph)),
    }
}
