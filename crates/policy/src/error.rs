//! Why a policy could not be loaded: every problem, with its place.

use std::fmt;

/// One problem in a policy file, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// A stable code for the kind of problem (`yaml_syntax`, `unknown_key`,
    /// `duplicate_key`, `missing_key`, `wrong_type`, `invalid_value`).
    pub code: &'static str,
    /// Key path, e.g. `workloads."spiffe://…/lab-results".allow[0].from[1]`.
    pub path: String,
    /// 1-based line and column, when known.
    pub location: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some((line, col)) => write!(f, "{line}:{col}: {}: {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Errors from loading a policy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read policy file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The policy is invalid; every problem found is listed.
    #[error("invalid policy:\n{}", list(.0))]
    Invalid(Vec<Problem>),
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}
