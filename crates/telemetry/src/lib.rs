//! hallpass telemetry: bounded Prometheus metrics, call-path anomalies, the
//! audit log and the call graph.
//!
//! Label values never come from request data. `source` and `destination` are
//! SPIFFE IDs only when the policy names them (else `other:<trust domain>`),
//! `decision`, `reason`, `kind` and `method` come from closed sets (the enums
//! of `hallpass-vocab`, never strings matched at run time), and routes are
//! templates. The decision path touches only [`DecisionCounters`] (no
//! label hashing) and [`Telemetry::record`] (a non-blocking queue push); the
//! worker behind the queue owns the call graph ([`EdgeTable`]), the anomaly
//! detectors, rule usage and the audit writer.
//!
//! The offline tools read what sidecars wrote, so the file formats defend
//! themselves: [`Baseline::load`] accepts only the labels a sidecar writes,
//! [`write_atomically`] never follows a planted symlink, and
//! [`escape_for_terminal`] keeps escape sequences from reaching a terminal.

mod audit;
mod callgraph;
mod controls;
mod counters;
mod edges;
mod event;
mod file;
mod metrics;
mod text;
mod verify_lane;
mod worker;

pub use audit::{AuditTarget, AuditWriter, audit_line};
pub use callgraph::{CallGraph, ObservedEdge, RuleUsage, SourceUsage};
pub use controls::ControlMetrics;
pub use counters::DecisionCounters;
pub use edges::{Baseline, EdgeKey, EdgeStats, EdgeTable, Observation, RateSpikeSettings};
pub use event::{BreakGlassMark, DecisionEvent, UNMATCHED_ROUTE, request_id, trace_id};
pub use file::write_atomically;
pub use metrics::Metrics;
pub use text::{Escaped, escape_for_terminal, is_unsafe_char, json_for_terminal};
pub use verify_lane::VerificationLaneMetrics;
pub use worker::{AUDIT_FAILING_FOR, ControlMsg, Telemetry, TelemetrySettings};
// The vocabulary this crate's API speaks, defined once in `hallpass-vocab`.
pub use hallpass_vocab::{
    Anomalies, AnomalyKind, CredentialKind, Credentials, DataClass, DecisionLabel, DeclaredEdge,
    DeclaredGraph, DenyReason, Method, Mode, PathIssue,
};

/// Errors from telemetry setup and persistence.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// The Prometheus client rejected a metric definition or encoding.
    #[error("prometheus: {0}")]
    Prometheus(#[from] prometheus::Error),
    /// The baseline file could not be read or written.
    #[error("call-path baseline: {0}")]
    Baseline(String),
}
