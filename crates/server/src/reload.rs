//! Keeps the policy and the trust bundles current.
//!
//! Files are re-read on a short interval and compared by content. Polling the
//! content (rather than inotify) sees every kind of change the same way: an
//! in-place edit, an atomic rename, and a Kubernetes ConfigMap's `..data`
//! symlink swap. A file that fails to parse keeps the last good version.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use hallpass_identity::{TrustBundleSet, X509Bundle};
use hallpass_policy::CompiledPolicy;

use crate::Shared;

/// What was last seen of one file: its bytes, or the read error text.
type Seen = Option<Result<Vec<u8>, String>>;

/// Reload state across ticks.
#[derive(Debug, Default)]
pub(crate) struct Reloader {
    policy_seen: Seen,
    bundles_seen: Vec<Seen>,
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
            Ok(bytes) => {
                let text = String::from_utf8_lossy(bytes);
                match CompiledPolicy::from_yaml(&text) {
                    Ok(policy) => {
                        shared.policy.store(Some(Arc::new(policy)));
                        shared.metrics.record_reload(true);
                        tracing::info!(file = %path.display(), "policy loaded");
                    }
                    Err(e) => {
                        shared.metrics.record_reload(false);
                        tracing::error!(file = %path.display(), error = %e, "invalid policy; keeping the last good policy");
                    }
                }
            }
        }
        self.policy_seen = Some(now);
    }

    fn tick_bundles(&mut self, shared: &Shared) {
        let files = &shared.settings.bundles;
        let now: Vec<Seen> = files.iter().map(|(_, p)| Some(read(p))).collect();
        if now == self.bundles_seen {
            return;
        }
        let previous = shared.bundles.load_full();
        let mut set = TrustBundleSet::new();
        let mut complete = true;
        for ((td, path), seen) in files.iter().zip(&now) {
            let loaded = match seen {
                Some(Ok(bytes)) => X509Bundle::from_pem(td, bytes).map_err(|e| e.to_string()),
                Some(Err(e)) => Err(e.clone()),
                None => Err("not read".into()),
            };
            match loaded {
                Ok(bundle) => {
                    shared
                        .metrics
                        .set_bundle_expiry(td.as_str(), bundle.earliest_expiry());
                    set.insert(td.clone(), bundle);
                }
                Err(e) => {
                    complete = false;
                    let kept = previous.as_ref().and_then(|p| p.x509(td)).cloned();
                    tracing::error!(trust_domain = %td, file = %path.display(), error = %e, kept_last_good = kept.is_some(), "cannot load X.509 bundle");
                    if let Some(bundle) = kept {
                        set.insert(td.clone(), bundle);
                    }
                }
            }
        }
        shared.bundles.store(Some(Arc::new(set)));
        shared.bundles_complete.store(complete, Ordering::Relaxed);
        self.bundles_seen = now;
    }
}

fn read(path: &PathBuf) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}
