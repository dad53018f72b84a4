//! `hallpass policy replay`: re-decide recorded calls under a candidate
//! policy and say what would change (design §3, issue 15 item 3).
//!
//! Only the policy step is replayed: the recorded caller is taken as proven
//! (its credentials were checked when the call was made), and the candidate
//! decides with what the audit record holds: the caller's SPIFFE ID, the
//! destination, the method, the credential kinds (a JWT-SVID or not), the
//! time, and the route template the recorded policy matched (or the raw
//! path, when the sidecar ran with `telemetry.log_raw_paths`).
//!
//! A template is not a path. A candidate rule whose template covers the
//! recorded one (the same template, a `{param}` for a literal, a longer
//! `/**`) matches every path the recorded call can have had; one that
//! cannot share a path with it never matches; anything in between, and a
//! denied call with no template at all, *needs the concrete path*: such a
//! call is reported as undetermined, never guessed. So are calls whose fate
//! depends on what the record does not hold: request headers (a rule's
//! `headers`, except for the rule that allowed the call in the record,
//! whose conditions held then) and the certificate serial (a `revoked`
//! record under a candidate that no longer revokes the ID).
//!
//! The log is read as a stream, one line at a time, never held in memory;
//! what is kept is bounded: at most [`MAX_GROUPS`] groups of changes
//! holding at most [`MAX_GROUP_BYTES`] of text (more are counted in
//! [`Replay::groups_dropped`]) and at most [`MAX_CACHED`] cached decisions
//! of keys up to [`MAX_KEY`] bytes (a busy sidecar's log repeats the same few hundred
//! calls; a decision that depends on the time is never cached).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Read as _};
use std::sync::Arc;

use hallpass_identity::SpiffeId;
use hallpass_policy::{
    CompiledPolicy, CompiledRule, CompiledWorkload, DenyReason, GrpcPattern, Method, Mode,
    RouteTemplate, parse_path, parse_rfc3339_ms,
};
use serde::{Deserialize, Serialize};

/// Groups of changes kept; further groups are counted, not kept.
pub const MAX_GROUPS: usize = 10_000;
/// Decisions cached by what decides them (all but the time).
pub const MAX_CACHED: usize = 100_000;
/// Bytes of text the kept groups may hold between them: a hostile log of
/// long routes and rule names cannot make [`MAX_GROUPS`] groups huge.
pub const MAX_GROUP_BYTES: usize = 16 * 1024 * 1024;
/// Longest cache key (the fields that decide, joined): longer records are
/// decided but not cached, so the cache stays within about 100 MiB.
pub const MAX_KEY: usize = 1024;
/// Longest audit line read; a longer one is skipped as malformed (a
/// record is a few hundred bytes, a raw path at most a few KiB).
pub const MAX_LINE: usize = 64 * 1024;

/// What a recorded call would become under the candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Allowed in the record, denied by the candidate (fails the gate).
    NewlyDenied,
    /// Denied (or `audit_deny`) in the record, allowed by the candidate.
    NewlyAllowed,
    /// The record does not hold what the candidate's decision needs.
    Undetermined,
}

impl Change {
    /// The heading in text output.
    pub const fn title(self) -> &'static str {
        match self {
            Self::NewlyDenied => "Newly denied",
            Self::NewlyAllowed => "Newly allowed",
            Self::Undetermined => "Undetermined",
        }
    }
}

/// What a candidate's decision needs that the audit record does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Needs {
    /// The record has a route template (or nothing, on a deny), and a
    /// candidate rule's routes match some but not all paths it stands for.
    ConcretePath,
    /// A candidate rule requires request headers the record does not hold.
    Headers,
    /// The record was denied `revoked`, and the candidate no longer revokes
    /// the ID: it may have been the certificate's serial.
    CertificateSerial,
}

impl Needs {
    /// What is missing, for people.
    pub const fn text(self) -> &'static str {
        match self {
            Self::ConcretePath => {
                "needs the concrete path (the audit log has route templates only; \
                 telemetry.log_raw_paths records paths where URLs carry no PHI)"
            }
            Self::Headers => "needs the request headers (a candidate rule requires headers)",
            Self::CertificateSerial => {
                "needs the certificate serial (revoked in the record; the candidate no longer revokes the ID)"
            }
        }
    }
}

/// Why a line was not replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    /// Not an audit record (a log line interleaved on standard output).
    NotARecord,
    /// An audit record that does not parse, or a line over [`MAX_LINE`].
    Malformed,
    /// Denied before the policy step (no proven identity, a bad credential).
    DecidedBeforePolicy,
    /// Decided by what the log does not hold and a candidate policy does not
    /// change: an allow by a break-glass grant (the overlay file, not the
    /// policy under review) or a `jwt_replayed` deny (the sidecar's memory of
    /// used `jti`s).
    DecidedOutsidePolicy,
    /// The destination was not named by the recorded policy (`other`).
    UnnamedDestination,
    /// Older than `--since`.
    BeforeSince,
}

impl Skip {
    /// For people.
    pub const fn text(self) -> &'static str {
        match self {
            Self::NotARecord => "not an audit record",
            Self::Malformed => "malformed audit record",
            Self::DecidedBeforePolicy => "decided before the policy step (identity)",
            Self::DecidedOutsidePolicy => {
                "decided outside the policy (a break-glass grant, a replayed JWT-SVID)"
            }
            Self::UnnamedDestination => "destination not named by the recorded policy",
            Self::BeforeSince => "before --since",
        }
    }
}

/// The candidate's verdict on one recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Allow { rule: Arc<str>, mode: Mode },
    Deny { reason: DenyReason, mode: Mode },
    Unknown(Needs),
}

/// One group of changed calls: same change, edge, method, route, recorded
/// rule and candidate outcome.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct GroupKey {
    /// What changes.
    pub change: Change,
    /// The caller (SPIFFE ID).
    pub source: String,
    /// The destination (SPIFFE ID).
    pub destination: String,
    /// The method.
    pub method: String,
    /// The recorded route template (empty on a recorded deny).
    pub route: String,
    /// The recorded decision: `allow`, `deny` or `audit_deny`.
    pub recorded_decision: String,
    /// The rule that allowed the call in the record, or the recorded deny
    /// reason.
    pub recorded: String,
    /// The candidate's decision: `allow`, `deny`, `audit_deny`; empty when
    /// undetermined.
    pub candidate_decision: String,
    /// The candidate rule that allows, or the candidate's deny reason, or
    /// what is missing (undetermined).
    pub candidate: String,
    /// What the candidate's decision needs, when undetermined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needs: Option<Needs>,
}

/// Counts and first/last time of one group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GroupStats {
    /// Calls.
    pub count: u64,
    /// The first record's time (as recorded, RFC 3339).
    pub first_seen: String,
    /// The last record's time.
    pub last_seen: String,
}

/// One group, for output.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// What it is.
    #[serde(flatten)]
    pub key: GroupKey,
    /// How often and when.
    #[serde(flatten)]
    pub stats: GroupStats,
}

/// A replay in progress: feed it audit logs, then read the summary.
#[derive(Debug)]
pub struct Replay<'p> {
    policy: &'p CompiledPolicy,
    since_ms: Option<i64>,
    /// Lines read (blank lines excluded).
    pub lines: u64,
    /// Records re-decided.
    pub replayed: u64,
    /// Re-decided with the recorded outcome (allow stays allow, deny stays deny).
    pub unchanged: u64,
    /// Calls per change.
    pub changed: BTreeMap<Change, u64>,
    /// Lines not replayed, per cause.
    pub skipped: BTreeMap<Skip, u64>,
    /// Changed calls whose group was not kept ([`MAX_GROUPS`],
    /// [`MAX_GROUP_BYTES`]).
    pub groups_dropped: u64,
    groups: HashMap<GroupKey, GroupStats>,
    group_bytes: usize,
    cache: HashMap<String, Verdict>,
    key: String,
}

/// One audit record, as `crates/telemetry/src/audit.rs` writes it; only the
/// fields a replay reads.
#[derive(Debug, Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    time: Cow<'a, str>,
    #[serde(borrow, rename = "decision_id")]
    _decision_id: Cow<'a, str>,
    #[serde(borrow)]
    decision: Cow<'a, str>,
    #[serde(borrow)]
    reason: Cow<'a, str>,
    #[serde(borrow)]
    source: Cow<'a, str>,
    #[serde(borrow)]
    destination: Cow<'a, str>,
    #[serde(borrow)]
    method: Cow<'a, str>,
    #[serde(borrow, default)]
    route: Cow<'a, str>,
    #[serde(borrow, default)]
    rule: Cow<'a, str>,
    #[serde(borrow, default)]
    credentials: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    path: Option<Cow<'a, str>>,
}

/// Deny reasons decided before the policy step: a candidate policy cannot
/// change them.
fn before_policy(reason: &str) -> bool {
    matches!(
        reason,
        "no_identity"
            | "invalid_svid"
            | "expired_credential"
            | "invalid_jwt"
            | "jwt_audience_mismatch"
            | "identity_mismatch"
            | "internal_error"
    )
}

/// What the record says about the request's path.
enum Shape<'a> {
    /// The concrete path's segments.
    Path(Vec<Cow<'a, str>>),
    /// A route template: every path it matches is possible.
    Template(RouteTemplate),
    /// Nothing is known: any path.
    Any,
}

/// How a candidate route relates to what is known of the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fit {
    Never,
    Maybe,
    Always,
}

impl<'p> Replay<'p> {
    /// A replay under `policy`, of records from `since_ms` on (Unix ms).
    pub fn new(policy: &'p CompiledPolicy, since_ms: Option<i64>) -> Self {
        Self {
            policy,
            since_ms,
            lines: 0,
            replayed: 0,
            unchanged: 0,
            changed: BTreeMap::new(),
            skipped: BTreeMap::new(),
            groups_dropped: 0,
            groups: HashMap::new(),
            group_bytes: 0,
            cache: HashMap::new(),
            key: String::new(),
        }
    }

    /// Replay every record of one audit log. Reads line by line; invalid
    /// UTF-8 and over-long lines are skipped as malformed.
    pub fn read(&mut self, mut reader: impl BufRead) -> std::io::Result<()> {
        let mut line = Vec::with_capacity(1024);
        loop {
            line.clear();
            let n = std::io::Read::by_ref(&mut reader)
                .take(u64::try_from(MAX_LINE).unwrap_or(u64::MAX) + 1)
                .read_until(b'\n', &mut line)?;
            if n == 0 {
                return Ok(());
            }
            if line.last() != Some(&b'\n') && n > MAX_LINE {
                // Skip the rest of the over-long line.
                self.lines += 1;
                self.skip(Skip::Malformed);
                let mut rest = Vec::new();
                reader.read_until(b'\n', &mut rest)?;
                continue;
            }
            self.line(&line);
        }
    }

    /// Replay one line.
    fn line(&mut self, line: &[u8]) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.lines += 1;
        let record = match serde_json::from_slice::<Record<'_>>(line) {
            Ok(r) => r,
            Err(_) => {
                let looks_like_one = line.windows(13).any(|w| w == b"\"decision_id\"");
                self.skip(if looks_like_one {
                    Skip::Malformed
                } else {
                    Skip::NotARecord
                });
                return;
            }
        };
        let Ok(time_ms) = parse_rfc3339_ms(&record.time) else {
            self.skip(Skip::Malformed);
            return;
        };
        if self.since_ms.is_some_and(|since| time_ms < since) {
            self.skip(Skip::BeforeSince);
            return;
        }
        if before_policy(&record.reason) {
            self.skip(Skip::DecidedBeforePolicy);
            return;
        }
        if matches!(record.reason.as_ref(), "break_glass" | "jwt_replayed") {
            self.skip(Skip::DecidedOutsidePolicy);
            return;
        }
        let recorded_allow = match record.decision.as_ref() {
            "allow" => true,
            "deny" | "audit_deny" => false,
            _ => {
                self.skip(Skip::Malformed);
                return;
            }
        };
        let verdict = self.cached_verdict(&record, time_ms);
        let Some(verdict) = verdict else {
            return;
        };
        self.replayed += 1;
        let change = match (&verdict, recorded_allow) {
            (Verdict::Allow { .. }, true) | (Verdict::Deny { .. }, false) => {
                self.unchanged += 1;
                return;
            }
            (Verdict::Deny { .. }, true) => Change::NewlyDenied,
            (Verdict::Allow { .. }, false) => Change::NewlyAllowed,
            (Verdict::Unknown(_), _) => Change::Undetermined,
        };
        *self.changed.entry(change).or_default() += 1;
        let (candidate_decision, candidate, needs) = match verdict {
            Verdict::Allow { rule, .. } => ("allow".to_owned(), rule.to_string(), None),
            Verdict::Deny { reason, mode } => {
                let label = if mode == Mode::Audit {
                    "audit_deny"
                } else {
                    "deny"
                };
                (label.to_owned(), reason.code().to_owned(), None)
            }
            Verdict::Unknown(needs) => (String::new(), String::new(), Some(needs)),
        };
        let key = GroupKey {
            change,
            source: record.source.into_owned(),
            destination: record.destination.into_owned(),
            method: record.method.into_owned(),
            route: record.route.into_owned(),
            recorded_decision: record.decision.into_owned(),
            recorded: if recorded_allow {
                record.rule.into_owned()
            } else {
                record.reason.into_owned()
            },
            candidate_decision,
            candidate,
            needs,
        };
        let time = record.time;
        let bytes = key.text_len();
        let full = self.groups.len() >= MAX_GROUPS || self.group_bytes + bytes > MAX_GROUP_BYTES;
        match self.groups.get_mut(&key) {
            Some(stats) => stats.add(&time),
            None if full => self.groups_dropped += 1,
            None => {
                let mut stats = GroupStats::default();
                stats.add(&time);
                self.group_bytes += bytes;
                self.groups.insert(key, stats);
            }
        }
    }

    fn skip(&mut self, why: Skip) {
        *self.skipped.entry(why).or_default() += 1;
    }

    /// The verdict, from the cache when it does not depend on the time;
    /// `None` (counted as skipped) for a record the candidate cannot judge.
    fn cached_verdict(&mut self, record: &Record<'_>, time_ms: i64) -> Option<Verdict> {
        let jwt = record.credentials.iter().any(|c| c == "jwt");
        if record.path.is_some() {
            // Raw paths carry identifiers: nearly every one is new, so
            // caching by them would only fill the cache.
            return self.verdict(record, jwt, time_ms).map(|(v, _)| v);
        }
        let key = &mut self.key;
        key.clear();
        for part in [
            record.source.as_ref(),
            record.destination.as_ref(),
            record.method.as_ref(),
            record.route.as_ref(),
            record.rule.as_ref(),
            record.reason.as_ref(),
        ] {
            key.push_str(part);
            key.push('\0');
        }
        key.push(if jwt { 'j' } else { '-' });
        if let Some(hit) = self.cache.get(self.key.as_str()) {
            return Some(hit.clone());
        }
        let (verdict, timeless) = self.verdict(record, jwt, time_ms)?;
        if timeless && self.cache.len() < MAX_CACHED && self.key.len() <= MAX_KEY {
            self.cache.insert(self.key.clone(), verdict.clone());
        }
        Some(verdict)
    }

    /// The candidate's verdict, and whether it holds whatever the time;
    /// `None` (counted as skipped) when the record names no SPIFFE IDs.
    fn verdict(&mut self, record: &Record<'_>, jwt: bool, time_ms: i64) -> Option<(Verdict, bool)> {
        let Ok(destination) = SpiffeId::new(&record.destination) else {
            self.skip(Skip::UnnamedDestination);
            return None;
        };
        let Ok(source) = SpiffeId::new(&record.source) else {
            self.skip(Skip::DecidedBeforePolicy);
            return None;
        };
        Some(decide(
            self.policy,
            &destination,
            &source,
            record,
            jwt,
            time_ms,
        ))
    }

    /// Every group kept, newly denied first, then by count (most first).
    pub fn groups(&self) -> Vec<Group> {
        let mut out: Vec<Group> = self
            .groups
            .iter()
            .map(|(key, stats)| Group {
                key: key.clone(),
                stats: stats.clone(),
            })
            .collect();
        out.sort_by(|a, b| {
            a.key
                .change
                .cmp(&b.key.change)
                .then(b.stats.count.cmp(&a.stats.count))
                .then_with(|| a.key.cmp(&b.key))
        });
        out
    }

    /// Calls the candidate would newly deny (the gate fails on any).
    pub fn newly_denied(&self) -> u64 {
        self.changed.get(&Change::NewlyDenied).copied().unwrap_or(0)
    }

    /// The summary as JSON (`--format json`).
    pub fn to_json(&self, candidate: &str) -> serde_json::Value {
        let count = |c: Change| self.changed.get(&c).copied().unwrap_or(0);
        let skipped: BTreeMap<String, u64> = self
            .skipped
            .iter()
            .map(|(k, v)| {
                let name = serde_json::to_value(k)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                (name, *v)
            })
            .collect();
        serde_json::json!({
            "candidate": candidate,
            "lines": self.lines,
            "replayed": self.replayed,
            "unchanged": self.unchanged,
            "newly_denied": count(Change::NewlyDenied),
            "newly_allowed": count(Change::NewlyAllowed),
            "undetermined": count(Change::Undetermined),
            "skipped": skipped,
            "groups_dropped": self.groups_dropped,
            "changes": self.groups(),
        })
    }

    /// The summary for people. Everything that came from the log is escaped.
    pub fn to_text(&self, candidate: &str) -> String {
        use hallpass_telemetry::Escaped;
        use std::fmt::Write as _;
        let count = |c: Change| self.changed.get(&c).copied().unwrap_or(0);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "replayed {} of {} audit records under {candidate}: {} unchanged, {} newly denied, \
             {} newly allowed, {} undetermined",
            self.replayed,
            self.lines,
            self.unchanged,
            count(Change::NewlyDenied),
            count(Change::NewlyAllowed),
            count(Change::Undetermined),
        );
        for (why, n) in &self.skipped {
            let _ = writeln!(out, "  skipped {n}: {}", why.text());
        }
        let groups = self.groups();
        let mut heading = None;
        for g in &groups {
            if heading != Some(g.key.change) {
                heading = Some(g.key.change);
                let _ = writeln!(
                    out,
                    "\n{} ({} calls):",
                    g.key.change.title(),
                    count(g.key.change)
                );
            }
            let k = &g.key;
            let route = if k.route.is_empty() { "-" } else { &k.route };
            let was = if k.recorded_decision == "allow" {
                format!("allowed by rule {}", Escaped(&k.recorded))
            } else {
                format!("{} {}", Escaped(&k.recorded_decision), Escaped(&k.recorded))
            };
            let now = match k.needs {
                Some(needs) => needs.text().to_owned(),
                None if k.candidate_decision == "allow" => {
                    format!("allowed by rule {}", k.candidate)
                }
                None => format!("{} {}", k.candidate_decision, k.candidate),
            };
            let _ = writeln!(
                out,
                "  {} -> {}  {} {}\n    was {was}; now {now}\n    {} calls, first {}, last {}",
                Escaped(&k.source),
                Escaped(&k.destination),
                Escaped(&k.method),
                Escaped(route),
                g.stats.count,
                Escaped(&g.stats.first_seen),
                Escaped(&g.stats.last_seen),
            );
        }
        if self.groups_dropped > 0 {
            let _ = writeln!(
                out,
                "\n{} changed calls in groups beyond the first {} are counted above but not listed",
                self.groups_dropped,
                self.groups.len()
            );
        }
        out
    }
}

impl GroupKey {
    /// The text it holds, in bytes (with the first and last times).
    fn text_len(&self) -> usize {
        [
            &self.source,
            &self.destination,
            &self.method,
            &self.route,
            &self.recorded_decision,
            &self.recorded,
            &self.candidate_decision,
            &self.candidate,
        ]
        .iter()
        .map(|s| s.len())
        .sum::<usize>()
            + 64
    }
}

impl GroupStats {
    fn add(&mut self, time: &str) {
        self.count += 1;
        // Audit times are fixed-width RFC 3339 in UTC: text order is time order.
        if self.first_seen.is_empty() || time < self.first_seen.as_str() {
            self.first_seen = time.to_owned();
        }
        if time > self.last_seen.as_str() {
            self.last_seen = time.to_owned();
        }
    }
}

/// The candidate's verdict on one record, and whether it holds whatever the
/// time (no time-bound rule took part).
fn decide(
    policy: &CompiledPolicy,
    destination: &SpiffeId,
    source: &SpiffeId,
    record: &Record<'_>,
    jwt: bool,
    time_ms: i64,
) -> (Verdict, bool) {
    let Some(workload) = policy.workload(destination) else {
        return (
            Verdict::Deny {
                reason: DenyReason::NoMatchingRule,
                mode: Mode::Enforce,
            },
            true,
        );
    };
    let mode = workload.mode;
    let deny = |reason| (Verdict::Deny { reason, mode }, true);
    // The checks before the rules, in the evaluator's order.
    if !policy.trusts(source.trust_domain()) {
        return deny(DenyReason::UntrustedTrustDomain);
    }
    if policy.is_revoked_id(source) {
        return deny(DenyReason::Revoked);
    }
    if record.reason == "revoked" {
        return (Verdict::Unknown(Needs::CertificateSerial), true);
    }
    let shape = match record.path.as_deref() {
        Some(raw) => match parse_path(raw) {
            Ok(p) => Shape::Path(
                p.segments()
                    .iter()
                    .map(|s| Cow::Owned(s.to_string()))
                    .collect(),
            ),
            Err(_) => return deny(DenyReason::AmbiguousPath),
        },
        // The path check does not depend on the policy.
        None if record.reason == "ambiguous_path" => return deny(DenyReason::AmbiguousPath),
        None => shape_of_route(&record.route),
    };
    let method = Method::parse(&record.method);
    decide_rules(workload, source, &shape, method, &record.rule, jwt, time_ms)
}

/// What a recorded route label says about the path: a template without
/// parameters is the path itself.
fn shape_of_route(route: &str) -> Shape<'static> {
    if route.is_empty() || route == "*" {
        return Shape::Any;
    }
    if route.starts_with('/') {
        return match RouteTemplate::parse(route) {
            Ok(t) if !t.any_depth() && t.segments().all(|s| s.is_some()) => Shape::Path(
                t.segments()
                    .flatten()
                    .map(|s| Cow::Owned(s.to_owned()))
                    .collect(),
            ),
            Ok(t) => Shape::Template(t),
            Err(_) => Shape::Any,
        };
    }
    match GrpcPattern::parse(route) {
        Ok(g) => match g.method() {
            Some(m) => Shape::Path(vec![
                Cow::Owned(g.service().to_owned()),
                Cow::Owned(m.to_owned()),
            ]),
            None => grpc_template(&g).map_or(Shape::Any, Shape::Template),
        },
        Err(_) => Shape::Any,
    }
}

/// The paths a gRPC pattern matches, as a route template.
fn grpc_template(g: &GrpcPattern) -> Option<RouteTemplate> {
    RouteTemplate::parse(&format!("/{}/{}", g.service(), g.method().unwrap_or("{m}"))).ok()
}

/// Can two templates match one path?
fn overlaps(a: &RouteTemplate, b: &RouteTemplate) -> bool {
    let (la, lb) = (a.segments().len(), b.segments().len());
    let len_ok = match (a.any_depth(), b.any_depth()) {
        (false, false) => la == lb,
        (true, false) => lb > la,
        (false, true) => la > lb,
        (true, true) => true,
    };
    len_ok
        && a.segments().zip(b.segments()).all(|pair| match pair {
            (Some(x), Some(y)) => x == y,
            _ => true,
        })
}

fn fit_template(t: &RouteTemplate, shape: &Shape<'_>) -> Fit {
    match shape {
        Shape::Path(segments) => {
            if t.matches(segments.as_slice()) {
                Fit::Always
            } else {
                Fit::Never
            }
        }
        Shape::Template(recorded) if t.covers(recorded) => Fit::Always,
        Shape::Template(recorded) if overlaps(t, recorded) => Fit::Maybe,
        Shape::Template(_) => Fit::Never,
        Shape::Any => Fit::Maybe,
    }
}

fn fit_grpc(g: &GrpcPattern, shape: &Shape<'_>) -> Fit {
    match shape {
        Shape::Path(segments) => {
            if g.matches(segments.as_slice()) {
                Fit::Always
            } else {
                Fit::Never
            }
        }
        Shape::Template(_) => {
            grpc_template(g).map_or(Fit::Maybe, |t| match fit_template(&t, shape) {
                // The pattern's template covering the recorded one means the
                // recorded one covers at most the pattern's calls: a fit only
                // when they are equal.
                Fit::Always => Fit::Always,
                other => other.min(Fit::Maybe),
            })
        }
        Shape::Any => Fit::Maybe,
    }
}

/// The best fit of a rule's routes for this method, and its route label.
fn rule_fit(rule: &CompiledRule, shape: &Shape<'_>, method: Method) -> Fit {
    let http_ok = rule.method_ok(method);
    if rule.paths.is_none() && rule.grpc.is_none() {
        return if http_ok { Fit::Always } else { Fit::Never };
    }
    let mut best = Fit::Never;
    if http_ok {
        for (t, _) in rule.paths.iter().flatten() {
            best = best.max(fit_template(t, shape));
        }
    }
    if method == Method::Post {
        for (g, _) in rule.grpc.iter().flatten() {
            best = best.max(fit_grpc(g, shape));
        }
    }
    best
}

/// The rules' part: the first rule in file order that surely matches
/// allows; a rule that may match (or whose headers are unknown) before any
/// sure match makes the outcome undetermined unless a later rule surely
/// allows (then it is an allow either way).
fn decide_rules(
    workload: &CompiledWorkload,
    source: &SpiffeId,
    shape: &Shape<'_>,
    method: Method,
    recorded_rule: &str,
    jwt: bool,
    time_ms: i64,
) -> (Verdict, bool) {
    let mode = workload.mode;
    let mut timeless = true;
    let mut expired = false;
    let mut unknown: Option<Needs> = None;
    for rule in &workload.rules {
        if !rule.from.iter().any(|p| p.matches(source)) {
            continue;
        }
        if rule.require_jwt && !jwt {
            continue;
        }
        let fit = rule_fit(rule, shape, method);
        if fit == Fit::Never {
            continue;
        }
        // The rule that allowed the call in the record had its headers then.
        let headers_known = rule.headers.is_empty() || &*rule.name == recorded_rule;
        if rule.not_before_ms.is_some() || rule.not_after_ms.is_some() {
            timeless = false;
        }
        if !rule.in_window(time_ms) {
            expired |= fit == Fit::Always && headers_known;
            continue;
        }
        if fit == Fit::Always && headers_known {
            return (
                Verdict::Allow {
                    rule: rule.name.clone(),
                    mode,
                },
                timeless,
            );
        }
        if unknown.is_none() {
            unknown = Some(if headers_known {
                Needs::ConcretePath
            } else {
                Needs::Headers
            });
        }
    }
    let verdict = match unknown {
        Some(needs) => Verdict::Unknown(needs),
        None => Verdict::Deny {
            reason: if expired {
                DenyReason::GrantExpired
            } else {
                DenyReason::NoMatchingRule
            },
            mode,
        },
    };
    (verdict, timeless)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> RouteTemplate {
        RouteTemplate::parse(text).unwrap()
    }

    #[test]
    fn groups_are_capped_and_what_is_beyond_the_cap_still_counts() {
        let policy = CompiledPolicy::from_yaml(
            "version: 1\ntrust_domains: [td]\nworkloads:\n  spiffe://td/lab:\n    allow: []\n",
        )
        .unwrap();
        let mut log = String::new();
        for i in 0..=MAX_GROUPS {
            log.push_str(&format!(
                "{{\"time\":\"2026-09-01T00:00:00.000Z\",\"decision_id\":\"1-{i}\",\"decision\":\"allow\",\
                 \"reason\":\"ok\",\"mode\":\"enforce\",\"source\":\"spiffe://td/a\",\"destination\":\"spiffe://td/lab\",\
                 \"method\":\"GET\",\"route\":\"/r{i}/{{id}}\",\"rule\":\"r\",\"credentials\":[\"x509\"]}}\n"
            ));
        }
        let mut replay = Replay::new(&policy, None);
        replay.read(log.as_bytes()).unwrap();
        assert_eq!(replay.newly_denied(), MAX_GROUPS as u64 + 1);
        assert_eq!(replay.groups().len(), MAX_GROUPS);
        assert_eq!(replay.groups_dropped, 1);
        assert!(
            replay
                .to_text("c")
                .contains("1 changed calls in groups beyond the first 10000")
        );
    }

    #[test]
    fn templates_overlap_only_where_a_path_fits_both() {
        assert!(overlaps(&t("/a/{x}"), &t("/{y}/b")));
        assert!(!overlaps(&t("/a/{x}"), &t("/b/{y}")));
        assert!(!overlaps(&t("/a/{x}"), &t("/a/{x}/c")));
        assert!(overlaps(&t("/a/**"), &t("/a/{x}/c")));
        assert!(!overlaps(&t("/a/**"), &t("/a")));
    }

    #[test]
    fn a_literal_route_is_its_own_path_and_a_grpc_method_too() {
        assert!(matches!(shape_of_route("/charges"), Shape::Path(p) if p == ["charges"]));
        assert!(
            matches!(shape_of_route("lab.v1.Results/GetResult"), Shape::Path(p) if p == ["lab.v1.Results", "GetResult"])
        );
        assert!(matches!(shape_of_route("/p/{id}"), Shape::Template(_)));
        assert!(matches!(shape_of_route(""), Shape::Any));
    }
}
