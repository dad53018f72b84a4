//! Integration tests for `hallpass-server`, compiled into one test binary: one
//! link instead of one per file keeps CI's build time and disk use down.

// A test stops loudly on the unexpected: unwrap, expect, panic and
// indexing are how a test says so.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod break_glass;
mod common;
mod config;
mod config_endpoint;
mod decision_cost;
mod identity_paths;
mod phi_canary;
mod reload;
mod sidecar;
mod source_header;
mod telemetry;
mod time_bounds;
mod transport;
mod workload_api;
