//! Integration tests of the `hallpass` binary, one test binary (see
//! docs/testing.md, "How the test build is kept small"). The tools and
//! injector tests need the features that build those commands.

// A test stops loudly on the unexpected: unwrap, expect, panic and
// indexing are how a test says so.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod breakglass_cli;
mod common;
mod compliance_doc;
mod config_cli;
mod data_class_cli;
#[cfg(feature = "demo")]
mod demo_cli;
#[cfg(all(feature = "tools", feature = "demo", feature = "injector"))]
mod doc_examples;
mod exit_codes;
#[cfg(feature = "injector")]
mod inject_cli;
mod policy_cli;
#[cfg(feature = "tools")]
mod replay_cli;
#[cfg(feature = "tools")]
mod stale_cli;
#[cfg(feature = "tools")]
mod tools_cli;
