//! The `hallpass.io/*` annotations and labels, and the per-pod overrides they
//! carry.
//!
//! | annotation | values | effect |
//! |---|---|---|
//! | `hallpass.io/inject` | `"true"`, `"false"` | opt a pod in (any namespace) or out (an opted-in namespace) |
//! | `hallpass.io/mode` | `istio`, `standalone` | override the chart's default mode |
//! | `hallpass.io/workload-id` | a SPIFFE ID | the destination whose policy entry applies (`workload.id`) |
//! | `hallpass.io/audit` | `"true"`, `"false"` | audit (decide, record, let through) or enforce, whatever the policy says |
//! | `hallpass.io/audit-log` | `stdout`, `off`, `/var/lib/hallpass/…` | where audit records go (`telemetry.audit_log`) |
//! | `hallpass.io/app-port` | a port | standalone: the app's port Envoy forwards to (default: the first container's first port) |
//! | `hallpass.io/inbound-port` | a port | standalone: Envoy's mTLS port (default from the chart) |
//! | `hallpass.io/app-protocol` | `http1`, `h2c` | standalone: how Envoy talks to the app (`h2c` for gRPC apps) |
//!
//! Written by the injector: the annotation [`INJECTED`] (what was added, as
//! JSON: the idempotency marker) and the label [`SIDECAR_LABEL`] (the mode;
//! for PodMonitors, NetworkPolicies and ClusterSPIFFEIDs to select on).

use std::collections::BTreeMap;

use crate::config::{AppProtocol, Mode};
use crate::error::Problem;

/// Opt in (`"true"`) or out (`"false"`); also the namespace label.
pub const INJECT: &str = "hallpass.io/inject";
/// Per-pod mode override.
pub const MODE: &str = "hallpass.io/mode";
/// Per-pod destination SPIFFE ID.
pub const WORKLOAD_ID: &str = "hallpass.io/workload-id";
/// Per-pod audit (`"true"`) or enforce (`"false"`) override.
pub const AUDIT: &str = "hallpass.io/audit";
/// Per-pod audit log target.
pub const AUDIT_LOG: &str = "hallpass.io/audit-log";
/// Standalone: the app's port.
pub const APP_PORT: &str = "hallpass.io/app-port";
/// Standalone: Envoy's inbound mTLS port.
pub const INBOUND_PORT: &str = "hallpass.io/inbound-port";
/// Standalone: `http1` or `h2c` towards the app.
pub const APP_PROTOCOL: &str = "hallpass.io/app-protocol";
/// Written by the injector: what it added (JSON). Its presence means "never again".
pub const INJECTED: &str = "hallpass.io/injected";
/// Label written by the injector; the value is the mode.
pub const SIDECAR_LABEL: &str = "hallpass.io/sidecar";
/// Istio: inbound ports its iptables rules leave alone (kubelet probes and
/// Prometheus reach hallpass's admin port directly).
pub const ISTIO_EXCLUDE_INBOUND_PORTS: &str = "traffic.sidecar.istio.io/excludeInboundPorts";

/// Every `hallpass.io/` annotation a pod may carry.
pub const KNOWN: &[&str] = &[
    INJECT,
    MODE,
    WORKLOAD_ID,
    AUDIT,
    AUDIT_LOG,
    APP_PORT,
    INBOUND_PORT,
    APP_PROTOCOL,
    INJECTED,
];

/// Writable directory in the sidecar (an `emptyDir`): the call-path baseline
/// and, when chosen, the audit log file.
pub const STATE_DIR: &str = "/var/lib/hallpass";

/// What the pod says about injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptIn {
    /// `hallpass.io/inject: "true"`.
    Yes,
    /// `hallpass.io/inject: "false"`.
    No,
    /// No annotation.
    Unset,
}

/// Read `hallpass.io/inject`. Any value other than `"true"` or `"false"` is a
/// problem: a typo must not silently decide whether a workload is protected.
pub fn opt_in(annotations: &BTreeMap<String, String>) -> Result<OptIn, Problem> {
    match annotations.get(INJECT).map(String::as_str) {
        None => Ok(OptIn::Unset),
        Some("true") => Ok(OptIn::Yes),
        Some("false") => Ok(OptIn::No),
        Some(other) => Err(Problem::new(
            INJECT,
            format!("`{other}` is neither \"true\" nor \"false\""),
        )),
    }
}

/// The per-pod overrides, parsed and checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `hallpass.io/mode`.
    pub mode: Option<Mode>,
    /// `hallpass.io/workload-id`, a canonical SPIFFE ID with a path.
    pub workload_id: Option<String>,
    /// `hallpass.io/audit`: `Some(true)` audit, `Some(false)` enforce.
    pub audit: Option<bool>,
    /// `hallpass.io/audit-log`.
    pub audit_log: Option<String>,
    /// `hallpass.io/app-port`.
    pub app_port: Option<u16>,
    /// `hallpass.io/inbound-port`.
    pub inbound_port: Option<u16>,
    /// `hallpass.io/app-protocol`.
    pub app_protocol: Option<AppProtocol>,
}

impl Overrides {
    /// Parse every `hallpass.io/` annotation; report all problems at once.
    /// Unknown `hallpass.io/` keys are problems too (a misspelt override must
    /// not be ignored).
    pub fn parse(annotations: &BTreeMap<String, String>) -> Result<Self, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut out = Self::default();
        for (key, value) in annotations {
            if !key.starts_with("hallpass.io/") {
                continue;
            }
            let value = value.as_str();
            match key.as_str() {
                INJECT | INJECTED => {}
                MODE => match value {
                    "istio" => out.mode = Some(Mode::Istio),
                    "standalone" => out.mode = Some(Mode::Standalone),
                    _ => problems.push(Problem::new(
                        key,
                        format!("`{value}` is neither istio nor standalone"),
                    )),
                },
                WORKLOAD_ID => match hallpass_identity::parse_spiffe_id_strict(value) {
                    Ok(_) => out.workload_id = Some(value.to_owned()),
                    Err(reason) => problems.push(Problem::new(
                        key,
                        format!("`{value}`: {}", reason.replace("URI SAN", "value")),
                    )),
                },
                AUDIT => match value {
                    "true" => out.audit = Some(true),
                    "false" => out.audit = Some(false),
                    _ => problems.push(Problem::new(
                        key,
                        format!("`{value}` is neither \"true\" (audit) nor \"false\" (enforce)"),
                    )),
                },
                AUDIT_LOG => match check_audit_log(value) {
                    Ok(()) => out.audit_log = Some(value.to_owned()),
                    Err(m) => problems.push(Problem::new(key, m)),
                },
                APP_PORT => match parse_port(value) {
                    Ok(p) => out.app_port = Some(p),
                    Err(m) => problems.push(Problem::new(key, m)),
                },
                INBOUND_PORT => match parse_port(value) {
                    Ok(p) => out.inbound_port = Some(p),
                    Err(m) => problems.push(Problem::new(key, m)),
                },
                APP_PROTOCOL => match value {
                    "http1" => out.app_protocol = Some(AppProtocol::Http1),
                    "h2c" => out.app_protocol = Some(AppProtocol::H2c),
                    _ => problems.push(Problem::new(
                        key,
                        format!("`{value}` is neither http1 nor h2c"),
                    )),
                },
                _ => problems.push(Problem::new(
                    key,
                    format!("unknown hallpass annotation; known: {}", KNOWN.join(", ")),
                )),
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }
}

/// `stdout`, `off`, or a file in the sidecar's writable state directory (the
/// root filesystem is read-only).
pub fn check_audit_log(value: &str) -> Result<(), String> {
    match value {
        "stdout" | "off" => Ok(()),
        path if path.starts_with(&format!("{STATE_DIR}/"))
            && path.len() > STATE_DIR.len() + 1
            && !path.split('/').any(|s| s == ".." || s == ".") =>
        {
            Ok(())
        }
        _ => Err(format!(
            "`{value}`: use stdout, off, or a file under {STATE_DIR}/ (the only writable directory)"
        )),
    }
}

fn parse_port(value: &str) -> Result<u16, String> {
    match value.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("`{value}` is not a port (1-65535)")),
    }
}
