//! Keeps the policy and the bundle files current.
//!
//! Files are re-read on a short interval and compared by content. Polling the
//! content (rather than inotify) sees every kind of change the same way: an
//! in-place edit, an atomic rename, and a Kubernetes ConfigMap's `..data`
//! symlink swap. A file that fails to parse keeps the last good version.

use std::path::Path;
use std::sync::Arc;

use hallpass_identity::SpiffeId;
use hallpass_identity::{X509Bundle, parse_spiffe_bundle};
use hallpass_policy::CompiledPolicy;
use hallpass_telemetry::{DeclaredEdge, DeclaredGraph};

use crate::trust::SourceBundles;
use crate::{LoadedPolicy, Shared};

/// What was last seen of one file: its bytes, or the read error text.
type Seen = Result<Vec<u8>, String>;

/// Reload state across ticks.
#[derive(Debug, Default)]
pub(crate) struct Reloader {
    policy_seen: Option<Seen>,
    bundles_seen: Option<Vec<Option<Seen>>>,
}

impl Reloader {
    /// Check every file once; reload what changed.
    pub(crate) fn tick(&mut self, shared: &Shared) {
        self.tick_policy(shared);
        self.tick_bundles(shared);
    }

    fn tick_policy(&mut self, shared: &Shared) {
        let path = &shared.settings.policy_file;
        let now = read(path);
        if self.policy_seen.as_ref() == Some(&now) {
            return;
        }
        match &now {
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "cannot read policy file; keeping the last good policy");
                shared.metrics.record_reload(false);
            }
            Ok(bytes) => match CompiledPolicy::from_yaml(&String::from_utf8_lossy(bytes)) {
                Ok(policy) => {
                    shared.telemetry.policy_loaded(declared_graph(
                        &policy,
                        shared.settings.workload_id.as_ref(),
                    ));
                    shared
                        .policy
                        .store(Some(Arc::new(LoadedPolicy::new(policy, &shared.metrics))));
                    shared.metrics.record_reload(true);
                    tracing::info!(file = %path.display(), "policy loaded");
                }
                Err(e) => {
                    shared.metrics.record_reload(false);
                    tracing::error!(file = %path.display(), error = %e, "invalid policy; keeping the last good policy");
                }
            },
        }
        self.policy_seen = Some(now);
    }

    fn tick_bundles(&mut self, shared: &Shared) {
        let files = &shared.settings.bundles;
        let now: Vec<Option<Seen>> = files
            .iter()
            .flat_map(|f| [f.x509.as_deref().map(read), f.jwt.as_deref().map(read)])
            .collect();
        if self.bundles_seen.as_ref() == Some(&now) {
            return;
        }
        let previous = shared.trust.file_bundles();
        let mut next = SourceBundles::default();
        let mut complete = true;
        for (file, seen) in files.iter().zip(now.chunks(2)) {
            let td = &file.trust_domain;
            if let (Some(path), Some(seen)) = (&file.x509, &seen[0]) {
                let loaded = seen
                    .clone()
                    .and_then(|b| X509Bundle::from_file_bytes(td, &b).map_err(|e| e.to_string()));
                match loaded {
                    Ok(bundle) => {
                        next.x509.insert(td.clone(), bundle);
                    }
                    Err(e) => {
                        complete = false;
                        let kept = previous.x509.get(td).cloned();
                        tracing::error!(trust_domain = %td, file = %path.display(), error = %e, kept_last_good = kept.is_some(), "cannot load X.509 bundle");
                        if let Some(bundle) = kept {
                            next.x509.insert(td.clone(), bundle);
                        }
                    }
                }
            }
            if let (Some(path), Some(seen)) = (&file.jwt, &seen[1]) {
                let loaded = seen.clone().and_then(|b| parse_spiffe_bundle(&b, true));
                match loaded {
                    Ok(parsed) if !parsed.jwt_authorities.is_empty() => {
                        next.jwt.insert(td.clone(), parsed.jwt_authorities);
                    }
                    other => {
                        complete = false;
                        let error = other.err().unwrap_or_else(|| "no jwt-svid keys".into());
                        let kept = previous.jwt.get(td).cloned();
                        tracing::error!(trust_domain = %td, file = %path.display(), error = %error, kept_last_good = kept.is_some(), "cannot load JWT bundle");
                        if let Some(keys) = kept {
                            next.jwt.insert(td.clone(), keys);
                        }
                    }
                }
            }
        }
        shared.trust.set_files(next, complete, &shared.metrics);
        self.bundles_seen = Some(now);
    }
}

fn read(path: &Path) -> Seen {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The rules of a policy as call-graph edges: those of destination `only`
/// when given (a sidecar with `workload.id`), else every destination's.
pub fn declared_graph(policy: &CompiledPolicy, only: Option<&SpiffeId>) -> DeclaredGraph {
    let mut edges = Vec::new();
    for destination in policy.destinations() {
        if only.is_some_and(|id| id != destination) {
            continue;
        }
        let Some(workload) = policy.workload(destination) else {
            continue;
        };
        for rule in &workload.rules {
            let mut routes: Vec<String> = Vec::new();
            routes.extend(
                rule.paths
                    .iter()
                    .flatten()
                    .map(|(_, label)| label.to_string()),
            );
            routes.extend(
                rule.grpc
                    .iter()
                    .flatten()
                    .map(|(_, label)| label.to_string()),
            );
            for source in &rule.from {
                edges.push(DeclaredEdge {
                    source: source.to_string(),
                    destination: destination.to_string(),
                    rule: rule.name.to_string(),
                    routes: routes.clone(),
                    methods: rule.methods.clone().unwrap_or_default(),
                });
            }
        }
    }
    DeclaredGraph { edges }
}
