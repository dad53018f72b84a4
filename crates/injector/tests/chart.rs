//! The Helm chart (`charts/hallpass`): `helm lint` and `helm template` for
//! the default values and for non-default ones (cert-manager on and off,
//! standalone and istio, monitoring on), every rendered manifest validated
//! with kubernetes-validate (strict, Kubernetes 1.35). Custom resources have
//! no schema in the validator (ServiceMonitor, PodMonitor, PrometheusRule,
//! Certificate, Issuer); they are checked here instead: PrometheusRule rules
//! with `promtool check rules`, the others field by field.
//!
//! Cross-checks with the code the chart feeds: the injector config it
//! renders loads in the injector, the self-signed certificate it generates
//! serves TLS for the webhook's Service name, and the sidecar config plus
//! the injector's HALLPASS_* variables load in hallpass's own config parser.

use crate::common;

use std::collections::BTreeSet;
use std::process::Command;

use common::https::https_to;
use common::*;
use hallpass_injector::{InjectorConfig, Scope};
use serde_json::{Value, json};

const NAMESPACE: &str = "hallpass-system";
const SERVICE_NAME: &str = "hallpass-injector.hallpass-system.svc";

/// Named sets of values, each rendered, linted and validated.
fn value_sets() -> Vec<(&'static str, Vec<String>)> {
    let policy = workspace_root().join("examples/kubernetes/policy/mesh.yaml");
    let set = |s: &str| vec!["--set".to_owned(), s.to_owned()];
    vec![
        ("defaults", vec![]),
        (
            "standalone, self-signed, platform ConfigMap in two namespaces, monitoring on",
            [
                set("defaultMode=standalone"),
                set("webhook.tls.source=self-signed"),
                set("policy.namespaces={clinical,pharmacy}"),
                set("trustDomain=hospital.example"),
                vec!["--set-file".into(), format!("policy.mesh.content={}", policy.display())],
                set("monitoring.serviceMonitor.enabled=true"),
                set("monitoring.podMonitor.enabled=true"),
                set("monitoring.prometheusRule.enabled=true"),
                set("monitoring.grafanaDashboard.enabled=true"),
                set("monitoring.grafanaDashboard.namespace=monitoring"),
                set("overrides.workloadId={pharmacy}"),
                set("overrides.auditLog={pharmacy}"),
            ]
            .concat(),
        ),
        (
            "istio, cert-manager with the chart's own CA, Ignore, one replica",
            [
                set("defaultMode=istio"),
                set("webhook.tls.source=cert-manager"),
                set("webhook.failurePolicy=Ignore"),
                set("injector.replicas=1"),
                set("policy.namespaces={clinical}"),
                set("sidecar.auditLog=/var/lib/hallpass/audit.jsonl"),
                set("trustDomain=hospital.example"),
                set("injector.networkPolicy.enabled=true"),
                set("injector.networkPolicy.apiServerCIDRs={10.0.0.0/28,fd00::/64}"),
                set("overrides.privileged={*}"),
            ]
            .concat(),
        ),
        (
            "auto TLS on a cluster with cert-manager, own ClusterIssuer, digests, pod opt-in only",
            [
                vec!["--api-versions".into(), "cert-manager.io/v1".into()],
                set("webhook.tls.certManager.issuerRef.kind=ClusterIssuer"),
                set("webhook.tls.certManager.issuerRef.name=internal-ca"),
                set("image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
                set("envoy.image.digest=sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"),
                set("webhook.namespaceOptIn=false"),
                set("spiffe.enabled=false"),
                set("injector.topologySpreadConstraints[0].maxSkew=1"),
                set("injector.topologySpreadConstraints[0].topologyKey=topology.kubernetes.io/zone"),
                set("injector.topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule"),
                set("injector.topologySpreadConstraints[0].labelSelector.matchLabels.app=x"),
            ]
            .concat(),
        ),
    ]
}

fn helm(args: &[String]) -> std::process::Output {
    run(Command::new(tool("helm")).args(args))
}

/// `helm template hallpass charts/hallpass -n hallpass-system ARGS`.
fn template(args: &[String]) -> String {
    let mut all = vec![
        "template".to_owned(),
        "hallpass".to_owned(),
        chart_dir().display().to_string(),
        "--namespace".to_owned(),
        NAMESPACE.to_owned(),
    ];
    all.extend(args.iter().cloned());
    let out = helm(&all);
    assert!(
        out.status.success(),
        "helm template {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn template_fails(args: &[&str]) -> String {
    let mut all = vec![
        "template".to_owned(),
        "hallpass".to_owned(),
        chart_dir().display().to_string(),
        "--namespace".to_owned(),
        NAMESPACE.to_owned(),
    ];
    all.extend(args.iter().map(|s| (*s).to_owned()));
    let out = helm(&all);
    assert!(!out.status.success(), "helm template {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn documents(args: &[String]) -> Vec<Value> {
    yaml_documents(&template(args))
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found = of_kind(docs, kind);
    assert_eq!(found.len(), 1, "expected one {kind}, found {}", found.len());
    found[0]
}

fn configmap<'a>(docs: &'a [Value], name: &str, namespace: &str) -> &'a Value {
    docs.iter()
        .find(|d| {
            d["kind"] == "ConfigMap"
                && d["metadata"]["name"] == name
                && d["metadata"]["namespace"] == namespace
        })
        .unwrap_or_else(|| panic!("no ConfigMap {namespace}/{name}"))
}

fn injector_config(docs: &[Value]) -> InjectorConfig {
    let text = configmap(docs, "hallpass-injector", NAMESPACE)["data"]["injector.yaml"]
        .as_str()
        .unwrap();
    InjectorConfig::from_yaml(text)
        .unwrap_or_else(|e| panic!("the chart's injector config does not load: {e}\n{text}"))
}

#[test]
fn helm_lint_passes_for_every_value_set() {
    for (name, args) in value_sets() {
        let mut all = vec![
            "lint".to_owned(),
            "--strict".to_owned(),
            chart_dir().display().to_string(),
            "--namespace".into(),
            NAMESPACE.into(),
        ];
        // `helm lint` has no --api-versions; lint that set with cert-manager explicit.
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--api-versions" {
                args.next();
                all.extend([
                    "--set".to_owned(),
                    "webhook.tls.source=cert-manager".to_owned(),
                ]);
            } else {
                all.push(arg);
            }
        }
        let out = helm(&all);
        assert!(
            out.status.success(),
            "helm lint ({name}) failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_value_set_renders_valid_manifests() {
    for (name, args) in value_sets() {
        let rendered = template(&args);
        let passed = kubernetes_validate(&rendered, CRD_KINDS);
        let docs = yaml_documents(&rendered);
        let core = docs
            .iter()
            .filter(|d| !CRD_KINDS.contains(&d["kind"].as_str().unwrap_or("")))
            .count();
        assert_eq!(
            passed.len(),
            core,
            "{name}: every core manifest validated: {passed:#?}"
        );
        for doc in &docs {
            assert!(doc["metadata"]["name"].is_string(), "{name}: {doc}");
            if !doc["kind"]
                .as_str()
                .unwrap_or_default()
                .ends_with("WebhookConfiguration")
            {
                assert!(
                    doc["metadata"]["namespace"].is_string(),
                    "{name}: namespaced {}",
                    doc["kind"]
                );
            }
        }
        // Whatever the values, the chart gives the injector no API rights.
        for kind in ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"] {
            assert!(of_kind(&docs, kind).is_empty(), "{name}: renders a {kind}");
        }
        let injector = injector_config(&docs);
        assert!(injector.problems().is_empty());
    }
}

#[test]
fn default_install() {
    let docs = documents(&[]);
    let kinds: BTreeSet<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "ConfigMap",
            "Deployment",
            "MutatingWebhookConfiguration",
            "PodDisruptionBudget",
            "Secret",
            "Service",
            "ServiceAccount",
            "ValidatingWebhookConfiguration"
        ])
    );
    let sa = one(&docs, "ServiceAccount");
    assert_eq!(sa["automountServiceAccountToken"], false);
    let deployment = one(&docs, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["serviceAccountName"], "hallpass-injector");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let container = &pod["containers"][0];
    assert_eq!(
        container["args"],
        json!(["inject", "--config", "/etc/hallpass-injector/injector.yaml"])
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"],
        json!(["ALL"])
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["scheme"], "HTTPS");
    assert_eq!(one(&docs, "PodDisruptionBudget")["spec"]["minAvailable"], 1);
    let service = one(&docs, "Service");
    assert_eq!(service["metadata"]["name"], "hallpass-injector");
    assert_eq!(service["spec"]["ports"][0]["port"], 443);

    let config = injector_config(&docs);
    assert_eq!(config.default_mode, hallpass_injector::Mode::Istio);
    assert_eq!(
        config.sidecar.image,
        "ghcr.io/hallpass-dev/hallpass-sidecar:0.1.0"
    );
    assert_eq!(config.sidecar.mesh_config_map, "hallpass-mesh");
    assert_eq!(config.sidecar.team_config_map, "hallpass-policy");
    assert_eq!(config.listen.port(), 8443);
    // No workload namespace is listed, so no platform ConfigMap (NOTES warns).
    assert_eq!(of_kind(&docs, "ConfigMap").len(), 1);
}

/// Issue 14: the chart ships only the platform's part (config.yaml and the
/// mesh-wide policy.yaml) as one ConfigMap per enrolled namespace; each
/// namespace's team owns its own `hallpass-policy` ConfigMap, which the
/// chart never renders. config.yaml reads both through `policy.files`, the
/// team's directory under the workload namespace's owner scope, and the
/// injector mounts each ConfigMap where config.yaml looks for it.
#[test]
fn the_chart_ships_the_platform_configmap_to_each_namespace_and_no_team_configmap() {
    let mesh = workspace_root().join("examples/kubernetes/policy/mesh.yaml");
    let rendered = template(&[
        "--set".into(),
        "policy.namespaces={clinical,billing,pharmacy}".into(),
        "--set".into(),
        "trustDomain=hospital.example".into(),
        "--set-file".into(),
        format!("policy.mesh.content={}", mesh.display()),
        "--set".into(),
        "sidecar.config.policy.reload_interval_seconds=5".into(),
    ]);
    kubernetes_validate(&rendered, CRD_KINDS);
    let docs = yaml_documents(&rendered);
    let maps: BTreeSet<(String, String)> = of_kind(&docs, "ConfigMap")
        .iter()
        .map(|d| {
            (
                d["metadata"]["namespace"].as_str().unwrap().to_owned(),
                d["metadata"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        (NAMESPACE, "hallpass-injector"),
        ("billing", "hallpass-mesh"),
        ("clinical", "hallpass-mesh"),
        ("pharmacy", "hallpass-mesh"),
    ]
    .iter()
    .map(|(ns, name)| ((*ns).to_owned(), (*name).to_owned()))
    .collect();
    assert_eq!(
        maps, expected,
        "no team ConfigMap (hallpass-policy) is rendered"
    );
    let injector = injector_config(&docs);
    assert_eq!(injector.sidecar.mesh_config_map, "hallpass-mesh");
    assert_eq!(injector.sidecar.team_config_map, "hallpass-policy");
    for namespace in ["clinical", "billing", "pharmacy"] {
        let data = configmap(&docs, "hallpass-mesh", namespace)["data"]
            .as_object()
            .unwrap();
        assert_eq!(
            data.keys().collect::<Vec<_>>(),
            ["break-glass.yaml", "config.yaml", "policy.yaml"]
        );
        let config: Value = serde_yaml_ng::from_str(data["config.yaml"].as_str().unwrap()).unwrap();
        assert_eq!(
            config["policy"],
            json!({
                "files": [
                    "/etc/hallpass/mesh/policy.yaml",
                    {"path": "/etc/hallpass/team/", "owner": "workload_namespace"}
                ],
                "reload_interval_seconds": 5,
                "break_glass_file": "/etc/hallpass/mesh/break-glass.yaml"
            }),
            "the platform's file, then the team's directory under the namespace's scope; no policy.file; the platform's break-glass overlay"
        );
        let policy: Value = serde_yaml_ng::from_str(data["policy.yaml"].as_str().unwrap()).unwrap();
        assert_eq!(
            policy["trust_domains"],
            json!(["hospital.example", "imaging-vendor.example"])
        );
        assert!(policy["revoked"]["ids"].is_array());
        assert!(policy.get("workloads").is_none(), "no team's rules");
    }

    // What a pod gets mounted is what config.yaml reads: the platform's
    // ConfigMap (required) holds config.yaml and the first policy file, the
    // team's (optional) is the owner-scoped directory.
    let answer = admit(&injector, Scope::Namespace, &fixture("pod-plain.json"));
    let pod = apply(&answer, &fixture_pod("pod-plain.json"));
    validate_pod(&pod);
    let hallpass = init_container(&pod, "hallpass");
    let mount_of = |volume: &str| {
        hallpass["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == volume)
            .map(|m| {
                (
                    m["mountPath"].as_str().unwrap().to_owned(),
                    m["readOnly"] == true,
                )
            })
            .unwrap_or_else(|| panic!("no mount of {volume}"))
    };
    let config_map_of = |volume: &str| {
        pod["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == volume)
            .map(|v| v["configMap"].clone())
            .unwrap()
    };
    assert_eq!(
        mount_of("hallpass-mesh"),
        ("/etc/hallpass/mesh".to_owned(), true)
    );
    assert_eq!(
        mount_of("hallpass-team"),
        ("/etc/hallpass/team".to_owned(), true)
    );
    assert_eq!(
        config_map_of("hallpass-mesh"),
        json!({"name": "hallpass-mesh"})
    );
    assert_eq!(
        config_map_of("hallpass-team"),
        json!({"name": "hallpass-policy", "optional": true})
    );
    assert_eq!(
        hallpass["args"],
        json!(["serve", "--config", "/etc/hallpass/mesh/config.yaml"])
    );
    // The ID whose namespace scopes the team's files.
    assert_eq!(
        env_map(hallpass)["HALLPASS_WORKLOAD_ID"],
        "spiffe://hospital.example/ns/billing/sa/billing"
    );

    // Other names flow from the values to the ConfigMap and the injector.
    let docs = documents(&[
        "--set".into(),
        "policy.namespaces={clinical}".into(),
        "--set".into(),
        "trustDomain=hospital.example".into(),
        "--set".into(),
        "policy.mesh.configMapName=platform-policy".into(),
        "--set".into(),
        "policy.team.configMapName=team-rules".into(),
    ]);
    assert!(configmap(&docs, "platform-policy", "clinical")["data"]["config.yaml"].is_string());
    let injector = injector_config(&docs);
    assert_eq!(injector.sidecar.mesh_config_map, "platform-policy");
    assert_eq!(injector.sidecar.team_config_map, "team-rules");
}

/// Installs from before the split: the old values fail with the way
/// forward rather than rendering something else; the chart's own keys of
/// the sidecar config cannot be overridden.
#[test]
fn the_single_policy_values_fail_with_the_migration() {
    for (args, expected) in [
        (
            vec!["--set", "policy.content=version: 1"],
            "policy.content was replaced by policy.mesh.content",
        ),
        (
            vec!["--set", "policy.configMapName=hallpass-policy"],
            "policy.configMapName was replaced by policy.mesh.configMapName",
        ),
        (
            vec!["--set", "policy.mesh.configMapName=hallpass-policy"],
            "policy.mesh.configMapName and policy.team.configMapName are both \"hallpass-policy\"",
        ),
        (
            vec!["--set", "sidecar.config.policy.file=/tmp/allow.yaml"],
            "/sidecar/config/policy",
        ),
        (
            vec!["--set", "sidecar.config.policy.files={/tmp/}"],
            "/sidecar/config/policy",
        ),
        (vec!["--set", "policy.team.content=x"], "content"),
        // The team's scope is the namespace of the workload ID the injector
        // derives from trustDomain: without it there is no scope.
        (
            vec!["--set", "policy.namespaces={clinical}"],
            "trustDomain is required with policy.namespaces",
        ),
    ] {
        let err = template_fails(&args);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    // `--reuse-values` carries the old keys over; null drops them.
    let old = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        old.path(),
        "policy:\n  content: 'version: 1'\n  configMapName: hallpass-policy\n  namespaces: [clinical]\ntrustDomain: hospital.example\n",
    )
    .unwrap();
    let old = old.path().display().to_string();
    let docs = documents(&[
        "-f".into(),
        old.clone(),
        "--set".into(),
        "policy.content=null".into(),
        "--set".into(),
        "policy.configMapName=null".into(),
    ]);
    assert!(configmap(&docs, "hallpass-mesh", "clinical")["data"]["policy.yaml"].is_string());
    for args in [
        vec!["--set", "policy.content=version: 1"],
        vec!["--set", "policy.configMapName=x"],
        vec!["-f", old.as_str()],
    ] {
        let err = template_fails(&args);
        assert!(
            err.contains("docs/kubernetes.md, \"Migrating from one policy ConfigMap\""),
            "{err}"
        );
    }
}

/// The example team ConfigMaps and the platform's file together are the
/// example mesh policy, split by owner: each team's destinations in its
/// own namespace (what `owner: workload_namespace` enforces), no mesh-wide
/// section in a team file, every destination in exactly one file.
#[test]
fn the_team_examples_are_the_clinical_mesh_split_by_owner() {
    let dir = workspace_root().join("examples/kubernetes");
    let whole: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(workspace_root().join("examples/policies/clinical-mesh.yaml"))
            .unwrap(),
    )
    .unwrap();
    let mesh: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(dir.join("policy/mesh.yaml")).unwrap())
            .unwrap();
    assert_eq!(
        mesh.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["revoked", "trust_domains", "version"]
    );
    let mut combined = mesh.clone();
    combined["workloads"] = json!({});
    let mut namespaces: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(dir.join("teams")).unwrap() {
        let path = entry.unwrap().path();
        for cm in yaml_documents(&std::fs::read_to_string(&path).unwrap()) {
            assert_eq!(cm["kind"], "ConfigMap", "{path:?}");
            assert_eq!(cm["metadata"]["name"], "hallpass-policy", "{path:?}");
            let namespace = cm["metadata"]["namespace"].as_str().unwrap().to_owned();
            for (key, text) in cm["data"].as_object().unwrap() {
                assert!(key.ends_with(".yaml") || key.ends_with(".yml"), "{key}");
                let file: Value = serde_yaml_ng::from_str(text.as_str().unwrap()).unwrap();
                assert_eq!(
                    file.as_object().unwrap().keys().collect::<Vec<_>>(),
                    ["version", "workloads"],
                    "{path:?} {key}: a team file sets no mesh-wide section"
                );
                hallpass_policy::CompiledPolicy::from_yaml(text.as_str().unwrap())
                    .unwrap_or_else(|e| panic!("{path:?} {key}: {e}"));
                for (id, entry) in file["workloads"].as_object().unwrap() {
                    assert!(
                        id.starts_with(&format!("spiffe://hospital.example/ns/{namespace}/")),
                        "{path:?}: {id} is outside namespace {namespace}"
                    );
                    let previous = combined["workloads"]
                        .as_object_mut()
                        .unwrap()
                        .insert(id.clone(), entry.clone());
                    assert!(previous.is_none(), "{id} defined twice");
                }
            }
            namespaces.push(namespace);
        }
    }
    namespaces.sort();
    assert_eq!(namespaces, ["billing", "clinical", "pharmacy"]);
    assert_eq!(combined, whole);

    // As the sidecars load them: the platform's file and each team's files
    // under its namespace's owner scope compile as one set; a team file
    // under another namespace's scope is refused.
    let scope = |namespace: &str| hallpass_policy::OwnerScope {
        patterns: vec![
            hallpass_policy::SourcePattern::parse(&format!(
                "spiffe://hospital.example/ns/{namespace}/**"
            ))
            .unwrap(),
        ],
        origin: "policy.files[1].owner (workload_namespace)".into(),
    };
    let mut files = vec![hallpass_policy::PolicyFile {
        name: "mesh/policy.yaml".into(),
        text: std::fs::read_to_string(dir.join("policy/mesh.yaml")).unwrap(),
        owner: None,
    }];
    for namespace in &namespaces {
        let cm = yaml_documents(
            &std::fs::read_to_string(dir.join(format!("teams/{namespace}.yaml"))).unwrap(),
        )
        .remove(0);
        for (key, text) in cm["data"].as_object().unwrap() {
            files.push(hallpass_policy::PolicyFile {
                name: format!("{namespace}/{key}"),
                text: text.as_str().unwrap().to_owned(),
                owner: Some(scope(namespace)),
            });
        }
    }
    let set = hallpass_policy::CompiledPolicy::from_files(&files)
        .unwrap_or_else(|e| panic!("the examples as the sidecars load them: {e}"));
    assert_eq!(set.destinations().count(), 3);
    let mut misplaced = files.clone();
    let pharmacy = misplaced
        .iter_mut()
        .find(|f| f.name.starts_with("pharmacy/"))
        .unwrap();
    pharmacy.owner = Some(scope("clinical"));
    let err = hallpass_policy::CompiledPolicy::from_files(&misplaced)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("spiffe://hospital.example/ns/pharmacy/sa/pharmacy")
            && err.contains("pharmacy/pharmacy.yaml"),
        "{err}"
    );
    // The production values enrol exactly the namespaces that have rules.
    let production: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(dir.join("values-production.yaml")).unwrap(),
    )
    .unwrap();
    let mut enrolled: Vec<&str> = production["policy"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    enrolled.sort_unstable();
    assert_eq!(enrolled, namespaces);
}

#[test]
fn webhooks_only_see_pods_that_opted_in() {
    let docs = documents(&[]);
    let webhook = one(&docs, "MutatingWebhookConfiguration");
    let hooks = webhook["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 2);
    for hook in hooks {
        assert_eq!(hook["failurePolicy"], "Fail");
        assert_eq!(hook["sideEffects"], "None");
        assert_eq!(hook["admissionReviewVersions"], json!(["v1"]));
        assert_eq!(hook["reinvocationPolicy"], "IfNeeded");
        assert_eq!(hook["rules"][0]["operations"], json!(["CREATE"]));
        assert_eq!(hook["rules"][0]["resources"], json!(["pods"]));
        assert_eq!(hook["clientConfig"]["service"]["name"], "hallpass-injector");
        let excluded = &hook["namespaceSelector"]["matchExpressions"][1];
        assert_eq!(excluded["key"], "kubernetes.io/metadata.name");
        assert_eq!(
            excluded["values"],
            json!(["kube-system", "kube-public", "kube-node-lease", NAMESPACE])
        );
    }
    let (namespace, pod) = (&hooks[0], &hooks[1]);
    assert_eq!(
        namespace["clientConfig"]["service"]["path"],
        "/mutate/namespace"
    );
    assert_eq!(
        namespace["namespaceSelector"]["matchExpressions"][0],
        json!({"key": "hallpass.io/inject", "operator": "In", "values": ["true"]})
    );
    assert!(
        namespace.get("matchConditions").is_none(),
        "an opt-out is the injector's to refuse or allow (overrides.optOut)"
    );
    assert_eq!(pod["clientConfig"]["service"]["path"], "/mutate");
    assert_eq!(
        pod["namespaceSelector"]["matchExpressions"][0],
        json!({"key": "hallpass.io/inject", "operator": "NotIn", "values": ["true", "false"]})
    );
    assert!(
        pod["matchConditions"][0]["expression"]
            .as_str()
            .unwrap()
            .contains("== 'true'")
    );

    let one_hook = documents(&["--set".into(), "webhook.namespaceOptIn=false".into()]);
    let hooks = one(&one_hook, "MutatingWebhookConfiguration")["webhooks"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["name"], "pod.inject.hallpass.io");

    let err = template_fails(&[
        "--set",
        "webhook.namespaceOptIn=false",
        "--set",
        "webhook.podOptIn=false",
    ]);
    assert!(err.contains("nothing would ever be injected"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_certificate_serves_the_webhook_service_names() {
    use base64::Engine;
    let docs = documents(&["--set".into(), "webhook.tls.source=self-signed".into()]);
    let secret = one(&docs, "Secret");
    assert_eq!(secret["type"], "kubernetes.io/tls");
    let decode = |key: &str| {
        String::from_utf8(
            base64::prelude::BASE64_STANDARD
                .decode(secret["data"][key].as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    let (ca, crt, key) = (decode("ca.crt"), decode("tls.crt"), decode("tls.key"));
    let webhook = one(&docs, "MutatingWebhookConfiguration");
    for hook in webhook["webhooks"].as_array().unwrap() {
        assert_eq!(
            hook["clientConfig"]["caBundle"], secret["data"]["ca.crt"],
            "caBundle is the Secret's CA"
        );
    }
    assert!(webhook["metadata"].get("annotations").is_none());

    // Serve the chart's certificate with the injector and connect the way
    // the API server does: the caBundle as the only root, the Service name.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tls.crt"), &crt).unwrap();
    std::fs::write(dir.path().join("tls.key"), &key).unwrap();
    let config = InjectorConfig::from_yaml(&format!(
        "listen: 127.0.0.1:0\ntls: {{certFile: {0}/tls.crt, keyFile: {0}/tls.key}}\n",
        dir.path().display()
    ))
    .unwrap();
    let injector = hallpass_injector::Injector::bind(config).await.unwrap();
    let addr = injector.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(injector.run(async move {
        let _ = stopped.await;
    }));
    for name in [
        "hallpass-injector",
        "hallpass-injector.hallpass-system",
        SERVICE_NAME,
        "hallpass-injector.hallpass-system.svc.cluster.local",
    ] {
        let (status, _) = https_to(name, addr, &ca, "GET", "/healthz", b"")
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(status, 200, "{name}");
    }
    let err = https_to(
        "hallpass-injector.other.svc",
        addr,
        &ca,
        "GET",
        "/healthz",
        b"",
    )
    .await
    .unwrap_err();
    assert!(err.contains("TLS"), "{err}");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[test]
fn cert_manager_issues_the_certificate_when_asked_or_present() {
    for args in [
        vec![
            "--set".to_owned(),
            "webhook.tls.source=cert-manager".to_owned(),
        ],
        vec!["--api-versions".to_owned(), "cert-manager.io/v1".to_owned()],
    ] {
        let docs = documents(&args);
        assert!(
            of_kind(&docs, "Secret").is_empty(),
            "{args:?}: cert-manager writes the Secret"
        );
        let webhook = one(&docs, "MutatingWebhookConfiguration");
        assert_eq!(
            webhook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            "hallpass-system/hallpass-injector"
        );
        for hook in webhook["webhooks"].as_array().unwrap() {
            assert!(
                hook["clientConfig"].get("caBundle").is_none(),
                "cainjector fills it"
            );
        }
        let certificates = of_kind(&docs, "Certificate");
        assert_eq!(certificates.len(), 2, "the CA and the serving certificate");
        let serving = certificates
            .iter()
            .find(|c| c["metadata"]["name"] == "hallpass-injector")
            .unwrap();
        assert_eq!(serving["spec"]["secretName"], "hallpass-injector-tls");
        assert_eq!(
            serving["spec"]["dnsNames"],
            json!([
                "hallpass-injector",
                "hallpass-injector.hallpass-system",
                SERVICE_NAME,
                "hallpass-injector.hallpass-system.svc.cluster.local"
            ])
        );
        assert_eq!(
            serving["spec"]["issuerRef"],
            json!({"kind": "Issuer", "name": "hallpass-injector-ca"})
        );
        assert_eq!(serving["spec"]["privateKey"]["rotationPolicy"], "Always");
        let ca = certificates
            .iter()
            .find(|c| c["metadata"]["name"] == "hallpass-injector-ca")
            .unwrap();
        assert_eq!(ca["spec"]["isCA"], true);
        assert_eq!(of_kind(&docs, "Issuer").len(), 2);
    }
    // Without cert-manager on the cluster, auto falls back to self-signed.
    let docs = documents(&[]);
    assert!(of_kind(&docs, "Certificate").is_empty());
    assert_eq!(of_kind(&docs, "Secret").len(), 1);

    // Your own issuer: the chart makes no Issuers.
    let docs = documents(&[
        "--set".into(),
        "webhook.tls.source=cert-manager".into(),
        "--set".into(),
        "webhook.tls.certManager.issuerRef.kind=ClusterIssuer".into(),
        "--set".into(),
        "webhook.tls.certManager.issuerRef.name=internal-ca".into(),
    ]);
    assert!(of_kind(&docs, "Issuer").is_empty());
    let serving = one(&docs, "Certificate");
    assert_eq!(
        serving["spec"]["issuerRef"],
        json!({"kind": "ClusterIssuer", "name": "internal-ca"})
    );
}

#[test]
fn sidecar_config_and_policy_load_in_hallpass() {
    let (_, args) = value_sets().remove(1);
    let docs = documents(&args);
    let injector = injector_config(&docs);
    assert_eq!(injector.default_mode, hallpass_injector::Mode::Standalone);
    for namespace in ["clinical", "pharmacy"] {
        let cm = configmap(&docs, "hallpass-mesh", namespace);
        let config_text = cm["data"]["config.yaml"].as_str().unwrap();
        let policy_text = cm["data"]["policy.yaml"].as_str().unwrap();
        assert_eq!(
            policy_text.trim_end(),
            std::fs::read_to_string(workspace_root().join("examples/kubernetes/policy/mesh.yaml"))
                .unwrap()
                .trim_end(),
            "--set-file policy.mesh.content ships the file unchanged"
        );
        hallpass_policy::CompiledPolicy::from_yaml(policy_text)
            .unwrap_or_else(|e| panic!("policy: {e}"));
        // The break-glass overlay: shipped with no grants, and it loads.
        let overlay = cm["data"]["break-glass.yaml"].as_str().unwrap();
        let grants = hallpass_policy::BreakGlassGrants::from_overlay_yaml(
            overlay,
            hallpass_policy::DEFAULT_MAX_DURATION_MS,
        )
        .unwrap_or_else(|e| panic!("break-glass overlay: {e}"));
        assert!(grants.grants().is_empty(), "{overlay}");

        // What a pod in this namespace runs: the chart's config.yaml plus the
        // HALLPASS_* variables the injector sets, through hallpass's parser.
        for fixture_name in ["pod-annotated.json", "pod-plain.json"] {
            let body = fixture(fixture_name);
            let answer = admit(&injector, Scope::Namespace, &body);
            let pod = apply(&answer, &fixture_pod(fixture_name));
            let env: Vec<(String, String)> = env_map(init_container(&pod, "hallpass"))
                .into_iter()
                .collect();
            let settings = hallpass_server::Settings::from_yaml(config_text, env.clone())
                .unwrap_or_else(|e| panic!("{namespace}: hallpass refuses the injected config: {e}\n{config_text}\n{env:?}"));
            assert!(
                settings.warnings.is_empty(),
                "{namespace}: {:?}",
                settings.warnings
            );
            // The platform's file, then the team's directory, scoped to the
            // namespace of the workload ID the injector derived.
            assert_eq!(settings.policy_file, None);
            assert_eq!(
                settings.break_glass_file.as_deref(),
                Some(std::path::Path::new("/etc/hallpass/mesh/break-glass.yaml"))
            );
            let id = settings.workload_id.as_ref().unwrap().to_string();
            let namespace = id.split('/').nth(4).unwrap();
            let sources: Vec<(String, Option<Vec<String>>)> = settings
                .policy_sources
                .iter()
                .map(|s| {
                    (
                        s.path.display().to_string(),
                        s.owner
                            .as_ref()
                            .map(|o| o.patterns.iter().map(ToString::to_string).collect()),
                    )
                })
                .collect();
            assert_eq!(
                sources,
                [
                    ("/etc/hallpass/mesh/policy.yaml".to_owned(), None),
                    (
                        "/etc/hallpass/team/".to_owned(),
                        Some(vec![format!("spiffe://hospital.example/ns/{namespace}/**")])
                    ),
                ]
            );
            assert_eq!(
                settings.authz_listen.to_string(),
                "unix:///run/hallpass/authz.sock"
            );
            assert_eq!(settings.admin_listen.to_string(), "0.0.0.0:9902");
            assert_eq!(
                settings.workload_api.as_deref(),
                Some("unix:///spiffe-workload-api/spire-agent.sock")
            );
            assert_eq!(
                settings.x509_from,
                hallpass_server::X509From::PeerCertificate
            );
        }
    }
    // Per-pod overrides.
    let settings = injected_settings(&docs, "pod-init-containers-standalone.json", "pharmacy");
    assert_eq!(
        settings.workload_id.unwrap().to_string(),
        "spiffe://hospital.example/ns/pharmacy/sa/pharmacy"
    );

    // Istio mode: envoy_principal, TCP loopback.
    let (_, args) = value_sets().remove(2);
    let settings = injected_settings(&documents(&args), "pod-annotated.json", "clinical");
    assert_eq!(settings.authz_listen.to_string(), "127.0.0.1:9191");
    assert_eq!(
        settings.x509_from,
        hallpass_server::X509From::EnvoyPrincipal
    );
}

#[test]
fn audit_annotation_reaches_the_sidecar() {
    let (_, args) = value_sets().remove(1);
    let docs = documents(&args);
    // The fixture pod carries `hallpass.io/audit: "false"`: enforce, stricter
    // than the policy, so always allowed.
    let settings = injected_settings(&docs, "pod-init-containers-standalone.json", "pharmacy");
    assert_eq!(settings.mode_override, Some(hallpass_policy::Mode::Enforce));
    // The same chart without the annotation leaves the policy's mode alone.
    let settings = injected_settings(&docs, "pod-annotated.json", "clinical");
    assert_eq!(settings.mode_override, None);
    // `"true"` would make the pod's sidecar let denied calls through: refused
    // at admission, whatever the chart says.
    let mut review: Value =
        serde_json::from_slice(&fixture("pod-init-containers-standalone.json")).unwrap();
    review["request"]["object"]["metadata"]["annotations"]["hallpass.io/audit"] = json!("true");
    let answer = admit(
        &injector_config(&docs),
        Scope::Pod,
        &serde_json::to_vec(&review).unwrap(),
    );
    assert!(!answer.allowed);
    assert!(
        answer
            .message
            .contains("hallpass.io/audit: `true`: a pod cannot put itself in audit mode"),
        "{}",
        answer.message
    );
}

#[test]
fn trust_domain_derives_the_workload_id_from_namespace_and_service_account() {
    let (_, args) = value_sets().remove(2);
    let docs = documents(&args);
    let settings = injected_settings(&docs, "pod-annotated.json", "clinical");
    assert_eq!(
        settings.workload_id.unwrap().to_string(),
        "spiffe://hospital.example/ns/clinical/sa/lab-results"
    );
}

#[test]
fn network_policy_admits_only_the_api_server() {
    let (_, args) = value_sets().remove(2);
    let docs = documents(&args);
    let np = one(&docs, "NetworkPolicy");
    assert_eq!(np["metadata"]["namespace"], NAMESPACE);
    assert_eq!(
        np["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
        "injector"
    );
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        np["spec"]["egress"],
        json!([]),
        "the injector calls nothing"
    );
    let ingress = np["spec"]["ingress"].as_array().unwrap();
    assert_eq!(ingress.len(), 1);
    assert_eq!(
        ingress[0]["ports"],
        json!([{"port": "https", "protocol": "TCP"}])
    );
    assert_eq!(
        ingress[0]["from"],
        json!([{"ipBlock": {"cidr": "10.0.0.0/28"}}, {"ipBlock": {"cidr": "fd00::/64"}}])
    );
    kubernetes_validate(&serde_json::to_string(np).unwrap(), &[]);
    // Off by default; on without the API server's addresses is an error, not
    // a policy that shuts the API server out.
    assert!(of_kind(&documents(&[]), "NetworkPolicy").is_empty());
    let err = template_fails(&["--set", "injector.networkPolicy.enabled=true"]);
    assert!(err.contains("apiServerCIDRs"), "{err}");
    let err = template_fails(&[
        "--skip-schema-validation",
        "--set",
        "injector.networkPolicy.enabled=true",
    ]);
    assert!(err.contains("apiServerCIDRs"), "{err}");
}

#[test]
fn the_guard_webhook_sees_only_pods_with_hallpass_names() {
    let docs = documents(&[]);
    let guard = one(&docs, "ValidatingWebhookConfiguration");
    let hooks = guard["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0];
    assert_eq!(hook["name"], "guard.hallpass.io");
    assert_eq!(hook["clientConfig"]["service"]["path"], "/validate");
    assert_eq!(hook["failurePolicy"], "Fail");
    assert_eq!(hook["sideEffects"], "None");
    assert_eq!(hook["rules"][0]["operations"], json!(["CREATE", "UPDATE"]));
    assert_eq!(
        hook["rules"][0]["resources"],
        json!(["pods", "pods/ephemeralcontainers"])
    );
    let mutating = one(&docs, "MutatingWebhookConfiguration");
    assert_eq!(
        hook["clientConfig"]["caBundle"],
        mutating["webhooks"][0]["clientConfig"]["caBundle"]
    );
    let expression = hook["matchConditions"][0]["expression"].as_str().unwrap();
    for name in [
        "'hallpass.io/sidecar' in object.metadata.labels",
        "'hallpass.io/injected' in object.metadata.annotations",
        "'hallpass.io/overrides' in oldObject.metadata.annotations",
        "object.spec.initContainers.exists(c, c.name == 'hallpass' || c.name.startsWith('hallpass-'))",
        "oldObject.spec.ephemeralContainers.exists(c,",
        "object.spec.volumes.exists(v, v.name.startsWith('hallpass-'))",
    ] {
        assert!(expression.contains(name), "{name} in {expression}");
    }
    assert_eq!(
        expression.matches('(').count(),
        expression.matches(')').count(),
        "{expression}"
    );
}

/// Every string value of the chart, set to text that would inject YAML
/// (a new key, a new document) if a template wrote it unquoted: the schema
/// refuses it, and with the schema skipped the render either fails or
/// carries the text as a plain string.
#[test]
fn no_string_value_can_inject_yaml() {
    fn leaves(v: &Value, at: Vec<String>, out: &mut Vec<Vec<String>>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let mut next = at.clone();
                    next.push(k.clone());
                    leaves(v, next, out);
                }
            }
            Value::String(_) => out.push(at),
            _ => {}
        }
    }
    let values: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(chart_dir().join("values.yaml")).unwrap())
            .unwrap();
    let mut paths = Vec::new();
    leaves(&values, Vec::new(), &mut paths);
    assert!(paths.len() > 40, "{paths:?}");
    const PAYLOAD: &str = "x\"\n        injected: true\n---\ninjected: true\n";
    let dir = tempfile::tempdir().unwrap();
    let baseline = documents(&[
        "--set".into(),
        "policy.namespaces={clinical}".into(),
        "--set".into(),
        "trustDomain=hospital.example".into(),
    ])
    .len();
    let mut refused_by_schema = 0;
    for path in &paths {
        let mut override_doc = json!({});
        let mut at = &mut override_doc;
        for key in &path[..path.len() - 1] {
            at = at
                .as_object_mut()
                .unwrap()
                .entry(key.clone())
                .or_insert(json!({}));
        }
        at[path.last().unwrap()] = json!(PAYLOAD);
        let file = dir.path().join("hostile.yaml");
        std::fs::write(&file, serde_yaml_ng::to_string(&override_doc).unwrap()).unwrap();
        let base = vec![
            "template".to_owned(),
            "hallpass".to_owned(),
            chart_dir().display().to_string(),
            "--namespace".to_owned(),
            NAMESPACE.to_owned(),
            "--set".to_owned(),
            "policy.namespaces={clinical}".to_owned(),
            "--set".to_owned(),
            "trustDomain=hospital.example".to_owned(),
            "-f".to_owned(),
            file.display().to_string(),
        ];
        let checked = helm(&base);
        if !checked.status.success() {
            assert_not_broken_yaml(&checked, path);
            refused_by_schema += 1;
        } else {
            // Values whose content is free text (the policy, the log filter…)
            // pass the schema; they must still render as data.
            assert_no_injection(&String::from_utf8(checked.stdout).unwrap(), baseline, path);
        }
        let mut skipped = base.clone();
        skipped.push("--skip-schema-validation".into());
        let out = helm(&skipped);
        if out.status.success() {
            assert_no_injection(&String::from_utf8(out.stdout).unwrap(), baseline, path);
        } else {
            // A chart check (`fail`) may refuse the value; a template must
            // never emit YAML the value broke (an attacker would pick the
            // indentation that parses).
            assert_not_broken_yaml(&out, path);
        }
    }
    assert!(
        refused_by_schema > 30,
        "the schema refuses most: {refused_by_schema}"
    );
}

fn assert_not_broken_yaml(out: &std::process::Output, path: &[String]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("YAML parse error") && !stderr.contains("converting YAML"),
        "{path:?}: the value broke a template's YAML (it is written unquoted):\n{stderr}"
    );
}

fn assert_no_injection(rendered: &str, baseline: usize, path: &[String]) {
    fn has_key(v: &Value, key: &str) -> bool {
        match v {
            Value::Object(m) => m.contains_key(key) || m.values().any(|v| has_key(v, key)),
            Value::Array(items) => items.iter().any(|v| has_key(v, key)),
            _ => false,
        }
    }
    let docs = yaml_documents(rendered);
    assert_eq!(
        docs.len(),
        baseline,
        "{path:?} added a document:\n{rendered}"
    );
    for doc in &docs {
        assert!(!has_key(doc, "injected"), "{path:?} injected a key:\n{doc}");
    }
}

/// The settings the injected hallpass container of `pod_fixture` would load:
/// the chart's sidecar config for `namespace` plus the environment the
/// webhook injected. Fails on any warning (an override hallpass ignores).
fn injected_settings(
    docs: &[Value],
    pod_fixture: &str,
    namespace: &str,
) -> hallpass_server::Settings {
    let answer = admit(&injector_config(docs), Scope::Pod, &fixture(pod_fixture));
    let pod = apply(&answer, &fixture_pod(pod_fixture));
    let env: Vec<(String, String)> = env_map(init_container(&pod, "hallpass"))
        .into_iter()
        .collect();
    let config_text = configmap(docs, "hallpass-mesh", namespace)["data"]["config.yaml"]
        .as_str()
        .unwrap();
    let settings = hallpass_server::Settings::from_yaml(config_text, env).unwrap();
    assert!(settings.warnings.is_empty(), "{:?}", settings.warnings);
    settings
}

#[test]
fn monitoring_objects() {
    let (_, args) = value_sets().remove(1);
    let docs = documents(&args);
    let sm = one(&docs, "ServiceMonitor");
    assert_eq!(sm["spec"]["endpoints"][0]["scheme"], "https");
    assert_eq!(
        sm["spec"]["endpoints"][0]["tlsConfig"]["serverName"],
        SERVICE_NAME
    );
    assert_eq!(
        sm["spec"]["endpoints"][0]["tlsConfig"]["ca"]["secret"]["name"],
        "hallpass-injector-tls"
    );
    let pm = one(&docs, "PodMonitor");
    assert_eq!(
        pm["spec"]["selector"]["matchExpressions"][0],
        json!({"key": "hallpass.io/sidecar", "operator": "Exists"})
    );
    assert_eq!(
        pm["spec"]["podMetricsEndpoints"][0]["port"],
        "hallpass-admin"
    );
    assert_eq!(pm["spec"]["namespaceSelector"]["any"], true);

    // The rules: hallpass's alert and mesh rules (examples/prometheus/) and
    // the injector's, checked with promtool.
    let rule = one(&docs, "PrometheusRule");
    let groups = rule["spec"]["groups"].as_array().unwrap();
    let names: Vec<&str> = groups.iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"hallpass-injector"), "{names:?}");
    let from_examples: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(workspace_root().join("examples/prometheus/hallpass-alerts.yaml"))
            .unwrap(),
    )
    .unwrap();
    for group in from_examples["groups"].as_array().unwrap() {
        assert!(
            groups.contains(group),
            "group {} shipped unchanged",
            group["name"]
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, serde_yaml_ng::to_string(&rule["spec"]).unwrap()).unwrap();
    let out = run_ok(
        Command::new(tool("promtool"))
            .arg("check")
            .arg("rules")
            .arg(&rules),
    );
    assert!(out.contains("SUCCESS"), "{out}");

    let dashboard = configmap(&docs, "hallpass-dashboard", "monitoring");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    let json: Value = serde_json::from_str(
        dashboard["data"]["hallpass-dashboard.json"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let shipped: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace_root().join("examples/grafana/hallpass-dashboard.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(json, shipped);
}

#[test]
fn chart_files_are_the_shipped_examples() {
    // The chart carries copies (a packaged chart has no examples/): they
    // must stay identical to what is checked with promtool and documented.
    for (copy, original) in [
        (
            "hallpass-alerts.yaml",
            "examples/prometheus/hallpass-alerts.yaml",
        ),
        (
            "hallpass-mesh-rules.yaml",
            "examples/prometheus/hallpass-mesh-rules.yaml",
        ),
        (
            "hallpass-dashboard.json",
            "examples/grafana/hallpass-dashboard.json",
        ),
    ] {
        let in_chart = chart_dir().join("files").join(copy);
        let meta = std::fs::symlink_metadata(&in_chart).unwrap();
        assert!(
            !meta.file_type().is_symlink(),
            "{copy}: a link breaks a copied chart"
        );
        assert_eq!(
            std::fs::read(&in_chart).unwrap(),
            std::fs::read(workspace_root().join(original)).unwrap(),
            "charts/hallpass/files/{copy} differs from {original}: cp {original} charts/hallpass/files/"
        );
    }
}

#[test]
fn schema_rejects_bad_values() {
    for (args, expected) in [
        (
            vec!["--set", "webhook.failurePolicy=Sometimes"],
            "failurePolicy",
        ),
        (vec!["--set", "webhook.bogus=1"], "bogus"),
        (
            vec![
                "--set",
                "defaultMode=standalone",
                "--set",
                "spiffe.enabled=false",
            ],
            "spiffe",
        ),
        (vec!["--set", "sidecar.adminPort=70000"], "adminPort"),
        (vec!["--set", "sidecar.auditLog=/tmp/audit.log"], "auditLog"),
        (
            vec!["--set", "sidecar.config.tracing.enabled=true"],
            "'tracing'",
        ),
        (vec!["--set", "policy.namespaces={Clinical}"], "namespaces"),
        (
            vec!["--set-string", "image.tag=1.0\n          stdin: true"],
            "/image/tag",
        ),
        (
            vec!["--set-string", "image.repository=evil\n  x: y"],
            "/image/repository",
        ),
        (
            vec!["--set", "envoy.image.tag=v1 stdin"],
            "/envoy/image/tag",
        ),
        (
            vec!["--set", "overrides.hostPID={Dev}"],
            "/overrides/hostPID",
        ),
        (vec!["--set", "overrides.bogus={dev}"], "bogus"),
        (vec!["--set", "trustDomain=Hospital.Example"], "trustDomain"),
        (
            vec!["--set", "injector.limits.maxBodyBytes=8388608"],
            "maxBodyBytes",
        ),
    ] {
        let err = template_fails(&args);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn ignore_and_a_single_replica_are_spelled_out() {
    let (_, args) = value_sets().remove(2);
    let docs = documents(&args);
    assert!(
        of_kind(&docs, "PodDisruptionBudget").is_empty(),
        "a PDB would block every drain"
    );
    for hook in one(&docs, "MutatingWebhookConfiguration")["webhooks"]
        .as_array()
        .unwrap()
    {
        assert_eq!(hook["failurePolicy"], "Ignore");
    }
    let mut all = vec![
        "install".to_owned(),
        "hallpass".to_owned(),
        chart_dir().display().to_string(),
        "--namespace".into(),
        NAMESPACE.into(),
        "--dry-run=client".into(),
    ];
    all.extend(args);
    let out = helm(&all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let notes = String::from_utf8_lossy(&out.stdout);
    assert!(notes.contains("WARNING: one injector replica"), "{notes}");
    assert!(notes.contains("start WITHOUT hallpass"), "{notes}");
}

#[test]
fn kubernetes_examples_validate() {
    let dir = workspace_root().join("examples/kubernetes");
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    for sub in ["", "istio", "spire", "standalone", "teams"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    let mut custom = BTreeSet::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.contains("values") {
            // Helm values, not manifests: they must at least be YAML maps.
            let v: Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(v.is_object(), "{name}");
            continue;
        }
        kubernetes_validate(&text, CRD_KINDS);
        for doc in yaml_documents(&text) {
            let kind = doc["kind"].as_str().unwrap().to_owned();
            if CRD_KINDS.contains(&kind.as_str()) {
                custom.insert(kind);
            }
        }
    }
    assert_eq!(
        custom,
        BTreeSet::from(
            [
                "AuthorizationPolicy",
                "ClusterSPIFFEID",
                "PeerAuthentication",
                "ServiceEntry"
            ]
            .map(String::from)
        )
    );

    // The Istio wiring fits what the chart injects: the provider's port is
    // the sidecar's authz port, and the ServiceEntry resolves to loopback.
    let config = injector_config(&documents(&[]));
    let istiod: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(dir.join("istio/istiod-values.yaml")).unwrap(),
    )
    .unwrap();
    let provider = &istiod["meshConfig"]["extensionProviders"][0];
    assert_eq!(
        provider["envoyExtAuthzGrpc"]["port"],
        config.sidecar.authz_port
    );
    assert_eq!(provider["envoyExtAuthzGrpc"]["failOpen"], false);
    let entry =
        yaml_documents(&std::fs::read_to_string(dir.join("istio/serviceentry.yaml")).unwrap())
            .remove(0);
    assert_eq!(
        entry["spec"]["hosts"][0],
        provider["envoyExtAuthzGrpc"]["service"]
    );
    assert_eq!(entry["spec"]["endpoints"][0]["address"], "127.0.0.1");
    assert_eq!(
        entry["spec"]["ports"][0]["number"],
        config.sidecar.authz_port
    );
    let policy = yaml_documents(
        &std::fs::read_to_string(dir.join("istio/authorizationpolicy.yaml")).unwrap(),
    )
    .remove(0);
    assert_eq!(policy["spec"]["provider"]["name"], provider["name"]);
    assert_eq!(policy["spec"]["action"], "CUSTOM");

    // The standalone example's Service targets the port the injector names.
    let standalone =
        yaml_documents(&std::fs::read_to_string(dir.join("standalone/workload.yaml")).unwrap());
    let service = standalone.iter().find(|d| d["kind"] == "Service").unwrap();
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "hallpass-mtls");
    let netpol = standalone
        .iter()
        .find(|d| d["kind"] == "NetworkPolicy")
        .unwrap();
    assert_eq!(
        netpol["spec"]["ingress"][0]["ports"][0]["port"],
        config.envoy.inbound_port
    );

    // The production values render and validate.
    let rendered = template(&[
        "-f".into(),
        dir.join("values-production.yaml").display().to_string(),
        "--set-file".into(),
        format!(
            "policy.mesh.content={}",
            workspace_root()
                .join("examples/kubernetes/policy/mesh.yaml")
                .display()
        ),
    ]);
    kubernetes_validate(&rendered, CRD_KINDS);
}
