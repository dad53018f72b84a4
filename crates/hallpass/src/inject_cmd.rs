//! `hallpass inject` (feature `injector`): the Kubernetes sidecar injection
//! webhook, or, with `--render`, what it would do to one pod (no server, no
//! cluster).
//!
//! Exit codes: 0 after a clean shutdown, or a pod rendered (injected or left
//! alone); 1 the webhook would refuse the pod, bad TLS files or a bind
//! failure; 64 an invalid injector config or an unreadable pod file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use hallpass_injector::inject::{self, Rendered};
use hallpass_injector::{Injector, InjectorConfig, InjectorError, Scope};

use crate::{FAILED, USAGE, fail, process};

/// Arguments of `hallpass inject`.
#[derive(Debug, clap::Args)]
pub struct InjectArgs {
    /// The injector config (the Helm chart renders it). Without it, the
    /// built-in defaults are used.
    #[arg(long, env = "HALLPASS_INJECTOR_CONFIG")]
    config: Option<PathBuf>,
    /// Print the pod in FILE (YAML or JSON, as `kubectl get pod -o yaml`
    /// shows it) with hallpass injected, and exit. Nothing is served.
    #[arg(long, value_name = "POD_FILE")]
    render: Option<PathBuf>,
    /// With --render: decide as if the pod's namespace had the label
    /// hallpass.io/inject=true.
    #[arg(long, requires = "render")]
    namespace_opted_in: bool,
    /// With --render: the pod's namespace (which overrides the chart allows
    /// there, the derived workload ID). Default: the pod's
    /// `metadata.namespace`, else `default`.
    #[arg(long, requires = "render", value_name = "NAMESPACE")]
    namespace: Option<String>,
}

/// Run `hallpass inject`.
pub fn run(args: InjectArgs) -> ExitCode {
    let loaded = match &args.config {
        Some(path) => InjectorConfig::load(path),
        None => InjectorConfig::from_yaml(""),
    };
    let config = match loaded {
        Ok(config) => config,
        Err(e) => return fail(e, USAGE),
    };
    if let Some(pod_file) = &args.render {
        let scope = if args.namespace_opted_in {
            Scope::Namespace
        } else {
            Scope::Pod
        };
        return render(&config, scope, args.namespace.as_deref(), pod_file);
    }
    process::init_json_logs();
    let runtime = match process::runtime() {
        Ok(runtime) => runtime,
        Err(e) => return fail(e, FAILED),
    };
    let delay = Duration::from_secs(config.shutdown_delay_seconds);
    let served = runtime.block_on(async move {
        let injector = Injector::bind(config).await?;
        tracing::info!(listen = %injector.local_addr()?, "injector listening");
        injector
            .run(async move {
                process::shutdown_signal().await;
                // Keep answering while the endpoint is removed from the Service.
                tracing::info!(delay_seconds = delay.as_secs(), "shutting down");
                tokio::time::sleep(delay).await;
            })
            .await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ InjectorError::Config(_)) => fail(e, USAGE),
        Err(e) => fail(e, FAILED),
    }
}

fn render(
    config: &InjectorConfig,
    scope: Scope,
    namespace: Option<&str>,
    pod_file: &Path,
) -> ExitCode {
    let text = match std::fs::read_to_string(pod_file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", pod_file.display());
            return ExitCode::from(USAGE);
        }
    };
    let rendered = match inject::render(config, scope, namespace, &text) {
        Ok(rendered) => rendered,
        Err(e) => {
            eprintln!("error: {}: {e}", pod_file.display());
            return ExitCode::from(FAILED);
        }
    };
    match rendered {
        Rendered::Skipped(why, pod) => {
            eprintln!("not injected: {}", why.as_str());
            print!("{pod}");
            ExitCode::SUCCESS
        }
        Rendered::Rejected(problems) => {
            for p in problems {
                eprintln!("rejected: {p}");
            }
            ExitCode::from(FAILED)
        }
        Rendered::Injected(mode, pod) => {
            eprintln!("injected ({} mode)", mode.as_str());
            print!("{pod}");
            ExitCode::SUCCESS
        }
    }
}
