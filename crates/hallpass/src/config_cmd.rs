//! `hallpass config check`: the sidecar's config validated as `serve`
//! would read it (the file and the `HALLPASS_*` variables of this
//! environment), without starting anything. In the sidecar build too: the
//! sidecar image runs it as a pre-flight check.
//!
//! Exit codes, as `policy check` (docs/reference.md): 0 no errors
//! (warnings allowed unless `--strict`), 1 errors (or warnings with
//! `--strict`), 64 usage (bad arguments, unreadable file).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use hallpass_policy::check::Report;
use hallpass_server::Settings;

use crate::USAGE;
use crate::policy_cmd::Format;

/// The `hallpass config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a sidecar config file and the HALLPASS_* variables of this
    /// environment, as `serve` would read them, without starting: every
    /// problem is printed with its line:column (or variable) and key path.
    /// Exit 0 when there are no errors (warnings allowed unless --strict),
    /// 1 on errors, 64 on usage errors.
    Check {
        /// The config file (see docs/configuration.md).
        file: PathBuf,
        /// Output: `text` for people, `json` for CI.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Warnings fail too (exit 1), for CI.
        #[arg(long)]
        strict: bool,
    },
}

/// Run a `hallpass config` subcommand; returns the exit code.
pub fn run(command: ConfigCommand) -> ExitCode {
    let ConfigCommand::Check {
        file,
        format,
        strict,
    } = command;
    let name = file.display().to_string();
    let findings = match Settings::check_file(&file, std::env::vars()) {
        Ok(findings) => findings,
        Err(e) => {
            eprintln!("error: cannot read {name}: {e}");
            return ExitCode::from(USAGE);
        }
    };
    let report = Report::new(findings);
    match format {
        Format::Text => print!("{}", report.to_text(&name)),
        Format::Json => println!("{}", report.to_json(&name)),
    }
    if strict && report.errors() == 0 && report.warnings() > 0 {
        eprintln!("{name}: --strict: warnings fail the check");
        return ExitCode::from(1);
    }
    ExitCode::from(u8::from(report.errors() > 0))
}
