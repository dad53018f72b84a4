//! Integration tests for `hallpass-e2e`, compiled into one test binary: one
//! link instead of one per file keeps CI's build time and disk use down.

mod compose_configs;
mod envoy_hardening;
mod envoy_mesh;
mod envoy_rejections;
mod harness;
mod injector_limits;
mod local_mesh;
mod serve_config;
