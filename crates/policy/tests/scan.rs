//! A decision never scans the destination's rules: on a 10,000-rule policy,
//! a denied call (a caller no rule names, a named caller on the wrong path
//! or with the wrong method) does the same matching work as on a 10-rule
//! policy, counted rather than timed: the rules the evaluator judges (its
//! observer) and every matcher call (`matcher_calls`, debug builds).
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

/// `n` rules, each naming its own caller (an exact ID, or a `/**` pattern
/// for `wildcard`) and sharing one route template with all the others.
fn policy(n: usize, wildcard: bool) -> CompiledPolicy {
    let mut out = format!(
        "version: 1\ntrust_domains: [hospital.example]\nworkloads:\n  {DEST}:\n    allow:\n"
    );
    for i in 0..n {
        let from = if wildcard {
            format!("\"spiffe://hospital.example/ns/team-{i}/**\"")
        } else {
            format!("spiffe://hospital.example/ns/team-{i}/sa/client")
        };
        writeln!(
            out,
            "      - name: rule-{i}\n        from: [{from}]\n        methods: [GET]\n        paths: [\"/patients/{{patient}}/results\"]"
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

/// The calls of the table: (what, source, method, path, want decision,
/// want unknown source, want rules judged).
fn calls(
    n: usize,
) -> Vec<(
    &'static str,
    String,
    Method,
    &'static str,
    Decision,
    bool,
    usize,
)> {
    let named = format!("spiffe://hospital.example/ns/team-{}/sa/client", n / 2);
    let no_rule = Decision::deny(DenyReason::NoMatchingRule);
    vec![
        (
            "a caller no rule names",
            "spiffe://hospital.example/ns/stranger/sa/client".to_owned(),
            Method::Get,
            "/patients/p-1/results",
            no_rule.clone(),
            true,
            0,
        ),
        (
            "a named caller on a path no rule has",
            named.clone(),
            Method::Get,
            "/admin/export",
            no_rule.clone(),
            false,
            0,
        ),
        (
            "a named caller with a method its rule does not list",
            named.clone(),
            Method::Delete,
            "/patients/p-1/results",
            no_rule,
            false,
            1,
        ),
        (
            "a named caller, allowed",
            named,
            Method::Get,
            "/patients/p-1/results",
            Decision::Allow {
                rule: format!("rule-{}", n / 2).into(),
                route: "/patients/{patient}/results".into(),
            },
            false,
            1,
        ),
    ]
}

#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "matcher calls are counted in debug builds only"
)]
fn a_denied_call_does_the_same_work_at_10_and_10000_rules() {
    for wildcard in [false, true] {
        let small = policy(10, wildcard);
        let large = policy(10_000, wildcard);
        for ((what, source, method, path, decision, unknown, judged), (_, small_source, ..)) in
            calls(10_000).into_iter().zip(calls(10))
        {
            let at_large = work(&large, &source, method, path);
            assert_eq!(
                (
                    &at_large.decision,
                    at_large.unknown_source,
                    at_large.rules_judged
                ),
                (&decision, unknown, judged),
                "{what} (wildcard: {wildcard})"
            );
            let at_small = work(&small, &small_source, method, path);
            assert_eq!(
                at_large.matcher_calls, at_small.matcher_calls,
                "{what} (wildcard: {wildcard}): {} matcher calls at 10,000 rules, {} at 10",
                at_large.matcher_calls, at_small.matcher_calls
            );
            assert!(
                at_large.matcher_calls <= 1,
                "{what} (wildcard: {wildcard}): {} matcher calls",
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
    let large = policy(10_000, false);
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
