//! The `hallpass` command: a thin shell over the library crates.
//!
//! Exit codes: 0 success, 1 a failed check (invalid config or policy, a
//! failed demo), 2 usage errors (from clap).

mod demo;
mod inject_cmd;
mod policy_cmd;
mod telemetry_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hallpass_server::{Settings, Sidecar};

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
        /// The config file (design §4). HALLPASS_* variables override its keys.
        #[arg(long, env = "HALLPASS_CONFIG")]
        config: PathBuf,
    },
    /// Work with policy files: check, test, explain.
    Policy {
        #[command(subcommand)]
        command: policy_cmd::PolicyCommand,
    },
    /// A self-contained demo: throwaway PKI, a clinical-mesh policy, the
    /// sidecar in-process, and real gRPC Check calls.
    Demo {
        /// Keep serving after the scripted calls, so /metrics can be explored.
        #[arg(long)]
        serve: bool,
    },
    /// Unused and over-broad permissions, from a sidecar's /callgraph.
    Report(telemetry_cmd::report::ReportArgs),
    /// Show, export and merge call-path baselines.
    Baseline {
        #[command(subcommand)]
        command: telemetry_cmd::baseline::BaselineCommand,
    },
    /// Kubernetes sidecar injection webhook (AdmissionReview v1 over HTTPS),
    /// or `--render POD_FILE` to show what it would inject.
    Inject {
        #[command(flatten)]
        args: inject_cmd::InjectArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { config } => {
            init_json_logs();
            hallpass_server::log_panics();
            let settings = Settings::load(&config)?;
            runtime()?.block_on(serve(settings))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy { command } => Ok(policy_cmd::run(command)),
        Command::Inject { args } => inject_cmd::run(args),
        Command::Report(args) => Ok(telemetry_cmd::report::run(&args)),
        Command::Baseline { command } => Ok(telemetry_cmd::baseline::run(command)),
        Command::Demo { serve } => {
            init_quiet_logs();
            let passed = runtime()?.block_on(demo::run(serve))?;
            Ok(if passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let sidecar = Sidecar::bind(settings).await?;
    tracing::info!(authz = %sidecar.authz_addr(), admin = %sidecar.admin_addr()?, "listening");
    sidecar.run(shutdown_signal()).await?;
    Ok(())
}

/// Resolves on SIGTERM (Kubernetes) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM; only Ctrl-C will stop hallpass");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// JSON lines on stdout; level from `HALLPASS_LOG` (default `info`).
fn init_json_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HALLPASS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .init();
}

/// Warnings only, on stderr, so the demo's table stays readable.
fn init_quiet_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HALLPASS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .init();
}
