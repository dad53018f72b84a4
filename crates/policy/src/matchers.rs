//! Typed matchers parsed once from policy text: source patterns, route
//! templates and gRPC patterns.

use std::fmt;

use spiffe::{SpiffeId, TrustDomain};

/// Which callers a rule names.
///
/// Matching is segment-wise: `spiffe://td/ns/clinical/*` matches
/// `spiffe://td/ns/clinical/x` but never `spiffe://td/ns/clinicalx/a`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourcePattern {
    /// Exactly this ID.
    Exact(SpiffeId),
    /// `prefix/*`: the prefix plus exactly one more segment.
    OneBelow {
        /// Trust domain the prefix belongs to.
        trust_domain: TrustDomain,
        /// Path segments of the prefix.
        segments: Vec<String>,
    },
    /// `prefix/**`: the prefix plus one or more segments.
    AnyBelow {
        /// Trust domain the prefix belongs to.
        trust_domain: TrustDomain,
        /// Path segments of the prefix.
        segments: Vec<String>,
    },
}

impl SourcePattern {
    /// Parse a source pattern as written in the policy.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (prefix, wildcard) = if let Some(p) = text.strip_suffix("/**") {
            (p, Some(true))
        } else if let Some(p) = text.strip_suffix("/*") {
            (p, Some(false))
        } else {
            (text, None)
        };
        if prefix.contains('*') {
            return Err("`*` is only allowed as a whole last segment (`/*` or `/**`)".into());
        }
        let id = SpiffeId::new(prefix).map_err(|e| format!("not a SPIFFE ID: {e}"))?;
        if id.to_string() != prefix {
            return Err("SPIFFE ID must be written in canonical lower-case form".into());
        }
        let segments = split_path(id.path());
        Ok(match wildcard {
            None if segments.is_empty() => {
                return Err("a trust domain alone names no workload; use `/**` for all".into());
            }
            None => Self::Exact(id),
            Some(any) => {
                let trust_domain = id.trust_domain().clone();
                if any {
                    Self::AnyBelow {
                        trust_domain,
                        segments,
                    }
                } else {
                    Self::OneBelow {
                        trust_domain,
                        segments,
                    }
                }
            }
        })
    }

    /// The trust domain this pattern can match in.
    pub fn trust_domain(&self) -> &TrustDomain {
        match self {
            Self::Exact(id) => id.trust_domain(),
            Self::OneBelow { trust_domain, .. } | Self::AnyBelow { trust_domain, .. } => {
                trust_domain
            }
        }
    }

    /// The segments before the wildcard (all of them for an exact ID).
    pub fn prefix_segments(&self) -> Vec<&str> {
        match self {
            Self::Exact(id) => id.path().split('/').skip(1).collect(),
            Self::OneBelow { segments, .. } | Self::AnyBelow { segments, .. } => {
                segments.iter().map(String::as_str).collect()
            }
        }
    }

    /// Does every ID this pattern matches also match `self`?
    pub fn covers(&self, other: &SourcePattern) -> bool {
        if self.trust_domain() != other.trust_domain() {
            return false;
        }
        match (self, other) {
            (_, Self::Exact(id)) => self.matches(id),
            (Self::Exact(_), _) => false,
            (Self::OneBelow { segments: a, .. }, Self::OneBelow { segments: b, .. }) => a == b,
            (Self::OneBelow { .. }, Self::AnyBelow { .. }) => false,
            (
                Self::AnyBelow { segments: a, .. },
                Self::OneBelow { segments: b, .. } | Self::AnyBelow { segments: b, .. },
            ) => b.starts_with(a),
        }
    }

    /// Does `id` match this pattern?
    pub fn matches(&self, id: &SpiffeId) -> bool {
        crate::probe::count();
        match self {
            Self::Exact(exact) => exact == id,
            Self::OneBelow {
                trust_domain,
                segments,
            } => id.trust_domain() == trust_domain && below(segments, id.path(), Some(1)),
            Self::AnyBelow {
                trust_domain,
                segments,
            } => id.trust_domain() == trust_domain && below(segments, id.path(), None),
        }
    }
}

impl fmt::Display for SourcePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (td, segs, suffix) = match self {
            Self::Exact(id) => return write!(f, "{id}"),
            Self::OneBelow {
                trust_domain,
                segments,
            } => (trust_domain, segments, "*"),
            Self::AnyBelow {
                trust_domain,
                segments,
            } => (trust_domain, segments, "**"),
        };
        write!(f, "spiffe://{td}")?;
        for s in segs {
            write!(f, "/{s}")?;
        }
        write!(f, "/{suffix}")
    }
}

fn split_path(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// True when `path` has `prefix` as its leading segments plus `extra` more
/// (any positive number when `extra` is `None`).
fn below(prefix: &[String], path: &str, extra: Option<usize>) -> bool {
    let mut segs = path.split('/').skip(1);
    for want in prefix {
        match segs.next() {
            Some(got) if got == want => {}
            _ => return false,
        }
    }
    let rest = segs.count();
    match extra {
        Some(n) => rest == n,
        None => rest >= 1,
    }
}

/// One segment of a route template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param,
}

/// An HTTP path template: literal segments, `{name}` for one segment, and an
/// optional trailing `/**` for one or more further segments.
///
/// Its text, not the request path, is what metrics and logs show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTemplate {
    text: String,
    segments: Vec<Segment>,
    any_depth: bool,
}

/// The error for a lone `*` segment (what Istio and Envoy users write): the
/// template as it should be, with `{name}` for one segment and, at the end,
/// `/**` for any depth.
fn star_segment(parts: &[&str], at: usize, last: bool) -> String {
    let with = |replacement: &str| {
        let mut fixed: Vec<&str> = parts.to_vec();
        if let Some(slot) = fixed.get_mut(at) {
            *slot = replacement;
        }
        format!("`/{}`", fixed.join("/"))
    };
    if last {
        format!(
            "`*` is not a wildcard here: write {} for exactly one segment, or {} for one or more",
            with("{name}"),
            with("**")
        )
    } else {
        format!(
            "`*` is not a wildcard here: write {} for exactly one segment",
            with("{name}")
        )
    }
}

/// The error for a template ending in `/`: a request path ending in `/` is
/// denied as ambiguous, so such a template could never match.
fn trailing_slash(parts: &[&str], at: usize) -> String {
    let kept: Vec<&str> = parts.iter().take(at).copied().collect();
    format!(
        "a template cannot end with `/`: a request path ending in `/` is denied as \
         `ambiguous_path` (cause `trailing_slash`), so this could never match; remove the \
         trailing `/` and write `/{}`",
        kept.join("/")
    )
}

impl RouteTemplate {
    /// Parse a template such as `/patients/{patient}/results`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix('/')
            .ok_or_else(|| "a path template must start with `/`".to_owned())?;
        let mut segments = Vec::new();
        let mut any_depth = false;
        let mut names: Vec<&str> = Vec::new();
        if !rest.is_empty() {
            let parts: Vec<&str> = rest.split('/').collect();
            for (i, part) in parts.iter().enumerate() {
                let last = i + 1 == parts.len();
                if *part == "**" {
                    if !last {
                        return Err("`**` is only allowed as the last segment".into());
                    }
                    any_depth = true;
                } else if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}'))
                {
                    if name.is_empty()
                        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        return Err(format!(
                            "bad parameter name `{{{name}}}`: use letters, digits and `_`"
                        ));
                    }
                    if names.contains(&name) {
                        return Err(format!("parameter `{{{name}}}` appears twice"));
                    }
                    names.push(name);
                    segments.push(Segment::Param);
                } else {
                    if part.is_empty() && last {
                        return Err(trailing_slash(&parts, i));
                    }
                    if part.is_empty() || *part == "." || *part == ".." {
                        return Err("empty, `.` and `..` segments never match a request".into());
                    }
                    if *part == "*" {
                        return Err(star_segment(&parts, i, last));
                    }
                    if part.contains(['{', '}', '*', '?', '#', '%', '\\']) {
                        return Err(format!(
                            "segment `{part}` has a reserved character ({{ }} * ? # % \\)"
                        ));
                    }
                    segments.push(Segment::Literal((*part).to_owned()));
                }
            }
        }
        Ok(Self {
            text: text.to_owned(),
            segments,
            any_depth,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The fixed segments: `Some(literal)` or `None` for a `{param}`.
    pub fn segments(&self) -> impl ExactSizeIterator<Item = Option<&str>> + '_ {
        self.segments.iter().map(|s| match s {
            Segment::Literal(l) => Some(l.as_str()),
            Segment::Param => None,
        })
    }

    /// True when the template ends in `/**` (one or more further segments).
    pub fn any_depth(&self) -> bool {
        self.any_depth
    }

    /// Does every path this template matches also match `self`?
    pub fn covers(&self, other: &RouteTemplate) -> bool {
        let (mine, theirs) = (self.segments.len(), other.segments.len());
        let len_ok = match (self.any_depth, other.any_depth) {
            (false, false) => mine == theirs,
            (false, true) => false,
            (true, false) => theirs > mine,
            (true, true) => theirs >= mine,
        };
        len_ok
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|(a, b)| match (a, b) {
                    (Segment::Param, _) => true,
                    (Segment::Literal(x), Segment::Literal(y)) => x == y,
                    (Segment::Literal(_), Segment::Param) => false,
                })
    }

    /// Does a normalised, decoded path (its segments) match?
    pub fn matches<S: AsRef<str>>(&self, path: &[S]) -> bool {
        crate::probe::count();
        let fixed = self.segments.len();
        let len_ok = if self.any_depth {
            path.len() > fixed
        } else {
            path.len() == fixed
        };
        len_ok
            && self.segments.iter().zip(path).all(|(seg, got)| match seg {
                Segment::Literal(want) => want == got.as_ref(),
                Segment::Param => true,
            })
    }
}

/// A gRPC method pattern: `package.Service/Method` or `package.Service/*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcPattern {
    text: String,
    service: String,
    method: Option<String>,
}

impl GrpcPattern {
    /// Parse a pattern as written in the policy.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (service, method) = text
            .split_once('/')
            .ok_or_else(|| "expected `package.Service/Method` or `package.Service/*`".to_owned())?;
        let ident =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !service.split('.').all(ident) {
            return Err(format!("bad gRPC service name `{service}`"));
        }
        let method = match method {
            "*" => None,
            m if ident(m) => Some(m.to_owned()),
            m => return Err(format!("bad gRPC method name `{m}`")),
        };
        Ok(Self {
            text: text.to_owned(),
            service: service.to_owned(),
            method,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The fully qualified service, e.g. `lab.v1.Results`.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The method, or `None` for `Service/*`.
    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// Does every call this pattern matches also match `self`?
    pub fn covers(&self, other: &GrpcPattern) -> bool {
        self.service == other.service && (self.method.is_none() || self.method == other.method)
    }

    /// Does the gRPC request path (`/package.Service/Method`, as segments) match?
    pub fn matches<S: AsRef<str>>(&self, path: &[S]) -> bool {
        crate::probe::count();
        match path {
            [service, method] => {
                service.as_ref() == self.service
                    && self.method.as_deref().is_none_or(|m| m == method.as_ref())
            }
            _ => false,
        }
    }
}
