//! Integration tests for `hallpass-policy`, compiled into one test binary: one
//! link instead of one per file keeps CI's build time and disk use down.

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
mod shipped_dates;
mod suite;
mod trie;
