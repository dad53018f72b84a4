//! The observed call graph: edges, the learned baseline, and rate spikes.
//!
//! An edge is `(source, destination, route template, method)`, all bounded
//! labels, so the table's size is bounded by the policy; it also has a hard
//! cap, and observations of edges beyond it are counted, not stored.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use hallpass_vocab::{DataClass, Method};
use serde::{Deserialize, Serialize};

use crate::TelemetryError;

/// One call path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EdgeKey {
    /// Bounded source label.
    pub source: Arc<str>,
    /// Bounded destination label.
    pub destination: Arc<str>,
    /// Route template, or `(unmatched)`.
    pub route: Arc<str>,
    /// Bounded method label.
    pub method: Arc<str>,
}

/// Problems listed when a baseline file is refused (the rest are not).
const MAX_REPORTED_PROBLEMS: usize = 5;
/// Longest route label accepted from a file.
const MAX_ROUTE_LEN: usize = 1024;

impl EdgeKey {
    /// The labels the sidecar writes, and nothing else: `source` a canonical
    /// SPIFFE ID, `other:<trust domain>`, `other:untrusted` or
    /// `unauthenticated`; `destination` a SPIFFE ID, `other` or `unknown`;
    /// `route` a template, a gRPC method, `*` or `(unmatched)`, printable and
    /// bounded; `method` one of the method labels. The error quotes the
    /// offending value escaped, so it is safe to print.
    pub fn check(&self) -> Result<(), String> {
        let bad = |field: &str, value: &str, what: &str| {
            Err(format!("edge {field} {value:?} is not {what}"))
        };
        let source = &*self.source;
        let source_ok = match source.strip_prefix("other:") {
            Some("untrusted") => true,
            Some(td) => is_trust_domain(td),
            None => source == "unauthenticated" || is_spiffe_id(source),
        };
        if !source_ok {
            return bad(
                "source",
                source,
                "a SPIFFE ID, other:<trust domain>, other:untrusted or unauthenticated",
            );
        }
        let destination = &*self.destination;
        if !(destination == "other" || destination == "unknown" || is_spiffe_id(destination)) {
            return bad("destination", destination, "a SPIFFE ID, other or unknown");
        }
        let route = &*self.route;
        let route_ok = route.len() <= MAX_ROUTE_LEN
            && (route == crate::UNMATCHED_ROUTE || route == "*" || route.contains('/'))
            && route
                .chars()
                .all(|c| !c.is_whitespace() && !crate::is_unsafe_char(c));
        if !route_ok {
            return bad(
                "route",
                route,
                "a route template or gRPC method (printable, at most 1024 bytes)",
            );
        }
        let method = &*self.method;
        if Method::parse(method).as_str() != method {
            return bad(
                "method",
                method,
                "an HTTP method label (GET, POST, … or OTHER)",
            );
        }
        Ok(())
    }
}

fn is_spiffe_id(text: &str) -> bool {
    hallpass_identity::parse_spiffe_id_strict(text).is_ok()
}

fn is_trust_domain(text: &str) -> bool {
    hallpass_identity::TrustDomain::new(text).is_ok_and(|td| td.to_string() == text)
}

/// What is known of one edge.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeStats {
    /// Requests seen.
    pub count: u64,
    /// Of which allowed.
    pub allowed: u64,
    /// Of which denied (enforced or audit).
    pub denied: u64,
    /// Unix ms of the first request.
    pub first_seen_ms: i64,
    /// Unix ms of the last request.
    pub last_seen_ms: i64,
    /// Not in the baseline when first seen (after learning).
    pub new: bool,
    /// The last rate check found a spike.
    pub spiking: bool,
    /// Exponentially weighted moving average of requests per second.
    pub ewma_rps: f64,
    #[serde(skip)]
    window: u64,
    /// Rate windows closed since the edge appeared. The first one is
    /// partial (the edge appeared somewhere inside it) and is discarded; the
    /// second, the first full one, primes the moving average.
    #[serde(skip)]
    windows_closed: u32,
    /// The data class of the edge's last call: the class a rate spike on
    /// the edge is counted under (the call graph shows it on the edge).
    #[serde(skip)]
    pub data_class: DataClass,
}

/// Rate-spike detector settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateSpikeSettings {
    /// A window's rate above `factor` × the moving average is a spike.
    pub factor: f64,
    /// Windows with fewer requests never count as spikes (quiet edges).
    pub min_requests: u64,
    /// Weight of the newest window in the moving average (0..1].
    pub alpha: f64,
}

impl Default for RateSpikeSettings {
    fn default() -> Self {
        Self {
            factor: 5.0,
            min_requests: 50,
            alpha: 0.3,
        }
    }
}

/// The learned set of normal edges, persisted as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    /// File format version (1).
    pub version: u32,
    /// Unix ms at which the learning window that produced this file ends;
    /// absent for a finished (or hand-made) baseline. A sidecar that restarts
    /// inside the window goes on learning until then instead of treating a
    /// half-learned baseline as complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning_until_ms: Option<i64>,
    /// Edges considered normal.
    pub edges: BTreeSet<EdgeKey>,
    /// Unix ms at which the sidecar that writes this file began tracking
    /// rule and identity usage; kept across restarts so that "never
    /// matched" can mean "not for N days" (absent in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_since_ms: Option<i64>,
    /// Last match of each rule that matched (absent in older files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<crate::RuleUsage>,
    /// Last call of each identity the policy names, per destination.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<crate::SourceUsage>,
}

/// Longest rule name accepted from a baseline file.
const MAX_RULE_LEN: usize = 256;
/// Most usage entries (rules plus sources) accepted from a baseline file.
pub const MAX_USAGE_ENTRIES: usize = 100_000;

/// Why a persisted usage entry is refused, escaped for printing.
fn check_usage(baseline: &Baseline) -> Vec<String> {
    let mut problems = Vec::new();
    if baseline.rules.len() + baseline.sources.len() > MAX_USAGE_ENTRIES {
        problems.push(format!("more than {MAX_USAGE_ENTRIES} usage entries"));
    }
    if baseline.tracking_since_ms.is_some_and(|t| t < 0) {
        problems.push("negative tracking_since_ms".into());
    }
    for r in &baseline.rules {
        if !is_spiffe_id(&r.destination) {
            problems.push(format!(
                "rule usage destination {:?} is not a SPIFFE ID",
                crate::escape_for_terminal(&r.destination)
            ));
        }
        if r.rule.is_empty()
            || r.rule.len() > MAX_RULE_LEN
            || r.rule.chars().any(crate::is_unsafe_char)
        {
            problems.push(format!(
                "rule name {:?} is empty, too long or not printable",
                crate::escape_for_terminal(&r.rule)
            ));
        }
        if r.last_match_seconds < 0 {
            problems.push("negative last_match_seconds".into());
        }
    }
    for u in &baseline.sources {
        if !is_spiffe_id(&u.source) || !is_spiffe_id(&u.destination) {
            problems.push(format!(
                "identity usage {:?} -> {:?} is not a pair of SPIFFE IDs",
                crate::escape_for_terminal(&u.source),
                crate::escape_for_terminal(&u.destination)
            ));
        }
        if u.last_seen_seconds < 0 {
            problems.push("negative last_seen_seconds".into());
        }
    }
    problems
}

impl Default for Baseline {
    /// An empty version-1 baseline (not version 0: it is saved as is).
    fn default() -> Self {
        Self::new()
    }
}

impl Baseline {
    /// An empty version-1 baseline.
    pub fn new() -> Self {
        Self {
            version: 1,
            learning_until_ms: None,
            edges: BTreeSet::new(),
            tracking_since_ms: None,
            rules: Vec::new(),
            sources: Vec::new(),
        }
    }

    /// Read a baseline file. Every edge is checked: the file may have been
    /// written by a compromised workload, and its fields end up in terminals
    /// and in the sidecar's decisions about what is new.
    pub fn load(path: &Path) -> Result<Self, TelemetryError> {
        let text = std::fs::read(path)
            .map_err(|e| TelemetryError::Baseline(format!("{}: {e}", path.display())))?;
        let baseline: Baseline = serde_json::from_slice(&text)
            .map_err(|e| TelemetryError::Baseline(format!("{}: {e}", path.display())))?;
        if baseline.version != 1 {
            return Err(TelemetryError::Baseline(format!(
                "{}: unsupported version {}",
                path.display(),
                baseline.version
            )));
        }
        let problems: Vec<String> = baseline
            .edges
            .iter()
            .filter_map(|e| e.check().err())
            .chain(check_usage(&baseline))
            .take(MAX_REPORTED_PROBLEMS)
            .collect();
        if !problems.is_empty() {
            return Err(TelemetryError::Baseline(format!(
                "{}: {}",
                path.display(),
                problems.join("; ")
            )));
        }
        Ok(baseline)
    }

    /// Write atomically through an exclusively created temporary file in the
    /// same directory ([`crate::write_atomically`]): a crash never leaves a
    /// half-written baseline, and a symlink planted in the directory is
    /// never followed.
    pub fn save(&self, path: &Path) -> Result<(), TelemetryError> {
        let err = |e: std::io::Error| TelemetryError::Baseline(format!("{}: {e}", path.display()));
        let json =
            serde_json::to_vec_pretty(self).map_err(|e| TelemetryError::Baseline(e.to_string()))?;
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        crate::file::write_atomically(path, &json).map_err(err)
    }

    /// Add every edge of `other`. The result is a finished baseline: a
    /// merge is an operator's decision, so no learning window carries over.
    ///
    /// Usage merges conservatively: the latest last match or call of each
    /// rule or identity, and the latest tracking start (a rule is only known
    /// unused as long as every file has tracked it).
    pub fn merge(&mut self, other: &Baseline) {
        self.edges.extend(other.edges.iter().cloned());
        self.learning_until_ms = None;
        self.tracking_since_ms = match (self.tracking_since_ms, other.tracking_since_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        let mut rules: BTreeMap<(String, String), i64> = BTreeMap::new();
        for r in self.rules.iter().chain(&other.rules) {
            let last = rules
                .entry((r.destination.clone(), r.rule.clone()))
                .or_insert(0);
            *last = (*last).max(r.last_match_seconds);
        }
        self.rules = rules
            .into_iter()
            .map(
                |((destination, rule), last_match_seconds)| crate::RuleUsage {
                    destination,
                    rule,
                    last_match_seconds,
                },
            )
            .collect();
        let mut sources: BTreeMap<(String, String), i64> = BTreeMap::new();
        for u in self.sources.iter().chain(&other.sources) {
            let last = sources
                .entry((u.source.clone(), u.destination.clone()))
                .or_insert(0);
            *last = (*last).max(u.last_seen_seconds);
        }
        self.sources = sources
            .into_iter()
            .map(
                |((source, destination), last_seen_seconds)| crate::SourceUsage {
                    source,
                    destination,
                    last_seen_seconds,
                },
            )
            .collect();
    }
}

/// What recording one observation found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observation {
    /// The edge was seen for the first time and is not in the baseline.
    pub new_edge: bool,
    /// The table (or, while learning, the baseline) was full and the edge
    /// was not tracked (or not learned).
    pub dropped: bool,
}

/// The edge table with its baseline.
#[derive(Debug)]
pub struct EdgeTable {
    cap: usize,
    edges: HashMap<EdgeKey, EdgeStats>,
    baseline: Baseline,
    learning_until_ms: Option<i64>,
    baseline_dirty: bool,
}

impl EdgeTable {
    /// A table of at most `cap` edges. While `now < learning_until_ms`, edges
    /// that are allowed (or audit-denied) join the baseline instead of being
    /// new; the baseline learns at most `cap` edges too.
    pub fn new(cap: usize, mut baseline: Baseline, learning_until_ms: Option<i64>) -> Self {
        baseline.learning_until_ms = learning_until_ms;
        Self {
            cap,
            edges: HashMap::new(),
            baseline,
            learning_until_ms,
            baseline_dirty: false,
        }
    }

    /// Still learning at `now_ms`?
    pub fn learning(&self, now_ms: i64) -> bool {
        self.learning_until_ms.is_some_and(|until| now_ms < until)
    }

    /// Record one request on `key`.
    pub fn observe(
        &mut self,
        key: &EdgeKey,
        allowed_traffic: bool,
        denied: bool,
        now_ms: i64,
    ) -> Observation {
        let learning = self.learning(now_ms);
        let mut unlearned = false;
        if learning && allowed_traffic && !self.baseline.edges.contains(key) {
            if self.baseline.edges.len() < self.cap {
                self.baseline.edges.insert(key.clone());
                self.baseline_dirty = true;
            } else {
                unlearned = true;
            }
        }
        let stats = match self.edges.get_mut(key) {
            Some(s) => s,
            None => {
                if self.edges.len() >= self.cap {
                    return Observation {
                        new_edge: false,
                        dropped: true,
                    };
                }
                let new = !learning && !self.baseline.edges.contains(key);
                self.edges.entry(key.clone()).or_insert(EdgeStats {
                    count: 0,
                    allowed: 0,
                    denied: 0,
                    first_seen_ms: now_ms,
                    last_seen_ms: now_ms,
                    new,
                    spiking: false,
                    ewma_rps: 0.0,
                    window: 0,
                    windows_closed: 0,
                    data_class: DataClass::None,
                })
            }
        };
        let first = stats.count == 0;
        stats.count += 1;
        stats.window += 1;
        stats.last_seen_ms = now_ms;
        if denied {
            stats.denied += 1;
        } else {
            stats.allowed += 1;
        }
        Observation {
            new_edge: first && stats.new,
            dropped: unlearned,
        }
    }

    /// Close a rate window of `seconds`: update every edge's moving average and
    /// return the edges whose window rate was a spike. An edge's first window
    /// is partial and only discarded; its first full window primes the
    /// average; only windows after that can be spikes.
    pub fn close_window(&mut self, seconds: f64, settings: &RateSpikeSettings) -> Vec<EdgeKey> {
        let mut spikes = Vec::new();
        if seconds <= 0.0 {
            return spikes;
        }
        for (key, stats) in &mut self.edges {
            let rate = stats.window as f64 / seconds;
            let full = stats.windows_closed >= 1;
            let primed = stats.windows_closed >= 2;
            stats.spiking = primed
                && stats.window >= settings.min_requests
                && rate > settings.factor * stats.ewma_rps.max(f64::MIN_POSITIVE);
            if stats.spiking {
                spikes.push(key.clone());
            }
            if primed {
                stats.ewma_rps = settings.alpha * rate + (1.0 - settings.alpha) * stats.ewma_rps;
            } else if full {
                stats.ewma_rps = rate;
            }
            stats.windows_closed = stats.windows_closed.saturating_add(1);
            stats.window = 0;
        }
        spikes
    }

    /// Remember the data class of the edge's last call (for its rate
    /// spikes); nothing when the edge is not tracked.
    pub fn note_data_class(&mut self, key: &EdgeKey, class: DataClass) {
        if let Some(stats) = self.edges.get_mut(key) {
            stats.data_class = class;
        }
    }

    /// The data class of the edge's last call ([`DataClass::None`] when
    /// untracked).
    pub fn data_class(&self, key: &EdgeKey) -> DataClass {
        self.edges
            .get(key)
            .map_or(DataClass::None, |s| s.data_class)
    }

    /// Every tracked edge.
    pub fn iter(&self) -> impl Iterator<Item = (&EdgeKey, &EdgeStats)> {
        self.edges.iter()
    }

    /// The baseline, to record usage in before it is saved.
    pub(crate) fn baseline_mut(&mut self) -> &mut Baseline {
        &mut self.baseline
    }

    /// Number of tracked edges.
    pub fn len(&self) -> usize {
        self.edges.len()
    }

    /// True when no edge is tracked.
    pub fn is_empty(&self) -> bool {
        self.edges.is_empty()
    }

    /// The baseline.
    pub fn baseline(&self) -> &Baseline {
        &self.baseline
    }

    /// Has the baseline changed since the last [`take_dirty`](Self::take_dirty)?
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.baseline_dirty)
    }
}
