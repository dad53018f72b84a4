//! The route trie returns every matching template, like a scan of all
//! templates would; and the indexed decision equals the linear reference.

use std::collections::BTreeSet;
use std::sync::Arc;

use hallpass_policy::{GrpcPattern, RouteHit, RouteKind, RouteTemplate, RouteTrie, normalize_path};
use proptest::prelude::*;

fn hit(rule: usize, position: usize, kind: RouteKind, label: &str) -> RouteHit {
    RouteHit {
        rule,
        position,
        kind,
        label: Arc::from(label),
    }
}

fn trie(templates: &[&str]) -> RouteTrie {
    let mut trie = RouteTrie::new();
    for (i, t) in templates.iter().enumerate() {
        let template = RouteTemplate::parse(t).unwrap();
        trie.insert_template(&template, hit(i, 0, RouteKind::Http, t));
    }
    trie
}

fn found(trie: &RouteTrie, path: &str) -> Vec<usize> {
    let path = normalize_path(path).unwrap();
    let mut out = Vec::new();
    trie.matches(path.segments(), &mut out);
    let mut rules: Vec<usize> = out.iter().map(|h| h.rule).collect();
    rules.sort_unstable();
    rules
}

#[test]
fn overlapping_templates_of_different_rules_are_all_returned() {
    let t = trie(&[
        "/patients/{patient}/results",
        "/patients/p-1/results",
        "/patients/**",
        "/**",
        "/patients/{patient}/{any}",
        "/patients/{patient}/results/**",
    ]);
    assert_eq!(found(&t, "/patients/p-1/results"), [0, 1, 2, 3, 4]);
    assert_eq!(found(&t, "/patients/p-2/results"), [0, 2, 3, 4]);
    assert_eq!(found(&t, "/patients/p-2/results/r1"), [2, 3, 5]);
    assert_eq!(found(&t, "/patients"), [3]);
    assert_eq!(found(&t, "/"), Vec::<usize>::new());
    assert_eq!(found(&t, "/other"), [3]);
}

#[test]
fn root_template_and_any_path_hits() {
    let mut t = trie(&["/"]);
    t.insert_any(hit(7, 0, RouteKind::Any, "*"));
    assert_eq!(found(&t, "/"), [0, 7]);
    assert_eq!(found(&t, "/a"), [7]);
}

#[test]
fn grpc_patterns_match_two_segment_paths_only() {
    let mut t = RouteTrie::new();
    for (i, g) in [
        "lab.v1.Results/GetResult",
        "lab.v1.Results/*",
        "lab.v1.Other/*",
    ]
    .iter()
    .enumerate()
    {
        t.insert_grpc(
            &GrpcPattern::parse(g).unwrap(),
            hit(i, 0, RouteKind::Grpc, g),
        );
    }
    assert_eq!(found(&t, "/lab.v1.Results/GetResult"), [0, 1]);
    assert_eq!(found(&t, "/lab.v1.Results/List"), [1]);
    assert_eq!(
        found(&t, "/lab.v1.Results/GetResult/x"),
        Vec::<usize>::new()
    );
    assert_eq!(found(&t, "/lab.v1.Results"), Vec::<usize>::new());
}

#[test]
fn literal_segments_are_exact() {
    let t = trie(&["/reports/**", "/a/b"]);
    assert_eq!(found(&t, "/reportsx/1"), Vec::<usize>::new());
    assert_eq!(found(&t, "/reports"), Vec::<usize>::new());
    assert_eq!(found(&t, "/A/b"), Vec::<usize>::new());
    assert_eq!(found(&t, "/a/b"), [1]);
}

// ---------------------------------------------------------------- trie == linear scan

/// Template segments from a small vocabulary, so templates and paths meet often.
fn template() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(
            prop_oneof![
                3 => prop::sample::select(vec!["a", "b", "c"]).prop_map(str::to_owned),
                2 => Just("{p}".to_owned()),
            ],
            0..4,
        ),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(segs, any)| {
            let mut segs: Vec<String> = segs
                .into_iter()
                .enumerate()
                .map(|(i, s)| if s == "{p}" { format!("{{p{i}}}") } else { s })
                .collect();
            if any {
                segs.push("**".into());
            }
            format!("/{}", segs.join("/"))
        })
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "d"]), 0..6)
        .prop_map(|segs| format!("/{}", segs.join("/")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// For random templates spread over random rules, the trie returns exactly
    /// the (rule, position) pairs a scan of every template finds.
    #[test]
    fn trie_equals_linear_scan(
        rules in prop::collection::vec(prop::collection::vec(template(), 1..4), 1..12),
        paths in prop::collection::vec(path(), 1..8),
    ) {
        let mut trie = RouteTrie::new();
        let mut all = Vec::new();
        for (r, templates) in rules.iter().enumerate() {
            for (p, text) in templates.iter().enumerate() {
                let t = RouteTemplate::parse(text).unwrap();
                trie.insert_template(&t, hit(r, p, RouteKind::Http, text));
                all.push((r, p, t));
            }
        }
        for path in &paths {
            let normalized = normalize_path(path).unwrap();
            let segments = normalized.segments();
            let mut out = Vec::new();
            trie.matches(segments, &mut out);
            let got: BTreeSet<(usize, usize)> = out.iter().map(|h| (h.rule, h.position)).collect();
            prop_assert_eq!(got.len(), out.len(), "no hit twice");
            let want: BTreeSet<(usize, usize)> = all
                .iter()
                .filter(|(_, _, t)| t.matches(segments))
                .map(|(r, p, _)| (*r, *p))
                .collect();
            prop_assert_eq!(got, want, "path {}", path);
        }
    }
}
