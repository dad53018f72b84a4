//! Stale grants and offboarding candidates (`hallpass report --stale 30d`).
//!
//! A grant (a rule) is stale when its last match is older than the age, or
//! when it never matched and usage has been tracked for longer than the age
//! ([`CallGraph::tracking_since_ms`], carried across restarts in the
//! baseline file). An identity the policy names exactly is an offboarding
//! candidate when it made no call to a destination that allows it for that
//! long. When tracking began less than the age ago (or is unknown), a grant
//! or identity without a match is listed as unknown instead of guessed.

use std::collections::BTreeMap;

use hallpass_policy::SourcePattern;
use hallpass_telemetry::{CallGraph, Escaped};
use serde::Serialize;

use crate::rfc3339;

/// The longest age accepted: ten years.
const MAX_AGE_SECONDS: u64 = 3650 * 86_400;

/// Parse an age such as `30d`, `12h` or `2w` into seconds.
pub fn parse_age(text: &str) -> Result<u64, String> {
    let shown = Escaped(text).to_string();
    let unit_at = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{shown}`: give a unit, e.g. `30d` (h, d or w)"))?;
    let (number, unit) = text.split_at(unit_at);
    let unit_seconds = match unit {
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "`{shown}`: unknown unit, use h, d or w (e.g. `30d`)"
            ));
        }
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{shown}`: expected a whole number before the unit"))?;
    let seconds = n.saturating_mul(unit_seconds);
    if n == 0 || seconds > MAX_AGE_SECONDS {
        return Err(format!("`{shown}`: must be more than 0 and at most 3650d"));
    }
    Ok(seconds)
}

/// What `hallpass report --stale` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleReport {
    /// Where the call graph came from.
    pub sources: Vec<String>,
    /// Snapshot time (the latest of the sources), Unix ms.
    pub generated_at_ms: i64,
    /// The age as given (`30d`).
    pub age: String,
    /// The age in seconds.
    pub age_seconds: u64,
    /// Unix ms usage tracking began (the latest of the sources); 0 = unknown.
    pub tracking_since_ms: i64,
    /// Grants with no match for the age.
    pub stale_grants: Vec<GrantUsage>,
    /// Identities with no call for the age.
    pub stale_identities: Vec<IdentityUsage>,
    /// Grants never matched, tracked for less than the age.
    pub unknown_grants: Vec<GrantUsage>,
    /// Identities never seen, tracked for less than the age (or seen at a
    /// time the source does not say, as with Prometheus).
    pub unknown_identities: Vec<IdentityUsage>,
}

/// A rule and its last match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantUsage {
    /// Destination SPIFFE ID.
    pub destination: String,
    /// Rule name.
    pub rule: String,
    /// Unix seconds, 0 = never since tracking began.
    pub last_match_seconds: i64,
}

/// An identity the policy names and its last call to a destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityUsage {
    /// The caller's SPIFFE ID.
    pub source: String,
    /// The destination that allows it.
    pub destination: String,
    /// The rules that name it.
    pub rules: Vec<String>,
    /// Unix seconds, 0 = no call since tracking began (or no time known).
    pub last_seen_seconds: i64,
}

/// How one grant or identity stands.
enum Standing {
    Used,
    Stale,
    Unknown,
}

/// Classify a last-use time against the cutoff and the tracking start.
fn standing(last_seconds: i64, cutoff: i64, tracked_long_enough: bool) -> Standing {
    if last_seconds > 0 {
        if last_seconds < cutoff {
            Standing::Stale
        } else {
            Standing::Used
        }
    } else if tracked_long_enough {
        Standing::Stale
    } else {
        Standing::Unknown
    }
}

/// The analysis behind `hallpass report --stale <age>`.
pub fn analyze(
    graph: &CallGraph,
    sources: Vec<String>,
    age: &str,
    age_seconds: u64,
) -> StaleReport {
    let now_s = graph.generated_at_ms / 1000;
    let cutoff = now_s.saturating_sub(i64::try_from(age_seconds).unwrap_or(i64::MAX));
    let tracked_long_enough =
        graph.tracking_since_ms > 0 && graph.tracking_since_ms / 1000 <= cutoff;

    // Every declared rule, with its last match (0 when none is reported).
    let mut rules: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for d in &graph.declared {
        rules.entry((&d.destination, &d.rule)).or_insert(0);
    }
    for r in &graph.rules {
        let last = rules.entry((&r.destination, &r.rule)).or_insert(0);
        *last = (*last).max(r.last_match_seconds);
    }
    let mut stale_grants = Vec::new();
    let mut unknown_grants = Vec::new();
    for ((destination, rule), last) in rules {
        let usage = GrantUsage {
            destination: destination.to_owned(),
            rule: rule.to_owned(),
            last_match_seconds: last,
        };
        match standing(last, cutoff, tracked_long_enough) {
            Standing::Used => {}
            Standing::Stale => stale_grants.push(usage),
            Standing::Unknown => unknown_grants.push(usage),
        }
    }

    // Identities the policy names exactly, per destination, with their rules.
    let mut named: BTreeMap<(String, &str), Vec<String>> = BTreeMap::new();
    for d in &graph.declared {
        let Ok(SourcePattern::Exact(id)) = SourcePattern::parse(&d.source) else {
            continue;
        };
        let rules = named.entry((id.to_string(), &d.destination)).or_default();
        if !rules.contains(&d.rule) {
            rules.push(d.rule.clone());
        }
    }
    let canonical = |label: &str| match SourcePattern::parse(label) {
        Ok(SourcePattern::Exact(id)) => Some(id.to_string()),
        _ => None,
    };
    // Last call per (source, destination): persisted usage, then edges.
    let mut last_seen: BTreeMap<(String, &str), i64> = BTreeMap::new();
    // Seen, but at a time the source does not give (Prometheus counters).
    let mut seen_untimed: Vec<(String, &str)> = Vec::new();
    for u in &graph.sources {
        if let Some(id) = canonical(&u.source) {
            let last = last_seen.entry((id, &u.destination)).or_insert(0);
            *last = (*last).max(u.last_seen_seconds);
        }
    }
    for e in graph.observed.iter().filter(|e| e.count > 0) {
        let Some(id) = canonical(&e.source) else {
            continue;
        };
        if e.last_seen_ms > 0 {
            let last = last_seen.entry((id, &e.destination)).or_insert(0);
            *last = (*last).max(e.last_seen_ms / 1000);
        } else {
            seen_untimed.push((id, &e.destination));
        }
    }
    let mut stale_identities = Vec::new();
    let mut unknown_identities = Vec::new();
    for ((source, destination), rules) in named {
        let last = last_seen
            .get(&(source.clone(), destination))
            .copied()
            .unwrap_or(0);
        let untimed = last == 0
            && seen_untimed
                .iter()
                .any(|(s, d)| *s == source && *d == destination);
        let usage = IdentityUsage {
            source,
            destination: destination.to_owned(),
            rules,
            last_seen_seconds: last,
        };
        match standing(last, cutoff, tracked_long_enough) {
            Standing::Used => {}
            Standing::Stale if !untimed => stale_identities.push(usage),
            Standing::Stale | Standing::Unknown => unknown_identities.push(usage),
        }
    }
    StaleReport {
        sources,
        generated_at_ms: graph.generated_at_ms,
        age: age.to_owned(),
        age_seconds,
        tracking_since_ms: graph.tracking_since_ms,
        stale_grants,
        stale_identities,
        unknown_grants,
        unknown_identities,
    }
}

impl StaleReport {
    /// The text form; every string from the call graph is escaped
    /// ([`Escaped`]).
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let tracking = if self.tracking_since_ms > 0 {
            rfc3339(self.tracking_since_ms / 1000)
        } else {
            "an unknown time (a sidecar without persisted usage)".to_owned()
        };
        let _ = writeln!(
            out,
            "hallpass report --stale {}: {} at {}\nusage tracked since {}",
            Escaped(&self.age),
            Escaped(&self.sources.join(", ")),
            rfc3339(self.generated_at_ms / 1000),
            tracking
        );
        let _ = writeln!(
            out,
            "\nGrants unused for {} ({})",
            Escaped(&self.age),
            self.stale_grants.len()
        );
        for g in &self.stale_grants {
            let _ = writeln!(
                out,
                "  {}  {}  {}",
                Escaped(&g.destination),
                Escaped(&g.rule),
                last_text(g.last_match_seconds, "last match", &tracking)
            );
        }
        let _ = writeln!(
            out,
            "\nIdentities with no call for {} (offboarding candidates) ({})",
            Escaped(&self.age),
            self.stale_identities.len()
        );
        for i in &self.stale_identities {
            let _ = writeln!(
                out,
                "  {} -> {}  (rules: {})  {}",
                Escaped(&i.source),
                Escaped(&i.destination),
                Escaped(&i.rules.join(", ")),
                last_text(i.last_seen_seconds, "last call", &tracking)
            );
        }
        let _ = writeln!(
            out,
            "\nUnknown (tracking began {}, less than {} ago) ({})",
            tracking,
            Escaped(&self.age),
            self.unknown_grants.len() + self.unknown_identities.len()
        );
        for g in &self.unknown_grants {
            let _ = writeln!(
                out,
                "  grant     {}  {}  no match yet",
                Escaped(&g.destination),
                Escaped(&g.rule)
            );
        }
        for i in &self.unknown_identities {
            let _ = writeln!(
                out,
                "  identity  {} -> {}  (rules: {})  no timed call yet",
                Escaped(&i.source),
                Escaped(&i.destination),
                Escaped(&i.rules.join(", "))
            );
        }
        out
    }
}

fn last_text(last_seconds: i64, what: &str, tracking: &str) -> String {
    if last_seconds > 0 {
        format!("{what} {}", rfc3339(last_seconds))
    } else {
        format!("none since tracking began {tracking}")
    }
}
