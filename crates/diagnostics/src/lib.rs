//! hallpass diagnostics: one way to report a problem in any YAML file
//! hallpass reads (the policy, its test suites, the sidecar config, the
//! injector config).
//!
//! - [`Problem`]: a stable code, a key path (`trust.bundles[0].x509`), an
//!   optional file and `line:column`, a message and an optional hint (for
//!   example the keys that are valid where an unknown one was written).
//!   Errors and lint warnings are both problems, told apart by [`Severity`].
//! - [`Problems`]: the collect-every-error helper. Loaders push into it and
//!   keep going, so a file with five mistakes is reported with five
//!   problems, not one per run.
//! - [`de::from_value`]: serde deserialization that reports every unknown
//!   key and every value of the wrong type, not only serde's first error.
//! - [`yaml`]: a located YAML tree, the key path → `line:column` index, and a
//!   shape check (every unknown, duplicate or missing key and wrong type).
//! - [`path`]: how key paths are written.
//! - [`similar`]: "did you mean …?" for a misspelt key or value.
//! - [`Report`]: the problems of one file as `FILE:LINE:COL:` text or JSON.
//!
//! Nothing here runs on the decision path: only when a file is loaded,
//! reloaded or checked.

pub mod de;
pub mod path;
mod problem;
mod report;
pub mod similar;
pub mod yaml;

pub use problem::{Location, Problem, Problems, Severity, codes};
pub use report::Report;
pub use yaml::LocationIndex;
