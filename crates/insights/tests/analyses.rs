//! The analyses behind `hallpass report`, `hallpass baseline` and `hallpass
//! policy suggest`, on hand-made call graphs and audit logs, and against a
//! running sidecar.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Arc;

use hallpass_insights::report::{RuleFinding, analyze};
use hallpass_insights::suggest::{self, Observations};
use hallpass_insights::templates::{self, Seg, grpc_method, is_id_like};
use hallpass_insights::{HttpOptions, InsightsError, Source, baseline, load_all, merge};
use hallpass_policy::check::check;
use hallpass_policy::{CompiledPolicy, Decision, Mode, Request, SourcePattern};
use hallpass_telemetry::{
    Anomalies, Baseline, CallGraph, CredentialKind, Credentials, DataClass, DecisionEvent,
    DecisionLabel, DeclaredEdge, DenyReason, Method, ObservedEdge, RuleUsage, audit_line,
};

const EHR: &str = "spiffe://hospital.example/ns/clinical/sa/ehr-api";
const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";
const BILLING: &str = "spiffe://hospital.example/ns/billing/sa/billing";
const PHARMACY: &str = "spiffe://hospital.example/ns/pharmacy/sa/pharmacy";
const VENDOR: &str = "spiffe://imaging-vendor.example/uploader";
const NOW_S: i64 = 1_800_000_000;

// ------------------------------------------------------------ templates

#[test]
fn identifier_like_segments() {
    for id in [
        "12345",
        "0",
        "MRN-00417",
        "MRN-0000000",
        "mrn_417",
        "p-1001",
        "r-7",
        "P1001",
        "A1B2C3D4",
        "123e4567-e89b-12d3-a456-426614174000",
        "507f1f77bcf86cd799439011",
        "2026-01-01",
        "jane.doe@example.org",
    ] {
        assert!(is_id_like(id), "{id} should be an id");
    }
    for literal in [
        "patients",
        "results",
        "api",
        "v1",
        "v2beta1",
        "V10",
        "x509",
        "oauth2",
        "1.0",
        "version2",
        "lab.v1.Results",
        "GetResult",
        "e-mail",
    ] {
        assert!(!is_id_like(literal), "{literal} should stay literal");
    }
}

fn paths(list: &[&str]) -> Vec<Vec<String>> {
    list.iter()
        .map(|p| {
            p.trim_start_matches('/')
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

fn inferred(list: &[&str], max: usize) -> Vec<String> {
    templates::infer(&paths(list), max)
        .iter()
        .map(|t| templates::render(t))
        .collect()
}

#[test]
fn templates_replace_ids_and_number_parameters() {
    assert_eq!(
        inferred(
            &[
                "/patients/MRN-00417/results",
                "/patients/MRN-00418/results",
                "/patients/12/results/981",
                "/patients/p-1001/results/123e4567-e89b-12d3-a456-426614174000",
                "/",
                "/healthz",
            ],
            5
        ),
        [
            "/",
            "/healthz",
            "/patients/{id}/results",
            "/patients/{id}/results/{id2}"
        ]
    );
    // Even one call: an identifier never becomes a literal.
    assert_eq!(
        inferred(&["/patients/MRN-0000000/results"], 5),
        ["/patients/{id}/results"]
    );
}

#[test]
fn a_segment_with_many_values_becomes_a_parameter() {
    let few = ["/reports/daily", "/reports/weekly", "/reports/monthly"];
    assert_eq!(
        inferred(&few, 5),
        ["/reports/daily", "/reports/monthly", "/reports/weekly"]
    );
    let names: Vec<String> = (0..8)
        .map(|i| {
            format!(
                "/wards/ward{}x/beds",
                ["a", "b", "c", "d", "e", "f", "g", "h"][i]
            )
        })
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(inferred(&names, 5), ["/wards/{id}/beds"]);
    // Only the varying position collapses; other shapes are untouched.
    let mut mixed = names.clone();
    mixed.push("/wards/all");
    assert_eq!(inferred(&mixed, 5), ["/wards/all", "/wards/{id}/beds"]);
    assert_eq!(
        templates::render(&[Seg::Param, Seg::Param, Seg::Literal("x".into())]),
        "/{id}/{id2}/x"
    );
}

#[test]
fn grpc_paths_are_recognised() {
    let segs = |p: &str| {
        p.trim_start_matches('/')
            .split('/')
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        grpc_method("POST", &segs("/lab.v1.Results/GetResult")).as_deref(),
        Some("lab.v1.Results/GetResult")
    );
    assert_eq!(grpc_method("GET", &segs("/lab.v1.Results/GetResult")), None);
    assert_eq!(grpc_method("POST", &segs("/v1.2/items")), None);
    assert_eq!(grpc_method("POST", &segs("/charges")), None);
    assert_eq!(grpc_method("POST", &segs("/a.b/C/d")), None);
}

// ------------------------------------------------------------ suggest

fn event(
    source: &str,
    method: &'static str,
    raw: Option<&str>,
    route: Option<&str>,
) -> DecisionEvent {
    DecisionEvent {
        time_ms: NOW_S * 1000,
        decision: DecisionLabel::Allow,
        reason: None,
        mode: Mode::Enforce,
        source_label: Arc::from(source),
        source_id: Some(Arc::from(source)),
        destination: Arc::from(LAB),
        method: Method::parse(method),
        route: route.map(Arc::from),
        rule: route.map(|_| Arc::from("some-rule")),
        credentials: Credentials::NONE.with(CredentialKind::X509),
        anomalies: Anomalies::default(),
        request_id: None,
        trace_id: None,
        raw_path: raw.map(str::to_owned),
        path_issue: None,
        data_class: DataClass::None,
        break_glass: None,
    }
}

fn log(events: &[DecisionEvent]) -> String {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| audit_line(e, &format!("d-{i}")))
        .collect()
}

fn suggest_from_log(text: &str) -> (String, Observations) {
    let mut obs = Observations::default();
    suggest::read_audit_log(text.as_bytes(), &mut obs).unwrap();
    let yaml = suggest::policy_yaml(&obs, Mode::Enforce, 5, "a test");
    (yaml, obs)
}

fn decide(policy: &CompiledPolicy, source: &str, method: &str, path: &str) -> Decision {
    let Ok(SourcePattern::Exact(source)) = SourcePattern::parse(source) else {
        panic!()
    };
    let Ok(SourcePattern::Exact(dest)) = SourcePattern::parse(LAB) else {
        panic!()
    };
    let headers = HashMap::new();
    let req = Request {
        source: &source,
        method: Method::parse(method),
        path,
        headers: &headers,
        has_jwt: false,
        serial: None,
        now_ms: NOW_S * 1000,
    };
    policy.evaluate(&dest, &req).0
}

#[test]
fn suggest_from_raw_paths_infers_templates_and_compiles() {
    let mut events = Vec::new();
    for mrn in ["MRN-00417", "MRN-00418", "MRN-0000000"] {
        events.push(event(
            EHR,
            "GET",
            Some(&format!("/patients/{mrn}/results?since=2026-01-01")),
            None,
        ));
        events.push(event(
            EHR,
            "GET",
            Some(&format!("/patients/{mrn}/results/981")),
            None,
        ));
    }
    events.push(event(EHR, "POST", Some("/patients/MRN-00417/notes"), None));
    events.push(event(
        PHARMACY,
        "POST",
        Some("/lab.v1.Results/GetResult"),
        None,
    ));
    events.push(event(VENDOR, "POST", Some("/imaging/uploads"), None));
    // An audit-mode destination: would-be denies that went through count.
    let mut would = event(BILLING, "GET", Some("/invoices/2026-000123"), None);
    would.decision = DecisionLabel::AuditDeny;
    would.reason = Some(DenyReason::NoMatchingRule);
    events.push(would);
    // Denied calls, and calls denied for credential reasons, never count.
    let mut denied = event(BILLING, "DELETE", Some("/patients/MRN-00417/results"), None);
    denied.decision = DecisionLabel::Deny;
    denied.reason = Some(DenyReason::NoMatchingRule);
    events.push(denied);
    let mut revoked = event(
        "spiffe://hospital.example/ns/legacy/sa/fax-gateway",
        "GET",
        Some("/patients/1/results"),
        None,
    );
    revoked.decision = DecisionLabel::AuditDeny;
    revoked.reason = Some(DenyReason::Revoked);
    events.push(revoked);
    // A caller the policy did not name and that proved nothing.
    events.push(event(
        "unauthenticated",
        "GET",
        Some("/patients/1/results"),
        None,
    ));

    let (yaml, obs) = suggest_from_log(&log(&events));
    assert!(
        !yaml.contains("MRN-"),
        "identifiers never reach the policy:\n{yaml}"
    );
    let policy = CompiledPolicy::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let report = check(&yaml, NOW_S);
    assert_eq!(report.errors(), 0, "{}", report.to_text("suggested.yaml"));
    assert_eq!(report.warnings(), 0, "{}", report.to_text("suggested.yaml"));
    assert!(
        yaml.contains("\"/patients/{id}/results\", \"/patients/{id}/results/{id2}\""),
        "{yaml}"
    );
    assert!(
        yaml.contains("grpc: [\"lab.v1.Results/GetResult\"]"),
        "{yaml}"
    );
    assert!(
        yaml.contains("trust_domains: [\"hospital.example\", \"imaging-vendor.example\"]"),
        "{yaml}"
    );
    // Never a wildcard source.
    for line in yaml.lines().filter(|l| l.trim_start().starts_with("from:")) {
        assert!(!line.contains('*'), "{line}");
    }
    // What was seen is allowed; anything else is not.
    let allowed = |s, m, p| decide(&policy, s, m, p).is_allow();
    assert!(allowed(EHR, "GET", "/patients/MRN-99999/results"));
    assert!(allowed(EHR, "GET", "/patients/7/results/8"));
    assert!(allowed(EHR, "POST", "/patients/MRN-1/notes"));
    assert!(allowed(PHARMACY, "POST", "/lab.v1.Results/GetResult"));
    assert!(allowed(VENDOR, "POST", "/imaging/uploads"));
    assert!(allowed(BILLING, "GET", "/invoices/2026-000999"));
    assert!(!allowed(EHR, "DELETE", "/patients/7/results"));
    assert!(!allowed(EHR, "GET", "/patients/7/notes"));
    assert!(!allowed(BILLING, "DELETE", "/patients/MRN-00417/results"));
    assert!(!allowed(PHARMACY, "POST", "/lab.v1.Results/ListResults"));
    assert!(!allowed(
        "spiffe://hospital.example/ns/legacy/sa/fax-gateway",
        "GET",
        "/patients/1/results"
    ));
    assert_eq!(obs.calls_len(), 4);
}

#[test]
fn suggest_without_raw_paths_uses_route_templates() {
    let events = vec![
        event(EHR, "GET", None, Some("/patients/{patient}/results")),
        event(
            EHR,
            "GET",
            None,
            Some("/patients/{patient}/results/{result}"),
        ),
        event(PHARMACY, "POST", None, Some("lab.v1.Results/GetResult")),
        event(VENDOR, "GET", None, Some("*")),
        {
            // An audit_deny without a raw path says nothing about the path.
            let mut e = event(BILLING, "GET", None, None);
            e.decision = DecisionLabel::AuditDeny;
            e.reason = Some(DenyReason::NoMatchingRule);
            e
        },
    ];
    let (yaml, obs) = suggest_from_log(&log(&events));
    CompiledPolicy::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert!(
        yaml.contains(
            "paths: [\"/patients/{patient}/results\", \"/patients/{patient}/results/{result}\"]"
        ),
        "{yaml}"
    );
    assert!(yaml.contains("narrow it by hand"), "{yaml}");
    assert!(!yaml.contains(BILLING));
    assert_eq!(obs.skipped_total(), 1);
}

/// Issue 14: a skipped ambiguous path says which cause, as the audit
/// record's `path_issue` does, not only "ambiguous".
#[test]
fn suggest_says_why_an_ambiguous_path_was_skipped() {
    let events = [
        event(
            EHR,
            "GET",
            Some("/patients/p-1/results"),
            Some("/patients/{patient}/results"),
        ),
        event(EHR, "GET", Some("/patients/p-1/results/"), None),
        event(EHR, "GET", Some("/patients/%2F/results"), None),
    ];
    let (_, obs) = suggest_from_log(&log(&events));
    let skipped: Vec<(String, u64)> = obs.skipped().map(|(w, n)| (w.to_owned(), n)).collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(
        skipped.iter().any(|(w, n)| *n == 1
            && w.contains("path_issue trailing_slash")
            && w.contains("ends with `/`")),
        "{skipped:?}"
    );
    assert!(
        skipped
            .iter()
            .any(|(w, _)| w.contains("path_issue encoded_separator")),
        "{skipped:?}"
    );
    // Fixed words only: the path itself is never repeated.
    assert!(
        skipped.iter().all(|(w, _)| !w.contains("p-1")),
        "{skipped:?}"
    );
}

fn observed(source: &str, route: &str, method: &str, allowed: u64, denied: u64) -> ObservedEdge {
    ObservedEdge {
        source: source.into(),
        destination: LAB.into(),
        route: route.into(),
        method: method.into(),
        count: allowed + denied,
        allowed,
        denied,
        first_seen_ms: 0,
        last_seen_ms: NOW_S * 1000,
        new: false,
        spiking: false,
        in_baseline: denied == 0,
        ewma_rps: 0.0,
        data_class: Default::default(),
    }
}

fn declared(source: &str, rule: &str, routes: &[&str], methods: &[&str]) -> DeclaredEdge {
    DeclaredEdge {
        source: source.into(),
        destination: LAB.into(),
        rule: rule.into(),
        routes: routes.iter().map(|s| (*s).to_owned()).collect(),
        methods: methods.iter().map(|s| (*s).to_owned()).collect(),
        data_class: Default::default(),
    }
}

fn usage(rule: &str, last: i64) -> RuleUsage {
    RuleUsage {
        destination: LAB.into(),
        rule: rule.into(),
        last_match_seconds: last,
    }
}

/// A lab-results sidecar's call graph with one of everything.
fn graph() -> CallGraph {
    CallGraph {
        generated_at_ms: NOW_S * 1000,
        learning: false,
        declared: vec![
            declared(
                EHR,
                "ehr-reads-results",
                &[
                    "/patients/{patient}/results",
                    "/patients/{patient}/results/{result}",
                ],
                &["GET"],
            ),
            declared(
                "spiffe://hospital.example/ns/pharmacy/**",
                "pharmacy-lookup",
                &["lab.v1.Results/GetResult"],
                &[],
            ),
            declared(
                VENDOR,
                "imaging-vendor-upload",
                &["/imaging/uploads"],
                &["POST"],
            ),
            declared(
                VENDOR,
                "imaging-vendor-pilot",
                &["/imaging/studies/{study}"],
                &["GET"],
            ),
            declared(BILLING, "billing-all", &["/billing/**"], &[]),
            declared(EHR, "ehr-admin", &[], &["GET", "POST", "PUT", "DELETE"]),
        ],
        observed: vec![
            observed(EHR, "/patients/{patient}/results", "GET", 40, 0),
            observed(PHARMACY, "lab.v1.Results/GetResult", "POST", 5, 0),
            observed(BILLING, "/billing/**", "GET", 9, 0),
            observed(EHR, "*", "GET", 2, 0),
            observed("other:hospital.example", "(unmatched)", "GET", 0, 3),
        ],
        rules: vec![
            usage("billing-all", NOW_S - 60),
            usage("ehr-admin", NOW_S - 60),
            usage("ehr-reads-results", NOW_S - 5),
            usage("imaging-vendor-pilot", 0),
            usage("imaging-vendor-upload", NOW_S - 40 * 86_400),
            usage("pharmacy-lookup", NOW_S - 5),
        ],
        tracking_since_ms: 0,
        sources: Vec::new(),
    }
}

#[test]
fn suggest_from_a_callgraph_uses_allowed_edges() {
    let mut obs = Observations::default();
    suggest::read_callgraph(&graph(), &mut obs);
    let yaml = suggest::policy_yaml(&obs, Mode::Audit, 5, "a call graph");
    let policy = CompiledPolicy::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert!(yaml.contains("mode: audit"));
    assert!(
        !yaml.contains("other:"),
        "labels are not identities:\n{yaml}"
    );
    assert!(decide(&policy, EHR, "GET", "/patients/1/results").is_allow());
    // The EHR also used a rule that allows any path (route `*`) with GET.
    assert!(yaml.contains("narrow it by hand"), "{yaml}");
    assert!(
        !decide(&policy, EHR, "DELETE", "/patients/1/results").is_allow(),
        "never seen"
    );
    assert!(
        !decide(&policy, BILLING, "POST", "/billing/x").is_allow(),
        "never seen"
    );
    assert!(
        decide(&policy, BILLING, "GET", "/billing/x/y").is_allow(),
        "a `/**` template is kept as seen"
    );
    assert!(decide(&policy, PHARMACY, "POST", "/lab.v1.Results/GetResult").is_allow());
    assert_eq!(check(&yaml, NOW_S).errors(), 0);
}

/// What was read is counted in its own unit: a call graph's skipped items
/// are call paths, not records, and one request is "1 request" (issue 14,
/// item 12).
#[test]
fn suggest_counts_call_paths_and_requests_in_their_own_units() {
    let mut obs = Observations::default();
    suggest::read_callgraph(&graph(), &mut obs);
    let yaml = suggest::policy_yaml(&obs, Mode::Audit, 5, "a call graph");
    assert!(
        yaml.contains("# Read 5 call paths (56 requests), 1 skipped.\n"),
        "{yaml}"
    );
    assert_eq!(obs.counted(1), "1 call path");
    assert!(yaml.contains("        # 42 requests\n"), "{yaml}");

    let events = [event(EHR, "GET", Some("/patients/p-1/results"), None), {
        let mut e = event(BILLING, "GET", None, None);
        e.decision = DecisionLabel::Deny;
        e
    }];
    let (yaml, obs) = suggest_from_log(&log(&events));
    assert!(
        yaml.contains("# Read 2 audit records, 1 skipped.\n"),
        "{yaml}"
    );
    assert!(
        yaml.contains("        # 1 request, 1 distinct path\n"),
        "{yaml}"
    );
    assert_eq!(obs.counted(1), "1 audit record");
}

#[test]
fn suggest_writes_a_file_and_reports_nothing_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let log_file = dir.path().join("audit.jsonl");
    std::fs::write(
        &log_file,
        log(&[event(EHR, "GET", Some("/patients/12/results"), None)]),
    )
    .unwrap();
    let out = dir.path().join("out/../suggested.yaml");
    std::fs::create_dir(dir.path().join("out")).unwrap();
    let suggest_from = |files: &[std::path::PathBuf]| {
        let obs = Observations::from_audit_logs(files)?;
        suggest::suggest(&obs, Mode::Audit, 5, "a test")
    };
    let suggestion = suggest_from(std::slice::from_ref(&log_file))
        .unwrap()
        .unwrap();
    assert_eq!((suggestion.rules, suggestion.destinations), (1, 1));
    suggest::write(&suggestion, &out).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text, suggestion.text);
    CompiledPolicy::from_yaml(&text).unwrap();
    // Only denies: nothing to suggest.
    let mut d = event(EHR, "GET", Some("/x"), None);
    d.decision = DecisionLabel::Deny;
    d.reason = Some(DenyReason::NoMatchingRule);
    std::fs::write(&log_file, log(&[d])).unwrap();
    assert_eq!(suggest_from(std::slice::from_ref(&log_file)).unwrap(), None);
    let missing = suggest_from(&[dir.path().join("nope.jsonl")]).unwrap_err();
    assert!(matches!(missing, InsightsError::Read { .. }), "{missing:?}");
}

// ------------------------------------------------------------ report

#[test]
fn report_finds_unused_unseen_and_broad_rules() {
    let report = analyze(&graph(), vec!["test".into()], 30);
    let rules = |v: &[RuleFinding]| v.iter().map(|f| f.rule.clone()).collect::<Vec<_>>();
    assert_eq!(rules(&report.never_used), ["imaging-vendor-pilot"]);
    assert_eq!(rules(&report.stale), ["imaging-vendor-upload"]);
    assert_eq!(report.stale[0].days_ago, Some(40));
    let unseen: Vec<(&str, Vec<String>)> = report
        .unseen_identities
        .iter()
        .map(|f| (f.source.as_str(), f.rules.clone()))
        .collect();
    assert_eq!(
        unseen,
        [(
            VENDOR,
            vec![
                "imaging-vendor-upload".to_owned(),
                "imaging-vendor-pilot".to_owned()
            ]
        )]
    );
    let narrow: HashMap<&str, &Vec<String>> = report
        .narrower
        .iter()
        .map(|n| (n.rule.as_str(), &n.suggestions))
        .collect();
    let has = |rule: &str, text: &str| {
        narrow
            .get(rule)
            .is_some_and(|s| s.iter().any(|l| l.contains(text)))
    };
    assert!(
        has(
            "ehr-reads-results",
            "routes never used: /patients/{patient}/results/{result}"
        ),
        "{narrow:#?}"
    );
    assert!(
        has(
            "billing-all",
            "methods: allows any method, used only GET -> methods: [GET]"
        ),
        "{narrow:#?}"
    );
    assert!(
        has("billing-all", "paths: allows /billing/**"),
        "{narrow:#?}"
    );
    assert!(
        has(
            "ehr-admin",
            "methods: POST, PUT, DELETE never used -> methods: [GET]"
        ),
        "{narrow:#?}"
    );
    assert!(has("ehr-admin", "paths: allows any path"), "{narrow:#?}");
    assert!(
        has(
            "pharmacy-lookup",
            &format!("used only by {PHARMACY} -> from: [{PHARMACY}]")
        ),
        "{narrow:#?}"
    );
    let text = report.to_text();
    assert!(
        text.contains("Rules never used since the sidecar started (1)"),
        "{text}"
    );
    assert!(text.contains("imaging-vendor-upload  last match"), "{text}");
    assert!(text.contains("Rules to narrow (4)"), "{text}");
    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    assert_eq!(json["never_used"][0]["rule"], "imaging-vendor-pilot");
}

/// Crediting uses the policy's matchers, not string equality: a template
/// covered by a declared `/**`, a gRPC method covered by `Service/*`, an
/// `other:<td>` caller under a pattern of that trust domain (and never
/// under an exact ID), first match in policy order.
#[test]
fn report_credits_edges_through_the_policys_matchers() {
    let clinical = "spiffe://hospital.example/ns/clinical/**";
    let graph = CallGraph {
        generated_at_ms: NOW_S * 1000,
        learning: false,
        declared: vec![
            declared(
                EHR,
                "ehr-exact-results",
                &["/patients/{patient}/results/{result}"],
                &["GET"],
            ),
            declared(
                clinical,
                "clinical-patients",
                &["/patients/**"],
                &["GET", "POST"],
            ),
            declared(PHARMACY, "pharmacy-any-results", &["lab.v1.Results/*"], &[]),
            declared(BILLING, "billing-exact", &["/invoices/{invoice}"], &["GET"]),
        ],
        observed: vec![
            observed(EHR, "/patients/{patient}/results", "GET", 10, 0),
            observed("other:hospital.example", "/patients/{patient}", "GET", 1, 0),
            observed(PHARMACY, "lab.v1.Results/GetResult", "POST", 3, 0),
            // Same trust domain, but an exact ID never lets `other:` in.
            observed("other:hospital.example", "/invoices/{invoice}", "GET", 4, 0),
        ],
        rules: Vec::new(),
        tracking_since_ms: 0,
        sources: Vec::new(),
    };
    let report = analyze(&graph, vec!["test".into()], 30);
    let by_rule: HashMap<&str, &hallpass_insights::report::Narrowing> = report
        .narrower
        .iter()
        .map(|n| (n.rule.as_str(), n))
        .collect();
    let patients = by_rule
        .get("clinical-patients")
        .unwrap_or_else(|| panic!("{report:#?}"));
    assert_eq!(patients.requests, 11, "{patients:#?}");
    assert_eq!(
        patients.observed_sources,
        ["other:hospital.example".to_owned(), EHR.to_owned()]
    );
    assert!(
        patients
            .suggestions
            .iter()
            .any(|s| s.starts_with("methods: POST never used")),
        "{patients:#?}"
    );
    assert!(
        patients
            .suggestions
            .iter()
            .any(|s| s.starts_with("paths: allows /patients/**")),
        "{patients:#?}"
    );
    let grpc = by_rule
        .get("pharmacy-any-results")
        .unwrap_or_else(|| panic!("{report:#?}"));
    assert_eq!(grpc.requests, 3);
    assert!(
        grpc.suggestions
            .iter()
            .any(|s| s.starts_with("paths: allows lab.v1.Results/*")),
        "{grpc:#?}"
    );
    // The exact rule did not match the other route, nor the unnamed caller.
    assert!(!by_rule.contains_key("ehr-exact-results"), "{report:#?}");
    assert!(!by_rule.contains_key("billing-exact"), "{report:#?}");
}

#[test]
fn merging_sources_sums_edges_and_keeps_latest_matches() {
    let a = graph();
    let mut b = graph();
    b.generated_at_ms += 1000;
    b.rules[3].last_match_seconds = NOW_S;
    let merged = merge(vec![a, b]);
    assert_eq!(merged.declared.len(), 6);
    assert_eq!(merged.observed.len(), 5);
    assert_eq!(
        merged
            .observed
            .iter()
            .find(|e| e.source == EHR && e.route != "*")
            .unwrap()
            .count,
        80
    );
    let pilot = merged
        .rules
        .iter()
        .find(|r| r.rule == "imaging-vendor-pilot")
        .unwrap();
    assert_eq!(pilot.last_match_seconds, NOW_S);
    assert_eq!(merged.generated_at_ms, NOW_S * 1000 + 1000);
}

/// Serve `body` once at `GET /callgraph`, like the admin endpoint.
fn serve_once(body: String, chunked: bool) -> url::Url {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut request = [0_u8; 1024];
        let n = conn.read(&mut request).unwrap();
        let request = String::from_utf8_lossy(&request[..n]).into_owned();
        let response = if !request.starts_with("GET /callgraph HTTP/1.1\r\n") {
            "HTTP/1.1 404 Not Found\r\ncontent-length: 10\r\n\r\nnot found\n".to_owned()
        } else if chunked {
            let (a, b) = body.split_at(body.len() / 2);
            format!(
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                a.len(),
                b.len()
            )
        } else {
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        conn.write_all(response.as_bytes()).unwrap();
    });
    url::Url::parse(&format!("http://{addr}")).unwrap()
}

#[test]
fn the_admin_source_reads_callgraph_over_http() {
    for chunked in [false, true] {
        let url = serve_once(serde_json::to_string(&graph()).unwrap(), chunked);
        let got = load_all(&[Source::Admin(url)], &HttpOptions::default()).unwrap();
        assert_eq!(got, merge(vec![graph()]));
    }
    let url = serve_once("{}".into(), false);
    let err = load_all(&[Source::Admin(url)], &HttpOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("not a hallpass call graph"),
        "{err}"
    );
    let url = serve_once(String::new(), false);
    let err = load_all(
        &[Source::Admin(url.join("/prefix").unwrap())],
        &HttpOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("HTTP 404"), "{err}");
}

// ------------------------------------------------------------ baseline

#[test]
fn export_keeps_allowed_and_baselined_edges_only() {
    let b = baseline::from_callgraph(&graph());
    assert_eq!(b.edges.len(), 4);
    assert!(b.edges.iter().all(|e| &*e.route != "(unmatched)"));
    assert_eq!(b.learning_until_ms, None);
    let text = baseline::show(&b, "x.json");
    assert!(text.starts_with("x.json: version 1, 4 edges\n"), "{text}");
    assert!(text.contains(&format!("\n{LAB}\n")), "{text}");
}

#[test]
fn merge_and_show_files() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, out) = (
        dir.path().join("a.json"),
        dir.path().join("b.json"),
        dir.path().join("m/merged.json"),
    );
    baseline::from_callgraph(&graph()).save(&a).unwrap();
    let mut other = Baseline::new();
    other.edges.insert(hallpass_telemetry::EdgeKey {
        source: EHR.into(),
        destination: BILLING.into(),
        route: "/charges".into(),
        method: "POST".into(),
    });
    other.learning_until_ms = Some(1);
    other.save(&b).unwrap();
    let (merged, counts) = baseline::merge_files(&[a.clone(), b.clone()]).unwrap();
    assert_eq!(counts, [4, 1]);
    merged.save(&out).unwrap();
    let merged = Baseline::load(&out).unwrap();
    assert_eq!(merged.edges.len(), 5);
    assert_eq!(merged.learning_until_ms, None);
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"version\": 9, \"edges\": []}").unwrap();
    let err = baseline::merge_files(&[a, bad]).unwrap_err();
    assert!(err.to_string().contains("unsupported version 9"), "{err}");
}

/// The real sidecar: its admin `/callgraph` feeds `report` and `baseline
/// export` over a real socket.
#[test]
fn report_and_export_against_a_running_sidecar() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = hallpass_testkit::Ca::root("hospital.example").unwrap();
    let vendor = hallpass_testkit::Ca::root("imaging-vendor.example").unwrap();
    std::fs::write(dir.path().join("hospital.pem"), ca.cert_pem()).unwrap();
    std::fs::write(dir.path().join("vendor.pem"), vendor.cert_pem()).unwrap();
    std::fs::write(
        dir.path().join("policy.yaml"),
        include_str!("../../../examples/policies/clinical-mesh.yaml"),
    )
    .unwrap();
    let config = format!(
        "authz:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nworkload:\n  id: {LAB}\n\
         trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: {d}/hospital.pem\n\
         \x20   - trust_domain: imaging-vendor.example\n      x509: {d}/vendor.pem\n\
         policy:\n  file: {d}/policy.yaml\ntelemetry:\n  audit_log: \"off\"\n  learning_window_seconds: 0\n",
        d = dir.path().display(),
    );
    let settings = hallpass_server::Settings::from_yaml(&config, std::iter::empty()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (admin, shared) = runtime.block_on(async {
        let sidecar = hallpass_server::Sidecar::bind(settings).await.unwrap();
        let admin = sidecar.admin_addr().unwrap();
        let shared = sidecar.shared();
        tokio::spawn(sidecar.run(async move {
            let _ = stopped.await;
        }));
        (admin, shared)
    });
    let url = url::Url::parse(&format!("http://{admin}")).unwrap();
    let admin_source = Source::Admin(url.clone());
    let options = HttpOptions::default();
    // Wait for the policy to be loaded (rules declared to telemetry).
    let mut graph = None;
    for _ in 0..100 {
        let g = load_all(std::slice::from_ref(&admin_source), &options).unwrap();
        if !g.rules.is_empty() {
            graph = Some(g);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(graph.is_some(), "the sidecar never declared its rules");
    // Two decisions as the decision path would record them.
    let mut reads = event(EHR, "GET", None, Some("/patients/{patient}/results"));
    reads.rule = Some(Arc::from("ehr-reads-results"));
    reads.time_ms = hallpass_policy::check::unix_now() * 1000;
    shared.telemetry.record(reads.clone());
    let mut denied = event(BILLING, "GET", None, None);
    denied.decision = DecisionLabel::Deny;
    denied.reason = Some(DenyReason::NoMatchingRule);
    shared.telemetry.record(denied);

    let graph = load_all(std::slice::from_ref(&admin_source), &options).unwrap();
    let report = analyze(&graph, vec![url.to_string()], 30);
    let never: Vec<&str> = report.never_used.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(
        never,
        [
            "imaging-vendor-pilot",
            "imaging-vendor-upload",
            "pharmacy-lookup"
        ]
    );
    assert_eq!(report.unseen_identities.len(), 1, "{report:#?}");
    assert_eq!(report.unseen_identities[0].source, VENDOR);
    let exported = baseline::from_callgraph(&graph);
    let edges: Vec<(&str, &str)> = exported
        .edges
        .iter()
        .map(|e| (&*e.source, &*e.route))
        .collect();
    assert_eq!(
        edges,
        [(EHR, "/patients/{patient}/results")],
        "the denied edge is not exported"
    );
    let file = dir.path().join("exported.json");
    baseline::export(&admin_source, &options)
        .unwrap()
        .save(&file)
        .unwrap();
    assert_eq!(Baseline::load(&file).unwrap(), exported);
    let _ = stop.send(());
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
}

/// Symlinks planted where the old writers put their temporary file
/// (`.NAME.tmp-PID`, this process's PID: the command runs in it) and at the
/// target: the victims keep their contents, the target becomes a file.
fn plant(
    dir: &std::path::Path,
    target: &str,
    victims: &std::path::Path,
) -> Vec<std::path::PathBuf> {
    let tmp_victim = victims.join(format!("{target}.tmp-victim"));
    let target_victim = victims.join(format!("{target}.victim"));
    std::fs::write(&tmp_victim, "precious").unwrap();
    std::fs::write(&target_victim, "precious").unwrap();
    std::os::unix::fs::symlink(
        &tmp_victim,
        dir.join(format!(".{target}.tmp-{}", std::process::id())),
    )
    .unwrap();
    std::os::unix::fs::symlink(&target_victim, dir.join(target)).unwrap();
    vec![tmp_victim, target_victim]
}

fn assert_untouched(victims: &[std::path::PathBuf], written: &std::path::Path) {
    for v in victims {
        assert_eq!(
            std::fs::read_to_string(v).unwrap(),
            "precious",
            "{} was written through a symlink",
            v.display()
        );
    }
    let meta = std::fs::symlink_metadata(written).unwrap();
    assert!(meta.file_type().is_file(), "{}", written.display());
}

#[test]
fn baseline_merge_and_export_never_write_through_a_planted_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let victims = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    baseline::from_callgraph(&graph()).save(&a).unwrap();
    Baseline::new().save(&b).unwrap();
    let planted = plant(dir.path(), "merged.json", victims.path());
    let out = dir.path().join("merged.json");
    let (merged, _) = baseline::merge_files(&[a, b]).unwrap();
    merged.save(&out).unwrap();
    assert_untouched(&planted, &out);
    assert_eq!(Baseline::load(&out).unwrap().edges.len(), 4);
}

#[test]
fn policy_suggest_never_writes_through_a_planted_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let victims = tempfile::tempdir().unwrap();
    let graph_file = dir.path().join("graph.json");
    std::fs::write(&graph_file, serde_json::to_string(&graph()).unwrap()).unwrap();
    let planted = plant(dir.path(), "policy.yaml", victims.path());
    let out = dir.path().join("policy.yaml");
    let obs = Observations::from_callgraph_file(&graph_file).unwrap();
    let suggestion = suggest::suggest(&obs, Mode::Audit, 5, "a call graph")
        .unwrap()
        .unwrap();
    suggest::write(&suggestion, &out).unwrap();
    assert_untouched(&planted, &out);
    CompiledPolicy::from_yaml(&std::fs::read_to_string(&out).unwrap()).unwrap();
}
