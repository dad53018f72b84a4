//! Errors of the injector: config problems, TLS material, serving.

use std::path::PathBuf;

/// One problem in the injector config or in a pod's `hallpass.io/*`
/// annotations: the problem type every hallpass file uses. Its `path` is a
/// key path (`sidecar.adminPort`) or an annotation name (`hallpass.io/mode`).
pub use hallpass_diagnostics::Problem;

/// Errors that stop the injector from starting or serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InjectorError {
    /// The config file cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The config is invalid; every problem found is listed.
    #[error("invalid injector config:\n{}", .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Config(Vec<Problem>),
    /// The serving certificate or key cannot be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The listener cannot be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// Other I/O failure while serving.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}
