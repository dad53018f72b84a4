//! The trust model through the real AdmissionReview handlers: a pod cannot
//! weaken its own posture, cannot look injected without being injected,
//! cannot reach into the sidecar, and cannot change what the injector owns
//! after creation. Each refusal is read from the wire answer
//! (`allowed: false`, a message naming the annotation or field and the chart
//! value that would allow it); every pod admitted with a patch passes
//! kubernetes-validate.

use crate::common;

use common::*;
use hallpass_injector::inject::{POLICY_MODE_ENV, WORKLOAD_ID_ENV};
use hallpass_injector::review::{ReviewOutcome, Webhook, answer_review, to_wire};
use hallpass_injector::{InjectorConfig, Override, Scope};
use serde_json::{Value, json};

const NS: &str = "clinical";

/// A change made to a test pod.
type Edit = Box<dyn Fn(&mut Value)>;

fn review(
    namespace: &str,
    operation: &str,
    sub: Option<&str>,
    old: Option<&Value>,
    pod: &Value,
) -> Vec<u8> {
    let mut request = json!({
        "uid": "9a1f7e2c-0c4b-4f55-8d0e-1b2c3d4e5f60",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": namespace,
        "operation": operation,
        "userInfo": {"username": "tenant@hospital.example"},
        "object": pod,
        "oldObject": old,
        "dryRun": false
    });
    if let Some(sub) = sub {
        request["subResource"] = json!(sub);
    }
    serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}))
        .unwrap()
}

fn respond(
    config: &InjectorConfig,
    webhook: Webhook,
    body: &[u8],
) -> (Answer, Vec<Override>, ReviewOutcome) {
    let reviewed = answer_review(config, webhook, body);
    let wire = to_wire(&reviewed.review).unwrap();
    (
        parse_answer(serde_json::from_slice(&serde_json::to_vec(&wire).unwrap()).unwrap()),
        reviewed.overrides,
        reviewed.outcome,
    )
}

/// Through the namespace webhook (a labelled namespace) at CREATE.
fn create(config: &InjectorConfig, pod: &Value) -> Answer {
    respond(
        config,
        Webhook::Mutate(Scope::Namespace),
        &review(NS, "CREATE", None, None, pod),
    )
    .0
}

/// Through the guard (validating) webhook.
fn guard(
    config: &InjectorConfig,
    operation: &str,
    sub: Option<&str>,
    old: Option<&Value>,
    pod: &Value,
) -> Answer {
    respond(
        config,
        Webhook::Validate,
        &review(NS, operation, sub, old, pod),
    )
    .0
}

fn lab_pod() -> Value {
    fixture_pod("pod-annotated.json")
}

fn annotate(mut pod: Value, key: &str, value: &str) -> Value {
    pod["metadata"]["annotations"][key] = json!(value);
    pod
}

fn config(yaml: &str) -> InjectorConfig {
    InjectorConfig::from_yaml(yaml).unwrap()
}

fn assert_refused(answer: &Answer, fragments: &[&str]) {
    assert!(!answer.allowed, "admitted: {}", answer.wire);
    assert!(answer.patch.is_none());
    for f in fragments {
        assert!(
            answer.message.contains(f),
            "missing {f:?} in {}",
            answer.message
        );
    }
}

/// Admitted with a patch: the patched pod, validated together with others
/// later (one kubernetes-validate run for many pods).
fn injected(answer: &Answer, pod: &Value) -> Value {
    assert!(answer.allowed, "{}", answer.message);
    let mut patched = apply(answer, pod);
    patched["metadata"]["name"] = json!("lab-results-6b8f9c7d5-x7k2p");
    patched
}

fn validate_all(pods: &[Value]) {
    let stream: Vec<String> = pods
        .iter()
        .map(|p| serde_json::to_string(p).unwrap())
        .collect();
    let passed = kubernetes_validate(&stream.join("\n---\n"), &[]);
    assert_eq!(passed.len(), pods.len(), "{passed:?}");
}

/// What the API server does to a webhook's patch before storing the pod (or
/// before the next webhook): fill in defaults, canonicalise quantities.
fn api_server_defaults(mut pod: Value) -> Value {
    fn probe(p: &mut Value) {
        if p.is_object() {
            p["successThreshold"] = json!(1);
            if p.get("httpGet").is_some() {
                p["httpGet"]["scheme"] = json!("HTTP");
            }
        }
    }
    for c in pod["spec"]["initContainers"].as_array_mut().unwrap() {
        if !c["name"].as_str().unwrap().starts_with("hallpass") {
            continue;
        }
        c["terminationMessagePath"] = json!("/dev/termination-log");
        c["imagePullPolicy"] = json!("IfNotPresent");
        for p in ["startupProbe", "livenessProbe", "readinessProbe"] {
            probe(&mut c[p]);
        }
        for e in c["env"].as_array_mut().unwrap() {
            if e.get("valueFrom").is_some() {
                e["valueFrom"]["fieldRef"]["apiVersion"] = json!("v1");
            }
        }
        if let Some(limits) = c["resources"]["limits"].as_object_mut()
            && limits.get("cpu") == Some(&json!("0.5"))
        {
            limits.insert("cpu".into(), json!("500m"));
        }
    }
    for v in pod["spec"]["volumes"].as_array_mut().unwrap() {
        if v.get("configMap").is_some() {
            v["configMap"]["defaultMode"] = json!(420);
        }
    }
    pod
}

// ------------------------------------------------ 1. posture from annotations

#[test]
fn pod_annotations_cannot_weaken_posture() {
    let defaults = config("");
    let standalone = config("defaultMode: standalone\n");
    for (config, key, value, expected) in [
        (
            &defaults,
            "hallpass.io/mode",
            "standalone",
            "(overrides.mode)",
        ),
        (&standalone, "hallpass.io/mode", "istio", "(overrides.mode)"),
        (
            &defaults,
            "hallpass.io/workload-id",
            "spiffe://hospital.example/ns/pharmacy/sa/pharmacy",
            "instead of the pod's own SVID: not allowed for pods in namespace `clinical`; the chart allows it in no namespace (overrides.workloadId)",
        ),
        (
            &defaults,
            "hallpass.io/audit",
            "true",
            "a pod cannot put itself in audit mode",
        ),
        (
            &defaults,
            "hallpass.io/audit-log",
            "off",
            "a pod cannot switch off its audit trail",
        ),
        (
            &defaults,
            "hallpass.io/audit-log",
            "/var/lib/hallpass/a.jsonl",
            "(overrides.auditLog)",
        ),
        (
            &standalone,
            "hallpass.io/inbound-port",
            "16443",
            "(overrides.inboundPort)",
        ),
        (
            &defaults,
            "sidecar.istio.io/inject",
            "false",
            "nothing calls hallpass",
        ),
        (
            &defaults,
            "traffic.sidecar.istio.io/excludeInboundPorts",
            "15020,8080",
            "port(s) 8080 would reach the app without Istio's proxy",
        ),
        (
            &defaults,
            "traffic.sidecar.istio.io/includeInboundPorts",
            "",
            "(overrides.istioCapture)",
        ),
        (
            &defaults,
            "traffic.sidecar.istio.io/excludeInterfaces",
            "eth0",
            "(overrides.istioCapture)",
        ),
        (
            &defaults,
            "sidecar.istio.io/interceptionMode",
            "NONE",
            "(overrides.istioCapture)",
        ),
    ] {
        let answer = create(config, &annotate(lab_pod(), key, value));
        assert_refused(&answer, &[key, expected]);
    }
    // Even where every chart override is allowed, audit mode and an audit
    // trail switched off stay the policy owner's.
    let everything = config(
        "overrides: {mode: ['*'], workloadId: ['*'], auditLog: ['*'], inboundPort: ['*'], istioCapture: ['*']}\n",
    );
    assert_refused(
        &create(
            &everything,
            &annotate(lab_pod(), "hallpass.io/audit", "true"),
        ),
        &["hallpass.io/audit"],
    );
    assert_refused(
        &create(
            &everything,
            &annotate(lab_pod(), "hallpass.io/audit-log", "off"),
        ),
        &["hallpass.io/audit-log"],
    );
}

#[test]
fn overrides_the_chart_allows_are_applied_visible_and_counted() {
    let config = config(
        "overrides: {mode: [clinical], workloadId: [clinical], auditLog: [clinical], istioCapture: [other]}\n",
    );
    let pod = annotate(
        annotate(
            annotate(lab_pod(), "hallpass.io/mode", "standalone"),
            "hallpass.io/workload-id",
            "spiffe://hospital.example/ns/clinical/sa/lab-results-canary",
        ),
        "hallpass.io/audit",
        "false",
    );
    let (answer, overrides, outcome) = respond(
        &config,
        Webhook::Mutate(Scope::Namespace),
        &review(NS, "CREATE", None, None, &pod),
    );
    assert_eq!(outcome, ReviewOutcome::Injected);
    assert_eq!(
        overrides,
        [Override::Mode, Override::WorkloadId, Override::Enforce]
    );
    let patched = injected(&answer, &pod);
    assert_eq!(
        patched["metadata"]["annotations"]["hallpass.io/overrides"],
        "mode,workloadId,enforce"
    );
    assert_eq!(
        patched["metadata"]["labels"]["hallpass.io/sidecar"],
        "standalone"
    );
    let env = env_map(init_container(&patched, "hallpass"));
    assert_eq!(
        env[WORKLOAD_ID_ENV],
        "spiffe://hospital.example/ns/clinical/sa/lab-results-canary"
    );
    assert_eq!(env[POLICY_MODE_ENV], "enforce");

    // The same pod in a namespace the chart does not list is refused, with
    // where the chart does allow it.
    let (other, _, _) = respond(
        &config,
        Webhook::Mutate(Scope::Namespace),
        &review("billing", "CREATE", None, None, &pod),
    );
    assert_refused(
        &other,
        &["namespace `billing`; the chart allows it in clinical (overrides.mode)"],
    );

    // No override: no annotation.
    let plain = injected(&create(&config, &lab_pod()), &lab_pod());
    assert!(
        plain["metadata"]["annotations"]
            .get("hallpass.io/overrides")
            .is_none()
    );
    validate_all(&[patched, plain]);
}

#[test]
fn the_workload_id_is_derived_from_namespace_and_service_account() {
    let config = config("trustDomain: hospital.example\n");
    let patched = injected(&create(&config, &lab_pod()), &lab_pod());
    assert_eq!(
        env_map(init_container(&patched, "hallpass"))[WORKLOAD_ID_ENV],
        "spiffe://hospital.example/ns/clinical/sa/lab-results"
    );
    // Naming the derived ID is not an override; naming another one is.
    let same = annotate(
        lab_pod(),
        "hallpass.io/workload-id",
        "spiffe://hospital.example/ns/clinical/sa/lab-results",
    );
    let patched_same = injected(&create(&config, &same), &same);
    assert!(
        patched_same["metadata"]["annotations"]
            .get("hallpass.io/overrides")
            .is_none()
    );
    let other = annotate(
        lab_pod(),
        "hallpass.io/workload-id",
        "spiffe://hospital.example/ns/pharmacy/sa/pharmacy",
    );
    assert_refused(
        &create(&config, &other),
        &[
            "instead of `spiffe://hospital.example/ns/clinical/sa/lab-results` (namespace and service account)",
        ],
    );
    // A pod without a service account name runs as `default`.
    let mut anonymous = lab_pod();
    anonymous["spec"]
        .as_object_mut()
        .unwrap()
        .remove("serviceAccountName");
    anonymous["spec"]
        .as_object_mut()
        .unwrap()
        .remove("serviceAccount");
    let patched_anonymous = injected(&create(&config, &anonymous), &anonymous);
    assert_eq!(
        env_map(init_container(&patched_anonymous, "hallpass"))[WORKLOAD_ID_ENV],
        "spiffe://hospital.example/ns/clinical/sa/default"
    );
    validate_all(&[patched, patched_same, patched_anonymous]);
}

// ------------------------------------------------ 2. injection that cannot be forged

#[test]
fn names_the_injector_owns_never_skip_injection() {
    let config = config("");
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut label = lab_pod();
    label["metadata"]["labels"]["hallpass.io/sidecar"] = json!("istio");
    cases.push(("a hallpass.io/sidecar label", label));
    cases.push((
        "an injected annotation",
        annotate(lab_pod(), "hallpass.io/injected", "yes"),
    ));
    cases.push((
        "an overrides annotation",
        annotate(lab_pod(), "hallpass.io/overrides", "mode"),
    ));
    let mut envoy = lab_pod();
    envoy["spec"]["initContainers"] =
        json!([{"name": "hallpass-envoy", "image": "busybox", "restartPolicy": "Always"}]);
    cases.push(("an init container named hallpass-envoy", envoy));
    let mut volume = lab_pod();
    volume["spec"]["volumes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "hallpass-run", "emptyDir": {}}));
    cases.push(("a volume named hallpass-run", volume));
    for (what, pod) in cases {
        for scope in [Scope::Namespace, Scope::Pod] {
            let (answer, _, _) = respond(
                &config,
                Webhook::Mutate(scope),
                &review(NS, "CREATE", None, None, &pod),
            );
            assert_refused(&answer, &["carries names that belong to the injector"]);
            let _ = what;
        }
        // The guard refuses it too, in any namespace, opted in or not.
        assert_refused(
            &guard(&config, "CREATE", None, None, &pod),
            &["carries names that belong to the injector"],
        );
    }
}

#[test]
fn a_copy_of_our_containers_with_one_field_changed_is_refused() {
    let config = config("");
    let genuine = injected(&create(&config, &lab_pod()), &lab_pod());
    let mutations: Vec<(&str, Edit)> = vec![
        (
            "/command",
            Box::new(|c| c["command"] = json!(["/bin/allow-all"])),
        ),
        (
            "/image",
            Box::new(|c| c["image"] = json!("registry.example/allow-all:1")),
        ),
        (
            "/env",
            Box::new(|c| {
                c["env"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "HALLPASS_POLICY_FILE", "value": "/tmp/allow.yaml"}))
            }),
        ),
        (
            "/securityContext/privileged",
            Box::new(|c| c["securityContext"]["privileged"] = json!(true)),
        ),
        (
            "/lifecycle",
            Box::new(|c| c["lifecycle"] = json!({"postStart": {"exec": {"command": ["sh"]}}})),
        ),
        (
            "/args/2",
            Box::new(|c| c["args"][2] = json!("/tmp/config.yaml")),
        ),
    ];
    for (at, mutate) in mutations {
        let mut forged = genuine.clone();
        mutate(&mut forged["spec"]["initContainers"][0]);
        for answer in [
            create(&config, &forged),
            guard(&config, "CREATE", None, None, &forged),
        ] {
            assert_refused(&answer, &[&format!("container hallpass differs at {at}")]);
        }
    }
    let mut forged = genuine.clone();
    forged["spec"]["volumes"]
        .as_array_mut()
        .unwrap()
        .last_mut()
        .unwrap()["csi"]["driver"] = json!("evil.example");
    assert_refused(
        &create(&config, &forged),
        &["volume hallpass-spiffe differs at /csi/driver"],
    );
}

#[test]
fn the_injectors_own_injection_is_recognised_after_api_server_defaults_and_istio() {
    let configs = [
        config(
            "sidecar: {resources: {limits: {cpu: '0.5', memory: 128Mi}, requests: {cpu: 50m, memory: 32Mi}}}\n",
        ),
        config("defaultMode: standalone\n"),
    ];
    let mut admitted = Vec::new();
    for config in &configs {
        let patched = injected(&create(config, &lab_pod()), &lab_pod());
        let mut stored = api_server_defaults(patched);
        if config.default_mode == hallpass_injector::Mode::Istio {
            // Istio's injector runs after hallpass's: its init container
            // needs NET_ADMIN and NET_RAW, its proxy is a native sidecar.
            let inits = stored["spec"]["initContainers"].as_array_mut().unwrap();
            inits.insert(0, json!({
                "name": "istio-init", "image": "docker.io/istio/proxyv2:1.28.0",
                "args": ["istio-iptables", "-p", "15001"],
                "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]}, "runAsUser": 0, "runAsNonRoot": false}
            }));
            inits.push(json!({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.28.0", "restartPolicy": "Always"}));
            stored["metadata"]["annotations"]["sidecar.istio.io/status"] =
                json!("{\"initContainers\":[\"istio-init\",\"istio-proxy\"]}");
        }
        // Reinvocation through both mutating webhooks: no second patch.
        for scope in [Scope::Namespace, Scope::Pod] {
            let (answer, _, outcome) = respond(
                config,
                Webhook::Mutate(scope),
                &review(NS, "CREATE", None, None, &stored),
            );
            assert!(answer.allowed, "{}", answer.message);
            assert!(answer.patch.is_none());
            assert_eq!(outcome, ReviewOutcome::Skipped("already_injected"));
        }
        // The guard admits the stored pod.
        let answer = guard(config, "CREATE", None, None, &stored);
        assert!(answer.allowed, "{}", answer.message);
        admitted.push(stored);
    }
    validate_all(&admitted);
}

#[test]
fn what_the_injector_owns_cannot_change_after_creation() {
    let config = config("");
    let injected_pod = api_server_defaults(injected(&create(&config, &lab_pod()), &lab_pod()));
    let update = |f: &dyn Fn(&mut Value)| {
        let mut new = injected_pod.clone();
        f(&mut new);
        guard(&config, "UPDATE", None, Some(&injected_pod), &new)
    };
    // Ordinary changes pass.
    let answer = update(&|p| p["metadata"]["labels"]["release"] = json!("canary"));
    assert!(answer.allowed, "{}", answer.message);
    let answer = update(&|p| {
        p["spec"]["containers"][0]["image"] = json!("registry.hospital.example/lab-results:1.4.3")
    });
    assert!(answer.allowed, "{}", answer.message);
    for (what, f) in [
        (
            "label hallpass.io/sidecar",
            Box::new(|p: &mut Value| {
                p["metadata"]["labels"]
                    .as_object_mut()
                    .unwrap()
                    .remove("hallpass.io/sidecar");
            }) as Edit,
        ),
        (
            "label hallpass.io/sidecar",
            Box::new(|p| p["metadata"]["labels"]["hallpass.io/sidecar"] = json!("standalone")),
        ),
        (
            "annotation hallpass.io/injected",
            Box::new(|p| p["metadata"]["annotations"]["hallpass.io/injected"] = json!("{}")),
        ),
        (
            "annotation hallpass.io/overrides",
            Box::new(|p| p["metadata"]["annotations"]["hallpass.io/overrides"] = json!("hostPID")),
        ),
        (
            "container hallpass",
            Box::new(|p| {
                p["spec"]["initContainers"][0]["image"] = json!("registry.example/allow-all:1")
            }),
        ),
    ] {
        assert_refused(
            &update(&*f),
            &[what, "cannot be added, changed or removed afterwards"],
        );
    }
    // A pod that was not injected cannot acquire the label later.
    let plain = lab_pod();
    let mut labelled = plain.clone();
    labelled["metadata"]["labels"]["hallpass.io/sidecar"] = json!("istio");
    assert_refused(
        &guard(&config, "UPDATE", None, Some(&plain), &labelled),
        &["label hallpass.io/sidecar"],
    );
}

// ------------------------------------------------ 3. reach-in

#[test]
fn other_containers_cannot_mount_the_sidecars_volumes() {
    let everything = config(
        "overrides: {shareProcessNamespace: ['*'], hostPID: ['*'], hostIPC: ['*'], privileged: ['*'], capabilities: ['*'], hostPath: ['*']}\n",
    );
    for volume in [
        "hallpass-run",
        "hallpass-state",
        "hallpass-spiffe",
        "hallpass-mesh",
        "hallpass-team",
        "hallpass-anything",
    ] {
        let mut pod = lab_pod();
        pod["spec"]["containers"][0]["volumeMounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": volume, "mountPath": "/run/hallpass"}));
        assert_refused(
            &create(&everything, &pod),
            &[&format!(
                "spec.containers[app].volumeMounts[{volume}]: only hallpass's own containers may mount {volume}"
            )],
        );
    }
}

/// The sidecar reads its config and the mesh-wide policy from the
/// platform's ConfigMap (`hallpass-mesh`) and its rules from the team's
/// (`hallpass-team`, optional). A pod that points either volume at another
/// ConfigMap (an allow-all one it wrote), drops the team volume's
/// `optional`, makes the platform's optional, narrows it to some keys, or
/// moves the hallpass container's mounts, is not the injector's injection;
/// after creation the volumes are frozen; no other container, debug ones
/// included, may mount them.
#[test]
fn the_platform_and_team_policy_volumes_cannot_be_redirected_or_reached() {
    let config = config("");
    let genuine = injected(&create(&config, &lab_pod()), &lab_pod());
    let volume_index = |pod: &Value, name: &str| {
        pod["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .position(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("volume {name}"))
    };
    let volume_edits: Vec<(&str, &str, Edit)> = vec![
        (
            "hallpass-team",
            "/configMap/name",
            Box::new(|v| v["configMap"]["name"] = json!("allow-everything")),
        ),
        (
            "hallpass-team",
            "/configMap/optional",
            Box::new(|v| {
                v["configMap"].as_object_mut().unwrap().remove("optional");
            }),
        ),
        (
            "hallpass-team",
            "/configMap",
            Box::new(|v| *v = json!({"name": "hallpass-team", "emptyDir": {}})),
        ),
        (
            "hallpass-mesh",
            "/configMap/name",
            Box::new(|v| v["configMap"]["name"] = json!("hallpass-policy")),
        ),
        (
            "hallpass-mesh",
            "/configMap/optional",
            Box::new(|v| v["configMap"]["optional"] = json!(true)),
        ),
        (
            "hallpass-mesh",
            "/configMap/items",
            Box::new(|v| {
                v["configMap"]["items"] = json!([{"key": "config.yaml", "path": "config.yaml"}])
            }),
        ),
    ];
    for (volume, at, edit) in volume_edits {
        let mut forged = genuine.clone();
        let i = volume_index(&forged, volume);
        edit(&mut forged["spec"]["volumes"][i]);
        for answer in [
            create(&config, &forged),
            guard(&config, "CREATE", None, None, &forged),
        ] {
            assert_refused(
                &answer,
                &[
                    "carries names that belong to the injector",
                    &format!("volume {volume} differs at {at}"),
                ],
            );
        }
        // Frozen after creation too.
        let stored = api_server_defaults(genuine.clone());
        let mut changed = stored.clone();
        let i = volume_index(&changed, volume);
        edit(&mut changed["spec"]["volumes"][i]);
        assert_refused(
            &guard(&config, "UPDATE", None, Some(&stored), &changed),
            &[
                &format!("volume {volume} changed"),
                "cannot be added, changed or removed afterwards",
            ],
        );
    }
    // Dropping the team volume (and its mount) is not the injection either.
    let mut forged = genuine.clone();
    let i = volume_index(&forged, "hallpass-team");
    forged["spec"]["volumes"].as_array_mut().unwrap().remove(i);
    forged["spec"]["initContainers"][0]["volumeMounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["name"] != "hallpass-team");
    assert_refused(
        &guard(&config, "CREATE", None, None, &forged),
        &["carries names that belong to the injector"],
    );
    // The hallpass container's mounts: the team's files where the mesh's
    // config is read, or a writable policy directory.
    let mount_edits: Vec<(&str, Edit)> = vec![
        (
            "/volumeMounts/0/name",
            Box::new(|c| c["volumeMounts"][0]["name"] = json!("hallpass-team")),
        ),
        (
            "/volumeMounts/1/readOnly",
            Box::new(|c| c["volumeMounts"][1]["readOnly"] = json!(false)),
        ),
        (
            "/volumeMounts/1/mountPath",
            Box::new(|c| c["volumeMounts"][1]["mountPath"] = json!("/etc/hallpass/mesh/team")),
        ),
    ];
    for (at, edit) in mount_edits {
        let mut forged = genuine.clone();
        edit(&mut forged["spec"]["initContainers"][0]);
        assert_refused(
            &guard(&config, "CREATE", None, None, &forged),
            &[&format!("container hallpass differs at {at}")],
        );
    }
    // No other container reaches them, debug containers included.
    for volume in ["hallpass-mesh", "hallpass-team"] {
        let mut pod = lab_pod();
        pod["spec"]["containers"][0]["volumeMounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": volume, "mountPath": "/etc/hallpass/team"}));
        assert_refused(
            &create(&config, &pod),
            &[&format!(
                "only hallpass's own containers may mount {volume}"
            )],
        );
        let stored = api_server_defaults(genuine.clone());
        let mut debugged = stored.clone();
        debugged["spec"]["ephemeralContainers"] = json!([{
            "name": "debugger", "image": "busybox",
            "volumeMounts": [{"name": volume, "mountPath": "/x"}]
        }]);
        assert_refused(
            &guard(
                &config,
                "UPDATE",
                Some("ephemeralcontainers"),
                Some(&stored),
                &debugged,
            ),
            &[&format!(
                "only hallpass's own containers may mount {volume}"
            )],
        );
    }
    // The genuine injection, stored, is admitted and valid.
    let stored = api_server_defaults(genuine);
    let answer = guard(&config, "CREATE", None, None, &stored);
    assert!(answer.allowed, "{}", answer.message);
    validate_all(&[stored]);
}

#[test]
fn ways_into_the_sidecar_are_refused_unless_the_chart_allows_them() {
    let cases: Vec<(&str, &str, Edit)> = vec![
        (
            "shareProcessNamespace",
            "spec.shareProcessNamespace",
            Box::new(|p| p["spec"]["shareProcessNamespace"] = json!(true)),
        ),
        (
            "hostPID",
            "spec.hostPID",
            Box::new(|p| p["spec"]["hostPID"] = json!(true)),
        ),
        (
            "hostIPC",
            "spec.hostIPC",
            Box::new(|p| p["spec"]["hostIPC"] = json!(true)),
        ),
        (
            "privileged",
            "spec.containers[app].securityContext.privileged",
            Box::new(|p| p["spec"]["containers"][0]["securityContext"]["privileged"] = json!(true)),
        ),
        (
            "capabilities",
            "spec.containers[app].securityContext.capabilities.add: SYS_PTRACE, NET_ADMIN go beyond",
            Box::new(|p| {
                p["spec"]["containers"][0]["securityContext"]["capabilities"] =
                    json!({"add": ["NET_BIND_SERVICE", "SYS_PTRACE", "CAP_NET_ADMIN"]})
            }),
        ),
        (
            "capabilities",
            "spec.initContainers[istio-init].securityContext.capabilities.add: NET_ADMIN",
            // Outside istio mode an istio-init gets no exemption.
            Box::new(|p| {
                p["metadata"]["annotations"]["hallpass.io/mode"] = json!("standalone");
                p["spec"]["initContainers"] = json!([{"name": "istio-init", "image": "x", "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}]);
            }),
        ),
        (
            "hostPath",
            "spec.volumes[kubelet].hostPath",
            Box::new(|p| {
                p["spec"]["volumes"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "kubelet", "hostPath": {"path": "/var/lib/kubelet/pods"}}))
            }),
        ),
    ];
    let mut admitted = Vec::new();
    for (name, key, f) in &cases {
        let mut pod = lab_pod();
        f(&mut pod);
        let base = if pod["metadata"]["annotations"]
            .get("hallpass.io/mode")
            .is_some()
        {
            "overrides: {mode: [clinical]}\n".to_owned()
        } else {
            String::new()
        };
        let refused = create(&config(&base), &pod);
        assert_refused(&refused, &[key, &format!("(overrides.{name})")]);
        let allowing = config(&format!(
            "overrides: {{{name}: [clinical]{}}}\n",
            if base.is_empty() {
                ""
            } else {
                ", mode: [clinical]"
            }
        ));
        let answer = create(&allowing, &pod);
        let patched = injected(&answer, &pod);
        assert!(
            patched["metadata"]["annotations"]["hallpass.io/overrides"]
                .as_str()
                .unwrap()
                .split(',')
                .any(|o| o == *name),
            "{name} recorded on the pod: {}",
            patched["metadata"]["annotations"]
        );
        admitted.push(patched);
    }
    // Baseline capabilities need nothing.
    let mut pod = lab_pod();
    pod["spec"]["containers"][0]["securityContext"]["capabilities"] =
        json!({"add": ["NET_BIND_SERVICE", "CHOWN"]});
    admitted.push(injected(&create(&config(""), &pod), &pod));
    // hostNetwork can never be injected.
    let mut pod = lab_pod();
    pod["spec"]["hostNetwork"] = json!(true);
    assert_refused(
        &create(&config("overrides: {hostPID: ['*']}\n"), &pod),
        &["spec.hostNetwork"],
    );
    validate_all(&admitted);
}

#[test]
fn debug_containers_added_later_cannot_reach_into_the_sidecar() {
    let config = config("");
    let pod = api_server_defaults(injected(&create(&config, &lab_pod()), &lab_pod()));
    let with_debug = |container: Value| {
        let mut new = pod.clone();
        new["spec"]["ephemeralContainers"] = json!([container]);
        guard(
            &config,
            "UPDATE",
            Some("ephemeralcontainers"),
            Some(&pod),
            &new,
        )
    };
    let answer =
        with_debug(json!({"name": "debugger", "image": "busybox", "targetContainerName": "app"}));
    assert!(answer.allowed, "{}", answer.message);
    for (container, expected) in [
        (
            json!({"name": "debugger", "image": "busybox", "targetContainerName": "hallpass"}),
            "spec.ephemeralContainers[debugger].targetContainerName: `hallpass` is hallpass's container",
        ),
        (
            json!({"name": "debugger", "image": "busybox", "volumeMounts": [{"name": "hallpass-state", "mountPath": "/x"}]}),
            "only hallpass's own containers may mount hallpass-state",
        ),
        (
            json!({"name": "debugger", "image": "busybox", "securityContext": {"privileged": true}}),
            "(overrides.privileged)",
        ),
        (
            json!({"name": "debugger", "image": "busybox", "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}}),
            "(overrides.capabilities)",
        ),
        (
            json!({"name": "hallpass-debug", "image": "busybox"}),
            "names hallpass and hallpass-* belong to the injector",
        ),
    ] {
        assert_refused(&with_debug(container), &[expected]);
    }
}

#[test]
fn the_mutating_webhooks_leave_updates_to_the_guard() {
    let config = config("");
    let pod = lab_pod();
    let (answer, _, outcome) = respond(
        &config,
        Webhook::Mutate(Scope::Namespace),
        &review(NS, "UPDATE", None, Some(&pod), &pod),
    );
    assert!(answer.allowed);
    assert!(answer.patch.is_none());
    assert_eq!(outcome, ReviewOutcome::Skipped("not_a_create"));
}
