//! The JWT-SVID replay cache: `jti`s seen on rules with `jwt_replay: deny`.
//!
//! Each entry is keyed by a digest of (trust domain, `jti`), so its size
//! does not depend on the token, and lives until the token's `exp`: after
//! that the token itself is rejected as expired, so forgetting the `jti` is
//! safe. The cache is capped: when it is full of unexpired entries a new
//! `jti` cannot be remembered, and the call is denied (fail closed) and
//! counted, rather than let through unprotected.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Mutex;

use hallpass_identity::CredentialDigest;

/// Default cap (`identity.jwt.replay_cache_max_entries`).
pub const DEFAULT_REPLAY_CACHE_ENTRIES: usize = 100_000;

/// What one presentation of a single-use token found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// First use: remembered until the token expires.
    Fresh,
    /// Seen before within the token's lifetime.
    Replayed,
    /// The cache is full of unexpired entries: not remembered, so denied.
    Full,
}

#[derive(Debug, Default)]
struct Inner {
    /// Key → expiry (Unix ms, exclusive).
    seen: HashMap<CredentialDigest, i64>,
    /// (expiry, key), soonest first: expired entries leave in O(log n).
    by_expiry: BinaryHeap<Reverse<(i64, CredentialDigest)>>,
}

/// A bounded single-use set of JWT-SVID `jti`s.
#[derive(Debug)]
pub struct ReplayCache {
    inner: Mutex<Inner>,
    cap: usize,
}

impl ReplayCache {
    /// A cache holding at most `cap` unexpired `jti`s.
    pub fn new(cap: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            cap,
        }
    }

    /// Record one use of `key`, valid until `expires_ms` (exclusive), at
    /// `now_ms`; returns what it found and the entries now held.
    pub fn consume(&self, key: CredentialDigest, expires_ms: i64, now_ms: i64) -> (Replay, usize) {
        // A poisoned lock means a panic mid-update: the set may be
        // incomplete, so say full (deny) rather than trust it.
        let Ok(mut inner) = self.inner.lock() else {
            return (Replay::Full, 0);
        };
        let inner = &mut *inner;
        while let Some(Reverse((expiry, k))) = inner.by_expiry.peek().copied() {
            if expiry > now_ms {
                break;
            }
            inner.by_expiry.pop();
            // Only if this heap entry is the live one for the key.
            if inner.seen.get(&k) == Some(&expiry) {
                inner.seen.remove(&k);
            }
        }
        if inner.seen.get(&key).is_some_and(|&e| e > now_ms) {
            return (Replay::Replayed, inner.seen.len());
        }
        if inner.seen.len() >= self.cap {
            return (Replay::Full, inner.seen.len());
        }
        inner.seen.insert(key, expires_ms);
        inner.by_expiry.push(Reverse((expires_ms, key)));
        (Replay::Fresh, inner.seen.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> CredentialDigest {
        [n; 32]
    }

    #[test]
    fn a_second_use_within_the_lifetime_is_a_replay() {
        let cache = ReplayCache::new(10);
        assert_eq!(cache.consume(key(1), 2_000, 1_000).0, Replay::Fresh);
        assert_eq!(cache.consume(key(1), 2_000, 1_500).0, Replay::Replayed);
        // Another jti is independent.
        assert_eq!(cache.consume(key(2), 2_000, 1_500).0, Replay::Fresh);
    }

    #[test]
    fn an_entry_leaves_when_its_token_expires() {
        let cache = ReplayCache::new(10);
        assert_eq!(cache.consume(key(1), 2_000, 1_000), (Replay::Fresh, 1));
        // At exp the token itself is rejected; the entry is gone.
        assert_eq!(cache.consume(key(2), 5_000, 2_000), (Replay::Fresh, 1));
        assert_eq!(cache.consume(key(1), 3_000, 2_000).0, Replay::Fresh);
    }

    #[test]
    fn a_full_cache_fails_closed_until_entries_expire() {
        let cache = ReplayCache::new(2);
        assert_eq!(cache.consume(key(1), 2_000, 0).0, Replay::Fresh);
        assert_eq!(cache.consume(key(2), 3_000, 0).0, Replay::Fresh);
        assert_eq!(cache.consume(key(3), 3_000, 10), (Replay::Full, 2));
        // A seen jti is still a replay, not "full".
        assert_eq!(cache.consume(key(1), 2_000, 10).0, Replay::Replayed);
        // Once one expires there is room again.
        assert_eq!(cache.consume(key(3), 4_000, 2_000), (Replay::Fresh, 2));
    }
}
