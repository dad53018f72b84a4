//! Properties of the matchers and of policy evaluation.

use std::collections::HashMap;
use std::fmt::Write as _;

use hallpass_policy::{
    CompiledPolicy, Decision, DenyReason, Method, NoTrace, RouteTemplate, RuleOutcome,
    SourcePattern, normalize_path,
};
use proptest::prelude::*;
use spiffe::SpiffeId;

const TD: &str = "hospital.example";

/// A SPIFFE ID path segment, never a dot segment.
fn id_segment() -> impl Strategy<Value = String> {
    "[a-z0-9_-][a-z0-9_.-]{0,7}"
}

/// An unambiguous URL path segment as a client could send it (maybe percent-encoded).
fn url_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z0-9_~-][A-Za-z0-9_.~:@!$&'()*+,;=-]{0,9}",
        1 => "[a-z]{0,3}(%20|%41|%7E|%25|%C3%A9)[a-z]{0,3}",
    ]
    .prop_filter("dot segment", |s| s != "." && s != "..")
}

fn url_path(segments: &[String]) -> String {
    if segments.is_empty() {
        return "/".into();
    }
    segments.iter().fold(String::new(), |mut out, s| {
        out.push('/');
        out.push_str(s);
        out
    })
}

fn spiffe(segments: &[String]) -> String {
    let mut id = format!("spiffe://{TD}");
    for s in segments {
        id.push('/');
        id.push_str(s);
    }
    id
}

// ---------------------------------------------------------------- generated policies

/// The vocabulary random policies and requests are drawn from, small enough
/// that rules and requests often meet.
const SOURCES: &[&str] = &[
    "spiffe://hospital.example/ns/a/sa/one",
    "spiffe://hospital.example/ns/a/sa/two",
    "spiffe://hospital.example/ns/b/sa/one",
    "spiffe://hospital.example/ns/a/x",
];
const SOURCE_PATTERNS: &[&str] = &[
    "spiffe://hospital.example/ns/a/sa/one",
    "spiffe://hospital.example/ns/a/sa/two",
    "spiffe://hospital.example/ns/b/sa/one",
    "spiffe://hospital.example/ns/a/*",
    "spiffe://hospital.example/ns/a/sa/*",
    "spiffe://hospital.example/ns/**",
    "spiffe://hospital.example/**",
];
const METHODS: &[&str] = &["GET", "POST", "DELETE"];
/// Requests also use a method no rule can name.
const REQUEST_METHODS: &[&str] = &["GET", "POST", "DELETE", "PROPFIND"];
const TEMPLATES: &[&str] = &["/items", "/items/{id}", "/items/**", "/{x}/{y}", "/**"];
const GRPC: &[&str] = &["pkg.Svc/Get", "pkg.Svc/*"];
const PATHS: &[&str] = &[
    "/items",
    "/items/1",
    "/items/1/2",
    "/other/1",
    "/pkg.Svc/Get",
    "/pkg.Svc/Put",
    "/",
];
/// Times: 1000, 2000, 3000.
const TIMES: &[i64] = &[1000, 2000, 3000];
const RFC3339: &[&str] = &[
    "1970-01-01T00:16:40Z",
    "1970-01-01T00:33:20Z",
    "1970-01-01T00:50:00Z",
];

#[derive(Debug, Clone)]
struct GenRule {
    from: Vec<usize>,
    methods: Option<Vec<usize>>,
    paths: Option<Vec<usize>>,
    grpc: Option<Vec<usize>>,
    header: Option<bool>,
    not_before: Option<usize>,
    not_after: Option<usize>,
    require_jwt: bool,
}

fn subset(n: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::sample::subsequence((0..n).collect::<Vec<_>>(), 1..=n)
}

fn gen_rule() -> impl Strategy<Value = GenRule> {
    (
        subset(SOURCE_PATTERNS.len()),
        prop::option::weighted(0.5, subset(METHODS.len())),
        prop::option::weighted(0.6, subset(TEMPLATES.len())),
        prop::option::weighted(0.3, subset(GRPC.len())),
        prop::option::weighted(0.2, any::<bool>()),
        prop::option::weighted(0.2, 0..TIMES.len()),
        prop::option::weighted(0.2, 0..TIMES.len()),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(from, methods, paths, grpc, header, not_before, not_after, require_jwt)| {
                // A window that ends before it starts is a load error.
                let (not_before, not_after) = match (not_before, not_after) {
                    (Some(b), Some(a)) if b > a => (Some(a), Some(b)),
                    window => window,
                };
                GenRule {
                    from,
                    methods,
                    paths,
                    grpc,
                    header,
                    not_before,
                    not_after,
                    require_jwt,
                }
            },
        )
}

fn list(items: &[usize], vocab: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|&i| format!("{:?}", vocab[i])).collect();
    format!("[{}]", quoted.join(", "))
}

fn rule_yaml(out: &mut String, name: &str, r: &GenRule) {
    writeln!(out, "      - name: {name}").unwrap();
    writeln!(out, "        from: {}", list(&r.from, SOURCE_PATTERNS)).unwrap();
    if let Some(m) = &r.methods {
        writeln!(out, "        methods: {}", list(m, METHODS)).unwrap();
    }
    if let Some(p) = &r.paths {
        writeln!(out, "        paths: {}", list(p, TEMPLATES)).unwrap();
    }
    if let Some(g) = &r.grpc {
        writeln!(out, "        grpc: {}", list(g, GRPC)).unwrap();
    }
    if let Some(h) = r.header {
        let v = if h { "a" } else { "b" };
        writeln!(out, "        headers: {{x-tenant: {v}}}").unwrap();
    }
    if let Some(t) = r.not_before {
        writeln!(out, "        not_before: {}", RFC3339[t]).unwrap();
    }
    if let Some(t) = r.not_after {
        writeln!(out, "        not_after: {}", RFC3339[t]).unwrap();
    }
    if r.require_jwt {
        writeln!(out, "        require_jwt: true").unwrap();
    }
}

fn policy_yaml(rules: &[GenRule]) -> String {
    let mut out = format!(
        "version: 1\ntrust_domains: [{TD}]\nworkloads:\n  spiffe://{TD}/dest:\n    allow:\n"
    );
    for (i, r) in rules.iter().enumerate() {
        rule_yaml(&mut out, &format!("rule-{i}"), r);
    }
    out
}

#[derive(Debug, Clone)]
struct GenRequest {
    source: usize,
    method: usize,
    path: usize,
    header: Option<bool>,
    jwt: bool,
    /// Unix milliseconds.
    now_ms: i64,
}

fn gen_request() -> impl Strategy<Value = GenRequest> {
    (
        0..SOURCES.len(),
        0..REQUEST_METHODS.len(),
        0..PATHS.len(),
        prop::option::of(any::<bool>()),
        any::<bool>(),
        // Milliseconds, on and next to the window edges (TIMES are seconds).
        prop_oneof![
            Just(500_000i64),
            Just(999_999),
            Just(1_000_000),
            Just(1_000_001),
            Just(1_500_000),
            Just(2_500_000),
            Just(2_999_999),
            Just(3_000_000),
            Just(3_000_001),
            Just(3_500_000)
        ],
    )
        .prop_map(|(source, method, path, header, jwt, now_ms)| GenRequest {
            source,
            method,
            path,
            header,
            jwt,
            now_ms,
        })
}

fn decide(policy: &CompiledPolicy, req: &GenRequest, path: &str) -> Decision {
    let source = SpiffeId::new(SOURCES[req.source]).unwrap();
    let mut headers = HashMap::new();
    if let Some(h) = req.header {
        headers.insert("x-tenant".to_owned(), if h { "a" } else { "b" }.to_owned());
    }
    let request = hallpass_policy::Request {
        source: &source,
        method: Method::parse(REQUEST_METHODS[req.method]),
        path,
        headers: &headers,
        has_jwt: req.jwt,
        serial: None,
        now_ms: req.now_ms,
    };
    let dest = SpiffeId::new(format!("spiffe://{TD}/dest")).unwrap();
    policy.evaluate(&dest, &request).0
}

/// A path made ambiguous by a dot, empty or encoded-separator segment.
fn ambiguous_path() -> impl Strategy<Value = String> {
    let bad = prop_oneof![
        Just("."),
        Just(".."),
        Just(""),
        Just("%2e"),
        Just("%2E%2e"),
        Just(".%2e"),
        Just("a%2Fb"),
        Just("a%5cb"),
        Just("a\\b"),
        Just("%zz"),
        Just("%ff"),
        Just("..;"),
        Just(".;x=1"),
        Just(";"),
    ];
    (
        prop::collection::vec(url_segment(), 0..5),
        any::<prop::sample::Index>(),
        bad,
        "(\\?[a-z=&./]{0,8})?",
    )
        .prop_map(|(mut segs, at, bad, query)| {
            let i = at.index(segs.len() + 1);
            segs.insert(i, bad.to_owned());
            // A lone empty segment would print as `/`, the (unambiguous) root.
            let path = if segs == [""] {
                "//".to_owned()
            } else {
                url_path(&segs)
            };
            format!("{path}{query}")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// `prefix/*` and `prefix/**` never match an ID whose last prefix segment
    /// merely starts with the pattern's last segment.
    #[test]
    fn source_wildcards_never_match_across_a_segment_boundary(
        prefix in prop::collection::vec(id_segment(), 1..4),
        suffix in "[a-z0-9_.-]{1,6}",
        rest in prop::collection::vec(id_segment(), 0..3),
        any_depth in any::<bool>(),
    ) {
        let pattern_text = format!("{}/{}", spiffe(&prefix), if any_depth { "**" } else { "*" });
        let pattern = SourcePattern::parse(&pattern_text).unwrap();

        let mut glued = prefix.clone();
        glued.last_mut().unwrap().push_str(&suffix);
        let mut id_segments = glued;
        id_segments.extend(rest.iter().cloned());
        let id = SpiffeId::new(spiffe(&id_segments)).unwrap();
        prop_assert!(!pattern.matches(&id), "{pattern_text} matched {id}");

        // The honest neighbour one segment below does match.
        if suffix != "." && suffix != ".." {
            let mut below = prefix.clone();
            below.push(suffix.clone());
            let below = SpiffeId::new(spiffe(&below)).unwrap();
            prop_assert!(pattern.matches(&below), "{pattern_text} did not match {below}");
        }
    }

    /// `prefix/*` is exactly one more segment; `prefix/**` is one or more.
    #[test]
    fn source_wildcard_depth(
        prefix in prop::collection::vec(id_segment(), 0..3),
        below in prop::collection::vec(id_segment(), 0..4),
    ) {
        let mut segs = prefix.clone();
        segs.extend(below.iter().cloned());
        prop_assume!(!segs.is_empty());
        let id = SpiffeId::new(spiffe(&segs)).unwrap();
        let one = SourcePattern::parse(&format!("{}/*", spiffe(&prefix))).unwrap();
        let any = SourcePattern::parse(&format!("{}/**", spiffe(&prefix))).unwrap();
        prop_assert_eq!(one.matches(&id), below.len() == 1);
        prop_assert_eq!(any.matches(&id), !below.is_empty());
    }

    /// The same holds for trailing `/**` in route templates.
    #[test]
    fn route_any_depth_never_matches_across_a_segment_boundary(
        prefix in prop::collection::vec("[a-z0-9_-]{1,6}", 1..4),
        suffix in "[a-z0-9_-]{1,6}",
        rest in prop::collection::vec(url_segment(), 0..3),
    ) {
        let template = RouteTemplate::parse(&format!("{}/**", url_path(&prefix))).unwrap();
        let mut glued = prefix.clone();
        glued.last_mut().unwrap().push_str(&suffix);
        glued.extend(rest.iter().cloned());
        let path = url_path(&glued);
        let normalized = normalize_path(&path).unwrap();
        prop_assert!(!template.matches(normalized.segments()), "{} matched {path}", template.as_str());
    }

    /// A path with a dot, empty or encoded-separator segment never matches any
    /// rule, even one that allows every path to every caller.
    #[test]
    fn ambiguous_paths_never_match_any_rule(
        path in ambiguous_path(),
        req in gen_request(),
    ) {
        prop_assert!(normalize_path(&path).is_none(), "{path:?} normalised");
        let policy = CompiledPolicy::from_yaml(&format!(
            "version: 1\ntrust_domains: [{TD}]\nworkloads:\n  spiffe://{TD}/dest:\n    allow:\n\
             \x20     - name: everything\n        from: [\"spiffe://{TD}/**\"]\n\
             \x20     - name: every-path\n        from: [\"spiffe://{TD}/**\"]\n        paths: [\"/**\"]\n\
             \x20     - name: every-grpc\n        from: [\"spiffe://{TD}/**\"]\n        grpc: [\"pkg.Svc/*\"]\n"
        ))
        .unwrap();
        prop_assert_eq!(decide(&policy, &req, &path), Decision::deny(DenyReason::AmbiguousPath));
    }

    /// Whatever `normalize_path` accepts is free of the things it promises to refuse.
    #[test]
    fn normalized_segments_are_never_ambiguous(raw in "/(/|%2[eEfF]|%5[cC]|\\.|[a-z]|%[0-9a-fA-Fz]{0,2}|\\\\|\\?){0,16}") {
        if let Some(path) = normalize_path(&raw) {
            prop_assert!(raw.starts_with('/'));
            for seg in path.segments() {
                prop_assert!(!seg.is_empty() && seg != "." && seg != "..", "{raw:?} -> {seg:?}");
                prop_assert!(!seg.contains(['/', '\\']), "{raw:?} -> {seg:?}");
            }
        }
    }

    /// A template of only `{param}` segments matches exactly the safe paths
    /// with the same number of segments.
    #[test]
    fn param_only_templates_match_any_safe_path_of_the_same_length(
        n in 1usize..6,
        segs in prop::collection::vec(url_segment(), 0..8),
    ) {
        let text: String = (0..n).map(|i| format!("/{{p{i}}}")).collect();
        let template = RouteTemplate::parse(&text).unwrap();
        let path = url_path(&segs);
        let normalized = normalize_path(&path).unwrap();
        prop_assert_eq!(normalized.segments().len(), segs.len());
        prop_assert_eq!(template.matches(normalized.segments()), segs.len() == n, "{} vs {}", text, path);
    }
}

proptest! {
    // Only allowed base requests are interesting; generated policies allow
    // often enough that a few thousand rejected cases are plenty.
    #![proptest_config(ProptestConfig { cases: 256, max_global_rejects: 8192, ..ProptestConfig::default() })]

    /// Allow-lists only add: inserting a rule anywhere never turns an allow
    /// into a deny, and appending one never changes the decision at all.
    #[test]
    fn adding_a_rule_never_turns_an_allow_into_a_deny(
        base in prop::collection::vec(gen_rule(), 1..5),
        extra in gen_rule(),
        at in any::<prop::sample::Index>(),
        req in gen_request(),
    ) {
        let path = PATHS[req.path];
        let before = decide(&CompiledPolicy::from_yaml(&policy_yaml(&base)).unwrap(), &req, path);
        prop_assume!(before.is_allow());

        let mut appended = base.clone();
        appended.push(extra.clone());
        let after = decide(&CompiledPolicy::from_yaml(&policy_yaml(&appended)).unwrap(), &req, path);
        prop_assert_eq!(&after, &before);

        let mut inserted = base.clone();
        inserted.insert(at.index(base.len() + 1), extra);
        let after = decide(&CompiledPolicy::from_yaml(&policy_yaml(&inserted)).unwrap(), &req, path);
        prop_assert!(after.is_allow(), "inserting a rule turned {before:?} into {after:?}");
    }
}

fn request_parts(req: &GenRequest) -> (SpiffeId, HashMap<String, String>) {
    let source = SpiffeId::new(SOURCES[req.source]).unwrap();
    let mut headers = HashMap::new();
    if let Some(h) = req.header {
        headers.insert("x-tenant".to_owned(), if h { "a" } else { "b" }.to_owned());
    }
    (source, headers)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The indexed decision (source index + route tries) equals the linear
    /// reference scan of every rule in file order; `explain` gives the same
    /// decision, and each rule's described conditions agree with the
    /// evaluator's verdict on it; whether any rule names the caller comes
    /// out of the index walk as a scan would find it.
    #[test]
    fn indexed_decision_equals_linear_scan_and_explain(
        rules in prop::collection::vec(gen_rule(), 0..8),
        reqs in prop::collection::vec(gen_request(), 1..8),
    ) {
        let policy = CompiledPolicy::from_yaml(&policy_yaml(&rules)).unwrap();
        let dest = SpiffeId::new(format!("spiffe://{TD}/dest")).unwrap();
        for req in &reqs {
            let (source, headers) = request_parts(req);
            let request = hallpass_policy::Request {
                source: &source,
                method: Method::parse(REQUEST_METHODS[req.method]),
                path: PATHS[req.path],
                headers: &headers,
                has_jwt: req.jwt,
                serial: None,
                now_ms: req.now_ms,
            };
            let indexed = policy.evaluate(&dest, &request);
            let linear = crate::reference::evaluate_linear(&policy, &dest, &request);
            prop_assert_eq!(&indexed, &linear, "{:?}", req);

            let named = policy
                .workload(&dest)
                .unwrap()
                .rules
                .iter()
                .any(|r| r.from.iter().any(|p| p.matches(&source)));
            let evaluation = policy.evaluate_with(&dest, &request, &mut NoTrace);
            prop_assert_eq!(evaluation.source_named, named, "{:?}", req);
            prop_assert_eq!(policy.names_source(&dest, &source), named);
            prop_assert_eq!(
                evaluation.unknown_source(),
                !named && indexed.0 == Decision::deny(DenyReason::NoMatchingRule)
            );

            let explained = policy.explain(&dest, &request);
            prop_assert_eq!(&explained.decision, &indexed.0, "{}", explained);
            for rule in &explained.rules {
                let ok = |what: &str| rule.checks.iter().any(|c| c.what == what && c.ok);
                let conditions = ok("headers") && ok("jwt");
                let all_but_time = ok("source") && ok("method") && ok("route") && conditions;
                let consistent = match &rule.outcome {
                    RuleOutcome::Match { .. } => all_but_time && ok("time"),
                    RuleOutcome::OutsideWindow { .. } => all_but_time && !ok("time"),
                    RuleOutcome::Conditions => ok("source") && !conditions,
                    RuleOutcome::Method => ok("source") && conditions && !ok("route"),
                    // Not looked at: it does not name the caller, or no route
                    // of it matches the path.
                    RuleOutcome::NotCandidate => !ok("source") || !ok("route"),
                };
                // And the other way round: every condition holding is a match.
                let complete = !all_but_time
                    || matches!(
                        rule.outcome,
                        RuleOutcome::Match { .. } | RuleOutcome::OutsideWindow { .. }
                    );
                prop_assert!(consistent && complete,
                    "rule #{} {:?} disagrees with its checks {:?}\n{}", rule.index, rule.outcome, rule.checks, explained);
            }
        }
    }

    /// A rule the `shadowed_rule` lint flags never decides anything:
    /// removing it changes no decision.
    #[test]
    fn a_shadowed_rule_can_be_removed_without_changing_any_decision(
        rules in prop::collection::vec(gen_rule(), 2..7),
        reqs in prop::collection::vec(gen_request(), 1..16),
    ) {
        let text = policy_yaml(&rules);
        let report = hallpass_policy::check::check(&text, 0);
        let shadowed: Vec<usize> = report
            .findings
            .iter()
            .filter(|f| f.code == "shadowed_rule")
            .map(|f| {
                let i = f.path.rfind('[').unwrap();
                f.path[i + 1..f.path.len() - 1].parse().unwrap()
            })
            .collect();
        let full = CompiledPolicy::from_yaml(&text).unwrap();
        for j in shadowed {
            let mut without = format!(
                "version: 1\ntrust_domains: [{TD}]\nworkloads:\n  spiffe://{TD}/dest:\n    allow:\n"
            );
            for (i, r) in rules.iter().enumerate().filter(|(i, _)| *i != j) {
                rule_yaml(&mut without, &format!("rule-{i}"), r);
            }
            let reduced = CompiledPolicy::from_yaml(&without).unwrap();
            for req in &reqs {
                for path in PATHS {
                    prop_assert_eq!(
                        decide(&full, req, path),
                        decide(&reduced, req, path),
                        "rule-{} is flagged shadowed but matters for {:?} {}", j, req, path
                    );
                }
            }
        }
    }
}

/// The grant with a rule's `from`, `methods` and `paths`, in force from 0 s
/// to 4000 s (the requests' times are inside).
fn grant_like(rule: &GenRule, to: &str) -> hallpass_policy::BreakGlassDocument {
    let names = |items: &[usize], vocab: &[&str]| -> Vec<String> {
        items.iter().map(|&i| vocab[i].to_owned()).collect()
    };
    hallpass_policy::BreakGlassDocument {
        name: "bg".into(),
        from: names(&rule.from, SOURCE_PATTERNS),
        to: to.into(),
        methods: rule.methods.as_ref().map(|m| names(m, METHODS)),
        paths: rule.paths.as_ref().map(|p| names(p, TEMPLATES)),
        reason: "r".into(),
        ticket: "t".into(),
        opened_by: "o".into(),
        opened: "1970-01-01T00:00:00Z".into(),
        expires: "1970-01-01T01:06:40Z".into(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A break-glass grant covers exactly the calls a rule with the same
    /// `from`, `methods` and `paths` (and no other condition) allows, with
    /// the same route label; and only for its own destination.
    #[test]
    fn a_grant_covers_what_the_same_rule_allows(
        rule in gen_rule(),
        req in gen_request(),
    ) {
        let rule = GenRule {
            grpc: None,
            header: None,
            not_before: None,
            not_after: None,
            require_jwt: false,
            ..rule
        };
        let policy = CompiledPolicy::from_yaml(&policy_yaml(std::slice::from_ref(&rule))).unwrap();
        let dest = format!("spiffe://{TD}/dest");
        let grants = hallpass_policy::BreakGlassGrants::compile(
            &[grant_like(&rule, &dest)],
            i64::MAX,
            "break_glass",
        )
        .unwrap();
        let path = PATHS[req.path];
        let source = SpiffeId::new(SOURCES[req.source]).unwrap();
        let method = Method::parse(REQUEST_METHODS[req.method]);
        let by_rule = match decide(&policy, &req, path) {
            Decision::Allow { route, .. } => Some(route),
            Decision::Deny { .. } => None,
        };
        let by_grant = grants
            .find(&SpiffeId::new(&dest).unwrap(), &source, method, path, req.now_ms)
            .map(|(_, route)| route);
        prop_assert_eq!(by_grant, by_rule);
        let elsewhere = SpiffeId::new(format!("spiffe://{TD}/other")).unwrap();
        prop_assert!(grants.find(&elsewhere, &source, method, path, req.now_ms).is_none());
    }
}
