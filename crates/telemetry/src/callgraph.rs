//! The call graph as served on `/callgraph` (JSON): what the policy
//! declares, what was observed, and when each rule last matched. Drawing it
//! for people (`/callgraph.dot`, `/callgraph.html`) is the job of the
//! `hallpass-callgraph-page` crate.

use hallpass_vocab::{DataClass, DeclaredEdge};
use serde::{Deserialize, Serialize};

/// An observed edge with its counters and flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedEdge {
    /// Bounded source label.
    pub source: String,
    /// Bounded destination label.
    pub destination: String,
    /// Route template or `(unmatched)`.
    pub route: String,
    /// Method label.
    pub method: String,
    /// Requests seen.
    pub count: u64,
    /// Allowed requests.
    pub allowed: u64,
    /// Denied requests (enforced or audit).
    pub denied: u64,
    /// Unix ms, first request.
    pub first_seen_ms: i64,
    /// Unix ms, last request.
    pub last_seen_ms: i64,
    /// Not in the baseline when first seen.
    pub new: bool,
    /// The last rate window was a spike.
    pub spiking: bool,
    /// In the learned baseline.
    pub in_baseline: bool,
    /// Moving average, requests per second.
    pub ewma_rps: f64,
    /// The data class of the edge's last call; left out of the JSON when
    /// undeclared, and read as undeclared when absent.
    #[serde(default, skip_serializing_if = "DataClass::is_undeclared")]
    pub data_class: DataClass,
}

/// When a rule last allowed a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleUsage {
    /// Destination SPIFFE ID.
    pub destination: String,
    /// Rule name.
    pub rule: String,
    /// Unix seconds, 0 = never since usage tracking began
    /// ([`CallGraph::tracking_since_ms`]).
    pub last_match_seconds: i64,
}

/// When an identity the policy names last called a destination (any
/// decision), persisted with the baseline like [`RuleUsage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceUsage {
    /// Caller SPIFFE ID (a label the policy names).
    pub source: String,
    /// Destination SPIFFE ID.
    pub destination: String,
    /// Unix seconds of the last call.
    pub last_seen_seconds: i64,
}

/// A snapshot of the declared and observed call graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallGraph {
    /// Unix ms of the snapshot.
    pub generated_at_ms: i64,
    /// The baseline is still being learned.
    pub learning: bool,
    /// What the policy allows.
    pub declared: Vec<DeclaredEdge>,
    /// What was seen.
    pub observed: Vec<ObservedEdge>,
    /// Rule usage.
    pub rules: Vec<RuleUsage>,
    /// Unix ms at which rule and identity usage tracking began: the
    /// sidecar's start, or the first start recorded in its baseline file.
    /// 0 = unknown (an older sidecar): "never matched" then proves nothing.
    #[serde(default)]
    pub tracking_since_ms: i64,
    /// Last call of each identity the policy names, per destination (absent
    /// from older sidecars).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceUsage>,
}
