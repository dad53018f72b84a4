//! Every Envoy config hallpass ships is as strict as the one the injector
//! adds to a pod: path normalisation, escaped slashes refused, header names
//! with underscores refused, caller-sent XFCC never passed on, ext_authz
//! failing closed. The configs are found by walking the repository, not
//! listed by hand, so a new one cannot be forgotten; configs that tests and
//! demos generate are checked where they are started
//! (`Workdir::start_envoy`, the local mesh, the rejection tests).

use std::path::{Path, PathBuf};

use hallpass_e2e::{EXT_AUTHZ_HARDENING, HCM_HARDENING, check_envoy_hardening, workspace_root};
use hallpass_injector::AppProtocol;
use hallpass_injector::envoy::{BootstrapParams, bootstrap};
use serde_json::Value;

/// The typed_config of the first filter of type `kind` in `config`.
fn find_typed<'a>(config: &'a Value, kind: &str) -> Option<&'a Value> {
    match config {
        Value::Object(map) => {
            if map
                .get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with(kind))
                && (kind != ".HttpConnectionManager" || config.to_string().contains("ext_authz"))
            {
                return Some(config);
            }
            map.values().find_map(|v| find_typed(v, kind))
        }
        Value::Array(items) => items.iter().find_map(|v| find_typed(v, kind)),
        _ => None,
    }
}

/// The required settings are exactly what the injected sidecar sets: if the
/// injector's config changes, this list (and every shipped config) follows.
#[test]
fn the_required_settings_are_those_of_the_injected_sidecar() {
    let injected = bootstrap(&BootstrapParams {
        inbound_port: 15006,
        app_port: 8080,
        app_protocol: AppProtocol::Http1,
        health_port: 15021,
        admin_socket: "/run/hallpass/envoy-admin.sock".into(),
        authz_socket: "/run/hallpass/authz.sock".into(),
        spire_agent_socket: "/run/spire/agent.sock".into(),
        svid_name: "spiffe://hospital.example/ns/clinical/sa/lab-results".into(),
        bundle_name: "spiffe://hospital.example".into(),
        forward_client_cert_chain: false,
        ext_authz_timeout_ms: 500,
    });
    for (kind, required) in [
        (".HttpConnectionManager", HCM_HARDENING),
        (".ext_authz.v3.ExtAuthz", EXT_AUTHZ_HARDENING),
    ] {
        let typed = find_typed(&injected, kind).unwrap();
        for (path, want) in required {
            let got = path.iter().try_fold(typed, |v, k| v.get(k)).unwrap();
            assert_eq!(
                &got.to_string(),
                want,
                "injected {kind}: {}",
                path.join(".")
            );
        }
    }
}

/// Files under the repository that may hold Envoy configs.
fn candidate_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if !(name.starts_with('.') || name == "target" || name == "node_modules") {
                    dirs.push(path);
                }
            } else if [".yaml", ".yml", ".json"].iter().any(|e| name.ends_with(e)) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_shipped_envoy_config_is_as_strict_as_the_injected_one() {
    let root = workspace_root();
    let mut checked = Vec::new();
    let mut problems = Vec::new();
    for file in candidate_files(&root) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if !text.contains("HttpConnectionManager") && !text.contains("ExtAuthz") {
            continue;
        }
        let rel = file.strip_prefix(&root).unwrap().display().to_string();
        let mut managers = 0;
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let tree = match <Value as serde::Deserialize>::deserialize(doc) {
                Ok(tree) => tree,
                Err(e) => {
                    problems.push(format!(
                        "{rel}: names an Envoy filter but does not parse: {e}"
                    ));
                    continue;
                }
            };
            match check_envoy_hardening(&tree) {
                Ok(n) => managers += n,
                Err(e) => problems.push(format!("{rel}:\n{e}")),
            }
        }
        checked.push((rel, managers));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    let files: Vec<&str> = checked.iter().map(|(f, _)| f.as_str()).collect();
    // A floor, not a list: the examples hold at least this many today.
    assert!(
        files
            .iter()
            .filter(|f| f.starts_with("examples/envoy/"))
            .count()
            >= 6
            && files
                .iter()
                .filter(|f| f.starts_with("examples/docker-compose/envoy/"))
                .count()
                >= 6,
        "the walk found too few configs: {files:?}"
    );
    // Every file of an Envoy example directory really was walked into.
    for (file, managers) in &checked {
        assert!(
            !file.contains("/envoy/") || *managers >= 1,
            "{file}: no HTTP connection manager found"
        );
    }
}
