//! Keeps the policy and the bundle files current.
//!
//! Files are re-read on a short interval and compared by content. Polling the
//! content (rather than inotify) sees every kind of change the same way: an
//! in-place edit, an atomic rename, and a Kubernetes ConfigMap's `..data`
//! symlink swap. A file that fails to parse keeps the last good version.
//!
//! Only settled content is acted on. A file written in more than one step
//! (an editor, `cp`, a shell redirect) can be read half-way, and half a
//! policy can still parse: cut after a rule's `from:`, it loses that rule's
//! `paths`, `require_jwt` and `not_after`. So a change is loaded only once
//! two consecutive reads, one interval apart, give the same bytes. The one
//! exception is a change of the file the path resolves to through symlinks:
//! a ConfigMap update (and any symlink flip) writes the new version
//! completely before it swaps the link, so it is loaded at the first read
//! that sees it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hallpass_identity::{CredentialDigest, X509Bundle, credential_digest, parse_spiffe_bundle};
use hallpass_policy::{CompiledPolicy, OwnerScope, PolicyFile};

use crate::config::PolicySource;
use crate::trust::SourceBundles;
use crate::{LoadedPolicy, Shared};

/// What was read of one file: its bytes, or the read error text.
pub(crate) type Seen = Result<Vec<u8>, String>;

/// A read remembered by the SHA-256 digest of its bytes (or its error): a
/// mesh-wide policy file can be megabytes, and only whether it changed
/// matters once it is loaded.
type Stamp = Result<CredentialDigest, String>;

fn stamp(seen: &Seen) -> Stamp {
    seen.as_ref()
        .map(|bytes| credential_digest(&[bytes]))
        .map_err(Clone::clone)
}

/// One watched file: what is in force, and a change waiting to settle.
#[derive(Debug, Default)]
pub(crate) struct Watched {
    /// The content last acted on (loaded, or reported as unusable).
    current: Option<Stamp>,
    /// Its bytes, kept only for files read again after they settle (the
    /// bundle files, rebuilt together when any one changes).
    content: Option<Seen>,
    keep_content: bool,
    /// Where the path resolved to (through symlinks) when last read.
    target: Option<PathBuf>,
    /// New content read once, waiting for a second, identical read.
    pending: Option<Stamp>,
}

impl Watched {
    /// A watched file whose settled content is kept.
    fn keeping_content() -> Self {
        Self {
            keep_content: true,
            ..Self::default()
        }
    }

    /// Read `path`. Returns the content to act on when it has changed and
    /// settled (or arrived by a symlink swap); `None` when there is nothing
    /// new to act on yet.
    pub(crate) fn poll(&mut self, path: &Path) -> Option<Seen> {
        let target = std::fs::canonicalize(path).ok();
        let now = read(path);
        let stamped = stamp(&now);
        let swapped = self.target.is_some() && target.is_some() && target != self.target;
        self.target = target;
        if self.current.as_ref() == Some(&stamped) {
            self.pending = None;
            return None;
        }
        if swapped || self.pending.as_ref() == Some(&stamped) {
            self.pending = None;
            self.current = Some(stamped);
            if self.keep_content {
                self.content = Some(now.clone());
            }
            return Some(now);
        }
        self.pending = Some(stamped);
        None
    }

    /// A change seen once and not acted on yet.
    pub(crate) fn settling(&self) -> bool {
        self.pending.is_some()
    }
}

/// Reload state across ticks.
#[derive(Debug, Default)]
pub(crate) struct Reloader {
    policy: PolicyWatch,
    /// Per configured trust domain: its X.509 file, its JWT file.
    bundles: Vec<[Watched; 2]>,
    bundles_built: bool,
    /// The break-glass overlay file.
    overlay: crate::break_glass::OverlayWatch,
}

impl Reloader {
    /// Check every file once; reload what changed and settled.
    pub(crate) fn tick(&mut self, shared: &Shared) {
        self.tick_policy(shared);
        self.tick_bundles(shared);
        self.overlay.tick(shared);
    }

    /// Is a change waiting for a second read? (At start-up, the sidecar
    /// reads once more after a short pause instead of a whole interval.)
    pub(crate) fn settling(&self) -> bool {
        self.policy.settling()
            || self.bundles.iter().flatten().any(Watched::settling)
            || self.overlay.settling()
    }

    fn tick_policy(&mut self, shared: &Shared) {
        let Some(files) = self.policy.poll(&shared.settings.policy_sources) else {
            return;
        };
        let shown = self.policy.shown();
        let files = match files {
            Err(e) => {
                tracing::error!(files = %shown, error = %e, "cannot read policy file; {}", after_failure(shared));
                shared.metrics.record_reload(false);
                return;
            }
            Ok(files) => files,
        };
        match compile(&files, shared) {
            (Ok(policy), started) => {
                let only = shared.settings.workload_id.as_ref();
                shared.telemetry.policy_loaded(policy.declared_graph(only));
                let destinations = policy.destinations().count();
                let dropped = policy.destinations_dropped();
                let rules = policy.rule_count();
                let loaded = LoadedPolicy::new(policy, only, &shared.metrics);
                shared
                    .metrics
                    .policy_workload_defined
                    .set(i64::from(loaded.undefined_workload.is_none()));
                if let Some(undefined) = &loaded.undefined_workload {
                    tracing::warn!(
                        files = %shown,
                        workload = %undefined.id,
                        did_you_mean = undefined.did_you_mean.as_ref().map(tracing::field::display),
                        "workload.id {undefined}; fix workload.id, or add its entry to the policy"
                    );
                }
                shared.policy.store(Some(Arc::new(loaded)));
                shared.metrics.record_reload(true);
                let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                tracing::info!(files = %shown, destinations, rules, other_destinations = dropped, elapsed_ms, "policy loaded");
                if only.is_none() && (destinations > LARGE_DESTINATIONS || rules > LARGE_RULES) {
                    tracing::warn!(
                        destinations,
                        rules,
                        "workload.id is not set, so this sidecar keeps the rules of every destination in the policy (it learns its own from each request); set workload.id to keep only its own and save the memory"
                    );
                }
            }
            (Err(e), _) => {
                shared.metrics.record_reload(false);
                tracing::error!(files = %shown, error = %e, "invalid policy; {}", after_failure(shared));
            }
        }
    }

    fn tick_bundles(&mut self, shared: &Shared) {
        let files = &shared.settings.bundles;
        self.bundles.resize_with(files.len(), || {
            [Watched::keeping_content(), Watched::keeping_content()]
        });
        let mut changed = false;
        for (file, watched) in files.iter().zip(&mut self.bundles) {
            for (path, w) in [&file.x509, &file.jwt].into_iter().zip(watched.iter_mut()) {
                if let Some(path) = path {
                    changed |= w.poll(path).is_some();
                }
            }
        }
        if !changed && self.bundles_built {
            return;
        }
        if !changed && self.settling() {
            // Nothing settled yet (start-up): build once there is.
            return;
        }
        self.bundles_built = true;
        let previous = shared.trust.file_bundles();
        let mut next = SourceBundles::default();
        let mut complete = true;
        for (file, [x509, jwt]) in files.iter().zip(&self.bundles) {
            let td = &file.trust_domain;
            if let Some(path) = &file.x509 {
                let loaded = match &x509.content {
                    Some(seen) => seen.clone().and_then(|b| {
                        X509Bundle::from_file_bytes(td, &b).map_err(|e| e.to_string())
                    }),
                    None => Err("not settled yet".to_owned()),
                };
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
            if let Some(path) = &file.jwt {
                let loaded = match &jwt.content {
                    Some(seen) => seen.clone().and_then(|b| parse_spiffe_bundle(&b, true)),
                    None => Err("not settled yet".to_owned()),
                };
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
    }
}

/// What a policy file that cannot be used leaves in force: the last good
/// policy, or, before any loaded (at start), nothing, which `serve` does not
/// exit for: it stays up, not ready, denying, until a valid file appears (a
/// ConfigMap can arrive after the pod starts).
fn after_failure(shared: &Shared) -> &'static str {
    if shared.policy.load().is_some() {
        "keeping the last good policy"
    } else {
        "no policy is loaded yet, so every call is denied and /readyz reports not ready until a valid policy file appears"
    }
}

/// A policy this large, kept whole by a sidecar without `workload.id`, is
/// worth a warning: every sidecar that mounts it pays for every destination.
const LARGE_DESTINATIONS: usize = 100;
/// See [`LARGE_DESTINATIONS`].
const LARGE_RULES: usize = 10_000;

/// Compile the policy files (only this sidecar's destination when
/// `workload.id` is set), with the time it started. One file without an
/// owner scope is read as a single policy file always was.
fn compile(
    files: &[PolicyFile],
    shared: &Shared,
) -> (
    Result<CompiledPolicy, hallpass_policy::PolicyError>,
    std::time::Instant,
) {
    let started = std::time::Instant::now();
    let only = shared.settings.workload_id.as_ref();
    let compiled = match files {
        [one] if one.owner.is_none() => CompiledPolicy::from_yaml_for(&one.text, only),
        _ => CompiledPolicy::from_files_for(files, only),
    };
    (compiled, started)
}

/// The policy sources: each configured path, and for a directory, the
/// files in it. Every file is a [`Watched`]; the set is acted on once
/// every file has settled, and when a file appears or disappears.
#[derive(Debug, Default)]
struct PolicyWatch {
    files: BTreeMap<PathBuf, Watched>,
    /// The files last listed, in order, with their owner scopes.
    listed: Vec<(PathBuf, Option<OwnerScope>)>,
    /// Something changed that the set has not been rebuilt for.
    dirty: bool,
}

impl PolicyWatch {
    /// Read every source. The files to compile, when the set changed and
    /// every file has settled; the read error, when one cannot be read.
    fn poll(&mut self, sources: &[PolicySource]) -> Option<Result<Vec<PolicyFile>, String>> {
        let mut listed = Vec::new();
        for source in sources {
            match hallpass_policy::expand_source(&source.path) {
                Ok(files) => listed.extend(files.into_iter().map(|f| (f, source.owner.clone()))),
                Err(_) => listed.push((source.path.clone(), source.owner.clone())),
            }
        }
        if listed != self.listed {
            self.dirty = true;
            self.files
                .retain(|path, _| listed.iter().any(|(p, _)| p == path));
            self.listed = listed;
        }
        let mut fresh: BTreeMap<PathBuf, Seen> = BTreeMap::new();
        for (path, _) in &self.listed {
            let watched = self.files.entry(path.clone()).or_default();
            if let Some(seen) = watched.poll(path) {
                self.dirty = true;
                fresh.insert(path.clone(), seen);
            }
        }
        if !self.dirty || self.settling() {
            return None;
        }
        if self.listed.is_empty() {
            self.dirty = false;
            return Some(Err(
                "no policy file (`*.yaml` or `*.yml`) in the configured directories".into(),
            ));
        }
        let mut files = Vec::new();
        for (path, owner) in &self.listed {
            // Unchanged files are read again: only their digest is kept
            // (a mesh-wide file can be megabytes). Changed since? Then
            // wait for it to settle.
            let seen = match fresh.remove(path) {
                Some(seen) => seen,
                None => {
                    let again = read(path);
                    let current = self.files.get(path).and_then(|w| w.current.clone());
                    if current.as_ref() != Some(&stamp(&again)) {
                        return None;
                    }
                    again
                }
            };
            match seen {
                Ok(bytes) => files.push(PolicyFile {
                    name: path.display().to_string(),
                    text: String::from_utf8_lossy(&bytes).into_owned(),
                    owner: owner.clone(),
                }),
                Err(e) => {
                    self.dirty = false;
                    return Some(Err(e));
                }
            }
        }
        self.dirty = false;
        Some(Ok(files))
    }

    fn settling(&self) -> bool {
        self.files.values().any(Watched::settling)
    }

    /// The files, for logs.
    fn shown(&self) -> String {
        let names: Vec<String> = self
            .listed
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect();
        names.join(",")
    }
}

fn read(path: &Path) -> Seen {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}
