//! X.509-SVID verification: one generated fixture and one test per rejection
//! reason, each asserting the exact [`IdentityError`] (variant and reason), so
//! that a fixture cannot pass by tripping over a different check than the one
//! it is named after.
//!
//! Every certificate is made fresh by `hallpass-testkit` (rcgen); nothing is pasted.

use std::time::Duration;

use hallpass_identity::{
    IdentityError, SpiffeId, TrustBundleSet, TrustDomain, VerifiedSvid, X509Bundle,
    X509SvidVerifier, decode_envoy_certificate, normalize_serial,
};
use hallpass_testkit::{Ca, Svid, SvidSpec};
use rcgen::{ExtendedKeyUsagePurpose, KeyUsagePurpose};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

const TD: &str = "hospital.example";
const OTHER_TD: &str = "imaging-vendor.example";
const ID: &str = "spiffe://hospital.example/ns/clinical/sa/ehr-api";
const VENDOR_ID: &str = "spiffe://imaging-vendor.example/uploader";

// ---------------------------------------------------------------- helpers

/// Unix seconds, for certificate windows.
fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Unix milliseconds, the verifier's clock.
fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap()
}

/// Unix seconds as milliseconds.
fn ms(secs: i64) -> i64 {
    secs * 1000
}

/// A bundle set trusting each of `cas` for its own trust domain.
fn bundles(cas: &[&Ca]) -> TrustBundleSet {
    let mut set = TrustBundleSet::new();
    for ca in cas {
        let td = TrustDomain::new(ca.trust_domain()).unwrap();
        let bundle = X509Bundle::from_pem(&td, ca.cert_pem().as_bytes()).unwrap();
        set.insert(td, bundle);
    }
    set
}

fn der(svid: &Svid) -> CertificateDer<'static> {
    CertificateDer::from(svid.cert_der.clone())
}

/// Verify a leaf with no intermediates at the current time, default skew.
fn verify(set: &TrustBundleSet, svid: &Svid) -> Result<VerifiedSvid, IdentityError> {
    X509SvidVerifier::default().verify(set, &der(svid), &[], now_ms())
}

/// Issue a leaf shaped by `shape` from a fresh root of `TD`, and verify it
/// against that root.
fn verify_shaped(shape: impl FnOnce(&mut SvidSpec)) -> Result<VerifiedSvid, IdentityError> {
    let ca = Ca::root(TD).unwrap();
    let mut spec = SvidSpec::new(ID);
    shape(&mut spec);
    let svid = ca.issue_with(&spec).unwrap();
    verify(&bundles(&[&ca]), &svid)
}

/// Base64 without padding concerns, enough for building PEM fixtures by hand.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn pem_block(label: &str, body: &[u8]) -> String {
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        base64(body)
    )
}

// ---------------------------------------------------------------- happy paths

#[test]
fn valid_svid_returns_its_id_and_not_after() {
    let ca = Ca::root(TD).unwrap();
    let t = now();
    let mut spec = SvidSpec::new(ID);
    spec.not_before = OffsetDateTime::from_unix_timestamp(t - 3600).unwrap();
    spec.not_after = OffsetDateTime::from_unix_timestamp(t + 7200).unwrap();
    let svid = ca.issue_with(&spec).unwrap();

    let verified = verify(&bundles(&[&ca]), &svid).unwrap();
    assert_eq!(verified.id, SpiffeId::new(ID).unwrap());
    assert_eq!(verified.id.to_string(), ID);
    assert_eq!(verified.not_after, t + 7200);
}

#[test]
fn envoy_url_encoded_certificate_round_trips_and_verifies() {
    let ca = Ca::root(TD).unwrap();
    let svid = ca.issue(ID).unwrap();
    let encoded = svid.envoy_encoded();
    // The encoding really is URL-encoding, not plain PEM.
    assert!(
        encoded.starts_with("-----BEGIN%20CERTIFICATE-----%0A"),
        "{encoded}"
    );

    let certs = decode_envoy_certificate(&encoded).unwrap();
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0].as_ref(), svid.cert_der.as_slice());

    let verified = X509SvidVerifier::default()
        .verify(&bundles(&[&ca]), &certs[0], &certs[1..], now_ms())
        .unwrap();
    assert_eq!(verified.id.to_string(), ID);
}

#[test]
fn envoy_encoded_chain_is_decoded_leaf_first() {
    let root = Ca::root(TD).unwrap();
    let intermediate = root.intermediate().unwrap();
    let svid = intermediate.issue(ID).unwrap();
    let encoded = percent_encode(&svid.full_chain_pem());

    let certs = decode_envoy_certificate(&encoded).unwrap();
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[0].as_ref(), svid.cert_der.as_slice());
    assert_eq!(certs[1].as_ref(), intermediate.cert_der());
    let verified = X509SvidVerifier::default()
        .verify(&bundles(&[&root]), &certs[0], &certs[1..], now_ms())
        .unwrap();
    assert_eq!(verified.id.to_string(), ID);
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

// ---------------------------------------------------------------- decoding

#[test]
fn empty_certificate_field_is_no_credential() {
    assert_eq!(
        decode_envoy_certificate("").unwrap_err(),
        IdentityError::NoCredential
    );
}

#[test]
fn text_that_is_not_pem_is_malformed() {
    assert_eq!(
        decode_envoy_certificate("hello%20world, definitely not a certificate").unwrap_err(),
        IdentityError::Malformed("no certificate in PEM")
    );
}

#[test]
fn pem_with_broken_base64_is_malformed() {
    let pem = "-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n";
    assert_eq!(
        decode_envoy_certificate(&percent_encode(pem)).unwrap_err(),
        IdentityError::Malformed("invalid PEM")
    );
}

#[test]
fn pem_holding_only_a_private_key_is_malformed() {
    // A real key PEM, but no CERTIFICATE section at all.
    let ca = Ca::root(TD).unwrap();
    let svid = ca.issue(ID).unwrap();
    assert_eq!(
        decode_envoy_certificate(&percent_encode(&svid.key_pem)).unwrap_err(),
        IdentityError::Malformed("no certificate in PEM")
    );
}

#[test]
fn certificate_pem_with_non_certificate_bytes_is_malformed() {
    // Well-formed PEM armour around bytes that are not DER.
    let pem = pem_block("CERTIFICATE", b"these bytes are not an X.509 certificate");
    let certs = decode_envoy_certificate(&percent_encode(&pem)).unwrap();
    assert_eq!(certs.len(), 1);
    let err = X509SvidVerifier::default()
        .verify(&TrustBundleSet::new(), &certs[0], &[], now_ms())
        .unwrap_err();
    assert_eq!(err, IdentityError::Malformed("invalid DER"));
}

#[test]
fn certificate_with_trailing_bytes_is_malformed() {
    let ca = Ca::root(TD).unwrap();
    let svid = ca.issue(ID).unwrap();
    let mut bytes = svid.cert_der.clone();
    bytes.extend_from_slice(b"\x00\x00trailing");
    let err = X509SvidVerifier::default()
        .verify(
            &bundles(&[&ca]),
            &CertificateDer::from(bytes),
            &[],
            now_ms(),
        )
        .unwrap_err();
    assert_eq!(
        err,
        IdentityError::Malformed("trailing data after certificate")
    );
}

#[test]
fn oversized_certificate_field_is_malformed() {
    // A valid SVID padded with (ignored) newlines: exactly 64 KiB is accepted,
    // one byte more is refused before any parsing.
    const LIMIT: usize = 64 * 1024;
    let ca = Ca::root(TD).unwrap();
    let mut encoded = ca.issue(ID).unwrap().envoy_encoded();
    encoded.push_str(&"\n".repeat(LIMIT - encoded.len()));
    assert_eq!(encoded.len(), LIMIT);
    assert_eq!(decode_envoy_certificate(&encoded).unwrap().len(), 1);

    encoded.push('\n');
    assert_eq!(
        decode_envoy_certificate(&encoded).unwrap_err(),
        IdentityError::Malformed("certificate field too large")
    );
}

#[test]
fn more_than_eight_certificates_is_malformed() {
    let ca = Ca::root(TD).unwrap();
    let pem = ca.issue(ID).unwrap().cert_pem;
    assert_eq!(decode_envoy_certificate(&pem.repeat(8)).unwrap().len(), 8);
    assert_eq!(
        decode_envoy_certificate(&pem.repeat(9)).unwrap_err(),
        IdentityError::Malformed("too many certificates")
    );
}

// ---------------------------------------------------------------- X509-SVID leaf rules

#[test]
fn leaf_that_is_a_ca_is_rejected() {
    let err = verify_shaped(|s| {
        s.is_ca = true;
        // Keep key usage SVID-shaped, so only the CA flag is wrong.
        s.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    })
    .unwrap_err();
    assert_eq!(err, IdentityError::NotAnSvid("leaf is a CA"));
}

#[test]
fn leaf_without_key_usage_is_rejected() {
    let err = verify_shaped(|s| s.key_usages.clear()).unwrap_err();
    assert_eq!(err, IdentityError::NotAnSvid("key usage extension missing"));
}

#[test]
fn leaf_with_key_cert_sign_is_rejected() {
    let err = verify_shaped(|s| {
        s.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
        ];
    })
    .unwrap_err();
    assert_eq!(
        err,
        IdentityError::NotAnSvid("leaf may sign certificates or CRLs")
    );
}

#[test]
fn leaf_with_crl_sign_is_rejected() {
    let err = verify_shaped(|s| {
        s.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign];
    })
    .unwrap_err();
    assert_eq!(
        err,
        IdentityError::NotAnSvid("leaf may sign certificates or CRLs")
    );
}

#[test]
fn leaf_without_digital_signature_is_rejected() {
    let err = verify_shaped(|s| s.key_usages = vec![KeyUsagePurpose::KeyEncipherment]).unwrap_err();
    assert_eq!(
        err,
        IdentityError::NotAnSvid("key usage lacks digitalSignature")
    );
}

#[test]
fn leaf_whose_eku_lacks_client_auth_is_rejected() {
    let err = verify_shaped(|s| s.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth])
        .unwrap_err();
    assert_eq!(
        err,
        IdentityError::NotAnSvid("extended key usage lacks clientAuth")
    );
}

#[test]
fn leaf_without_eku_extension_is_accepted() {
    // The X509-SVID spec makes EKU optional; only a present EKU must allow clientAuth.
    let verified = verify_shaped(|s| s.extended_key_usages.clear()).unwrap();
    assert_eq!(verified.id.to_string(), ID);
}

#[test]
fn leaf_without_any_san_is_rejected() {
    let err = verify_shaped(|s| s.uris.clear()).unwrap_err();
    assert_eq!(err, IdentityError::NotAnSvid("no subject alternative name"));
}

#[test]
fn leaf_without_uri_san_is_rejected() {
    let err = verify_shaped(|s| {
        s.uris.clear();
        s.dns = vec!["ehr-api.clinical.svc".into()];
    })
    .unwrap_err();
    assert_eq!(err, IdentityError::NotAnSvid("no URI SAN"));
}

#[test]
fn leaf_with_two_uri_sans_is_rejected() {
    let err = verify_shaped(|s| {
        s.uris
            .push("spiffe://hospital.example/ns/clinical/sa/lab-results".into());
    })
    .unwrap_err();
    assert_eq!(err, IdentityError::NotAnSvid("more than one URI SAN"));
}

#[test]
fn leaf_with_dns_san_next_to_the_spiffe_id_is_accepted() {
    let verified = verify_shaped(|s| s.dns = vec!["ehr-api.clinical.svc".into()]).unwrap();
    assert_eq!(verified.id.to_string(), ID);
}

#[test]
fn non_spiffe_uri_san_is_rejected() {
    let err = verify_shaped(|s| s.uris = vec!["https://hospital.example/ns/clinical".into()])
        .unwrap_err();
    assert_eq!(
        err,
        IdentityError::NotAnSvid("URI SAN is not a valid SPIFFE ID")
    );
}

#[test]
fn spiffe_id_without_path_is_rejected() {
    // A trust domain ID names the CA, never a workload.
    let err = verify_shaped(|s| s.uris = vec!["spiffe://hospital.example".into()]).unwrap_err();
    assert_eq!(
        err,
        IdentityError::NotAnSvid("SPIFFE ID of a workload must have a path")
    );
}

#[test]
fn uppercase_trust_domain_in_san_is_rejected_as_non_canonical() {
    // The spiffe crate would lower-case this; hallpass refuses instead, even
    // though the chain to the (lower-case) trust domain's bundle is valid.
    let err = verify_shaped(|s| {
        s.uris = vec!["spiffe://Hospital.Example/ns/clinical/sa/ehr-api".into()];
    })
    .unwrap_err();
    assert_eq!(
        err,
        IdentityError::NotAnSvid("SPIFFE ID is not in canonical (lower-case) form")
    );
}

#[test]
fn uppercase_scheme_in_san_is_rejected_as_non_canonical() {
    let err = verify_shaped(|s| {
        s.uris = vec!["SPIFFE://hospital.example/ns/clinical/sa/ehr-api".into()];
    })
    .unwrap_err();
    assert_eq!(
        err,
        IdentityError::NotAnSvid("SPIFFE ID is not in canonical (lower-case) form")
    );
}

// ---------------------------------------------------------------- trust

#[test]
fn trust_domain_without_bundle_is_untrusted() {
    let hospital = Ca::root(TD).unwrap();
    let vendor = Ca::root(OTHER_TD).unwrap();
    let svid = vendor.issue(VENDOR_ID).unwrap();
    let err = verify(&bundles(&[&hospital]), &svid).unwrap_err();
    assert_eq!(
        err,
        IdentityError::UntrustedTrustDomain(TrustDomain::new(OTHER_TD).unwrap())
    );
}

#[test]
fn empty_bundle_set_trusts_nothing() {
    let ca = Ca::root(TD).unwrap();
    let svid = ca.issue(ID).unwrap();
    let err = verify(&TrustBundleSet::new(), &svid).unwrap_err();
    assert_eq!(
        err,
        IdentityError::UntrustedTrustDomain(TrustDomain::new(TD).unwrap())
    );
}

#[test]
fn rogue_ca_of_the_same_trust_domain_is_rejected() {
    let real = Ca::root(TD).unwrap();
    let rogue = Ca::root(TD).unwrap();
    let svid = rogue.issue(ID).unwrap();
    let err = verify(&bundles(&[&real]), &svid).unwrap_err();
    // Same issuer name as the real root, different key: the signature fails.
    assert!(matches!(err, IdentityError::ChainInvalid(_)), "{err:?}");
}

#[test]
fn a_domains_ca_never_vouches_for_another_domains_ids() {
    // Both bundles are loaded; the hospital CA signs a leaf claiming a vendor ID.
    let hospital = Ca::root(TD).unwrap();
    let vendor = Ca::root(OTHER_TD).unwrap();
    let forged = hospital.issue(VENDOR_ID).unwrap();
    let set = bundles(&[&hospital, &vendor]);
    let err = verify(&set, &forged).unwrap_err();
    assert!(
        matches!(&err, IdentityError::ChainInvalid(why) if why.contains("UnknownIssuer")),
        "{err:?}"
    );
    // Even handing the hospital CA over as an "intermediate" does not help.
    let err = X509SvidVerifier::default()
        .verify(
            &set,
            &der(&forged),
            &[CertificateDer::from(hospital.cert_der().to_vec())],
            now_ms(),
        )
        .unwrap_err();
    assert!(matches!(err, IdentityError::ChainInvalid(_)), "{err:?}");
    // The genuine vendor SVID verifies with the same set.
    let genuine = vendor.issue(VENDOR_ID).unwrap();
    assert_eq!(verify(&set, &genuine).unwrap().id.to_string(), VENDOR_ID);
}

#[test]
fn bundle_without_certificates_is_refused() {
    let td = TrustDomain::new(TD).unwrap();
    let err = X509Bundle::from_pem(&td, b"no PEM here").unwrap_err();
    assert!(
        matches!(&err, IdentityError::Bundle { trust_domain, .. } if trust_domain == TD),
        "{err:?}"
    );
}

// ---------------------------------------------------------------- validity window

#[test]
fn expired_leaf_is_rejected() {
    let err = verify_shaped(|s| *s = SvidSpec::new(ID).expired()).unwrap_err();
    assert_eq!(err, IdentityError::Expired);
}

#[test]
fn not_yet_valid_leaf_is_rejected() {
    let err = verify_shaped(|s| *s = SvidSpec::new(ID).not_yet_valid()).unwrap_err();
    assert_eq!(err, IdentityError::Expired);
}

/// A root, a leaf valid over `[t, t + 1h]` and the set trusting the root.
fn windowed_leaf(t: i64) -> (TrustBundleSet, CertificateDer<'static>) {
    let ca = Ca::root(TD).unwrap();
    let mut spec = SvidSpec::new(ID);
    spec.not_before = OffsetDateTime::from_unix_timestamp(t).unwrap();
    spec.not_after = OffsetDateTime::from_unix_timestamp(t + 3600).unwrap();
    let svid = ca.issue_with(&spec).unwrap();
    (bundles(&[&ca]), der(&svid))
}

#[test]
fn clock_skew_is_tolerated_on_both_edges_and_no_further() {
    let t = now();
    let (set, leaf) = windowed_leaf(t);
    let skew30 = X509SvidVerifier::new(Duration::from_secs(30));
    let strict = X509SvidVerifier::new(Duration::ZERO);

    // Just before not_before, within the skew: accepted (our clock may be behind).
    assert_eq!(
        skew30
            .verify(&set, &leaf, &[], ms(t - 29))
            .unwrap()
            .id
            .to_string(),
        ID
    );
    assert_eq!(
        skew30
            .verify(&set, &leaf, &[], ms(t - 30))
            .unwrap()
            .id
            .to_string(),
        ID
    );
    assert_eq!(
        skew30.verify(&set, &leaf, &[], ms(t - 30) - 1).unwrap_err(),
        IdentityError::Expired
    );
    assert_eq!(
        strict.verify(&set, &leaf, &[], ms(t) - 1).unwrap_err(),
        IdentityError::Expired
    );
    assert!(strict.verify(&set, &leaf, &[], ms(t)).is_ok());
    assert!(strict.verify(&set, &leaf, &[], ms(t) + 1).is_ok());

    // Just after not_after, within the skew: accepted. notAfter is inclusive
    // to its second and not a millisecond more.
    let end = t + 3600;
    assert!(skew30.verify(&set, &leaf, &[], ms(end + 30)).is_ok());
    assert_eq!(
        skew30
            .verify(&set, &leaf, &[], ms(end + 30) + 1)
            .unwrap_err(),
        IdentityError::Expired
    );
    assert!(strict.verify(&set, &leaf, &[], ms(end) - 1).is_ok());
    assert!(strict.verify(&set, &leaf, &[], ms(end)).is_ok());
    assert_eq!(
        strict.verify(&set, &leaf, &[], ms(end) + 1).unwrap_err(),
        IdentityError::Expired
    );
    assert_eq!(
        strict.verify(&set, &leaf, &[], ms(end) + 999).unwrap_err(),
        IdentityError::Expired
    );
}

/// A certificate whose `notBefore` is later than its `notAfter`, both within
/// the skew of now, signed by a trusted CA: once a panic (`i64::clamp` with
/// min > max); an inverted window has no instant of validity.
#[test]
fn inverted_validity_window_within_the_skew_is_rejected_without_panic() {
    let t = now();
    for (nb, na) in [(t + 10, t + 5), (t + 1, t), (t - 5, t - 10)] {
        let err = verify_shaped(|s| {
            s.not_before = OffsetDateTime::from_unix_timestamp(nb).unwrap();
            s.not_after = OffsetDateTime::from_unix_timestamp(na).unwrap();
        })
        .unwrap_err();
        assert_eq!(
            err,
            IdentityError::Malformed("validity window ends before it starts"),
            "notBefore {nb}, notAfter {na}"
        );
    }
}

#[test]
fn leaf_that_starts_within_the_skew_is_accepted_now() {
    // Issued by a CA whose clock runs 10 s ahead of ours.
    let t = now();
    let verified = verify_shaped(|s| {
        s.not_before = OffsetDateTime::from_unix_timestamp(t + 10).unwrap();
    })
    .unwrap();
    assert_eq!(verified.id.to_string(), ID);
}

#[test]
fn leaf_of_an_expired_root_is_rejected() {
    // The leaf's own window is fine but its root (the trust anchor) expired a
    // day ago. webpki ignores anchor validity, so hallpass checks it itself.
    let t = now();
    let ca = Ca::root_with_validity(
        TD,
        OffsetDateTime::from_unix_timestamp(t - 10 * 86_400).unwrap(),
        OffsetDateTime::from_unix_timestamp(t - 86_400).unwrap(),
    )
    .unwrap();
    let svid = ca.issue(ID).unwrap();
    let err = verify(&bundles(&[&ca]), &svid).unwrap_err();
    assert_eq!(err, IdentityError::Expired);
}

#[test]
fn expired_root_in_a_rotating_bundle_vouches_for_nothing() {
    // A bundle mid-rotation holds the old (expired) and the new root of the
    // same trust domain. Leaves of the new root verify; leaves of the old one
    // do not, even though their own window is fine.
    let t = now();
    let old = Ca::root_with_validity(
        TD,
        OffsetDateTime::from_unix_timestamp(t - 10 * 86_400).unwrap(),
        OffsetDateTime::from_unix_timestamp(t - 86_400).unwrap(),
    )
    .unwrap();
    let new = Ca::root(TD).unwrap();
    let td = TrustDomain::new(TD).unwrap();
    let pem = format!("{}{}", old.cert_pem(), new.cert_pem());
    let mut set = TrustBundleSet::new();
    set.insert(
        td.clone(),
        X509Bundle::from_pem(&td, pem.as_bytes()).unwrap(),
    );

    assert_eq!(
        verify(&set, &new.issue(ID).unwrap())
            .unwrap()
            .id
            .to_string(),
        ID
    );
    assert_eq!(
        verify(&set, &old.issue(ID).unwrap()).unwrap_err(),
        IdentityError::Expired
    );
}

// ---------------------------------------------------------------- intermediates

#[test]
fn intermediate_chain_verifies_when_the_intermediate_is_passed() {
    let root = Ca::root(TD).unwrap();
    let intermediate = root.intermediate().unwrap();
    let svid = intermediate.issue(ID).unwrap();
    let chain = [CertificateDer::from(intermediate.cert_der().to_vec())];
    let verified = X509SvidVerifier::default()
        .verify(&bundles(&[&root]), &der(&svid), &chain, now_ms())
        .unwrap();
    assert_eq!(verified.id.to_string(), ID);
}

#[test]
fn intermediate_chain_fails_without_the_intermediate() {
    let root = Ca::root(TD).unwrap();
    let intermediate = root.intermediate().unwrap();
    let svid = intermediate.issue(ID).unwrap();
    let err = verify(&bundles(&[&root]), &svid).unwrap_err();
    assert!(
        matches!(&err, IdentityError::ChainInvalid(why) if why.contains("UnknownIssuer")),
        "{err:?}"
    );
}

#[test]
fn intermediate_of_a_rogue_root_does_not_help() {
    let root = Ca::root(TD).unwrap();
    let rogue_intermediate = Ca::root(TD).unwrap().intermediate().unwrap();
    let svid = rogue_intermediate.issue(ID).unwrap();
    let chain = [CertificateDer::from(rogue_intermediate.cert_der().to_vec())];
    let err = X509SvidVerifier::default()
        .verify(&bundles(&[&root]), &der(&svid), &chain, now_ms())
        .unwrap_err();
    assert!(matches!(err, IdentityError::ChainInvalid(_)), "{err:?}");
}

#[test]
fn serials_lose_their_leading_zeros_only() {
    assert_eq!(normalize_serial(&[0, 0, 1, 0, 2]), [1, 0, 2]);
    assert_eq!(normalize_serial(&[7]), [7]);
    assert_eq!(normalize_serial(&[0, 0]), [] as [u8; 0]);
    assert_eq!(normalize_serial(&[]), [] as [u8; 0]);
}
