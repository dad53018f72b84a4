//! A decision never scans the destination's rules (issue 17): on a
//! 10,000-rule policy, an allowed call and every kind of denied call (a
//! caller no rule names, a named caller on a path no rule has, a named
//! caller with a method its rule does not list) do the same work as on a
//! 10-rule policy, counted rather than timed: the rules the evaluator
//! judges (its observer), and every matcher call, rule judged and route hit
//! gathered (`matcher_calls`, debug builds). Each source shape the index
//! keeps apart is covered: exact IDs, `/**` and `/*` patterns of their own,
//! and one `/**` pattern that every rule shares (then the route trie alone
//! must keep the work flat).
//!
//! A rescan of every rule after a deny once made a denied call 17 times
//! dearer than an allowed one at this size.

use std::collections::HashMap;
use std::fmt::Write as _;

use hallpass_policy::{
    CompiledPolicy, Decision, DenyReason, Method, Observer, Request, RuleVerdict, matcher_calls,
};
use spiffe::SpiffeId;

const DEST: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";
const LARGE: usize = 10_000;
const SMALL: usize = 10;

/// How the rules name their callers.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// Rule `i` names `ns/team-<i>/sa/client`; all share one route.
    Exact,
    /// Rule `i` names `ns/team-<i>/**`; all share one route.
    OwnAnyBelow,
    /// Rule `i` names `ns/team-<i>/sa/*`; all share one route.
    OwnOneBelow,
    /// Every rule names `ns/**`; rule `i` has its own route `/r-<i>/…`.
    SharedAnyBelow,
}

const SHAPES: [Shape; 4] = [
    Shape::Exact,
    Shape::OwnAnyBelow,
    Shape::OwnOneBelow,
    Shape::SharedAnyBelow,
];

impl Shape {
    fn from(self, i: usize) -> String {
        match self {
            Shape::Exact => format!("spiffe://hospital.example/ns/team-{i}/sa/client"),
            Shape::OwnAnyBelow => format!("\"spiffe://hospital.example/ns/team-{i}/**\""),
            Shape::OwnOneBelow => format!("\"spiffe://hospital.example/ns/team-{i}/sa/*\""),
            Shape::SharedAnyBelow => "\"spiffe://hospital.example/ns/**\"".to_owned(),
        }
    }

    fn route(self, i: usize) -> String {
        match self {
            Shape::SharedAnyBelow => format!("/r-{i}/patients/{{patient}}/results"),
            _ => "/patients/{patient}/results".to_owned(),
        }
    }

    /// A path that route template `route(i)` matches.
    fn path(self, i: usize) -> String {
        self.route(i).replace("{patient}", "p-1")
    }

    /// A proven caller of a listed trust domain that no rule names.
    fn stranger(self) -> &'static str {
        match self {
            // Everything under `ns/` is named.
            Shape::SharedAnyBelow => "spiffe://hospital.example/batch/stranger",
            _ => "spiffe://hospital.example/ns/stranger/sa/client",
        }
    }
}

/// `n` rules of the given shape for DEST.
fn policy(n: usize, shape: Shape) -> CompiledPolicy {
    let mut out = format!(
        "version: 1\ntrust_domains: [hospital.example]\nworkloads:\n  {DEST}:\n    allow:\n"
    );
    for i in 0..n {
        writeln!(
            out,
            "      - name: rule-{i}\n        from: [{}]\n        methods: [GET]\n        paths: [\"{}\"]",
            shape.from(i),
            shape.route(i)
        )
        .unwrap();
    }
    CompiledPolicy::from_yaml(&out).unwrap()
}

/// Counts the rules the evaluator judges.
#[derive(Default)]
struct Judged(usize);

impl Observer for Judged {
    fn rule(&mut self, _index: usize, _verdict: &RuleVerdict<'_>) {
        self.0 += 1;
    }
}

/// One call's decision, with the rules judged and the matcher calls made.
#[derive(Debug, PartialEq, Eq)]
struct Work {
    decision: Decision,
    unknown_source: bool,
    rules_judged: usize,
    matcher_calls: u64,
}

fn work(policy: &CompiledPolicy, source: &str, method: Method, path: &str) -> Work {
    let source = SpiffeId::new(source).unwrap();
    let dest = SpiffeId::new(DEST).unwrap();
    let headers = HashMap::new();
    let req = Request {
        source: &source,
        method,
        path,
        headers: &headers,
        has_jwt: false,
        serial: None,
        now_ms: 1_780_272_000_000,
    };
    let mut judged = Judged::default();
    let before = matcher_calls();
    let evaluation = policy.evaluate_with(&dest, &req, &mut judged);
    let named = policy.names_source(&dest, &source);
    let calls = matcher_calls() - before;
    assert_eq!(named, evaluation.source_named);
    Work {
        unknown_source: evaluation.unknown_source(),
        decision: evaluation.decision,
        rules_judged: judged.0,
        matcher_calls: calls,
    }
}

/// One call of the table.
struct Call {
    what: &'static str,
    source: String,
    method: Method,
    path: String,
    decision: Decision,
    unknown_source: bool,
    rules_judged: usize,
}

/// The calls of the table on an `n`-rule policy of `shape`.
fn calls(n: usize, shape: Shape) -> Vec<Call> {
    let mid = n / 2;
    let named = format!("spiffe://hospital.example/ns/team-{mid}/sa/client");
    let no_rule = Decision::deny(DenyReason::NoMatchingRule);
    vec![
        Call {
            what: "a caller no rule names",
            source: shape.stranger().to_owned(),
            method: Method::Get,
            path: shape.path(mid),
            decision: no_rule.clone(),
            unknown_source: true,
            rules_judged: 0,
        },
        Call {
            what: "a named caller on a path no rule has",
            source: named.clone(),
            method: Method::Get,
            path: "/admin/export".to_owned(),
            decision: no_rule.clone(),
            unknown_source: false,
            rules_judged: 0,
        },
        Call {
            what: "a named caller with a method its rule does not list",
            source: named.clone(),
            method: Method::Delete,
            path: shape.path(mid),
            decision: no_rule,
            unknown_source: false,
            rules_judged: 1,
        },
        Call {
            what: "a named caller, allowed",
            source: named,
            method: Method::Get,
            path: shape.path(mid),
            decision: Decision::Allow {
                rule: format!("rule-{mid}").into(),
                route: shape.route(mid).into(),
            },
            unknown_source: false,
            rules_judged: 1,
        },
    ]
}

#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "matcher calls are counted in debug builds only"
)]
fn a_decision_does_the_same_work_at_10_and_10000_rules() {
    for shape in SHAPES {
        let small = policy(SMALL, shape);
        let large = policy(LARGE, shape);
        for (at, on_small) in calls(LARGE, shape).into_iter().zip(calls(SMALL, shape)) {
            let what = format!("{} ({shape:?})", at.what);
            let at_large = work(&large, &at.source, at.method, &at.path);
            assert_eq!(
                (
                    &at_large.decision,
                    at_large.unknown_source,
                    at_large.rules_judged
                ),
                (&at.decision, at.unknown_source, at.rules_judged),
                "{what}"
            );
            let at_small = work(&small, &on_small.source, on_small.method, &on_small.path);
            assert_eq!(
                (&at_small.decision, at_small.unknown_source),
                (&on_small.decision, on_small.unknown_source),
                "{what}, 10 rules"
            );
            assert_eq!(
                at_large.matcher_calls, at_small.matcher_calls,
                "{what}: {} matcher calls at 10,000 rules, {} at 10",
                at_large.matcher_calls, at_small.matcher_calls
            );
            // One route hit gathered and one rule judged, at most.
            assert!(
                at_large.matcher_calls <= 2,
                "{what}: {} matcher calls",
                at_large.matcher_calls
            );
        }
    }
}

/// The counter does count: the reference scan of the same denied call
/// touches every rule.
#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "matcher calls are counted in debug builds only"
)]
fn a_scan_of_every_rule_is_counted() {
    let large = policy(LARGE, Shape::Exact);
    let source = SpiffeId::new("spiffe://hospital.example/ns/stranger/sa/client").unwrap();
    let dest = SpiffeId::new(DEST).unwrap();
    let headers = HashMap::new();
    let req = Request {
        source: &source,
        method: Method::Get,
        path: "/patients/p-1/results",
        headers: &headers,
        has_jwt: false,
        serial: None,
        now_ms: 0,
    };
    let before = matcher_calls();
    let (decision, _) = crate::reference::evaluate_linear(&large, &dest, &req);
    assert_eq!(decision, Decision::deny(DenyReason::NoMatchingRule));
    assert!(matcher_calls() - before >= 10_000);
}
