//! Properties of the identity edge: hostile input never panics and never
//! proves an identity, and the strict SPIFFE ID parser only ever accepts the
//! canonical spelling.

use std::sync::LazyLock;

use hallpass_identity::{
    TrustBundleSet, TrustDomain, X509Bundle, X509SvidVerifier, decode_envoy_certificate,
    parse_spiffe_id_strict,
};
use hallpass_testkit::{Ca, Svid};
use proptest::prelude::*;
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

const TD: &str = "hospital.example";
const ID: &str = "spiffe://hospital.example/ns/clinical/sa/ehr-api";

struct Fixture {
    bundles: TrustBundleSet,
    svid: Svid,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let ca = Ca::root(TD).unwrap();
    let td = TrustDomain::new(TD).unwrap();
    let mut bundles = TrustBundleSet::new();
    bundles.insert(
        td.clone(),
        X509Bundle::from_pem(&td, ca.cert_pem().as_bytes()).unwrap(),
    );
    let svid = ca.issue(ID).unwrap();
    Fixture { bundles, svid }
});

/// Unix milliseconds, the verifier's clock.
fn now() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap()
}

/// Decode the field as the server does, then verify the leaf with the rest as
/// intermediates.
fn decode_and_verify(encoded: &str) -> Result<String, String> {
    let certs = decode_envoy_certificate(encoded).map_err(|e| e.to_string())?;
    let (leaf, rest) = certs.split_first().ok_or("decoded to nothing")?;
    X509SvidVerifier::default()
        .verify(&FIXTURE.bundles, leaf, rest, now())
        .map(|v| v.id.to_string())
        .map_err(|e| e.to_string())
}

/// A canonical SPIFFE ID path segment (SPIFFE charset, not a dot segment).
fn segment() -> impl Strategy<Value = String> {
    "[a-z0-9_.-]{1,12}".prop_filter("dot segment", |s| s != "." && s != "..")
}

fn trust_domain() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9.-]{0,20}"
}

fn canonical_id() -> impl Strategy<Value = (String, Vec<String>)> {
    (trust_domain(), prop::collection::vec(segment(), 1..6))
}

fn join(td: &str, segments: &[String]) -> String {
    let mut id = format!("spiffe://{td}");
    for s in segments {
        id.push('/');
        id.push_str(s);
    }
    id
}

/// Ways to spoil a canonical ID; each must be rejected.
#[derive(Debug, Clone)]
enum Defect {
    DotSegment(usize),
    DotDotSegment(usize),
    EmptySegment(usize),
    TrailingSlash,
    Percent(usize, String),
    Query(String),
    Fragment(String),
    UppercaseTrustDomain(usize),
    UppercaseScheme,
    NoPath,
}

fn defect() -> impl Strategy<Value = Defect> {
    prop_oneof![
        any::<usize>().prop_map(Defect::DotSegment),
        any::<usize>().prop_map(Defect::DotDotSegment),
        any::<usize>().prop_map(Defect::EmptySegment),
        Just(Defect::TrailingSlash),
        (any::<usize>(), "[0-9A-Fa-f]{2}").prop_map(|(i, h)| Defect::Percent(i, h)),
        "[a-z0-9=&]{0,10}".prop_map(Defect::Query),
        "[a-z0-9]{0,10}".prop_map(Defect::Fragment),
        any::<usize>().prop_map(Defect::UppercaseTrustDomain),
        Just(Defect::UppercaseScheme),
        Just(Defect::NoPath),
    ]
}

fn spoil(td: &str, segments: &[String], defect: &Defect) -> String {
    let mut segs = segments.to_vec();
    let at = |i: usize, len: usize| i % (len + 1);
    match defect {
        Defect::DotSegment(i) => {
            let i = at(*i, segs.len());
            segs.insert(i, ".".into());
            join(td, &segs)
        }
        Defect::DotDotSegment(i) => {
            let i = at(*i, segs.len());
            segs.insert(i, "..".into());
            join(td, &segs)
        }
        Defect::EmptySegment(i) => {
            let i = at(*i, segs.len());
            segs.insert(i, String::new());
            join(td, &segs)
        }
        Defect::TrailingSlash => format!("{}/", join(td, &segs)),
        Defect::Percent(i, hex) => {
            let i = i % segs.len();
            segs[i].push('%');
            segs[i].push_str(hex);
            join(td, &segs)
        }
        Defect::Query(q) => format!("{}?{q}", join(td, &segs)),
        Defect::Fragment(f) => format!("{}#{f}", join(td, &segs)),
        Defect::UppercaseTrustDomain(i) => {
            // Upper-case one letter of the trust domain (add one if it has none).
            let letters: Vec<usize> = td
                .char_indices()
                .filter(|(_, c)| c.is_ascii_lowercase())
                .map(|(i, _)| i)
                .collect();
            let td = if letters.is_empty() {
                format!("X{td}")
            } else {
                let pos = letters[i % letters.len()];
                let mut t = td.to_owned();
                t.replace_range(pos..=pos, &td[pos..=pos].to_ascii_uppercase());
                t
            };
            join(&td, &segs)
        }
        Defect::UppercaseScheme => join(td, &segs).replacen("spiffe", "SPIFFE", 1),
        Defect::NoPath => join(td, &[]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics_and_never_proves_an_identity(s in any::<String>()) {
        prop_assert!(decode_and_verify(&s).is_err());
    }

    #[test]
    fn arbitrary_pem_armoured_bytes_never_prove_an_identity(
        body in "[A-Za-z0-9+/=\n%]{0,400}",
        label in prop_oneof![Just("CERTIFICATE".to_owned()), Just("PRIVATE KEY".to_owned()), "[A-Z ]{1,12}"],
        prefix in "[ -~\n]{0,20}",
    ) {
        let pem = format!("{prefix}-----BEGIN {label}-----\n{body}\n-----END {label}-----\n");
        prop_assert!(decode_and_verify(&pem).is_err());
    }

    #[test]
    fn arbitrary_der_never_panics_and_never_proves_an_identity(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        intermediate in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let leaf = CertificateDer::from(bytes);
        let chain = [CertificateDer::from(intermediate)];
        let result = X509SvidVerifier::default().verify(&FIXTURE.bundles, &leaf, &chain, now());
        prop_assert!(result.is_err());
    }

    /// Flipping bits of a genuine SVID can break it, but can never make it
    /// prove a different identity.
    #[test]
    fn mutated_svid_never_proves_another_identity(
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
    ) {
        let mut der = FIXTURE.svid.cert_der.clone();
        for (at, mask) in &flips {
            let i = at.index(der.len());
            der[i] ^= mask;
        }
        let result = X509SvidVerifier::default().verify(
            &FIXTURE.bundles,
            &CertificateDer::from(der.clone()),
            &[],
            now(),
        );
        if let Ok(verified) = result {
            prop_assert_eq!(verified.id.to_string(), ID);
        }
    }

    /// Truncating an envoy-encoded SVID never panics; cut anywhere before its
    /// END line it proves nothing, and past it the (whole) leaf still proves its ID.
    #[test]
    fn truncated_encoding_never_panics(cut in any::<prop::sample::Index>()) {
        let encoded = FIXTURE.svid.envoy_encoded();
        let end = cut.index(encoded.len());
        let body_end = encoded.find("-----END").unwrap() + "-----END%20CERTIFICATE-----".len();
        let result = decode_and_verify(&encoded[..end]);
        if end < body_end {
            prop_assert!(result.is_err(), "cut at {end}: {result:?}");
        } else {
            prop_assert_eq!(result, Ok(ID.to_owned()));
        }
    }

    #[test]
    fn canonical_ids_are_accepted_as_written((td, segs) in canonical_id()) {
        let text = join(&td, &segs);
        let id = parse_spiffe_id_strict(&text).unwrap();
        prop_assert_eq!(id.to_string(), text);
        prop_assert_eq!(id.trust_domain().as_str(), td.as_str());
    }

    #[test]
    fn spoiled_ids_are_rejected((td, segs) in canonical_id(), defect in defect()) {
        let text = spoil(&td, &segs, &defect);
        prop_assert!(
            parse_spiffe_id_strict(&text).is_err(),
            "accepted {text:?} ({defect:?})"
        );
    }

    #[test]
    fn arbitrary_text_is_only_accepted_in_canonical_form(s in "[ -~]{0,60}") {
        if let Ok(id) = parse_spiffe_id_strict(&s) {
            prop_assert_eq!(id.to_string(), s.clone());
            prop_assert!(!id.path().is_empty());
            prop_assert!(!s.contains(['%', '?', '#', '\\']));
            let td = id.trust_domain().as_str();
            prop_assert!(!td.chars().any(|c| c.is_ascii_uppercase()));
            prop_assert!(
                id.path().split('/').skip(1).all(|seg| !seg.is_empty() && seg != "." && seg != "..")
            );
        }
    }
}

#[test]
fn uppercase_in_the_path_is_legal_spiffe_and_kept_as_written() {
    // The SPIFFE spec allows upper-case letters in path segments (and they are
    // case-sensitive); only the scheme and trust domain must be lower case.
    let id = parse_spiffe_id_strict("spiffe://hospital.example/ns/Clinical").unwrap();
    assert_eq!(id.path(), "/ns/Clinical");
    assert!(parse_spiffe_id_strict("spiffe://Hospital.example/ns/clinical").is_err());
}
