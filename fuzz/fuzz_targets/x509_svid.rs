//! Certificate input (Envoy's URL-encoded PEM, or raw DER): never an identity
//! unless it chains to the bundle, which the fuzzer cannot produce.
#![no_main]

use std::sync::OnceLock;

use hallpass_identity::{TrustBundleSet, TrustDomain, X509Bundle, X509SvidVerifier, decode_envoy_certificate};
use libfuzzer_sys::fuzz_target;
use rustls_pki_types::CertificateDer;

fn bundles() -> &'static TrustBundleSet {
    static SET: OnceLock<TrustBundleSet> = OnceLock::new();
    SET.get_or_init(|| {
        let td = TrustDomain::new("hospital.example").expect("td");
        let ca = hallpass_testkit::Ca::root("hospital.example").expect("ca");
        let mut set = TrustBundleSet::new();
        set.insert(td.clone(), X509Bundle::from_pem(&td, ca.cert_pem().as_bytes()).expect("bundle"));
        set
    })
}

fuzz_target!(|data: &[u8]| {
    let verifier = X509SvidVerifier::default();
    let now = 1_800_000_000_000; // Unix milliseconds
    // As Envoy sends it.
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(certs) = decode_envoy_certificate(text)
    {
        assert!(certs.len() <= 8);
        let (leaf, rest) = certs.split_first().expect("decode returns at least one");
        assert!(verifier.verify(bundles(), leaf, rest, now).is_err());
    }
    // As raw DER.
    let der = CertificateDer::from(data);
    assert!(verifier.verify(bundles(), &der, &[], now).is_err());
});
