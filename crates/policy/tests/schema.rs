//! The JSON Schemas under docs/schema/ accept every shipped example and
//! reject unknown keys.
//!
//! The `jsonschema` crate would bring some 35 crates (num, fancy-regex,
//! fluent-uri, …) for a dev-only check, so this file validates with a small
//! interpreter of exactly the keywords the two schemas use. Any other keyword
//! fails the test, so the schemas cannot drift into what is not checked.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use hallpass_policy::CompiledPolicy;
use regex::Regex;
use serde_json::{Map, Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn schema(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("docs/schema").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap()
}

/// Every problem found, as `path: what`.
fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, schema, value, "$", &mut errors);
    errors
}

fn check(root: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let Value::Object(keywords) = schema else {
        panic!("{at}: a schema must be an object");
    };
    for (keyword, arg) in keywords {
        match keyword.as_str() {
            "$schema" | "title" | "description" | "$defs" => {}
            "$ref" => {
                let name = arg
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/$defs/"))
                    .unwrap_or_else(|| panic!("{at}: only #/$defs/ references"));
                check(root, &root["$defs"][name], value, at, errors);
            }
            "type" => {
                let ok = match arg.as_str().unwrap() {
                    "object" => value.is_object(),
                    "array" => value.is_array(),
                    "string" => value.is_string(),
                    "boolean" => value.is_boolean(),
                    "integer" => value.is_i64() || value.is_u64(),
                    "number" => value.is_number(),
                    other => panic!("type {other}"),
                };
                if !ok {
                    errors.push(format!("{at}: not of type {arg}: {value}"));
                }
            }
            "const" => {
                if value != arg {
                    errors.push(format!("{at}: must be {arg}"));
                }
            }
            "enum" => {
                if !arg.as_array().unwrap().contains(value) {
                    errors.push(format!("{at}: {value} is not one of {arg}"));
                }
            }
            "pattern" => {
                if let Some(s) = value.as_str()
                    && !Regex::new(arg.as_str().unwrap()).unwrap().is_match(s)
                {
                    errors.push(format!("{at}: {s:?} does not match {arg}"));
                }
            }
            "minLength" => {
                if let Some(s) = value.as_str()
                    && (s.chars().count() as u64) < arg.as_u64().unwrap()
                {
                    errors.push(format!("{at}: too short"));
                }
            }
            "minItems" => {
                if let Some(a) = value.as_array()
                    && (a.len() as u64) < arg.as_u64().unwrap()
                {
                    errors.push(format!("{at}: too few items"));
                }
            }
            "minimum" | "maximum" | "exclusiveMinimum" => {
                if let (Some(v), Some(limit)) = (value.as_f64(), arg.as_f64()) {
                    let ok = match keyword.as_str() {
                        "minimum" => v >= limit,
                        "maximum" => v <= limit,
                        _ => v > limit,
                    };
                    if !ok {
                        errors.push(format!("{at}: {v} out of range ({keyword} {limit})"));
                    }
                }
            }
            "items" => {
                for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                    check(root, arg, item, &format!("{at}[{i}]"), errors);
                }
            }
            "required" => {
                if let Some(obj) = value.as_object() {
                    for key in arg.as_array().unwrap() {
                        if !obj.contains_key(key.as_str().unwrap()) {
                            errors.push(format!("{at}: missing {key}"));
                        }
                    }
                }
            }
            "properties" => {
                if let Some(obj) = value.as_object() {
                    for (k, v) in obj {
                        if let Some(s) = arg.get(k) {
                            check(root, s, v, &format!("{at}.{k}"), errors);
                        }
                    }
                }
            }
            "propertyNames" => {
                for k in value.as_object().into_iter().flat_map(Map::keys) {
                    check(root, arg, &json!(k), &format!("{at}.{k} (key)"), errors);
                }
            }
            "additionalProperties" => {
                let known = keywords.get("properties").and_then(Value::as_object);
                for (k, v) in value.as_object().into_iter().flatten() {
                    if known.is_some_and(|p| p.contains_key(k)) {
                        continue;
                    }
                    match arg {
                        Value::Bool(false) => errors.push(format!("{at}.{k}: unknown key")),
                        Value::Bool(true) => {}
                        s => check(root, s, v, &format!("{at}.{k}"), errors),
                    }
                }
            }
            "anyOf" => {
                let any = arg.as_array().unwrap().iter().any(|s| {
                    let mut e = Vec::new();
                    check(root, s, value, at, &mut e);
                    e.is_empty()
                });
                if !any {
                    errors.push(format!("{at}: matches none of anyOf"));
                }
            }
            other => panic!("{at}: keyword `{other}` is not interpreted by this test"),
        }
    }
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

/// Policy examples: YAML under examples/policies/ except test suites.
fn example_policies() -> Vec<PathBuf> {
    let mut files = Vec::new();
    yaml_files(&root().join("examples/policies"), &mut files);
    files.retain(|f| !f.to_string_lossy().ends_with(".tests.yaml"));
    assert!(!files.is_empty());
    files
}

const CONFIG_KEYS: &[&str] = &[
    "authz",
    "admin",
    "workload",
    "trust",
    "identity",
    "policy",
    "telemetry",
];

/// hallpass config files under examples/: YAML mappings whose top-level keys
/// are all config sections (Envoy configs have `static_resources` and such).
fn example_configs() -> Vec<PathBuf> {
    let mut files = Vec::new();
    yaml_files(&root().join("examples"), &mut files);
    files.retain(|f| {
        let text = std::fs::read_to_string(f).unwrap();
        let Ok(Value::Object(top)) = serde_yaml_ng::from_str::<Value>(&text) else {
            return false;
        };
        !top.is_empty() && top.keys().all(|k| CONFIG_KEYS.contains(&k.as_str()))
    });
    files
}

/// ```yaml blocks of a Markdown file.
fn yaml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```yaml") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

#[test]
fn every_example_policy_matches_the_schema_and_compiles() {
    let schema = schema("policy.schema.json");
    for file in example_policies() {
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            validate(&schema, &yaml(&text)),
            Vec::<String>::new(),
            "{}",
            file.display()
        );
        CompiledPolicy::from_yaml(&text).unwrap();
    }
}

#[test]
fn every_policy_in_the_reference_matches_the_schema_and_compiles() {
    let schema = schema("policy.schema.json");
    let doc = std::fs::read_to_string(root().join("docs/policy.md")).unwrap();
    let policies: Vec<String> = yaml_blocks(&doc)
        .into_iter()
        .filter(|b| b.starts_with("version: 1"))
        .collect();
    assert!(policies.len() >= 3, "docs/policy.md shows few policies");
    for text in policies {
        assert_eq!(
            validate(&schema, &yaml(&text)),
            Vec::<String>::new(),
            "{text}"
        );
        if let Err(e) = CompiledPolicy::from_yaml(&text) {
            panic!("{e}\n{text}");
        }
    }
}

#[test]
fn example_configs_and_the_documented_config_match_the_schema() {
    let schema = schema("config.schema.json");
    for file in example_configs() {
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            validate(&schema, &yaml(&text)),
            Vec::<String>::new(),
            "{}",
            file.display()
        );
    }
    let doc = std::fs::read_to_string(root().join("docs/configuration.md")).unwrap();
    let full = yaml_blocks(&doc)
        .into_iter()
        .find(|b| b.starts_with("authz:"))
        .expect("docs/configuration.md shows a full config");
    assert_eq!(
        validate(&schema, &yaml(&full)),
        Vec::<String>::new(),
        "{full}"
    );
    let minimal = json!({"policy": {"file": "/etc/hallpass/policy.yaml"}});
    assert_eq!(validate(&schema, &minimal), Vec::<String>::new());
}

/// The config schema names exactly the keys the config parser knows: the
/// fields of the `*Section` structs in crates/server/src/config.rs.
#[test]
fn config_schema_keys_follow_the_config_parser() {
    let schema = schema("config.schema.json");
    let source = std::fs::read_to_string(root().join("crates/server/src/config.rs")).unwrap();
    let structs = Regex::new(r"struct (\w+)Section \{([^}]*)\}").unwrap();
    let field = Regex::new(r"(?m)^\s*(?:pub\s+)?(\w+):").unwrap();
    let p = |path: &[&str]| -> Value {
        let mut s = &schema;
        for key in path {
            s = if *key == "[]" {
                &s["items"]
            } else {
                &s["properties"][*key]
            };
        }
        s.clone()
    };
    let places: &[(&str, &[&[&str]])] = &[
        ("Authz", &[&["authz"]]),
        ("Admin", &[&["admin"]]),
        ("Workload", &[&["workload"]]),
        ("Trust", &[&["trust"]]),
        ("Bundle", &[&["trust", "bundles", "[]"]]),
        ("Identity", &[&["identity"]]),
        ("Jwt", &[&["identity", "jwt"]]),
        ("Xfcc", &[&["identity", "xfcc"]]),
        ("MaxLifetime", &[&["identity", "max_lifetime_seconds"]]),
        ("Policy", &[&["policy"]]),
        ("Telemetry", &[&["telemetry"]]),
    ];
    let mut seen = 0;
    for cap in structs.captures_iter(&source) {
        let Some((_, paths)) = places.iter().find(|(n, _)| *n == &cap[1]) else {
            panic!(
                "config.rs has a new section struct {}Section: add it to the schema and here",
                &cap[1]
            );
        };
        seen += 1;
        let fields: BTreeSet<String> = field
            .captures_iter(&cap[2])
            .map(|c| c[1].to_owned())
            .collect();
        for path in *paths {
            let s = p(path);
            assert_eq!(s["additionalProperties"], json!(false), "{path:?}");
            let keys: BTreeSet<String> = s["properties"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            assert_eq!(
                keys, fields,
                "schema keys at {path:?} vs {}Section",
                &cap[1]
            );
        }
    }
    assert_eq!(seen, places.len());
    let top: BTreeSet<&str> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(top, CONFIG_KEYS.iter().copied().collect());
}

#[test]
fn the_policy_schema_rejects_unknown_keys_at_every_level() {
    let schema = schema("policy.schema.json");
    let base = yaml(
        r#"
version: 1
trust_domains: [hospital.example]
revoked:
  ids: [spiffe://hospital.example/ns/legacy/sa/fax-gateway]
  serials: [{trust_domain: hospital.example, serial: "0a:1b"}]
workloads:
  spiffe://hospital.example/ns/clinical/sa/lab-results:
    mode: enforce
    allow:
      - name: ehr
        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]
        methods: [GET]
        paths: ["/patients/{patient}/results"]
        headers: {x-tenant: north}
"#,
    );
    assert_eq!(validate(&schema, &base), Vec::<String>::new());
    let workload = "/workloads/spiffe:~1~1hospital.example~1ns~1clinical~1sa~1lab-results";
    for at in [
        "".to_owned(),
        "/revoked".to_owned(),
        "/revoked/serials/0".to_owned(),
        workload.to_owned(),
        format!("{workload}/allow/0"),
    ] {
        let mut doc = base.clone();
        doc.pointer_mut(&at)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .insert("metods".into(), json!(["GET"]));
        let errors = validate(&schema, &doc);
        assert_eq!(errors.len(), 1, "{at}: {errors:?}");
        assert!(errors[0].ends_with(".metods: unknown key"), "{errors:?}");
    }
    for (pointer, bad) in [
        (format!("{workload}/mode"), json!("permissive")),
        (format!("{workload}/allow/0/methods/0"), json!("get")),
        (
            format!("{workload}/allow/0/from/0"),
            json!("spiffe://hospital.example/ns/*/sa"),
        ),
        ("/version".to_owned(), json!(2)),
    ] {
        let mut doc = base.clone();
        *doc.pointer_mut(&pointer).unwrap() = bad;
        assert_eq!(validate(&schema, &doc).len(), 1, "{pointer}");
    }
}

#[test]
fn the_config_schema_rejects_unknown_keys() {
    let schema = schema("config.schema.json");
    for doc in [
        json!({"policy": {"file": "p.yaml"}, "polcy": {}}),
        json!({"policy": {"file": "p.yaml", "reload": 2}}),
        json!({"policy": {"file": "p.yaml"}, "identity": {"jwt": {"audiences": ["a"], "aud": "b"}}}),
        json!({"policy": {"file": "p.yaml"}, "trust": {"bundles": [{"trust_domain": "a", "x509": "a.pem", "pem": "x"}]}}),
        json!({"policy": {"file": "p.yaml"}, "telemetry": {"audit": "stdout"}}),
    ] {
        let errors = validate(&schema, &doc);
        assert_eq!(errors.len(), 1, "{doc}: {errors:?}");
        assert!(errors[0].ends_with("unknown key"), "{errors:?}");
    }
    let bundle_without_files = json!({"trust": {"bundles": [{"trust_domain": "a"}]}});
    assert_eq!(validate(&schema, &bundle_without_files).len(), 1);
    // As the sidecar: a listener is an IP address and port, never a name.
    for listen in ["localhost:9191", "127.0.0.1"] {
        let doc = json!({"policy": {"file": "p.yaml"}, "authz": {"listen": listen}, "admin": {"listen": listen}});
        assert_eq!(validate(&schema, &doc).len(), 2, "{listen}");
    }
    let ok = json!({"policy": {"file": "p.yaml"}, "authz": {"listen": "[::1]:9191"}, "admin": {"listen": "0.0.0.0:9902"}});
    assert_eq!(validate(&schema, &ok), Vec::<String>::new());
}
