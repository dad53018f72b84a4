//! `policy test`: a passing suite, a failing case with its diff, located
//! errors in the test file, and the shipped example suite.

use hallpass_policy::CompiledPolicy;
use hallpass_policy::suite::Suite;

/// Unix milliseconds.
const NOW: i64 = 1_780_272_000_000;

const POLICY: &str = r#"
version: 1
trust_domains: [hospital.example]
workloads:
  spiffe://hospital.example/ns/clinical/sa/lab-results:
    allow:
      - name: ehr-reads-results
        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]
        methods: [GET]
        paths: ["/patients/{patient}/results"]
      - name: tenant-north
        from: [spiffe://hospital.example/ns/tenants/sa/portal]
        paths: ["/tenant/data"]
        headers: {X-Tenant: north}
        require_jwt: true
      - name: pharmacy
        from: ["spiffe://hospital.example/ns/pharmacy/**"]
        grpc: ["lab.v1.Results/GetResult"]
"#;

fn policy() -> CompiledPolicy {
    CompiledPolicy::from_yaml(POLICY).unwrap()
}

const PASSING: &str = r#"
defaults:
  destination: spiffe://hospital.example/ns/clinical/sa/lab-results
  time: 2026-06-01T00:00:00Z
tests:
  - name: ehr reads
    source: spiffe://hospital.example/ns/clinical/sa/ehr-api
    path: /patients/p1/results
    expect: {decision: allow, rule: ehr-reads-results, route: "/patients/{patient}/results"}
  - name: header and jwt
    source: spiffe://hospital.example/ns/tenants/sa/portal
    path: /tenant/data
    headers: {x-tenant: north}
    credentials: [x509, jwt]
    expect: {decision: allow, rule: tenant-north}
  - name: no jwt
    source: spiffe://hospital.example/ns/tenants/sa/portal
    path: /tenant/data
    headers: {X-Tenant: north}
    expect: {decision: deny, reason: no_matching_rule}
  - name: grpc
    source: spiffe://hospital.example/ns/pharmacy/sa/p
    grpc: lab.v1.Results/GetResult
    expect: {decision: allow, route: lab.v1.Results/GetResult}
  - name: jwt only is still an identity
    source: spiffe://hospital.example/ns/pharmacy/sa/p
    grpc: lab.v1.Results/GetResult
    credentials: [jwt]
    expect: {decision: allow}
  - name: nothing proven
    source: spiffe://hospital.example/ns/pharmacy/sa/p
    grpc: lab.v1.Results/GetResult
    credentials: []
    expect: {decision: deny, reason: no_identity}
"#;

#[test]
fn a_passing_suite() {
    let suite = Suite::from_yaml(PASSING, NOW).unwrap();
    let report = suite.run(&policy());
    let text = report.to_text("t.yaml", "p.yaml");
    assert_eq!((report.passed(), report.failed()), (6, 0), "{text}");
    assert!(text.ends_with("\n6 passed, 0 failed\n"), "{text}");
    assert!(text.starts_with("PASS ehr reads\n"), "{text}");
}

#[test]
fn a_failing_case_shows_a_readable_diff() {
    let tests = r#"
tests:
  - name: ehr writes
    source: spiffe://hospital.example/ns/clinical/sa/ehr-api
    destination: spiffe://hospital.example/ns/clinical/sa/lab-results
    method: POST
    path: /patients/p1/results
    time: 2026-06-01T00:00:00Z
    expect: {decision: allow, rule: ehr-reads-results}
  - name: ehr reads
    source: spiffe://hospital.example/ns/clinical/sa/ehr-api
    destination: spiffe://hospital.example/ns/clinical/sa/lab-results
    path: /patients/p1/results
    expect: {decision: deny, reason: no_matching_rule}
"#;
    let report = Suite::from_yaml(tests, NOW).unwrap().run(&policy());
    let text = report.to_text("t.yaml", "p.yaml");
    assert_eq!((report.passed(), report.failed()), (0, 2), "{text}");
    let want = "\
FAIL ehr writes (t.yaml:3:5, tests[0])
    request:  POST /patients/p1/results from spiffe://hospital.example/ns/clinical/sa/ehr-api to spiffe://hospital.example/ns/clinical/sa/lab-results at 2026-06-01T00:00:00Z, credentials [x509]
    --- expected
    +++ actual
    - decision: allow
    + decision: deny
      reason:   no_matching_rule
    - rule:     ehr-reads-results
    + rule:     (none)
    trace:    hallpass policy explain p.yaml --source spiffe://hospital.example/ns/clinical/sa/ehr-api --destination spiffe://hospital.example/ns/clinical/sa/lab-results --method POST --path '/patients/p1/results' --time 2026-06-01T00:00:00Z
FAIL ehr reads (t.yaml:10:5, tests[1])
";
    assert!(text.starts_with(want), "{text}");
    assert!(text.contains("    - decision: deny\n    + decision: allow\n    - reason:   no_matching_rule\n    + reason:   (none)\n      rule:     ehr-reads-results\n      route:    /patients/{patient}/results\n"), "{text}");
    assert!(text.ends_with("\n0 passed, 2 failed\n"), "{text}");
}

#[test]
fn test_file_errors_are_located() {
    let tests = r#"tests:
  - name: bad
    source: spiffe://hospital.example/a
    path: /x
    expect: {decision: allow}
  - name: worse
    source: "spiffe://hospital.example/ns/**"
    destination: spiffe://hospital.example/b
    path: /x
    grpc: a.B/c
    time: yesterday
    expect: {decision: deny, reason: nope, rule: r}
"#;
    let problems = Suite::from_yaml(tests, NOW).unwrap_err();
    let got: Vec<(String, Option<(u32, u32)>)> = problems
        .iter()
        .map(|p| (p.path.clone(), p.location.map(|l| (l.line, l.column))))
        .collect();
    assert_eq!(
        got,
        [
            ("tests[0].destination".to_owned(), Some((2, 5))),
            ("tests[1]".to_owned(), Some((6, 5))),
            ("tests[1].source".to_owned(), Some((7, 13))),
            ("tests[1].time".to_owned(), Some((11, 11))),
            ("tests[1].expect".to_owned(), Some((12, 13))),
            ("tests[1].expect.reason".to_owned(), Some((12, 38))),
        ],
        "{problems:#?}"
    );
    // Every problem at once, in file order: the case lacks its `expect`
    // (reported at the case), and has an unknown key (with the valid ones).
    // Taking the bad case out to read on does not invent a missing `tests`.
    let found = Suite::from_yaml("tests:\n  - name: a\n    sorce: x\n", NOW).unwrap_err();
    let got: Vec<_> = found
        .iter()
        .map(|p| {
            let at = p.location.map(|l| (l.line, l.column));
            (p.code, p.path.as_str(), at)
        })
        .collect();
    assert_eq!(
        got,
        [
            ("missing_key", "tests[0].expect", Some((2, 5))),
            ("unknown_key", "tests[0].sorce", Some((3, 5))),
        ],
        "{found:#?}"
    );
    let hint = found[1].hint.as_deref().unwrap_or_default();
    assert!(
        hint.starts_with("did you mean `source`? valid keys are: name, "),
        "{hint}"
    );
    assert!(hint.contains("source"), "{hint}");
}

/// Every malformed case is reported, once each: a case of the wrong shape
/// does not hide the problems of the cases after it (issue 14, item 10).
#[test]
fn every_malformed_case_is_reported_once() {
    let tests = r#"tests:
  - name: a
    source: spiffe://hospital.example/a
    destination: spiffe://hospital.example/b
    path: /x
    expect: deny
  - name: b
    source: not-an-id
    destination: spiffe://hospital.example/b
    path: /x
    expect: {decision: allow}
  - name: c
    source: spiffe://hospital.example/a
    destination: spiffe://hospital.example/b
    path: /x
    headers: [x-a]
    expect: {decision: deny, reson: no_matching_rule}
  - name: d
    source: spiffe://hospital.example/a
    destination: spiffe://hospital.example/b
    path: /x
    expect: {decision: allw}
"#;
    let problems = Suite::from_yaml(tests, NOW).unwrap_err();
    let got: Vec<(&str, Option<u32>)> = problems
        .iter()
        .map(|p| (p.path.as_str(), p.location.map(|l| l.line)))
        .collect();
    assert_eq!(
        got,
        [
            ("tests[0].expect", Some(6)),
            ("tests[1].source", Some(8)),
            ("tests[2].headers", Some(16)),
            ("tests[2].expect.reson", Some(17)),
            ("tests[3].expect.decision", Some(22)),
        ],
        "{problems:#?}"
    );
    // The position is given once, by the location, not again in the text.
    for p in &problems {
        assert!(!p.message.contains("line"), "{p}");
        assert!(!p.to_string().contains(" at line "), "{p}");
    }
    assert!(
        problems[0].message.contains("{decision: deny"),
        "a shorthand gets the shape to write: {}",
        problems[0]
    );
}

#[test]
fn the_shipped_clinical_mesh_suite_passes() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/policies/");
    let policy =
        CompiledPolicy::from_file(std::path::Path::new(&format!("{root}clinical-mesh.yaml")))
            .unwrap();
    let text = std::fs::read_to_string(format!("{root}clinical-mesh.tests.yaml")).unwrap();
    let suite = Suite::from_yaml(&text, NOW).unwrap();
    let report = suite.run(&policy);
    assert_eq!(report.failed(), 0, "{}", report.to_text("tests", "policy"));
    // Every rule of the example is exercised by an allow.
    for (dest, wl) in &hallpass_policy::load_document(
        &std::fs::read_to_string(format!("{root}clinical-mesh.yaml")).unwrap(),
    )
    .unwrap()
    .workloads
    {
        for rule in &wl.allow {
            assert!(
                report
                    .results
                    .iter()
                    .any(|r| r.actual.rule.as_deref() == Some(rule.name.as_str())),
                "{dest}: rule {} has no allow test",
                rule.name
            );
        }
    }
}
