//! Segment tries: the index a decision walks instead of scanning rules.
//!
//! A destination's rules are indexed twice over. First by source: exact IDs
//! in a hash map, `/*` and `/**` patterns in a trie of ID path segments. Each
//! of those entries holds a [`RouteTrie`] with the route templates (and gRPC
//! patterns) of just the rules that name that source. A decision therefore
//! touches only the rules that could apply to its caller: its cost depends on
//! the depth of the caller's ID and of the request path, and on the number of
//! rules that actually match, never on how many other rules the policy has.
//!
//! A [`RouteTrie`] returns *every* template that matches a path, tagged with
//! its rule index and position, not one most-specific winner as an HTTP
//! router would: the policy's semantics are "first rule in file order whose
//! every condition holds", so overlapping templates of different rules must
//! all be seen.

use std::collections::HashMap;
use std::sync::Arc;

use spiffe::{SpiffeId, TrustDomain};

use crate::compile::CompiledRule;
use crate::{GrpcPattern, RouteTemplate, SourcePattern};

/// How a request must be made for a route hit to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// An HTTP path template: the rule's `methods` apply.
    Http,
    /// A gRPC pattern: the request must be a `POST`.
    Grpc,
    /// A rule without `paths` or `grpc`: any path, the rule's `methods` apply.
    Any,
}

/// One template that matched, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteHit {
    /// Index of the rule in its destination's `allow` list.
    pub rule: usize,
    /// Position of the template in the rule: `paths` first, then `grpc`.
    /// Among the hits of one rule, the lowest position gives the route label.
    pub position: usize,
    /// How the request must be made.
    pub kind: RouteKind,
    /// The route label: the template as written.
    pub label: Arc<str>,
}

/// The route templates and gRPC patterns of a set of rules, as a trie over
/// path segments: literal children by segment, one `{param}` child, and at
/// each node the templates that end there or continue with a trailing `/**`.
#[derive(Debug, Clone, Default)]
pub struct RouteTrie {
    root: RouteNode,
    grpc: HashMap<Box<str>, GrpcService>,
    any_path: Vec<RouteHit>,
}

#[derive(Debug, Clone, Default)]
struct RouteNode {
    literal: HashMap<Box<str>, RouteNode>,
    param: Option<Box<RouteNode>>,
    /// Templates that end exactly here.
    end: Vec<RouteHit>,
    /// Templates with a trailing `/**` here: one or more further segments.
    rest: Vec<RouteHit>,
}

#[derive(Debug, Clone, Default)]
struct GrpcService {
    methods: HashMap<Box<str>, Vec<RouteHit>>,
    any: Vec<RouteHit>,
}

impl RouteTrie {
    /// An empty trie.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add an HTTP path template.
    pub fn insert_template(&mut self, template: &RouteTemplate, hit: RouteHit) {
        let mut node = &mut self.root;
        for segment in template.segments() {
            node = match segment {
                Some(literal) => node.literal.entry(Box::from(literal)).or_default(),
                None => node.param.get_or_insert_default(),
            };
        }
        if template.any_depth() {
            node.rest.push(hit);
        } else {
            node.end.push(hit);
        }
    }

    /// Add a gRPC pattern (it matches the two-segment path `/Service/Method`).
    pub fn insert_grpc(&mut self, pattern: &GrpcPattern, hit: RouteHit) {
        let service = self.grpc.entry(Box::from(pattern.service())).or_default();
        match pattern.method() {
            Some(method) => service
                .methods
                .entry(Box::from(method))
                .or_default()
                .push(hit),
            None => service.any.push(hit),
        }
    }

    /// Add a hit that matches every path.
    pub fn insert_any(&mut self, hit: RouteHit) {
        self.any_path.push(hit);
    }

    /// Add every route of a compiled rule, `index` being its place in the
    /// destination's `allow` list.
    pub(crate) fn insert_rule(&mut self, index: usize, rule: &CompiledRule) {
        if rule.paths.is_none() && rule.grpc.is_none() {
            self.insert_any(RouteHit {
                rule: index,
                position: 0,
                kind: RouteKind::Any,
                label: crate::compile::any_route(),
            });
            return;
        }
        let paths = rule.paths.as_deref().unwrap_or_default();
        for (position, (template, label)) in paths.iter().enumerate() {
            let hit = RouteHit {
                rule: index,
                position,
                kind: RouteKind::Http,
                label: label.clone(),
            };
            self.insert_template(template, hit);
        }
        for (i, (pattern, label)) in rule.grpc.iter().flatten().enumerate() {
            let hit = RouteHit {
                rule: index,
                position: paths.len() + i,
                kind: RouteKind::Grpc,
                label: label.clone(),
            };
            self.insert_grpc(pattern, hit);
        }
    }

    /// Append every hit whose template matches the (normalised) path segments.
    pub fn matches<'a, S: AsRef<str>>(&'a self, segments: &[S], out: &mut Vec<&'a RouteHit>) {
        out.extend(self.any_path.iter());
        walk(&self.root, segments, out);
        if let [service, method] = segments
            && let Some(svc) = self.grpc.get(service.as_ref())
        {
            out.extend(svc.any.iter());
            if let Some(hits) = svc.methods.get(method.as_ref()) {
                out.extend(hits.iter());
            }
        }
    }
}

fn walk<'a, S: AsRef<str>>(node: &'a RouteNode, segments: &[S], out: &mut Vec<&'a RouteHit>) {
    let Some((first, rest)) = segments.split_first() else {
        out.extend(node.end.iter());
        return;
    };
    out.extend(node.rest.iter());
    if let Some(child) = node.literal.get(first.as_ref()) {
        walk(child, rest, out);
    }
    if let Some(child) = &node.param {
        walk(child, rest, out);
    }
}

/// The per-destination source index: which route tries apply to a caller.
#[derive(Debug, Clone, Default)]
pub(crate) struct SourceIndex {
    exact: HashMap<SpiffeId, RouteTrie>,
    patterns: HashMap<TrustDomain, PatternNode>,
}

/// A node of the source-pattern trie: one segment of an ID path.
#[derive(Debug, Clone, Default)]
struct PatternNode {
    children: HashMap<Box<str>, PatternNode>,
    /// Rules naming `prefix/*`, where the prefix ends at this node.
    one_below: Option<RouteTrie>,
    /// Rules naming `prefix/**`.
    any_below: Option<RouteTrie>,
}

impl SourceIndex {
    /// Index the routes of rule `index` under each of its sources.
    pub(crate) fn insert_rule(&mut self, index: usize, rule: &CompiledRule) {
        for pattern in &rule.from {
            let trie = match pattern {
                SourcePattern::Exact(id) => self.exact.entry(id.clone()).or_default(),
                SourcePattern::OneBelow {
                    trust_domain,
                    segments,
                } => self
                    .pattern_node(trust_domain, segments)
                    .one_below
                    .get_or_insert_default(),
                SourcePattern::AnyBelow {
                    trust_domain,
                    segments,
                } => self
                    .pattern_node(trust_domain, segments)
                    .any_below
                    .get_or_insert_default(),
            };
            trie.insert_rule(index, rule);
        }
    }

    fn pattern_node(
        &mut self,
        trust_domain: &TrustDomain,
        segments: &[String],
    ) -> &mut PatternNode {
        let mut node = self.patterns.entry(trust_domain.clone()).or_default();
        for s in segments {
            node = node.children.entry(Box::from(s.as_str())).or_default();
        }
        node
    }

    /// Append the route hits of every rule that names `source` (exactly or by
    /// a pattern) and whose templates match `segments`. Returns whether any
    /// rule names `source` at all, matching templates or not: the walk finds
    /// that out on its way, so an `unknown_source` costs no second look.
    pub(crate) fn matches<'a, S: AsRef<str>>(
        &'a self,
        source: &SpiffeId,
        segments: &[S],
        out: &mut Vec<&'a RouteHit>,
    ) -> bool {
        let mut named = false;
        self.for_each_trie(source, |trie| {
            named = true;
            trie.matches(segments, out);
        });
        named
    }

    /// Does any rule name `source`, exactly or by a pattern? The same walk
    /// as [`SourceIndex::matches`]: one hash lookup and one trie path as deep
    /// as the ID, never a scan of the rules.
    pub(crate) fn names(&self, source: &SpiffeId) -> bool {
        let mut named = false;
        self.for_each_trie(source, |_| named = true);
        named
    }

    /// Call `f` with the route trie of every source entry that applies to
    /// `source`: its exact entry, then the `/**` and `/*` entries along its
    /// ID path.
    fn for_each_trie<'a>(&'a self, source: &SpiffeId, mut f: impl FnMut(&'a RouteTrie)) {
        if let Some(trie) = self.exact.get(source) {
            f(trie);
        }
        let Some(mut node) = self.patterns.get(source.trust_domain()) else {
            return;
        };
        let path = source.path();
        let mut remaining = path.split('/').skip(1).count();
        let mut id_segments = path.split('/').skip(1);
        loop {
            if remaining >= 1 {
                if let Some(trie) = &node.any_below {
                    f(trie);
                }
                if remaining == 1
                    && let Some(trie) = &node.one_below
                {
                    f(trie);
                }
            }
            let Some(segment) = id_segments.next() else {
                return;
            };
            remaining -= 1;
            match node.children.get(segment) {
                Some(child) => node = child,
                None => return,
            }
        }
    }
}
