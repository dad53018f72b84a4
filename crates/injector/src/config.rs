//! The injector's config file (`hallpass inject --config FILE`), rendered by
//! the Helm chart from its values. Unknown keys are errors; every problem
//! (every unknown key, every bad value, not only the first) is reported with
//! its key path and line:column, through the same problem type as the policy
//! and the sidecar config.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hallpass_diagnostics::{Problems, de};
use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::Deserialize;

use crate::annotations::check_audit_log;
use crate::error::{InjectorError, Problem};

/// How hallpass is wired into the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// hallpass only; the pod's Istio sidecar calls it (AuthorizationPolicy
    /// action CUSTOM, `envoyExtAuthzGrpc` provider on 127.0.0.1).
    #[default]
    Istio,
    /// hallpass plus an Envoy that terminates mTLS with the pod's SVID (SDS
    /// from the SPIRE agent) and calls hallpass over a Unix socket.
    Standalone,
}

impl Mode {
    /// `istio` or `standalone`: label values, annotation values, log fields.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Istio => "istio",
            Self::Standalone => "standalone",
        }
    }
}

/// How the standalone Envoy talks to the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppProtocol {
    /// HTTP/1.1.
    #[default]
    Http1,
    /// HTTP/2 without TLS (gRPC apps).
    H2c,
}

/// The whole injector config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct InjectorConfig {
    /// HTTPS listen address of the webhook.
    pub listen: SocketAddr,
    /// The serving certificate.
    pub tls: TlsConfig,
    /// Mode for pods without a `hallpass.io/mode` annotation.
    pub default_mode: Mode,
    /// The hallpass container.
    pub sidecar: SidecarConfig,
    /// The Envoy container (standalone mode).
    pub envoy: EnvoyConfig,
    /// The SPIFFE Workload API socket (spiffe-csi-driver).
    pub spiffe: SpiffeConfig,
    /// After SIGTERM, keep answering this long before draining, so the API
    /// server stops picking this replica first (endpoint removal is not instant).
    pub shutdown_delay_seconds: u64,
    /// The trust domain of the workloads' SPIFFE IDs. When set, every
    /// injected sidecar is told its destination ID,
    /// `spiffe://<trustDomain>/ns/<namespace>/sa/<service account>`, derived
    /// from what the API server admitted; when unset, the sidecar uses its
    /// SVID (then Envoy's `destination.principal`). Either way the pod does
    /// not choose.
    pub trust_domain: Option<String>,
    /// Where pods may change their own posture (see [`Overrides`]).
    pub overrides: Overrides,
    /// Bounds of the webhook server (see [`Limits`]).
    pub limits: Limits,
}

/// Namespaces whose pods may use each override. A list holds namespace
/// names, or `"*"` for every namespace; empty (the default) means no pod
/// may. Everything not listed here is decided by the install (the chart)
/// and the policy, never by the pod.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Overrides {
    /// `hallpass.io/inject: "false"` in a namespace labelled for injection.
    pub opt_out: Vec<String>,
    /// `hallpass.io/mode` other than `defaultMode`.
    pub mode: Vec<String>,
    /// `hallpass.io/workload-id` other than the derived ID.
    pub workload_id: Vec<String>,
    /// `hallpass.io/audit-log` (`stdout` or a file; never `off`).
    pub audit_log: Vec<String>,
    /// `hallpass.io/inbound-port` other than `envoy.inboundPort`.
    pub inbound_port: Vec<String>,
    /// Istio mode: Istio annotations that take inbound traffic away from the
    /// Istio proxy (and so from hallpass).
    pub istio_capture: Vec<String>,
    /// `spec.shareProcessNamespace: true`.
    pub share_process_namespace: Vec<String>,
    /// `spec.hostPID: true`.
    #[serde(rename = "hostPID")]
    pub host_pid: Vec<String>,
    /// `spec.hostIPC: true`.
    #[serde(rename = "hostIPC")]
    pub host_ipc: Vec<String>,
    /// A privileged container.
    pub privileged: Vec<String>,
    /// Capabilities beyond the baseline Pod Security Standard's.
    pub capabilities: Vec<String>,
    /// `hostPath` volumes.
    pub host_path: Vec<String>,
}

/// Bounds of the webhook server. The defaults keep the injector's memory
/// well under the chart's 128 MiB limit with every slot held by a hostile
/// client (docs/kubernetes.md, "Webhook limits").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Limits {
    /// Connections open at once (TLS handshakes included); more wait in the
    /// kernel's accept queue.
    pub max_connections: usize,
    /// Request bodies being read or handled at once.
    pub max_requests_in_flight: usize,
    /// Largest request body, bytes (the API server's own limit is 3 MiB).
    pub max_body_bytes: usize,
    /// A TLS handshake must finish within this.
    pub handshake_timeout_seconds: u64,
    /// A request's headers must arrive within this; it also bounds how long
    /// a connection may sit idle between requests (the wait for the next
    /// request's first byte counts).
    pub header_timeout_seconds: u64,
    /// A request's body must arrive within this (including the wait for a
    /// request slot).
    pub body_timeout_seconds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 64,
            max_requests_in_flight: 8,
            max_body_bytes: 3 * 1024 * 1024,
            handshake_timeout_seconds: 5,
            header_timeout_seconds: 5,
            body_timeout_seconds: 5,
        }
    }
}

/// Certificate and key files; re-read when they change.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// How often the files are compared with what is being served.
    pub reload_interval_seconds: u64,
}

/// The injected hallpass container.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SidecarConfig {
    /// Image reference.
    pub image: String,
    /// `Always`, `IfNotPresent` or `Never`; the cluster default when unset.
    pub image_pull_policy: Option<String>,
    /// Requests and limits.
    pub resources: ResourceRequirements,
    /// `authz.listen` port on 127.0.0.1 (istio mode; standalone uses a Unix socket).
    pub authz_port: u16,
    /// `admin.listen` port: probes, `/metrics`.
    pub admin_port: u16,
    /// `admin.listen` address: kubelet probes and Prometheus come to the pod IP.
    pub admin_address: String,
    /// The platform's ConfigMap (in the pod's namespace, put there by the
    /// chart): `config.yaml` and the mesh-wide `policy.yaml`. Required: a
    /// pod whose namespace lacks it does not start.
    pub mesh_config_map: String,
    /// The namespace team's own ConfigMap of policy files (not the chart's).
    /// Mounted `optional`: without it the pod starts and denies every call
    /// to its workload (no rules), and `/readyz` says so.
    pub team_config_map: String,
    /// `identity.x509_from` per mode.
    pub x509_from: X509FromByMode,
    /// `telemetry.audit_log` for every pod (a pod annotation wins); unset keeps config.yaml's.
    pub audit_log: Option<String>,
    /// UID and GID the container runs as (non-root).
    pub run_as_user: i64,
    /// Extra environment variables, added after the injector's own.
    pub env: Vec<EnvVar>,
}

/// `identity.x509_from` for each mode.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct X509FromByMode {
    /// Istio's Envoy does not forward the peer certificate to an
    /// `envoyExtAuthzGrpc` provider, so the default is `envoy_principal`.
    pub istio: String,
    /// The injected Envoy forwards it: hallpass verifies it itself.
    pub standalone: String,
}

/// The injected Envoy (standalone mode).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct EnvoyConfig {
    /// Image reference (a distroless Envoy: its entrypoint is `envoy`).
    pub image: String,
    /// `Always`, `IfNotPresent` or `Never`.
    pub image_pull_policy: Option<String>,
    /// Requests and limits.
    pub resources: ResourceRequirements,
    /// The mTLS port callers (and Services' `targetPort`) use.
    pub inbound_port: u16,
    /// Plain-HTTP port that serves only `/ready` (kubelet probes).
    pub health_port: u16,
    /// Worker threads (Envoy otherwise starts one per node CPU, whatever the limit).
    pub concurrency: u32,
    /// SDS name of the pod's X.509-SVID at the SPIRE agent (`default`: its first SVID).
    pub svid_name: String,
    /// SDS name of the validation context (`ALL`: every bundle, federated
    /// ones included, as a SPIFFE validator; or `spiffe://<trust domain>`).
    pub bundle_name: String,
    /// Send the caller's verified chain to hallpass and the app in
    /// `x-forwarded-client-cert` (needed when SVIDs come through intermediate CAs).
    pub forward_client_cert_chain: bool,
    /// ext_authz call timeout in milliseconds; on timeout the request is denied.
    pub ext_authz_timeout_ms: u32,
    /// `--log-level`.
    pub log_level: String,
    /// Default protocol towards the app.
    pub app_protocol: AppProtocol,
}

/// The Workload API socket through the SPIFFE CSI driver.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SpiffeConfig {
    /// Mount the socket (required for standalone mode).
    pub enabled: bool,
    /// CSI driver name.
    pub csi_driver: String,
    /// Where the socket directory is mounted in the containers.
    pub mount_path: String,
    /// Socket file name inside that directory.
    pub socket_name: String,
}

impl Default for InjectorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            tls: TlsConfig::default(),
            default_mode: Mode::Istio,
            sidecar: SidecarConfig::default(),
            envoy: EnvoyConfig::default(),
            spiffe: SpiffeConfig::default(),
            shutdown_delay_seconds: 5,
            trust_domain: None,
            overrides: Overrides::default(),
            limits: Limits::default(),
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_file: PathBuf::from("/etc/hallpass-injector/tls/tls.crt"),
            key_file: PathBuf::from("/etc/hallpass-injector/tls/tls.key"),
            reload_interval_seconds: 10,
        }
    }
}

fn resources(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> ResourceRequirements {
    let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, Quantity> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
            .collect()
    };
    ResourceRequirements {
        requests: Some(map(requests)),
        limits: Some(map(limits)),
        ..Default::default()
    }
}

impl Default for SidecarConfig {
    fn default() -> Self {
        Self {
            image: format!(
                "ghcr.io/hallpass-dev/hallpass:{}",
                env!("CARGO_PKG_VERSION")
            ),
            image_pull_policy: None,
            resources: resources(
                &[("cpu", "50m"), ("memory", "32Mi")],
                &[("cpu", "1"), ("memory", "128Mi")],
            ),
            authz_port: 9191,
            admin_port: 9902,
            admin_address: "0.0.0.0".into(),
            mesh_config_map: "hallpass-mesh".into(),
            team_config_map: "hallpass-policy".into(),
            x509_from: X509FromByMode::default(),
            audit_log: None,
            run_as_user: 65532,
            env: Vec::new(),
        }
    }
}

impl Default for X509FromByMode {
    fn default() -> Self {
        Self {
            istio: "envoy_principal".into(),
            standalone: "peer_certificate".into(),
        }
    }
}

impl Default for EnvoyConfig {
    fn default() -> Self {
        Self {
            image: "docker.io/envoyproxy/envoy:distroless-v1.40.0".into(),
            image_pull_policy: None,
            resources: resources(
                &[("cpu", "50m"), ("memory", "64Mi")],
                &[("cpu", "2"), ("memory", "256Mi")],
            ),
            inbound_port: 15443,
            health_port: 15021,
            concurrency: 2,
            svid_name: "default".into(),
            bundle_name: "ALL".into(),
            forward_client_cert_chain: true,
            ext_authz_timeout_ms: 500,
            log_level: "warn".into(),
            app_protocol: AppProtocol::Http1,
        }
    }
}

impl Default for SpiffeConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            csi_driver: "csi.spiffe.io".into(),
            mount_path: "/spiffe-workload-api".into(),
            socket_name: "spire-agent.sock".into(),
        }
    }
}

const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const X509_FROM: &[&str] = &["peer_certificate", "envoy_principal", "xfcc"];
const ENVOY_LOG_LEVELS: &[&str] = &[
    "trace", "debug", "info", "warning", "warn", "error", "critical", "off",
];

impl InjectorConfig {
    /// Read and validate a YAML config file. Problems name the file, and
    /// the line and column of the key.
    pub fn load(path: &Path) -> Result<Self, InjectorError> {
        let text = std::fs::read_to_string(path).map_err(|source| InjectorError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::read(&text, Some(&path.display().to_string()))
    }

    /// Parse and validate YAML text. Problems carry the line and column of
    /// the key (no file name).
    pub fn from_yaml(text: &str) -> Result<Self, InjectorError> {
        Self::read(text, None)
    }

    fn read(text: &str, file: Option<&str>) -> Result<Self, InjectorError> {
        let mut problems = Problems::new();
        let config = de::yaml_value(text, &mut problems).and_then(|mut value| {
            de::drop_nulls(&mut value);
            de::from_value::<Self>(value, &mut problems)
        });
        if let Some(config) = &config {
            config.validate(&mut problems);
        }
        problems
            .finish(config, text, file)
            .map_err(InjectorError::Config)
    }

    /// Every problem in the values of the config (empty when it is valid).
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Problems::new();
        self.validate(&mut problems);
        problems.into_vec()
    }

    /// Check every value, recording each problem with its key path. Values
    /// that replaced a bad one while reading (see
    /// [`hallpass_diagnostics::de::from_value`]) invent no problems.
    fn validate(&self, problems: &mut Problems) {
        let mut problem = |key: &str, message: String| problems.invalid(key, message);
        for (key, image) in [
            ("sidecar.image", &self.sidecar.image),
            ("envoy.image", &self.envoy.image),
        ] {
            if image.trim().is_empty() || image.contains(char::is_whitespace) {
                problem(key, "an image reference is required".into());
            }
        }
        for (key, policy) in [
            ("sidecar.imagePullPolicy", &self.sidecar.image_pull_policy),
            ("envoy.imagePullPolicy", &self.envoy.image_pull_policy),
        ] {
            if let Some(p) = policy
                && !PULL_POLICIES.contains(&p.as_str())
            {
                problem(key, format!("`{p}`: one of {}", PULL_POLICIES.join(", ")));
            }
        }
        let ports = [
            ("sidecar.authzPort", self.sidecar.authz_port),
            ("sidecar.adminPort", self.sidecar.admin_port),
            ("envoy.inboundPort", self.envoy.inbound_port),
            ("envoy.healthPort", self.envoy.health_port),
        ];
        for (i, (key, port)) in ports.iter().enumerate() {
            if *port == 0 {
                problem(key, "must be a port (1-65535)".into());
            }
            if let Some((other, _)) = ports.iter().take(i).find(|(_, p)| p == port) {
                problem(
                    key,
                    format!("{port} is also {other}; the containers share one network namespace"),
                );
            }
        }
        if self
            .sidecar
            .admin_address
            .parse::<std::net::IpAddr>()
            .is_err()
        {
            problem(
                "sidecar.adminAddress",
                format!("`{}` is not an IP address", self.sidecar.admin_address),
            );
        }
        for (key, name) in [
            ("sidecar.meshConfigMap", &self.sidecar.mesh_config_map),
            ("sidecar.teamConfigMap", &self.sidecar.team_config_map),
        ] {
            if !is_dns_label(name) && !is_dns_subdomain(name) {
                problem(key, format!("`{name}` is not a ConfigMap name"));
            }
        }
        // One ConfigMap in both places would make the team's file the
        // platform's (and its owner scope would apply to the mesh sections).
        if self.sidecar.mesh_config_map == self.sidecar.team_config_map {
            problem(
                "sidecar.teamConfigMap",
                format!(
                    "`{}` is also sidecar.meshConfigMap; the platform's and the team's ConfigMaps must differ",
                    self.sidecar.team_config_map
                ),
            );
        }
        for (key, value) in [
            ("sidecar.x509From.istio", &self.sidecar.x509_from.istio),
            (
                "sidecar.x509From.standalone",
                &self.sidecar.x509_from.standalone,
            ),
        ] {
            if !X509_FROM.contains(&value.as_str()) {
                problem(key, format!("`{value}`: one of {}", X509_FROM.join(", ")));
            }
        }
        if let Some(log) = &self.sidecar.audit_log
            && let Err(m) = check_audit_log(log)
        {
            problem("sidecar.auditLog", m);
        }
        if self.sidecar.run_as_user <= 0 {
            problem(
                "sidecar.runAsUser",
                "must be a non-root UID (above 0)".into(),
            );
        }
        for (i, env) in self.sidecar.env.iter().enumerate() {
            if env.name.is_empty() {
                problem(&format!("sidecar.env[{i}].name"), "required".into());
            }
        }
        if self.envoy.concurrency == 0 || self.envoy.concurrency > 64 {
            problem("envoy.concurrency", "between 1 and 64".into());
        }
        if self.envoy.svid_name.is_empty() {
            problem(
                "envoy.svidName",
                "required (`default` is the SPIRE agent's first SVID)".into(),
            );
        }
        if self.envoy.bundle_name.is_empty() {
            problem(
                "envoy.bundleName",
                "required (`ALL`, `ROOTCA` or spiffe://<trust domain>)".into(),
            );
        }
        if self.envoy.ext_authz_timeout_ms == 0 || self.envoy.ext_authz_timeout_ms > 60_000 {
            problem("envoy.extAuthzTimeoutMs", "between 1 and 60000".into());
        }
        if !ENVOY_LOG_LEVELS.contains(&self.envoy.log_level.as_str()) {
            problem(
                "envoy.logLevel",
                format!(
                    "`{}`: one of {}",
                    self.envoy.log_level,
                    ENVOY_LOG_LEVELS.join(", ")
                ),
            );
        }
        if !self.spiffe.mount_path.starts_with('/') {
            problem("spiffe.mountPath", "must be an absolute path".into());
        }
        if self.spiffe.socket_name.is_empty() || self.spiffe.socket_name.contains('/') {
            problem(
                "spiffe.socketName",
                "a file name, e.g. spire-agent.sock".into(),
            );
        }
        if self.spiffe.csi_driver.is_empty() {
            problem("spiffe.csiDriver", "required (csi.spiffe.io)".into());
        }
        if self.default_mode == Mode::Standalone && !self.spiffe.enabled {
            problem(
                "defaultMode",
                "standalone mode needs spiffe.enabled: Envoy gets its SVID from the SPIRE agent"
                    .into(),
            );
        }
        if self.shutdown_delay_seconds > 60 {
            problem("shutdownDelaySeconds", "at most 60".into());
        }
        if self.tls.reload_interval_seconds == 0 || self.tls.reload_interval_seconds > 3600 {
            problem("tls.reloadIntervalSeconds", "between 1 and 3600".into());
        }
        if let Some(td) = &self.trust_domain
            && !hallpass_identity::TrustDomain::new(td).is_ok_and(|t| t.to_string() == *td)
        {
            problem(
                "trustDomain",
                format!("`{td}` is not a trust domain (lower-case, e.g. hospital.example)"),
            );
        }
        for (key, namespaces) in self.overrides.lists() {
            for (i, ns) in namespaces.iter().enumerate() {
                if ns != "*" && !is_dns_label(ns) {
                    problem(
                        &format!("overrides.{key}[{i}]"),
                        format!("`{ns}` is not a namespace name (or \"*\" for all)"),
                    );
                }
            }
        }
        let l = &self.limits;
        for (key, value, min, max) in [
            ("limits.maxConnections", l.max_connections, 1, 10_000),
            (
                "limits.maxRequestsInFlight",
                l.max_requests_in_flight,
                1,
                1_000,
            ),
            (
                "limits.maxBodyBytes",
                l.max_body_bytes,
                64 * 1024,
                3 * 1024 * 1024,
            ),
        ] {
            if value < min || value > max {
                problem(key, format!("between {min} and {max}"));
            }
        }
        for (key, value) in [
            (
                "limits.handshakeTimeoutSeconds",
                l.handshake_timeout_seconds,
            ),
            ("limits.headerTimeoutSeconds", l.header_timeout_seconds),
            ("limits.bodyTimeoutSeconds", l.body_timeout_seconds),
        ] {
            if value == 0 || value > 300 {
                problem(key, "between 1 and 300 seconds".into());
            }
        }
    }

    /// How often the certificate files are checked.
    pub fn reload_interval(&self) -> Duration {
        Duration::from_secs(self.tls.reload_interval_seconds)
    }

    /// `unix:///…/spire-agent.sock`, as `SPIFFE_ENDPOINT_SOCKET` wants it.
    pub fn workload_api_endpoint(&self) -> String {
        format!("unix://{}", self.spire_agent_socket())
    }

    /// Path of the SPIRE agent socket inside the containers.
    pub fn spire_agent_socket(&self) -> String {
        format!(
            "{}/{}",
            self.spiffe.mount_path.trim_end_matches('/'),
            self.spiffe.socket_name
        )
    }
}

impl Overrides {
    /// Every list with its key under `overrides`.
    pub fn lists(&self) -> [(&'static str, &[String]); 12] {
        [
            ("optOut", &self.opt_out),
            ("mode", &self.mode),
            ("workloadId", &self.workload_id),
            ("auditLog", &self.audit_log),
            ("inboundPort", &self.inbound_port),
            ("istioCapture", &self.istio_capture),
            ("shareProcessNamespace", &self.share_process_namespace),
            ("hostPID", &self.host_pid),
            ("hostIPC", &self.host_ipc),
            ("privileged", &self.privileged),
            ("capabilities", &self.capabilities),
            ("hostPath", &self.host_path),
        ]
    }
}

/// RFC 1123 label: what Kubernetes wants for names of most objects.
pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 subdomain: ConfigMap names.
fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}
