//! A check does the same matching work whatever the number of rules (issue
//! 17): through the sidecar's own [`Shared::decide`], on a destination with
//! 10,000 rules naming their callers exactly or by `/**` patterns, a proven
//! caller that no rule names (the `unknown_source` case) makes exactly as
//! many matcher calls as on a destination with 10, and none; an allowed
//! caller as many as at 10, and two. Work is counted, not timed:
//! `hallpass_policy::matcher_calls` counts every source, route and gRPC
//! matcher call, every route hit gathered and every rule judged (debug
//! builds).
//!
//! The sidecar once rescanned every rule of the destination after each such
//! deny, to find out whether any named the caller: 10,000 matcher calls here,
//! and a denied call 17 times dearer than an allowed one.

use std::fmt::Write as _;
use std::sync::Arc;

use hallpass_policy::{Decision, DenyReason, matcher_calls};
use hallpass_server::{Settings, Shared, Sidecar};
use hallpass_testkit::Ca;

use crate::common::{LAB, check_request, config, pki};

const STRANGER: &str = "spiffe://hospital.example/ns/stranger/sa/client";

/// A sidecar for LAB whose policy has `n` rules, each naming its own caller
/// (exactly, or by a `/**` pattern of its namespace with `wildcard`) and
/// sharing one route with all the others.
async fn sidecar(n: usize, wildcard: bool) -> (tempfile::TempDir, Ca, Sidecar, Arc<Shared>) {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki(dir.path());
    let mut policy = format!(
        "version: 1\ntrust_domains: [hospital.example]\nworkloads:\n  {LAB}:\n    allow:\n"
    );
    for i in 0..n {
        let from = if wildcard {
            format!("\"spiffe://hospital.example/ns/team-{i}/**\"")
        } else {
            format!("spiffe://hospital.example/ns/team-{i}/sa/client")
        };
        writeln!(
            policy,
            "      - name: rule-{i}\n        from: [{from}]\n        methods: [GET]\n        paths: [\"/patients/{{patient}}/results\"]"
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("policy.yaml"), policy).unwrap();
    let text = config(
        dir.path(),
        &format!("workload:\n  id: {LAB}\ntelemetry:\n  audit_log: off\n"),
    );
    let sidecar = Sidecar::bind(Settings::from_yaml(&text, std::iter::empty()).unwrap())
        .await
        .unwrap();
    let shared = sidecar.shared();
    assert!(
        shared.not_ready_reasons().is_empty(),
        "{:?}",
        shared.not_ready_reasons()
    );
    (dir, ca, sidecar, shared)
}

/// The matcher calls of one decision by `caller` (its credential already
/// verified and cached), with the decision and its `unknown_source` finding.
fn decide(shared: &Shared, ca: &Ca, caller: &str) -> (Decision, bool, u64) {
    let svid = ca.issue(caller).unwrap();
    let check = check_request(Some(&svid), "", "", "GET", "/patients/p-1/results");
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    shared.decide(&check, now_ms);
    let before = matcher_calls();
    let decided = shared.decide(&check, now_ms);
    let calls = matcher_calls() - before;
    (
        decided.outcome.decision,
        decided.outcome.unknown_source,
        calls,
    )
}

#[tokio::test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "matcher calls are counted in debug builds only"
)]
async fn a_denied_unknown_caller_costs_no_scan_of_the_rules() {
    for wildcard in [false, true] {
        let (_small_dir, small_ca, _small, small) = sidecar(10, wildcard).await;
        let (_large_dir, large_ca, _large, large) = sidecar(10_000, wildcard).await;

        let (decision, unknown, at_small) = decide(&small, &small_ca, STRANGER);
        assert_eq!(decision, Decision::deny(DenyReason::NoMatchingRule));
        assert!(unknown, "a caller no rule names is an unknown source");
        let (decision, unknown, at_large) = decide(&large, &large_ca, STRANGER);
        assert_eq!(decision, Decision::deny(DenyReason::NoMatchingRule));
        assert!(unknown, "a caller no rule names is an unknown source");
        assert_eq!(
            at_large, at_small,
            "a denied call made {at_large} matcher calls at 10,000 rules, {at_small} at 10 (wildcard: {wildcard})"
        );
        assert_eq!(
            at_large, 0,
            "matcher calls for one deny (wildcard: {wildcard})"
        );

        // An allowed caller: one route hit and one rule judged, at either size.
        let (decision, unknown, at_small) = decide(
            &small,
            &small_ca,
            "spiffe://hospital.example/ns/team-5/sa/client",
        );
        assert!(decision.is_allow(), "{decision:?}");
        assert!(!unknown);
        let (decision, unknown, at_large) = decide(
            &large,
            &large_ca,
            "spiffe://hospital.example/ns/team-5000/sa/client",
        );
        assert!(decision.is_allow(), "{decision:?}");
        assert!(!unknown);
        assert_eq!((at_small, at_large), (2, 2), "wildcard: {wildcard}");
    }
}
