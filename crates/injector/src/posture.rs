//! Who may change a protected pod's security posture, and what a pod may not
//! do to the sidecar that protects it.
//!
//! The person who deploys a pod is not the person who owns the policy. So
//! by default a pod cannot weaken its own protection: the mode is the
//! install's, audit mode comes from the policy, the destination ID from the
//! namespace and service account (or the SVID), and the audit trail stays
//! on. Each way of changing that is an [`Override`], allowed only in the
//! namespaces the chart lists for it (`overrides.<name>`), written on the
//! pod (`hallpass.io/overrides`) and counted
//! (`hallpass_injector_overrides_total`). Anything else is refused with the
//! annotation or field, and the chart value that would allow it.
//!
//! The second half is reach-in: another container of the pod must not get
//! at the sidecar's volumes (the ext_authz socket, the audit file, the
//! SPIFFE socket), processes or network rules.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EphemeralContainer, PodSpec, SecurityContext, VolumeMount,
};

use crate::config::{InjectorConfig, Mode};
use crate::error::Problem;

/// A change to a protected pod's posture that the chart may allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Override {
    /// `hallpass.io/inject: "false"` in a namespace labelled for injection.
    OptOut,
    /// `hallpass.io/mode` other than the install's.
    Mode,
    /// `hallpass.io/workload-id` other than the derived ID.
    WorkloadId,
    /// `hallpass.io/audit-log` other than the install's.
    AuditLog,
    /// `hallpass.io/inbound-port` other than the install's.
    InboundPort,
    /// Istio annotations that take inbound traffic away from the proxy.
    IstioCapture,
    /// `spec.shareProcessNamespace: true`.
    ShareProcessNamespace,
    /// `spec.hostPID: true`.
    HostPid,
    /// `spec.hostIPC: true`.
    HostIpc,
    /// A privileged container.
    Privileged,
    /// Capabilities beyond the baseline Pod Security Standard's.
    Capabilities,
    /// `hostPath` volumes.
    HostPath,
    /// `hallpass.io/audit: "false"`: enforce a destination the policy
    /// audits. Stricter than the policy, so always allowed (but still
    /// recorded and counted).
    Enforce,
}

impl Override {
    /// Every override, for metrics.
    pub const ALL: [Override; 13] = [
        Self::OptOut,
        Self::Mode,
        Self::WorkloadId,
        Self::AuditLog,
        Self::InboundPort,
        Self::IstioCapture,
        Self::ShareProcessNamespace,
        Self::HostPid,
        Self::HostIpc,
        Self::Privileged,
        Self::Capabilities,
        Self::HostPath,
        Self::Enforce,
    ];

    /// The chart key (`overrides.<name>`), the metric label and the word in
    /// `hallpass.io/overrides`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OptOut => "optOut",
            Self::Mode => "mode",
            Self::WorkloadId => "workloadId",
            Self::AuditLog => "auditLog",
            Self::InboundPort => "inboundPort",
            Self::IstioCapture => "istioCapture",
            Self::ShareProcessNamespace => "shareProcessNamespace",
            Self::HostPid => "hostPID",
            Self::HostIpc => "hostIPC",
            Self::Privileged => "privileged",
            Self::Capabilities => "capabilities",
            Self::HostPath => "hostPath",
            Self::Enforce => "enforce",
        }
    }

    fn namespaces(self, config: &InjectorConfig) -> Option<&[String]> {
        let o = &config.overrides;
        Some(match self {
            Self::OptOut => &o.opt_out,
            Self::Mode => &o.mode,
            Self::WorkloadId => &o.workload_id,
            Self::AuditLog => &o.audit_log,
            Self::InboundPort => &o.inbound_port,
            Self::IstioCapture => &o.istio_capture,
            Self::ShareProcessNamespace => &o.share_process_namespace,
            Self::HostPid => &o.host_pid,
            Self::HostIpc => &o.host_ipc,
            Self::Privileged => &o.privileged,
            Self::Capabilities => &o.capabilities,
            Self::HostPath => &o.host_path,
            Self::Enforce => return None,
        })
    }

    /// May pods in `namespace` use it?
    pub fn allowed(self, config: &InjectorConfig, namespace: &str) -> bool {
        self.namespaces(config)
            .is_none_or(|list| list.iter().any(|n| n == "*" || n == namespace))
    }

    /// The refusal: `key` (an annotation or field) is not allowed here, and
    /// where the chart allows it.
    fn refused(self, config: &InjectorConfig, namespace: &str, key: &str, what: &str) -> Problem {
        let list = self.namespaces(config).unwrap_or_default();
        let allowed = if list.is_empty() {
            "no namespace".to_owned()
        } else {
            list.join(", ")
        };
        Problem::new(
            key,
            format!(
                "{what}: not allowed for pods in namespace `{namespace}`; the chart allows it in {allowed} (overrides.{})",
                self.as_str()
            ),
        )
    }
}

/// The overrides one pod uses, and the refusals.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Overrides applied (allowed where the pod is).
    pub applied: Vec<Override>,
    /// Refusals.
    pub problems: Vec<Problem>,
}

impl Verdict {
    /// Record that the pod uses `what`: applied when allowed in `namespace`,
    /// else a refusal naming `key`.
    pub fn wants(
        &mut self,
        config: &InjectorConfig,
        namespace: &str,
        what: Override,
        key: &str,
        description: &str,
    ) {
        if what.allowed(config, namespace) {
            if !self.applied.contains(&what) {
                self.applied.push(what);
            }
        } else {
            self.problems
                .push(what.refused(config, namespace, key, description));
        }
    }

    /// A refusal no chart value lifts.
    pub fn never(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(key, message));
    }

    /// The applied overrides, sorted: the value of `hallpass.io/overrides`.
    pub fn annotation(&self) -> Option<String> {
        let mut applied = self.applied.clone();
        applied.sort();
        (!applied.is_empty()).then(|| {
            applied
                .iter()
                .map(|o| o.as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
    }
}

/// Container names the injector owns: `hallpass` and `hallpass-*`.
pub fn is_owned_container(name: &str) -> bool {
    name == "hallpass" || name.starts_with("hallpass-")
}

/// Volume names the injector owns: `hallpass-*`.
pub fn is_owned_volume(name: &str) -> bool {
    name.starts_with("hallpass-")
}

/// Capabilities the baseline Pod Security Standard lets a container add.
/// Anything else (SYS_PTRACE, NET_ADMIN, SYS_ADMIN, NET_RAW, ALL, …) can
/// reach into another container's processes or rewrite the pod's network.
const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Istio's traffic-capture init containers need these (istio mode only;
/// Istio CNI needs none).
const ISTIO_INIT_CONTAINERS: &[&str] = &["istio-init", "istio-validation"];
const ISTIO_INIT_CAPABILITIES: &[&str] = &["NET_ADMIN", "NET_RAW"];

/// Ports Istio itself excludes from inbound capture (pilot-agent status,
/// health, Envoy's Prometheus endpoint).
const ISTIO_OWN_PORTS: &[&str] = &["15020", "15021", "15090"];

/// A container of any kind, as far as reach-in goes.
struct AnyContainer<'a> {
    at: String,
    name: &'a str,
    mounts: Option<&'a Vec<VolumeMount>>,
    security: Option<&'a SecurityContext>,
}

impl<'a> AnyContainer<'a> {
    fn of(field: &str, c: &'a Container) -> Self {
        Self {
            at: format!("spec.{field}[{}]", c.name),
            name: &c.name,
            mounts: c.volume_mounts.as_ref(),
            security: c.security_context.as_ref(),
        }
    }

    fn ephemeral(c: &'a EphemeralContainer) -> Self {
        Self {
            at: format!("spec.ephemeralContainers[{}]", c.name),
            name: &c.name,
            mounts: c.volume_mounts.as_ref(),
            security: c.security_context.as_ref(),
        }
    }
}

/// Reach-in checks on the pod's own containers (ours are skipped by name:
/// at admission they are not there yet, and when an injected pod is
/// re-checked they are compared field by field elsewhere).
pub fn check_pod(
    config: &InjectorConfig,
    namespace: &str,
    mode: Mode,
    spec: &PodSpec,
    verdict: &mut Verdict,
) {
    if spec.share_process_namespace == Some(true) {
        verdict.wants(
            config,
            namespace,
            Override::ShareProcessNamespace,
            "spec.shareProcessNamespace",
            "every container could see and signal hallpass's process and read its files through /proc",
        );
    }
    if spec.host_pid == Some(true) {
        verdict.wants(
            config,
            namespace,
            Override::HostPid,
            "spec.hostPID",
            "the pod would share the node's process namespace, hallpass's process included",
        );
    }
    if spec.host_ipc == Some(true) {
        verdict.wants(
            config,
            namespace,
            Override::HostIpc,
            "spec.hostIPC",
            "the pod would share the node's IPC namespace",
        );
    }
    for volume in spec.volumes.iter().flatten() {
        if volume.host_path.is_some() {
            verdict.wants(
                config,
                namespace,
                Override::HostPath,
                &format!("spec.volumes[{}].hostPath", volume.name),
                "a hostPath volume reaches the node's copy of every volume of the pod, the sidecar's socket and state included",
            );
        }
    }
    let containers = spec
        .containers
        .iter()
        .map(|c| AnyContainer::of("containers", c))
        .chain(
            spec.init_containers
                .iter()
                .flatten()
                .map(|c| AnyContainer::of("initContainers", c)),
        )
        .chain(
            spec.ephemeral_containers
                .iter()
                .flatten()
                .map(AnyContainer::ephemeral),
        );
    for c in containers.filter(|c| !is_owned_container(c.name)) {
        check_container(config, namespace, mode, &c, verdict);
    }
}

/// Reach-in checks on ephemeral containers added to a running pod
/// (`kubectl debug`).
pub fn check_ephemeral(
    config: &InjectorConfig,
    namespace: &str,
    mode: Mode,
    added: &[&EphemeralContainer],
    verdict: &mut Verdict,
) {
    for c in added {
        let any = AnyContainer::ephemeral(c);
        if let Some(target) = c.target_container_name.as_deref()
            && is_owned_container(target)
        {
            verdict.never(
                format!("{}.targetContainerName", any.at),
                format!("`{target}` is hallpass's container; a debug container may not join its process namespace"),
            );
        }
        if is_owned_container(&c.name) {
            verdict.never(
                format!("{}.name", any.at),
                format!(
                    "`{}`: names hallpass and hallpass-* belong to the injector",
                    c.name
                ),
            );
        }
        check_container(config, namespace, mode, &any, verdict);
    }
}

fn check_container(
    config: &InjectorConfig,
    namespace: &str,
    mode: Mode,
    c: &AnyContainer<'_>,
    verdict: &mut Verdict,
) {
    for m in c.mounts.into_iter().flatten() {
        if is_owned_volume(&m.name) {
            verdict.never(
                format!("{}.volumeMounts[{}]", c.at, m.name),
                format!(
                    "only hallpass's own containers may mount {}: it holds the sidecar's socket, state, config and policy, or SPIFFE credentials",
                    m.name
                ),
            );
        }
    }
    let Some(security) = c.security else {
        return;
    };
    if security.privileged == Some(true) {
        verdict.wants(
            config,
            namespace,
            Override::Privileged,
            &format!("{}.securityContext.privileged", c.at),
            "a privileged container can reach every other container of the pod",
        );
    }
    let istio_init = mode == Mode::Istio && ISTIO_INIT_CONTAINERS.contains(&c.name);
    let extra: Vec<String> = security
        .capabilities
        .as_ref()
        .and_then(|caps| caps.add.as_ref())
        .into_iter()
        .flatten()
        .map(|cap| {
            let upper = cap.to_ascii_uppercase();
            upper
                .strip_prefix("CAP_")
                .map(str::to_owned)
                .unwrap_or(upper)
        })
        .filter(|cap| !BASELINE_CAPABILITIES.contains(&cap.as_str()))
        .filter(|cap| !(istio_init && ISTIO_INIT_CAPABILITIES.contains(&cap.as_str())))
        .collect();
    if !extra.is_empty() {
        verdict.wants(
            config,
            namespace,
            Override::Capabilities,
            &format!("{}.securityContext.capabilities.add", c.at),
            &format!(
                "{} go beyond the baseline Pod Security Standard (they can trace other processes or rewrite the pod's network)",
                extra.join(", ")
            ),
        );
    }
}

/// Istio mode: the pod must not take inbound traffic away from Istio's
/// proxy, which is what calls hallpass.
pub fn check_istio_capture(
    config: &InjectorConfig,
    namespace: &str,
    annotations: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
    verdict: &mut Verdict,
) {
    let mut wants = |key: &str, what: &str| {
        verdict.wants(config, namespace, Override::IstioCapture, key, what);
    };
    const INJECT: &str = "sidecar.istio.io/inject";
    if annotations.get(INJECT).map(String::as_str) == Some("false") {
        wants(
            &format!("metadata.annotations[{INJECT}]"),
            "without Istio's proxy nothing calls hallpass",
        );
    }
    if labels.get(INJECT).map(String::as_str) == Some("false") {
        wants(
            &format!("metadata.labels[{INJECT}]"),
            "without Istio's proxy nothing calls hallpass",
        );
    }
    const INCLUDE: &str = "traffic.sidecar.istio.io/includeInboundPorts";
    if let Some(value) = annotations.get(INCLUDE)
        && value.trim() != "*"
    {
        wants(
            INCLUDE,
            "inbound ports left out of Istio's capture reach the app without hallpass",
        );
    }
    const EXCLUDE: &str = "traffic.sidecar.istio.io/excludeInboundPorts";
    if let Some(value) = annotations.get(EXCLUDE) {
        let admin = config.sidecar.admin_port.to_string();
        let bypassing: Vec<&str> = value
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty() && *p != admin && !ISTIO_OWN_PORTS.contains(p))
            .collect();
        if !bypassing.is_empty() {
            wants(
                EXCLUDE,
                &format!(
                    "port(s) {} would reach the app without Istio's proxy, so without hallpass",
                    bypassing.join(", ")
                ),
            );
        }
    }
    const INTERFACES: &str = "traffic.sidecar.istio.io/excludeInterfaces";
    if annotations
        .get(INTERFACES)
        .is_some_and(|v| !v.trim().is_empty())
    {
        wants(
            INTERFACES,
            "traffic on excluded interfaces bypasses Istio's proxy, so hallpass",
        );
    }
    const INTERCEPTION: &str = "sidecar.istio.io/interceptionMode";
    if annotations.get(INTERCEPTION).map(String::as_str) == Some("NONE") {
        wants(
            INTERCEPTION,
            "NONE captures no traffic: nothing calls hallpass",
        );
    }
}
