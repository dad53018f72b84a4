//! What the verification cache saves per check.
//!
//! - `decode`: URL-decode and PEM-decode Envoy's `source.certificate`;
//! - `verify`: decode, the X509-SVID rules and the webpki chain check, as on a
//!   cache miss (leaf → root, and leaf → intermediate → root);
//! - `digest+hit`: the digest of the raw string and a cache lookup, as on a hit;
//! - `jwt ES256`: a JWT-SVID verification, for comparison;
//! - `cache/insert at cap N`: one new credential into a full cache of N
//!   entries (a flood's miss): the cost must not grow with N (the ratio of
//!   the 1,000,000 cap to the 4,096 one is the figure).
//!
//! Run: `cargo bench -p hallpass-identity --bench verify`.

// A benchmark stops loudly on the unexpected, like a test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use hallpass_identity::{
    JwtSvidVerifier, TrustBundleSet, TrustDomain, VerificationCache, X509Bundle, X509SvidVerifier,
    credential_digest, decode_envoy_certificate, parse_jwk,
};
use hallpass_testkit::{Ca, JwtAlg, JwtIssuer};

const EHR: &str = "spiffe://hospital.example/ns/clinical/sa/ehr-api";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn bench(c: &mut Criterion) {
    let td = TrustDomain::new("hospital.example").unwrap();
    let root = Ca::root("hospital.example").unwrap();
    let intermediate = root.intermediate().unwrap();
    let mut bundles = TrustBundleSet::new();
    bundles.insert(
        td.clone(),
        X509Bundle::from_pem(&td, root.cert_pem().as_bytes()).unwrap(),
    );
    let jwt = JwtIssuer::new("hospital.example", JwtAlg::Es256, "k1").unwrap();
    let mut keys = hallpass_identity::JwtAuthorities::new();
    keys.insert(
        "k1".into(),
        parse_jwk(jwt.public_jwk().to_string().as_bytes()).unwrap(),
    );
    bundles.insert_jwt(td, keys);
    let verifier = X509SvidVerifier::default();
    let direct = root.issue(EHR).unwrap().envoy_encoded();
    let via = intermediate.issue(EHR).unwrap();
    let via_leaf = via.envoy_encoded();
    let via_chain = decode_envoy_certificate(&{
        let mut c = via.clone();
        c.cert_pem = via.chain_pem.concat();
        c.envoy_encoded()
    })
    .unwrap();
    let token = jwt.mint_for(EHR, "lab-results").unwrap();
    let jwt_verifier = JwtSvidVerifier::new(vec!["lab-results".into()], Duration::from_secs(30));
    let cache = VerificationCache::new(4096);
    let key = credential_digest(&[b"x509", direct.as_bytes(), b""]);
    cache.insert(key, bundles.generation(), EHR.to_owned(), i64::MAX, now());

    let mut g = c.benchmark_group("identity");
    g.bench_function("decode", |b| {
        b.iter(|| decode_envoy_certificate(black_box(&direct)).unwrap())
    });
    g.bench_function("verify leaf->root", |b| {
        b.iter(|| {
            let certs = decode_envoy_certificate(black_box(&direct)).unwrap();
            verifier.verify(&bundles, &certs[0], &[], now()).unwrap()
        })
    });
    g.bench_function("verify leaf->intermediate->root", |b| {
        b.iter(|| {
            let certs = decode_envoy_certificate(black_box(&via_leaf)).unwrap();
            verifier
                .verify(&bundles, &certs[0], &via_chain, now())
                .unwrap()
        })
    });
    g.bench_function("digest+hit", |b| {
        b.iter(|| {
            let key = credential_digest(&[b"x509", black_box(direct.as_bytes()), b""]);
            cache.get(&key, bundles.generation(), now()).unwrap()
        })
    });
    g.bench_function("jwt ES256", |b| {
        b.iter(|| {
            jwt_verifier
                .verify(&bundles, black_box(&token), now())
                .unwrap()
        })
    });
    g.finish();
}

/// One insert of a new key into a full cache of `cap` entries.
fn bench_full_cache(c: &mut Criterion) {
    let mut g = c.benchmark_group("cache");
    for cap in [4_096usize, 1_000_000] {
        let cache = VerificationCache::new(cap);
        let mut n = 0u64;
        for _ in 0..cap {
            n += 1;
            cache.insert(credential_digest(&[&n.to_be_bytes()]), 1, n, i64::MAX, 0);
        }
        g.bench_function(format!("insert at cap {cap}"), |b| {
            b.iter(|| {
                n += 1;
                let key = credential_digest(&[&n.to_be_bytes()]);
                black_box(cache.insert(key, 1, n, i64::MAX, 0))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench, bench_full_cache);
criterion_main!(benches);
