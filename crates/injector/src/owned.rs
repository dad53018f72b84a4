//! What the injector owns in a pod, and how it recognises its own work.
//!
//! The containers `hallpass` and `hallpass-*`, the volumes `hallpass-*`, the
//! label `hallpass.io/sidecar` and the annotations `hallpass.io/injected`
//! and `hallpass.io/overrides` are the injector's. A pod can set any of them
//! itself, so none of them, alone, means "already injected". The injector
//! recognises its own injection only when *all* of them are exactly what it
//! would add to the rest of the pod ([`recognise`]): same containers field
//! for field, same volumes, same metadata. Anything else that carries these
//! names is refused.
//!
//! The API server fills in defaults after a webhook's patch (a probe's
//! `successThreshold`, `terminationMessagePath`, a ConfigMap volume's
//! `defaultMode`, quantities in canonical form); [`normalize`] removes
//! exactly those, so the comparison sees what was injected and nothing a pod
//! could add.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::annotations::{INJECTED, OVERRIDES, SIDECAR_LABEL};
use crate::config::InjectorConfig;
use crate::error::Problem;
use crate::inject;
use crate::posture::{is_owned_container, is_owned_volume};

const CONTAINER_LISTS: [&str; 3] = ["initContainers", "containers", "ephemeralContainers"];

/// The parts of a pod the injector owns, as the pod has them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Owned {
    /// Container name → (`initContainers`|`containers`|`ephemeralContainers`, JSON).
    pub containers: BTreeMap<String, (&'static str, Value)>,
    /// Volume name → JSON.
    pub volumes: BTreeMap<String, Value>,
    /// The `hallpass.io/sidecar` label.
    pub label: Option<String>,
    /// The `hallpass.io/injected` annotation.
    pub injected: Option<String>,
    /// The `hallpass.io/overrides` annotation.
    pub overrides: Option<String>,
}

impl Owned {
    /// The owned parts of `pod`.
    pub fn of(pod: &Value) -> Self {
        let mut out = Self::default();
        for list in CONTAINER_LISTS {
            for c in pod
                .pointer(&format!("/spec/{list}"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(name) = c.get("name").and_then(Value::as_str)
                    && is_owned_container(name)
                {
                    out.containers.insert(name.to_owned(), (list, c.clone()));
                }
            }
        }
        for v in pod
            .pointer("/spec/volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(name) = v.get("name").and_then(Value::as_str)
                && is_owned_volume(name)
            {
                out.volumes.insert(name.to_owned(), v.clone());
            }
        }
        let text = |pointer: &str| {
            pod.pointer(pointer)
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        };
        out.label = text(&format!("/metadata/labels/{}", escape(SIDECAR_LABEL)));
        out.injected = text(&format!("/metadata/annotations/{}", escape(INJECTED)));
        out.overrides = text(&format!("/metadata/annotations/{}", escape(OVERRIDES)));
        out
    }

    /// Does the pod carry anything the injector owns?
    pub fn is_marked(&self) -> bool {
        !self.containers.is_empty()
            || !self.volumes.is_empty()
            || self.label.is_some()
            || self.injected.is_some()
            || self.overrides.is_some()
    }

    /// The names carried, for messages.
    pub fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        out.extend(self.containers.keys().map(|n| format!("container {n}")));
        out.extend(self.volumes.keys().map(|n| format!("volume {n}")));
        if self.label.is_some() {
            out.push(format!("label {SIDECAR_LABEL}"));
        }
        if self.injected.is_some() {
            out.push(format!("annotation {INJECTED}"));
        }
        if self.overrides.is_some() {
            out.push(format!("annotation {OVERRIDES}"));
        }
        out
    }

    /// The first difference from `expected`, after the API server's
    /// defaults are taken out of both.
    pub fn difference(&self, expected: &Owned) -> Option<String> {
        fn names<V>(m: &BTreeMap<String, V>) -> String {
            m.keys().cloned().collect::<Vec<_>>().join(", ")
        }
        if self.containers.keys().ne(expected.containers.keys()) {
            return Some(format!(
                "containers [{}], the injector adds [{}]",
                names(&self.containers),
                names(&expected.containers)
            ));
        }
        // The names are equal (checked above) and both maps are sorted, so
        // the two walks meet the same name at each step.
        for ((name, (list, actual)), (want_list, want)) in
            self.containers.iter().zip(expected.containers.values())
        {
            if list != want_list {
                return Some(format!(
                    "container {name} is in {list}, the injector puts it in {want_list}"
                ));
            }
            if let Some(at) = first_difference(&normalize(actual), &normalize(want), "") {
                return Some(format!("container {name} differs at {at}"));
            }
        }
        if self.volumes.keys().ne(expected.volumes.keys()) {
            return Some(format!(
                "volumes [{}], the injector adds [{}]",
                names(&self.volumes),
                names(&expected.volumes)
            ));
        }
        for ((name, actual), want) in self.volumes.iter().zip(expected.volumes.values()) {
            if let Some(at) = first_difference(&normalize(actual), &normalize(want), "") {
                return Some(format!("volume {name} differs at {at}"));
            }
        }
        if self.label != expected.label {
            return Some(format!(
                "label {SIDECAR_LABEL} is {:?}, the injector sets {:?}",
                self.label, expected.label
            ));
        }
        let json = |s: &Option<String>| {
            s.as_deref()
                .map(|t| serde_json::from_str::<Value>(t).unwrap_or(Value::String(t.to_owned())))
        };
        if json(&self.injected) != json(&expected.injected) {
            return Some(format!(
                "annotation {INJECTED} is {:?}, the injector writes {:?}",
                self.injected, expected.injected
            ));
        }
        if self.overrides != expected.overrides {
            return Some(format!(
                "annotation {OVERRIDES} is {:?}, the injector writes {:?}",
                self.overrides, expected.overrides
            ));
        }
        None
    }
}

/// The pod without anything the injector owns.
pub fn strip(pod: &Value) -> Value {
    let mut out = pod.clone();
    for list in CONTAINER_LISTS {
        if let Some(Value::Array(items)) = out.pointer_mut(&format!("/spec/{list}")) {
            items.retain(|c| {
                !c.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(is_owned_container)
            });
        }
    }
    if let Some(Value::Array(items)) = out.pointer_mut("/spec/volumes") {
        items.retain(|v| {
            !v.get("name")
                .and_then(Value::as_str)
                .is_some_and(is_owned_volume)
        });
    }
    if let Some(Value::Object(labels)) = out.pointer_mut("/metadata/labels") {
        labels.remove(SIDECAR_LABEL);
    }
    if let Some(Value::Object(annotations)) = out.pointer_mut("/metadata/annotations") {
        annotations.remove(INJECTED);
        annotations.remove(OVERRIDES);
    }
    out
}

/// Is `pod`, which carries names the injector owns, exactly the injector's
/// own injection (for `namespace`, with this config)? If not, why not.
pub fn recognise(
    config: &InjectorConfig,
    namespace: &str,
    pod: &Value,
) -> Result<(), Vec<Problem>> {
    let actual = Owned::of(pod);
    let forged = |why: String| {
        vec![Problem::new(
            "metadata",
            format!(
                "the pod carries names that belong to the injector ({}) but is not what the injector adds: {why}; \
                 remove them and let the injector add hallpass",
                actual.names().join(", ")
            ),
        )]
    };
    let stripped = strip(pod);
    let injection = inject::plan(config, namespace, &stripped)?;
    let expected_pod = injection
        .apply(&stripped)
        .map_err(|e| forged(format!("the injector's patch does not apply ({e})")))?;
    match actual.difference(&Owned::of(&expected_pod)) {
        None => Ok(()),
        Some(why) => Err(forged(why)),
    }
}

/// `~` and `/` escaped for a JSON pointer token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// A container or volume without the fields the API server defaults, and
/// with quantities as numbers.
pub fn normalize(value: &Value) -> Value {
    let mut v = value.clone();
    normalize_in_place(&mut v, "");
    v
}

fn normalize_in_place(value: &mut Value, key: &str) {
    match value {
        Value::Object(map) => {
            strip_defaults(map, key);
            for (k, v) in map.iter_mut() {
                normalize_in_place(v, k);
            }
            map.retain(|_, v| !v.is_null());
        }
        Value::Array(items) => {
            for item in items {
                normalize_in_place(item, key);
            }
        }
        _ => {}
    }
}

/// Defaults the API server writes into what a webhook added.
fn strip_defaults(map: &mut Map<String, Value>, key: &str) {
    let remove_if = |map: &mut Map<String, Value>, field: &str, default: Value| {
        if map.get(field) == Some(&default) {
            map.remove(field);
        }
    };
    remove_if(map, "terminationMessagePath", "/dev/termination-log".into());
    if matches!(
        map.get("imagePullPolicy").and_then(Value::as_str),
        Some("IfNotPresent" | "Always")
    ) {
        map.remove("imagePullPolicy");
    }
    match key {
        "startupProbe" | "livenessProbe" | "readinessProbe" => {
            remove_if(map, "successThreshold", 1.into());
        }
        "httpGet" => remove_if(map, "scheme", "HTTP".into()),
        "fieldRef" => remove_if(map, "apiVersion", "v1".into()),
        "configMap" => remove_if(map, "defaultMode", 420.into()),
        "requests" | "limits" => {
            // A LimitRange may add ephemeral-storage; it only constrains.
            map.remove("ephemeral-storage");
            for v in map.values_mut() {
                if let Some(n) = v.as_str().and_then(quantity) {
                    *v = Value::from(n);
                }
            }
        }
        "emptyDir" => {
            if let Some(n) = map
                .get("sizeLimit")
                .and_then(Value::as_str)
                .and_then(quantity)
            {
                map.insert("sizeLimit".into(), Value::from(n));
            }
        }
        _ => {}
    }
    if key == "ports" {
        remove_if(map, "protocol", "TCP".into());
    }
}

/// A Kubernetes quantity as a number (`500m` = 0.5, `1Mi` = 1048576).
fn quantity(text: &str) -> Option<f64> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0_f64.powi(2),
        "Gi" => 1024.0_f64.powi(3),
        "Ti" => 1024.0_f64.powi(4),
        "Pi" => 1024.0_f64.powi(5),
        "Ei" => 1024.0_f64.powi(6),
        exp => 10f64.powi(exp.strip_prefix(['e', 'E'])?.parse().ok()?),
    };
    Some(number * scale)
}

/// JSON pointer of the first place where `a` and `b` differ.
fn first_difference(a: &Value, b: &Value, at: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => first_difference(p, q, &format!("{at}/{}", escape(k))),
                _ => Some(format!("{at}/{}", escape(k))),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, &format!("{at}/{i}"))),
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64(), y.as_f64());
            let same = match (x, y) {
                (Some(x), Some(y)) => (x - y).abs() <= f64::EPSILON * x.abs().max(y.abs()).max(1.0),
                _ => false,
            };
            (!same).then(|| if at.is_empty() { "/".into() } else { at.into() })
        }
        _ if a == b => None,
        _ => Some(if at.is_empty() { "/".into() } else { at.into() }),
    }
}
