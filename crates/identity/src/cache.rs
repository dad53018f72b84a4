//! A bounded cache of verification results.
//!
//! Verifying an X.509-SVID costs tens of microseconds (a signature check per
//! chain link); a sidecar sees the same few certificates over and over. The
//! cache maps a SHA-256 digest of the exact credential bytes Envoy sent to
//! what they proved. An entry is never used past the credential's own expiry,
//! and the whole cache is dropped when the trust bundles change (a new
//! generation), so a removed CA stops vouching at once. Revocation is checked
//! after the cache, on every request, by the policy.
//!
//! When full, the least recently used entry makes room, in constant time
//! whatever the cap: a flood of credentials seen once (a scan) passes
//! through without pushing out the callers that keep calling, and a miss
//! costs the same at a cap of 4,096 or 1,000,000. (Until 2026-12 a full
//! cache scanned every entry for expired ones on each insert and then
//! dropped an arbitrary one, hot callers included.)

use std::collections::hash_map::RandomState;
use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard, PoisonError};

use lru::LruCache;

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
    /// `None` when the capacity is 0 (caching off). SipHash with a random
    /// key, like `HashMap`'s default: the keys come from callers' bytes.
    map: Option<LruCache<CredentialDigest, (V, i64), RandomState>>,
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
        let map =
            NonZeroUsize::new(capacity).map(|cap| LruCache::with_hasher(cap, RandomState::new()));
        Self {
            capacity,
            inner: Mutex::new(Inner { generation: 0, map }),
        }
    }

    /// The map. A panic elsewhere while the lock was held (a check that
    /// panicked) leaves the map itself consistent, so a poisoned lock is
    /// taken over rather than turning the cache off for good.
    fn lock(&self) -> MutexGuard<'_, Inner<V>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached value for `key`, if present, of `generation`, and not
    /// expired at `now`. A hit makes the entry the most recently used; an
    /// expired entry is dropped.
    pub fn get(&self, key: &CredentialDigest, generation: u64, now: i64) -> Option<V> {
        let mut inner = self.lock();
        if inner.generation != generation {
            return None;
        }
        let map = inner.map.as_mut()?;
        match map.get(key) {
            Some((value, expires)) if now <= *expires => Some(value.clone()),
            Some(_) => {
                map.pop(key);
                None
            }
            None => None,
        }
    }

    /// Would [`Self::get`] find `key`? The same test, without copying the
    /// value out: the check handler's probe for whether a check has to
    /// verify anything (a scheduling hint, never a decision).
    pub fn contains(&self, key: &CredentialDigest, generation: u64, now: i64) -> bool {
        let inner = self.lock();
        inner.generation == generation
            && inner
                .map
                .as_ref()
                .and_then(|map| map.peek(key))
                .is_some_and(|(_, expires)| now <= *expires)
    }

    /// Remember `value` for `key` until `expires` (inclusive; the same unit as
    /// `now`, Unix milliseconds in hallpass); a value already expired at
    /// `now` is not kept. Returns how many entries were dropped to stay
    /// under the cap: 0, or 1 (the least recently used).
    pub fn insert(
        &self,
        key: CredentialDigest,
        generation: u64,
        value: V,
        expires: i64,
        now: i64,
    ) -> u64 {
        let mut inner = self.lock();
        if inner.generation != generation {
            inner.generation = generation;
            if let Some(map) = inner.map.as_mut() {
                map.clear();
            }
        }
        let Some(map) = inner.map.as_mut() else {
            return 0;
        };
        if expires < now {
            return 0;
        }
        match map.push(key, (value, expires)) {
            // `push` also hands back the old value of a key already present.
            Some((dropped, _)) if dropped != key => 1,
            _ => 0,
        }
    }

    /// Current number of entries.
    pub fn len(&self) -> usize {
        self.lock().map.as_ref().map_or(0, LruCache::len)
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
