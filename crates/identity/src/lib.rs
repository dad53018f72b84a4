//! SPIFFE identity verification for hallpass.
//!
//! hallpass never takes Envoy's word for who the caller is (unless configured to,
//! see `envoy_principal` mode in the server). This crate turns the raw material
//! Envoy forwards, the URL-encoded PEM of the peer's leaf certificate, into a
//! [`VerifiedSvid`], or into an [`IdentityError`] that says exactly why not.
//!
//! - [`TrustBundleSet`]: the X.509 trust anchors of every trusted trust domain,
//!   kept apart so that one domain's CA can never vouch for another's IDs.
//! - [`X509SvidVerifier`]: the X509-SVID rules (one SPIFFE URI SAN, leaf not a
//!   CA, key usage) plus a webpki signature chain check and the validity window.
//! - [`JwtSvidVerifier`]: the JWT-SVID rules, with `kid` looked up only among
//!   the `jwt-svid` keys of the token subject's own trust domain.
//! - [`VerificationCache`]: bounded memo of verified credentials, keyed by a
//!   digest of the exact bytes and dropped on every bundle change.
//!
//! [`SpiffeId`] and [`TrustDomain`] come from the `spiffe` crate and are parsed
//! once, at the edge; nothing downstream compares raw strings.

mod bundle;
mod cache;
mod error;
mod jwks;
mod jwt;
mod x509;
mod xfcc;

pub use bundle::{TrustBundleSet, X509Bundle};
pub use cache::{CredentialDigest, DEFAULT_CAPACITY, VerificationCache, credential_digest};
pub use error::IdentityError;
pub use jwks::{JwtPublicKey, ParsedBundle, parse_jwk, parse_spiffe_bundle};
pub use jwt::{JwtAuthorities, JwtSvidVerifier, MAX_TOKEN_LEN, VerifiedJwt};
pub use spiffe::{SpiffeId, TrustDomain};
pub use x509::{
    VerifiedSvid, X509SvidVerifier, decode_envoy_certificate, normalize_serial,
    parse_spiffe_id_strict, parse_written_spiffe_id,
};
pub use xfcc::{XfccElement, parse_xfcc};
