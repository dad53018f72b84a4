//! Test fixtures for hallpass: tests, benchmarks and fuzz targets only.
//!
//! - The X.509 side is [`hallpass_pki`], re-exported whole: a [`Ca`] per
//!   trust domain, well-formed [`Svid`]s, and [`SvidSpec`] to bend a leaf into
//!   each malformed shape the verifier must reject.
//! - [`jwt`] does the same for JWT-SVIDs: a [`JwtIssuer`] per trust domain
//!   and algorithm, SPIFFE bundle documents ([`bundle_json`]), and tokens
//!   minted from [`JwtClaims`], well-formed or broken in one chosen way.
//! - [`http`] is the one HTTP/1.1 client the test harnesses share. It sends
//!   the request line and headers exactly as given (a `..` segment, an
//!   underscore header), which is what tests of a proxy need and what a
//!   real client would normalise away.
//!
//! No production crate depends on this one (`scripts/check-deps.sh` proves
//! it in the test command).

// Test-only crate: the harness stops loudly on the unexpected, like a test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod http;
pub mod jwt;

pub use hallpass_pki::*;
pub use jwt::{
    JwtAlg, JwtClaims, JwtError, JwtIssuer, Kid, SignatureSpec, X509SvidJwk, b64url, bundle_json,
    unix_now, unix_now_ms,
};
