//! The `hallpass.io/*` annotations and labels, parsed.
//!
//! | annotation | values | who may set it (see [`crate::posture`]) |
//! |---|---|---|
//! | `hallpass.io/inject` | `"true"`, `"false"` | the pod opts in anywhere; opting out of a labelled namespace needs `overrides.optOut` |
//! | `hallpass.io/mode` | `istio`, `standalone` | the install's mode; another needs `overrides.mode` |
//! | `hallpass.io/workload-id` | a SPIFFE ID | derived from namespace and service account (or the SVID); another needs `overrides.workloadId` |
//! | `hallpass.io/audit` | `"false"` | the pod may only make itself stricter: `"false"` enforces a destination the policy audits; `"true"` is refused |
//! | `hallpass.io/audit-log` | `stdout`, `/var/lib/hallpass/…` | the install's; another needs `overrides.auditLog`; `off` is refused |
//! | `hallpass.io/app-port` | a port | the pod (standalone: the app's port Envoy forwards to) |
//! | `hallpass.io/inbound-port` | a port | the install's; another needs `overrides.inboundPort` |
//! | `hallpass.io/app-protocol` | `http1`, `h2c` | the pod (standalone: `h2c` for gRPC apps) |
//!
//! Written by the injector, refused on incoming pods: the annotations
//! [`INJECTED`] (what was added, as JSON) and [`OVERRIDES`] (the overrides
//! applied) and the label [`SIDECAR_LABEL`] (the mode). A pod that carries
//! them is checked against what the injector would add (`crate::owned`).

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
/// Written by the injector: the overrides applied to the pod
/// (`crate::posture::Override` names, comma-separated).
pub const OVERRIDES: &str = "hallpass.io/overrides";
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
    OVERRIDES,
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

/// What the pod's annotations ask for, parsed and checked for syntax.
/// Whether the pod may have it is decided in [`crate::posture`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requested {
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

impl Requested {
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
                INJECT | INJECTED | OVERRIDES => {}
                MODE => match value {
                    "istio" => out.mode = Some(Mode::Istio),
                    "standalone" => out.mode = Some(Mode::Standalone),
                    _ => problems.push(Problem::new(
                        key,
                        format!("`{value}` is neither istio nor standalone"),
                    )),
                },
                WORKLOAD_ID => match hallpass_identity::parse_written_spiffe_id(value) {
                    Ok(_) => out.workload_id = Some(value.to_owned()),
                    Err(reason) => problems.push(Problem::new(key, reason)),
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
