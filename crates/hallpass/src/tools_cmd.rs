//! `hallpass report`, `hallpass baseline …` and `hallpass policy suggest`
//! (feature `tools`): arguments and printing; the analyses are
//! `hallpass-insights`.
//!
//! Exit codes: 0 done; 1 a source could not be read (report, baseline), or
//! nothing to suggest; 64 usage (bad arguments, unusable HTTP options, an
//! unreadable input or unwritable output for `policy suggest`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use hallpass_insights::http::parse_base_url;
use hallpass_insights::report::analyze;
use hallpass_insights::suggest::{self, Observations};
use hallpass_insights::{HttpOptions, InsightsError, Source, baseline, load_all};
use hallpass_policy::Mode;
use hallpass_telemetry::{Escaped, json_for_terminal};
use url::Url;

use crate::{FAILED, USAGE};

/// How to reach admin endpoints and Prometheus (every command that reads
/// them takes these).
#[derive(Debug, Args)]
pub struct HttpArgs {
    /// Send this header with every request, `NAME:VALUE`; repeat for more
    /// (e.g. a tenant header of a Prometheus proxy).
    #[arg(long = "header", value_name = "NAME:VALUE")]
    headers: Vec<String>,
    /// Send `Authorization: Bearer <the file's contents>` (e.g. a
    /// Kubernetes service account token).
    #[arg(long, value_name = "FILE")]
    bearer_token_file: Option<PathBuf>,
    /// Trust only the CA certificates (PEM) in FILE for HTTPS, instead of
    /// the system's roots.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
}

impl HttpArgs {
    fn options(&self) -> Result<HttpOptions, InsightsError> {
        let mut options = HttpOptions::default();
        for header in &self.headers {
            options = options.header(header)?;
        }
        if let Some(path) = &self.bearer_token_file {
            options = options.bearer_token_file(path)?;
        }
        if let Some(path) = &self.ca_file {
            options = options.ca_file(path)?;
        }
        Ok(options)
    }
}

/// Arguments of `hallpass report`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("from").required(true).multiple(true).args(["admin", "state", "prometheus"])))]
pub struct ReportArgs {
    /// A running sidecar's admin address, e.g. http://127.0.0.1:9902
    /// (https:// too). Repeat for every sidecar of a destination.
    #[arg(long, value_name = "URL", value_parser = parse_base_url)]
    admin: Vec<Url>,
    /// A saved `/callgraph` JSON document. Repeatable.
    #[arg(long, value_name = "FILE")]
    state: Vec<PathBuf>,
    /// A Prometheus that scrapes the sidecars (the mesh-wide view), e.g.
    /// http://127.0.0.1:9090 (https:// too). Edges are per (source, destination) there.
    #[arg(long, value_name = "URL", value_parser = parse_base_url)]
    prometheus: Vec<Url>,
    /// The policy, for the declared edges of a `--prometheus` report: a
    /// file, or a directory. Repeat to combine several files and directories
    /// (`policy.files`).
    #[arg(long, value_name = "PATH")]
    policy: Vec<PathBuf>,
    /// Report rules whose last match is older than this many days.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    unused_after: u64,
    /// Instead of the full report: grants unused and identities the policy
    /// names that made no call for this long (`30d`, `12h`, `2w`), from the
    /// usage sidecars persist with their baseline. What was tracked for less
    /// than that is listed as unknown.
    #[arg(long, value_name = "AGE", value_parser = parse_stale_age)]
    stale: Option<StaleAge>,
    /// `text` for people, `json` for tools.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    #[command(flatten)]
    http: HttpArgs,
}

/// The `--stale` age, as given and in seconds.
#[derive(Debug, Clone)]
pub struct StaleAge {
    text: String,
    seconds: u64,
}

fn parse_stale_age(text: &str) -> Result<StaleAge, String> {
    Ok(StaleAge {
        text: text.to_owned(),
        seconds: hallpass_insights::stale::parse_age(text)?,
    })
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For tools.
    Json,
}

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
        #[arg(long, value_name = "URL", value_parser = parse_base_url)]
        admin: Url,
        /// Write here (atomically) instead of to standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        http: HttpArgs,
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

/// Arguments of `hallpass policy suggest`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("input").required(true).args(["from_audit_log", "from_callgraph"])))]
pub struct SuggestArgs {
    /// Audit log files (JSON lines, as hallpass writes them); give the
    /// rotated ones (`audit.jsonl.1` …) too for a longer history.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    from_audit_log: Vec<PathBuf>,
    /// A saved `/callgraph` JSON document: its allowed edges' route
    /// templates and methods.
    #[arg(long, value_name = "FILE")]
    from_callgraph: Option<PathBuf>,
    /// Write the policy here instead of to standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The policy in force (a file or a directory; repeat to combine
    /// several, as `policy.files` does): destinations it defines already,
    /// and `trust_domains`, are left out, so the suggestion can be added to
    /// it as a new (team) file.
    #[arg(long, value_name = "PATH")]
    policy: Vec<PathBuf>,
    /// Mode of every destination in the suggestion: `audit` first, then
    /// `enforce` once the audit log shows no unexpected denies.
    #[arg(long, value_enum, default_value_t = SuggestMode::Audit)]
    mode: SuggestMode,
    /// A path segment with more than this many different values (paths
    /// otherwise equal) becomes a parameter. Identifier-like segments always do.
    #[arg(long, value_name = "N", default_value_t = 5)]
    max_literals: usize,
}

/// Mode written for each destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SuggestMode {
    /// Record denies as `audit_deny`, let calls through.
    Audit,
    /// Deny.
    Enforce,
}

/// Print an error from a file or a sidecar (escaped: it may quote what a
/// compromised workload wrote) and exit with `code`.
fn fail(error: &InsightsError, code: u8) -> ExitCode {
    eprintln!("error: {}", Escaped(&error.to_string()));
    ExitCode::from(code)
}

/// Unusable HTTP options are usage errors; anything else a failed read.
fn code_of(error: &InsightsError) -> u8 {
    match error {
        InsightsError::Option(_) => USAGE,
        _ => FAILED,
    }
}

fn print_json(value: &impl serde::Serialize) -> ExitCode {
    match serde_json::to_string_pretty(value) {
        Ok(json) => {
            println!("{}", json_for_terminal(&json));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(FAILED)
        }
    }
}

/// Run `hallpass report`.
pub fn report(args: &ReportArgs) -> ExitCode {
    let options = match args.http.options() {
        Ok(options) => options,
        Err(e) => return fail(&e, USAGE),
    };
    let sources: Vec<Source> = args
        .admin
        .iter()
        .map(|u| Source::Admin(u.clone()))
        .chain(args.state.iter().map(|p| Source::State(p.clone())))
        .chain(args.prometheus.iter().map(|u| Source::Prometheus {
            url: u.clone(),
            policy: args.policy.clone(),
        }))
        .collect();
    let graph = match load_all(&sources, &options) {
        Ok(graph) => graph,
        Err(e) => return fail(&e, code_of(&e)),
    };
    let names: Vec<String> = sources.iter().map(ToString::to_string).collect();
    if let Some(age) = &args.stale {
        let report = hallpass_insights::stale::analyze(&graph, names, &age.text, age.seconds);
        return match args.format {
            Format::Text => {
                print!("{}", report.to_text());
                ExitCode::SUCCESS
            }
            Format::Json => print_json(&report),
        };
    }
    let report = analyze(&graph, names, args.unused_after);
    match args.format {
        Format::Text => {
            print!("{}", report.to_text());
            ExitCode::SUCCESS
        }
        Format::Json => print_json(&report),
    }
}

/// Run a `hallpass baseline` subcommand.
pub fn baseline(command: BaselineCommand) -> ExitCode {
    match command {
        BaselineCommand::Show { file, format } => {
            let loaded = match hallpass_telemetry::Baseline::load(&file) {
                Ok(b) => b,
                Err(e) => return fail(&e.into(), FAILED),
            };
            match format {
                Format::Text => {
                    print!("{}", baseline::show(&loaded, &file.display().to_string()));
                    ExitCode::SUCCESS
                }
                Format::Json => print_json(&loaded),
            }
        }
        BaselineCommand::Export {
            admin,
            output,
            http,
        } => {
            let exported = http
                .options()
                .and_then(|options| baseline::export(&Source::Admin(admin.clone()), &options));
            let exported = match exported {
                Ok(b) => b,
                Err(e) => return fail(&e, code_of(&e)),
            };
            let Some(path) = output else {
                return print_json(&exported);
            };
            if let Err(e) = exported.save(&path) {
                return fail(&e.into(), FAILED);
            }
            eprintln!(
                "exported {} edges from {admin} to {}",
                exported.edges.len(),
                path.display()
            );
            ExitCode::SUCCESS
        }
        BaselineCommand::Merge { files, output } => {
            let merged = baseline::merge_files(&files).and_then(|(merged, counts)| {
                merged.save(&output)?;
                Ok((merged, counts))
            });
            match merged {
                Ok((merged, counts)) => {
                    let counts: Vec<String> = counts.iter().map(ToString::to_string).collect();
                    eprintln!(
                        "merged {} edges into {} edges in {}",
                        counts.join(" + "),
                        merged.edges.len(),
                        output.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e, FAILED),
            }
        }
    }
}

/// Run `hallpass policy suggest`; returns the exit code.
pub fn suggest(args: &SuggestArgs) -> u8 {
    let (observed, origin) = match &args.from_callgraph {
        Some(path) => (
            Observations::from_callgraph_file(path),
            format!("the call graph {}", path.display()),
        ),
        None => {
            let files: Vec<String> = args
                .from_audit_log
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            (
                Observations::from_audit_logs(&args.from_audit_log),
                format!("the audit log {}", files.join(", ")),
            )
        }
    };
    let mut obs = match observed {
        Ok(obs) => obs,
        Err(e) => {
            eprintln!("error: {}", Escaped(&e.to_string()));
            return USAGE;
        }
    };
    if !args.policy.is_empty() {
        let policy = match crate::policy_cmd::load_policy(&args.policy) {
            Ok(Some(policy)) => policy,
            Ok(None) => return FAILED,
            Err(e) => {
                eprintln!("error: {e}");
                return USAGE;
            }
        };
        let dropped = obs.drop_destinations(|d| {
            hallpass_identity::SpiffeId::new(d).is_ok_and(|id| policy.defines(&id))
        });
        if dropped > 0 {
            eprintln!(
                "left out {} the policy defines already",
                suggest::plural(dropped as u64, "destination")
            );
        }
    }
    for (why, n) in obs.skipped() {
        eprintln!("skipped {}: {why}", obs.counted(n));
    }
    let mode = match args.mode {
        SuggestMode::Audit => Mode::Audit,
        SuggestMode::Enforce => Mode::Enforce,
    };
    let suggestion = match suggest::suggest(&obs, mode, args.max_literals, &origin) {
        Ok(Some(s)) => s,
        Ok(None) => {
            eprintln!(
                "error: nothing to suggest: no call in the input went through to a named destination"
            );
            return FAILED;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return FAILED;
        }
    };
    match &args.output {
        None => print!("{}", suggestion.text),
        Some(path) => {
            if let Err(e) = suggest::write(&suggestion, path) {
                eprintln!("error: {e}");
                return USAGE;
            }
        }
    }
    eprintln!(
        "suggested {} for {} from {}",
        suggest::plural(suggestion.rules as u64, "rule"),
        suggest::plural(suggestion.destinations as u64, "destination"),
        obs.counted(obs.records())
    );
    0
}
