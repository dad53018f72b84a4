//! The declared call graph: what a policy allows, as edges.

use serde::{Deserialize, Serialize};

use crate::DataClass;

/// A rule's permission for one source pattern: an edge of the declared graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredEdge {
    /// Source pattern as written in the policy.
    pub source: String,
    /// Destination SPIFFE ID.
    pub destination: String,
    /// Rule name.
    pub rule: String,
    /// Route templates and gRPC patterns (empty = any path).
    pub routes: Vec<String>,
    /// Methods (empty = any).
    pub methods: Vec<String>,
    /// The rule's data class (its own or its destination's); left out of
    /// the JSON when undeclared, and read as undeclared when absent.
    #[serde(default, skip_serializing_if = "DataClass::is_undeclared")]
    pub data_class: DataClass,
}

/// The declared rules of the destinations a sidecar serves (or of a whole
/// policy): one edge per (rule, source pattern), in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeclaredGraph {
    /// One entry per (rule, source pattern).
    pub edges: Vec<DeclaredEdge>,
}
