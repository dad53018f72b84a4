//! JWT-SVID input: nothing forged by the fuzzer ever verifies.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use hallpass_identity::{JwtSvidVerifier, TrustBundleSet, TrustDomain, parse_jwk};
use hallpass_testkit::{JwtAlg, JwtIssuer};
use libfuzzer_sys::fuzz_target;

fn setup() -> &'static (TrustBundleSet, JwtSvidVerifier) {
    static SETUP: OnceLock<(TrustBundleSet, JwtSvidVerifier)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let issuer = JwtIssuer::new("hospital.example", JwtAlg::Es256, "k1").expect("issuer");
        let mut keys = hallpass_identity::JwtAuthorities::new();
        keys.insert("k1".into(), parse_jwk(issuer.public_jwk().to_string().as_bytes()).expect("jwk"));
        let mut bundles = TrustBundleSet::new();
        bundles.insert_jwt(TrustDomain::new("hospital.example").expect("td"), keys);
        // The private key is dropped here: no valid token can exist.
        (bundles, JwtSvidVerifier::new(vec!["lab-results".into()], Duration::from_secs(30)))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let (bundles, verifier) = setup();
    assert!(verifier.verify(bundles, token, 1_800_000_000_000).is_err(), "a forged token verified");
});
