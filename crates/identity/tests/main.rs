//! Integration tests for `hallpass-identity`, compiled into one test binary: one
//! link instead of one per file keeps CI's build time and disk use down.

// A test stops loudly on the unexpected: unwrap, expect, panic and
// indexing are how a test says so.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod bundles_xfcc_cache;
mod jwt_svid;
mod proptest_spiffe;
mod x509_svid;
