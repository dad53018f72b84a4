//! The telemetry commands: `hallpass report`, `hallpass baseline …` and
//! `hallpass policy suggest`. They read what the sidecar publishes (its
//! `/callgraph`, a saved copy of it, its baseline file, its audit log) and
//! never touch the decision path.

pub mod baseline;
mod fetch;
mod prometheus;
pub mod report;
pub mod suggest;
mod templates;

#[cfg(test)]
mod tests;

/// `2026-01-01T00:00:00Z` for Unix seconds (`never` for 0 or less).
fn rfc3339(unix_seconds: i64) -> String {
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
