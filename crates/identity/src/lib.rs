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
//!
//! [`SpiffeId`] and [`TrustDomain`] come from the `spiffe` crate and are parsed
//! once, at the edge; nothing downstream compares raw strings.

mod bundle;
mod error;
mod x509;

pub use bundle::{TrustBundleSet, X509Bundle};
pub use error::IdentityError;
pub use spiffe::{SpiffeId, TrustDomain};
pub use x509::{VerifiedSvid, X509SvidVerifier, decode_envoy_certificate, parse_spiffe_id_strict};
