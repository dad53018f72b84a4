//! `hallpass policy check|test|explain`: thin wrappers over `hallpass_policy`,
//! which holds the checks, the test runner and the trace, so that the tools
//! run the very code the sidecar runs. They are in the sidecar build too.
//! `policy suggest` (feature `tools`) is in `tools_cmd.rs`.
//!
//! Exit codes (stable, documented in docs/policy.md and docs/reference.md):
//!
//! | code | check | test | explain |
//! |---|---|---|---|
//! | 0 | no errors (warnings allowed unless `--strict`) | every case passed | a decision was printed |
//! | 1 | errors (or warnings, with `--strict`) | a case failed, the policy or test file is invalid, or coverage is below `--min-coverage` | the policy is invalid |
//! | 64 | usage: bad arguments, unreadable file | same | same |

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{ArgGroup, Subcommand, ValueEnum};
use hallpass_identity::SpiffeId;
use hallpass_policy::check::{CheckOptions, check_files_with, check_with, unix_now_ms};
use hallpass_policy::suite::Suite;
use hallpass_policy::{
    CompiledPolicy, Method, Request, SourcePattern, parse_rfc3339_ms, parse_serial,
    read_policy_files,
};

use crate::USAGE;

/// The `hallpass policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate and lint a policy: every error and warning is printed with
    /// its file, line:column and key path. Give one file, or several files
    /// and directories (every *.yaml/*.yml inside, hidden names skipped) to
    /// check them as one policy: then every destination defined in two
    /// files, every mesh-wide section outside the one platform file and
    /// every destination outside its file's `owner` scope is reported.
    /// Exit 0 when there are no errors (warnings allowed unless --strict),
    /// 1 on errors, 64 on usage errors.
    Check {
        /// The policy: a file, or several files and directories.
        #[arg(required = true, value_name = "POLICY")]
        files: Vec<PathBuf>,
        /// Output: `text` for people, `json` for CI.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Judge time-bound grants as of this RFC 3339 time instead of now.
        #[arg(long, value_name = "RFC3339")]
        now: Option<String>,
        /// Warnings fail too (exit 1), for CI.
        #[arg(long)]
        strict: bool,
        /// Every rule must have a data class (its own `data_class`, or its
        /// destination's): a rule without one is an error.
        #[arg(long)]
        require_data_class: bool,
    },
    /// Run decision test cases (request -> expected decision) against a
    /// policy (a file, or several files and directories combined). Exit 0
    /// when all pass, 1 on any failure (or coverage below --min-coverage).
    Test {
        /// The policy: a file, or several files and directories.
        #[arg(required = true, num_args = 1.., value_name = "POLICY")]
        policy: Vec<PathBuf>,
        /// The test file (see docs/policy.md#hallpass-policy-test).
        tests: PathBuf,
        /// Time for cases that give none, instead of now (RFC 3339).
        #[arg(long, value_name = "RFC3339")]
        now: Option<String>,
        /// Also report coverage: per destination, the rules no case
        /// exercises and the deny reasons no case expects; coverage is
        /// covered rules / rules (docs/policy.md#coverage).
        #[arg(long)]
        coverage: bool,
        /// Exit 1 when the coverage over every destination is below this
        /// per cent (0 to 100, e.g. 90 or 99.5). Implies --coverage.
        #[arg(long, value_name = "PERCENT", value_parser = percent, allow_negative_numbers = true)]
        min_coverage: Option<f64>,
    },
    /// Print the decision for one request and a trace of the evaluation:
    /// trust domain, revocation, path normalisation, then every rule of the
    /// destination with why it did or did not match. The policy is a file,
    /// or several files and directories combined.
    #[command(group(ArgGroup::new("target").required(true).args(["path", "grpc"])))]
    Explain {
        /// The policy: a file, or several files and directories.
        #[arg(required = true, value_name = "POLICY")]
        policy: Vec<PathBuf>,
        /// The caller's SPIFFE ID.
        #[arg(long)]
        source: String,
        /// The destination's SPIFFE ID.
        #[arg(long)]
        destination: String,
        /// HTTP method, case-sensitive as on the wire: `get` is refused with
        /// its right spelling (gRPC calls are POST).
        #[arg(long, default_value = "GET")]
        method: String,
        /// Request path, query included if you like.
        #[arg(long)]
        path: Option<String>,
        /// A gRPC method, `package.Service/Method`, instead of --path.
        #[arg(long)]
        grpc: Option<String>,
        /// A request header, `name=value`; repeat for more.
        #[arg(long = "header", value_name = "NAME=VALUE")]
        headers: Vec<String>,
        /// The caller also presented a valid JWT-SVID.
        #[arg(long)]
        jwt: bool,
        /// Serial of the caller's X.509-SVID (hex), to check `revoked.serials`.
        #[arg(long)]
        serial: Option<String>,
        /// Time of the call (RFC 3339); default now.
        #[arg(long, value_name = "RFC3339")]
        time: Option<String>,
    },
    /// Write a least-privilege policy from an audit log or a saved
    /// /callgraph: one rule per caller and method, with the route templates
    /// seen (identifiers become `{id}`). Exit 0 written, 1 nothing to
    /// suggest, 64 usage.
    #[cfg(feature = "tools")]
    Suggest(crate::tools_cmd::SuggestArgs),
    /// Re-decide the calls of an audit log under a candidate policy (the
    /// policy step only: the recorded caller is taken as proven) and print
    /// what would change: calls newly denied, newly allowed, and those the
    /// record cannot decide (it has route templates, not paths), grouped by
    /// edge, route and rule with counts and first/last time. Exit 1 when
    /// any call would newly be denied (a CI gate) or the candidate is
    /// invalid, 0 otherwise, 64 usage.
    #[cfg(feature = "tools")]
    Replay(crate::replay_cmd::ReplayArgs),
}

/// Output format of `policy check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `FILE:LINE:COL: severity[code]: path: message` lines and a summary.
    Text,
    /// One JSON object: file, errors, warnings, findings.
    Json,
}

/// Run a `hallpass policy` subcommand; returns the exit code.
pub fn run(command: PolicyCommand) -> ExitCode {
    match command_result(command) {
        Ok(code) => ExitCode::from(code),
        Err(usage) => {
            eprintln!("error: {usage}");
            ExitCode::from(USAGE)
        }
    }
}

fn command_result(command: PolicyCommand) -> Result<u8, String> {
    match command {
        #[cfg(feature = "tools")]
        PolicyCommand::Suggest(args) => Ok(crate::tools_cmd::suggest(&args)),
        #[cfg(feature = "tools")]
        PolicyCommand::Replay(args) => Ok(crate::replay_cmd::replay(&args)),
        PolicyCommand::Check {
            files,
            format,
            now,
            strict,
            require_data_class,
        } => {
            let now_ms = time_or_now(now.as_deref(), "--now")?;
            let options = CheckOptions { require_data_class };
            let report = match single_file(&files) {
                Some(file) => check_with(&read(file)?, now_ms.div_euclid(1000), options),
                None => match read_policy_files(&files) {
                    Ok(set) => check_files_with(&set, now_ms.div_euclid(1000), options),
                    Err(hallpass_policy::PolicyError::Invalid(problems)) => {
                        hallpass_policy::check::Report::new(problems)
                    }
                    Err(e) => return Err(e.to_string()),
                },
            };
            let name = shown(&files);
            match format {
                Format::Text => print!("{}", report.to_text(&name)),
                Format::Json => println!("{}", report.to_json(&name)),
            }
            if strict && report.errors() == 0 && report.warnings() > 0 {
                eprintln!("{name}: --strict: warnings fail the check");
                return Ok(1);
            }
            Ok(u8::from(report.errors() > 0))
        }
        PolicyCommand::Test {
            policy,
            tests,
            now,
            coverage,
            min_coverage,
        } => {
            let now = time_or_now(now.as_deref(), "--now")?;
            let Some(compiled) = load_policy(&policy)? else {
                return Ok(1);
            };
            let text = read(&tests)?;
            let suite = match Suite::from_yaml(&text, now) {
                Ok(s) => s,
                Err(problems) => {
                    for p in problems {
                        eprintln!("{}:{p}", tests.display());
                    }
                    return Ok(1);
                }
            };
            let report = suite.run(&compiled);
            print!(
                "{}",
                report.to_text(&tests.display().to_string(), &shown(&policy))
            );
            let mut code = u8::from(report.failed() > 0);
            if coverage || min_coverage.is_some() {
                let covered = report.coverage(&compiled);
                print!("{}", covered.to_text());
                if let Some(min) = min_coverage
                    && !covered.meets(min)
                {
                    eprintln!(
                        "{}: coverage {} is below --min-coverage {min} %",
                        tests.display(),
                        covered.percent_text()
                    );
                    code = 1;
                }
            }
            Ok(code)
        }
        PolicyCommand::Explain {
            policy,
            source,
            destination,
            method,
            path,
            grpc,
            headers,
            jwt,
            serial,
            time,
        } => {
            let source = exact_id(&source, "--source")?;
            let destination = exact_id(&destination, "--destination")?;
            let now = time_or_now(time.as_deref(), "--time")?;
            let serial = serial
                .map(|s| parse_serial(&s).map_err(|e| format!("--serial: {e}")))
                .transpose()?;
            let mut header_map = HashMap::new();
            for h in &headers {
                let (k, v) = h
                    .split_once('=')
                    .ok_or_else(|| format!("--header {h}: expected NAME=VALUE"))?;
                header_map.insert(k.trim().to_ascii_lowercase(), v.to_owned());
            }
            let (method, path) = match (path, grpc) {
                (_, Some(g)) => ("POST".to_owned(), format!("/{g}")),
                (Some(p), None) => (method, p),
                (None, None) => return Err("give --path or --grpc".into()),
            };
            let Some(compiled) = load_policy(&policy)? else {
                return Ok(1);
            };
            let req = Request {
                source: &source,
                method: request_method(&method)?,
                path: &path,
                headers: &header_map,
                has_jwt: jwt,
                serial: serial.as_deref(),
                now_ms: now,
            };
            print!("{}", compiled.explain(&destination, &req));
            Ok(0)
        }
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The one policy file given, when it is one file (not a directory): it
/// is read as a policy file always was.
fn single_file(paths: &[PathBuf]) -> Option<&PathBuf> {
    match paths {
        [one] if !one.is_dir() => Some(one),
        _ => None,
    }
}

/// The policy paths as shown in output.
pub(crate) fn shown(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(" ")
}

/// The compiled policy (one file, or several files and directories
/// combined), or `None` after printing its problems.
pub(crate) fn load_policy(paths: &[PathBuf]) -> Result<Option<CompiledPolicy>, String> {
    let name = shown(paths);
    let compiled = match single_file(paths) {
        Some(path) => CompiledPolicy::from_yaml(&read(path)?),
        None => read_policy_files(paths).and_then(|set| CompiledPolicy::from_files(&set)),
    };
    match compiled {
        Ok(p) => Ok(Some(p)),
        Err(hallpass_policy::PolicyError::Invalid(problems)) => {
            for p in problems {
                if p.file.is_some() {
                    eprintln!("{p}");
                } else {
                    eprintln!("{name}:{p}");
                }
            }
            eprintln!("{name}: invalid policy (run `hallpass policy check` for details)");
            Ok(None)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// `--method` as the sidecar would see it. A method is case-sensitive, so
/// `get` would be explained as a deny of an unnamed method: that is never
/// what was meant, so it is refused with the right spelling. Any other
/// token (`PROPFIND`) is explained as the sidecar sees it: [`Method::Other`].
fn request_method(text: &str) -> Result<Method, String> {
    let upper = text.to_ascii_uppercase();
    if Method::named(text).is_none() && Method::named(&upper).is_some() {
        return Err(format!(
            "--method {text}: HTTP methods are case-sensitive; did you mean {upper}?"
        ));
    }
    // RFC 9110 token characters.
    let token = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        let named: Vec<&str> = Method::NAMED.iter().map(|m| m.as_str()).collect();
        return Err(format!(
            "--method {text:?}: not an HTTP method; rules can name {}",
            named.join(", ")
        ));
    }
    Ok(Method::parse(text))
}

/// `--min-coverage`: a per cent from 0 to 100.
fn percent(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|p| (0.0..=100.0).contains(p))
        .ok_or_else(|| "expected a per cent from 0 to 100, e.g. 90 or 99.5".to_owned())
}

fn exact_id(text: &str, flag: &str) -> Result<SpiffeId, String> {
    match SourcePattern::parse(text) {
        Ok(SourcePattern::Exact(id)) => Ok(id),
        Ok(_) => Err(format!("{flag}: an exact SPIFFE ID, not a pattern")),
        Err(e) => Err(format!("{flag}: {e}")),
    }
}

/// `--now`/`--time` as Unix milliseconds.
fn time_or_now(text: Option<&str>, flag: &str) -> Result<i64, String> {
    match text {
        None => Ok(unix_now_ms()),
        Some(t) => parse_rfc3339_ms(t).map_err(|e| format!("{flag}: {e}")),
    }
}
