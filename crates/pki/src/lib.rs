//! A throwaway SPIFFE PKI: what `hallpass demo` and the local mesh use to
//! stand up trust without SPIRE, and what the test kit builds its fixtures on.
//!
//! Everything is made fresh with rcgen; no private key is ever committed. A
//! [`Ca`] stands for one trust domain's signing authority; it issues leaf
//! X.509-SVIDs ([`Svid`]), TLS server certificates and intermediate CAs, and
//! [`SvidSpec`] bends a leaf into any shape (the test kit uses that for each
//! malformed SVID the verifier must reject: a CA leaf, two URI SANs, an
//! expired window, ...). [`write_mesh_pki`] writes the small clinical mesh's
//! certificates in the layout the example Envoy configs expect.
//!
//! This is product code (the demo runs it), so it has no test-only
//! dependency; `hallpass-testkit` re-exports it.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, SanType,
};
pub use rcgen::{ExtendedKeyUsagePurpose, KeyUsagePurpose};
use time::{Duration, OffsetDateTime};

/// What can go wrong making or writing certificates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// rcgen refused the parameters (a name that is not a valid SAN) or key
    /// generation failed.
    #[error("cannot make the certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// A certificate or key file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Short for results of this crate.
pub type Error = PkiError;

/// A signing authority for one trust domain (root or intermediate).
pub struct Ca {
    trust_domain: String,
    params: CertificateParams,
    key: KeyPair,
    cert_pem: String,
    cert_der: Vec<u8>,
    /// PEM of the CAs between this one and the root, this one first; empty for a root.
    chain_pem: Vec<String>,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("trust_domain", &self.trust_domain)
            .finish_non_exhaustive()
    }
}

/// How to shape a leaf certificate. The default is a well-formed X.509-SVID.
#[derive(Debug, Clone)]
pub struct SvidSpec {
    /// URI SANs, in order. A valid SVID has exactly one.
    pub uris: Vec<String>,
    /// DNS SANs (allowed next to the SPIFFE ID).
    pub dns: Vec<String>,
    /// Mark the leaf as a CA (invalid for an SVID).
    pub is_ca: bool,
    /// Key usages; an SVID needs digitalSignature and must not have keyCertSign or cRLSign.
    pub key_usages: Vec<KeyUsagePurpose>,
    /// Extended key usages; if present they must include clientAuth.
    pub extended_key_usages: Vec<ExtendedKeyUsagePurpose>,
    /// Start of the validity window.
    pub not_before: OffsetDateTime,
    /// End of the validity window.
    pub not_after: OffsetDateTime,
    /// Explicit serial number (for revocation by serial); random when `None`.
    pub serial: Option<u64>,
}

impl SvidSpec {
    /// A well-formed SVID spec for `spiffe_id`, valid from an hour ago for a day.
    pub fn new(spiffe_id: &str) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            uris: vec![spiffe_id.to_owned()],
            dns: Vec::new(),
            is_ca: false,
            key_usages: vec![KeyUsagePurpose::DigitalSignature],
            extended_key_usages: vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(1),
            serial: None,
        }
    }

    /// The same spec with a window that ended an hour ago.
    #[must_use]
    pub fn expired(mut self) -> Self {
        let now = OffsetDateTime::now_utc();
        self.not_before = now - Duration::days(2);
        self.not_after = now - Duration::hours(1);
        self
    }

    /// The same spec with a window that starts tomorrow.
    #[must_use]
    pub fn not_yet_valid(mut self) -> Self {
        let now = OffsetDateTime::now_utc();
        self.not_before = now + Duration::days(1);
        self.not_after = now + Duration::days(2);
        self
    }
}

/// A leaf certificate and its key, as PEM and DER.
#[derive(Clone)]
pub struct Svid {
    /// The first URI SAN the leaf carries (the SPIFFE ID for a valid SVID).
    pub spiffe_id: String,
    /// The leaf certificate, PEM.
    pub cert_pem: String,
    /// The leaf certificate, DER.
    pub cert_der: Vec<u8>,
    /// The leaf's private key, PKCS#8 PEM.
    pub key_pem: String,
    /// Intermediate CA certificates (PEM) between the leaf and the root, nearest first.
    pub chain_pem: Vec<String>,
}

impl fmt::Debug for Svid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material, even in test output.
        f.debug_struct("Svid")
            .field("spiffe_id", &self.spiffe_id)
            .finish_non_exhaustive()
    }
}

/// Characters Envoy leaves alone when it URL-encodes `source.certificate`.
const ENVOY_CERT_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

impl Svid {
    /// The leaf as Envoy puts it in `attributes.source.certificate`: URL-encoded PEM.
    pub fn envoy_encoded(&self) -> String {
        utf8_percent_encode(&self.cert_pem, ENVOY_CERT_ENCODE).to_string()
    }

    /// The leaf followed by its intermediates, PEM (what a TLS client presents).
    pub fn full_chain_pem(&self) -> String {
        let mut out = self.cert_pem.clone();
        for c in &self.chain_pem {
            out.push_str(c);
        }
        out
    }
}

impl Ca {
    /// A new self-signed root CA for `trust_domain`, valid for a year.
    pub fn root(trust_domain: &str) -> Result<Self, Error> {
        let now = OffsetDateTime::now_utc();
        Self::root_with_validity(
            trust_domain,
            now - Duration::hours(1),
            now + Duration::days(365),
        )
    }

    /// A new self-signed root CA with an explicit validity window.
    pub fn root_with_validity(
        trust_domain: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<Self, Error> {
        let params = ca_params(trust_domain, "root", not_before, not_after)?;
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            trust_domain: trust_domain.to_owned(),
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            params,
            key,
            chain_pem: Vec::new(),
        })
    }

    /// An intermediate CA of the same trust domain, signed by this CA.
    pub fn intermediate(&self) -> Result<Self, Error> {
        let now = OffsetDateTime::now_utc();
        let params = ca_params(
            &self.trust_domain,
            "intermediate",
            now - Duration::hours(1),
            now + Duration::days(30),
        )?;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer())?;
        let mut chain_pem = vec![cert.pem()];
        chain_pem.extend(self.chain_pem.iter().cloned());
        Ok(Self {
            trust_domain: self.trust_domain.clone(),
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            params,
            key,
            chain_pem,
        })
    }

    /// The trust domain name this CA signs for.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// This CA's certificate, PEM: the X.509 bundle content for a root.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// This CA's certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// This CA's public key, raw (an uncompressed EC point for the P-256
    /// keys this crate generates).
    pub fn public_key_raw(&self) -> &[u8] {
        self.key.public_key_raw()
    }

    /// Is this CA's key ECDSA P-256 (the default of this crate)?
    pub fn is_ecdsa_p256(&self) -> bool {
        self.key.algorithm() == &rcgen::PKCS_ECDSA_P256_SHA256
    }

    /// Issue a well-formed X.509-SVID for `spiffe_id`.
    pub fn issue(&self, spiffe_id: &str) -> Result<Svid, Error> {
        self.issue_with(&SvidSpec::new(spiffe_id))
    }

    /// Issue a TLS server certificate for `names` (DNS names or IP
    /// addresses), with no SPIFFE ID: what an HTTPS endpoint such as a
    /// Prometheus or an admission webhook presents. `spiffe_id` is empty.
    pub fn issue_server(&self, names: &[&str]) -> Result<Svid, Error> {
        let mut params = leaf_params(&SvidSpec {
            uris: Vec::new(),
            dns: Vec::new(),
            extended_key_usages: vec![ExtendedKeyUsagePurpose::ServerAuth],
            ..SvidSpec::new("")
        })?;
        for name in names {
            params.subject_alt_names.push(match name.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*name).try_into()?),
            });
        }
        self.sign_leaf(&params, String::new())
    }

    /// Issue a leaf shaped by `spec` (which may be deliberately invalid).
    pub fn issue_with(&self, spec: &SvidSpec) -> Result<Svid, Error> {
        let params = leaf_params(spec)?;
        self.sign_leaf(&params, spec.uris.first().cloned().unwrap_or_default())
    }

    fn sign_leaf(&self, params: &CertificateParams, spiffe_id: String) -> Result<Svid, Error> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer())?;
        Ok(Svid {
            spiffe_id,
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
            chain_pem: self.chain_pem.clone(),
        })
    }

    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }
}

fn leaf_params(spec: &SvidSpec) -> Result<CertificateParams, Error> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "hallpass throwaway PKI");
    params.distinguished_name = dn;
    for uri in &spec.uris {
        params
            .subject_alt_names
            .push(SanType::URI(uri.as_str().try_into()?));
    }
    for dns in &spec.dns {
        params
            .subject_alt_names
            .push(SanType::DnsName(dns.as_str().try_into()?));
    }
    params.is_ca = if spec.is_ca {
        IsCa::Ca(BasicConstraints::Unconstrained)
    } else {
        IsCa::ExplicitNoCa
    };
    params.key_usages = spec.key_usages.clone();
    params.extended_key_usages = spec.extended_key_usages.clone();
    params.not_before = spec.not_before;
    params.not_after = spec.not_after;
    params.use_authority_key_identifier_extension = true;
    if let Some(serial) = spec.serial {
        params.serial_number = Some(serial.into());
    }
    Ok(params)
}

fn ca_params(
    trust_domain: &str,
    role: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<CertificateParams, Error> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "hallpass throwaway PKI");
    dn.push(DnType::CommonName, format!("{trust_domain} {role} CA"));
    params.distinguished_name = dn;
    // A SPIFFE signing certificate carries the trust domain ID as its URI SAN.
    params.subject_alt_names.push(SanType::URI(
        format!("spiffe://{trust_domain}").as_str().try_into()?,
    ));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = not_before;
    params.not_after = not_after;
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// The identities of the small clinical mesh used by the demo and the end-to-end tests.
pub const MESH_TRUST_DOMAIN: &str = "hospital.example";

/// `(short name, SPIFFE ID)` of each workload in the clinical mesh.
pub const MESH_WORKLOADS: &[(&str, &str)] = &[
    (
        "ehr-api",
        "spiffe://hospital.example/ns/clinical/sa/ehr-api",
    ),
    (
        "lab-results",
        "spiffe://hospital.example/ns/clinical/sa/lab-results",
    ),
    (
        "pharmacy",
        "spiffe://hospital.example/ns/pharmacy/sa/pharmacy",
    ),
    ("billing", "spiffe://hospital.example/ns/billing/sa/billing"),
];

/// Write the clinical mesh's PKI into `dir` in the layout the example Envoy
/// configs expect: `bundle.pem` (the trust domain's CA) and `<name>.pem` /
/// `<name>.key` for each workload of [`MESH_WORKLOADS`].
pub fn write_mesh_pki(dir: &Path) -> Result<Ca, Error> {
    let written = |path: PathBuf| move |source| PkiError::Write { path, source };
    std::fs::create_dir_all(dir).map_err(written(dir.to_path_buf()))?;
    let ca = Ca::root(MESH_TRUST_DOMAIN)?;
    let bundle = dir.join("bundle.pem");
    std::fs::write(&bundle, ca.cert_pem()).map_err(written(bundle.clone()))?;
    for (name, id) in MESH_WORKLOADS {
        let svid = ca.issue(id)?;
        let cert = dir.join(format!("{name}.pem"));
        std::fs::write(&cert, svid.full_chain_pem()).map_err(written(cert.clone()))?;
        let key = dir.join(format!("{name}.key"));
        write_private(&key, &svid.key_pem).map_err(written(key.clone()))?;
    }
    Ok(ca)
}

/// Write a private key readable by the owner only.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())
}
