//! The validating webhook (`/validate`): pods that carry names the injector
//! owns, on CREATE and UPDATE (`pods` and `pods/ephemeralcontainers`).
//!
//! It runs after every mutating webhook, so it sees the pod as it will be
//! stored:
//! - **CREATE**: a pod with hallpass's names must be exactly the injector's
//!   own injection ([`owned::recognise`]), in any namespace. A pod that set
//!   `hallpass.io/sidecar` itself (to be selected by a PodMonitor, an
//!   AuthorizationPolicy or a ClusterSPIFFEID as if protected) is refused.
//! - **UPDATE**: pods are mostly immutable, but labels, annotations, a
//!   container's image and ephemeral containers are not. What the injector
//!   owns can be neither added, changed nor removed after creation (so the
//!   sidecar's image cannot be swapped and the `hallpass.io/sidecar` label
//!   that selects the pod's AuthorizationPolicy cannot be dropped), and an
//!   ephemeral container added to a protected pod gets the same reach-in
//!   checks as the pod's own containers, and may not target hallpass.
//!
//! Pods that carry none of these names never reach this webhook (its
//! `matchConditions`), so an injector outage does not block them.

use k8s_openapi::api::core::v1::{EphemeralContainer, PodSpec};
use serde_json::Value;

use crate::annotations::{INJECTED, OVERRIDES, SIDECAR_LABEL};
use crate::config::{InjectorConfig, Mode};
use crate::error::Problem;
use crate::owned::{self, Owned};
use crate::posture::{self, Override, Verdict};

/// What the API server is doing to the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new pod.
    Create,
    /// A change to an existing pod (any subresource registered).
    Update,
}

/// Check one pod change; `Ok` holds the overrides it uses (an ephemeral
/// container allowed by the chart), `Err` every reason to refuse it.
pub fn check(
    config: &InjectorConfig,
    namespace: &str,
    change: Change,
    old: Option<&Value>,
    new: &Value,
) -> Result<Vec<Override>, Vec<Problem>> {
    match change {
        Change::Create => {
            if Owned::of(new).is_marked() {
                owned::recognise(config, namespace, new).map(|()| Vec::new())
            } else {
                Ok(Vec::new())
            }
        }
        Change::Update => {
            let before = old.map(Owned::of).unwrap_or_default();
            let after = Owned::of(new);
            let mut problems = Vec::new();
            let mut verdict = Verdict::default();
            let changed = changes(&before, &after);
            if !changed.is_empty() {
                problems.push(Problem::new(
                    "metadata",
                    format!(
                        "{} changed; hallpass's containers and volumes, the label {SIDECAR_LABEL} and the \
                         annotations {INJECTED} and {OVERRIDES} are set by the injector when the pod is created \
                         and cannot be added, changed or removed afterwards",
                        changed.join(", ")
                    ),
                ));
            }
            if before.is_marked() {
                let mode = match before.label.as_deref() {
                    Some("standalone") => Mode::Standalone,
                    Some("istio") => Mode::Istio,
                    _ => config.default_mode,
                };
                let spec = |pod: Option<&Value>| -> PodSpec {
                    pod.and_then(|p| p.get("spec"))
                        .and_then(|s| serde_json::from_value(s.clone()).ok())
                        .unwrap_or_default()
                };
                let (old_spec, new_spec) = (spec(old), spec(Some(new)));
                let existing: Vec<&str> = old_spec
                    .ephemeral_containers
                    .iter()
                    .flatten()
                    .map(|c| c.name.as_str())
                    .collect();
                let added: Vec<&EphemeralContainer> = new_spec
                    .ephemeral_containers
                    .iter()
                    .flatten()
                    .filter(|c| !existing.contains(&c.name.as_str()))
                    .collect();
                posture::check_ephemeral(config, namespace, mode, &added, &mut verdict);
                problems.append(&mut verdict.problems);
            }
            if problems.is_empty() {
                Ok(verdict.applied)
            } else {
                Err(problems)
            }
        }
    }
}

/// What differs between the owned parts before and after an update.
fn changes(before: &Owned, after: &Owned) -> Vec<String> {
    let mut out = Vec::new();
    let names: std::collections::BTreeSet<&String> = before
        .containers
        .keys()
        .chain(after.containers.keys())
        .collect();
    for name in names {
        match (before.containers.get(name), after.containers.get(name)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(_), Some(_)) => out.push(format!("container {name}")),
            (Some(_), None) => out.push(format!("container {name} (removed)")),
            (None, _) => out.push(format!("container {name} (added)")),
        }
    }
    let names: std::collections::BTreeSet<&String> =
        before.volumes.keys().chain(after.volumes.keys()).collect();
    for name in names {
        if before.volumes.get(name) != after.volumes.get(name) {
            out.push(format!("volume {name}"));
        }
    }
    for (what, a, b) in [
        (
            format!("label {SIDECAR_LABEL}"),
            &before.label,
            &after.label,
        ),
        (
            format!("annotation {INJECTED}"),
            &before.injected,
            &after.injected,
        ),
        (
            format!("annotation {OVERRIDES}"),
            &before.overrides,
            &after.overrides,
        ),
    ] {
        if a != b {
            out.push(what);
        }
    }
    out
}
