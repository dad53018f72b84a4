//! `hallpass baseline show|export|merge`: the learned call-path baseline
//! (`telemetry.baseline`, see docs/metrics.md).
//!
//! - `show FILE` prints the edges of a baseline file.
//! - `export --admin URL` turns what a running sidecar has seen into a
//!   baseline: every observed edge that was allowed (or is already in its
//!   baseline). Denied edges never become normal. Written to stdout, or
//!   atomically to `-o FILE`.
//! - `merge A B… -o OUT` writes the union, atomically; the result is a
//!   finished baseline (no learning window carries over).
//!
//! Exit codes: 0 done; 1 a file or sidecar could not be read or written;
//! 2 usage errors.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Subcommand, ValueEnum};
use hallpass_telemetry::{Baseline, CallGraph, EdgeKey, Escaped, json_for_terminal};

use super::fetch::{self, Source};
use super::rfc3339;

/// The `hallpass baseline` subcommands.
#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Print a baseline file: its learning window and its edges.
    Show {
        /// The baseline file (`telemetry.baseline`).
        file: PathBuf,
        /// `text` for people, `json` for the file itself, normalised.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Make a baseline from a running sidecar's /callgraph: every observed
    /// edge that was allowed becomes normal.
    Export {
        /// The sidecar's admin address, e.g. http://127.0.0.1:9902.
        #[arg(long, value_name = "URL")]
        admin: String,
        /// Write here (atomically) instead of to standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Merge baselines (the union of their edges) into one file, atomically.
    Merge {
        /// The baseline files.
        #[arg(required = true, num_args = 2..)]
        files: Vec<PathBuf>,
        /// The merged baseline.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
}

/// Output of `baseline show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A summary and one line per edge.
    Text,
    /// The baseline JSON.
    Json,
}

/// Run a `hallpass baseline` subcommand; returns the exit code.
pub fn run(command: BaselineCommand) -> ExitCode {
    match result(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", Escaped(&format!("{e:#}")));
            ExitCode::from(1)
        }
    }
}

fn result(command: BaselineCommand) -> anyhow::Result<()> {
    match command {
        BaselineCommand::Show { file, format } => {
            let baseline = Baseline::load(&file)?;
            match format {
                Format::Text => print!("{}", show(&baseline, &file.display().to_string())),
                Format::Json => println!(
                    "{}",
                    json_for_terminal(&serde_json::to_string_pretty(&baseline)?)
                ),
            }
        }
        BaselineCommand::Export { admin, output } => {
            let graph = fetch::load_all(&[Source::Admin(admin.clone())])?;
            let baseline = from_callgraph(&graph);
            // What a sidecar serves is checked like a file: the sidecar may
            // be the compromised workload.
            if let Some(problem) = baseline.edges.iter().find_map(|e| e.check().err()) {
                anyhow::bail!("{admin}: {problem}");
            }
            match output {
                Some(path) => {
                    baseline.save(&path)?;
                    eprintln!(
                        "exported {} edges from {admin} to {}",
                        baseline.edges.len(),
                        path.display()
                    );
                }
                None => println!(
                    "{}",
                    json_for_terminal(&serde_json::to_string_pretty(&baseline)?)
                ),
            }
        }
        BaselineCommand::Merge { files, output } => {
            let mut merged = Baseline::new();
            let mut counts = Vec::new();
            for file in &files {
                let b = Baseline::load(file)?;
                counts.push(b.edges.len().to_string());
                merged.merge(&b);
            }
            merged.save(&output)?;
            eprintln!(
                "merged {} edges into {} edges in {}",
                counts.join(" + "),
                merged.edges.len(),
                output.display()
            );
        }
    }
    Ok(())
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
