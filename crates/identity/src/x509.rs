//! X.509-SVID verification: Envoy's certificate encoding, the SVID leaf rules
//! and the signature chain to the bundle of the ID's own trust domain.

use std::time::Duration;

use percent_encoding::percent_decode_str;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use spiffe::SpiffeId;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::{IdentityError, TrustBundleSet};

/// Largest `source.certificate` value accepted. A leaf SVID is 1–3 KiB; the cap
/// keeps hostile input from costing more than a bounded parse.
const MAX_ENCODED_CERT_LEN: usize = 64 * 1024;
/// Largest number of certificates in one chain (leaf plus intermediates).
const MAX_CHAIN_LEN: usize = 8;

/// A caller identity proven by an X.509-SVID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSvid {
    /// The SPIFFE ID from the leaf's URI SAN.
    pub id: SpiffeId,
    /// Unix time from which the leaf is valid.
    pub not_before: i64,
    /// Unix time at which the leaf expires.
    pub not_after: i64,
    /// The leaf's serial number, big-endian, without leading zero bytes.
    pub serial: Vec<u8>,
}

/// Parse a SPIFFE ID and insist on its canonical spelling.
///
/// The `spiffe` crate accepts an upper-case scheme or trust domain and
/// normalises it; a credential that is not already canonical is rejected, so
/// that the string hallpass logs and matches is the string the CA signed.
pub fn parse_spiffe_id_strict(uri: &str) -> Result<SpiffeId, &'static str> {
    let id = SpiffeId::new(uri).map_err(|_| "URI SAN is not a valid SPIFFE ID")?;
    if id.path().is_empty() {
        return Err("SPIFFE ID of a workload must have a path");
    }
    if id.to_string() != uri {
        return Err("SPIFFE ID is not in canonical (lower-case) form");
    }
    Ok(id)
}

/// A workload's SPIFFE ID as a person writes it (a config key, an
/// annotation): the rules of [`parse_spiffe_id_strict`], with messages that
/// say what to write rather than what a certificate got wrong.
pub fn parse_written_spiffe_id(text: &str) -> Result<SpiffeId, String> {
    const FORM: &str = "spiffe://<trust domain>/<path>";
    if !text.starts_with("spiffe://") {
        let lower = text.to_ascii_lowercase();
        return Err(if lower.starts_with("spiffe://") {
            format!("`{text}`: write the scheme in lower case, spiffe://")
        } else {
            format!(
                "`{text}` is not a SPIFFE ID: it must be `{FORM}`, \
                 e.g. spiffe://hospital.example/ns/clinical/sa/lab-results"
            )
        });
    }
    let id =
        SpiffeId::new(text).map_err(|e| format!("`{text}` is not a SPIFFE ID ({FORM}): {e}"))?;
    if id.path().is_empty() {
        return Err(format!(
            "`{text}` names a trust domain only; a workload's SPIFFE ID has a path: `{FORM}`"
        ));
    }
    if id.to_string() != text {
        return Err(format!(
            "`{text}`: write SPIFFE IDs in canonical (lower-case) form: `{id}`"
        ));
    }
    Ok(id)
}

/// Decode Envoy's `attributes.source.certificate`: URL-encoded PEM.
///
/// Returns every certificate in the PEM, leaf first.
pub fn decode_envoy_certificate(
    encoded: &str,
) -> Result<Vec<CertificateDer<'static>>, IdentityError> {
    if encoded.is_empty() {
        return Err(IdentityError::NoCredential);
    }
    if encoded.len() > MAX_ENCODED_CERT_LEN {
        return Err(IdentityError::Malformed("certificate field too large"));
    }
    let pem: Vec<u8> = percent_decode_str(encoded).collect();
    let mut certs = Vec::new();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|_| IdentityError::Malformed("invalid PEM"))?;
        if certs.len() == MAX_CHAIN_LEN {
            return Err(IdentityError::Malformed("too many certificates"));
        }
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(IdentityError::Malformed("no certificate in PEM"));
    }
    Ok(certs)
}

/// Verifies X.509-SVIDs against a [`TrustBundleSet`].
#[derive(Debug, Clone)]
pub struct X509SvidVerifier {
    clock_skew: Duration,
}

impl Default for X509SvidVerifier {
    fn default() -> Self {
        Self::new(Duration::from_secs(30))
    }
}

impl X509SvidVerifier {
    /// A verifier that tolerates `clock_skew` on either edge of the validity window.
    pub fn new(clock_skew: Duration) -> Self {
        Self { clock_skew }
    }

    /// Verify `leaf` as an X.509-SVID and return the SPIFFE ID it proves.
    ///
    /// `intermediates` are untrusted helpers for chain building (for example
    /// from XFCC `Chain=`); trust comes only from the bundle of the ID's own
    /// trust domain. `now_ms` is Unix milliseconds: a certificate's window is
    /// inclusive of its `notAfter` second and no more, so the time is not
    /// truncated to whole seconds before it is compared.
    pub fn verify(
        &self,
        bundles: &TrustBundleSet,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now_ms: i64,
    ) -> Result<VerifiedSvid, IdentityError> {
        let (rest, cert) =
            X509Certificate::from_der(leaf).map_err(|_| IdentityError::Malformed("invalid DER"))?;
        if !rest.is_empty() {
            return Err(IdentityError::Malformed("trailing data after certificate"));
        }
        let id = svid_id(&cert)?;

        let bundle = bundles
            .x509(id.trust_domain())
            .ok_or_else(|| IdentityError::UntrustedTrustDomain(id.trust_domain().clone()))?;

        let not_before = cert.validity().not_before.timestamp();
        let not_after = cert.validity().not_after.timestamp();
        // An inverted window has no valid instant, whatever the skew.
        if not_before > not_after {
            return Err(IdentityError::Malformed(
                "validity window ends before it starts",
            ));
        }
        let skew_ms = i64::try_from(self.clock_skew.as_millis()).unwrap_or(i64::MAX);
        if !window_contains(not_before, not_after, now_ms, skew_ms) {
            return Err(IdentityError::Expired);
        }
        // Our own check above applied the skew; webpki has none, so hand it a
        // time (whole seconds) inside the leaf's window. Intermediates are
        // still checked at that time.
        let check_time = (now_ms.div_euclid(1000))
            .max(not_before)
            .min(not_after)
            .max(0);
        let check_time = UnixTime::since_unix_epoch(Duration::from_secs(
            u64::try_from(check_time).unwrap_or_default(),
        ));

        // webpki never checks a trust anchor's own validity window; refuse a
        // path that ends in a CA certificate that has expired (or is not yet
        // valid), so that webpki goes on to try the bundle's other CAs.
        let anchor_current = |path: &webpki::VerifiedPath<'_>| {
            if bundle.anchor_valid_at(path.anchor(), now_ms, skew_ms) {
                Ok(())
            } else {
                Err(webpki::Error::CertExpired {
                    time: check_time,
                    not_after: check_time,
                })
            }
        };

        let end_entity = webpki::EndEntityCert::try_from(leaf)
            .map_err(|_| IdentityError::Malformed("certificate rejected by parser"))?;
        end_entity
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                bundle.anchors(),
                intermediates,
                check_time,
                webpki::KeyUsage::client_auth(),
                None,
                Some(&anchor_current),
            )
            .map_err(|e| match e {
                webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. } => {
                    IdentityError::Expired
                }
                webpki::Error::CaUsedAsEndEntity => IdentityError::NotAnSvid("leaf is a CA"),
                webpki::Error::RequiredEkuNotFoundContext(_) => {
                    IdentityError::NotAnSvid("extended key usage lacks clientAuth")
                }
                other => IdentityError::ChainInvalid(format!("{other:?}")),
            })?;

        let serial = normalize_serial(cert.raw_serial());
        Ok(VerifiedSvid {
            id,
            not_before,
            not_after,
            serial,
        })
    }
}

/// Is `now_ms` inside `[not_before, not_after]` (Unix seconds, both
/// inclusive), give or take `skew_ms`? Computed in milliseconds with
/// saturating arithmetic: no truncation, no overflow.
pub(crate) fn window_contains(not_before: i64, not_after: i64, now_ms: i64, skew_ms: i64) -> bool {
    let start = not_before.saturating_mul(1000);
    let end = not_after.saturating_mul(1000);
    now_ms.saturating_add(skew_ms) >= start && now_ms.saturating_sub(skew_ms) <= end
}

/// Apply the X509-SVID leaf rules and extract the SPIFFE ID.
fn svid_id(cert: &X509Certificate<'_>) -> Result<SpiffeId, IdentityError> {
    let bad = IdentityError::NotAnSvid;
    let malformed = |_| IdentityError::Malformed("duplicate or invalid extension");

    if let Some(bc) = cert.basic_constraints().map_err(malformed)?
        && bc.value.ca
    {
        return Err(bad("leaf is a CA"));
    }
    match cert.key_usage().map_err(malformed)? {
        None => return Err(bad("key usage extension missing")),
        Some(ku) => {
            if ku.value.key_cert_sign() || ku.value.crl_sign() {
                return Err(bad("leaf may sign certificates or CRLs"));
            }
            if !ku.value.digital_signature() {
                return Err(bad("key usage lacks digitalSignature"));
            }
        }
    }
    if let Some(eku) = cert.extended_key_usage().map_err(malformed)?
        && !eku.value.client_auth
        && !eku.value.any
    {
        return Err(bad("extended key usage lacks clientAuth"));
    }

    let san = cert
        .subject_alternative_name()
        .map_err(malformed)?
        .ok_or(bad("no subject alternative name"))?;
    let mut uris = san.value.general_names.iter().filter_map(|n| match n {
        GeneralName::URI(u) => Some(*u),
        _ => None,
    });
    let uri = uris.next().ok_or(bad("no URI SAN"))?;
    if uris.next().is_some() {
        return Err(bad("more than one URI SAN"));
    }
    parse_spiffe_id_strict(uri).map_err(bad)
}

/// A serial number as compared for revocation: big-endian, no leading zeros.
pub fn normalize_serial(raw: &[u8]) -> Vec<u8> {
    raw.iter().copied().skip_while(|b| *b == 0).collect()
}
