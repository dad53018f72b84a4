//! The `hallpass` command: a thin shell over the library crates. It parses
//! arguments, sets up logging and the runtime, calls a library and prints.
//!
//! Two builds of one command:
//! - the default build is the operator's full CLI;
//! - `--no-default-features` is the sidecar: `serve`, `config check` (its
//!   pre-flight) and `policy check|test|explain` (the policy code `serve`
//!   runs anyway). The features
//!   `tools` (`report`, `baseline`, `policy suggest`, `policy replay`), `demo` and `injector`
//!   (`inject`) add the rest; `scripts/check-deps.sh` proves the sidecar
//!   links none of it.
//!
//! Exit codes (docs/reference.md): 0 success; 1 a failed check (errors in a
//! policy, a failed test case, a source that could not be read, a failed
//! demo, a runtime failure); 64 (`EX_USAGE` of sysexits) a usage error: bad
//! arguments, an unreadable input or unwritable output, or an invalid config
//! at `serve` start.

mod breakglass_cmd;
mod config_cmd;
#[cfg(test)]
mod help_tests;
#[cfg(feature = "injector")]
mod inject_cmd;
mod policy_cmd;
mod process;
#[cfg(feature = "tools")]
mod replay_cmd;
#[cfg(feature = "tools")]
mod tools_cmd;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hallpass_server::{ServerError, Settings, Sidecar};

/// A failed check.
const FAILED: u8 = 1;
/// A usage error (sysexits `EX_USAGE`).
const USAGE: u8 = 64;

#[derive(Debug, Parser)]
#[command(
    name = "hallpass",
    version,
    about = "Envoy ext_authz sidecar: SPIFFE identity, least-privilege policy, call-path telemetry"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the sidecar.
    Serve {
        /// The config file (see docs/configuration.md). HALLPASS_* variables
        /// override its keys.
        #[arg(long, env = "HALLPASS_CONFIG")]
        config: PathBuf,
    },
    /// Check a sidecar config file without starting.
    Config {
        #[command(subcommand)]
        command: config_cmd::ConfigCommand,
    },
    /// Work with policy files: check, test, explain.
    #[cfg_attr(
        feature = "tools",
        command(about = "Work with policy files: check, test, explain, suggest, replay")
    )]
    Policy {
        #[command(subcommand)]
        command: policy_cmd::PolicyCommand,
    },
    /// Emergency (break-glass) grants in the overlay file: open, close, list.
    Breakglass {
        #[command(subcommand)]
        command: breakglass_cmd::BreakglassCommand,
    },
    /// A self-contained demo: throwaway PKI, a clinical-mesh policy, the
    /// sidecar in-process, and real gRPC Check calls.
    #[cfg(feature = "demo")]
    Demo {
        /// Keep serving after the scripted calls, so /metrics can be explored.
        #[arg(long)]
        serve: bool,
        /// Print the demo's policy (the shipped clinical-mesh example) and
        /// exit, without running the demo.
        #[arg(long, conflicts_with = "serve")]
        print_policy: bool,
    },
    /// Unused and over-broad permissions, from sidecars or Prometheus.
    #[cfg(feature = "tools")]
    Report(tools_cmd::ReportArgs),
    /// Show, export and merge call-path baselines.
    #[cfg(feature = "tools")]
    Baseline {
        #[command(subcommand)]
        command: tools_cmd::BaselineCommand,
    },
    /// Kubernetes sidecar injection webhook (AdmissionReview v1 over HTTPS),
    /// or `--render POD_FILE` to show what it would inject.
    #[cfg(feature = "injector")]
    Inject {
        #[command(flatten)]
        args: inject_cmd::InjectArgs,
    },
}

/// mimalloc rather than glibc's malloc: under load, glibc's allocator took
/// about a fifth of the sidecar's CPU (docs/performance.md, "What each
/// change bought").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` land here too, and are not errors.
            let code = if e.exit_code() == 0 { 0 } else { USAGE };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Serve { config } => serve(&config),
        Command::Config { command } => config_cmd::run(command),
        Command::Policy { command } => policy_cmd::run(command),
        Command::Breakglass { command } => breakglass_cmd::run(command),
        #[cfg(feature = "demo")]
        Command::Demo {
            serve,
            print_policy,
        } => {
            if print_policy {
                print!("{}", hallpass_demo::POLICY);
                ExitCode::SUCCESS
            } else {
                demo(serve)
            }
        }
        #[cfg(feature = "tools")]
        Command::Report(args) => tools_cmd::report(&args),
        #[cfg(feature = "tools")]
        Command::Baseline { command } => tools_cmd::baseline(command),
        #[cfg(feature = "injector")]
        Command::Inject { args } => inject_cmd::run(args),
    }
}

/// `hallpass serve`: 64 for an invalid config, 1 when the sidecar cannot
/// bind or fails, 0 after a clean shutdown.
fn serve(config: &Path) -> ExitCode {
    process::init_json_logs();
    hallpass_server::log_panics();
    let settings = match Settings::load(config) {
        Ok(settings) => settings,
        Err(e) => return fail(e, USAGE),
    };
    let served = process::serve_runtime().map_err(ServerError::Io).and_then(|rt| {
        rt.block_on(async {
            let sidecar = Sidecar::bind(settings).await?;
            tracing::info!(authz = %sidecar.authz_addr(), admin = %sidecar.admin_addr()?, "listening");
            sidecar.run(process::shutdown_signal()).await
        })
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ ServerError::Config(_)) => fail(e, USAGE),
        Err(e) => fail(e, FAILED),
    }
}

/// `hallpass demo`: 0 when every scripted call got its expected answer.
#[cfg(feature = "demo")]
fn demo(keep_serving: bool) -> ExitCode {
    process::init_quiet_logs();
    let runtime = match process::runtime() {
        Ok(runtime) => runtime,
        Err(e) => return fail(e, FAILED),
    };
    match runtime.block_on(hallpass_demo::run(keep_serving)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(FAILED),
        Err(e) => fail(e, FAILED),
    }
}

/// Print `error: …` with its causes and exit with `code`.
fn fail<E: std::error::Error + Send + Sync + 'static>(error: E, code: u8) -> ExitCode {
    eprintln!("error: {:#}", anyhow::Error::new(error));
    ExitCode::from(code)
}
