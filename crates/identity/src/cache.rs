//! A bounded cache of verification results.
//!
//! Verifying an X.509-SVID costs tens of microseconds (a signature check per
//! chain link); a sidecar sees the same few certificates over and over. The
//! cache maps a SHA-256 digest of the exact credential bytes Envoy sent to
//! what they proved. An entry is never used past the credential's own expiry,
//! and the whole cache is dropped when the trust bundles change (a new
//! generation), so a removed CA stops vouching at once. Revocation is checked
//! after the cache, on every request, by the policy.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use aws_lc_rs::digest;

/// A digest of credential bytes, the cache key.
pub type CredentialDigest = [u8; 32];

/// Default number of entries: far above the distinct callers of one workload.
pub const DEFAULT_CAPACITY: usize = 4096;

/// Digest credential bytes for the cache. Each part is length-prefixed, so
/// `("ab", "c")` and `("a", "bc")` differ.
pub fn credential_digest(parts: &[&[u8]]) -> CredentialDigest {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in parts {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

#[derive(Debug)]
struct Inner<V> {
    generation: u64,
    map: HashMap<CredentialDigest, (V, i64)>,
}

/// A bounded map from credential digest to a verified value, valid until the
/// value's expiry and only within one trust-bundle generation.
#[derive(Debug)]
pub struct VerificationCache<V> {
    capacity: usize,
    inner: Mutex<Inner<V>>,
}

impl<V: Clone> VerificationCache<V> {
    /// A cache holding at most `capacity` entries (0 disables caching).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner {
                generation: 0,
                map: HashMap::new(),
            }),
        }
    }

    /// The map. A panic elsewhere while the lock was held (a check that
    /// panicked) leaves the map itself consistent, so a poisoned lock is
    /// taken over rather than turning the cache off for good.
    fn lock(&self) -> MutexGuard<'_, Inner<V>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached value for `key`, if present, of `generation`, and not expired at `now`.
    pub fn get(&self, key: &CredentialDigest, generation: u64, now: i64) -> Option<V> {
        let inner = self.lock();
        if inner.generation != generation {
            return None;
        }
        inner
            .map
            .get(key)
            .filter(|(_, expires)| now <= *expires)
            .map(|(v, _)| v.clone())
    }

    /// Remember `value` for `key` until `expires` (inclusive; the same unit as
    /// `now`, Unix milliseconds in hallpass). Returns how
    /// many entries were dropped to stay under the cap.
    pub fn insert(
        &self,
        key: CredentialDigest,
        generation: u64,
        value: V,
        expires: i64,
        now: i64,
    ) -> u64 {
        if self.capacity == 0 {
            return 0;
        }
        let mut inner = self.lock();
        if inner.generation != generation {
            inner.generation = generation;
            inner.map.clear();
        }
        let mut dropped = 0;
        if inner.map.len() >= self.capacity && !inner.map.contains_key(&key) {
            // Drop what has expired; if still full, drop an arbitrary entry.
            let before = inner.map.len();
            inner.map.retain(|_, (_, exp)| *exp >= now);
            if inner.map.len() >= self.capacity
                && let Some(victim) = inner.map.keys().next().copied()
            {
                inner.map.remove(&victim);
            }
            dropped = (before - inner.map.len()) as u64;
        }
        inner.map.insert(key, (value, expires));
        dropped
    }

    /// Current number of entries.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cap.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}
