//! Why a credential did not prove an identity.

use spiffe::TrustDomain;

/// Why a credential did not prove an identity.
///
/// Each variant maps to exactly one stable reason code in the server's answer
/// (see `hallpass_server::answer`). The `Display` text can name what the
/// credential claimed (an untrusted trust domain, a parser's detail); a log
/// line on the request path uses [`IdentityError::log_text`], which carries
/// nothing a caller chose.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The request carried no credential at all.
    #[error("no client certificate was presented")]
    NoCredential,
    /// The bytes are not a parseable certificate (encoding, PEM or DER).
    #[error("malformed certificate: {0}")]
    Malformed(&'static str),
    /// The certificate parses but breaks an X509-SVID rule.
    #[error("not a valid X.509-SVID: {0}")]
    NotAnSvid(&'static str),
    /// The SVID's trust domain has no bundle here.
    #[error("trust domain {0} is not trusted")]
    UntrustedTrustDomain(TrustDomain),
    /// Outside the validity window (after allowing for clock skew).
    #[error("certificate is expired or not yet valid")]
    Expired,
    /// The signature chain does not lead to the trust domain's bundle.
    #[error("certificate chain does not verify against the trust bundle: {0}")]
    ChainInvalid(String),
    /// The JWT-SVID is malformed, uses a forbidden algorithm, names an
    /// unknown key or does not verify.
    #[error("invalid JWT-SVID: {0}")]
    InvalidJwt(&'static str),
    /// The JWT-SVID's `aud` names none of the configured audiences.
    #[error("JWT-SVID audience does not include this workload")]
    JwtAudienceMismatch,
    /// A bundle file could not be loaded.
    #[error("trust bundle for {trust_domain}: {reason}")]
    Bundle {
        /// The trust domain whose bundle failed.
        trust_domain: String,
        /// What went wrong.
        reason: String,
    },
}

impl IdentityError {
    /// A fixed description for request-path logs: nothing from the
    /// credential itself (a trust domain name or a parser's detail is chosen
    /// by whoever made the certificate or token, and could be patient data).
    pub fn log_text(&self) -> &'static str {
        match self {
            Self::NoCredential => "no credential",
            Self::Malformed(why) | Self::NotAnSvid(why) | Self::InvalidJwt(why) => why,
            Self::UntrustedTrustDomain(_) => "trust domain is not trusted",
            Self::Expired => "expired or not yet valid",
            Self::ChainInvalid(_) => "chain does not verify against the trust bundle",
            Self::JwtAudienceMismatch => "audience does not include this workload",
            Self::Bundle { .. } => "trust bundle unusable",
        }
    }
}
