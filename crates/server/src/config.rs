//! The sidecar's config file (docs/configuration.md), in three steps, each in one place:
//!
//! 1. [`ConfigFile`]: the serde model of the file, one struct per section,
//!    every one `deny_unknown_fields`, every default in a `Default` impl.
//!    `HALLPASS_*` variables are written into the YAML before it is read, so
//!    they go through the same checks as the file.
//! 2. A `validate()` per section parses the values into types (listen
//!    addresses, SPIFFE IDs, trust domains, durations) and records every
//!    problem, with its key path, its place in the file (or the variable
//!    that set it) and a hint, into one [`Problems`] list: nothing stops at
//!    the first mistake.
//! 3. [`Settings`]: what the sidecar runs with. `Settings: Serialize` gives
//!    the effective config back in the file's shape (the admin `/config`
//!    endpoint), with every [`Redacted`] value hidden.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hallpass_diagnostics::{Problems, Severity, de, path};
use hallpass_identity::{SpiffeId, TrustDomain, parse_written_spiffe_id};
use hallpass_policy::Mode;
use hallpass_telemetry::{AuditTarget, RateSpikeSettings, TelemetrySettings};
use serde::{Deserialize, Serialize};
use serde_yaml_ng::{Mapping, Value};

use crate::ServerError;

pub use hallpass_diagnostics::Problem;

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
/// The Workload API endpoint when `trust.workload_api` is not set.
const SPIFFE_ENDPOINT_SOCKET: &str = "SPIFFE_ENDPOINT_SOCKET";

/// Largest verification cache allowed.
const MAX_CACHE_ENTRIES: usize = 1_000_000;
/// Largest tolerated clock skew.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(600);
/// Longest reload interval, and longest rate window.
const MAX_INTERVAL_SECONDS: u64 = 3600;
/// Largest edge table and telemetry queue.
const MAX_TELEMETRY_CAPACITY: usize = 1_000_000;

// ------------------------------------------------------------------ redaction

/// A config value that is never shown: [`Settings`]' `Serialize` (and so
/// `/config`) writes `"<redacted>"` for it, and `Debug` prints the same.
///
/// Every credential a config key may ever hold (a token, a password, the
/// path of a private key) has this type, in [`ConfigFile`] and in
/// [`Settings`] alike; a value is read with [`Redacted::expose`]. No key of
/// the sidecar config holds a credential today: bundle files are public CA
/// certificates and keys, and the Workload API socket is a path. The test
/// `every_secret_looking_key_is_redacted` walks the dump of the documented
/// full config and fails for a key named like a credential that is shown.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Redacted<T>(T);

impl<T> Redacted<T> {
    /// What is shown instead of the value.
    pub const SHOWN: &'static str = "<redacted>";

    /// Hide `value`.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The value itself, for the code that uses it (never for display).
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::SHOWN)
    }
}

impl<T> Serialize for Redacted<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(Self::SHOWN)
    }
}

// ------------------------------------------------------------------ the file

/// The config file as written (docs/configuration.md). Every key is optional except
/// `policy.file`; what is not written takes the value of the section's
/// `Default`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfigFile {
    /// The ext_authz gRPC listener.
    pub authz: AuthzSection,
    /// The admin HTTP listener.
    pub admin: AdminSection,
    /// This sidecar's destination.
    pub workload: WorkloadSection,
    /// Where trust bundles come from.
    pub trust: TrustSection,
    /// How callers prove who they are.
    pub identity: IdentitySection,
    /// The policy file.
    pub policy: PolicySection,
    /// Call graph, anomaly detection and audit log.
    pub telemetry: TelemetrySection,
}

/// `authz`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthzSection {
    /// `IP:port`, or `unix:///absolute/path.sock`.
    pub listen: String,
}

impl Default for AuthzSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9191".into(),
        }
    }
}

/// `admin`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSection {
    /// `IP:port` (TCP only: kubelet probes and Prometheus need a port).
    pub listen: String,
}

impl Default for AdminSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9902".into(),
        }
    }
}

/// `workload`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadSection {
    /// The destination's SPIFFE ID; unset: Envoy's `destination.principal`.
    pub id: Option<String>,
}

/// `trust`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustSection {
    /// The SPIFFE Workload API (`unix:/path`, `unix:///path`, `tcp:host:port`);
    /// unset: `SPIFFE_ENDPOINT_SOCKET`.
    pub workload_api: Option<String>,
    /// Static trust, one entry per trust domain.
    pub bundles: Vec<BundleSection>,
}

/// `trust.bundles[]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BundleSection {
    /// The trust domain name, lower case.
    pub trust_domain: String,
    /// PEM CA certificates, or a SPIFFE bundle.
    pub x509: Option<PathBuf>,
    /// A SPIFFE bundle or a JWKS.
    pub jwt: Option<PathBuf>,
}

/// `identity`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentitySection {
    /// Where the caller's X.509 identity comes from.
    pub x509_from: X509From,
    /// Tolerance on validity windows.
    pub clock_skew_seconds: u64,
    /// JWT-SVIDs; unset: not used.
    pub jwt: Option<JwtSection>,
    /// Trusted front proxies (`x509_from: xfcc`).
    pub xfcc: XfccSection,
    /// Verified-credential cache entries (0 = off).
    pub cache_max_entries: usize,
    /// Longer-lived credentials are counted.
    pub max_lifetime_seconds: MaxLifetimeSection,
}

impl Default for IdentitySection {
    fn default() -> Self {
        Self {
            x509_from: X509From::default(),
            clock_skew_seconds: 30,
            jwt: None,
            xfcc: XfccSection::default(),
            cache_max_entries: hallpass_identity::DEFAULT_CAPACITY,
            max_lifetime_seconds: MaxLifetimeSection::default(),
        }
    }
}

/// `identity.max_lifetime_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaxLifetimeSection {
    /// X.509-SVIDs.
    pub x509: u64,
    /// JWT-SVIDs.
    pub jwt: u64,
}

impl Default for MaxLifetimeSection {
    fn default() -> Self {
        Self {
            x509: 86_400,
            jwt: 3_600,
        }
    }
}

/// `identity.jwt`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtSection {
    /// The request header (lower case) with the token.
    pub header: String,
    /// Accepted audiences.
    pub audiences: Vec<String>,
    /// Deny `no_identity` without a token.
    pub required: bool,
}

impl Default for JwtSection {
    fn default() -> Self {
        Self {
            header: "authorization".into(),
            audiences: Vec::new(),
            required: false,
        }
    }
}

/// `identity.xfcc`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct XfccSection {
    /// SPIFFE IDs of the proxies whose header is believed.
    pub trusted_proxies: Vec<String>,
}

/// `policy`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySection {
    /// The policy file (this or `files` is required).
    pub file: Option<PathBuf>,
    /// More policy sources: files or directories, each with an optional
    /// owner scope (design §4). With `file`, that is one more source.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<PolicyFileEntry>,
    /// How often the policy and bundle files are re-read.
    pub reload_interval_seconds: u64,
    /// `enforce`: enforce every destination, even those the policy audits.
    pub mode: Option<Mode>,
}

impl Default for PolicySection {
    fn default() -> Self {
        Self {
            file: None,
            files: Vec::new(),
            reload_interval_seconds: 2,
            mode: None,
        }
    }
}

/// One entry of `policy.files`: a path, or a path with an owner scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PolicyFileEntry {
    /// A policy file, or a directory of them (`*.yaml`/`*.yml`, hidden
    /// names skipped).
    Path(PathBuf),
    /// `{path, owner}`.
    Owned(OwnedPolicyFile),
}

/// Read by hand rather than `untagged`, whose one error for every
/// mistake ("data did not match any variant") names nothing.
impl<'de> Deserialize<'de> for PolicyFileEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        match Value::deserialize(deserializer)? {
            Value::String(path) => Ok(Self::Path(PathBuf::from(path))),
            map @ Value::Mapping(_) => serde_yaml_ng::from_value(map)
                .map(Self::Owned)
                .map_err(D::Error::custom),
            _ => Err(D::Error::custom(
                "a path (a policy file or a directory), or {path: …, owner: …}",
            )),
        }
    }
}

/// `policy.files[]` written as `{path: …, owner: …}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OwnedPolicyFile {
    /// A policy file or a directory of them.
    pub path: PathBuf,
    /// Source patterns (`from` syntax) every destination of this source
    /// must match, or the keyword `workload_namespace`.
    pub owner: OwnerEntry,
}

/// `policy.files[].owner`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum OwnerEntry {
    /// SPIFFE ID patterns: exact, `/*` or `/**`.
    Patterns(Vec<String>),
    /// `workload_namespace`: under `spiffe://TD/ns/NAMESPACE/` of `workload.id`.
    Keyword(String),
}

/// The keyword of [`OwnerEntry::Keyword`].
pub const WORKLOAD_NAMESPACE: &str = "workload_namespace";

/// A validated policy source: a file or a directory, and its owner scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySource {
    /// The file or directory.
    pub path: PathBuf,
    /// The scope every destination of this source must match.
    pub owner: Option<hallpass_policy::OwnerScope>,
    /// As written, for the effective config.
    pub written: PolicyFileEntry,
}

/// `telemetry`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySection {
    /// `stdout`, `off`, or an absolute file path.
    pub audit_log: String,
    /// Rotate the audit file at this size.
    pub audit_log_max_bytes: u64,
    /// Rotated audit files kept.
    pub audit_log_max_files: u32,
    /// Raw request paths in audit records (only where URLs carry no PHI).
    pub log_raw_paths: bool,
    /// Deny (`internal_error`) when a decision's audit record cannot be
    /// written, and write each record before the answer goes to Envoy.
    pub audit_required: bool,
    /// Learned call paths (read at start, written atomically).
    pub baseline: Option<PathBuf>,
    /// How long to learn when there is no baseline yet.
    pub learning_window_seconds: u64,
    /// Rate-spike window.
    pub rate_window_seconds: u64,
    /// A window above factor × the moving average is a spike.
    pub rate_spike_factor: f64,
    /// Quieter windows never spike.
    pub rate_spike_min_requests: u64,
    /// Weight of the newest window in the moving average.
    pub rate_spike_smoothing: f64,
    /// Call-graph edges tracked.
    pub max_edges: usize,
    /// Telemetry events queued.
    pub queue_capacity: usize,
}

impl Default for TelemetrySection {
    fn default() -> Self {
        let d = TelemetrySettings::default();
        Self {
            audit_log: "stdout".into(),
            audit_log_max_bytes: 100 * 1024 * 1024,
            audit_log_max_files: 5,
            log_raw_paths: false,
            audit_required: false,
            baseline: None,
            learning_window_seconds: d.learning_window.as_secs(),
            rate_window_seconds: d.rate_window.as_secs(),
            rate_spike_factor: d.rate_spike.factor,
            rate_spike_min_requests: d.rate_spike.min_requests,
            rate_spike_smoothing: d.rate_spike.alpha,
            max_edges: d.max_edges,
            queue_capacity: d.queue_capacity,
        }
    }
}

// ------------------------------------------------------------------ the types

/// Where the caller's X.509 identity comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
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
    /// `IP:port`.
    Tcp(SocketAddr),
    /// `unix:///path/to.sock`.
    Unix(PathBuf),
}

/// Why a value is refused, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal {
    message: String,
    hint: Option<String>,
}

impl Refusal {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    fn at(self, path: &str) -> Problem {
        let problem = Problem::new(path, self.message);
        match self.hint {
            Some(hint) => problem.with_hint(hint),
            None => problem,
        }
    }
}

/// The value of `result`, or `None` after recording its refusal at `path`.
fn check<T>(problems: &mut Problems, path: &str, result: Result<T, Refusal>) -> Option<T> {
    result.map_err(|r| problems.push(r.at(path))).ok()
}

impl ListenAddr {
    /// `IP:port` or `unix:///absolute/path`. Host names are refused, not
    /// resolved: a listener binds one local address, and a name can stand
    /// for several (`localhost` for 127.0.0.1 and ::1) or change. Port 0
    /// is accepted: the OS picks a free port, which the `listening` log
    /// line names (for tests; Envoy and probes need a known port).
    fn parse(text: &str) -> Result<Self, Refusal> {
        const FORMS: &str = "an IP address and port (e.g. 127.0.0.1:9191) or unix:///path";
        if let Some(path) = text.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(Refusal::new(format!(
                    "`{text}`: a Unix socket must be an absolute path, unix:///run/hallpass/authz.sock"
                )));
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        if text.starts_with("unix:") {
            return Err(Refusal::new(format!(
                "`{text}`: write a Unix socket as unix:// and an absolute path, unix:///run/hallpass/authz.sock"
            )));
        }
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Self::Tcp(addr));
        }
        let Some((host, port)) = text.rsplit_once(':') else {
            if text.parse::<std::net::IpAddr>().is_ok() {
                return Err(Refusal::new(format!(
                    "`{text}` has no port: it must be {FORMS}"
                )));
            }
            let example = if text.eq_ignore_ascii_case("localhost") {
                "127.0.0.1:9191"
            } else {
                "0.0.0.0:9191 for every interface"
            };
            return Err(Refusal::new(format!(
                "`{text}` is a host name, with no port; the address must be an IP address and port (e.g. {example}) or unix:///path"
            ))
            .hint("host names are not resolved: a listener binds one local address"));
        };
        let port: u16 = match port.parse::<u64>() {
            Ok(p) => u16::try_from(p)
                .map_err(|_| Refusal::new(format!("`{text}`: port must be 1–65535, not {p}")))?,
            Err(_) => {
                return Err(Refusal::new(format!(
                    "`{text}`: port must be a number, 1–65535"
                )));
            }
        };
        let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
        if bare.is_none() && host.parse::<std::net::Ipv6Addr>().is_ok() {
            return Err(Refusal::new(format!(
                "`{text}`: an IPv6 address is written in brackets, [{host}]:{port}"
            )));
        }
        let dotted = !host.is_empty() && host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        if bare.is_some() || dotted {
            return Err(Refusal::new(format!(
                "`{text}`: `{host}` is not an IP address; it must be {FORMS}"
            )));
        }
        if host.is_empty() {
            return Err(
                Refusal::new(format!("`{text}` has no address: it must be {FORMS}")).hint(format!(
                    "0.0.0.0:{port} for every interface, 127.0.0.1:{port} for this host only"
                )),
            );
        }
        let example = if host.eq_ignore_ascii_case("localhost") {
            format!("127.0.0.1:{port}")
        } else {
            format!("0.0.0.0:{port} for every interface")
        };
        Err(Refusal::new(format!(
            "`{host}` is a host name; the address must be an IP address (e.g. {example}) or unix:///path"
        ))
        .hint("host names are not resolved: a listener binds one local address"))
    }

    /// Would binding both addresses clash (the same port on the same or an
    /// every-interface address)? Port 0 never clashes: each gets its own.
    fn clashes_with(&self, other: &SocketAddr) -> bool {
        match self {
            Self::Tcp(a) => {
                a.port() != 0
                    && a.port() == other.port()
                    && (a.ip() == other.ip()
                        || a.ip().is_unspecified()
                        || other.ip().is_unspecified())
            }
            Self::Unix(_) => false,
        }
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

/// The validated configuration the sidecar runs with.
///
/// Serializes as the effective config in the file's shape (defaults filled
/// in, `HALLPASS_*` and `SPIFFE_ENDPOINT_SOCKET` applied, [`Redacted`] values
/// hidden): what `/config` shows, and itself a config hallpass accepts.
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
    /// The policy file (`policy.file`), when set.
    pub policy_file: Option<PathBuf>,
    /// Every policy source (`policy.file` first, then `policy.files`).
    pub policy_sources: Vec<PolicySource>,
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
    /// environment and validate. Problems name the file, and the line and
    /// column of the key.
    pub fn load(path: &Path) -> Result<Self, ServerError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ServerError::Config(vec![
                Problem::new(path::ROOT, format!("cannot read config file: {e}")).in_file(&file),
            ])
        })?;
        Self::read(&text, std::env::vars(), Some(&file))
    }

    /// Parse YAML text with the given environment and validate. Problems
    /// carry the line and column of the key (no file name).
    pub fn from_yaml(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ServerError> {
        Self::read(text, env, None)
    }

    /// Every error and warning of the config file at `path`, read with the
    /// environment `env` as `serve` reads it, each located (`FILE:LINE:COL`
    /// or the variable that set it), in file order: what `hallpass config
    /// check` prints. `Err` when the file cannot be read.
    pub fn check_file(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Vec<Problem>, std::io::Error> {
        let text = std::fs::read_to_string(path)?;
        Ok(Self::read_all(&text, env, Some(&path.display().to_string())).1)
    }

    fn read(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
        file: Option<&str>,
    ) -> Result<Self, ServerError> {
        let (settings, found) = Self::read_all(text, env, file);
        settings.ok_or_else(|| {
            ServerError::Config(
                found
                    .into_iter()
                    .filter(|p| p.severity == Severity::Error)
                    .collect(),
            )
        })
    }

    /// The settings (`None` when there is an error), and every error and
    /// warning, located and in file order.
    fn read_all(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
        file: Option<&str>,
    ) -> (Option<Self>, Vec<Problem>) {
        let env = Environment::read(env);
        let mut problems = Problems::new();
        let settings = de::yaml_value(text, &mut problems).and_then(|mut value| {
            de::drop_nulls(&mut value);
            if let Value::Mapping(root) = &mut value {
                env.apply(root);
            }
            let config: ConfigFile = de::from_value(value, &mut problems)?;
            config.validate(&env, &mut problems)
        });
        let errors = !problems.is_empty();
        if settings.is_none() && !errors {
            // A loader that returns nothing has recorded why; this is a
            // backstop, so that no path ends without a problem.
            problems.push(Problem::new(path::ROOT, "incomplete"));
        }
        let warnings = settings
            .as_ref()
            .map_or(&env.warnings, |s: &Self| &s.warnings);
        for w in warnings {
            problems.push(warning_problem(w));
        }
        env.attribute(&mut problems);
        problems.locate(text);
        if let Some(file) = file {
            problems.in_file(file);
        }
        problems.sort();
        let settings = settings.filter(|_| !errors);
        (settings, problems.into_vec())
    }

    /// The effective config in the file's shape (see [`Settings`]).
    pub fn to_config_file(&self) -> ConfigFile {
        let t = &self.telemetry;
        let defaults = TelemetrySection::default();
        let (audit_log, audit_log_max_bytes, audit_log_max_files) = match &t.audit {
            AuditTarget::Stdout => (
                "stdout".into(),
                defaults.audit_log_max_bytes,
                defaults.audit_log_max_files,
            ),
            AuditTarget::Off => (
                "off".into(),
                defaults.audit_log_max_bytes,
                defaults.audit_log_max_files,
            ),
            AuditTarget::File {
                path,
                max_bytes,
                keep,
            } => (path.display().to_string(), *max_bytes, *keep),
        };
        let seconds = |v: i64| u64::try_from(v).unwrap_or(0);
        ConfigFile {
            authz: AuthzSection {
                listen: self.authz_listen.to_string(),
            },
            admin: AdminSection {
                listen: self.admin_listen.to_string(),
            },
            workload: WorkloadSection {
                id: self.workload_id.as_ref().map(ToString::to_string),
            },
            trust: TrustSection {
                workload_api: self.workload_api.clone(),
                bundles: self
                    .bundles
                    .iter()
                    .map(|b| BundleSection {
                        trust_domain: b.trust_domain.to_string(),
                        x509: b.x509.clone(),
                        jwt: b.jwt.clone(),
                    })
                    .collect(),
            },
            identity: IdentitySection {
                x509_from: self.x509_from,
                clock_skew_seconds: self.clock_skew.as_secs(),
                jwt: self.jwt.as_ref().map(|j| JwtSection {
                    header: j.header.clone(),
                    audiences: j.audiences.clone(),
                    required: j.required,
                }),
                xfcc: XfccSection {
                    trusted_proxies: self
                        .xfcc_trusted_proxies
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                },
                cache_max_entries: self.cache_max_entries,
                max_lifetime_seconds: MaxLifetimeSection {
                    x509: seconds(self.max_lifetime_x509),
                    jwt: seconds(self.max_lifetime_jwt),
                },
            },
            policy: PolicySection {
                file: self.policy_file.clone(),
                files: self
                    .policy_sources
                    .iter()
                    .skip(usize::from(self.policy_file.is_some()))
                    .map(|s| s.written.clone())
                    .collect(),
                reload_interval_seconds: self.reload_interval.as_secs(),
                mode: self.mode_override,
            },
            telemetry: TelemetrySection {
                audit_log,
                audit_log_max_bytes,
                audit_log_max_files,
                log_raw_paths: self.log_raw_paths,
                audit_required: t.audit_required,
                baseline: t.baseline_path.clone(),
                learning_window_seconds: t.learning_window.as_secs(),
                rate_window_seconds: t.rate_window.as_secs(),
                rate_spike_factor: t.rate_spike.factor,
                rate_spike_min_requests: t.rate_spike.min_requests,
                rate_spike_smoothing: t.rate_spike.alpha,
                max_edges: t.max_edges,
                queue_capacity: t.queue_capacity,
            },
        }
    }
}

impl Serialize for Settings {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_config_file().serialize(serializer)
    }
}

// ------------------------------------------------------------------ validation

impl ConfigFile {
    /// Every section's checks, then those that span sections. `None` when a
    /// problem was recorded.
    fn validate(&self, env: &Environment, problems: &mut Problems) -> Option<Settings> {
        let mut warnings = env.warnings.clone();
        let authz_listen = self.authz.validate(problems);
        let admin_listen = self.admin.validate(problems);
        let workload_id = self.workload.validate(problems);
        let trust = self
            .trust
            .validate(env.spiffe_endpoint_socket.as_deref(), problems);
        let identity = self.identity.validate(problems, &mut warnings);
        let policy = self
            .policy
            .validate(workload_id.as_ref().and_then(Option::as_ref), problems);
        let (telemetry, log_raw_paths) = self.telemetry.validate(problems);

        // What spans sections: two listeners cannot share an address.
        if let (Some(authz), Some(admin)) = (&authz_listen, &admin_listen)
            && authz.clashes_with(admin)
        {
            // On the key that was written: admin.listen, unless it is the
            // default (most likely not written at all).
            let (at, value, other, other_value) = if self.admin == AdminSection::default() {
                (
                    "authz.listen",
                    authz.to_string(),
                    "admin.listen",
                    admin.to_string(),
                )
            } else {
                (
                    "admin.listen",
                    admin.to_string(),
                    "authz.listen",
                    authz.to_string(),
                )
            };
            problems.push(
                Problem::new(
                    at,
                    format!(
                        "`{value}` clashes with {other} (`{other_value}`): the two listeners need different ports"
                    ),
                )
                .with_hint("e.g. authz.listen: 127.0.0.1:9191, admin.listen: 127.0.0.1:9902"),
            );
        }
        // Each identity path needs its trust material.
        let from_api = trust.workload_api.is_some();
        if identity.x509_from != X509From::EnvoyPrincipal
            && !from_api
            && !trust.bundles.iter().any(|b| b.x509.is_some())
        {
            problems.push(
                Problem::new(
                    "trust",
                    "verifying certificates needs trust.workload_api or at least one trust.bundles[].x509 file",
                )
                .with_hint("or identity.x509_from: envoy_principal, to trust Envoy's own validation"),
            );
        }
        if identity.jwt.is_some() && !from_api && !trust.bundles.iter().any(|b| b.jwt.is_some()) {
            problems.invalid(
                "identity.jwt",
                "JWT-SVIDs need trust.workload_api or at least one trust.bundles[].jwt file",
            );
        }

        Some(Settings {
            authz_listen: authz_listen?,
            admin_listen: admin_listen?,
            workload_id: workload_id?,
            bundles: trust.bundles,
            workload_api: trust.workload_api,
            x509_from: identity.x509_from,
            xfcc_trusted_proxies: identity.xfcc_trusted_proxies,
            jwt: identity.jwt,
            cache_max_entries: identity.cache_max_entries,
            max_lifetime_x509: identity.max_lifetime_x509,
            max_lifetime_jwt: identity.max_lifetime_jwt,
            clock_skew: identity.clock_skew,
            policy_file: policy.file,
            policy_sources: policy.sources?,
            reload_interval: policy.reload_interval,
            mode_override: policy.mode,
            telemetry,
            log_raw_paths,
            warnings,
        })
    }
}

impl AuthzSection {
    fn validate(&self, problems: &mut Problems) -> Option<ListenAddr> {
        check(problems, "authz.listen", ListenAddr::parse(&self.listen))
    }
}

impl AdminSection {
    fn validate(&self, problems: &mut Problems) -> Option<SocketAddr> {
        match check(problems, "admin.listen", ListenAddr::parse(&self.listen))? {
            ListenAddr::Tcp(addr) => Some(addr),
            ListenAddr::Unix(_) => {
                problems.push(
                    Problem::new(
                        "admin.listen",
                        "the admin listener must be TCP (kubelet probes and Prometheus need a port)",
                    )
                    .with_hint("e.g. 127.0.0.1:9902"),
                );
                None
            }
        }
    }
}

impl WorkloadSection {
    /// `Some(None)` when unset; `None` after a problem.
    fn validate(&self, problems: &mut Problems) -> Option<Option<SpiffeId>> {
        match &self.id {
            None => Some(None),
            Some(id) => problems
                .check("workload.id", parse_written_spiffe_id(id))
                .map(Some),
        }
    }
}

/// Validated `trust`.
struct TrustSettings {
    workload_api: Option<String>,
    bundles: Vec<BundleFiles>,
}

impl TrustSection {
    fn validate(&self, endpoint_socket: Option<&str>, problems: &mut Problems) -> TrustSettings {
        let from_env = self.workload_api.is_none() && endpoint_socket.is_some();
        let workload_api = self
            .workload_api
            .clone()
            .or_else(|| endpoint_socket.map(str::to_owned));
        if let Some(endpoint) = &workload_api
            && !(endpoint.starts_with("unix:") || endpoint.starts_with("tcp:"))
        {
            let problem = Problem::new(
                "trust.workload_api",
                format!("`{endpoint}` must start with unix: or tcp:"),
            )
            .with_hint("e.g. unix:///run/spire/agent.sock");
            problems.push(if from_env {
                problem.in_file(format!("${SPIFFE_ENDPOINT_SOCKET}"))
            } else {
                problem
            });
        }
        let mut bundles: Vec<BundleFiles> = Vec::new();
        for (i, b) in self.bundles.iter().enumerate() {
            let at = path::item_path("trust.bundles", i);
            let td_at = path::child_path(&at, "trust_domain");
            let td = match TrustDomain::new(&b.trust_domain) {
                Ok(td) if td.as_str() == b.trust_domain => td,
                Ok(_) => {
                    problems.invalid(td_at, "write the trust domain name alone, in lower case");
                    continue;
                }
                Err(e) => {
                    problems.invalid(td_at, format!("not a trust domain: {e}"));
                    continue;
                }
            };
            if b.x509.is_none() && b.jwt.is_none() {
                problems.invalid(&at, "give an x509 bundle file, a jwt bundle file, or both");
            }
            if bundles.iter().any(|f| f.trust_domain == td) {
                problems.invalid(td_at, format!("{td} appears twice"));
            }
            bundles.push(BundleFiles {
                trust_domain: td,
                x509: b.x509.clone(),
                jwt: b.jwt.clone(),
            });
        }
        TrustSettings {
            workload_api,
            bundles,
        }
    }
}

/// Validated `identity`.
struct IdentitySettings {
    x509_from: X509From,
    xfcc_trusted_proxies: Vec<SpiffeId>,
    jwt: Option<JwtSettings>,
    cache_max_entries: usize,
    max_lifetime_x509: i64,
    max_lifetime_jwt: i64,
    clock_skew: Duration,
}

impl IdentitySection {
    fn validate(&self, problems: &mut Problems, warnings: &mut Vec<String>) -> IdentitySettings {
        let proxies = &self.xfcc.trusted_proxies;
        let xfcc_trusted_proxies = proxies
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let at = path::item_path("identity.xfcc.trusted_proxies", i);
                problems.check(&at, parse_written_spiffe_id(p))
            })
            .collect();
        match self.x509_from {
            X509From::Xfcc if proxies.is_empty() => problems.invalid(
                "identity.xfcc.trusted_proxies",
                "xfcc mode needs the SPIFFE IDs of the proxies whose header is believed",
            ),
            X509From::Xfcc => {}
            _ if !proxies.is_empty() => {
                warnings.push("identity.xfcc: only used with x509_from: xfcc".into());
            }
            _ => {}
        }
        let jwt = self.jwt.as_ref().map(|j| j.validate(problems));
        if self.cache_max_entries > MAX_CACHE_ENTRIES {
            problems.invalid(
                "identity.cache_max_entries",
                format!("at most {MAX_CACHE_ENTRIES}"),
            );
        }
        let clock_skew = Duration::from_secs(self.clock_skew_seconds);
        if clock_skew > MAX_CLOCK_SKEW {
            problems.invalid(
                "identity.clock_skew_seconds",
                format!("at most {} seconds", MAX_CLOCK_SKEW.as_secs()),
            );
        }
        let lifetime = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        IdentitySettings {
            x509_from: self.x509_from,
            xfcc_trusted_proxies,
            jwt,
            cache_max_entries: self.cache_max_entries,
            max_lifetime_x509: lifetime(self.max_lifetime_seconds.x509),
            max_lifetime_jwt: lifetime(self.max_lifetime_seconds.jwt),
            clock_skew,
        }
    }
}

impl JwtSection {
    fn validate(&self, problems: &mut Problems) -> JwtSettings {
        let header_ok = !self.header.is_empty()
            && self
                .header
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !header_ok {
            problems.push(
                Problem::new("identity.jwt.header", "a lower-case header name")
                    .with_hint("e.g. authorization"),
            );
        }
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            problems.invalid(
                "identity.jwt.audiences",
                "at least one non-empty audience is required",
            );
        }
        JwtSettings {
            header: self.header.clone(),
            audiences: self.audiences.clone(),
            required: self.required,
        }
    }
}

/// Validated `policy`.
struct PolicySettings {
    file: Option<PathBuf>,
    sources: Option<Vec<PolicySource>>,
    reload_interval: Duration,
    mode: Option<Mode>,
}

impl PolicySection {
    fn validate(&self, workload_id: Option<&SpiffeId>, problems: &mut Problems) -> PolicySettings {
        if self.file.is_none() && self.files.is_empty() {
            problems.push(
                Problem::error(
                    hallpass_diagnostics::codes::MISSING_KEY,
                    "policy.file",
                    "required: the policy file to enforce (or policy.files: several files or directories)",
                )
                .with_hint("e.g. policy: {file: /etc/hallpass/policy.yaml}"),
            );
        }
        let mut sources = Vec::new();
        let mut ok = true;
        if let Some(file) = &self.file {
            sources.push(PolicySource {
                path: file.clone(),
                owner: None,
                written: PolicyFileEntry::Path(file.clone()),
            });
        }
        for (i, entry) in self.files.iter().enumerate() {
            let at = format!("policy.files[{i}]");
            let (path, owner) = match entry {
                PolicyFileEntry::Path(path) => (path, None),
                PolicyFileEntry::Owned(o) => (&o.path, Some(&o.owner)),
            };
            if path.as_os_str().is_empty() {
                ok = false;
                problems.invalid(at.clone(), "an empty path");
            }
            let owner = owner.and_then(|o| {
                let scope = owner_scope(o, &format!("{at}.owner"), workload_id, problems);
                ok &= scope.is_some();
                scope
            });
            sources.push(PolicySource {
                path: path.clone(),
                owner,
                written: entry.clone(),
            });
        }
        // A sidecar may only be made stricter than its policy: a per-pod
        // audit switch would let one replica of an enforced destination wave
        // denied calls through. Audit mode belongs to the policy's owner.
        if self.mode == Some(Mode::Audit) {
            problems.invalid(
                "policy.mode",
                "only `enforce` is allowed here (it enforces every destination, even those the policy audits); \
                 audit mode is set per destination in the policy (`mode: audit`)",
            );
        }
        if !(1..=MAX_INTERVAL_SECONDS).contains(&self.reload_interval_seconds) {
            problems.invalid(
                "policy.reload_interval_seconds",
                format!("must be between 1 and {MAX_INTERVAL_SECONDS}"),
            );
        }
        PolicySettings {
            file: self.file.clone(),
            sources: (ok && !sources.is_empty()).then_some(sources),
            reload_interval: Duration::from_secs(self.reload_interval_seconds),
            mode: self.mode,
        }
    }
}

/// The scope `policy.files[i].owner` (at key path `at`) stands for.
fn owner_scope(
    owner: &OwnerEntry,
    at: &str,
    workload_id: Option<&SpiffeId>,
    problems: &mut Problems,
) -> Option<hallpass_policy::OwnerScope> {
    use hallpass_policy::SourcePattern;
    let origin = format!("{at} in the config");
    match owner {
        OwnerEntry::Keyword(word) if word == WORKLOAD_NAMESPACE => {
            let Some(id) = workload_id else {
                problems.invalid(
                    at,
                    "`workload_namespace` needs workload.id (spiffe://TD/ns/NAMESPACE/…) to know the namespace",
                );
                return None;
            };
            let mut segments = id.path().split('/').skip(1);
            let namespace = match (segments.next(), segments.next(), segments.next()) {
                (Some("ns"), Some(ns), Some(_)) if !ns.is_empty() => ns,
                _ => {
                    problems.invalid(
                        at,
                        format!(
                            "`workload_namespace`: workload.id `{id}` has no /ns/NAMESPACE/ path;                              list the owner's SPIFFE ID patterns instead"
                        ),
                    );
                    return None;
                }
            };
            let pattern = format!("spiffe://{}/ns/{namespace}/**", id.trust_domain());
            let pattern = problems.check(at, SourcePattern::parse(&pattern))?;
            Some(hallpass_policy::OwnerScope {
                patterns: vec![pattern],
                origin: format!("{origin} (workload_namespace)"),
            })
        }
        OwnerEntry::Keyword(word) => {
            problems.push(
                Problem::new(at, format!("`{word}` is not an owner scope")).with_hint(
                    "a list of SPIFFE ID patterns (exact, /*, /**) or `workload_namespace`",
                ),
            );
            None
        }
        OwnerEntry::Patterns(patterns) => {
            if patterns.is_empty() {
                problems.invalid(at, "an empty owner scope allows no destination");
                return None;
            }
            let mut parsed = Vec::new();
            for (k, text) in patterns.iter().enumerate() {
                parsed.push(problems.check(&format!("{at}[{k}]"), SourcePattern::parse(text))?);
            }
            Some(hallpass_policy::OwnerScope {
                patterns: parsed,
                origin,
            })
        }
    }
}

impl TelemetrySection {
    /// The telemetry settings, and `log_raw_paths`.
    fn validate(&self, problems: &mut Problems) -> (TelemetrySettings, bool) {
        let audit = match self.audit_log.as_str() {
            "stdout" => AuditTarget::Stdout,
            "off" => AuditTarget::Off,
            path if path.starts_with('/') => AuditTarget::File {
                path: PathBuf::from(path),
                max_bytes: self.audit_log_max_bytes,
                keep: self.audit_log_max_files,
            },
            _ => {
                problems.invalid(
                    "telemetry.audit_log",
                    "`stdout`, `off`, or an absolute file path",
                );
                AuditTarget::Off
            }
        };
        if self.audit_required && audit == AuditTarget::Off {
            problems.invalid(
                "telemetry.audit_required",
                "needs an audit log: set telemetry.audit_log to `stdout` or a file path",
            );
        }
        if self.audit_log_max_bytes < 4096 {
            problems.invalid("telemetry.audit_log_max_bytes", "at least 4096");
        }
        if self.audit_log_max_files > 100 {
            problems.invalid("telemetry.audit_log_max_files", "at most 100");
        }
        if !(1..=MAX_INTERVAL_SECONDS).contains(&self.rate_window_seconds) {
            problems.invalid(
                "telemetry.rate_window_seconds",
                format!("must be between 1 and {MAX_INTERVAL_SECONDS}"),
            );
        }
        if !(self.rate_spike_factor.is_finite() && self.rate_spike_factor > 1.0) {
            problems.invalid("telemetry.rate_spike_factor", "must be a number above 1");
        }
        let smoothing = self.rate_spike_smoothing;
        if !(smoothing.is_finite() && smoothing > 0.0 && smoothing <= 1.0) {
            problems.invalid(
                "telemetry.rate_spike_smoothing",
                "must be a number above 0 and at most 1",
            );
        }
        for (at, value) in [
            ("telemetry.max_edges", self.max_edges),
            ("telemetry.queue_capacity", self.queue_capacity),
        ] {
            if !(1..=MAX_TELEMETRY_CAPACITY).contains(&value) {
                problems.invalid(
                    at,
                    format!("must be between 1 and {MAX_TELEMETRY_CAPACITY}"),
                );
            }
        }
        let settings = TelemetrySettings {
            queue_capacity: self.queue_capacity,
            max_edges: self.max_edges,
            audit,
            audit_required: self.audit_required,
            baseline_path: self.baseline.clone(),
            learning_window: Duration::from_secs(self.learning_window_seconds),
            rate_window: Duration::from_secs(self.rate_window_seconds),
            rate_spike: RateSpikeSettings {
                factor: self.rate_spike_factor,
                min_requests: self.rate_spike_min_requests,
                alpha: smoothing,
            },
        };
        (settings, self.log_raw_paths)
    }
}

// ------------------------------------------------------------------ environment

/// What the process environment adds to the file.
#[derive(Debug, Default)]
struct Environment {
    /// `(variable, key path, value)` of every override, in the order given.
    overrides: Vec<(&'static str, &'static [&'static str], Value)>,
    /// `SPIFFE_ENDPOINT_SOCKET`, when set and not empty.
    spiffe_endpoint_socket: Option<String>,
    /// `HALLPASS_*` variables that are not settings.
    warnings: Vec<String>,
}

impl Environment {
    fn read(env: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut out = Self::default();
        for (name, value) in env {
            if name == SPIFFE_ENDPOINT_SOCKET {
                out.spiffe_endpoint_socket = Some(value).filter(|v| !v.is_empty());
                continue;
            }
            if !name.starts_with("HALLPASS_") || ENV_NOT_OVERRIDES.contains(&name.as_str()) {
                continue;
            }
            let Some((var, path, kind)) = ENV_OVERRIDES.iter().find(|(n, _, _)| *n == name) else {
                // A warning, not an error: Kubernetes injects HALLPASS_SERVICE_HOST,
                // HALLPASS_PORT, … into every pod of a namespace with a Service
                // named `hallpass`, and those must not stop the sidecar.
                out.warnings
                    .push(format!("{name}: not a hallpass setting; ignored"));
                continue;
            };
            let parsed = match (kind, value.parse::<u64>()) {
                (EnvKind::Number, Ok(n)) => Value::Number(n.into()),
                _ => Value::String(value),
            };
            out.overrides.push((var, path, parsed));
        }
        out
    }

    /// Write every override into the file's YAML.
    fn apply(&self, root: &mut Mapping) {
        for (_, path, value) in &self.overrides {
            set_path(root, path, value.clone());
        }
    }

    /// A problem about a value an override set names the variable, not a
    /// place in the file.
    fn attribute(&self, problems: &mut Problems) {
        let set: Vec<(String, &str)> = self
            .overrides
            .iter()
            .map(|(var, keys, _)| (keys.join("."), *var))
            .collect();
        let mut attributed = Problems::new();
        for p in std::mem::take(problems) {
            attributed.push(match set.iter().find(|(key, _)| p.is_within(key)) {
                Some((_, var)) if p.file.is_none() => p.in_file(format!("${var}")),
                _ => p,
            });
        }
        *problems = attributed;
    }
}

/// A start-up warning as a located problem: `key.path: message` is about
/// that key, `HALLPASS_X: message` about that variable, anything else
/// about the file as a whole.
fn warning_problem(text: &str) -> Problem {
    const CODE: &str = "config_warning";
    if let Some((head, message)) = text.split_once(": ") {
        let is_variable = !head.is_empty()
            && head
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        let is_key = !head.is_empty()
            && head
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.[]".contains(&b));
        if is_variable {
            return Problem::warning(CODE, "(environment)", message).in_file(format!("${head}"));
        }
        if is_key {
            return Problem::warning(CODE, head, message);
        }
    }
    Problem::warning(CODE, path::ROOT, text)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_values_never_show() {
        let secret = Redacted::new("s3cr3t-token".to_owned());
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(
            serde_json::to_string(&secret).ok().as_deref(),
            Some("\"<redacted>\"")
        );
        assert_eq!(secret.expose(), "s3cr3t-token");
        let read: Option<Redacted<String>> = serde_yaml_ng::from_str("token-from-file").ok();
        assert_eq!(
            read.as_ref().map(Redacted::expose).map(String::as_str),
            Some("token-from-file")
        );
    }
}
