use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use spiffe::{SpiffeId, TrustDomain};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::document::{PolicyDocument, RuleDocument};
use crate::load::{load_document, locate_problems};
use crate::locate::child_path;
use crate::trie::{RouteHit, RouteKind, SourceIndex};
use crate::{
    Decision, DenyReason, GrpcPattern, Mode, PolicyError, Problem, RouteTemplate, SourcePattern,
    normalize_path,
};

/// The HTTP methods a rule may name.
pub(crate) const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
];

/// What the policy needs to know about one request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The proven caller identity.
    pub source: &'a SpiffeId,
    /// HTTP method, upper case.
    pub method: &'a str,
    /// Raw `:path`, query included (it is stripped here).
    pub path: &'a str,
    /// Request headers, names lower case.
    pub headers: &'a HashMap<String, String>,
    /// A valid JWT-SVID naming `source` was presented.
    pub has_jwt: bool,
    /// Serial number of the caller's X.509-SVID (big-endian, no leading
    /// zeros), when the identity came from a certificate.
    pub serial: Option<&'a [u8]>,
    /// Unix milliseconds: time-bound grants are compared at this precision,
    /// never against a time truncated to whole seconds.
    pub now_ms: i64,
}

/// One compiled allow rule.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    /// The rule name.
    pub name: Arc<str>,
    /// Who may call.
    pub from: Vec<SourcePattern>,
    /// Allowed methods; `None` is any.
    pub methods: Option<Vec<String>>,
    /// Path templates; with `grpc`, `None` for both means any path.
    pub paths: Option<Vec<(RouteTemplate, Arc<str>)>>,
    /// gRPC patterns.
    pub grpc: Option<Vec<(GrpcPattern, Arc<str>)>>,
    /// Required exact header values (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Unix milliseconds before which the rule does not apply (a finer
    /// `not_before` is rounded up).
    pub not_before_ms: Option<i64>,
    /// Unix milliseconds after which the rule does not apply (inclusive; a
    /// finer `not_after` is rounded down).
    pub not_after_ms: Option<i64>,
    /// A JWT-SVID is required as well.
    pub require_jwt: bool,
}

/// The route label used when a rule allows every path.
pub(crate) const ANY_ROUTE: &str = "*";

/// The route label of a rule that allows every path.
pub(crate) fn any_route() -> Arc<str> {
    Arc::from(ANY_ROUTE)
}

impl CompiledRule {
    /// JWT and header conditions.
    pub(crate) fn credentials_and_headers_hold(&self, req: &Request<'_>) -> bool {
        (!self.require_jwt || req.has_jwt)
            && self
                .headers
                .iter()
                .all(|(k, v)| req.headers.get(k) == Some(v))
    }

    /// Is the request's method one the rule allows (for HTTP routes)?
    pub(crate) fn method_ok(&self, method: &str) -> bool {
        self.methods
            .as_ref()
            .is_none_or(|m| m.iter().any(|x| x == method))
    }

    /// The route label if method, path, headers and credentials match; the
    /// time window is checked separately so that `grant_expired` can be told
    /// apart from `no_matching_rule`.
    pub(crate) fn route_for<S: AsRef<str>>(
        &self,
        req: &Request<'_>,
        segments: &[S],
    ) -> Option<Arc<str>> {
        if !self.credentials_and_headers_hold(req) {
            return None;
        }
        self.route_ignoring_conditions(req.method, segments)
    }

    /// The route label if method and path match (headers, JWT and time not
    /// considered).
    pub(crate) fn route_ignoring_conditions<S: AsRef<str>>(
        &self,
        method: &str,
        segments: &[S],
    ) -> Option<Arc<str>> {
        let method_ok = self.method_ok(method);
        let grpc_route = || {
            // gRPC calls are always POST; `methods` does not apply to them.
            if method != "POST" {
                return None;
            }
            self.grpc
                .as_ref()?
                .iter()
                .find(|(p, _)| p.matches(segments))
                .map(|(_, l)| l.clone())
        };
        match (&self.paths, &self.grpc) {
            (None, None) => method_ok.then(any_route),
            (paths, _) => {
                let http = paths.as_ref().filter(|_| method_ok).and_then(|ps| {
                    ps.iter()
                        .find(|(t, _)| t.matches(segments))
                        .map(|(_, l)| l.clone())
                });
                http.or_else(grpc_route)
            }
        }
    }

    /// Is `now_ms` inside the rule's `not_before`/`not_after` window (both
    /// inclusive)?
    pub fn in_window(&self, now_ms: i64) -> bool {
        self.not_before_ms.is_none_or(|t| now_ms >= t)
            && self.not_after_ms.is_none_or(|t| now_ms <= t)
    }
}

/// One destination's compiled rules.
#[derive(Debug, Clone)]
pub struct CompiledWorkload {
    /// Enforce or audit.
    pub mode: Mode,
    /// Rules in file order.
    pub rules: Vec<CompiledRule>,
    /// Sources → route tries of the rules naming them.
    index: SourceIndex,
}

impl CompiledWorkload {
    /// First match in file order, found through the index: only rules that
    /// name this source and have a template matching this path are looked at.
    fn decide<S: AsRef<str>>(&self, req: &Request<'_>, segments: &[S]) -> Decision {
        let mut hits: Vec<&RouteHit> = Vec::new();
        self.index.matches(req.source, segments, &mut hits);
        hits.sort_unstable_by_key(|h| (h.rule, h.position));
        let mut expired = false;
        for group in hits.chunk_by(|a, b| a.rule == b.rule) {
            let rule = &self.rules[group[0].rule];
            if !rule.credentials_and_headers_hold(req) {
                continue;
            }
            let Some(hit) = group.iter().find(|h| match h.kind {
                RouteKind::Http | RouteKind::Any => rule.method_ok(req.method),
                RouteKind::Grpc => req.method == "POST",
            }) else {
                continue;
            };
            if rule.in_window(req.now_ms) {
                return Decision::Allow {
                    rule: rule.name.clone(),
                    route: hit.label.clone(),
                };
            }
            expired = true;
        }
        Decision::deny(if expired {
            DenyReason::GrantExpired
        } else {
            DenyReason::NoMatchingRule
        })
    }

    /// The same answer by a plain scan of every rule in file order: the
    /// reference the index is tested against.
    fn decide_linear<S: AsRef<str>>(&self, req: &Request<'_>, segments: &[S]) -> Decision {
        let mut expired = false;
        for rule in &self.rules {
            if !rule.from.iter().any(|p| p.matches(req.source)) {
                continue;
            }
            if let Some(route) = rule.route_for(req, segments) {
                if rule.in_window(req.now_ms) {
                    return Decision::Allow {
                        rule: rule.name.clone(),
                        route,
                    };
                }
                expired = true;
            }
        }
        Decision::deny(if expired {
            DenyReason::GrantExpired
        } else {
            DenyReason::NoMatchingRule
        })
    }
}

/// An immutable, compiled policy: what the decision path reads.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    trust_domains: HashSet<TrustDomain>,
    revoked: HashSet<SpiffeId>,
    revoked_serials: HashSet<(TrustDomain, Vec<u8>)>,
    workloads: HashMap<SpiffeId, CompiledWorkload>,
    /// IDs named exactly anywhere in the policy: the only IDs that become
    /// metric labels. Values index `labels`.
    named: HashMap<SpiffeId, usize>,
    /// `other:<trust domain>` label of each listed trust domain.
    other_labels: HashMap<TrustDomain, usize>,
    /// Every label value the policy can produce, in a fixed order, so that
    /// metric handles can be kept in flat tables indexed by position.
    labels: Vec<Arc<str>>,
}

/// A bounded metric label value, with its position in the policy's label
/// table ([`CompiledPolicy::labels`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricLabel {
    /// Position in [`CompiledPolicy::labels`].
    pub index: usize,
    /// The label value.
    pub text: Arc<str>,
}

impl std::ops::Deref for MetricLabel {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

/// Label values that do not come from the policy text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixedLabel {
    /// A source in a trust domain the policy does not list.
    OtherUntrusted,
    /// A caller that proved no identity.
    Unauthenticated,
    /// A destination that could not be determined.
    Unknown,
    /// A destination the policy has no entry for.
    Other,
}

impl FixedLabel {
    const ALL: [FixedLabel; 4] = [
        Self::OtherUntrusted,
        Self::Unauthenticated,
        Self::Unknown,
        Self::Other,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OtherUntrusted => "other:untrusted",
            Self::Unauthenticated => "unauthenticated",
            Self::Unknown => "unknown",
            Self::Other => "other",
        }
    }
}

impl CompiledPolicy {
    /// Parse and compile a policy from YAML text. Every problem comes with
    /// its key path and, where the text shows it, its line and column.
    pub fn from_yaml(text: &str) -> Result<Self, PolicyError> {
        let doc = load_document(text).map_err(PolicyError::Invalid)?;
        Self::compile(&doc).map_err(|e| match e {
            PolicyError::Invalid(problems) => PolicyError::Invalid(locate_problems(problems, text)),
            other => other,
        })
    }

    /// Read, parse and compile a policy file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text)
    }

    /// Compile a parsed document, reporting every problem found.
    pub fn compile(doc: &PolicyDocument) -> Result<Self, PolicyError> {
        let mut problems = Vec::new();
        let mut problem = |path: String, message: String| {
            problems.push(Problem::new(path, message));
        };
        if doc.version != 1 {
            problem(
                "version".into(),
                format!("unsupported version {}; expected 1", doc.version),
            );
        }
        let mut trust_domains = HashSet::new();
        for (i, td) in doc.trust_domains.iter().enumerate() {
            match TrustDomain::new(td) {
                Ok(t) if t.as_str() == td => {
                    trust_domains.insert(t);
                }
                Ok(_) => problem(
                    format!("trust_domains[{i}]"),
                    "write the trust domain name alone, in lower case".into(),
                ),
                Err(e) => problem(
                    format!("trust_domains[{i}]"),
                    format!("not a trust domain: {e}"),
                ),
            }
        }
        let mut named = HashMap::new();
        let mut revoked = HashSet::new();
        for (i, id) in doc.revoked.ids.iter().enumerate() {
            match SourcePattern::parse(id) {
                Ok(SourcePattern::Exact(id)) => {
                    // Named, so a revoked caller shows up under its own ID in metrics.
                    named.insert(id.clone(), Arc::<str>::from(id.to_string()));
                    revoked.insert(id);
                }
                Ok(_) => problem(
                    format!("revoked.ids[{i}]"),
                    "revoked entries must be exact SPIFFE IDs".into(),
                ),
                Err(e) => problem(format!("revoked.ids[{i}]"), e),
            }
        }
        let mut revoked_serials = HashSet::new();
        for (i, r) in doc.revoked.serials.iter().enumerate() {
            let at = format!("revoked.serials[{i}]");
            match (TrustDomain::new(&r.trust_domain), parse_serial(&r.serial)) {
                (Ok(td), Ok(serial)) if td.as_str() == r.trust_domain => {
                    revoked_serials.insert((td, serial));
                }
                (Ok(_), Ok(_)) => problem(
                    format!("{at}.trust_domain"),
                    "write the trust domain name alone, in lower case".into(),
                ),
                (Err(e), _) => problem(
                    format!("{at}.trust_domain"),
                    format!("not a trust domain: {e}"),
                ),
                (_, Err(e)) => problem(format!("{at}.serial"), e),
            }
        }
        let mut workloads = HashMap::new();
        for (dest, wl) in &doc.workloads {
            let base = child_path("workloads", dest);
            let dest_id = match SourcePattern::parse(dest) {
                Ok(SourcePattern::Exact(id)) => id,
                Ok(_) => {
                    problem(base, "a destination must be an exact SPIFFE ID".into());
                    continue;
                }
                Err(e) => {
                    problem(base, e);
                    continue;
                }
            };
            named
                .entry(dest_id.clone())
                .or_insert_with(|| Arc::<str>::from(dest.as_str()));
            let mut compiled = CompiledWorkload {
                mode: wl.mode,
                rules: Vec::new(),
                index: SourceIndex::default(),
            };
            for (i, rule) in wl.allow.iter().enumerate() {
                let path = format!("{base}.allow[{i}]");
                let Some(rule) = compile_rule(rule, &path, &mut problem) else {
                    continue;
                };
                for pattern in &rule.from {
                    if let SourcePattern::Exact(id) = pattern {
                        named
                            .entry(id.clone())
                            .or_insert_with(|| Arc::<str>::from(id.to_string()));
                    }
                }
                compiled.index.insert_rule(compiled.rules.len(), &rule);
                compiled.rules.push(rule);
            }
            workloads.insert(dest_id, compiled);
        }
        if !problems.is_empty() {
            return Err(PolicyError::Invalid(problems));
        }
        // The label table: named IDs (sorted), `other:<td>` (sorted), fixed labels.
        let mut named_sorted: Vec<(SpiffeId, Arc<str>)> = named.into_iter().collect();
        named_sorted.sort_by(|a, b| a.1.cmp(&b.1));
        let mut tds: Vec<&TrustDomain> = trust_domains.iter().collect();
        tds.sort();
        let mut labels: Vec<Arc<str>> = Vec::new();
        let mut named = HashMap::new();
        for (id, text) in named_sorted {
            named.insert(id, labels.len());
            labels.push(text);
        }
        let mut other_labels = HashMap::new();
        for td in tds {
            other_labels.insert(td.clone(), labels.len());
            labels.push(Arc::from(format!("other:{td}")));
        }
        labels.extend(FixedLabel::ALL.iter().map(|f| Arc::from(f.as_str())));
        Ok(Self {
            trust_domains,
            revoked,
            revoked_serials,
            workloads,
            named,
            other_labels,
            labels,
        })
    }

    /// Decide one request for `destination`. Returns the decision and the
    /// destination's mode (enforce when the destination has no entry).
    pub fn evaluate(&self, destination: &SpiffeId, req: &Request<'_>) -> (Decision, Mode) {
        let Some(workload) = self.workloads.get(destination) else {
            return (Decision::deny(DenyReason::NoMatchingRule), Mode::Enforce);
        };
        (self.decide(workload, req), workload.mode)
    }

    /// [`CompiledPolicy::evaluate`] by a plain scan of every rule of the
    /// destination in file order, without the index. Same answers, linear
    /// cost: the reference semantics that tests hold the index to.
    pub fn evaluate_linear(&self, destination: &SpiffeId, req: &Request<'_>) -> (Decision, Mode) {
        let Some(workload) = self.workloads.get(destination) else {
            return (Decision::deny(DenyReason::NoMatchingRule), Mode::Enforce);
        };
        let decision = match self.precheck(req) {
            Err(reason) => Decision::deny(reason),
            Ok(path) => workload.decide_linear(req, path.segments()),
        };
        (decision, workload.mode)
    }

    fn decide(&self, workload: &CompiledWorkload, req: &Request<'_>) -> Decision {
        match self.precheck(req) {
            Err(reason) => Decision::deny(reason),
            Ok(path) => workload.decide(req, path.segments()),
        }
    }

    /// Trust domain, revocation and path safety, in that order.
    fn precheck<'r>(&self, req: &Request<'r>) -> Result<crate::NormalizedPath<'r>, DenyReason> {
        if !self.trust_domains.contains(req.source.trust_domain()) {
            return Err(DenyReason::UntrustedTrustDomain);
        }
        if self.revoked.contains(req.source) || self.serial_revoked(req) {
            return Err(DenyReason::Revoked);
        }
        normalize_path(req.path).ok_or(DenyReason::AmbiguousPath)
    }

    /// Is this exact ID on the `revoked.ids` list?
    pub fn is_revoked_id(&self, id: &SpiffeId) -> bool {
        self.revoked.contains(id)
    }

    /// Is the request's certificate serial on the `revoked.serials` list?
    pub fn is_revoked_serial(&self, req: &Request<'_>) -> bool {
        self.serial_revoked(req)
    }

    fn serial_revoked(&self, req: &Request<'_>) -> bool {
        // The lookup allocates, so skip it when nothing is revoked by serial.
        !self.revoked_serials.is_empty()
            && req.serial.is_some_and(|serial| {
                self.revoked_serials
                    .contains(&(req.source.trust_domain().clone(), serial.to_vec()))
            })
    }

    /// Is this trust domain listed in `trust_domains`?
    pub fn trusts(&self, trust_domain: &TrustDomain) -> bool {
        self.trust_domains.contains(trust_domain)
    }

    /// The compiled entry of a destination.
    pub fn workload(&self, destination: &SpiffeId) -> Option<&CompiledWorkload> {
        self.workloads.get(destination)
    }

    /// Destinations with an entry.
    pub fn destinations(&self) -> impl Iterator<Item = &SpiffeId> {
        self.workloads.keys()
    }

    /// Every metric label value this policy can produce, in table order.
    pub fn labels(&self) -> &[Arc<str>] {
        &self.labels
    }

    fn label(&self, index: usize) -> MetricLabel {
        MetricLabel {
            index,
            text: self.labels[index].clone(),
        }
    }

    /// A label that does not come from the policy text.
    pub fn fixed_label(&self, fixed: FixedLabel) -> MetricLabel {
        let position = FixedLabel::ALL
            .iter()
            .position(|f| *f == fixed)
            .unwrap_or_default();
        self.label(self.labels.len() - FixedLabel::ALL.len() + position)
    }

    /// The bounded metric label for a proven source: the ID itself when the
    /// policy names it exactly, else `other:<trust domain>` for a listed trust
    /// domain, else `other:untrusted`.
    pub fn source_label(&self, id: &SpiffeId) -> MetricLabel {
        match self
            .named
            .get(id)
            .or_else(|| self.other_labels.get(id.trust_domain()))
        {
            Some(&index) => self.label(index),
            None => self.fixed_label(FixedLabel::OtherUntrusted),
        }
    }

    /// The bounded metric label for a destination: its ID when the policy has
    /// an entry for it, else `other`.
    pub fn destination_label(&self, id: &SpiffeId) -> MetricLabel {
        match (self.workloads.contains_key(id), self.named.get(id)) {
            (true, Some(&index)) => self.label(index),
            _ => self.fixed_label(FixedLabel::Other),
        }
    }
}

fn compile_rule(
    doc: &RuleDocument,
    path: &str,
    problem: &mut impl FnMut(String, String),
) -> Option<CompiledRule> {
    let mut ok = true;
    let mut bad = |p: String, m: String| {
        ok = false;
        problem(p, m);
    };
    if doc.name.trim().is_empty() {
        bad(format!("{path}.name"), "a rule needs a name".into());
    }
    if doc.from.is_empty() {
        bad(
            format!("{path}.from"),
            "a rule must name at least one source".into(),
        );
    }
    let mut from = Vec::new();
    for (i, s) in doc.from.iter().enumerate() {
        match SourcePattern::parse(s) {
            Ok(p) => from.push(p),
            Err(e) => bad(format!("{path}.from[{i}]"), e),
        }
    }
    let methods = doc.methods.as_ref().map(|ms| {
        ms.iter()
            .enumerate()
            .filter_map(|(i, m)| {
                if METHODS.contains(&m.as_str()) {
                    Some(m.clone())
                } else {
                    bad(
                        format!("{path}.methods[{i}]"),
                        format!("unknown HTTP method `{m}` (use upper case)"),
                    );
                    None
                }
            })
            .collect::<Vec<_>>()
    });
    let paths = doc.paths.as_ref().map(|ps| {
        ps.iter()
            .enumerate()
            .filter_map(|(i, p)| match RouteTemplate::parse(p) {
                Ok(t) => Some((t, Arc::from(p.as_str()))),
                Err(e) => {
                    bad(format!("{path}.paths[{i}]"), e);
                    None
                }
            })
            .collect::<Vec<_>>()
    });
    let grpc = doc.grpc.as_ref().map(|gs| {
        gs.iter()
            .enumerate()
            .filter_map(|(i, g)| match GrpcPattern::parse(g) {
                Ok(p) => Some((p, Arc::from(g.as_str()))),
                Err(e) => {
                    bad(format!("{path}.grpc[{i}]"), e);
                    None
                }
            })
            .collect::<Vec<_>>()
    });
    let headers = doc
        .headers
        .iter()
        .flatten()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    // Rounded the strict way: a window never opens early or closes late.
    let mut time = |field: &str, value: &Option<String>, round: Rounding| {
        value.as_ref().and_then(|v| match rfc3339_ms(v, round) {
            Ok(t) => Some(t),
            Err(e) => {
                bad(format!("{path}.{field}"), e);
                None
            }
        })
    };
    let not_before_ms = time("not_before", &doc.not_before, Rounding::Up);
    let not_after_ms = time("not_after", &doc.not_after, Rounding::Down);
    ok.then(|| CompiledRule {
        name: Arc::from(doc.name.as_str()),
        from,
        methods,
        paths,
        grpc,
        headers,
        not_before_ms,
        not_after_ms,
        require_jwt: doc.require_jwt,
    })
}

/// Which way a time finer than a millisecond is rounded.
#[derive(Debug, Clone, Copy)]
enum Rounding {
    Down,
    Up,
}

/// Parse an RFC 3339 time (`2026-12-01T00:00:00Z`, fractions of a second
/// allowed) into Unix milliseconds, rounding anything finer down.
pub fn parse_rfc3339_ms(text: &str) -> Result<i64, String> {
    rfc3339_ms(text, Rounding::Down)
}

fn rfc3339_ms(text: &str, round: Rounding) -> Result<i64, String> {
    let t =
        OffsetDateTime::parse(text, &Rfc3339).map_err(|e| format!("not an RFC 3339 time: {e}"))?;
    let nanos = t.unix_timestamp_nanos();
    let ms = match round {
        Rounding::Down => nanos.div_euclid(1_000_000),
        Rounding::Up => (nanos + 999_999).div_euclid(1_000_000),
    };
    // RFC 3339 years are 0000..=9999: always inside i64 milliseconds.
    i64::try_from(ms).map_err(|_| "time out of range".to_owned())
}

/// Format Unix milliseconds as RFC 3339 in UTC; the fraction is shown only
/// when there is one.
pub(crate) fn format_rfc3339(unix_ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("@{unix_ms}ms"))
}

/// Parse a hex certificate serial (`0a:1b:…` or `0a1b…`) into big-endian
/// bytes without leading zeros, as [`Request::serial`] carries it.
pub fn parse_serial(text: &str) -> Result<Vec<u8>, String> {
    let hex: String = text.chars().filter(|c| *c != ':').collect();
    if hex.is_empty() || hex.len() > 128 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("a serial is 1 to 64 bytes of hex, optionally with `:` separators".into());
    }
    let padded = if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else {
        hex
    };
    let bytes: Vec<u8> = (0..padded.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&padded[i..i + 2], 16).ok())
        .collect();
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    Ok(bytes[start..].to_vec())
}
