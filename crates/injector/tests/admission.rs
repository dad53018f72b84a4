//! Real AdmissionReview v1 documents (tests/fixtures/) through the admission
//! handler: each answer is parsed as the API server would, its JSON patch is
//! applied to the pod, and the patched pod is validated with
//! kubernetes-validate (strict) for Kubernetes 1.35. Feeding the patched pod
//! back proves the injector never injects twice.

use crate::common;

use common::*;
use hallpass_injector::annotations::{INJECTED, ISTIO_EXCLUDE_INBOUND_PORTS, SIDECAR_LABEL};
use hallpass_injector::inject::POLICY_MODE_ENV;
use hallpass_injector::review::ReviewOutcome;
use hallpass_injector::{InjectorConfig, Scope};
use serde_json::{Value, json};

/// Inject `fixture` through `scope`, check the answer, validate the patched
/// pod, check idempotency, and return the patched pod.
fn inject(config: &InjectorConfig, scope: Scope, fixture_name: &str) -> Value {
    let body = fixture(fixture_name);
    let request: Value = serde_json::from_slice(&body).unwrap();
    let response = admit(config, scope, &body);
    assert_eq!(
        response.uid,
        request["request"]["uid"].as_str().unwrap(),
        "uid echoed"
    );
    assert!(response.allowed, "{fixture_name}: {}", response.message);
    let pod = request["request"]["object"].clone();
    let patched = apply(&response, &pod);
    validate_pod(&patched);
    let namespace = request["request"]["namespace"].as_str().unwrap();
    assert_never_twice(config, namespace, &patched);
    patched
}

/// The patched pod, sent again through both webhooks (as on a reinvocation),
/// is admitted without a patch.
fn assert_never_twice(config: &InjectorConfig, namespace: &str, patched: &Value) {
    for scope in [Scope::Pod, Scope::Namespace] {
        let again = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "00000000-0000-4000-8000-000000000001",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": namespace,
                "operation": "CREATE",
                "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
                "object": patched,
                "dryRun": false
            }
        });
        let response = admit(config, scope, &serde_json::to_vec(&again).unwrap());
        assert!(response.allowed, "{}", response.message);
        assert!(response.patch.is_none(), "injected twice through {scope:?}");
    }
}

fn assert_restricted(container: &Value) {
    let sc = &container["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert!(sc["runAsUser"].as_i64().unwrap() > 0);
    assert!(container["resources"]["limits"]["memory"].is_string());
    assert!(container["resources"]["limits"]["cpu"].is_string());
    assert!(container["resources"]["requests"]["memory"].is_string());
    assert_eq!(container["restartPolicy"], "Always", "a native sidecar");
}

#[test]
fn pod_annotation_opts_in_istio_mode() {
    let config = default_config();
    let pod = inject(&config, Scope::Pod, "pod-annotated.json");
    assert_eq!(init_container_names(&pod), ["hallpass"]);
    let hallpass = init_container(&pod, "hallpass");
    assert_restricted(hallpass);
    assert_eq!(
        hallpass["args"],
        json!(["serve", "--config", "/etc/hallpass/mesh/config.yaml"])
    );
    // The platform's ConfigMap and the team's, each read-only in its own
    // directory (the config's policy.files names both).
    assert_eq!(
        hallpass["volumeMounts"],
        json!([
            {"name": "hallpass-mesh", "mountPath": "/etc/hallpass/mesh", "readOnly": true},
            {"name": "hallpass-team", "mountPath": "/etc/hallpass/team", "readOnly": true},
            {"name": "hallpass-state", "mountPath": "/var/lib/hallpass"},
            {"name": "hallpass-spiffe", "mountPath": "/spiffe-workload-api", "readOnly": true},
        ])
    );
    assert_eq!(hallpass["startupProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(hallpass["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(hallpass["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(hallpass["readinessProbe"]["httpGet"]["port"], 9902);
    let env = env_map(hallpass);
    assert_eq!(env["HALLPASS_AUTHZ_LISTEN"], "127.0.0.1:9191");
    assert_eq!(env["HALLPASS_ADMIN_LISTEN"], "0.0.0.0:9902");
    assert_eq!(env["HALLPASS_IDENTITY_X509_FROM"], "envoy_principal");
    assert_eq!(
        env["SPIFFE_ENDPOINT_SOCKET"],
        "unix:///spiffe-workload-api/spire-agent.sock"
    );
    assert!(!env.contains_key("HALLPASS_WORKLOAD_ID"));
    assert!(!env.contains_key(POLICY_MODE_ENV));

    let volumes = pod["spec"]["volumes"].as_array().unwrap();
    assert!(
        volumes[0]["name"]
            .as_str()
            .unwrap()
            .starts_with("kube-api-access-"),
        "existing volumes kept first"
    );
    let by_name = |n: &str| {
        volumes
            .iter()
            .find(|v| v["name"] == n)
            .unwrap_or_else(|| panic!("volume {n}"))
    };
    // The platform's ConfigMap is required (config.yaml is in it); the
    // team's is optional: a namespace without one still starts, and its
    // sidecars deny every call (no rules for the workload).
    assert_eq!(
        by_name("hallpass-mesh")["configMap"],
        json!({"name": "hallpass-mesh"})
    );
    assert_eq!(
        by_name("hallpass-team")["configMap"],
        json!({"name": "hallpass-policy", "optional": true})
    );
    assert!(volumes.iter().all(|v| v["name"] != "hallpass-config"));
    let status: Value =
        serde_json::from_str(pod["metadata"]["annotations"][INJECTED].as_str().unwrap()).unwrap();
    assert_eq!(
        status["volumes"],
        json!([
            "hallpass-mesh",
            "hallpass-team",
            "hallpass-state",
            "hallpass-spiffe"
        ])
    );
    assert_eq!(
        by_name("hallpass-spiffe")["csi"],
        json!({"driver": "csi.spiffe.io", "readOnly": true})
    );
    assert!(by_name("hallpass-state")["emptyDir"].is_object());
    assert!(
        volumes.iter().all(|v| v["name"] != "hallpass-run"),
        "no socket volume in istio mode"
    );

    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(
        annotations["kubectl.kubernetes.io/restartedAt"], "2026-11-28T09:14:05Z",
        "kept"
    );
    let status: Value = serde_json::from_str(annotations[INJECTED].as_str().unwrap()).unwrap();
    assert_eq!(status["mode"], "istio");
    assert_eq!(annotations[ISTIO_EXCLUDE_INBOUND_PORTS], "9902");
    assert_eq!(pod["metadata"]["labels"][SIDECAR_LABEL], "istio");
    assert_eq!(
        pod["metadata"]["labels"]["pod-template-hash"], "6b8f9c7d5",
        "kept"
    );
}

#[test]
fn unannotated_pod_is_left_alone_unless_its_namespace_opted_in() {
    let config = default_config();
    let response = admit(&config, Scope::Pod, &fixture("pod-plain.json"));
    assert!(response.allowed);
    assert!(response.patch.is_none());

    // Same pod, namespace labelled hallpass.io/inject=true. It has no
    // annotations map at all: the patch must create it.
    let pod = inject(&config, Scope::Namespace, "pod-plain.json");
    assert_eq!(init_container_names(&pod), ["hallpass"]);
    assert!(pod["metadata"]["annotations"][INJECTED].is_string());
}

#[test]
fn opting_out_of_a_labelled_namespace_needs_the_chart() {
    // In a namespace the platform labelled, a pod may not opt out by itself.
    let config = default_config();
    let response = admit(&config, Scope::Namespace, &fixture("pod-opt-out.json"));
    assert!(!response.allowed);
    assert!(
        response.message.contains(
            "hallpass.io/inject: `false` in a namespace labelled hallpass.io/inject=true: not allowed for pods in \
             namespace `clinical`; the chart allows it in no namespace (overrides.optOut)"
        ),
        "{}",
        response.message
    );
    // A namespace that did not opt in: "false" just means no.
    let response = admit(&config, Scope::Pod, &fixture("pod-opt-out.json"));
    assert!(response.allowed);
    assert!(response.patch.is_none());

    // Where the chart allows it, the opt-out is admitted (and counted).
    let config = InjectorConfig::from_yaml("overrides: {optOut: [batch, clinical]}\n").unwrap();
    let (review, outcome) =
        hallpass_injector::review::review(&config, Scope::Namespace, &fixture("pod-opt-out.json"));
    assert_eq!(outcome, ReviewOutcome::Skipped("opt_out_override"));
    let answer = parse_answer(hallpass_injector::review::to_wire(&review).unwrap());
    assert!(answer.allowed);
    assert!(answer.patch.is_none());
}

#[test]
fn a_pod_that_only_claims_to_be_injected_is_refused() {
    // An injected-looking annotation with a hand-made hallpass container, and
    // a hand-made hallpass container alone: neither skips injection.
    let config = default_config();
    for (name, expected) in [
        (
            "pod-already-injected.json",
            "container hallpass differs at /",
        ),
        (
            "pod-manual-hallpass.json",
            "container hallpass is in containers, the injector puts it in initContainers",
        ),
    ] {
        for scope in [Scope::Pod, Scope::Namespace] {
            let response = admit(&config, scope, &fixture(name));
            assert!(!response.allowed, "{name} via {scope:?}");
            assert!(
                response
                    .message
                    .contains("carries names that belong to the injector"),
                "{name}: {}",
                response.message
            );
            assert!(
                response.message.contains(expected),
                "{name}: {}",
                response.message
            );
        }
    }
}

#[test]
fn standalone_with_existing_init_containers_and_overrides() {
    let config = pharmacy_overrides_config();
    let pod = inject(&config, Scope::Pod, "pod-init-containers-standalone.json");
    // hallpass, then Envoy, then the pod's own init containers, in their order.
    assert_eq!(
        init_container_names(&pod),
        ["hallpass", "hallpass-envoy", "migrate", "log-shipper"]
    );
    let hallpass = init_container(&pod, "hallpass");
    let envoy = init_container(&pod, "hallpass-envoy");
    assert_restricted(hallpass);
    assert_restricted(envoy);
    let env = env_map(hallpass);
    assert_eq!(
        env["HALLPASS_AUTHZ_LISTEN"],
        "unix:///run/hallpass/authz.sock"
    );
    assert_eq!(env["HALLPASS_IDENTITY_X509_FROM"], "peer_certificate");
    assert_eq!(
        env["HALLPASS_WORKLOAD_ID"],
        "spiffe://hospital.example/ns/pharmacy/sa/pharmacy"
    );
    assert_eq!(
        env["HALLPASS_TELEMETRY_AUDIT_LOG"],
        "/var/lib/hallpass/audit.jsonl"
    );
    assert_eq!(env[POLICY_MODE_ENV], "enforce");
    assert_eq!(
        pod["metadata"]["annotations"]["hallpass.io/overrides"], "mode,workloadId,auditLog,enforce",
        "every override applied is on the pod"
    );

    // Envoy: SDS from the SPIRE agent, ext_authz on the Unix socket, the app on h2c.
    let args: Vec<&str> = envoy["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "--config-yaml");
    let bootstrap: Value = serde_json::from_str(args[1]).unwrap();
    let clusters = bootstrap["static_resources"]["clusters"]
        .as_array()
        .unwrap();
    let cluster = |n: &str| clusters.iter().find(|c| c["name"] == n).unwrap();
    let endpoint = |n: &str| {
        cluster(n)["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
            .clone()
    };
    assert_eq!(
        endpoint("hallpass"),
        json!({"pipe": {"path": "/run/hallpass/authz.sock"}})
    );
    assert_eq!(
        endpoint("spire_agent"),
        json!({"pipe": {"path": "/spiffe-workload-api/spire-agent.sock"}})
    );
    assert_eq!(endpoint("app")["socket_address"]["port_value"], 50051);
    assert!(
        cluster("app")["typed_extension_protocol_options"].is_object(),
        "h2c to the app"
    );
    assert!(args.contains(&"$(POD_NAME)"));
    assert_eq!(
        envoy["ports"][0],
        json!({"name": "hallpass-mtls", "containerPort": 15443, "protocol": "TCP"})
    );

    let mounts = |c: &Value| -> Vec<String> {
        c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(mounts(envoy).contains(&"hallpass-run".to_owned()));
    assert!(mounts(hallpass).contains(&"hallpass-run".to_owned()));
    assert!(mounts(envoy).contains(&"hallpass-spiffe".to_owned()));
    let volumes: Vec<&str> = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        volumes[..2],
        ["kube-api-access-phax7q", "scratch"],
        "existing volumes kept, in order"
    );
    let run = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "hallpass-run")
        .unwrap();
    assert_eq!(run["emptyDir"]["medium"], "Memory");
    assert_eq!(pod["metadata"]["labels"][SIDECAR_LABEL], "standalone");
    assert!(
        pod["metadata"]["annotations"]
            .get(ISTIO_EXCLUDE_INBOUND_PORTS)
            .is_none()
    );
}

#[test]
fn istio_exclude_inbound_ports_is_extended_not_replaced() {
    let config = default_config();
    let pod = inject(&config, Scope::Pod, "pod-istio-exclude.json");
    assert_eq!(
        pod["metadata"]["annotations"][ISTIO_EXCLUDE_INBOUND_PORTS],
        "15020,9902"
    );
    assert_eq!(
        pod["metadata"]["annotations"]["sidecar.istio.io/inject"],
        "true"
    );
}

#[test]
fn bad_annotations_are_refused_with_every_reason() {
    let config = default_config();
    let response = admit(&config, Scope::Pod, &fixture("pod-bad-annotations.json"));
    assert!(!response.allowed);
    assert!(response.patch.is_none());
    let message = &response.message;
    for expected in [
        "hallpass.io/mode: `sidecar` is neither istio nor standalone",
        "hallpass.io/workload-id: `spiffe://Hospital.Example/ns/clinical/sa/ehr-api`",
        "hallpass.io/audit: `yes`",
        "hallpass.io/audit-log: `/tmp/audit.log`",
        "hallpass.io/workloadid: unknown hallpass annotation",
    ] {
        assert!(
            message.contains(expected),
            "missing {expected:?} in {message}"
        );
    }
}

#[test]
fn port_clash_is_refused() {
    let config = default_config();
    let response = admit(&config, Scope::Pod, &fixture("pod-port-clash.json"));
    assert!(!response.allowed);
    assert!(
        response.message.contains("9902 is used by container app"),
        "{}",
        response.message
    );
}

#[test]
fn updates_and_other_kinds_pass_untouched() {
    let config = default_config();
    let response = admit(&config, Scope::Pod, &fixture("pod-update.json"));
    assert!(response.allowed);
    assert!(response.patch.is_none());

    let mut deployment: Value = serde_json::from_slice(&fixture("pod-annotated.json")).unwrap();
    deployment["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    let response = admit(
        &config,
        Scope::Pod,
        &serde_json::to_vec(&deployment).unwrap(),
    );
    assert!(response.allowed);
    assert!(response.patch.is_none());
}

#[test]
fn garbage_is_an_invalid_request_not_an_error() {
    let config = default_config();
    let (review, outcome) =
        hallpass_injector::review::review(&config, Scope::Pod, b"{\"not\": \"a review\"");
    assert_eq!(outcome.as_str(), "invalid");
    let answer = parse_answer(hallpass_injector::review::to_wire(&review).unwrap());
    assert!(!answer.allowed);
    assert!(
        answer.message.contains("not an AdmissionReview"),
        "{}",
        answer.message
    );
}

#[test]
fn standalone_pod_without_a_port_is_refused_until_it_names_one() {
    let config = InjectorConfig::from_yaml("defaultMode: standalone\n").unwrap();
    let mut review: Value = serde_json::from_slice(&fixture("pod-annotated.json")).unwrap();
    review["request"]["object"]["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("ports");
    let response = admit(&config, Scope::Pod, &serde_json::to_vec(&review).unwrap());
    assert!(!response.allowed);
    assert!(
        response.message.contains("hallpass.io/app-port"),
        "{}",
        response.message
    );

    review["request"]["object"]["metadata"]["annotations"]["hallpass.io/app-port"] = json!("8081");
    let response = admit(&config, Scope::Pod, &serde_json::to_vec(&review).unwrap());
    assert!(response.allowed, "{}", response.message);
    let pod = apply(&response, &review["request"]["object"]);
    validate_pod(&pod);
    let bootstrap: Value = serde_json::from_str(
        init_container(&pod, "hallpass-envoy")["args"][1]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let app = bootstrap["static_resources"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "app")
        .unwrap();
    assert_eq!(
        app["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
            ["port_value"],
        8081
    );
}

#[test]
fn chart_style_config_changes_what_is_injected() {
    let config = InjectorConfig::from_yaml(
        r#"
sidecar:
  image: registry.hospital.example/hallpass@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
  imagePullPolicy: Always
  adminPort: 19902
  meshConfigMap: platform-mesh
  teamConfigMap: team-rules
  auditLog: "off"
  resources:
    requests: {cpu: 10m, memory: 16Mi}
    limits: {cpu: 200m, memory: 64Mi}
  env:
    - name: HALLPASS_LOG
      value: debug
spiffe:
  enabled: false
"#,
    )
    .unwrap();
    let pod = inject(&config, Scope::Pod, "pod-annotated.json");
    let hallpass = init_container(&pod, "hallpass");
    assert_eq!(hallpass["imagePullPolicy"], "Always");
    assert_eq!(hallpass["readinessProbe"]["httpGet"]["port"], 19902);
    assert_eq!(hallpass["resources"]["limits"]["memory"], "64Mi");
    let env = env_map(hallpass);
    assert_eq!(env["HALLPASS_TELEMETRY_AUDIT_LOG"], "off");
    assert_eq!(env["HALLPASS_LOG"], "debug");
    assert!(!env.contains_key("SPIFFE_ENDPOINT_SOCKET"));
    assert_eq!(
        pod["metadata"]["annotations"][ISTIO_EXCLUDE_INBOUND_PORTS],
        "19902"
    );
    let volumes = pod["spec"]["volumes"].as_array().unwrap();
    assert!(volumes.iter().all(|v| v["name"] != "hallpass-spiffe"));
    let config_map = |volume: &str| {
        volumes
            .iter()
            .find(|v| v["name"] == volume)
            .map(|v| v["configMap"].clone())
    };
    assert_eq!(
        config_map("hallpass-mesh"),
        Some(json!({"name": "platform-mesh"}))
    );
    assert_eq!(
        config_map("hallpass-team"),
        Some(json!({"name": "team-rules", "optional": true}))
    );
}

#[test]
fn the_platform_and_team_config_maps_must_be_two_valid_names() {
    let err = InjectorConfig::from_yaml(
        "sidecar: {meshConfigMap: hallpass-policy, teamConfigMap: hallpass-policy}\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(
            "sidecar.teamConfigMap: `hallpass-policy` is also sidecar.meshConfigMap; the platform's and the team's \
             ConfigMaps must differ"
        ),
        "{err}"
    );
    let err =
        InjectorConfig::from_yaml("sidecar: {meshConfigMap: Mesh_Policy, teamConfigMap: 'a b'}\n")
            .unwrap_err()
            .to_string();
    for expected in [
        "sidecar.meshConfigMap: `Mesh_Policy` is not a ConfigMap name",
        "sidecar.teamConfigMap: `a b` is not a ConfigMap name",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in {err}");
    }
    // The old single key is gone (the chart writes the two new ones).
    let err = InjectorConfig::from_yaml("sidecar: {configMap: hallpass-policy}\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("sidecar.configMap: unknown key"), "{err}");
}

#[test]
fn invalid_injector_config_lists_every_problem() {
    let err = InjectorConfig::from_yaml(
        "defaultMode: standalone\nspiffe: {enabled: false}\nsidecar: {adminPort: 15021, x509From: {istio: trust_me}}\n",
    )
    .unwrap_err()
    .to_string();
    for expected in ["defaultMode", "sidecar.x509From.istio", "envoy.healthPort"] {
        assert!(err.contains(expected), "missing {expected} in {err}");
    }
    let err = InjectorConfig::from_yaml("sidecar: {imagee: x}\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("imagee"), "{err}");
}

#[test]
fn unknown_keys_and_wrong_types_are_all_reported_with_their_places() {
    // serde stops at its first error; the injector reads on and reports
    // every one, with line:column and the keys that are valid.
    let text = "sidecar:\n  imagee: x\n  adminPort: many\nenvoy:\n  concurency: 2\nlimits:\n  maxConnections: -1\n";
    let err = InjectorConfig::from_yaml(text).unwrap_err().to_string();
    for expected in [
        "2:3: sidecar.imagee: unknown key; did you mean `image`? valid keys are: image, imagePullPolicy,",
        "3:14: sidecar.adminPort: invalid type: string \"many\"",
        "5:3: envoy.concurency: unknown key; did you mean `concurrency`? valid keys are: image,",
        "7:19: limits.maxConnections: invalid value: integer `-1`",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in {err}");
    }
    let hallpass_injector::InjectorError::Config(found) =
        InjectorConfig::from_yaml(text).unwrap_err()
    else {
        panic!("a config error");
    };
    assert_eq!(found.len(), 4, "{found:#?}");
}

#[test]
fn the_validator_rejects_what_the_api_server_would() {
    // Negative control: the same validation that passes the patched pods
    // refuses a pod with an unknown field and one with a wrong type.
    let config = default_config();
    let body = fixture("pod-annotated.json");
    let response = admit(&config, Scope::Pod, &body);
    let mut pod = apply(&response, &fixture_pod("pod-annotated.json"));
    pod["metadata"]["name"] = json!("lab-results-6b8f9c7d5-x7k2p");
    pod["spec"]["initContainers"][0]["restartPolicyy"] = json!("Always");
    let err = try_kubernetes_validate(&pod.to_string(), &[]).unwrap_err();
    assert!(err.contains("restartPolicyy"), "{err}");
    pod["spec"]["initContainers"][0]
        .as_object_mut()
        .unwrap()
        .remove("restartPolicyy");
    pod["spec"]["initContainers"][0]["ports"][0]["containerPort"] = json!("9902");
    let err = try_kubernetes_validate(&pod.to_string(), &[]).unwrap_err();
    assert!(err.contains("containerPort"), "{err}");
}

#[test]
fn minimal_pods_get_every_map_and_list_created() {
    // No metadata at all, an empty initContainers list, no volumes: the
    // patch must create what is missing and still apply.
    let config = default_config();
    for pod in [
        json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": "app", "image": "app:1"}]}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "x-"},
               "spec": {"initContainers": [], "containers": [{"name": "app", "image": "app:1"}]}}),
    ] {
        let patched =
            match hallpass_injector::inject::decide(&config, Scope::Namespace, "clinical", &pod) {
                hallpass_injector::Decision::Inject(injection) => injection.apply(&pod).unwrap(),
                other => panic!("{other:?}"),
            };
        assert_eq!(init_container_names(&patched), ["hallpass"]);
        assert!(
            patched["metadata"]["annotations"][INJECTED].is_string(),
            "{patched}"
        );
        assert_eq!(
            patched["metadata"]["labels"][SIDECAR_LABEL], "istio",
            "{patched}"
        );
        assert_eq!(patched["spec"]["volumes"].as_array().unwrap().len(), 4);
        let mut named = patched.clone();
        named["metadata"]["name"] = json!("x-1");
        validate_pod(&named);
    }
}
