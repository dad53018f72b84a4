//! The one error type of the offline analyses.

use std::path::PathBuf;

/// What can stop an analysis. Every message names the file or URL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InsightsError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}: {message}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// An HTTP option (`--header`, the bearer token, the CA file, a URL) is
    /// not usable.
    #[error("{0}")]
    Option(String),
    /// An HTTP request failed or was answered with something other than 200.
    #[error("GET {url}: {message}")]
    Http {
        /// The URL (never carries the bearer token: that is a header).
        url: String,
        /// What went wrong.
        message: String,
    },
    /// A document is not what it should be (not a call graph, not a
    /// Prometheus answer, a baseline a sidecar would never write).
    #[error("{origin}: {message}")]
    Invalid {
        /// The file or URL it came from.
        origin: String,
        /// What is wrong with it.
        message: String,
    },
    /// The policy given for the declared edges does not load.
    #[error("{}: {message}", path.display())]
    Policy {
        /// The policy file.
        path: PathBuf,
        /// Its problems.
        message: String,
    },
    /// A baseline file could not be read, was not what a sidecar writes, or
    /// could not be written (the message names the file).
    #[error(transparent)]
    Baseline(#[from] hallpass_telemetry::TelemetryError),
    /// The async runtime for the HTTP reads could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}
