//! The config file (docs/configuration.md): `Settings::from_yaml` with an explicit
//! environment. Every problem is reported at once with its key path;
//! `HALLPASS_*` variables override the file; features this build does not
//! have are refused rather than silently ignored (fail closed).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hallpass_server::config::Problem;
use hallpass_server::{ListenAddr, ServerError, Settings, X509From};
use hallpass_telemetry::AuditTarget;

const FULL: &str = r#"
authz:
  listen: 127.0.0.1:9191
admin:
  listen: 0.0.0.0:9902
workload:
  id: spiffe://hospital.example/ns/clinical/sa/lab-results
trust:
  bundles:
    - trust_domain: hospital.example
      x509: /etc/hallpass/hospital.pem
    - trust_domain: imaging-vendor.example
      x509: /etc/hallpass/vendor.pem
      jwt: /etc/hallpass/vendor.jwks.json
identity:
  x509_from: peer_certificate
  clock_skew_seconds: 45
  jwt:
    header: authorization
    audiences: [lab-results]
    required: false
policy:
  file: /etc/hallpass/policy.yaml
  reload_interval_seconds: 5
telemetry:
  audit_log: "off"
  rate_spike_factor: 4.0
  rate_spike_min_requests: 20
  rate_spike_smoothing: 0.5
"#;

/// The smallest config that runs: a policy and one bundle to verify against.
const MINIMAL: &str = r#"
trust:
  bundles:
    - trust_domain: hospital.example
      x509: /etc/hallpass/hospital.pem
policy:
  file: /etc/hallpass/policy.yaml
"#;

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn problems(text: &str, env: Vec<(String, String)>) -> Vec<Problem> {
    match Settings::from_yaml(text, env) {
        Err(ServerError::Config(problems)) => problems,
        Err(other) => panic!("expected a config error, got {other:?}"),
        Ok(s) => panic!("config should be refused, got {s:?}"),
    }
}

fn paths(problems: &[Problem]) -> Vec<&str> {
    let mut p: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    p.sort_unstable();
    p
}

/// The single problem reported for `text`, which must be at `path`.
fn only_problem_at(text: &str, env: Vec<(String, String)>, path: &str) -> Problem {
    let found = problems(text, env);
    assert_eq!(paths(&found), [path], "{found:#?}");
    found.into_iter().next().unwrap()
}

fn tcp(addr: &str) -> SocketAddr {
    addr.parse().unwrap()
}

// ---------------------------------------------------------------- valid configs

#[test]
fn full_config_is_read_into_settings() {
    let s = Settings::from_yaml(FULL, no_env()).unwrap();
    assert_eq!(s.authz_listen, ListenAddr::Tcp(tcp("127.0.0.1:9191")));
    assert_eq!(s.admin_listen, tcp("0.0.0.0:9902"));
    assert_eq!(
        s.workload_id.as_ref().unwrap().to_string(),
        "spiffe://hospital.example/ns/clinical/sa/lab-results"
    );
    let bundles: Vec<(String, Option<PathBuf>, Option<PathBuf>)> = s
        .bundles
        .iter()
        .map(|b| (b.trust_domain.to_string(), b.x509.clone(), b.jwt.clone()))
        .collect();
    assert_eq!(
        bundles,
        [
            (
                "hospital.example".to_owned(),
                Some(PathBuf::from("/etc/hallpass/hospital.pem")),
                None
            ),
            (
                "imaging-vendor.example".to_owned(),
                Some(PathBuf::from("/etc/hallpass/vendor.pem")),
                Some(PathBuf::from("/etc/hallpass/vendor.jwks.json"))
            ),
        ]
    );
    assert_eq!(s.x509_from, X509From::PeerCertificate);
    assert_eq!(s.clock_skew, Duration::from_secs(45));
    assert_eq!(
        s.policy_file,
        Some(PathBuf::from("/etc/hallpass/policy.yaml"))
    );
    assert_eq!(s.reload_interval, Duration::from_secs(5));
    assert_eq!(s.telemetry.audit, AuditTarget::Off);
    assert_eq!(s.telemetry.rate_spike.factor, 4.0);
    assert_eq!(s.telemetry.rate_spike.min_requests, 20);
    assert_eq!(s.telemetry.rate_spike.alpha, 0.5);
    let jwt = s.jwt.as_ref().unwrap();
    assert_eq!(jwt.header, "authorization");
    assert_eq!(jwt.audiences, ["lab-results"]);
    assert!(!jwt.required);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn defaults_fill_everything_optional() {
    let s = Settings::from_yaml(MINIMAL, no_env()).unwrap();
    assert_eq!(s.authz_listen, ListenAddr::Tcp(tcp("127.0.0.1:9191")));
    assert_eq!(s.admin_listen, tcp("127.0.0.1:9902"));
    assert_eq!(s.workload_id, None);
    assert_eq!(s.x509_from, X509From::PeerCertificate);
    assert_eq!(s.clock_skew, Duration::from_secs(30));
    assert_eq!(s.reload_interval, Duration::from_secs(2));
    assert_eq!(s.telemetry.audit, AuditTarget::Stdout);
    assert_eq!(s.telemetry.rate_spike.factor, 5.0);
    assert_eq!(s.telemetry.rate_spike.min_requests, 50);
    assert_eq!(s.telemetry.rate_spike.alpha, 0.3);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn unix_socket_authz_listener() {
    let text = format!("{MINIMAL}authz:\n  listen: unix:///run/hallpass/authz.sock\n");
    let s = Settings::from_yaml(&text, no_env()).unwrap();
    assert_eq!(
        s.authz_listen,
        ListenAddr::Unix(PathBuf::from("/run/hallpass/authz.sock"))
    );
    assert_eq!(
        s.authz_listen.to_string(),
        "unix:///run/hallpass/authz.sock"
    );
}

#[test]
fn envoy_principal_mode_needs_no_bundle() {
    let text = "identity:\n  x509_from: envoy_principal\npolicy:\n  file: /p.yaml\n";
    let s = Settings::from_yaml(text, no_env()).unwrap();
    assert_eq!(s.x509_from, X509From::EnvoyPrincipal);
    assert!(s.bundles.is_empty());
}

// ---------------------------------------------------------------- every problem at once

#[test]
fn independent_errors_are_all_reported_with_key_paths() {
    let text = r#"
authz:
  listen: localhost
admin:
  listen: 127.0.0.1:9902
  lisen: 127.0.0.1:9903
workload:
  id: spiffe://hospital.example/ns/../lab-results
trust:
  bundles:
    - trust_domain: hospital.example
      x509: /etc/hallpass/hospital.pem
    - trust_domain: "imaging vendor.example"
      x509: /etc/hallpass/vendor.pem
policy:
  file: /etc/hallpass/policy.yaml
metrics:
  listen: 127.0.0.1:9090
"#;
    let found = problems(text, no_env());
    assert_eq!(
        paths(&found),
        [
            "admin.lisen",
            "authz.listen",
            "metrics",
            "trust.bundles[1].trust_domain",
            "workload.id",
        ],
        "{found:#?}"
    );
    for p in &found {
        assert!(!p.message.is_empty(), "{p}");
    }
    let by_path = |path: &str| found.iter().find(|p| p.path == path).unwrap();
    assert_eq!(by_path("metrics").message, "unknown key");
    assert_eq!(by_path("admin.lisen").message, "unknown key");
    assert!(by_path("authz.listen").message.contains("localhost"));

    // The error's text lists every problem too, one per line.
    let err = Settings::from_yaml(text, no_env()).unwrap_err().to_string();
    for p in &found {
        assert!(err.contains(&p.to_string()), "{err}");
    }
}

#[test]
fn each_bad_value_is_reported_at_its_key() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "authz:\n  listen: 127.0.0.1\n",
            "authz.listen",
            "port missing",
        ),
        (
            "authz:\n  listen: unix://run/x.sock\n",
            "authz.listen",
            "relative unix path",
        ),
        (
            "admin:\n  listen: 10.0.0.1:99999\n",
            "admin.listen",
            "port out of range",
        ),
        (
            "workload:\n  id: spiffe://Hospital.example/ns/a\n",
            "workload.id",
            "non-canonical trust domain",
        ),
        (
            "workload:\n  id: spiffe://hospital.example\n",
            "workload.id",
            "no path",
        ),
        (
            "workload:\n  id: https://hospital.example/a\n",
            "workload.id",
            "not spiffe",
        ),
        (
            "identity:\n  clock_skew_seconds: 601\n",
            "identity.clock_skew_seconds",
            "skew too large",
        ),
        (
            "identity:\n  clock_skew_seconds: -1\n",
            "identity.clock_skew_seconds",
            "negative skew",
        ),
        (
            "identity:\n  x509_from: trust_me\n",
            "identity.x509_from",
            "unknown mode",
        ),
        (
            "policy:\n  file: /p.yaml\n  reload_interval_seconds: 0\n",
            "policy.reload_interval_seconds",
            "zero interval",
        ),
        (
            "policy:\n  file: /p.yaml\n  reload_interval_seconds: 3601\n",
            "policy.reload_interval_seconds",
            "interval too long",
        ),
        (
            "telemetry:\n  audit_log: var/log/audit.json\n",
            "telemetry.audit_log",
            "relative audit log path",
        ),
        (
            "trust:\n  workload_api: /run/spire/agent.sock\n",
            "trust.workload_api",
            "workload API endpoint without a scheme",
        ),
        (
            "trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: /a.pem\n    - trust_domain: vendor.example\n",
            "trust.bundles[1]",
            "bundle entry without files",
        ),
        (
            "trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: /a.pem\n      jwt: /a.jwks.json\nidentity:\n  jwt:\n    audiences: []\n",
            "identity.jwt.audiences",
            "JWT without audiences",
        ),
        (
            "trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: /a.pem\n      jwt: /a.jwks.json\nidentity:\n  jwt:\n    header: Authorization\n    audiences: [a]\n",
            "identity.jwt.header",
            "upper-case JWT header",
        ),
        (
            "identity:\n  x509_from: xfcc\n",
            "identity.xfcc.trusted_proxies",
            "xfcc without trusted proxies",
        ),
        (
            "identity:\n  cache_max_entries: 2000000\n",
            "identity.cache_max_entries",
            "cache too large",
        ),
        (
            "telemetry:\n  rate_spike_factor: 1\n",
            "telemetry.rate_spike_factor",
            "a spike factor that every window exceeds",
        ),
        (
            "telemetry:\n  rate_spike_smoothing: 0\n",
            "telemetry.rate_spike_smoothing",
            "a moving average that never moves",
        ),
        (
            "telemetry:\n  rate_spike_smoothing: 1.5\n",
            "telemetry.rate_spike_smoothing",
            "smoothing above 1",
        ),
    ];
    for (extra, path, what) in cases {
        // MINIMAL plus one bad section; sections in `extra` replace MINIMAL's.
        let text = merge(MINIMAL, extra);
        let found = problems(&text, no_env());
        assert_eq!(paths(&found), [*path], "{what}: {found:#?}");
    }
}

/// Append `extra`'s top-level sections to `base`, dropping any `base` section
/// that `extra` also has.
fn merge(base: &str, extra: &str) -> String {
    let top = |line: &str| (!line.starts_with(' ') && line.ends_with(':')).then(|| line.to_owned());
    let replaced: Vec<String> = extra.lines().filter_map(top).collect();
    let mut out = String::new();
    let mut skipping = false;
    for line in base.lines() {
        if let Some(section) = top(line) {
            skipping = replaced.contains(&section);
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(extra);
    out
}

#[test]
fn missing_policy_file_and_bundles_are_reported() {
    let found = problems("", no_env());
    assert_eq!(paths(&found), ["policy.file", "trust"], "{found:#?}");
}

#[test]
fn bundle_without_x509_file_is_reported() {
    let text =
        "trust:\n  bundles:\n    - trust_domain: hospital.example\npolicy:\n  file: /p.yaml\n";
    let found = problems(text, no_env());
    assert!(paths(&found).contains(&"trust.bundles[0]"), "{found:#?}");
}

#[test]
fn upper_case_trust_domain_is_reported() {
    let text = merge(
        MINIMAL,
        "trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: /a.pem\n    - trust_domain: Vendor.Example\n      x509: /b.pem\n",
    );
    let p = only_problem_at(&text, no_env(), "trust.bundles[1].trust_domain");
    assert!(p.message.contains("lower case"), "{p}");
}

#[test]
fn not_a_mapping_or_not_yaml_is_one_document_problem() {
    for text in ["- a\n- b\n", "just a string\n", "authz: [\n"] {
        let found = problems(text, no_env());
        assert_eq!(paths(&found), ["(document)"], "{text:?}: {found:#?}");
    }
}

// ---------------------------------------------------------------- environment

#[test]
fn environment_overrides_win_over_the_file() {
    let s = Settings::from_yaml(
        FULL,
        env(&[
            ("HALLPASS_AUTHZ_LISTEN", "unix:///run/x.sock"),
            ("HALLPASS_ADMIN_LISTEN", "127.0.0.1:19902"),
            ("HALLPASS_POLICY_FILE", "/run/policy/override.yaml"),
            ("HALLPASS_IDENTITY_CLOCK_SKEW_SECONDS", "5"),
            ("HALLPASS_POLICY_RELOAD_INTERVAL_SECONDS", "60"),
            ("HALLPASS_TELEMETRY_AUDIT_LOG", "stdout"),
            (
                "HALLPASS_WORKLOAD_ID",
                "spiffe://hospital.example/ns/clinical/sa/other",
            ),
            ("HALLPASS_IDENTITY_X509_FROM", "envoy_principal"),
        ]),
    )
    .unwrap();
    assert_eq!(
        s.authz_listen,
        ListenAddr::Unix(PathBuf::from("/run/x.sock"))
    );
    assert_eq!(s.admin_listen, tcp("127.0.0.1:19902"));
    assert_eq!(
        s.policy_file,
        Some(PathBuf::from("/run/policy/override.yaml"))
    );
    assert_eq!(s.clock_skew, Duration::from_secs(5));
    assert_eq!(s.reload_interval, Duration::from_secs(60));
    assert_eq!(s.telemetry.audit, AuditTarget::Stdout);
    assert_eq!(
        s.workload_id.unwrap().to_string(),
        "spiffe://hospital.example/ns/clinical/sa/other"
    );
    assert_eq!(s.x509_from, X509From::EnvoyPrincipal);
    // Keys the environment does not touch keep the file's values.
    assert_eq!(s.bundles.len(), 2);
}

#[test]
fn environment_can_supply_what_the_file_lacks() {
    let text = "trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: /a.pem\n";
    let s = Settings::from_yaml(text, env(&[("HALLPASS_POLICY_FILE", "/p.yaml")])).unwrap();
    assert_eq!(s.policy_file, Some(PathBuf::from("/p.yaml")));
}

#[test]
fn bad_environment_values_are_reported_at_the_key_they_set() {
    // The key is in the file too: the problem names the variable that set
    // the bad value, not the file's line.
    for text in [MINIMAL, FULL] {
        let p = only_problem_at(
            text,
            env(&[("HALLPASS_AUTHZ_LISTEN", "not-an-address")]),
            "authz.listen",
        );
        assert!(p.message.contains("not-an-address"), "{p}");
        assert_eq!(p.file.as_deref(), Some("$HALLPASS_AUTHZ_LISTEN"), "{p}");
        assert_eq!(p.location, None, "{p}");
        assert!(
            p.to_string()
                .starts_with("$HALLPASS_AUTHZ_LISTEN: authz.listen: `not-an-address`"),
            "{p}"
        );
    }
    let p = only_problem_at(
        "policy:\n  file: /p.yaml\n",
        env(&[("SPIFFE_ENDPOINT_SOCKET", "/run/spire/agent.sock")]),
        "trust.workload_api",
    );
    assert_eq!(p.file.as_deref(), Some("$SPIFFE_ENDPOINT_SOCKET"), "{p}");
}

#[test]
fn unknown_hallpass_variable_is_named_in_a_warning() {
    // Not an error: Kubernetes injects HALLPASS_SERVICE_HOST, HALLPASS_PORT, …
    // into every pod of a namespace with a Service named `hallpass`. But a
    // misspelt override must not vanish silently, and must not apply.
    let s = Settings::from_yaml(
        MINIMAL,
        env(&[
            ("HALLPASS_AUTHZ_LISTN", "127.0.0.1:1"),
            ("HALLPASS_SERVICE_HOST", "10.0.0.7"),
        ]),
    )
    .unwrap();
    assert_eq!(s.authz_listen, ListenAddr::Tcp(tcp("127.0.0.1:9191")));
    for name in ["HALLPASS_AUTHZ_LISTN", "HALLPASS_SERVICE_HOST"] {
        assert!(
            s.warnings.iter().any(|w| w.contains(name)),
            "{name} not in {:?}",
            s.warnings
        );
    }
}

#[test]
fn unrelated_and_non_override_variables_are_ignored() {
    let s = Settings::from_yaml(
        MINIMAL,
        env(&[
            ("PATH", "/usr/bin"),
            ("SPIFFE_ENDPOINT_SOCKET", "unix:///x"),
            ("HALLPASS_CONFIG", "/etc/hallpass/config.yaml"),
            ("HALLPASS_LOG", "debug"),
            ("hallpass_authz_listen", "garbage"),
        ]),
    )
    .unwrap();
    assert_eq!(s.authz_listen, ListenAddr::Tcp(tcp("127.0.0.1:9191")));
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn environment_errors_and_file_errors_are_reported_together() {
    let found = problems(
        "policy:\n  file: /p.yaml\n  flie: /q.yaml\n",
        env(&[("HALLPASS_ADMIN_LISTEN", "unix:///x")]),
    );
    assert_eq!(
        paths(&found),
        ["admin.listen", "policy.flie", "trust"],
        "{found:#?}"
    );
}

// ---------------------------------------------------------------- identity and trust sources

#[test]
fn jwt_needs_a_jwt_trust_source() {
    // MINIMAL has an X.509 bundle only: a JWT could never verify.
    let text = merge(MINIMAL, "identity:\n  jwt:\n    audiences: [lab-results]\n");
    only_problem_at(&text, no_env(), "identity.jwt");
}

#[test]
fn xfcc_mode_reads_its_trusted_proxies() {
    let text = merge(
        MINIMAL,
        "identity:\n  x509_from: xfcc\n  xfcc:\n    trusted_proxies: [spiffe://hospital.example/ns/edge/sa/gateway]\n",
    );
    let s = Settings::from_yaml(&text, no_env()).unwrap();
    assert_eq!(s.x509_from, X509From::Xfcc);
    assert_eq!(
        s.xfcc_trusted_proxies[0].to_string(),
        "spiffe://hospital.example/ns/edge/sa/gateway"
    );
    // Through the environment, the mode alone is refused until proxies are named.
    only_problem_at(
        MINIMAL,
        env(&[("HALLPASS_IDENTITY_X509_FROM", "xfcc")]),
        "identity.xfcc.trusted_proxies",
    );
}

#[test]
fn spiffe_endpoint_socket_is_a_trust_source() {
    let text = "policy:\n  file: /p.yaml\n";
    only_problem_at(text, no_env(), "trust");
    let s = Settings::from_yaml(
        text,
        env(&[("SPIFFE_ENDPOINT_SOCKET", "unix:///run/spire/agent.sock")]),
    )
    .unwrap();
    assert_eq!(
        s.workload_api.as_deref(),
        Some("unix:///run/spire/agent.sock")
    );
    // The config key wins over the variable.
    let text = "trust:\n  workload_api: unix:///a.sock\npolicy:\n  file: /p.yaml\n";
    let s =
        Settings::from_yaml(text, env(&[("SPIFFE_ENDPOINT_SOCKET", "unix:///b.sock")])).unwrap();
    assert_eq!(s.workload_api.as_deref(), Some("unix:///a.sock"));
}

#[test]
fn unix_admin_listener_is_refused() {
    let text = merge(
        MINIMAL,
        "admin:\n  listen: unix:///run/hallpass/admin.sock\n",
    );
    let p = only_problem_at(&text, no_env(), "admin.listen");
    assert!(p.message.contains("TCP"), "{p}");
}

// ---------------------------------------------------------------- key paths and error isolation

#[test]

fn unknown_key_inside_an_optional_section_has_a_clean_path() {
    let text = merge(
        MINIMAL,
        "trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: /a.pem\n      jwt: /a.jwks.json\nidentity:\n  jwt:\n    audiences: [a]\n    reqired: true\n",
    );
    only_problem_at(&text, no_env(), "identity.jwt.reqired");
}

#[test]

fn unknown_key_inside_a_list_uses_the_index_path_style() {
    let text = merge(
        MINIMAL,
        "trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: /a.pem\n      x5O9: /b.pem\n",
    );
    only_problem_at(&text, no_env(), "trust.bundles[0].x5O9");
}

#[test]

fn a_type_error_does_not_invent_problems_in_sibling_keys() {
    let text = merge(
        MINIMAL,
        "policy:\n  file: /p.yaml\n  reload_interval_seconds: many\n",
    );
    only_problem_at(&text, no_env(), "policy.reload_interval_seconds");
}

#[test]

fn numeric_looking_environment_value_for_a_path_key_is_a_path() {
    let s = Settings::from_yaml(MINIMAL, env(&[("HALLPASS_POLICY_FILE", "2024")])).unwrap();
    assert_eq!(s.policy_file, Some(PathBuf::from("2024")));
}

// ---------------------------------------------------------------- places and hints

/// Line and column of a problem, for compact tables.
fn at(p: &Problem) -> Option<(u32, u32)> {
    p.location.map(|l| (l.line, l.column))
}

const PLACED: &str = "\
trust:
  bundles:
    - trust_domain: hospital.example
      x509: /etc/hallpass/hospital.pem
admin:
  lisen: 127.0.0.1:1
policy:
  file: /p.yaml
  reload_interval_seconds: 0
";

#[test]
fn problems_carry_the_line_and_column_of_their_key_and_a_hint() {
    let found = problems(PLACED, no_env());
    let got: Vec<_> = found
        .iter()
        .map(|p| (p.code, p.path.as_str(), at(p)))
        .collect();
    assert_eq!(
        got,
        [
            ("unknown_key", "admin.lisen", Some((6, 3))),
            (
                "invalid_value",
                "policy.reload_interval_seconds",
                Some((9, 28))
            ),
        ],
        "{found:#?}"
    );
    assert_eq!(
        found[0].hint.as_deref(),
        Some("did you mean `listen`? valid keys are: listen")
    );
    let top = &problems("polcy:\n  file: /p.yaml\n", no_env())[0];
    assert_eq!(
        top.hint.as_deref(),
        Some(
            "did you mean `policy`? valid keys are: authz, admin, workload, trust, identity, policy, telemetry"
        ),
        "{top}"
    );
    // Nothing close: the valid keys alone.
    let found = problems("policy:\n  file: /p.yaml\n  zzzzzzzz: 1\n", no_env());
    let far = found.iter().find(|p| p.code == "unknown_key").unwrap();
    assert!(
        far.hint
            .as_deref()
            .is_some_and(|h| h.starts_with("valid keys are: file")),
        "{far}"
    );
}

#[test]
fn a_loaded_file_names_itself_in_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, PLACED).unwrap();
    let text = Settings::load(&path).unwrap_err().to_string();
    let file = path.display();
    assert!(
        text.contains(&format!(
            "{file}:6:3: admin.lisen: unknown key; did you mean `listen`? valid keys are: listen"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{file}:9:28: policy.reload_interval_seconds: must be between 1 and 3600"
        )),
        "{text}"
    );
    let missing = dir.path().join("absent.yaml");
    let text = Settings::load(&missing).unwrap_err().to_string();
    assert!(
        text.contains(&format!("{}: (document): cannot read", missing.display())),
        "{text}"
    );
}

#[test]
fn every_bad_value_of_one_section_is_reported() {
    // serde stops at the first; each of these is reported, with its place.
    let text = format!(
        "{MINIMAL}identity:\n  clock_skew_seconds: many\n  x509_from: trust_me\n  cache_max_entries: -1\n  jwt: {{audiences: [a], reqired: true}}\n"
    );
    let found = problems(&text, no_env());
    let got: Vec<_> = found.iter().map(|p| (p.code, p.path.as_str())).collect();
    assert_eq!(
        got,
        [
            ("wrong_type", "identity.clock_skew_seconds"),
            ("invalid_value", "identity.x509_from"),
            ("invalid_value", "identity.cache_max_entries"),
            ("unknown_key", "identity.jwt.reqired"),
        ],
        "{found:#?}"
    );
    assert!(found.iter().all(|p| p.location.is_some()), "{found:#?}");
    assert_eq!(
        found[1].hint.as_deref(),
        Some("valid values are: peer_certificate, envoy_principal, xfcc")
    );
}

#[test]
fn an_empty_section_is_the_same_as_an_absent_one() {
    let text = format!("{MINIMAL}identity:\nworkload:\ntelemetry:\n  baseline:\n");
    let s = Settings::from_yaml(&text, no_env()).unwrap();
    assert_eq!(s.clock_skew, Duration::from_secs(30));
    assert_eq!(s.telemetry.baseline_path, None);
}

// ---------------------------------------------------------------- the effective config

/// `s` without its warnings, which are about how it was written.
fn debug_without_warnings(s: &Settings) -> String {
    let mut s = s.clone();
    s.warnings.clear();
    format!("{s:?}")
}

#[test]
fn settings_serialize_as_a_config_that_reads_back_the_same() {
    let xfcc = merge(
        MINIMAL,
        "identity:\n  x509_from: xfcc\n  xfcc:\n    trusted_proxies: [spiffe://hospital.example/ns/edge/sa/gateway]\n",
    );
    let file_audit = merge(
        MINIMAL,
        "telemetry:\n  audit_log: /var/log/hallpass/audit.jsonl\n  audit_log_max_bytes: 8192\n  audit_log_max_files: 2\n  baseline: /var/lib/hallpass/baseline.json\n  log_raw_paths: true\n",
    );
    let enforce = merge(MINIMAL, "policy:\n  file: /p.yaml\n  mode: enforce\n");
    for text in [FULL, MINIMAL, &xfcc, &file_audit, &enforce] {
        let settings = Settings::from_yaml(text, no_env()).unwrap();
        // JSON is YAML: what /config shows, hallpass serve reads.
        let dump = serde_json::to_string_pretty(&settings).unwrap();
        let again = Settings::from_yaml(&dump, no_env()).unwrap_or_else(|e| panic!("{e}\n{dump}"));
        assert_eq!(
            debug_without_warnings(&again),
            debug_without_warnings(&settings),
            "{dump}"
        );
        assert_eq!(serde_json::to_string_pretty(&again).unwrap(), dump);
    }
}

#[test]
fn the_effective_config_fills_in_defaults_and_the_environment() {
    let s = Settings::from_yaml(
        MINIMAL,
        env(&[
            ("HALLPASS_POLICY_RELOAD_INTERVAL_SECONDS", "7"),
            ("SPIFFE_ENDPOINT_SOCKET", "unix:///run/spire/agent.sock"),
        ]),
    )
    .unwrap();
    let v = serde_json::to_value(&s).unwrap();
    // The seven sections, in the file's order (serde_json's Value sorts them).
    let text = serde_json::to_string(&s).unwrap();
    let sections = [
        "authz",
        "admin",
        "workload",
        "trust",
        "identity",
        "policy",
        "telemetry",
    ];
    let order: Vec<usize> = sections
        .iter()
        .map(|k| text.find(&format!("\"{k}\":{{")).unwrap())
        .collect();
    assert!(order.is_sorted(), "{text}");
    assert_eq!(v.as_object().unwrap().len(), sections.len());
    assert_eq!(v["authz"]["listen"], "127.0.0.1:9191");
    assert_eq!(v["admin"]["listen"], "127.0.0.1:9902");
    assert_eq!(v["workload"]["id"], serde_json::Value::Null);
    assert_eq!(v["trust"]["workload_api"], "unix:///run/spire/agent.sock");
    assert_eq!(v["identity"]["x509_from"], "peer_certificate");
    assert_eq!(v["identity"]["clock_skew_seconds"], 30);
    assert_eq!(v["identity"]["cache_max_entries"], 4096);
    assert_eq!(v["identity"]["max_lifetime_seconds"]["x509"], 86_400);
    assert_eq!(v["policy"]["file"], "/etc/hallpass/policy.yaml");
    assert_eq!(v["policy"]["reload_interval_seconds"], 7);
    assert_eq!(v["telemetry"]["audit_log"], "stdout");
    assert_eq!(v["telemetry"]["rate_spike_factor"], 5.0);
    assert_eq!(v["telemetry"]["queue_capacity"], 10_000);
}

/// The full config shown in docs/configuration.md.
fn documented_config() -> String {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md"),
    )
    .unwrap();
    let start = doc
        .find("```yaml\nauthz:")
        .expect("a full config in the docs")
        + 8;
    let len = doc[start..].find("```").unwrap();
    doc[start..start + len].to_owned()
}

/// Every key path of `v`, with its value (list items as `[i]`).
fn leaves(v: &serde_json::Value, path: &str, out: &mut Vec<(String, serde_json::Value)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, child) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                out.push((p.clone(), child.clone()));
                leaves(child, &p, out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                leaves(child, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_documented_config_names_every_key_and_shows_no_secret() {
    let text = documented_config();
    let settings = Settings::from_yaml(&text, no_env()).unwrap_or_else(|e| panic!("{e}"));
    let dump = serde_json::to_value(&settings).unwrap();
    let mut shown = Vec::new();
    leaves(&dump, "", &mut shown);
    let written: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    let mut documented = Vec::new();
    leaves(&written, "", &mut documented);
    let documented: std::collections::BTreeSet<&str> =
        documented.iter().map(|(p, _)| p.as_str()).collect();
    // Every key the sidecar has is in the documented config, so a key added
    // later is documented (and so goes through the check below).
    for (path, _) in &shown {
        assert!(
            documented.contains(path.as_str()),
            "{path} is not in the full config of docs/configuration.md"
        );
    }
    // A key named like a credential is shown redacted, or not at all.
    let secret = [
        "secret",
        "password",
        "passwd",
        "token",
        "credential",
        "private",
        "key",
    ];
    for (path, value) in &shown {
        let key = path.rsplit('.').next().unwrap_or(path).to_ascii_lowercase();
        if secret.iter().any(|s| key.contains(s)) {
            assert!(
                value.is_null() || value == "<redacted>",
                "{path} looks like a credential and is shown: {value}"
            );
        }
    }
    assert!(shown.len() > 40, "{shown:?}");
}

// ---------------------------------------------------------------- issue 14 item 8: errors as good as the policy checker's

/// The one problem of `MINIMAL` plus `extra` (sections of `extra` replace
/// those of `MINIMAL`), at `path`, with its place in the file.
fn only_located_problem(extra: &str, path: &str) -> Problem {
    let text = merge(MINIMAL, extra);
    let p = only_problem_at(&text, no_env(), path);
    assert!(p.location.is_some(), "no line:column: {p}");
    p
}

#[test]
fn an_unknown_value_gets_a_did_you_mean_and_the_valid_values() {
    let p = only_located_problem(
        "identity:\n  x509_from: envoy_principle\n",
        "identity.x509_from",
    );
    assert_eq!(at(&p), Some((9, 14)), "{p}");
    assert_eq!(
        p.hint.as_deref(),
        Some(
            "did you mean `envoy_principal`? valid values are: peer_certificate, envoy_principal, xfcc"
        )
    );
}

#[test]
fn a_tab_in_the_indentation_is_reported_plainly_at_the_tab() {
    let text = "policy:\n  file: /p.yaml\nauthz:\n\tlisten: 127.0.0.1:9191\n";
    let found = problems(text, no_env());
    assert_eq!(found.len(), 1, "{found:#?}");
    let p = &found[0];
    assert_eq!(p.code, "yaml_syntax");
    assert_eq!(
        p.message,
        "tabs are not allowed for indentation in YAML; use spaces"
    );
    assert_eq!(at(p), Some((4, 1)), "{p}");
    // After spaces, too: the column is the tab's.
    let found = problems("policy:\n  file: /p.yaml\n  \tmode: enforce\n", no_env());
    assert_eq!(found[0].message, p.message, "{found:#?}");
    assert_eq!(at(&found[0]), Some((3, 3)));
    // A YAML error that is not a tab keeps the parser's own words.
    let found = problems("policy: [\n", no_env());
    assert!(found[0].message.starts_with("not valid YAML"), "{found:#?}");
}

#[test]
fn a_workload_id_without_the_spiffe_scheme_says_what_a_spiffe_id_looks_like() {
    for (id, says) in [
        (
            "hospital.example/ns/clinical/sa/lab-results",
            "it must be `spiffe://<trust domain>/<path>`",
        ),
        ("lab-results", "it must be `spiffe://<trust domain>/<path>`"),
        (
            "SPIFFE://hospital.example/ns/a/sa/b",
            "write the scheme in lower case",
        ),
        (
            "spiffe://hospital.example",
            "names a trust domain only; a workload's SPIFFE ID has a path",
        ),
        (
            "spiffe://hospital.example/ns/a/sa/b/",
            "path cannot have a trailing slash",
        ),
        (
            "spiffe://hospital example/ns/a",
            "trust domain may only contain",
        ),
    ] {
        let p = only_located_problem(&format!("workload:\n  id: \"{id}\"\n"), "workload.id");
        assert!(p.message.contains(says), "{id}: {p}");
        assert!(p.message.contains(id), "{id}: {p}");
        // Config wording, not a certificate's.
        assert!(!p.message.contains("URI SAN"), "{id}: {p}");
        assert!(!p.message.contains("SVID"), "{id}: {p}");
    }
    // The sibling key that takes SPIFFE IDs says the same.
    let p = only_located_problem(
        "identity:\n  x509_from: xfcc\n  xfcc:\n    trusted_proxies: [gateway]\n",
        "identity.xfcc.trusted_proxies[0]",
    );
    assert!(
        p.message.contains("`spiffe://<trust domain>/<path>`"),
        "{p}"
    );
    assert!(!p.message.contains("URI SAN"), "{p}");
}

#[test]
fn a_listen_address_names_the_cause() {
    for (listen, says) in [
        (
            "localhost:19191",
            "`localhost` is a host name; the address must be an IP address (e.g. 127.0.0.1:19191) or unix:///path",
        ),
        (
            "lab-results.clinical.svc:9191",
            "is a host name; the address must be an IP address (e.g. 0.0.0.0:9191 for every interface)",
        ),
        ("127.0.0.1:919100", "port must be 1–65535, not 919100"),
        ("127.0.0.1:http", "port must be a number, 1–65535"),
        ("127.0.0.1", "has no port"),
        ("localhost", "`localhost` is a host name, with no port"),
        (":9191", "has no address"),
        (
            "::1:9191",
            "an IPv6 address is written in brackets, [::1]:9191",
        ),
        ("999.0.0.1:9191", "`999.0.0.1` is not an IP address"),
        ("[::g]:9191", "`[::g]` is not an IP address"),
        (
            "unix://run/hallpass.sock",
            "a Unix socket must be an absolute path",
        ),
        ("unix:/run/hallpass.sock", "write a Unix socket as unix://"),
    ] {
        let p = only_located_problem(&format!("authz:\n  listen: \"{listen}\"\n"), "authz.listen");
        assert!(p.message.contains(says), "{listen}: {p}");
        assert!(!p.message.contains("neither"), "{listen}: {p}");
        // The admin listener says the same.
        let p = only_located_problem(&format!("admin:\n  listen: \"{listen}\"\n"), "admin.listen");
        let unix = listen.starts_with("unix");
        assert!(unix || p.message.contains(says), "{listen}: {p}");
    }
    let hint = only_located_problem("authz:\n  listen: localhost:1\n", "authz.listen").hint;
    assert_eq!(
        hint.as_deref(),
        Some("host names are not resolved: a listener binds one local address")
    );
}

/// Port 0 (decided, docs/configuration.md): accepted; the OS picks a free
/// port, which the `listening` log line names. For tests: Envoy and the
/// kubelet need a port they know.
#[test]
fn port_zero_is_accepted_and_ipv6_in_brackets_too() {
    let text = merge(
        MINIMAL,
        "authz:\n  listen: \"[::1]:0\"\nadmin:\n  listen: 127.0.0.1:0\n",
    );
    let s = Settings::from_yaml(&text, no_env()).unwrap();
    assert_eq!(s.authz_listen, ListenAddr::Tcp(tcp("[::1]:0")));
    assert_eq!(s.admin_listen, tcp("127.0.0.1:0"));
}

#[test]
fn authz_and_admin_on_one_address_is_an_error_naming_both_keys() {
    for (authz, admin) in [
        ("127.0.0.1:9191", "127.0.0.1:9191"),
        ("127.0.0.1:9902", "0.0.0.0:9902"),
        ("0.0.0.0:9191", "127.0.0.1:9191"),
        ("[::]:9191", "127.0.0.1:9191"),
    ] {
        let text = format!("authz:\n  listen: \"{authz}\"\nadmin:\n  listen: \"{admin}\"\n");
        let p = only_located_problem(&text, "admin.listen");
        assert!(p.message.contains("authz.listen"), "{p}");
        assert!(
            p.message.contains(authz) && p.message.contains(admin),
            "{p}"
        );
        assert!(p.message.contains("different ports"), "{p}");
        assert_eq!(at(&p), Some((11, 11)), "{p}");
    }
    // With admin.listen left at its default, the key written is the one
    // pointed at.
    let p = only_located_problem("authz:\n  listen: 127.0.0.1:9902\n", "authz.listen");
    assert!(p.message.contains("admin.listen (`127.0.0.1:9902`)"), "{p}");
    // Set by a variable: the variable is named.
    let p = only_problem_at(
        MINIMAL,
        env(&[
            ("HALLPASS_AUTHZ_LISTEN", "127.0.0.1:7000"),
            ("HALLPASS_ADMIN_LISTEN", "127.0.0.1:7000"),
        ]),
        "admin.listen",
    );
    assert_eq!(p.file.as_deref(), Some("$HALLPASS_ADMIN_LISTEN"), "{p}");
    // Not a clash: other ports, other addresses, port 0, a Unix socket.
    for (authz, admin) in [
        ("127.0.0.1:9191", "127.0.0.1:9902"),
        ("127.0.0.1:9191", "127.0.0.2:9191"),
        ("127.0.0.1:0", "127.0.0.1:0"),
        ("unix:///run/hallpass/authz.sock", "127.0.0.1:9191"),
    ] {
        let text = merge(
            MINIMAL,
            &format!("authz:\n  listen: \"{authz}\"\nadmin:\n  listen: \"{admin}\"\n"),
        );
        assert!(
            Settings::from_yaml(&text, no_env()).is_ok(),
            "{authz} {admin}"
        );
    }
}

#[test]
fn every_config_error_names_its_key_path_and_its_line_and_column() {
    let text = "\
authz:
  listen: localhost:19191
admin:
  listen: 127.0.0.1:919100
  lisen: 1
workload:
  id: hospital.example/ns/clinical/sa/lab-results
trust:
  workload_api: /run/spire/agent.sock
  bundles:
    - trust_domain: Hospital.Example
      x509: /a.pem
identity:
  clock_skew_seconds: 9999
  xfcc:
    trusted_proxies: [spiffe://hospital.example]
policy:
  file: /p.yaml
  mode: audit
  reload_interval_seconds: 0
telemetry:
  audit_log: relative.jsonl
  rate_spike_factor: 0.5
";
    let found = problems(text, no_env());
    assert!(found.len() >= 11, "{found:#?}");
    for p in &found {
        assert!(p.location.is_some(), "no line:column: {p}");
        assert_ne!(p.path, "(document)", "no key path: {p}");
        assert!(!p.message.is_empty(), "{p}");
    }
}

#[test]
fn check_file_reports_errors_and_warnings_located_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        format!("{MINIMAL}identity:\n  xfcc:\n    trusted_proxies: [spiffe://hospital.example/ns/edge/sa/gw]\n"),
    )
    .unwrap();
    let found = Settings::check_file(&path, env(&[("HALLPASS_AUTHZ_LISTN", "x")])).unwrap();
    let file = path.display().to_string();
    let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            format!("{file}:10:5: identity.xfcc: only used with x509_from: xfcc"),
            "$HALLPASS_AUTHZ_LISTN: (environment): not a hallpass setting; ignored".to_owned(),
        ],
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .all(|p| p.severity == hallpass_diagnostics::Severity::Warning)
    );
    // Errors and the warnings known without settings, together.
    std::fs::write(&path, "policy:\n  flie: /p.yaml\n").unwrap();
    let found = Settings::check_file(&path, env(&[("HALLPASS_X", "1")])).unwrap();
    let codes: Vec<&str> = found.iter().map(|p| p.code).collect();
    assert!(
        codes.contains(&"unknown_key") && codes.contains(&"config_warning"),
        "{found:#?}"
    );
    assert!(Settings::check_file(&dir.path().join("absent.yaml"), no_env()).is_err());
}

const BUNDLE: &str = "trust:\n  bundles:\n    - trust_domain: hospital.example\n      x509: /etc/hallpass/hospital.pem\n";

#[test]
fn policy_files_with_owner_scopes_are_read() {
    let text = format!(
        "{BUNDLE}workload:\n  id: spiffe://hospital.example/ns/clinical/sa/lab-results\n\
         policy:\n  file: /etc/hallpass/mesh/policy.yaml\n  files:\n    - /etc/hallpass/extra.yaml\n\
         \x20   - {{path: /etc/hallpass/team/, owner: workload_namespace}}\n\
         \x20   - {{path: /etc/hallpass/vendor.yaml, owner: [\"spiffe://hospital.example/ns/vendor/*\"]}}\n"
    );
    let s = Settings::from_yaml(&text, no_env()).unwrap();
    assert_eq!(
        s.policy_file,
        Some(PathBuf::from("/etc/hallpass/mesh/policy.yaml"))
    );
    let sources: Vec<(String, Option<String>)> = s
        .policy_sources
        .iter()
        .map(|src| {
            (
                src.path.display().to_string(),
                src.owner.as_ref().map(|o| {
                    let p: Vec<String> = o.patterns.iter().map(ToString::to_string).collect();
                    p.join(",")
                }),
            )
        })
        .collect();
    assert_eq!(
        sources,
        [
            ("/etc/hallpass/mesh/policy.yaml".to_owned(), None),
            ("/etc/hallpass/extra.yaml".to_owned(), None),
            (
                "/etc/hallpass/team/".to_owned(),
                Some("spiffe://hospital.example/ns/clinical/**".to_owned())
            ),
            (
                "/etc/hallpass/vendor.yaml".to_owned(),
                Some("spiffe://hospital.example/ns/vendor/*".to_owned())
            ),
        ]
    );
    // The effective config reads back the same.
    let yaml = serde_yaml_ng::to_string(&s).unwrap();
    let again = Settings::from_yaml(&yaml, no_env()).unwrap();
    assert_eq!(again.policy_sources, s.policy_sources);

    // `files` alone is enough; HALLPASS_POLICY_FILE still adds `file`.
    let text = format!("{BUNDLE}policy:\n  files: [/etc/hallpass/policy.d]\n");
    let s = Settings::from_yaml(&text, no_env()).unwrap();
    assert_eq!(s.policy_file, None);
    assert_eq!(s.policy_sources.len(), 1);
    let s = Settings::from_yaml(&text, env(&[("HALLPASS_POLICY_FILE", "/p.yaml")])).unwrap();
    assert_eq!(s.policy_sources.len(), 2);
}

#[test]
fn policy_files_owner_mistakes_are_reported() {
    // workload_namespace without workload.id, or without /ns/NAME/.
    let text =
        format!("{BUNDLE}policy:\n  files:\n    - {{path: /t, owner: workload_namespace}}\n");
    let p = only_problem_at(&text, no_env(), "policy.files[0].owner");
    assert!(p.message.contains("needs workload.id"), "{p}");
    let text = format!(
        "{BUNDLE}workload:\n  id: spiffe://hospital.example/payments\npolicy:\n  files:\n    - {{path: /t, owner: workload_namespace}}\n"
    );
    let p = only_problem_at(&text, no_env(), "policy.files[0].owner");
    assert!(p.message.contains("has no /ns/NAMESPACE/ path"), "{p}");
    // A bad pattern, an unknown keyword, an empty list.
    let text = format!(
        "{BUNDLE}policy:\n  files:\n    - {{path: /a, owner: [\"spiffe://td/ns/*/x\"]}}\n    - {{path: /b, owner: namespace}}\n    - {{path: /c, owner: []}}\n"
    );
    let found = problems(&text, no_env());
    assert_eq!(
        paths(&found),
        [
            "policy.files[0].owner[0]",
            "policy.files[1].owner",
            "policy.files[2].owner"
        ],
        "{found:#?}"
    );
    // A misspelt key of an entry is named, with the valid ones.
    let text = format!("{BUNDLE}policy:\n  files:\n    - {{path: /a, ownr: [x]}}\n");
    let found = problems(&text, no_env());
    assert!(
        found.iter().any(|p| p.path == "policy.files[0].ownr"
            && p.hint.as_deref() == Some("did you mean `owner`? valid keys are: path, owner")),
        "{found:#?}"
    );
    // Neither `file` nor `files`.
    let found = problems(&format!("{BUNDLE}policy:\n  files: []\n"), no_env());
    assert_eq!(paths(&found), ["policy.file"], "{found:#?}");
}

/// `telemetry.audit_required` needs somewhere to write; with one it is read.
#[test]
fn audit_required_needs_an_audit_log() {
    let off = merge(
        MINIMAL,
        "telemetry:\n  audit_log: off\n  audit_required: true\n",
    );
    let problem = only_problem_at(&off, no_env(), "telemetry.audit_required");
    assert!(
        problem.to_string().contains("needs an audit log"),
        "{problem}"
    );
    let on = merge(MINIMAL, "telemetry:\n  audit_required: true\n");
    let settings = Settings::from_yaml(&on, no_env()).unwrap();
    assert!(settings.telemetry.audit_required);
    assert!(
        !Settings::from_yaml(MINIMAL, no_env())
            .unwrap()
            .telemetry
            .audit_required
    );
}
