//! "Did you mean …?": the policy destination a mistyped SPIFFE ID was
//! probably meant to be. One function, so `policy check`, `policy explain`
//! and the sidecar's start-up warning make the same guess.

use std::fmt;

use spiffe::SpiffeId;

use crate::CompiledPolicy;

/// IDs further apart than this many single-character edits are not typos.
const MAX_EDITS: usize = 2;

/// One edit allowed per this many characters of the ID's path: `/a` and
/// `/b` are two names, not a typo.
const CHARS_PER_EDIT: usize = 5;

/// Longer IDs are not compared (the cost is quadratic in the length).
const MAX_LEN: usize = 256;

impl CompiledPolicy {
    /// The destination of this policy file that `id` is a likely typo of:
    /// in the same trust domain, at most two single-character edits away
    /// (one per five characters of its path), and not a sibling that
    /// differs only in its digits (`worker-1`, `worker-2`). Destinations
    /// whose rules were not kept ([`CompiledPolicy::compile_for`]) count.
    /// `None` when `id` is itself a destination or nothing is that close.
    pub fn closest_destination(&self, id: &SpiffeId) -> Option<SpiffeId> {
        if self.defines(id) {
            return None;
        }
        let text = id.to_string();
        let td = id.trust_domain().as_str();
        let allowed = (id.path().len() / CHARS_PER_EDIT).min(MAX_EDITS);
        self.file_destinations()
            .filter(|d| trust_domain_of(d) == Some(td))
            .filter_map(|d| {
                let edits = edit_distance(&text, d)?;
                (edits <= allowed && !only_digits_differ(&text, d)).then_some((edits, d))
            })
            .min_by(|(a, x), (b, y)| a.cmp(b).then_with(|| x.cmp(y)))
            .and_then(|(_, d)| SpiffeId::new(d).ok())
    }

    /// `id` (a sidecar's `workload.id`, or `policy explain`'s destination)
    /// when this policy does not define it, with the destination it was
    /// probably meant to be: every call to it is denied. `None` when the
    /// policy defines it. The one check behind the sidecar's warning, its
    /// `/readyz` answer and metric, and `policy explain`.
    pub fn undefined_destination(&self, id: &SpiffeId) -> Option<UndefinedDestination> {
        (!self.defines(id)).then(|| UndefinedDestination {
            id: id.clone(),
            did_you_mean: self.closest_destination(id),
        })
    }
}

/// A destination the policy does not define, so every call to it is
/// denied ([`CompiledPolicy::undefined_destination`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndefinedDestination {
    /// The ID looked for.
    pub id: SpiffeId,
    /// The policy destination it is probably a typo of.
    pub did_you_mean: Option<SpiffeId>,
}

impl fmt::Display for UndefinedDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is not a destination in the policy, so every call to it is denied",
            self.id
        )?;
        match &self.did_you_mean {
            Some(near) => write!(f, "; did you mean {near}?"),
            None => Ok(()),
        }
    }
}

/// The trust domain of an ID written `spiffe://TD/...`.
fn trust_domain_of(id: &str) -> Option<&str> {
    let rest = id.strip_prefix("spiffe://")?;
    Some(rest.split_once('/').map_or(rest, |(td, _)| td))
}

/// Levenshtein distance, or `None` when either text is too long to compare
/// or the lengths alone rule out a typo.
fn edit_distance(a: &str, b: &str) -> Option<usize> {
    if a.len() > MAX_LEN || b.len() > MAX_LEN || a.len().abs_diff(b.len()) > MAX_EDITS {
        return None;
    }
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let replace = prev
                .get(j)
                .map_or(usize::MAX, |p| p.saturating_add(usize::from(ca != *cb)));
            let delete = prev.get(j + 1).map_or(usize::MAX, |p| p.saturating_add(1));
            let insert = cur.last().map_or(usize::MAX, |p| p.saturating_add(1));
            cur.push(replace.min(delete).min(insert));
        }
        prev = cur;
    }
    prev.last().copied()
}

fn only_digits_differ(a: &str, b: &str) -> bool {
    let strip = |s: &str| {
        s.chars()
            .filter(|c| !c.is_ascii_digit())
            .collect::<String>()
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("notifier", "notifer"), Some(1));
        assert_eq!(edit_distance("abc", "abc"), Some(0));
        assert_eq!(edit_distance("kitten", "sitting"), Some(3));
        assert_eq!(edit_distance("a", "abcd"), None);
        assert!(only_digits_differ("worker-1", "worker-2"));
        assert!(!only_digits_differ("notifer", "notifier"));
    }
}
