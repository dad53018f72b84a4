//! `hallpass inject`: the Kubernetes sidecar injection webhook, or, with
//! `--render`, what it would do to one pod (no server, no cluster).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use hallpass_injector::inject::{self, Rendered};
use hallpass_injector::{Injector, InjectorConfig, Scope};

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

pub fn run(args: InjectArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => InjectorConfig::load(path)?,
        None => InjectorConfig::from_yaml("")?,
    };
    if let Some(pod_file) = &args.render {
        let scope = if args.namespace_opted_in {
            Scope::Namespace
        } else {
            Scope::Pod
        };
        return render(&config, scope, args.namespace.as_deref(), pod_file);
    }
    super::init_json_logs();
    let delay = Duration::from_secs(config.shutdown_delay_seconds);
    super::runtime()?.block_on(async move {
        let injector = Injector::bind(config).await?;
        tracing::info!(listen = %injector.local_addr()?, "injector listening");
        injector
            .run(async move {
                super::shutdown_signal().await;
                // Keep answering while the endpoint is removed from the Service.
                tracing::info!(delay_seconds = delay.as_secs(), "shutting down");
                tokio::time::sleep(delay).await;
            })
            .await?;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

fn render(
    config: &InjectorConfig,
    scope: Scope,
    namespace: Option<&str>,
    pod_file: &Path,
) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(pod_file)
        .with_context(|| format!("cannot read {}", pod_file.display()))?;
    let rendered = inject::render(config, scope, namespace, &text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", pod_file.display()))?;
    match rendered {
        Rendered::Skipped(why, pod) => {
            eprintln!("not injected: {}", why.as_str());
            print!("{pod}");
            Ok(ExitCode::SUCCESS)
        }
        Rendered::Rejected(problems) => {
            for p in problems {
                eprintln!("rejected: {p}");
            }
            Ok(ExitCode::from(1))
        }
        Rendered::Injected(mode, pod) => {
            eprintln!("injected ({} mode)", mode.as_str());
            print!("{pod}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
