//! hallpass insights: the offline analyses behind `hallpass report`,
//! `hallpass baseline …` and `hallpass policy suggest`.
//!
//! They read what sidecars publish (a `/callgraph` over HTTP or saved to a
//! file, the metrics a Prometheus scraped, a baseline file, an audit log)
//! and never touch the decision path, so the sidecar binary does not link
//! this crate (`cargo build -p hallpass --no-default-features`).
//!
//! - [`source`]: where a call graph comes from ([`Source`]) and how several
//!   are merged; [`prometheus`] builds the mesh-wide one from Prometheus.
//! - [`http`]: the one HTTP client (reqwest over rustls): HTTPS with the
//!   system's roots or a CA file, extra headers, a bearer token, bounded
//!   answers, no downgrade from HTTPS on a redirect.
//! - [`report`]: unused and over-broad permissions, with edges credited to
//!   rules through the policy crate's compiled matchers.
//! - [`suggest`] and [`templates`]: a least-privilege policy from what was
//!   seen, identifiers turned into parameters.
//! - [`replay`]: re-decide an audit log's calls under a candidate policy
//!   (`hallpass policy replay`), streaming, with bounded tables.
//! - [`stale`]: stale grants and offboarding candidates
//!   (`hallpass report --stale 30d`), from persisted usage.
//! - [`baseline`]: show, export and merge learned call-path baselines.
//!
//! Inputs are typed at the edge (URLs, header names and values, source
//! patterns, route templates); the binary only parses arguments and prints.
//! Everything read may have been written by a compromised workload: text
//! output goes through [`hallpass_telemetry::Escaped`].

pub mod baseline;
mod error;
pub mod http;
pub mod prometheus;
pub mod replay;
pub mod report;
pub mod source;
pub mod stale;
pub mod suggest;
pub mod templates;

pub use error::InsightsError;
pub use http::{HttpClient, HttpOptions};
pub use source::{Source, load_all, merge};

/// `2026-01-01T00:00:00Z` for Unix seconds (`never` for 0 or less).
pub fn rfc3339(unix_seconds: i64) -> String {
    if unix_seconds <= 0 {
        return "never".into();
    }
    time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix_seconds.to_string())
}
