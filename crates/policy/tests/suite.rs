//! `policy test`: a passing suite, a failing case with its diff, located
//! errors in the test file, and the shipped example suite.

use hallpass_policy::suite::Suite;
use hallpass_policy::{CompiledPolicy, DenyReason};

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
    // The shipped suite is at 100 %: every rule exercised, every reason
    // the policy can give expected (issue 15, item 4).
    let coverage = report.coverage(&policy);
    assert_eq!(
        coverage.covered(),
        coverage.total(),
        "{}",
        coverage.to_text()
    );
    assert_eq!(coverage.total(), policy.rule_count());
    assert!(coverage.meets(100.0));
    assert_eq!(coverage.percent_text(), "100.0 %");
    for d in &coverage.destinations {
        assert_eq!(d.unexpected_reasons().count(), 0, "{}", coverage.to_text());
    }
    assert_eq!(
        coverage.mesh_reasons.len(),
        2,
        "{:?}",
        coverage.mesh_reasons
    );
    assert!(
        coverage.mesh_reasons.iter().all(|r| r.cases > 0),
        "{}",
        coverage.to_text()
    );
    assert!(
        !coverage.to_text().contains("no case"),
        "{}",
        coverage.to_text()
    );
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

const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";

/// A rule no case matched is listed by name and place; a rule matched once
/// is covered; the percentage is covered rules / rules (issue 15, item 4).
#[test]
fn coverage_lists_the_rules_no_case_exercises() {
    let policy = policy();
    let tests = r#"
defaults:
  destination: spiffe://hospital.example/ns/clinical/sa/lab-results
  time: 2026-06-01T00:00:00Z
tests:
  - name: ehr reads
    source: spiffe://hospital.example/ns/clinical/sa/ehr-api
    path: /patients/p1/results
    expect: {decision: allow}
  - name: the portal without its header and JWT, expecting its rule (fails)
    source: spiffe://hospital.example/ns/tenants/sa/portal
    path: /tenant/data
    expect: {decision: allow, rule: tenant-north}
"#;
    let report = Suite::from_yaml(tests, NOW).unwrap().run(&policy);
    assert_eq!(report.failed(), 1);
    let coverage = report.coverage(&policy);
    assert_eq!((coverage.covered(), coverage.total()), (1, 3));
    let [lab] = coverage.destinations.as_slice() else {
        panic!("{coverage:?}");
    };
    assert_eq!(lab.destination, LAB);
    let uncovered: Vec<(&str, usize)> = lab
        .uncovered_rules()
        .map(|r| (r.name.as_str(), r.index))
        .collect();
    // Expecting a rule is not exercising it: only the evaluator's match counts.
    assert_eq!(uncovered, [("tenant-north", 1), ("pharmacy", 2)]);
    assert_eq!(lab.rules.first().map(|r| r.cases), Some(1));
    // No rule has a time window, so only no_matching_rule is asked for.
    assert_eq!(
        lab.unexpected_reasons().collect::<Vec<_>>(),
        [DenyReason::NoMatchingRule]
    );
    assert!(coverage.meets(33.0));
    assert!(!coverage.meets(33.4));
    assert!(!coverage.meets(100.0));
    assert_eq!(
        coverage.to_text(),
        format!(
            "  {LAB}: 1/3 rules (33.3 %)\n    rule not exercised: tenant-north (allow[1])\n    rule not exercised: pharmacy (allow[2])\n    reason no case expects: no_matching_rule\n  mesh-wide reasons no case expects: untrusted_trust_domain\ncoverage: 1/3 rules (33.3 %)\n"
        )
    );
}

/// Coverage is per destination, and per rule, not per name: a rule of
/// another destination, or a later rule of the same name, is not covered
/// by a match of the first.
#[test]
fn coverage_is_per_destination_and_per_rule() {
    let policy = CompiledPolicy::from_yaml(
        r#"
version: 1
trust_domains: [hospital.example]
revoked:
  ids: [spiffe://hospital.example/ns/legacy/sa/fax]
workloads:
  spiffe://hospital.example/a:
    allow:
      - name: reads
        from: [spiffe://hospital.example/c]
        methods: [GET]
        paths: [/x]
      - name: reads
        from: [spiffe://hospital.example/c]
        methods: [GET]
        paths: [/y]
        not_after: 2026-01-01T00:00:00Z
  spiffe://hospital.example/b:
    allow:
      - name: reads
        from: [spiffe://hospital.example/c]
        methods: [GET]
        paths: [/x]
"#,
    )
    .unwrap();
    let tests = r#"
defaults:
  source: spiffe://hospital.example/c
  time: 2026-06-01T00:00:00Z
tests:
  - name: a reads x
    destination: spiffe://hospital.example/a
    path: /x
    expect: {decision: allow, rule: reads}
  - name: a reads x again
    destination: spiffe://hospital.example/a
    path: /x
    expect: {decision: allow, rule: reads}
  - name: the y grant ran out
    destination: spiffe://hospital.example/a
    path: /y
    expect: {decision: deny, reason: grant_expired}
  - name: b denies z
    destination: spiffe://hospital.example/b
    path: /z
    expect: {decision: deny, reason: no_matching_rule}
  - name: the fax is revoked
    source: spiffe://hospital.example/ns/legacy/sa/fax
    destination: spiffe://hospital.example/b
    path: /x
    expect: {decision: deny, reason: revoked}
"#;
    let report = Suite::from_yaml(tests, NOW).unwrap().run(&policy);
    assert_eq!(report.failed(), 0, "{}", report.to_text("t", "p"));
    let coverage = report.coverage(&policy);
    let [a, b] = coverage.destinations.as_slice() else {
        panic!("{coverage:?}");
    };
    assert_eq!(a.destination, "spiffe://hospital.example/a");
    let cases: Vec<usize> = a.rules.iter().map(|r| r.cases).collect();
    assert_eq!(cases, [2, 0]);
    assert_eq!((a.covered(), a.total()), (1, 2));
    // A time window adds grant_expired, which a case expects; b's case
    // expecting no_matching_rule does not count for a.
    assert_eq!(a.reasons.len(), 2);
    assert_eq!(
        a.unexpected_reasons().collect::<Vec<_>>(),
        [DenyReason::NoMatchingRule]
    );
    // b's rule has the same name as a's covered one, and is not covered.
    assert_eq!((b.covered(), b.total()), (0, 1));
    assert_eq!(b.unexpected_reasons().count(), 0);
    assert_eq!((coverage.covered(), coverage.total()), (1, 3));
    assert_eq!(coverage.percent_text(), "33.3 %");
    // revoked is asked for because the policy revokes an ID.
    let mesh: Vec<(DenyReason, usize)> = coverage
        .mesh_reasons
        .iter()
        .map(|r| (r.reason, r.cases))
        .collect();
    assert_eq!(
        mesh,
        [
            (DenyReason::UntrustedTrustDomain, 0),
            (DenyReason::Revoked, 1)
        ]
    );
    let text = coverage.to_text();
    assert!(
        text.contains("  spiffe://hospital.example/a: 1/2 rules (50.0 %)\n    rule not exercised: reads (allow[1])\n    reason no case expects: no_matching_rule\n  spiffe://hospital.example/b: 0/1 rules (0.0 %)\n    rule not exercised: reads (allow[0])\n  mesh-wide reasons no case expects: untrusted_trust_domain\n"),
        "{text}"
    );
}

/// 2 of 3 is shown 66.6 %, never rounded up; 100.0 % only when complete.
#[test]
fn coverage_percent_rounds_down() {
    let policy = policy();
    let tests = r#"
defaults:
  destination: spiffe://hospital.example/ns/clinical/sa/lab-results
  time: 2026-06-01T00:00:00Z
tests:
  - name: ehr reads
    source: spiffe://hospital.example/ns/clinical/sa/ehr-api
    path: /patients/p1/results
    expect: {decision: allow}
  - name: grpc
    source: spiffe://hospital.example/ns/pharmacy/sa/p
    grpc: lab.v1.Results/GetResult
    expect: {decision: allow}
"#;
    let coverage = Suite::from_yaml(tests, NOW)
        .unwrap()
        .run(&policy)
        .coverage(&policy);
    assert_eq!(coverage.percent_text(), "66.6 %");
    assert!(coverage.meets(66.6));
    assert!(!coverage.meets(66.7));
}
