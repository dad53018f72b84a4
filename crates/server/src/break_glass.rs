//! Break-glass grants in the sidecar: the overlay file (reloaded like the
//! policy, "last good" on a bad file), the last step before default deny,
//! and the `hallpass_break_glass_active{grant}` gauge.
//!
//! A grant is consulted only when the policy denied `no_matching_rule` or
//! `grant_expired` for a caller that is proven, in a listed trust domain and
//! not revoked: never over an identity failure, an ambiguous path, a replayed
//! JWT-SVID, or a revocation. Only grants whose `to` is this call's
//! destination, in force at the call's time (the same millisecond clock the
//! rules' `not_after` uses), apply.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use hallpass_identity::SpiffeId;
use hallpass_policy::{BreakGlassGrant, BreakGlassGrants, CompiledPolicy, Method};

use crate::Shared;
use crate::reload::Watched;

/// The overlay file's watch, and the grant gauges last set.
#[derive(Debug, Default)]
pub(crate) struct OverlayWatch {
    watched: Watched,
    /// Grant name → expiry (Unix s) last exported on the gauge.
    exported: BTreeMap<Arc<str>, i64>,
}

impl OverlayWatch {
    /// Reload the overlay when it changed and settled; refresh the gauge
    /// (which also drops grants that expired since the last tick).
    pub(crate) fn tick(&mut self, shared: &Shared) {
        if let Some(path) = &shared.settings.break_glass_file {
            self.reload(path, shared);
        }
        self.export(shared);
    }

    /// A change waiting for its second read.
    pub(crate) fn settling(&self) -> bool {
        self.watched.settling()
    }

    fn reload(&mut self, path: &Path, shared: &Shared) {
        let Some(seen) = self.watched.poll(path) else {
            return;
        };
        let reloads = &shared.metrics.controls.break_glass_overlay_reloads;
        // No file is no grants: the usual state, never a reason to be unready.
        let loaded = match seen {
            Err(_) if !path.exists() => Ok(BreakGlassGrants::empty()),
            Err(e) => Err(e),
            Ok(bytes) => BreakGlassGrants::from_overlay_yaml(
                &String::from_utf8_lossy(&bytes),
                shared.settings.break_glass_max_ms,
            )
            .map_err(|e| e.to_string()),
        };
        match loaded {
            Ok(grants) => {
                let open: Vec<String> = grants
                    .grants()
                    .iter()
                    .map(|g| {
                        format!(
                            "{} (ticket {}, until {})",
                            g.name,
                            g.ticket,
                            g.expires_text()
                        )
                    })
                    .collect();
                tracing::warn!(file = %path.display(), grants = open.len(), open = ?open, "break-glass overlay loaded");
                shared.break_glass.store(Arc::new(grants));
                reloads.with_label_values(&["success"]).inc();
            }
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "invalid break-glass overlay; keeping the last good one");
                reloads.with_label_values(&["failure"]).inc();
            }
        }
    }

    /// Set `hallpass_break_glass_active{grant}` to each in-force grant's
    /// expiry, for grants of this sidecar's destination; remove the rest.
    fn export(&mut self, shared: &Shared) {
        let now_ms = crate::check::unix_now_ms();
        let overlay = shared.break_glass.load_full();
        let policy = shared.policy.load_full();
        let from_policy = policy.as_ref().map(|p| p.policy.break_glass());
        let only = shared.settings.workload_id.as_ref();
        let mut active: BTreeMap<Arc<str>, i64> = BTreeMap::new();
        for grant in overlay
            .grants()
            .iter()
            .chain(from_policy.into_iter().flat_map(|g| g.grants()))
        {
            if grant.in_force(now_ms) && only.is_none_or(|id| *id == grant.to) {
                active
                    .entry(grant.name.clone())
                    .or_insert(grant.expires_ms.div_euclid(1000));
            }
        }
        let gauge = &shared.metrics.controls.break_glass_active;
        for name in self.exported.keys() {
            if !active.contains_key(name) {
                // Absent is fine: nothing to remove.
                let _ = gauge.remove_label_values(&[name]);
            }
        }
        for (name, expires) in &active {
            gauge.with_label_values(&[name]).set(*expires);
        }
        self.exported = active;
    }
}

impl Shared {
    /// The emergency grant (overlay first, then the policy's own) that lets
    /// `source` make this call to `destination` at `now_ms`, with its route
    /// label.
    pub(crate) fn break_glass_grant(
        &self,
        policy: &CompiledPolicy,
        destination: &SpiffeId,
        source: &SpiffeId,
        method: Method,
        path: &str,
        now_ms: i64,
    ) -> Option<(Arc<BreakGlassGrant>, Arc<str>)> {
        self.break_glass
            .load()
            .find(destination, source, method, path, now_ms)
            .or_else(|| {
                policy
                    .break_glass()
                    .find(destination, source, method, path, now_ms)
            })
    }
}
