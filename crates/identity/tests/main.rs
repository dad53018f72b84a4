//! Integration tests for `hallpass-identity`, compiled into one test binary: one
//! link instead of one per file keeps CI's build time and disk use down.

mod bundles_xfcc_cache;
mod jwt_svid;
mod proptest_spiffe;
mod x509_svid;
