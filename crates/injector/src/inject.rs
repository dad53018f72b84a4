//! Deciding whether to inject into one pod, and the JSON patch that does it.
//!
//! Pure functions of the injector config and the pod's JSON, so every case
//! is testable without a network. The patch only *adds*: containers are
//! inserted at the front of `initContainers`, volumes appended, annotations
//! and one label set. Nothing the pod already has is replaced or removed, so
//! fields this injector does not know (newer Kubernetes) survive untouched.

use std::collections::BTreeMap;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use k8s_openapi::api::core::v1::{
    CSIVolumeSource, Capabilities, ConfigMapVolumeSource, Container, ContainerPort,
    EmptyDirVolumeSource, EnvVar, EnvVarSource, HTTPGetAction, ObjectFieldSelector, PodSpec, Probe,
    SeccompProfile, SecurityContext, TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use crate::annotations::{self, OptIn, Requested, STATE_DIR};
use crate::config::{AppProtocol, InjectorConfig, Mode};
use crate::envoy::{self, BootstrapParams};
use crate::error::Problem;
use crate::owned;
use crate::posture::{self, Override, Verdict};

/// Name of the injected hallpass container.
pub const HALLPASS_CONTAINER: &str = "hallpass";
/// Name of the injected Envoy container (standalone mode).
pub const ENVOY_CONTAINER: &str = "hallpass-envoy";
/// Volume: the platform's ConfigMap (`config.yaml`, the mesh-wide
/// `policy.yaml`) at [`MESH_DIR`].
pub const MESH_VOLUME: &str = "hallpass-mesh";
/// Volume: the namespace team's policy ConfigMap (optional) at [`TEAM_DIR`].
pub const TEAM_VOLUME: &str = "hallpass-team";
/// Volume: writable state (baseline, audit log file) at [`STATE_DIR`].
pub const STATE_VOLUME: &str = "hallpass-state";
/// Volume: the ext_authz Unix socket shared by hallpass and Envoy (standalone).
pub const RUN_VOLUME: &str = "hallpass-run";
/// Volume: the SPIFFE Workload API socket (CSI driver).
pub const SPIFFE_VOLUME: &str = "hallpass-spiffe";
/// Where the platform's ConfigMap is mounted.
pub const MESH_DIR: &str = "/etc/hallpass/mesh";
/// Where the team's policy ConfigMap is mounted (`policy.files` reads every
/// `*.yaml`/`*.yml` file in it, under the workload namespace's owner scope).
pub const TEAM_DIR: &str = "/etc/hallpass/team";
/// The config file hallpass is started with, from the platform's ConfigMap.
pub const CONFIG_FILE: &str = "/etc/hallpass/mesh/config.yaml";
/// Where the ext_authz socket lives (standalone).
pub const RUN_DIR: &str = "/run/hallpass";
/// The ext_authz socket (standalone).
pub const AUTHZ_SOCKET: &str = "/run/hallpass/authz.sock";
/// The standalone Envoy's admin socket, beside the ext_authz socket.
pub const ENVOY_ADMIN_SOCKET: &str = "/run/hallpass/envoy-admin.sock";
/// Environment variable of the per-pod enforce override.
pub const POLICY_MODE_ENV: &str = "HALLPASS_POLICY_MODE";
/// Environment variable of the destination's SPIFFE ID.
pub const WORKLOAD_ID_ENV: &str = "HALLPASS_WORKLOAD_ID";

/// Which webhook called: the one for pods in opted-in namespaces, or the one
/// for pods that opt in themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `/mutate`: the namespace did not opt in; inject only when the pod says
    /// `hallpass.io/inject: "true"`.
    Pod,
    /// `/mutate/namespace`: the namespace carries `hallpass.io/inject=true`;
    /// inject unless the pod says `"false"`.
    Namespace,
}

/// Why a pod was left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Neither the namespace nor the pod opted in.
    NotOptedIn,
    /// `hallpass.io/inject: "false"` on a pod whose namespace did not opt in.
    OptedOut,
    /// `hallpass.io/inject: "false"` in an opted-in namespace that the chart
    /// lets opt out (`overrides.optOut`): an override, counted.
    OptOutOverride,
    /// The injector's own injection (a reinvocation): its containers,
    /// volumes and metadata are exactly what it adds to this pod.
    AlreadyInjected,
}

impl Skip {
    /// Metric and log label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotOptedIn => "not_opted_in",
            Self::OptedOut => "opted_out",
            Self::OptOutOverride => "opt_out_override",
            Self::AlreadyInjected => "already_injected",
        }
    }
}

/// What to do with one pod.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Admit unchanged.
    Skip(Skip),
    /// Admit with this patch.
    Inject(Injection),
    /// Refuse the pod: it asked for hallpass, but something in it (an
    /// annotation it may not set, a way into the sidecar, names the injector
    /// owns, a port clash) makes a correct injection impossible.
    Reject(Vec<Problem>),
}

impl Decision {
    /// The overrides this decision applies (for the metric).
    pub fn overrides(&self) -> Vec<Override> {
        match self {
            Self::Inject(injection) => injection.overrides.clone(),
            Self::Skip(Skip::OptOutOverride) => vec![Override::OptOut],
            _ => Vec::new(),
        }
    }
}

/// A planned injection.
#[derive(Debug, Clone)]
pub struct Injection {
    /// The mode used.
    pub mode: Mode,
    /// The RFC 6902 patch.
    pub patch: Patch,
    /// The overrides applied (also written to `hallpass.io/overrides`).
    pub overrides: Vec<Override>,
}

impl Injection {
    /// The pod with the patch applied (what the API server will store).
    pub fn apply(&self, pod: &Value) -> Result<Value, json_patch::PatchError> {
        let mut out = pod.clone();
        json_patch::patch(&mut out, &self.patch)?;
        Ok(out)
    }
}

/// Decide about one pod (the `object` of an AdmissionRequest, as JSON) in
/// `namespace` (the request's, which the API server sets).
pub fn decide(config: &InjectorConfig, scope: Scope, namespace: &str, pod: &Value) -> Decision {
    let annotations = string_map(pod.pointer("/metadata/annotations"));
    let spec_value = pod.get("spec").cloned().unwrap_or(Value::Null);
    if let Err(e) = serde_json::from_value::<PodSpec>(spec_value) {
        return match annotations::opt_in(&annotations) {
            Ok(OptIn::No) if scope == Scope::Pod => Decision::Skip(Skip::OptedOut),
            Ok(OptIn::Unset) if scope == Scope::Pod => Decision::Skip(Skip::NotOptedIn),
            _ => Decision::Reject(vec![Problem::new(
                "spec",
                format!("cannot read the pod spec: {e}"),
            )]),
        };
    }
    // Names the injector owns: either its own injection (a reinvocation),
    // or a pod trying to look injected. Never a reason to skip by itself.
    if owned::Owned::of(pod).is_marked() {
        return match owned::recognise(config, namespace, pod) {
            Ok(()) => Decision::Skip(Skip::AlreadyInjected),
            Err(problems) => Decision::Reject(problems),
        };
    }
    match (annotations::opt_in(&annotations), scope) {
        (Err(p), _) => return Decision::Reject(vec![p]),
        (Ok(OptIn::No), Scope::Pod) => return Decision::Skip(Skip::OptedOut),
        (Ok(OptIn::No), Scope::Namespace) => {
            let mut verdict = Verdict::default();
            verdict.wants(
                config,
                namespace,
                Override::OptOut,
                annotations::INJECT,
                "`false` in a namespace labelled hallpass.io/inject=true",
            );
            return if verdict.problems.is_empty() {
                Decision::Skip(Skip::OptOutOverride)
            } else {
                Decision::Reject(verdict.problems)
            };
        }
        (Ok(OptIn::Unset), Scope::Pod) => return Decision::Skip(Skip::NotOptedIn),
        (Ok(OptIn::Yes), _) | (Ok(OptIn::Unset), Scope::Namespace) => {}
    }
    match plan(config, namespace, pod) {
        Ok(injection) => Decision::Inject(injection),
        Err(problems) => Decision::Reject(problems),
    }
}

fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Ports the pod's own containers declare, with the container's name.
fn declared_ports(spec: &PodSpec) -> Vec<(i32, String)> {
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .flat_map(|c| {
            c.ports
                .iter()
                .flatten()
                .map(move |p| (p.container_port, c.name.clone()))
        })
        .collect()
}

/// What this pod gets, after the overrides it may use.
struct Resolved {
    mode: Mode,
    app_port: Option<u16>,
    inbound_port: u16,
    app_protocol: AppProtocol,
    workload_id: Option<String>,
    audit_log: Option<String>,
    enforce: bool,
    overrides: Vec<Override>,
}

/// The destination ID the injector derives: what SPIRE's usual
/// ClusterSPIFFEID template gives the pod.
fn derived_workload_id(config: &InjectorConfig, namespace: &str, spec: &PodSpec) -> Option<String> {
    let td = config.trust_domain.as_ref()?;
    let sa = spec
        .service_account_name
        .as_deref()
        .or(spec.service_account.as_deref())
        .filter(|s| !s.is_empty())
        .unwrap_or("default");
    Some(format!("spiffe://{td}/ns/{namespace}/sa/{sa}"))
}

fn resolve(
    config: &InjectorConfig,
    namespace: &str,
    spec: &PodSpec,
    annotations: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> Result<Resolved, Vec<Problem>> {
    let (requested, mut problems) = match Requested::parse(annotations) {
        Ok(r) => (r, Vec::new()),
        Err(problems) => (Requested::default(), problems),
    };
    let mut verdict = Verdict::default();
    let mode = match requested.mode {
        Some(m) if m != config.default_mode => {
            verdict.wants(
                config,
                namespace,
                Override::Mode,
                annotations::MODE,
                &format!(
                    "`{}` instead of the install's `{}`",
                    m.as_str(),
                    config.default_mode.as_str()
                ),
            );
            m
        }
        _ => config.default_mode,
    };
    let derived = derived_workload_id(config, namespace, spec);
    let workload_id = match (&requested.workload_id, &derived) {
        (Some(asked), derived) if Some(asked) != derived.as_ref() => {
            verdict.wants(
                config,
                namespace,
                Override::WorkloadId,
                annotations::WORKLOAD_ID,
                &match derived {
                    Some(d) => {
                        format!("`{asked}` instead of `{d}` (namespace and service account)")
                    }
                    None => format!("`{asked}` instead of the pod's own SVID"),
                },
            );
            Some(asked.clone())
        }
        _ => derived,
    };
    if let Some(id) = &workload_id
        && let Err(e) = hallpass_identity::parse_written_spiffe_id(id)
    {
        problems.push(Problem::new(
            "spec.serviceAccountName",
            format!("the derived destination ID is not valid: {e}"),
        ));
    }
    let enforce = match requested.audit {
        Some(true) => {
            verdict.never(
                annotations::AUDIT,
                "`true`: a pod cannot put itself in audit mode (denied calls let through); \
                 the policy's owner sets `mode: audit` on the destination in the policy",
            );
            false
        }
        Some(false) => {
            verdict.wants(
                config,
                namespace,
                Override::Enforce,
                annotations::AUDIT,
                "enforce",
            );
            true
        }
        None => false,
    };
    let audit_log = match requested.audit_log.as_deref() {
        Some("off") => {
            verdict.never(
                annotations::AUDIT_LOG,
                "`off`: a pod cannot switch off its audit trail",
            );
            None
        }
        Some(asked) if Some(asked) != config.sidecar.audit_log.as_deref() => {
            verdict.wants(
                config,
                namespace,
                Override::AuditLog,
                annotations::AUDIT_LOG,
                &format!("`{asked}` instead of the install's audit log"),
            );
            Some(asked.to_owned())
        }
        _ => config.sidecar.audit_log.clone(),
    };
    let inbound_port = match requested.inbound_port {
        Some(p) if p != config.envoy.inbound_port => {
            if mode == Mode::Standalone {
                verdict.wants(
                    config,
                    namespace,
                    Override::InboundPort,
                    annotations::INBOUND_PORT,
                    &format!(
                        "{p} instead of the install's {} (NetworkPolicies admit that one)",
                        config.envoy.inbound_port
                    ),
                );
            }
            p
        }
        _ => config.envoy.inbound_port,
    };
    posture::check_pod(config, namespace, mode, spec, &mut verdict);
    if mode == Mode::Istio {
        posture::check_istio_capture(config, namespace, annotations, labels, &mut verdict);
    }
    problems.append(&mut verdict.problems);

    if spec.host_network == Some(true) {
        problems.push(Problem::new(
            "spec.hostNetwork",
            "hallpass cannot be injected into a hostNetwork pod: its ports would be the node's",
        ));
    }
    let mut ours: Vec<(u16, &str)> = vec![(config.sidecar.admin_port, "hallpass admin")];
    let mut app_port = None;
    match mode {
        Mode::Istio => ours.push((config.sidecar.authz_port, "hallpass authz")),
        Mode::Standalone => {
            if !config.spiffe.enabled {
                problems.push(Problem::new(
                    annotations::MODE,
                    "standalone mode needs the SPIFFE CSI volume (spiffe.enabled in the chart)",
                ));
            }
            ours.extend([
                (inbound_port, "Envoy inbound (mTLS)"),
                (config.envoy.health_port, "Envoy health"),
            ]);
            app_port = requested.app_port.or_else(|| {
                spec.containers
                    .first()
                    .and_then(|c| c.ports.as_ref())
                    .and_then(|ports| {
                        ports
                            .iter()
                            .find(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
                    })
                    .and_then(|p| u16::try_from(p.container_port).ok())
            });
            match app_port {
                None => problems.push(Problem::new(
                    annotations::APP_PORT,
                    "standalone mode needs the app's port: set this annotation or declare a containerPort on the first container",
                )),
                Some(port) => {
                    if let Some((_, what)) = ours.iter().find(|(p, _)| *p == port) {
                        problems.push(Problem::new(
                            annotations::APP_PORT,
                            format!("{port} is also the {what} port"),
                        ));
                    }
                }
            }
        }
    }
    for (i, (port, what)) in ours.iter().enumerate() {
        if let Some((_, other)) = ours.iter().take(i).find(|(p, _)| p == port) {
            problems.push(Problem::new(
                annotations::INBOUND_PORT,
                format!("{port} is both the {other} and the {what} port"),
            ));
        }
        if let Some((_, container)) = declared_ports(spec)
            .iter()
            .find(|(p, _)| *p == i32::from(*port))
            && Some(*port) != app_port
        {
            problems.push(Problem::new(
                format!("spec.containers[{container}].ports"),
                format!(
                    "{port} is used by container {container}; hallpass needs it for the {what} port"
                ),
            ));
        }
    }
    if problems.is_empty() {
        Ok(Resolved {
            mode,
            app_port,
            inbound_port,
            app_protocol: requested.app_protocol.unwrap_or(config.envoy.app_protocol),
            workload_id,
            audit_log,
            enforce,
            overrides: verdict.applied,
        })
    } else {
        Err(problems)
    }
}

/// The injection for `pod` in `namespace`, whatever its opt-in says (the
/// caller decided that): refused when the pod asks for what it may not have.
pub(crate) fn plan(
    config: &InjectorConfig,
    namespace: &str,
    pod: &Value,
) -> Result<Injection, Vec<Problem>> {
    let spec: PodSpec = serde_json::from_value(pod.get("spec").cloned().unwrap_or(Value::Null))
        .map_err(|e| {
            vec![Problem::new(
                "spec",
                format!("cannot read the pod spec: {e}"),
            )]
        })?;
    let annotations = string_map(pod.pointer("/metadata/annotations"));
    let labels = string_map(pod.pointer("/metadata/labels"));
    let r = resolve(config, namespace, &spec, &annotations, &labels)?;
    let mut containers = vec![hallpass_container(config, &r)];
    if r.mode == Mode::Standalone
        && let Some(app_port) = r.app_port
    {
        containers.push(envoy_container(config, &r, app_port));
    }
    let volumes = volumes(config, r.mode);
    let status = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "mode": r.mode.as_str(),
        "initContainers": containers.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
        "volumes": volumes.iter().map(|v| v.name.clone()).collect::<Vec<_>>(),
    });
    let mut new_annotations = vec![(annotations::INJECTED.to_owned(), status.to_string())];
    let mut applied = r.overrides.clone();
    applied.sort();
    if !applied.is_empty() {
        let names: Vec<&str> = applied.iter().map(|o| o.as_str()).collect();
        new_annotations.push((annotations::OVERRIDES.to_owned(), names.join(",")));
    }
    if r.mode == Mode::Istio {
        let admin = config.sidecar.admin_port.to_string();
        let merged = match annotations.get(annotations::ISTIO_EXCLUDE_INBOUND_PORTS) {
            None => Some(admin),
            Some(list) if list.split(',').any(|p| p.trim() == admin) => None,
            Some(list) if list.trim().is_empty() => Some(admin),
            Some(list) => Some(format!("{},{admin}", list.trim_end_matches(','))),
        };
        if let Some(value) = merged {
            new_annotations.push((annotations::ISTIO_EXCLUDE_INBOUND_PORTS.to_owned(), value));
        }
    }

    let mut ops = Ops::default();
    let to_value = |c: &Container| serde_json::to_value(c).unwrap_or(Value::Null);
    if pod
        .pointer("/spec/initContainers")
        .is_some_and(Value::is_array)
    {
        for (i, c) in containers.iter().enumerate() {
            ops.add(&["spec", "initContainers", &i.to_string()], to_value(c));
        }
    } else {
        ops.add(
            &["spec", "initContainers"],
            Value::Array(containers.iter().map(to_value).collect()),
        );
    }
    let volume_values: Vec<Value> = volumes
        .iter()
        .map(|v| serde_json::to_value(v).unwrap_or(Value::Null))
        .collect();
    if pod.pointer("/spec/volumes").is_some_and(Value::is_array) {
        for v in volume_values {
            ops.add(&["spec", "volumes", "-"], v);
        }
    } else {
        ops.add(&["spec", "volumes"], Value::Array(volume_values));
    }
    ops.add_to_map(pod, "annotations", new_annotations);
    ops.add_to_map(
        pod,
        "labels",
        vec![(
            annotations::SIDECAR_LABEL.to_owned(),
            r.mode.as_str().to_owned(),
        )],
    );
    Ok(Injection {
        mode: r.mode,
        patch: Patch(ops.ops),
        overrides: applied,
    })
}

#[derive(Default)]
struct Ops {
    ops: Vec<PatchOperation>,
    metadata_added: bool,
}

impl Ops {
    fn add(&mut self, tokens: &[&str], value: Value) {
        self.ops.push(PatchOperation::Add(AddOperation {
            path: PointerBuf::from_tokens(tokens.iter().copied()),
            value,
        }));
    }

    /// Set keys in `metadata.<field>`, creating `metadata` and the map when
    /// they are missing.
    fn add_to_map(&mut self, pod: &Value, field: &str, entries: Vec<(String, String)>) {
        let has_metadata = pod.get("metadata").is_some_and(Value::is_object);
        if !has_metadata && !self.metadata_added {
            self.add(&["metadata"], json!({}));
            self.metadata_added = true;
        }
        let exists = has_metadata
            && pod
                .get("metadata")
                .and_then(|m| m.get(field))
                .is_some_and(Value::is_object);
        if exists {
            for (k, v) in entries {
                self.add(&["metadata", field, &k], Value::String(v));
            }
        } else {
            let map: serde_json::Map<String, Value> = entries
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            self.add(&["metadata", field], Value::Object(map));
        }
    }
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

/// Non-root, read-only root filesystem, no privilege escalation, no
/// capabilities, the runtime's default seccomp profile.
fn restricted(uid: i64) -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(uid),
        run_as_group: Some(uid),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Default::default()
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn http_probe(path: &str, port: u16, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(i32::from(port)),
            ..Default::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(2),
        ..Default::default()
    }
}

fn port(name: &str, number: u16) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: i32::from(number),
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

fn listen_address(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

fn hallpass_container(config: &InjectorConfig, r: &Resolved) -> Container {
    let s = &config.sidecar;
    let mut env_vars = vec![
        env(
            "HALLPASS_AUTHZ_LISTEN",
            match r.mode {
                Mode::Istio => listen_address("127.0.0.1", s.authz_port),
                Mode::Standalone => format!("unix://{AUTHZ_SOCKET}"),
            },
        ),
        env(
            "HALLPASS_ADMIN_LISTEN",
            listen_address(&s.admin_address, s.admin_port),
        ),
        env(
            "HALLPASS_IDENTITY_X509_FROM",
            match r.mode {
                Mode::Istio => s.x509_from.istio.clone(),
                Mode::Standalone => s.x509_from.standalone.clone(),
            },
        ),
    ];
    if let Some(id) = &r.workload_id {
        env_vars.push(env(WORKLOAD_ID_ENV, id.clone()));
    }
    if let Some(log) = &r.audit_log {
        env_vars.push(env("HALLPASS_TELEMETRY_AUDIT_LOG", log.clone()));
    }
    if r.enforce {
        env_vars.push(env(POLICY_MODE_ENV, "enforce"));
    }
    if config.spiffe.enabled {
        env_vars.push(env(
            "SPIFFE_ENDPOINT_SOCKET",
            config.workload_api_endpoint(),
        ));
    }
    env_vars.extend(s.env.iter().cloned());

    let mut mounts = vec![
        mount(MESH_VOLUME, MESH_DIR, true),
        mount(TEAM_VOLUME, TEAM_DIR, true),
        mount(STATE_VOLUME, STATE_DIR, false),
    ];
    if r.mode == Mode::Standalone {
        mounts.push(mount(RUN_VOLUME, RUN_DIR, false));
    }
    if config.spiffe.enabled {
        mounts.push(mount(SPIFFE_VOLUME, &config.spiffe.mount_path, true));
    }
    Container {
        name: HALLPASS_CONTAINER.into(),
        image: Some(s.image.clone()),
        image_pull_policy: s.image_pull_policy.clone(),
        args: Some(vec!["serve".into(), "--config".into(), CONFIG_FILE.into()]),
        // A native sidecar: started before the app, stopped after it.
        restart_policy: Some("Always".into()),
        env: Some(env_vars),
        ports: Some(vec![port("hallpass-admin", s.admin_port)]),
        resources: Some(s.resources.clone()),
        security_context: Some(restricted(s.run_as_user)),
        startup_probe: Some(Probe {
            timeout_seconds: Some(1),
            ..http_probe("/healthz", s.admin_port, 1, 30)
        }),
        liveness_probe: Some(http_probe("/healthz", s.admin_port, 10, 3)),
        readiness_probe: Some(http_probe("/readyz", s.admin_port, 5, 2)),
        volume_mounts: Some(mounts),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Default::default()
    }
}

/// The Envoy bootstrap a standalone pod gets (also used by tests that run
/// `envoy --mode validate` on it).
pub fn envoy_bootstrap(
    config: &InjectorConfig,
    app_port: u16,
    inbound_port: u16,
    app_protocol: AppProtocol,
) -> Value {
    let e = &config.envoy;
    envoy::bootstrap(&BootstrapParams {
        inbound_port,
        app_port,
        app_protocol,
        health_port: e.health_port,
        admin_socket: ENVOY_ADMIN_SOCKET.into(),
        authz_socket: AUTHZ_SOCKET.into(),
        spire_agent_socket: config.spire_agent_socket(),
        svid_name: e.svid_name.clone(),
        bundle_name: e.bundle_name.clone(),
        forward_client_cert_chain: e.forward_client_cert_chain,
        ext_authz_timeout_ms: e.ext_authz_timeout_ms,
    })
}

fn envoy_container(config: &InjectorConfig, r: &Resolved, app_port: u16) -> Container {
    let e = &config.envoy;
    let bootstrap = envoy_bootstrap(config, app_port, r.inbound_port, r.app_protocol);
    Container {
        name: ENVOY_CONTAINER.into(),
        image: Some(e.image.clone()),
        image_pull_policy: e.image_pull_policy.clone(),
        args: Some(vec![
            "--config-yaml".into(),
            bootstrap.to_string(),
            // Kubernetes expands $(VAR) in args from the container's env.
            "--service-node".into(),
            "$(POD_NAME)".into(),
            "--service-cluster".into(),
            "$(POD_NAMESPACE)".into(),
            "--concurrency".into(),
            e.concurrency.to_string(),
            "--disable-hot-restart".into(),
            "--log-level".into(),
            e.log_level.clone(),
        ]),
        restart_policy: Some("Always".into()),
        env: Some(vec![
            field_env("POD_NAME", "metadata.name"),
            field_env("POD_NAMESPACE", "metadata.namespace"),
        ]),
        ports: Some(vec![
            port("hallpass-mtls", r.inbound_port),
            port("hallpass-health", e.health_port),
        ]),
        resources: Some(e.resources.clone()),
        security_context: Some(restricted(config.sidecar.run_as_user)),
        startup_probe: Some(Probe {
            timeout_seconds: Some(1),
            ..http_probe("/ready", e.health_port, 1, 60)
        }),
        readiness_probe: Some(http_probe("/ready", e.health_port, 5, 2)),
        liveness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(i32::from(e.health_port)),
                ..Default::default()
            }),
            period_seconds: Some(10),
            failure_threshold: Some(3),
            timeout_seconds: Some(2),
            ..Default::default()
        }),
        volume_mounts: Some(vec![
            mount(RUN_VOLUME, RUN_DIR, false),
            mount(SPIFFE_VOLUME, &config.spiffe.mount_path, true),
        ]),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Default::default()
    }
}

fn volumes(config: &InjectorConfig, mode: Mode) -> Vec<Volume> {
    let mut out = vec![
        Volume {
            name: MESH_VOLUME.into(),
            config_map: Some(ConfigMapVolumeSource {
                name: config.sidecar.mesh_config_map.clone(),
                ..Default::default()
            }),
            ..Default::default()
        },
        // Optional: a namespace whose team has not written its rules yet
        // still starts, and its sidecars deny every call (no rules); the
        // kubelet fills the volume when the ConfigMap appears.
        Volume {
            name: TEAM_VOLUME.into(),
            config_map: Some(ConfigMapVolumeSource {
                name: config.sidecar.team_config_map.clone(),
                optional: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: STATE_VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
    ];
    if mode == Mode::Standalone {
        out.push(Volume {
            name: RUN_VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".into()),
                size_limit: Some(Quantity("1Mi".into())),
            }),
            ..Default::default()
        });
    }
    if config.spiffe.enabled {
        out.push(Volume {
            name: SPIFFE_VOLUME.into(),
            csi: Some(CSIVolumeSource {
                driver: config.spiffe.csi_driver.clone(),
                read_only: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    out
}

/// What `hallpass inject --render` prints.
#[derive(Debug, Clone)]
pub enum Rendered {
    /// Not injected; the pod unchanged, as YAML.
    Skipped(Skip, String),
    /// Refused, with every reason.
    Rejected(Vec<Problem>),
    /// Injected; the patched pod as YAML.
    Injected(Mode, String),
}

/// Decide about a pod given as YAML or JSON text and render the result.
/// The namespace is `namespace`, else the pod's `metadata.namespace`, else
/// `default` (as `kubectl apply` would create it).
pub fn render(
    config: &InjectorConfig,
    scope: Scope,
    namespace: Option<&str>,
    pod_text: &str,
) -> Result<Rendered, String> {
    let pod: Value =
        serde_yaml_ng::from_str(pod_text).map_err(|e| format!("not YAML or JSON: {e}"))?;
    let yaml = |v: &Value| serde_yaml_ng::to_string(v).map_err(|e| e.to_string());
    let namespace = namespace
        .map(str::to_owned)
        .or_else(|| {
            pod.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "default".to_owned());
    Ok(match decide(config, scope, &namespace, &pod) {
        Decision::Skip(why) => Rendered::Skipped(why, yaml(&pod)?),
        Decision::Reject(problems) => Rendered::Rejected(problems),
        Decision::Inject(injection) => {
            let patched = injection
                .apply(&pod)
                .map_err(|e| format!("the patch does not apply: {e}"))?;
            Rendered::Injected(injection.mode, yaml(&patched)?)
        }
    })
}
