//! Integration tests of the `hallpass` binary, one test binary (see
//! docs/testing.md, "How the test build is kept small"). The tools and
//! injector tests need the features that build those commands.

mod common;
mod exit_codes;
#[cfg(feature = "injector")]
mod inject_cli;
mod policy_cli;
#[cfg(feature = "tools")]
mod tools_cli;
