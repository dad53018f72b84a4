//! Generated SPIFFE PKI fixtures for hallpass tests, benchmarks and the demo.
//!
//! Every certificate and key the project uses at test time comes from here, made
//! fresh with rcgen: no private key is ever committed. A [`Ca`] stands for one
//! trust domain's signing authority; it issues leaf X.509-SVIDs ([`Svid`]) and
//! intermediate CAs, and [`SvidSpec`] bends a leaf into each malformed shape the
//! verifier must reject (a CA leaf, two URI SANs, an expired window, …).
//!
//! The [`jwt`] module does the same for JWT-SVIDs: a [`JwtIssuer`] per trust
//! domain and algorithm, SPIFFE bundle documents ([`bundle_json`]), and tokens
//! minted from [`JwtClaims`], well-formed or broken in one chosen way.

use std::fmt;
use std::path::Path;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

pub mod jwt;

pub use jwt::{
    JwtAlg, JwtClaims, JwtError, JwtIssuer, Kid, SignatureSpec, b64url, bundle_json, unix_now,
    unix_now_ms,
};

/// Errors from fixture generation; they only happen on a broken rcgen setup.
pub type Error = rcgen::Error;

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

    /// Issue a well-formed X.509-SVID for `spiffe_id`.
    pub fn issue(&self, spiffe_id: &str) -> Result<Svid, Error> {
        self.issue_with(&SvidSpec::new(spiffe_id))
    }

    /// Issue a leaf shaped by `spec` (which may be deliberately invalid).
    pub fn issue_with(&self, spec: &SvidSpec) -> Result<Svid, Error> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "hallpass test kit");
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
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer())?;
        Ok(Svid {
            spiffe_id: spec.uris.first().cloned().unwrap_or_default(),
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

fn ca_params(
    trust_domain: &str,
    role: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<CertificateParams, Error> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "hallpass test kit");
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
pub fn write_mesh_pki(dir: &Path) -> std::io::Result<Ca> {
    std::fs::create_dir_all(dir)?;
    let ca = Ca::root(MESH_TRUST_DOMAIN).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("bundle.pem"), ca.cert_pem())?;
    for (name, id) in MESH_WORKLOADS {
        let svid = ca.issue(id).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(format!("{name}.pem")), svid.full_chain_pem())?;
        write_private(&dir.join(format!("{name}.key")), &svid.key_pem)?;
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
