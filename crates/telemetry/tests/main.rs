//! Integration tests for `hallpass-telemetry`, compiled into one test binary: one
//! link instead of one per file keeps CI's build time and disk use down.

mod audit;
mod cardinality;
mod common;
mod counters;
mod edges;
mod grafana;
mod promtool;
mod worker;
