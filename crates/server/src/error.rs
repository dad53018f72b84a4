//! Why the sidecar could not start or stopped serving.

use crate::config::Problem;

/// Errors that stop the sidecar from starting or serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The config is invalid; every problem found is listed, each with its
    /// key path and its place (`FILE:LINE:COL`, or the variable that set it).
    #[error("invalid config:\n{}", .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Config(Vec<Problem>),
    /// A listener could not be bound. The message names the listener's
    /// key and address; the OS error is its source (printed once, after
    /// it, by the error chain).
    #[error("{listener}: cannot listen on {addr}")]
    Bind {
        /// The config key of the listener: `authz.listen` or `admin.listen`.
        listener: &'static str,
        /// The address.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("authz server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Metrics could not be set up.
    #[error(transparent)]
    Telemetry(#[from] hallpass_telemetry::TelemetryError),
    /// Other I/O failure while serving.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}
