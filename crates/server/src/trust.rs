//! The trust bundles in force, assembled from their sources.
//!
//! Two sources feed one [`TrustBundleSet`]: static bundle files (re-read by
//! the reloader) and the SPIFFE Workload API (streamed). For a trust domain
//! that both provide, the file wins: it is what the operator pinned. Every
//! change rebuilds the whole set and swaps it in; readers never lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::ArcSwapOption;
use hallpass_identity::{JwtAuthorities, TrustBundleSet, TrustDomain, X509Bundle};
use hallpass_telemetry::Metrics;

/// Bundles from one source, by trust domain.
#[derive(Debug, Default, Clone)]
pub(crate) struct SourceBundles {
    pub(crate) x509: HashMap<TrustDomain, X509Bundle>,
    pub(crate) jwt: HashMap<TrustDomain, JwtAuthorities>,
}

#[derive(Debug, Default)]
struct Sources {
    files: SourceBundles,
    api: SourceBundles,
}

/// The current trust bundles and where they came from.
#[derive(Debug, Default)]
pub(crate) struct TrustStore {
    sources: Mutex<Sources>,
    current: ArcSwapOption<TrustBundleSet>,
    /// Every configured bundle file loaded on its last read.
    pub(crate) files_complete: AtomicBool,
    /// The Workload API has delivered X.509 bundles at least once.
    pub(crate) api_x509_seen: AtomicBool,
}

impl TrustStore {
    /// The set in force, if any source has delivered.
    pub(crate) fn current(&self) -> Option<Arc<TrustBundleSet>> {
        self.current.load_full()
    }

    /// Replace what the bundle files provide.
    pub(crate) fn set_files(&self, files: SourceBundles, complete: bool, metrics: &Metrics) {
        self.files_complete.store(complete, Ordering::Relaxed);
        self.update(metrics, |s| s.files = files);
    }

    /// Replace the Workload API's X.509 bundles. A trust domain missing from
    /// an update is dropped, as the Workload API specification requires.
    pub(crate) fn set_api_x509(&self, x509: HashMap<TrustDomain, X509Bundle>, metrics: &Metrics) {
        self.api_x509_seen.store(true, Ordering::Relaxed);
        self.update(metrics, |s| s.api.x509 = x509);
    }

    /// Replace the Workload API's JWT bundles.
    pub(crate) fn set_api_jwt(&self, jwt: HashMap<TrustDomain, JwtAuthorities>, metrics: &Metrics) {
        self.update(metrics, |s| s.api.jwt = jwt);
    }

    /// What the files provided last, to keep a good bundle when a re-read fails.
    pub(crate) fn file_bundles(&self) -> SourceBundles {
        self.sources().files.clone()
    }

    /// The sources. A poisoned lock is taken over: refusing it would freeze
    /// the trust bundles at their last version for the life of the process.
    fn sources(&self) -> MutexGuard<'_, Sources> {
        self.sources.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, metrics: &Metrics, change: impl FnOnce(&mut Sources)) {
        let mut sources = self.sources();
        change(&mut sources);
        let mut set = TrustBundleSet::new();
        for layer in [&sources.api, &sources.files] {
            for (td, bundle) in &layer.x509 {
                set.insert(td.clone(), bundle.clone());
            }
            for (td, keys) in &layer.jwt {
                set.insert_jwt(td.clone(), keys.clone());
            }
        }
        metrics.reset_bundle_expiry();
        for (td, bundle) in set.iter() {
            metrics.set_bundle_expiry(td.as_str(), bundle.earliest_expiry());
        }
        self.current.store(Some(Arc::new(set)));
    }
}
