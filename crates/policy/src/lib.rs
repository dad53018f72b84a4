//! hallpass policy: least-privilege rules per destination, default deny.
//!
//! The YAML policy file (design §5) is parsed once into [`PolicyDocument`],
//! then compiled into an immutable [`CompiledPolicy`]: SPIFFE IDs, source
//! patterns and route templates are typed values, exact sources sit in a hash
//! map, and a decision never re-parses text. The server keeps the compiled
//! policy behind an `Arc` and swaps it whole on reload.
//!
//! Every evaluation ends in a typed [`Decision`]; a deny carries a
//! [`DenyReason`] whose [`DenyReason::code`] is the stable wire and metric value.

mod compile;
mod decision;
mod document;
mod error;
mod matchers;
mod path;

pub use compile::{CompiledPolicy, CompiledRule, CompiledWorkload, Request};
pub use decision::{Decision, DenyReason, Mode};
pub use document::{PolicyDocument, RuleDocument, WorkloadDocument};
pub use error::{PolicyError, Problem};
pub use matchers::{GrpcPattern, RouteTemplate, SourcePattern};
pub use path::{NormalizedPath, normalize_path};
