//! Integration tests for `hallpass-policy`, compiled into one test binary: one
//! link instead of one per file keeps CI's build time and disk use down.

// A test stops loudly on the unexpected: unwrap, expect, panic and
// indexing are how a test says so.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod data_classes;
mod evaluate;
mod explain;
mod lints;
mod load;
mod locations;
mod matchers;
mod proptest_matchers;
mod reference;
mod scan;
mod schema;
mod scoped;
mod sets;
mod shipped_dates;
mod suite;
mod trie;
