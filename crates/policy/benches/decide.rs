//! Decision cost against policy size.
//!
//! One destination with N rules (10 … 10,000). Every rule names its own
//! caller and shares the route template `/patients/{patient}/results` with
//! all the others, the worst case for a router keyed by path alone. The
//! index looks up the caller first, so the cost should stay flat:
//!
//! - `exact`: rules name exact SPIFFE IDs;
//! - `wildcard`: rules name `spiffe://…/ns/team-N/**` patterns;
//! - `linear`: the reference scan (`tests/reference.rs`, the property
//!   tests' specification) over the exact policy, for contrast;
//! - `denied`: the exact policy, a caller no rule names: the deny (and its
//!   `unknown_source` finding) must cost what an allow costs.
//!
//! Run: `cargo bench -p hallpass-policy --bench decide`.

// A benchmark stops loudly on the unexpected, like a test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hallpass_policy::{CompiledPolicy, Decision, DenyReason, Method, NoTrace, Request};
use spiffe::SpiffeId;

#[path = "../tests/reference.rs"]
mod reference;

const SIZES: [usize; 4] = [10, 100, 1_000, 10_000];
const DEST: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";

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
            "      - name: rule-{i}\n        from: [{from}]\n        methods: [GET, POST]\n        paths: [\"/teams/{i}/reports/**\", \"/patients/{{patient}}/results\"]"
        )
        .unwrap();
    }
    CompiledPolicy::from_yaml(&out).unwrap()
}

fn id(text: &str) -> SpiffeId {
    SpiffeId::new(text).unwrap()
}

fn bench(c: &mut Criterion) {
    let dest = id(DEST);
    let headers = HashMap::new();
    let mut group = c.benchmark_group("decide");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    let kinds = [
        ("exact", false),
        ("wildcard", true),
        ("linear", false),
        ("denied", false),
    ];
    for (kind, wildcard) in kinds {
        for n in SIZES {
            let policy = policy(n, wildcard);
            let source = if kind == "denied" {
                id("spiffe://hospital.example/ns/stranger/sa/client")
            } else {
                id(&format!(
                    "spiffe://hospital.example/ns/team-{}/sa/client",
                    n / 2
                ))
            };
            let req = Request {
                source: &source,
                method: Method::Get,
                path: "/patients/p-123/results?fields=all",
                headers: &headers,
                has_jwt: false,
                serial: None,
                now_ms: 1_780_272_000_000,
            };
            let want = format!("rule-{}", n / 2);
            let evaluation = policy.evaluate_with(&dest, &req, &mut NoTrace);
            if kind == "denied" {
                assert_eq!(
                    evaluation.decision,
                    Decision::deny(DenyReason::NoMatchingRule)
                );
                assert!(evaluation.unknown_source());
            } else {
                assert!(
                    matches!(&evaluation.decision, Decision::Allow { rule, .. } if **rule == *want),
                    "{evaluation:?}"
                );
            }
            group.bench_with_input(BenchmarkId::new(kind, n), &n, |b, _| match kind {
                "linear" => b.iter(|| {
                    black_box(reference::evaluate_linear(
                        &policy,
                        black_box(&dest),
                        black_box(&req),
                    ))
                }),
                // What the sidecar calls: the evaluation with its findings.
                "denied" => b.iter(|| {
                    black_box(policy.evaluate_with(black_box(&dest), black_box(&req), &mut NoTrace))
                }),
                _ => b.iter(|| black_box(policy.evaluate(black_box(&dest), black_box(&req)))),
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
