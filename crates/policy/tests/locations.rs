//! Every problem has a line:column and a key path: YAML errors, shape errors
//! (all at once, not just serde's first) and compile errors deep in the file.

use hallpass_policy::check::check;
use hallpass_policy::{CompiledPolicy, Location, LocationIndex, PolicyError, Problem};

const NOW: i64 = 1_780_272_000;

/// `(line, column)`, for compact tables.
fn lc(at: Option<Location>) -> Option<(u32, u32)> {
    at.map(|l| (l.line, l.column))
}

fn problems(yaml: &str) -> Vec<Problem> {
    match CompiledPolicy::from_yaml(yaml) {
        Err(PolicyError::Invalid(p)) => p,
        other => panic!("expected problems, got {other:?}"),
    }
}

const DEEP: &str = r#"# comment line
version: 1
trust_domains: [hospital.example]
workloads:
  spiffe://hospital.example/ns/billing/sa/billing:
    allow:
      - name: ok
        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]
  "spiffe://hospital.example/ns/clinical/sa/lab-results":
    mode: enforce
    allow:
      - name: first
        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]
      - name: second
        from:
          - spiffe://hospital.example/ns/clinical/sa/ehr-api
          - "spiffe://hospital.example/ns/*/sa/x"
        paths: ["/ok", "/a/{id}/b/{id}"]
        headers:
          X-Tenant: north
        not_after: "2026-02-30T00:00:00Z"
"#;

#[test]
fn compile_errors_deep_in_the_file_have_line_column_and_key_path() {
    let found = problems(DEEP);
    let dest = "workloads.\"spiffe://hospital.example/ns/clinical/sa/lab-results\"";
    let got: Vec<(String, Option<(u32, u32)>)> = found
        .iter()
        .map(|p| (p.path.clone(), lc(p.location)))
        .collect();
    assert_eq!(
        got,
        [
            (format!("{dest}.allow[1].from[1]"), Some((17, 13))),
            (format!("{dest}.allow[1].paths[1]"), Some((18, 24))),
            (format!("{dest}.allow[1].not_after"), Some((21, 20))),
        ],
        "{found:#?}"
    );
    assert!(found.iter().all(|p| p.code == "invalid_value"));
}

#[test]
fn check_report_prints_file_line_column_and_path() {
    let report = check(DEEP, NOW);
    assert_eq!(report.errors(), 3);
    let text = report.to_text("mesh.yaml");
    assert!(
        text.contains(
            "mesh.yaml:18:24: error[invalid_value]: workloads.\"spiffe://hospital.example/ns/clinical/sa/lab-results\".allow[1].paths[1]: "
        ),
        "{text}"
    );
    assert!(
        text.ends_with("mesh.yaml: 3 error(s), 0 warning(s)\n"),
        "{text}"
    );
}

#[test]
fn every_shape_problem_is_reported_at_once_with_its_place() {
    let yaml = r#"version: 1
trust_domain: [hospital.example]
workloads:
  spiffe://hospital.example/a:
    mode: permissive
    allow:
      - name: r
        from: spiffe://hospital.example/b
        metods: [GET]
        require_jwt: maybe
      - from: [spiffe://hospital.example/c]
        headers: [x-tenant]
"#;
    let found = problems(yaml);
    let a = "workloads.\"spiffe://hospital.example/a\"";
    let got: Vec<_> = found
        .iter()
        .map(|p| (p.code, p.path.clone(), lc(p.location)))
        .collect();
    assert_eq!(
        got,
        [
            ("unknown_key", "trust_domain".to_owned(), Some((2, 1))),
            ("wrong_type", format!("{a}.mode"), Some((5, 11))),
            ("wrong_type", format!("{a}.allow[0].from"), Some((8, 15))),
            ("unknown_key", format!("{a}.allow[0].metods"), Some((9, 9))),
            (
                "wrong_type",
                format!("{a}.allow[0].require_jwt"),
                Some((10, 22))
            ),
            ("missing_key", format!("{a}.allow[1].name"), Some((11, 9))),
            (
                "wrong_type",
                format!("{a}.allow[1].headers"),
                Some((12, 18))
            ),
        ],
        "{found:#?}"
    );
    assert!(
        found[1].message.contains("one of `enforce`, `audit`"),
        "{}",
        found[1]
    );
}

#[test]
fn yaml_syntax_errors_have_a_place() {
    let found = problems("version: 1\nworkloads:\n  a: [b\n  c: d\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].code, "yaml_syntax");
    assert!(found[0].location.is_some());
}

#[test]
fn duplicate_keys_point_at_the_second_key() {
    let yaml = "version: 1\nworkloads:\n  spiffe://hospital.example/a:\n    allow: []\n  spiffe://hospital.example/a:\n    mode: audit\n";
    let found = problems(yaml);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].code, "duplicate_key");
    assert_eq!(lc(found[0].location), Some((5, 3)));
    assert_eq!(found[0].path, "workloads.\"spiffe://hospital.example/a\"");
}

#[test]
fn a_bad_destination_key_points_at_the_key() {
    let yaml = "version: 1\nworkloads:\n  https://hospital.example/x:\n    allow: []\n";
    let found = problems(yaml);
    assert_eq!(lc(found[0].location), Some((3, 3)), "{found:?}");
}

#[test]
fn location_index_handles_quoted_keys_anchors_and_flow_maps() {
    let text = "a: &x\n  k: [1, 2]\nb: *x\n\"c.d\": {e: f}\n";
    let index = LocationIndex::new(text);
    assert_eq!(lc(index.value("a.k[1]")), Some((2, 10)));
    assert_eq!(lc(index.value("b.k[0]")), Some((2, 7)));
    assert_eq!(lc(index.key("\"c.d\"")), Some((4, 1)));
    assert_eq!(lc(index.value("\"c.d\".e")), Some((4, 12)));
}
