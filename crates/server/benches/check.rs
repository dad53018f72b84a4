//! The whole `Check` handler in process: what one check costs hallpass
//! beyond the gRPC transport.
//!
//! - `check/decode`: prost-decode the `CheckRequest` Envoy sends (the
//!   caller's leaf certificate, method, path, host and Envoy's usual request
//!   headers); the floor server pays this too;
//! - `check/handler`: decode → decide (the verification cache hit, the
//!   200-rule policy) → answer (and its encoding) → the duration histogram
//!   → record (the decision counter, the telemetry event on the queue), as
//!   `AuthzService::check` runs them;
//! - allocations per check, counted by a counting global allocator over
//!   10 000 checks, with and without the telemetry worker's share (the
//!   worker's event handling and the audit record, written to a file).
//!
//! Run: `cargo bench -p hallpass-server --bench check`.

// A benchmark stops loudly on the unexpected, like a test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::alloc::System;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use envoy_types::ext_authz::v3::pb::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer, Request};
use hallpass_server::{AuthzService, Settings, Shared, Sidecar};
use hallpass_testkit::Ca;
use prost::Message;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";
const EHR: &str = "spiffe://hospital.example/ns/clinical/sa/ehr-api";
/// Checks per allocation count.
const COUNTED: u64 = 10_000;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A 200-rule policy for LAB: the first rule lets EHR read results, the
/// others name a namespace each by a `/**` pattern (as the end-to-end
/// benchmark's policy).
fn policy() -> String {
    let mut out = format!(
        "version: 1\ntrust_domains: [hospital.example]\nworkloads:\n  {LAB}:\n    allow:\n\
         \x20     - name: ehr-reads-results\n        from: [{EHR}]\n        methods: [GET]\n        \
         paths: [\"/patients/{{patient}}/results\"]\n"
    );
    for i in 1..200 {
        writeln!(
            out,
            "      - name: team-{i}-reads-results\n        from: [\"spiffe://hospital.example/ns/team-{i}/**\"]\n        methods: [GET]\n        paths: [\"/patients/{{patient}}/results\"]"
        )
        .unwrap();
    }
    out
}

/// The Check a callee Envoy sends for `GET /patients/12345/results` from a
/// caller Envoy, prost-encoded.
fn wire(ca: &Ca) -> Vec<u8> {
    let svid = ca.issue(EHR).unwrap();
    let headers: HashMap<String, String> = [
        (":authority", "127.0.0.1:10000"),
        (":path", "/patients/12345/results"),
        (":method", "GET"),
        (":scheme", "http"),
        ("user-agent", "h2load nghttp2/1.64.0"),
        ("accept", "*/*"),
        ("x-demo-caller", "ehr-api"),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "5f0c2a7e-1b7d-4c1e-9d3a-8f2b6c4d1e00"),
        ("x-envoy-expected-rq-timeout-ms", "15000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(Peer {
                certificate: svid.envoy_encoded(),
                ..Default::default()
            }),
            request: Some(Request {
                http: Some(HttpRequest {
                    method: "GET".into(),
                    path: "/patients/12345/results".into(),
                    host: "127.0.0.1:10000".into(),
                    scheme: "http".into(),
                    protocol: "HTTP/2".into(),
                    headers,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
    .encode_to_vec()
}

/// One check as `AuthzService::check` runs it, from the wire bytes to the
/// answer's bytes.
fn one_check(service: &AuthzService, shared: &Shared, wire: &[u8]) -> Vec<u8> {
    let started = Instant::now();
    let check = CheckRequest::decode(wire).unwrap();
    let now = now_ms();
    let (decided, response) = service.answer(&check, now);
    shared
        .metrics
        .check_duration
        .observe(started.elapsed().as_secs_f64());
    shared.record(&decided, now);
    response.encode_to_vec()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::root("hospital.example").unwrap();
    std::fs::write(dir.path().join("bundle.pem"), ca.cert_pem()).unwrap();
    std::fs::write(dir.path().join("policy.yaml"), policy()).unwrap();
    let config = format!(
        "authz:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nworkload:\n  id: {LAB}\n\
         trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: {d}/bundle.pem\n\
         policy:\n  file: {d}/policy.yaml\ntelemetry:\n  audit_log: {d}/audit.jsonl\n",
        d = dir.path().display()
    );
    let sidecar = runtime
        .block_on(Sidecar::bind(
            Settings::from_yaml(&config, std::iter::empty()).unwrap(),
        ))
        .unwrap();
    let shared = sidecar.shared();
    assert!(shared.not_ready_reasons().is_empty());
    let service = AuthzService::new(shared.clone());
    let wire = wire(&ca);

    // The first check verifies the certificate and caches it; it must allow.
    let answer = one_check(&service, &shared, &wire);
    assert!(!answer.is_empty());
    let check = CheckRequest::decode(wire.as_slice()).unwrap();
    let (decided, _) = service.answer(&check, now_ms());
    assert!(decided.outcome.decision.is_allow(), "{decided:?}");
    runtime.block_on(shared.telemetry.flush());

    // Allocations, counted over every thread: decoding alone; the check
    // without its record (decode, decide, answer, encode); the whole check
    // with its record, and the telemetry worker's handling of the events
    // (flushed before the count is read).
    let count = |f: &dyn Fn()| {
        let region = Region::new(GLOBAL);
        for _ in 0..COUNTED {
            f();
        }
        runtime.block_on(shared.telemetry.flush());
        let change = region.change();
        (
            change.allocations as f64 / COUNTED as f64,
            change.bytes_allocated as f64 / COUNTED as f64,
        )
    };
    let decode = count(&|| {
        black_box(CheckRequest::decode(black_box(wire.as_slice())).unwrap());
    });
    let unrecorded = count(&|| {
        let check = CheckRequest::decode(black_box(wire.as_slice())).unwrap();
        let (decided, response) = service.answer(&check, now_ms());
        black_box((decided, response.encode_to_vec()));
    });
    let whole = count(&|| {
        black_box(one_check(&service, &shared, &wire));
    });
    println!(
        "allocations per check (bytes): decode {:.1} ({:.0}); decode, decide, answer, encode {:.1} ({:.0}); \
         the whole check with its record and the telemetry worker's share (audit record to a file) {:.1} ({:.0})",
        decode.0, decode.1, unrecorded.0, unrecorded.1, whole.0, whole.1,
    );

    let mut group = c.benchmark_group("check");
    group.bench_function("decode", |b| {
        b.iter(|| CheckRequest::decode(black_box(wire.as_slice())).unwrap());
    });
    group.bench_function("handler", |b| {
        b.iter(|| one_check(&service, &shared, black_box(&wire)));
    });
    group.finish();
    runtime.block_on(shared.telemetry.flush());
    drop(sidecar);
}

criterion_group!(benches, bench);
criterion_main!(benches);
