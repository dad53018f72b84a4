//! Trust bundles: the X.509 and JWT authorities of each trust domain.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, TrustAnchor};
use spiffe::TrustDomain;

use crate::{IdentityError, JwtAuthorities};

/// The X.509 trust anchors of one trust domain.
#[derive(Debug, Clone)]
pub struct X509Bundle {
    anchors: Vec<TrustAnchor<'static>>,
    /// `(not_before, not_after)` in Unix seconds of each CA certificate, in
    /// the order of `anchors`. webpki ignores a trust anchor's validity; an
    /// expired CA must not keep vouching for leaves, so the verifier checks it.
    windows: Vec<(i64, i64)>,
    earliest_expiry: i64,
}

impl X509Bundle {
    /// Build a bundle from PEM text holding one or more CA certificates.
    pub fn from_pem(trust_domain: &TrustDomain, pem: &[u8]) -> Result<Self, IdentityError> {
        let mut ders = Vec::new();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| bundle_error(trust_domain, format!("bad PEM: {e}")))?;
            ders.push(cert.to_vec());
        }
        Self::from_ders(trust_domain, &ders)
    }

    /// Build a bundle from a bundle file: PEM CA certificates, or a SPIFFE
    /// bundle (JWKS) whose `x509-svid` keys carry the CAs.
    pub fn from_file_bytes(
        trust_domain: &TrustDomain,
        bytes: &[u8],
    ) -> Result<Self, IdentityError> {
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            let parsed = crate::parse_spiffe_bundle(bytes, false)
                .map_err(|e| bundle_error(trust_domain, e))?;
            Self::from_ders(trust_domain, &parsed.x509_authorities)
        } else {
            Self::from_pem(trust_domain, bytes)
        }
    }

    /// Build a bundle from DER CA certificates.
    pub fn from_ders(trust_domain: &TrustDomain, ders: &[Vec<u8>]) -> Result<Self, IdentityError> {
        let bundle_err = |reason: String| bundle_error(trust_domain, reason);
        let mut anchors = Vec::new();
        let mut windows = Vec::new();
        let mut earliest_expiry = i64::MAX;
        for der in ders {
            let (_, parsed) = x509_parser::parse_x509_certificate(der)
                .map_err(|e| bundle_err(format!("bad certificate: {e}")))?;
            let validity = parsed.validity();
            let window = (
                validity.not_before.timestamp(),
                validity.not_after.timestamp(),
            );
            earliest_expiry = earliest_expiry.min(window.1);
            let cert = CertificateDer::from(der.as_slice());
            let anchor = webpki::anchor_from_trusted_cert(&cert)
                .map_err(|e| bundle_err(format!("not usable as a trust anchor: {e}")))?;
            anchors.push(anchor.to_owned());
            windows.push(window);
        }
        if anchors.is_empty() {
            return Err(bundle_err("no certificates in bundle".into()));
        }
        Ok(Self {
            anchors,
            windows,
            earliest_expiry,
        })
    }

    /// The trust anchors, for chain building.
    pub fn anchors(&self) -> &[TrustAnchor<'static>] {
        &self.anchors
    }

    /// True when a CA certificate of this bundle that provides `anchor` (same
    /// subject and key) is inside its validity window at `now_ms`, give or take
    /// `skew_ms` (times in Unix milliseconds). A re-issued CA with the same
    /// key keeps working as long as one of its certificates is current.
    pub(crate) fn anchor_valid_at(
        &self,
        anchor: &TrustAnchor<'_>,
        now_ms: i64,
        skew_ms: i64,
    ) -> bool {
        self.anchors
            .iter()
            .zip(&self.windows)
            .any(|(a, &(not_before, not_after))| {
                a.subject == anchor.subject
                    && a.subject_public_key_info == anchor.subject_public_key_info
                    && crate::x509::window_contains(not_before, not_after, now_ms, skew_ms)
            })
    }

    /// Unix time at which the first CA certificate in this bundle expires.
    pub fn earliest_expiry(&self) -> i64 {
        self.earliest_expiry
    }
}

fn bundle_error(trust_domain: &TrustDomain, reason: String) -> IdentityError {
    IdentityError::Bundle {
        trust_domain: trust_domain.to_string(),
        reason,
    }
}

/// Source of bundle-set generations: every set built gets a new number, so
/// caches can tell that the trust they were filled under has changed.
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// X.509 and JWT bundles keyed by trust domain. A credential is only ever
/// checked against the bundle of its own trust domain.
#[derive(Debug, Clone)]
pub struct TrustBundleSet {
    x509: HashMap<TrustDomain, X509Bundle>,
    jwt: HashMap<TrustDomain, JwtAuthorities>,
    generation: u64,
}

impl Default for TrustBundleSet {
    fn default() -> Self {
        Self {
            x509: HashMap::new(),
            jwt: HashMap::new(),
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
        }
    }
}

impl TrustBundleSet {
    /// An empty set: every SVID verification fails `UntrustedTrustDomain`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add (or replace) the X.509 bundle of a trust domain.
    pub fn insert(&mut self, trust_domain: TrustDomain, bundle: X509Bundle) {
        self.x509.insert(trust_domain, bundle);
        self.generation = GENERATION.fetch_add(1, Ordering::Relaxed);
    }

    /// Add (or replace) the JWT-SVID keys of a trust domain.
    pub fn insert_jwt(&mut self, trust_domain: TrustDomain, keys: JwtAuthorities) {
        self.jwt.insert(trust_domain, keys);
        self.generation = GENERATION.fetch_add(1, Ordering::Relaxed);
    }

    /// The JWT-SVID keys of `trust_domain`, if trusted for JWTs.
    pub fn jwt(&self, trust_domain: &TrustDomain) -> Option<&JwtAuthorities> {
        self.jwt.get(trust_domain)
    }

    /// Every trust domain with JWT keys.
    pub fn jwt_iter(&self) -> impl Iterator<Item = (&TrustDomain, &JwtAuthorities)> {
        self.jwt.iter()
    }

    /// A number that differs between any two differently-built sets.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Load a PEM bundle file for `trust_domain` and add it.
    pub fn load_pem_file(
        &mut self,
        trust_domain: TrustDomain,
        path: &Path,
    ) -> Result<(), IdentityError> {
        let pem = std::fs::read(path).map_err(|e| IdentityError::Bundle {
            trust_domain: trust_domain.to_string(),
            reason: format!("cannot read {}: {e}", path.display()),
        })?;
        let bundle = X509Bundle::from_file_bytes(&trust_domain, &pem)?;
        self.insert(trust_domain, bundle);
        Ok(())
    }

    /// The bundle of `trust_domain`, if trusted.
    pub fn x509(&self, trust_domain: &TrustDomain) -> Option<&X509Bundle> {
        self.x509.get(trust_domain)
    }

    /// Every trusted trust domain with its bundle.
    pub fn iter(&self) -> impl Iterator<Item = (&TrustDomain, &X509Bundle)> {
        self.x509.iter()
    }

    /// True when no trust domain has an X.509 bundle.
    pub fn is_empty(&self) -> bool {
        self.x509.is_empty()
    }
}
