//! Integration tests for `hallpass-injector`, compiled into one test binary: one
//! link instead of one per file keeps CI's build time and disk use down.

mod admission;
mod chart;
mod common;
mod envoy_bootstrap;
mod server;
mod trust;
