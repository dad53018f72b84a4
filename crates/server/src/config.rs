//! The config file (design §4): parsed into raw sections, overridden from
//! `HALLPASS_*` variables, then validated into [`Settings`] with every problem
//! reported at once, each with its key path.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hallpass_identity::{SpiffeId, TrustDomain, parse_spiffe_id_strict};
use hallpass_policy::Mode;
use hallpass_telemetry::{AuditTarget, RateSpikeSettings, TelemetrySettings};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_yaml_ng::{Mapping, Value};

use crate::ServerError;

/// Environment variables that override config keys.
pub const ENV_OVERRIDES: &[(&str, &[&str], EnvKind)] = &[
    ("HALLPASS_AUTHZ_LISTEN", &["authz", "listen"], EnvKind::Text),
    ("HALLPASS_ADMIN_LISTEN", &["admin", "listen"], EnvKind::Text),
    ("HALLPASS_WORKLOAD_ID", &["workload", "id"], EnvKind::Text),
    (
        "HALLPASS_TRUST_WORKLOAD_API",
        &["trust", "workload_api"],
        EnvKind::Text,
    ),
    (
        "HALLPASS_IDENTITY_X509_FROM",
        &["identity", "x509_from"],
        EnvKind::Text,
    ),
    (
        "HALLPASS_IDENTITY_CLOCK_SKEW_SECONDS",
        &["identity", "clock_skew_seconds"],
        EnvKind::Number,
    ),
    ("HALLPASS_POLICY_FILE", &["policy", "file"], EnvKind::Text),
    ("HALLPASS_POLICY_MODE", &["policy", "mode"], EnvKind::Text),
    (
        "HALLPASS_POLICY_RELOAD_INTERVAL_SECONDS",
        &["policy", "reload_interval_seconds"],
        EnvKind::Number,
    ),
    (
        "HALLPASS_TELEMETRY_AUDIT_LOG",
        &["telemetry", "audit_log"],
        EnvKind::Text,
    ),
    (
        "HALLPASS_TELEMETRY_BASELINE",
        &["telemetry", "baseline"],
        EnvKind::Text,
    ),
];

/// How an environment override's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvKind {
    /// Taken as a string, whatever it looks like.
    Text,
    /// A whole number (left as a string if it is not one, so the error names the key).
    Number,
}

/// Variables with the `HALLPASS_` prefix that are not config overrides.
const ENV_NOT_OVERRIDES: &[&str] = &["HALLPASS_CONFIG", "HALLPASS_LOG"];

/// One problem in the config, with its key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key path, e.g. `trust.bundles[0].trust_domain`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListenSection {
    listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WorkloadSection {
    id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TrustSection {
    workload_api: Option<String>,
    bundles: Vec<BundleSection>,
}

#[derive(Debug, Deserialize)]
struct BundleSection {
    trust_domain: String,
    x509: Option<PathBuf>,
    jwt: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IdentitySection {
    x509_from: Option<X509From>,
    clock_skew_seconds: Option<u64>,
    jwt: Option<JwtSection>,
    xfcc: Option<XfccSection>,
    cache_max_entries: Option<usize>,
    max_lifetime_seconds: Option<MaxLifetimeSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MaxLifetimeSection {
    x509: Option<u64>,
    jwt: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct JwtSection {
    header: Option<String>,
    audiences: Vec<String>,
    required: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct XfccSection {
    trusted_proxies: Vec<String>,
}

/// JWT-SVID settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    /// Request header carrying the token (lower case). For `authorization`
    /// the value must be `Bearer <token>`; any other header holds the bare token.
    pub header: String,
    /// Accepted audiences: a token's `aud` must contain one of them.
    pub audiences: Vec<String>,
    /// Deny `no_identity` when no token is presented.
    pub required: bool,
}

/// Trust material files of one trust domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFiles {
    /// The trust domain.
    pub trust_domain: TrustDomain,
    /// X.509 CAs: PEM, or a SPIFFE bundle (JWKS with `x509-svid` keys).
    pub x509: Option<PathBuf>,
    /// JWT-SVID keys: a SPIFFE bundle or a plain JWKS.
    pub jwt: Option<PathBuf>,
}

/// Largest verification cache allowed.
const MAX_CACHE_ENTRIES: usize = 1_000_000;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PolicySection {
    file: Option<PathBuf>,
    reload_interval_seconds: Option<u64>,
    mode: Option<Mode>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TelemetrySection {
    audit_log: Option<String>,
    audit_log_max_bytes: Option<u64>,
    audit_log_max_files: Option<u32>,
    log_raw_paths: bool,
    baseline: Option<PathBuf>,
    learning_window_seconds: Option<u64>,
    rate_window_seconds: Option<u64>,
    rate_spike_factor: Option<f64>,
    rate_spike_min_requests: Option<u64>,
    rate_spike_smoothing: Option<f64>,
    max_edges: Option<usize>,
    queue_capacity: Option<usize>,
}

/// Where the caller's X.509 identity comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum X509From {
    /// Verify the peer certificate Envoy forwards (`include_peer_certificate`).
    #[default]
    PeerCertificate,
    /// Trust `attributes.source.principal`, which Envoy validated. Cheaper; it
    /// makes Envoy's TLS validation context the whole trust decision.
    EnvoyPrincipal,
    /// The `x-forwarded-client-cert` header of a trusted front proxy.
    Xfcc,
}

/// A listen address: TCP, or a Unix socket path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// `host:port`.
    Tcp(SocketAddr),
    /// `unix:///path/to.sock`.
    Unix(PathBuf),
}

impl ListenAddr {
    fn parse(text: &str) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(
                    "a Unix socket must be an absolute path: unix:///run/hallpass/authz.sock"
                        .into(),
                );
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        text.parse().map(Self::Tcp).map_err(|_| {
            format!("`{text}` is neither host:port (e.g. 127.0.0.1:9191) nor unix:///path")
        })
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(a) => write!(f, "{a}"),
            Self::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

/// The validated configuration the sidecar runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The ext_authz gRPC listener.
    pub authz_listen: ListenAddr,
    /// The admin HTTP listener.
    pub admin_listen: SocketAddr,
    /// This sidecar's destination ID, if fixed by config.
    pub workload_id: Option<SpiffeId>,
    /// Static bundle files per trust domain.
    pub bundles: Vec<BundleFiles>,
    /// The SPIFFE Workload API endpoint (`unix:/path` or `tcp:host:port`),
    /// from `trust.workload_api` or `SPIFFE_ENDPOINT_SOCKET`.
    pub workload_api: Option<String>,
    /// Where the X.509 identity comes from.
    pub x509_from: X509From,
    /// Proxies whose XFCC header is believed (`xfcc` mode).
    pub xfcc_trusted_proxies: Vec<SpiffeId>,
    /// JWT-SVID verification, when configured.
    pub jwt: Option<JwtSettings>,
    /// Entries in the verification cache (0 disables it).
    pub cache_max_entries: usize,
    /// Lifetimes above these (seconds) count as long-lived credentials.
    pub max_lifetime_x509: i64,
    /// See `max_lifetime_x509`.
    pub max_lifetime_jwt: i64,
    /// Tolerated clock skew on credential validity windows.
    pub clock_skew: Duration,
    /// The policy file.
    pub policy_file: PathBuf,
    /// How often the policy and bundle files are re-read.
    pub reload_interval: Duration,
    /// `Some(Mode::Enforce)`: enforce every destination, even one the policy
    /// puts in audit mode (set per pod by the injector from
    /// `hallpass.io/audit: "false"`). Never `Some(Mode::Audit)`: an override
    /// can only make the sidecar stricter than its policy.
    pub mode_override: Option<Mode>,
    /// Call graph, anomaly detection and audit log.
    pub telemetry: TelemetrySettings,
    /// Put raw request paths in audit records (only for meshes without PHI).
    pub log_raw_paths: bool,
    /// Non-fatal notes about the config, logged at start.
    pub warnings: Vec<String>,
}

impl Settings {
    /// Read a config file, apply `HALLPASS_*` overrides from the process
    /// environment and validate.
    pub fn load(path: &Path) -> Result<Self, ServerError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ServerError::Config(vec![ConfigProblem {
                path: path.display().to_string(),
                message: format!("cannot read config file: {e}"),
            }])
        })?;
        Self::from_yaml(&text, std::env::vars())
    }

    /// Parse YAML text with the given environment and validate.
    pub fn from_yaml(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ServerError> {
        let mut problems = Vec::new();
        let mut root = match serde_yaml_ng::from_str::<Value>(text) {
            Ok(Value::Mapping(m)) => m,
            Ok(Value::Null) => Mapping::new(),
            Ok(_) => {
                return Err(ServerError::Config(vec![ConfigProblem {
                    path: "(document)".into(),
                    message: "the config must be a YAML mapping".into(),
                }]));
            }
            Err(e) => {
                let at = e
                    .location()
                    .map(|l| format!(" at line {} column {}", l.line(), l.column()));
                return Err(ServerError::Config(vec![ConfigProblem {
                    path: "(document)".into(),
                    message: format!("not valid YAML{}: {e}", at.unwrap_or_default()),
                }]));
            }
        };
        let mut warnings = Vec::new();
        let env: Vec<(String, String)> = env.into_iter().collect();
        let spiffe_endpoint_socket = env
            .iter()
            .find(|(k, _)| k == "SPIFFE_ENDPOINT_SOCKET")
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty());
        apply_env(&mut root, env, &mut warnings);

        for key in root.keys() {
            let name = key.as_str().unwrap_or("?");
            if ![
                "authz",
                "admin",
                "workload",
                "trust",
                "identity",
                "policy",
                "telemetry",
            ]
            .contains(&name)
            {
                problems.push(ConfigProblem {
                    path: name.into(),
                    message: "unknown key".into(),
                });
            }
        }
        let mut failed: Vec<&str> = Vec::new();
        let authz: ListenSection = section(&root, "authz", &mut problems).unwrap_or_else(|| {
            failed.push("authz");
            ListenSection::default()
        });
        let admin: ListenSection = section(&root, "admin", &mut problems).unwrap_or_else(|| {
            failed.push("admin");
            ListenSection::default()
        });
        let workload: WorkloadSection =
            section(&root, "workload", &mut problems).unwrap_or_else(|| {
                failed.push("workload");
                WorkloadSection::default()
            });
        let trust: TrustSection = section(&root, "trust", &mut problems).unwrap_or_else(|| {
            failed.push("trust");
            TrustSection::default()
        });
        let identity: IdentitySection =
            section(&root, "identity", &mut problems).unwrap_or_else(|| {
                failed.push("identity");
                IdentitySection::default()
            });
        let policy: PolicySection = section(&root, "policy", &mut problems).unwrap_or_else(|| {
            failed.push("policy");
            PolicySection::default()
        });
        let telemetry: TelemetrySection = section(&root, "telemetry", &mut problems)
            .unwrap_or_else(|| {
                failed.push("telemetry");
                TelemetrySection::default()
            });

        // A section with a type error was replaced by its defaults; checks on
        // those defaults would only invent problems, so they are not reported.
        let mut problem = |path: &str, message: String| {
            let section = path.split(['.', '[']).next().unwrap_or_default();
            if failed.contains(&section) {
                return;
            }
            problems.push(ConfigProblem {
                path: path.into(),
                message,
            })
        };

        let authz_listen = ListenAddr::parse(authz.listen.as_deref().unwrap_or("127.0.0.1:9191"))
            .map_err(|m| problem("authz.listen", m))
            .ok();
        let admin_listen =
            match ListenAddr::parse(admin.listen.as_deref().unwrap_or("127.0.0.1:9902")) {
                Ok(ListenAddr::Tcp(a)) => Some(a),
                Ok(ListenAddr::Unix(_)) => {
                    problem(
                    "admin.listen",
                    "the admin listener must be TCP (kubelet probes and Prometheus need a port)"
                        .into(),
                );
                    None
                }
                Err(m) => {
                    problem("admin.listen", m);
                    None
                }
            };
        let workload_id = workload.id.as_deref().and_then(|id| {
            parse_spiffe_id_strict(id)
                .map_err(|m| problem("workload.id", m.into()))
                .ok()
        });
        let workload_api = trust.workload_api.clone().or(spiffe_endpoint_socket);
        if let Some(endpoint) = &workload_api
            && !(endpoint.starts_with("unix:") || endpoint.starts_with("tcp:"))
        {
            {
                problem(
                    "trust.workload_api",
                    format!(
                        "`{endpoint}` must start with unix: or tcp: (e.g. unix:///run/spire/agent.sock)"
                    ),
                );
            }
        }
        let mut bundles = Vec::new();
        for (i, b) in trust.bundles.iter().enumerate() {
            let at = format!("trust.bundles[{i}]");
            match TrustDomain::new(&b.trust_domain) {
                Ok(td) if td.as_str() == b.trust_domain => {
                    if b.x509.is_none() && b.jwt.is_none() {
                        problem(
                            &at,
                            "give an x509 bundle file, a jwt bundle file, or both".into(),
                        );
                    }
                    if bundles.iter().any(|f: &BundleFiles| f.trust_domain == td) {
                        problem(&format!("{at}.trust_domain"), format!("{td} appears twice"));
                    }
                    bundles.push(BundleFiles {
                        trust_domain: td,
                        x509: b.x509.clone(),
                        jwt: b.jwt.clone(),
                    });
                }
                Ok(_) => problem(
                    &format!("{at}.trust_domain"),
                    "write the trust domain name alone, in lower case".into(),
                ),
                Err(e) => problem(
                    &format!("{at}.trust_domain"),
                    format!("not a trust domain: {e}"),
                ),
            }
        }
        let has_x509_source = workload_api.is_some() || bundles.iter().any(|b| b.x509.is_some());
        let has_jwt_source = workload_api.is_some() || bundles.iter().any(|b| b.jwt.is_some());
        let x509_from = identity.x509_from.unwrap_or_default();
        if x509_from != X509From::EnvoyPrincipal && !has_x509_source {
            problem("trust", "verifying certificates needs trust.workload_api or at least one trust.bundles[].x509 file".into());
        }
        let mut xfcc_trusted_proxies = Vec::new();
        let proxies = identity
            .xfcc
            .as_ref()
            .map(|x| x.trusted_proxies.as_slice())
            .unwrap_or_default();
        for (i, p) in proxies.iter().enumerate() {
            match parse_spiffe_id_strict(p) {
                Ok(id) => xfcc_trusted_proxies.push(id),
                Err(m) => problem(&format!("identity.xfcc.trusted_proxies[{i}]"), m.into()),
            }
        }
        if x509_from == X509From::Xfcc && proxies.is_empty() {
            problem(
                "identity.xfcc.trusted_proxies",
                "xfcc mode needs the SPIFFE IDs of the proxies whose header is believed".into(),
            );
        }
        if x509_from != X509From::Xfcc && !proxies.is_empty() {
            warnings.push("identity.xfcc: only used with x509_from: xfcc".into());
        }
        let jwt = identity.jwt.as_ref().map(|j| {
            let header = j.header.clone().unwrap_or_else(|| "authorization".into());
            if header.is_empty()
                || !header
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                problem(
                    "identity.jwt.header",
                    "a lower-case header name, e.g. authorization".into(),
                );
            }
            if j.audiences.is_empty() || j.audiences.iter().any(String::is_empty) {
                problem(
                    "identity.jwt.audiences",
                    "at least one non-empty audience is required".into(),
                );
            }
            if !has_jwt_source {
                problem(
                    "identity.jwt",
                    "JWT-SVIDs need trust.workload_api or at least one trust.bundles[].jwt file"
                        .into(),
                );
            }
            JwtSettings {
                header,
                audiences: j.audiences.clone(),
                required: j.required,
            }
        });
        let max_lifetime = identity.max_lifetime_seconds.as_ref();
        let lifetime =
            |v: Option<u64>, d: i64| v.map_or(d, |v| i64::try_from(v).unwrap_or(i64::MAX));
        let cache_max_entries = identity
            .cache_max_entries
            .unwrap_or(hallpass_identity::DEFAULT_CAPACITY);
        if cache_max_entries > MAX_CACHE_ENTRIES {
            problem(
                "identity.cache_max_entries",
                format!("at most {MAX_CACHE_ENTRIES}"),
            );
        }
        let clock_skew = Duration::from_secs(identity.clock_skew_seconds.unwrap_or(30));
        if clock_skew > Duration::from_secs(600) {
            problem("identity.clock_skew_seconds", "at most 600 seconds".into());
        }
        let policy_file = policy.file.clone();
        if policy_file.is_none() {
            problem("policy.file", "required: the policy file to enforce".into());
        }
        // A sidecar may only be made stricter than its policy: a per-pod
        // audit switch would let one replica of an enforced destination wave
        // denied calls through. Audit mode belongs to the policy's owner.
        if policy.mode == Some(Mode::Audit) {
            problem(
                "policy.mode",
                "only `enforce` is allowed here (it enforces every destination, even those the policy audits); \
                 audit mode is set per destination in the policy (`mode: audit`)"
                    .into(),
            );
        }
        let reload_interval = Duration::from_secs(policy.reload_interval_seconds.unwrap_or(2));
        if reload_interval.is_zero() || reload_interval > Duration::from_secs(3600) {
            problem(
                "policy.reload_interval_seconds",
                "must be between 1 and 3600".into(),
            );
        }
        let defaults = TelemetrySettings::default();
        let audit = match telemetry.audit_log.as_deref().unwrap_or("stdout") {
            "stdout" => AuditTarget::Stdout,
            "off" => AuditTarget::Off,
            path if path.starts_with('/') => AuditTarget::File {
                path: PathBuf::from(path),
                max_bytes: telemetry.audit_log_max_bytes.unwrap_or(100 * 1024 * 1024),
                keep: telemetry.audit_log_max_files.unwrap_or(5),
            },
            _ => {
                problem(
                    "telemetry.audit_log",
                    "`stdout`, `off`, or an absolute file path".into(),
                );
                AuditTarget::Off
            }
        };
        if telemetry.audit_log_max_bytes.is_some_and(|b| b < 4096) {
            problem("telemetry.audit_log_max_bytes", "at least 4096".into());
        }
        if telemetry.audit_log_max_files.is_some_and(|n| n > 100) {
            problem("telemetry.audit_log_max_files", "at most 100".into());
        }
        let seconds = |v: Option<u64>, d: Duration| v.map_or(d, Duration::from_secs);
        let rate_window = seconds(telemetry.rate_window_seconds, defaults.rate_window);
        if rate_window.is_zero() || rate_window > Duration::from_secs(3600) {
            problem(
                "telemetry.rate_window_seconds",
                "must be between 1 and 3600".into(),
            );
        }
        let factor = telemetry
            .rate_spike_factor
            .unwrap_or(defaults.rate_spike.factor);
        if !(factor.is_finite() && factor > 1.0) {
            problem(
                "telemetry.rate_spike_factor",
                "must be a number above 1".into(),
            );
        }
        let smoothing = telemetry
            .rate_spike_smoothing
            .unwrap_or(defaults.rate_spike.alpha);
        if !(smoothing.is_finite() && smoothing > 0.0 && smoothing <= 1.0) {
            problem(
                "telemetry.rate_spike_smoothing",
                "must be a number above 0 and at most 1".into(),
            );
        }
        let max_edges = telemetry.max_edges.unwrap_or(defaults.max_edges);
        if max_edges == 0 || max_edges > 1_000_000 {
            problem(
                "telemetry.max_edges",
                "must be between 1 and 1000000".into(),
            );
        }
        let queue_capacity = telemetry.queue_capacity.unwrap_or(defaults.queue_capacity);
        if queue_capacity == 0 || queue_capacity > 1_000_000 {
            problem(
                "telemetry.queue_capacity",
                "must be between 1 and 1000000".into(),
            );
        }
        let telemetry_settings = TelemetrySettings {
            queue_capacity,
            max_edges,
            audit,
            baseline_path: telemetry.baseline.clone(),
            learning_window: seconds(telemetry.learning_window_seconds, defaults.learning_window),
            rate_window,
            rate_spike: RateSpikeSettings {
                factor,
                min_requests: telemetry
                    .rate_spike_min_requests
                    .unwrap_or(defaults.rate_spike.min_requests),
                alpha: smoothing,
            },
        };

        if !problems.is_empty() {
            return Err(ServerError::Config(problems));
        }
        match (authz_listen, admin_listen, policy_file) {
            (Some(authz_listen), Some(admin_listen), Some(policy_file)) => Ok(Self {
                authz_listen,
                admin_listen,
                workload_id,
                bundles,
                workload_api,
                x509_from,
                xfcc_trusted_proxies,
                jwt,
                cache_max_entries,
                max_lifetime_x509: lifetime(max_lifetime.and_then(|m| m.x509), 86_400),
                max_lifetime_jwt: lifetime(max_lifetime.and_then(|m| m.jwt), 3_600),
                clock_skew,
                policy_file,
                reload_interval,
                mode_override: policy.mode,
                telemetry: telemetry_settings,
                log_raw_paths: telemetry.log_raw_paths,
                warnings,
            }),
            _ => Err(ServerError::Config(vec![ConfigProblem {
                path: "(document)".into(),
                message: "incomplete configuration".into(),
            }])),
        }
    }
}

/// Deserialize one top-level section, collecting every unknown key and the
/// first type error inside it. `None` means the section had a type error;
/// other sections are still checked.
fn section<T: DeserializeOwned + Default>(
    root: &Mapping,
    key: &str,
    problems: &mut Vec<ConfigProblem>,
) -> Option<T> {
    let Some(value) = root.get(key).filter(|v| !v.is_null()) else {
        return Some(T::default());
    };
    let mut unknown = Vec::new();
    let mut on_unknown = |p: serde_ignored::Path<'_>| unknown.push(key_path(&p));
    let de = serde_ignored::Deserializer::new(value.clone(), &mut on_unknown);
    let result = serde_path_to_error::deserialize::<_, T>(de);
    for u in unknown {
        problems.push(ConfigProblem {
            path: format!("{key}{u}"),
            message: "unknown key".into(),
        });
    }
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            let inner = e.path().to_string();
            let path = if inner == "." {
                key.to_owned()
            } else {
                format!("{key}.{inner}")
            };
            problems.push(ConfigProblem {
                path,
                message: e.into_inner().to_string(),
            });
            None
        }
    }
}

/// `.a.b[0].c` for an ignored key, in the same style as type errors.
fn key_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", key_path(parent)),
        Path::Map { parent, key } => format!("{}.{key}", key_path(parent)),
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => key_path(parent),
    }
}

fn apply_env(
    root: &mut Mapping,
    env: impl IntoIterator<Item = (String, String)>,
    warnings: &mut Vec<String>,
) {
    for (name, value) in env {
        if !name.starts_with("HALLPASS_") || ENV_NOT_OVERRIDES.contains(&name.as_str()) {
            continue;
        }
        let Some((_, path, kind)) = ENV_OVERRIDES.iter().find(|(n, _, _)| *n == name) else {
            // A warning, not an error: Kubernetes injects HALLPASS_SERVICE_HOST,
            // HALLPASS_PORT, … into every pod of a namespace with a Service
            // named `hallpass`, and those must not stop the sidecar.
            warnings.push(format!("{name}: not a hallpass setting; ignored"));
            continue;
        };
        let parsed = match (kind, value.parse::<u64>()) {
            (EnvKind::Number, Ok(n)) => Value::Number(n.into()),
            _ => Value::String(value),
        };
        set_path(root, path, parsed);
    }
}

fn set_path(root: &mut Mapping, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = root;
    for p in parents {
        let entry = node
            .entry(Value::String((*p).into()))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if !entry.is_mapping() {
            *entry = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(m) = entry else { return };
        node = m;
    }
    node.insert(Value::String((*last).into()), value);
}
