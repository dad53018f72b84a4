//! Integration tests for `hallpass-e2e`, compiled into one test binary: one
//! link instead of one per file keeps CI's build time and disk use down.

// A test stops loudly on the unexpected: unwrap, expect, panic and
// indexing are how a test says so.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod compose_configs;
mod data_classes;
mod envoy_hardening;
mod envoy_mesh;
mod envoy_rejections;
mod faults;
mod faults_identity;
mod harness;
mod healthcare_controls;
mod injector_limits;
mod kubernetes_layout;
mod local_mesh;
mod policy_files;
mod policy_replay;
mod serve_config;
mod stale_usage;
