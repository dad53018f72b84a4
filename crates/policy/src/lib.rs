//! hallpass policy: least-privilege rules per destination, default deny.
//!
//! The YAML policy file (design §5) is parsed once into [`PolicyDocument`],
//! then compiled into an immutable [`CompiledPolicy`]: SPIFFE IDs, source
//! patterns and route templates are typed values, and each destination's
//! rules sit in a source index (exact IDs in a hash map, wildcard patterns in
//! a segment trie) whose entries hold a [`RouteTrie`] of route templates. A
//! decision never re-parses text, and its cost does not grow with the number
//! of rules that cannot apply to the caller. The server keeps the compiled
//! policy behind an `Arc` and swaps it whole on reload.
//!
//! One evaluator decides: [`CompiledPolicy::evaluate_with`], generic over an
//! [`Observer`]. The sidecar passes [`NoTrace`] (it compiles to nothing);
//! [`CompiledPolicy::explain`] passes an observer that writes the trace, so
//! `explain` cannot disagree with the sidecar. Every evaluation ends in a
//! typed [`Decision`]; a deny carries a [`DenyReason`] whose
//! [`DenyReason::code`] is the stable wire and metric value.
//!
//! The tooling behind `hallpass policy check|test|explain` lives here too, so
//! it runs the exact code the sidecar runs: [`check`] (located errors and
//! lints), [`suite`] (decision test cases) and [`CompiledPolicy::explain`];
//! so does the declared call graph ([`CompiledPolicy::declared_graph`]) that
//! the sidecar's telemetry and the offline tools compare traffic with.

mod break_glass;
pub mod check;
mod compile;
mod decision;
mod declared;
mod document;
mod error;
mod evaluate;
mod explain;
mod load;
mod locate;
mod matchers;
mod path;
mod probe;
mod set;
mod similar;
pub mod suite;
mod trie;

pub use break_glass::{
    BreakGlassDocument, BreakGlassGrant, BreakGlassGrants, DEFAULT_MAX_DURATION_MS,
    MAX_BREAK_GLASS_GRANTS, OverlayDocument, duration_text, format_time_ms, grant_state,
    grants_json, parse_duration, parse_overlay, valid_grant_name,
};
pub use compile::{
    CompiledPolicy, CompiledRule, CompiledWorkload, FixedLabel, MetricLabel, Request,
    parse_rfc3339_ms, parse_serial,
};
pub use decision::Decision;
pub use document::{
    JwtReplay, PolicyDocument, RevokedDocument, RevokedSerialDocument, RuleDocument,
    WorkloadDocument,
};
pub use error::PolicyError;
pub use evaluate::{Evaluation, NoTrace, Observer, RuleVerdict};
pub use explain::{Explanation, RuleOutcome, RuleTrace, Step};
pub use hallpass_diagnostics::{Problem, Problems};
pub use load::load_document;
pub use locate::{Location, LocationIndex, child_path, item_path};
pub use matchers::{GrpcPattern, RouteTemplate, SourcePattern};
pub use path::{NormalizedPath, normalize_path, parse_path};
pub use probe::matcher_calls;
pub use set::{
    MESH_WIDE_SECTION, OWNER_VIOLATION, OwnerScope, PolicyFile, expand_source, read_policy_files,
};
pub use similar::UndefinedDestination;
pub use trie::{RouteHit, RouteKind, RouteTrie};
// The vocabulary this crate's API speaks, defined once in `hallpass-vocab`.
pub use hallpass_vocab::{
    DataClass, DeclaredEdge, DeclaredGraph, DenyReason, Method, Mode, PathIssue,
};
