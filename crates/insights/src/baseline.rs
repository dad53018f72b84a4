//! Learned call-path baselines (`telemetry.baseline`, see docs/metrics.md),
//! behind `hallpass baseline show|export|merge`.
//!
//! - [`show`] prints the edges of a baseline file.
//! - [`export`] turns what a running sidecar has seen into a baseline:
//!   every observed edge that was allowed (or is already in its baseline).
//!   Denied edges never become normal.
//! - [`merge_files`] makes the union; the result is a finished baseline (no
//!   learning window carries over).
//!
//! Writing goes through [`Baseline::save`], which replaces the file
//! atomically and never follows a planted symlink.

use std::path::PathBuf;
use std::sync::Arc;

use hallpass_telemetry::{Baseline, CallGraph, EdgeKey, Escaped};

use crate::http::HttpOptions;
use crate::source::{Source, load_all};
use crate::{InsightsError, rfc3339};

/// The baseline a running sidecar implies (its admin `/callgraph`, read
/// with `options`). What a sidecar serves is checked like a file: the
/// sidecar may be the compromised workload.
pub fn export(admin: &Source, options: &HttpOptions) -> Result<Baseline, InsightsError> {
    let graph = load_all(std::slice::from_ref(admin), options)?;
    let baseline = from_callgraph(&graph);
    if let Some(problem) = baseline.edges.iter().find_map(|e| e.check().err()) {
        return Err(InsightsError::Invalid {
            origin: admin.to_string(),
            message: problem,
        });
    }
    Ok(baseline)
}

/// The union of the baselines in `files`, and each file's edge count.
pub fn merge_files(files: &[PathBuf]) -> Result<(Baseline, Vec<usize>), InsightsError> {
    let mut merged: Option<Baseline> = None;
    let mut counts = Vec::new();
    for file in files {
        let b = Baseline::load(file)?;
        counts.push(b.edges.len());
        match &mut merged {
            Some(m) => m.merge(&b),
            // The first file's usage is the start (merging it into an empty
            // baseline would lose its tracking start).
            None => {
                let mut first = b;
                first.learning_until_ms = None;
                merged = Some(first);
            }
        }
    }
    Ok((merged.unwrap_or_default(), counts))
}

/// The baseline a sidecar's call graph implies: allowed (or already
/// baselined) edges only.
pub fn from_callgraph(graph: &CallGraph) -> Baseline {
    let mut baseline = Baseline::new();
    for e in graph
        .observed
        .iter()
        .filter(|e| e.allowed > 0 || e.in_baseline)
    {
        baseline.edges.insert(EdgeKey {
            source: Arc::from(e.source.as_str()),
            destination: Arc::from(e.destination.as_str()),
            route: Arc::from(e.route.as_str()),
            method: Arc::from(e.method.as_str()),
        });
    }
    baseline
}

/// The text form of `baseline show`. Every string from the file is escaped
/// for the terminal ([`Escaped`]); `Baseline::load` has already refused
/// fields that are not what a sidecar writes.
pub fn show(baseline: &Baseline, name: &str) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: version {}, {} edges",
        Escaped(name),
        baseline.version,
        baseline.edges.len()
    );
    if let Some(until) = baseline.learning_until_ms {
        let _ = writeln!(
            out,
            "learning window ends {} (a sidecar started before then keeps learning)",
            rfc3339(until / 1000)
        );
    }
    // The file is sorted by source first; list by destination.
    let mut by_destination: Vec<&EdgeKey> = baseline.edges.iter().collect();
    by_destination.sort_by(|a, b| {
        (&a.destination, &a.source, &a.route, &a.method).cmp(&(
            &b.destination,
            &b.source,
            &b.route,
            &b.method,
        ))
    });
    let mut current: Option<&str> = None;
    for e in by_destination {
        if current != Some(&*e.destination) {
            let _ = writeln!(out, "\n{}", Escaped(&e.destination));
            current = Some(&e.destination);
        }
        let _ = writeln!(
            out,
            "  {:<7} {:<40} from {}",
            Escaped(&e.method).to_string(),
            Escaped(&e.route).to_string(),
            Escaped(&e.source)
        );
    }
    out
}
