//! Compiling a policy document into the immutable matcher the decision path reads.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use spiffe::{SpiffeId, TrustDomain};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::document::{JwtReplay, PolicyDocument, RuleDocument};
use crate::load::{load_document, locate_problems};
use crate::locate::child_path;
use crate::trie::SourceIndex;
use crate::{
    DataClass, GrpcPattern, Method, Mode, PolicyError, Problem, RouteTemplate, SourcePattern,
};

/// What the policy needs to know about one request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The proven caller identity.
    pub source: &'a SpiffeId,
    /// HTTP method, parsed once where the request came in.
    pub method: Method,
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
    /// Allowed methods, as listed; `None` is any.
    pub methods: Option<Vec<Method>>,
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
    /// A JWT-SVID is required as well (also set by `jwt_replay: deny`).
    pub require_jwt: bool,
    /// `jwt_replay: deny`: the JWT-SVID's `jti` is single-use. The policy
    /// only reports it ([`Evaluation::single_use_jwt`](crate::Evaluation));
    /// the sidecar, which holds the replay cache, enforces it.
    pub single_use_jwt: bool,
    /// The rule's `data_class`, else its destination's ([`DataClass::None`]
    /// when neither declares one).
    pub data_class: DataClass,
    /// The rule wrote its own `data_class` (`policy check
    /// --require-data-class` accepts the destination's as well).
    pub own_data_class: bool,
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

    /// Does the rule allow `method` on its HTTP routes (its `methods`, or
    /// any method when it lists none)? gRPC patterns need `POST` instead.
    pub fn method_ok(&self, method: Method) -> bool {
        self.methods.as_ref().is_none_or(|m| m.contains(&method))
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
    /// The destination's `data_class`: the class of a call no rule allowed.
    pub data_class: DataClass,
    /// Rules in file order.
    pub rules: Vec<CompiledRule>,
    /// Sources → route tries of the rules naming them.
    pub(crate) index: SourceIndex,
}

/// An immutable, compiled policy: what the decision path reads.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    trust_domains: HashSet<TrustDomain>,
    revoked: HashSet<SpiffeId>,
    revoked_serials: HashSet<(TrustDomain, Vec<u8>)>,
    workloads: HashMap<SpiffeId, CompiledWorkload>,
    /// Destinations of the file not kept ([`CompiledPolicy::compile_for`]).
    destinations_dropped: usize,
    /// IDs named exactly anywhere in the policy (also in destinations not
    /// kept): the only IDs that become metric labels. Values index `labels`.
    named: HashMap<SpiffeId, usize>,
    /// Label index of every destination of the file, kept or not, in
    /// ascending order: enough to say whether the file defines an ID and
    /// which destination a typo was meant to be ([`crate::similar`]),
    /// without keeping the other destinations' IDs twice.
    destination_labels: Vec<usize>,
    /// `other:<trust domain>` label of each listed trust domain.
    other_labels: HashMap<TrustDomain, usize>,
    /// Every label value the policy can produce, in a fixed order, so that
    /// metric handles can be kept in flat tables indexed by position.
    labels: Vec<Arc<str>>,
    /// Emergency grants of the policy file itself (`break_glass:`).
    break_glass: crate::BreakGlassGrants,
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
        Self::from_yaml_for(text, None)
    }

    /// [`CompiledPolicy::from_yaml`], keeping only destination `only`'s
    /// rules when given (see [`CompiledPolicy::compile_for`]): what a
    /// sidecar with a known `workload.id` loads.
    ///
    /// For one destination, the other destinations' entries are first cut
    /// out of the text as it streams through a YAML parser, so they are
    /// never held in memory as parsed YAML, and are not checked beyond
    /// being YAML (`hallpass policy check` checks them). When the cut is not
    /// possible, or what is left has a problem, the whole text is read
    /// instead, so every problem is reported where the file has it.
    pub fn from_yaml_for(text: &str, only: Option<&SpiffeId>) -> Result<Self, PolicyError> {
        if let Some(id) = only {
            let id = id.to_string();
            // The IDs the cut entries name exactly (as destinations or
            // sources) keep their own metric labels, as in the whole policy.
            let mut named = HashSet::new();
            // The cut destinations are still known as destinations: a
            // `workload.id` the file lacks gets a "did you mean" from them.
            let cut_keys = std::cell::RefCell::new(Vec::new());
            let keep = |key: &str| {
                let kept = key == id;
                if !kept {
                    cut_keys.borrow_mut().push(key.to_owned());
                }
                kept
            };
            let name = |scalar: &str| {
                if let Ok(SourcePattern::Exact(id)) = SourcePattern::parse(scalar) {
                    named.insert(id);
                }
            };
            if let Some((cut, others)) =
                hallpass_diagnostics::yaml::keep_entries(text, "workloads", keep, name)
                && let Ok(doc) = load_document(&cut)
                && let Ok(mut policy) = Self::compile_scoped(
                    &doc,
                    only,
                    named,
                    exact_ids(cut_keys.into_inner().iter().map(String::as_str)),
                )
            {
                policy.destinations_dropped += others;
                return Ok(policy);
            }
        }
        let doc = load_document(text).map_err(PolicyError::Invalid)?;
        Self::compile_for(&doc, only).map_err(|e| match e {
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

    /// The emergency grants written in the policy file itself.
    pub fn break_glass(&self) -> &crate::BreakGlassGrants {
        &self.break_glass
    }

    /// Compile a parsed document, reporting every problem found.
    pub fn compile(doc: &PolicyDocument) -> Result<Self, PolicyError> {
        Self::compile_for(doc, None)
    }

    /// Compile a parsed document, reporting every problem found, and keep
    /// only what a sidecar for destination `only` decides with (every
    /// destination when `None`).
    ///
    /// The whole document is still checked, so a file is valid for every
    /// sidecar or for none. What is kept for `only`: its own rules and
    /// index, the trust domains, the revocations, and the label table of
    /// every ID the policy names exactly (one string each), so labels mean
    /// what they mean in the whole policy. Every other
    /// destination's rules are compiled to be checked and dropped at once:
    /// a mesh-wide file then costs a sidecar its own entry, not the mesh's.
    /// The declared graph ([`CompiledPolicy::declared_graph`]) is that
    /// destination's, as its telemetry uses it.
    pub fn compile_for(doc: &PolicyDocument, only: Option<&SpiffeId>) -> Result<Self, PolicyError> {
        Self::compile_scoped(doc, only, HashSet::new(), HashSet::new())
    }

    /// [`CompiledPolicy::compile_for`], with IDs named in entries already
    /// cut out of the document (they keep their own labels), and the
    /// destinations of those entries.
    pub(crate) fn compile_scoped(
        doc: &PolicyDocument,
        only: Option<&SpiffeId>,
        also_named: HashSet<SpiffeId>,
        also_destinations: HashSet<SpiffeId>,
    ) -> Result<Self, PolicyError> {
        let mut file_destinations = also_destinations;
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
        let mut named: HashMap<SpiffeId, Arc<str>> = also_named
            .into_iter()
            .map(|id| {
                let text = Arc::<str>::from(id.to_string());
                (id, text)
            })
            .collect();
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
        let allowed_classes = data_classes(doc.data_classes.as_deref(), &mut problem);
        let mut workloads = HashMap::new();
        let mut destinations_dropped = 0;
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
            let keep = only.is_none_or(|id| *id == dest_id);
            file_destinations.insert(dest_id.clone());
            named
                .entry(dest_id.clone())
                .or_insert_with(|| Arc::<str>::from(dest.as_str()));
            let dest_class = data_class(
                wl.data_class.as_deref(),
                &allowed_classes,
                &format!("{base}.data_class"),
                &mut problem,
            );
            let mut compiled = CompiledWorkload {
                mode: wl.mode,
                data_class: dest_class,
                rules: Vec::new(),
                index: SourceIndex::default(),
            };
            for (i, rule) in wl.allow.iter().enumerate() {
                let path = format!("{base}.allow[{i}]");
                let own_class = data_class(
                    rule.data_class.as_deref(),
                    &allowed_classes,
                    &format!("{path}.data_class"),
                    &mut problem,
                );
                let Some(mut rule) = compile_rule(rule, &path, &mut problem) else {
                    continue;
                };
                rule.own_data_class = own_class.is_declared();
                rule.data_class = if rule.own_data_class {
                    own_class
                } else {
                    dest_class
                };
                for pattern in &rule.from {
                    if let SourcePattern::Exact(id) = pattern {
                        named
                            .entry(id.clone())
                            .or_insert_with(|| Arc::<str>::from(id.to_string()));
                    }
                }
                if !keep {
                    // Checked, and its sources named; another sidecar's to keep.
                    continue;
                }
                compiled.index.insert_rule(compiled.rules.len(), &rule);
                compiled.rules.push(rule);
            }
            if keep {
                workloads.insert(dest_id, compiled);
            } else {
                destinations_dropped += 1;
            }
        }
        // A file with its own owner scope, read alone (a team's file checked
        // in its repository, or the sidecar's only file): the scope holds
        // as it does in a set (`crate::set`).
        if let Some(owner) = &doc.owner {
            owner_problems(doc, owner, &file_destinations, &mut problems);
        }
        let break_glass = crate::BreakGlassGrants::compile(
            &doc.break_glass,
            crate::DEFAULT_MAX_DURATION_MS,
            "break_glass",
        )
        .unwrap_or_else(|found| {
            problems.extend(found);
            crate::BreakGlassGrants::empty()
        });
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
        let mut destination_labels: Vec<usize> = file_destinations
            .iter()
            .filter_map(|id| named.get(id).copied())
            .collect();
        destination_labels.sort_unstable();
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
            destinations_dropped,
            named,
            destination_labels,
            other_labels,
            labels,
            break_glass,
        })
    }

    /// Count `n` more destinations whose entries were cut out unread.
    pub(crate) fn add_dropped(&mut self, n: usize) {
        self.destinations_dropped += n;
    }

    /// Destinations of the file whose rules were not kept (compiled for one
    /// destination): 0 for a policy compiled whole.
    pub fn destinations_dropped(&self) -> usize {
        self.destinations_dropped
    }

    /// Rules kept, over every destination kept.
    pub fn rule_count(&self) -> usize {
        self.workloads.values().map(|w| w.rules.len()).sum()
    }

    /// Does the policy revoke anything (`revoked.ids` or `revoked.serials`)?
    pub fn revokes_any(&self) -> bool {
        !self.revoked.is_empty() || !self.revoked_serials.is_empty()
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

    /// A destination's mode: enforce when the policy has no entry for it.
    pub fn mode(&self, destination: &SpiffeId) -> Mode {
        self.workloads
            .get(destination)
            .map_or(Mode::Enforce, |w| w.mode)
    }

    /// Destinations with an entry.
    pub fn destinations(&self) -> impl Iterator<Item = &SpiffeId> {
        self.workloads.keys()
    }

    /// Does the policy file define destination `id`? Also true of a
    /// destination whose rules were not kept ([`CompiledPolicy::compile_for`]).
    pub fn defines(&self, id: &SpiffeId) -> bool {
        self.workloads.contains_key(id)
            || self
                .named
                .get(id)
                .is_some_and(|i| self.destination_labels.binary_search(i).is_ok())
    }

    /// Every destination of the policy file, kept or not, as written.
    pub(crate) fn file_destinations(&self) -> impl Iterator<Item = &str> {
        self.destination_labels
            .iter()
            .filter_map(|&i| self.labels.get(i))
            .map(|text| &**text)
    }

    /// Every metric label value this policy can produce, in table order.
    pub fn labels(&self) -> &[Arc<str>] {
        &self.labels
    }

    /// Every index comes from building `labels` (`compile`), so `get`
    /// cannot miss; if it did, the label would read `unknown` rather than
    /// stop the decision.
    fn label(&self, index: usize) -> MetricLabel {
        MetricLabel {
            index,
            text: self
                .labels
                .get(index)
                .cloned()
                .unwrap_or_else(|| Arc::from(FixedLabel::Unknown.as_str())),
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

/// The problems of a file with an owner scope read alone: a bad pattern,
/// a mesh-wide section, a destination outside the scope.
fn owner_problems(
    doc: &PolicyDocument,
    owner: &[String],
    destinations: &HashSet<SpiffeId>,
    problems: &mut Vec<Problem>,
) {
    let mut patterns = Vec::new();
    for (k, text) in owner.iter().enumerate() {
        match SourcePattern::parse(text) {
            Ok(p) => patterns.push(p),
            Err(e) => problems.push(Problem::new(format!("owner[{k}]"), e)),
        }
    }
    if owner.is_empty() {
        problems.push(Problem::new(
            "owner",
            "an empty owner scope allows no destination; list the SPIFFE ID patterns this file may define (e.g. spiffe://TD/ns/NAME/**)",
        ));
    }
    let revoked = !doc.revoked.ids.is_empty() || !doc.revoked.serials.is_empty();
    for (section, set) in [
        ("trust_domains", !doc.trust_domains.is_empty()),
        ("revoked", revoked),
    ] {
        if set {
            problems.push(Problem::error(
                crate::MESH_WIDE_SECTION,
                section,
                format!(
                    "a team file (one with `owner`) cannot set the mesh-wide `{section}`; \
                     it belongs in the platform's file"
                ),
            ));
        }
    }
    if patterns.is_empty() {
        return;
    }
    let shown: Vec<String> = patterns.iter().map(ToString::to_string).collect();
    let mut outside: Vec<String> = destinations
        .iter()
        .filter(|id| !patterns.iter().any(|p| p.matches(id)))
        .map(ToString::to_string)
        .collect();
    outside.sort();
    for id in outside {
        problems.push(Problem::error(
            crate::OWNER_VIOLATION,
            child_path("workloads", &id),
            format!(
                "destination `{id}` is outside this file's owner scope (`owner` [{}])",
                shown.join(", ")
            ),
        ));
    }
}

/// The exact SPIFFE IDs among `texts` (destination keys of cut entries).
fn exact_ids<'a>(texts: impl Iterator<Item = &'a str>) -> HashSet<SpiffeId> {
    texts
        .filter_map(|t| match SourcePattern::parse(t) {
            Ok(SourcePattern::Exact(id)) => Some(id),
            _ => None,
        })
        .collect()
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
    // An empty list is never "any": it would make the rule match nothing.
    for (key, empty) in [
        ("methods", doc.methods.as_ref().is_some_and(Vec::is_empty)),
        ("paths", doc.paths.as_ref().is_some_and(Vec::is_empty)),
        ("grpc", doc.grpc.as_ref().is_some_and(Vec::is_empty)),
    ] {
        if empty {
            bad(
                format!("{path}.{key}"),
                format!(
                    "an empty list matches no request, so this rule would allow nothing; \
                     leave `{key}` out to allow any, or list what to allow"
                ),
            );
        }
    }
    let methods = doc.methods.as_ref().map(|ms| {
        ms.iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let named = Method::named(m);
                if named.is_none() {
                    bad(format!("{path}.methods[{i}]"), unknown_method(m));
                }
                named
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
    if let (Some(start), Some(end)) = (not_before_ms, not_after_ms)
        && start > end
    {
        bad(
            format!("{path}.not_before"),
            format!(
                "not_before ({}) is after not_after ({}), so the rule can never match; \
                 swap them, or fix the date that is wrong",
                format_rfc3339(start),
                format_rfc3339(end)
            ),
        );
    }
    ok.then(|| CompiledRule {
        name: Arc::from(doc.name.as_str()),
        from,
        methods,
        paths,
        grpc,
        headers,
        not_before_ms,
        not_after_ms,
        require_jwt: doc.require_jwt || doc.jwt_replay == JwtReplay::Deny,
        single_use_jwt: doc.jwt_replay == JwtReplay::Deny,
        // Set by the caller, which knows the destination's class.
        data_class: DataClass::None,
        own_data_class: false,
    })
}

/// The classes a policy may declare: its `data_classes` list, checked (each
/// word one of the four, none twice), or all four when it has none.
fn data_classes(
    listed: Option<&[String]>,
    problem: &mut impl FnMut(String, String),
) -> Vec<DataClass> {
    let Some(listed) = listed else {
        return DataClass::DECLARABLE.to_vec();
    };
    let mut out = Vec::new();
    for (i, word) in listed.iter().enumerate() {
        let at = format!("data_classes[{i}]");
        match DataClass::named(word) {
            Some(class) if out.contains(&class) => {
                problem(at, format!("data class `{word}` is listed twice"));
            }
            Some(class) => out.push(class),
            None => problem(at, unknown_class(word, &DataClass::DECLARABLE)),
        }
    }
    out
}

/// A `data_class` value: one of the `allowed` classes, or a located problem
/// (with a "did you mean"); [`DataClass::None`] when absent or wrong.
fn data_class(
    word: Option<&str>,
    allowed: &[DataClass],
    at: &str,
    problem: &mut impl FnMut(String, String),
) -> DataClass {
    let Some(word) = word else {
        return DataClass::None;
    };
    match DataClass::named(word) {
        Some(class) if allowed.contains(&class) => class,
        Some(_) => {
            problem(
                at.to_owned(),
                format!(
                    "data class `{word}` is not in this policy's `data_classes`; \
                     it lists {}",
                    class_list(allowed)
                ),
            );
            DataClass::None
        }
        None => {
            problem(at.to_owned(), unknown_class(word, allowed));
            DataClass::None
        }
    }
}

/// The problem with a word that names no data class.
fn unknown_class(word: &str, allowed: &[DataClass]) -> String {
    let list = class_list(allowed);
    match hallpass_diagnostics::similar::closest(word, allowed.iter().map(|c| c.as_str())) {
        Some(near) => {
            format!("unknown data class `{word}`; did you mean `{near}`? (one of {list})")
        }
        None => format!("unknown data class `{word}`; a class is one of {list}"),
    }
}

fn class_list(classes: &[DataClass]) -> String {
    let words: Vec<&str> = classes.iter().map(|c| c.as_str()).collect();
    words.join(", ")
}

/// The problem with a method a rule cannot name: the right spelling when it
/// is only the case, else the methods a rule can name.
pub(crate) fn unknown_method(method: &str) -> String {
    let upper = method.to_ascii_uppercase();
    if Method::named(&upper).is_some() {
        return format!(
            "unknown HTTP method `{method}`: methods are case-sensitive; write `{upper}`"
        );
    }
    let named: Vec<&str> = Method::NAMED.iter().map(|m| m.as_str()).collect();
    format!(
        "unknown HTTP method `{method}`; a rule can name {}",
        named.join(", ")
    )
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
    // ASCII hex digits only (checked above), so every pair is one byte.
    Ok(padded
        .as_bytes()
        .chunks(2)
        .filter_map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .skip_while(|b| *b == 0)
        .collect())
}
