//! Decision cost against policy size.
//!
//! One destination with N rules (10 … 10,000). Every rule names its own
//! caller and shares the route template `/patients/{patient}/results` with
//! all the others, the worst case for a router keyed by path alone. The
//! index looks up the caller first, so the cost should stay flat:
//!
//! - `exact`: rules name exact SPIFFE IDs;
//! - `wildcard`: rules name `spiffe://…/ns/team-N/**` patterns;
//! - `linear`: the reference scan (`evaluate_linear`) over the exact policy,
//!   for contrast.
//!
//! Run: `cargo bench -p hallpass-policy --bench decide`.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hallpass_policy::{CompiledPolicy, Decision, Request};
use spiffe::SpiffeId;

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
    for (kind, wildcard) in [("exact", false), ("wildcard", true), ("linear", false)] {
        for n in SIZES {
            let policy = policy(n, wildcard);
            let source = id(&format!(
                "spiffe://hospital.example/ns/team-{}/sa/client",
                n / 2
            ));
            let req = Request {
                source: &source,
                method: "GET",
                path: "/patients/p-123/results?fields=all",
                headers: &headers,
                has_jwt: false,
                serial: None,
                now_ms: 1_780_272_000_000,
            };
            let want = format!("rule-{}", n / 2);
            let (decision, _) = policy.evaluate(&dest, &req);
            assert!(
                matches!(&decision, Decision::Allow { rule, .. } if **rule == *want),
                "{decision:?}"
            );
            group.bench_with_input(BenchmarkId::new(kind, n), &n, |b, _| {
                if kind == "linear" {
                    b.iter(|| black_box(policy.evaluate_linear(black_box(&dest), black_box(&req))));
                } else {
                    b.iter(|| black_box(policy.evaluate(black_box(&dest), black_box(&req))));
                }
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
