//! Integration tests for `hallpass-callgraph-page`, one test binary (see
//! docs/testing.md, "How the test build is kept small").

// A test stops loudly on the unexpected: unwrap, expect, panic and
// indexing are how a test says so.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod page;
