//! Break-glass (emergency) grants: a call path opened at once, for a bounded
//! time, with who opened it, why, and under which ticket.
//!
//! Grants come from the policy file's top-level `break_glass:` list, or from
//! the overlay file that `hallpass breakglass` writes (so the reviewed policy
//! stays as it was reviewed). Every grant names `from`, `to`, optionally
//! `methods` and `paths`, and must carry `reason`, `ticket`, `opened_by`,
//! `opened` and `expires`; `expires` may be at most the maximum duration
//! after `opened` (default [`DEFAULT_MAX_DURATION_MS`]). A grant is in
//! force from `opened` (inclusive) to `expires` (exclusive); outside that
//! it is inert. The sidecar consults grants only when no rule of the policy
//! allows the call (never over an identity failure, an untrusted trust
//! domain, a revocation or an ambiguous path).

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use spiffe::SpiffeId;

use crate::compile::{ANY_ROUTE, format_rfc3339, parse_rfc3339_ms, unknown_method};
use crate::{Method, PolicyError, Problem, RouteTemplate, SourcePattern, parse_path};

/// The default (and largest allowed by `policy check`) grant duration: 4 h.
pub const DEFAULT_MAX_DURATION_MS: i64 = 4 * 3600 * 1000;

/// At most this many grants in one list (policy or overlay): the bound on
/// the `grant` label of the break-glass metrics.
pub const MAX_BREAK_GLASS_GRANTS: usize = 32;

/// Longest `reason`, `ticket` or `opened_by`.
const MAX_TEXT_LEN: usize = 512;
/// Longest grant name (a metric label value).
const MAX_NAME_LEN: usize = 64;

/// One grant as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassDocument {
    /// The grant's name: the `grant` metric label and the audit record's
    /// grant (letters, digits, `-`, `_`, `.`; at most 64).
    pub name: String,
    /// Source patterns, as in a rule.
    pub from: Vec<String>,
    /// The destination (an exact SPIFFE ID): only its sidecar uses the grant.
    pub to: String,
    /// HTTP methods; absent means any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Path templates; absent means any path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Why (required).
    pub reason: String,
    /// The incident or change ticket (required).
    pub ticket: String,
    /// Who opened it (required).
    pub opened_by: String,
    /// RFC 3339 time it was opened.
    pub opened: String,
    /// RFC 3339 time it ends (exclusive).
    pub expires: String,
}

/// The overlay file `hallpass breakglass` writes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OverlayDocument {
    /// Schema version; only `1` exists.
    pub version: u32,
    /// The grants.
    #[serde(default)]
    pub break_glass: Vec<BreakGlassDocument>,
}

impl Default for OverlayDocument {
    fn default() -> Self {
        Self {
            version: 1,
            break_glass: Vec::new(),
        }
    }
}

/// One compiled grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassGrant {
    /// The grant's name.
    pub name: Arc<str>,
    /// Who may call.
    pub from: Vec<SourcePattern>,
    /// The destination.
    pub to: SpiffeId,
    /// Allowed methods; `None` is any.
    pub methods: Option<Vec<Method>>,
    /// Path templates with their labels; `None` is any path.
    pub paths: Option<Vec<(RouteTemplate, Arc<str>)>>,
    /// Why.
    pub reason: Arc<str>,
    /// The ticket.
    pub ticket: Arc<str>,
    /// Who opened it.
    pub opened_by: Arc<str>,
    /// Unix ms it was opened (in force from then, inclusive).
    pub opened_ms: i64,
    /// Unix ms it ends (exclusive).
    pub expires_ms: i64,
}

impl BreakGlassGrant {
    /// In force at `now_ms`?
    pub fn in_force(&self, now_ms: i64) -> bool {
        now_ms >= self.opened_ms && now_ms < self.expires_ms
    }

    /// The route label this grant gives a call of `method` on `path` from
    /// `source`, or `None` when it does not cover the call. Ambiguous paths
    /// are never covered.
    pub fn covers(&self, source: &SpiffeId, method: Method, path: &str) -> Option<Arc<str>> {
        if !self.from.iter().any(|p| p.matches(source)) {
            return None;
        }
        if !self.methods.as_ref().is_none_or(|m| m.contains(&method)) {
            return None;
        }
        let path = parse_path(path).ok()?;
        match &self.paths {
            None => Some(Arc::from(ANY_ROUTE)),
            Some(paths) => paths
                .iter()
                .find(|(t, _)| t.matches(path.segments()))
                .map(|(_, label)| label.clone()),
        }
    }

    /// The grant as written (for `hallpass breakglass list`).
    pub fn expires_text(&self) -> String {
        format_rfc3339(self.expires_ms)
    }
}

/// A list of compiled grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BreakGlassGrants {
    grants: Vec<Arc<BreakGlassGrant>>,
}

impl BreakGlassGrants {
    /// No grants.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Compile `docs` (at key path `at`, such as `break_glass`), each at
    /// most `max_duration_ms` long; every problem is reported.
    pub fn compile(
        docs: &[BreakGlassDocument],
        max_duration_ms: i64,
        at: &str,
    ) -> Result<Self, Vec<Problem>> {
        let mut problems = Vec::new();
        if docs.len() > MAX_BREAK_GLASS_GRANTS {
            problems.push(Problem::new(
                at.to_owned(),
                format!(
                    "{} grants; at most {MAX_BREAK_GLASS_GRANTS} may be open at once",
                    docs.len()
                ),
            ));
        }
        let mut names = HashSet::new();
        let mut grants = Vec::new();
        for (i, doc) in docs.iter().enumerate() {
            let base = format!("{at}[{i}]");
            if !names.insert(doc.name.as_str()) {
                problems.push(Problem::new(
                    format!("{base}.name"),
                    format!("`{}` is also the name of an earlier grant", doc.name),
                ));
            }
            if let Some(grant) = compile_grant(doc, max_duration_ms, &base, &mut problems) {
                grants.push(Arc::new(grant));
            }
        }
        if problems.is_empty() {
            Ok(Self { grants })
        } else {
            Err(problems)
        }
    }

    /// Parse and compile an overlay file's text.
    pub fn from_overlay_yaml(text: &str, max_duration_ms: i64) -> Result<Self, PolicyError> {
        let doc = parse_overlay(text)?;
        Self::compile(&doc.break_glass, max_duration_ms, "break_glass")
            .map_err(PolicyError::Invalid)
    }

    /// Every grant, in file order.
    pub fn grants(&self) -> &[Arc<BreakGlassGrant>] {
        &self.grants
    }

    /// The first grant in force at `now_ms` for `destination` that covers
    /// the call, with its route label.
    pub fn find(
        &self,
        destination: &SpiffeId,
        source: &SpiffeId,
        method: Method,
        path: &str,
        now_ms: i64,
    ) -> Option<(Arc<BreakGlassGrant>, Arc<str>)> {
        self.grants
            .iter()
            .filter(|g| g.to == *destination && g.in_force(now_ms))
            .find_map(|g| g.covers(source, method, path).map(|r| (g.clone(), r)))
    }
}

/// Parse an overlay file (an empty file is an overlay without grants).
pub fn parse_overlay(text: &str) -> Result<OverlayDocument, PolicyError> {
    if text.trim().is_empty() {
        return Ok(OverlayDocument::default());
    }
    let doc: OverlayDocument = serde_yaml_ng::from_str(text).map_err(|e| {
        PolicyError::Invalid(vec![Problem::new(
            hallpass_diagnostics::path::ROOT,
            format!("invalid break-glass overlay: {e}"),
        )])
    })?;
    if doc.version != 1 {
        return Err(PolicyError::Invalid(vec![Problem::new(
            "version",
            format!("unsupported version {}; expected 1", doc.version),
        )]));
    }
    Ok(doc)
}

impl OverlayDocument {
    /// The overlay as YAML, the way `hallpass breakglass` writes it.
    pub fn to_yaml(&self) -> Result<String, PolicyError> {
        let body = serde_yaml_ng::to_string(self).map_err(|e| {
            PolicyError::Invalid(vec![Problem::new(
                hallpass_diagnostics::path::ROOT,
                format!("cannot write the overlay: {e}"),
            )])
        })?;
        Ok(format!(
            "# Break-glass overlay, written by `hallpass breakglass`; every grant is\n\
             # temporary and audited. Close grants with `hallpass breakglass close NAME`.\n{body}"
        ))
    }
}

/// Where a grant stands at a given time.
pub fn grant_state(doc: &BreakGlassDocument, now_ms: i64) -> &'static str {
    match (
        parse_rfc3339_ms(&doc.opened),
        parse_rfc3339_ms(&doc.expires),
    ) {
        (Ok(_), Ok(expires)) if now_ms >= expires => "expired",
        (Ok(opened), Ok(_)) if now_ms < opened => "pending",
        (Ok(_), Ok(_)) => "open",
        _ => "invalid",
    }
}

/// The overlay's grants as a JSON array (`hallpass breakglass list --format
/// json`), each with its `state` at `now_ms` (`open`, `pending`, `expired`).
pub fn grants_json(doc: &OverlayDocument, now_ms: i64) -> String {
    let grants: Vec<serde_json::Value> = doc
        .break_glass
        .iter()
        .map(|g| {
            let mut value = serde_json::to_value(g).unwrap_or_default();
            if let Some(object) = value.as_object_mut() {
                object.insert("state".into(), grant_state(g, now_ms).into());
            }
            value
        })
        .collect();
    serde_json::to_string_pretty(&grants).unwrap_or_else(|_| "[]".into())
}

/// Unix milliseconds as RFC 3339 in UTC (what `opened` and `expires` hold).
pub fn format_time_ms(unix_ms: i64) -> String {
    format_rfc3339(unix_ms)
}

/// A grant name is a metric label value: short, plain characters only.
pub fn valid_grant_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn compile_grant(
    doc: &BreakGlassDocument,
    max_duration_ms: i64,
    base: &str,
    problems: &mut Vec<Problem>,
) -> Option<BreakGlassGrant> {
    let before = problems.len();
    let mut bad = |field: &str, message: String| {
        problems.push(Problem::new(format!("{base}.{field}"), message));
    };
    if !valid_grant_name(&doc.name) {
        bad(
            "name",
            format!(
                "a grant name is 1 to {MAX_NAME_LEN} letters, digits, `-`, `_` or `.` \
                 (it becomes a metric label)"
            ),
        );
    }
    for (field, value) in [
        ("reason", &doc.reason),
        ("ticket", &doc.ticket),
        ("opened_by", &doc.opened_by),
    ] {
        if value.trim().is_empty() {
            bad(field, "required: it may not be empty".into());
        } else if value.len() > MAX_TEXT_LEN || value.chars().any(char::is_control) {
            bad(
                field,
                format!("at most {MAX_TEXT_LEN} bytes, without control characters"),
            );
        }
    }
    if doc.from.is_empty() {
        bad("from", "at least one source".into());
    }
    let mut from = Vec::new();
    for (i, f) in doc.from.iter().enumerate() {
        match SourcePattern::parse(f) {
            Ok(p) => from.push(p),
            Err(e) => bad(&format!("from[{i}]"), e),
        }
    }
    let to = match SourcePattern::parse(&doc.to) {
        Ok(SourcePattern::Exact(id)) => Some(id),
        Ok(_) => {
            bad("to", "the destination must be an exact SPIFFE ID".into());
            None
        }
        Err(e) => {
            bad("to", e);
            None
        }
    };
    let methods = doc.methods.as_ref().map(|ms| {
        ms.iter()
            .enumerate()
            .filter_map(|(i, m)| match Method::named(m) {
                Some(m) => Some(m),
                None => {
                    // The same wording as a rule's: the valid methods, or the spelling.
                    bad(&format!("methods[{i}]"), unknown_method(m));
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
                    bad(&format!("paths[{i}]"), e);
                    None
                }
            })
            .collect::<Vec<_>>()
    });
    let mut time = |field: &str, value: &str| match parse_rfc3339_ms(value) {
        Ok(t) => Some(t),
        Err(e) => {
            bad(field, e);
            None
        }
    };
    let opened_ms = time("opened", &doc.opened);
    let expires_ms = time("expires", &doc.expires);
    if let (Some(opened), Some(expires)) = (opened_ms, expires_ms) {
        if expires <= opened {
            bad("expires", "must be after `opened`".into());
        } else if expires.saturating_sub(opened) > max_duration_ms {
            bad(
                "expires",
                format!(
                    "{} after `opened`: longer than the maximum break-glass duration of {}; \
                     open a new grant when this one ends",
                    duration_text(expires.saturating_sub(opened)),
                    duration_text(max_duration_ms)
                ),
            );
        }
    }
    if problems.len() != before {
        return None;
    }
    Some(BreakGlassGrant {
        name: Arc::from(doc.name.as_str()),
        from,
        to: to?,
        methods,
        paths,
        reason: Arc::from(doc.reason.as_str()),
        ticket: Arc::from(doc.ticket.as_str()),
        opened_by: Arc::from(doc.opened_by.as_str()),
        opened_ms: opened_ms?,
        expires_ms: expires_ms?,
    })
}

/// `4h`, `90m`, `1h30m`, `45s`: a duration as people write it.
pub fn duration_text(ms: i64) -> String {
    let s = ms.div_euclid(1000);
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if sec > 0 || out.is_empty() {
        out.push_str(&format!("{sec}s"));
    }
    out
}

/// Parse `2h`, `90m`, `1h30m`, `45s` (at least one part) into milliseconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let mut total: i64 = 0;
    let mut digits = String::new();
    let mut parts = 0;
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3_600_000,
            'm' => 60_000,
            's' => 1_000,
            _ => return Err(format!("`{text}`: use h, m and s, such as 2h or 1h30m")),
        };
        let n: i64 = digits
            .parse()
            .map_err(|_| format!("`{text}`: a number must come before each unit"))?;
        digits.clear();
        total = total.saturating_add(n.saturating_mul(unit));
        parts += 1;
    }
    if !digits.is_empty() || parts == 0 {
        return Err(format!("`{text}`: end with a unit, such as 2h or 90m"));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> BreakGlassDocument {
        BreakGlassDocument {
            name: "inc-4711".into(),
            from: vec!["spiffe://hospital.example/ns/billing/sa/billing".into()],
            to: "spiffe://hospital.example/ns/clinical/sa/lab-results".into(),
            methods: Some(vec!["GET".into()]),
            paths: Some(vec!["/patients/{patient}/results".into()]),
            reason: "downtime procedure".into(),
            ticket: "INC-4711".into(),
            opened_by: "alice".into(),
            opened: "2026-12-02T10:00:00Z".into(),
            expires: "2026-12-02T12:00:00Z".into(),
        }
    }

    fn id(s: &str) -> SpiffeId {
        match SourcePattern::parse(s) {
            Ok(SourcePattern::Exact(id)) => id,
            other => panic!("{other:?}"),
        }
    }

    const T0: i64 = 1_796_205_600_000; // 2026-12-02T10:00:00Z

    #[test]
    fn a_grant_covers_its_calls_only_while_in_force() {
        let grants = BreakGlassGrants::compile(&[doc()], DEFAULT_MAX_DURATION_MS, "break_glass")
            .unwrap_or_else(|p| panic!("{p:?}"));
        let lab = id("spiffe://hospital.example/ns/clinical/sa/lab-results");
        let billing = id("spiffe://hospital.example/ns/billing/sa/billing");
        let ehr = id("spiffe://hospital.example/ns/clinical/sa/ehr-api");
        let path = "/patients/1/results";
        let found = grants.find(&lab, &billing, Method::Get, path, T0 + 1);
        assert_eq!(
            found.map(|(g, r)| (g.ticket.clone(), r)),
            Some((
                Arc::from("INC-4711"),
                Arc::from("/patients/{patient}/results")
            ))
        );
        // Before it opened, at and after expiry: inert.
        assert!(
            grants
                .find(&lab, &billing, Method::Get, path, T0 - 1)
                .is_none()
        );
        let end = T0 + 2 * 3600 * 1000;
        assert!(
            grants
                .find(&lab, &billing, Method::Get, path, end)
                .is_none()
        );
        assert!(
            grants
                .find(&lab, &billing, Method::Get, path, end - 1)
                .is_some()
        );
        // Another source, method, path or destination: not covered.
        assert!(grants.find(&lab, &ehr, Method::Get, path, T0).is_none());
        assert!(
            grants
                .find(&lab, &billing, Method::Post, path, T0)
                .is_none()
        );
        assert!(
            grants
                .find(&lab, &billing, Method::Get, "/admin", T0)
                .is_none()
        );
        assert!(
            grants
                .find(&billing, &billing, Method::Get, path, T0)
                .is_none()
        );
        // An ambiguous path never is.
        assert!(
            grants
                .find(&lab, &billing, Method::Get, "/patients/1/../1/results", T0)
                .is_none()
        );
    }

    #[test]
    fn an_unknown_method_in_a_grant_is_reported_as_in_a_rule() {
        let mut lower = doc();
        lower.methods = Some(vec!["get".into(), "POTS".into()]);
        let problems = BreakGlassGrants::compile(&[lower], DEFAULT_MAX_DURATION_MS, "break_glass")
            .err()
            .unwrap_or_default();
        let text: Vec<String> = problems.iter().map(|p| format!("{p:?}")).collect();
        assert_eq!(problems.len(), 2, "{text:?}");
        assert!(text[0].contains("write `GET`"), "{text:?}");
        assert!(text[1].contains("GET, HEAD, POST"), "{text:?}");
    }

    #[test]
    fn a_grant_longer_than_the_maximum_is_an_error() {
        let mut long = doc();
        long.expires = "2026-12-02T14:00:01Z".into();
        let problems = BreakGlassGrants::compile(&[long], DEFAULT_MAX_DURATION_MS, "break_glass")
            .err()
            .unwrap_or_default();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "break_glass[0].expires");
        assert!(problems[0].message.contains("longer than the maximum"));
        // A shorter configured maximum applies too.
        assert!(BreakGlassGrants::compile(&[doc()], 3600 * 1000, "break_glass").is_err());
    }

    #[test]
    fn required_fields_and_names_are_checked() {
        let mut bad = doc();
        bad.reason = " ".into();
        bad.ticket = String::new();
        bad.opened_by = "a\u{1b}[2J".into();
        bad.name = "has space".into();
        bad.to = "spiffe://hospital.example/ns/**".into();
        bad.expires = bad.opened.clone();
        let problems =
            BreakGlassGrants::compile(&[bad, doc(), doc()], DEFAULT_MAX_DURATION_MS, "b")
                .err()
                .unwrap_or_default();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        for want in [
            "b[0].name",
            "b[0].reason",
            "b[0].ticket",
            "b[0].opened_by",
            "b[0].to",
            "b[0].expires",
            "b[2].name",
        ] {
            assert!(paths.contains(&want), "{want} missing from {paths:?}");
        }
        let many = vec![doc(); MAX_BREAK_GLASS_GRANTS + 1];
        assert!(BreakGlassGrants::compile(&many, DEFAULT_MAX_DURATION_MS, "b").is_err());
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse_duration("2h"), Ok(2 * 3_600_000));
        assert_eq!(parse_duration("1h30m"), Ok(90 * 60_000));
        assert_eq!(parse_duration("45s"), Ok(45_000));
        for bad in ["", "2", "h", "2d", "-1h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(duration_text(90 * 60_000), "1h30m");
        assert_eq!(duration_text(0), "0s");
    }

    #[test]
    fn an_empty_overlay_has_no_grants_and_a_bad_one_is_an_error() {
        assert_eq!(
            BreakGlassGrants::from_overlay_yaml("", DEFAULT_MAX_DURATION_MS).ok(),
            Some(BreakGlassGrants::empty())
        );
        assert!(BreakGlassGrants::from_overlay_yaml("version: 1\nbogus: 1\n", 1).is_err());
        assert!(BreakGlassGrants::from_overlay_yaml("version: 2\n", 1).is_err());
    }
}
