//! Loading a policy: unknown keys and every other mistake are errors, each
//! problem carries its key path, and metric labels stay bounded.

use hallpass_policy::{CompiledPolicy, PolicyError, Problem};
use spiffe::{SpiffeId, TrustDomain};

const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";

fn problems(yaml: &str) -> Vec<Problem> {
    match CompiledPolicy::from_yaml(yaml) {
        Err(PolicyError::Invalid(problems)) => problems,
        Err(other) => panic!("expected Invalid, got {other:?}"),
        Ok(_) => panic!("policy should not load:\n{yaml}"),
    }
}

fn paths(problems: &[Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.path.as_str()).collect()
}

fn id(text: &str) -> SpiffeId {
    SpiffeId::new(text).unwrap()
}

// ---------------------------------------------------------------- unknown keys

#[test]
fn unknown_keys_are_errors_at_every_level() {
    let table: &[(&str, &str, &str)] = &[
        (
            "top level",
            "version: 1\ntrust_domain: [hospital.example]\n",
            "trust_domain",
        ),
        (
            "revoked",
            "version: 1\nrevoked:\n  id: [spiffe://hospital.example/a]\n",
            "id",
        ),
        (
            "workload",
            "version: 1\nworkloads:\n  spiffe://hospital.example/a:\n    modes: audit\n",
            "modes",
        ),
        (
            "rule: a misspelt `methods` must not mean any method",
            "version: 1\nworkloads:\n  spiffe://hospital.example/a:\n    allow:\n      - name: r\n        from: [spiffe://hospital.example/b]\n        metods: [GET]\n",
            "metods",
        ),
        (
            "rule: a misspelt `require_jwt` must not be dropped",
            "version: 1\nworkloads:\n  spiffe://hospital.example/a:\n    allow:\n      - name: r\n        from: [spiffe://hospital.example/b]\n        requires_jwt: true\n",
            "requires_jwt",
        ),
    ];
    for (what, yaml, key) in table {
        let found = problems(yaml);
        assert_eq!(found.len(), 1, "{what}: {found:?}");
        let p = &found[0];
        assert!(
            p.message.contains(&format!("unknown field `{key}`")),
            "{what}: {p}"
        );
        assert!(
            p.location.is_some(),
            "{what}: unknown keys have a line: {p}"
        );
    }
}

#[test]
fn unknown_key_problem_names_where_it_is() {
    let yaml = "version: 1\nworkloads:\n  spiffe://hospital.example/a:\n    allow:\n      - name: r\n        from: [spiffe://hospital.example/b]\n        metods: [GET]\n";
    let found = problems(yaml);
    let p = &found[0];
    assert_eq!(p.location.map(|l| (l.line, l.column)), Some((7, 9)), "{p}");
    assert_eq!(p.code, "unknown_key", "{p}");
    assert_eq!(
        p.path, "workloads.\"spiffe://hospital.example/a\".allow[0].metods",
        "{p}"
    );
}

#[test]
fn syntax_errors_and_wrong_types_are_reported() {
    for yaml in [
        "version: 1\nworkloads: [\n",
        "version: one\n",
        "version: 1\nworkloads: []\n",
        "version: 1\nworkloads:\n  spiffe://hospital.example/a:\n    mode: permissive\n",
        "version: 1\nworkloads:\n  spiffe://hospital.example/a:\n    allow:\n      - name: r\n        from: spiffe://hospital.example/b\n",
        "version: 1\nworkloads:\n  spiffe://hospital.example/a:\n    allow:\n      - from: [spiffe://hospital.example/b]\n",
        "version: 1\nworkloads:\n  spiffe://hospital.example/a:\n    allow:\n      - name: r\n        from: [spiffe://hospital.example/b]\n        require_jwt: maybe\n",
        "trust_domains: [hospital.example]\n",
    ] {
        let found = problems(yaml);
        assert_eq!(found.len(), 1, "{yaml}: {found:?}");
    }
}

#[test]
fn a_destination_written_twice_is_an_error() {
    // Without this, the second entry would silently replace the first: here it
    // would turn an enforced destination into an audited (fail-open) one.
    let yaml = r#"
version: 1
trust_domains: [hospital.example]
workloads:
  spiffe://hospital.example/ns/clinical/sa/lab-results:
    mode: enforce
    allow: []
  spiffe://hospital.example/ns/clinical/sa/other:
    allow: []
  spiffe://hospital.example/ns/clinical/sa/lab-results:
    mode: audit
"#;
    let found = problems(yaml);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0]
            .message
            .contains("duplicate key `spiffe://hospital.example/ns/clinical/sa/lab-results`"),
        "{}",
        found[0]
    );
}

#[test]
fn a_field_written_twice_is_an_error() {
    let yaml = "version: 1\nworkloads:\n  spiffe://hospital.example/a:\n    mode: enforce\n    mode: audit\n";
    let found = problems(yaml);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].message.contains("duplicate field `mode`"),
        "{}",
        found[0]
    );
}

// ---------------------------------------------------------------- every problem, with its path

#[test]
fn three_mistakes_give_three_problems_with_key_paths() {
    let yaml = r#"
version: 1
trust_domains: [hospital.example, Imaging.Example]
workloads:
  spiffe://hospital.example/ns/clinical/sa/lab-results:
    allow:
      - name: ehr-reads-results
        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]
        methods: [GET, get]
        paths: ["/patients/{patient}/results"]
      - name: pharmacy-lookup
        from: ["spiffe://hospital.example/ns/pharmacy/**"]
        paths: ["/ok", "patients/{id}"]
"#;
    let found = problems(yaml);
    let dest = format!("workloads.\"{LAB}\"");
    assert_eq!(
        paths(&found),
        [
            "trust_domains[1]".to_owned(),
            format!("{dest}.allow[0].methods[1]"),
            format!("{dest}.allow[1].paths[1]"),
        ],
        "{found:#?}"
    );
    assert!(found.iter().all(|p| !p.message.is_empty()));
}

#[test]
fn every_kind_of_compile_problem_is_reported_at_once() {
    let yaml = r#"
version: 2
trust_domains: [hospital.example, "spiffe://hospital.example", "bad domain"]
revoked:
  ids: ["spiffe://hospital.example/ns/legacy/**", "not-an-id"]
workloads:
  "spiffe://hospital.example/ns/clinical/*":
    allow: []
  "https://hospital.example/x":
    allow: []
  spiffe://hospital.example/ns/clinical/sa/lab-results:
    allow:
      - name: ""
        from: []
      - name: r1
        from: ["spiffe://hospital.example/ns/*/sa", spiffe://Hospital.example/a]
        methods: [FETCH]
        paths: ["/a/../b"]
        grpc: ["lab.v1.Results"]
        not_before: yesterday
        not_after: "2026-13-01T00:00:00Z"
"#;
    let found = problems(yaml);
    let dest = format!("workloads.\"{LAB}\"");
    let want = [
        "version".to_owned(),
        "trust_domains[1]".to_owned(),
        "trust_domains[2]".to_owned(),
        "revoked.ids[0]".to_owned(),
        "revoked.ids[1]".to_owned(),
        "workloads.\"https://hospital.example/x\"".to_owned(),
        format!("{dest}.allow[0].name"),
        format!("{dest}.allow[0].from"),
        format!("{dest}.allow[1].from[0]"),
        format!("{dest}.allow[1].from[1]"),
        format!("{dest}.allow[1].methods[0]"),
        format!("{dest}.allow[1].paths[0]"),
        format!("{dest}.allow[1].grpc[0]"),
        format!("{dest}.allow[1].not_before"),
        format!("{dest}.allow[1].not_after"),
        "workloads.\"spiffe://hospital.example/ns/clinical/*\"".to_owned(),
    ];
    let mut got: Vec<String> = found.iter().map(|p| p.path.clone()).collect();
    let mut want: Vec<String> = want.to_vec();
    got.sort();
    want.sort();
    assert_eq!(got, want, "{found:#?}");
}

/// A rule that can never match is an error with a hint, not a silent
/// deny (issue 14, item 3): a window that ends before it starts, and an
/// empty `methods` (or `paths`, `grpc`) list.
#[test]
fn rules_that_can_never_match_are_errors_with_a_hint() {
    let yaml = format!(
        r#"
version: 1
trust_domains: [hospital.example]
workloads:
  {LAB}:
    allow:
      - name: backwards
        from: [spiffe://hospital.example/a]
        not_before: 2027-02-01T00:00:00Z
        not_after: 2027-01-01T00:00:00Z
      - name: no-methods
        from: [spiffe://hospital.example/a]
        methods: []
      - name: no-paths
        from: [spiffe://hospital.example/a]
        paths: []
        grpc: []
      - name: one-instant
        from: [spiffe://hospital.example/a]
        not_before: 2027-01-01T00:00:00Z
        not_after: 2027-01-01T00:00:00Z
"#
    );
    let found = problems(&yaml);
    let dest = format!("workloads.\"{LAB}\"");
    let mut got: Vec<String> = found
        .iter()
        .map(|p| format!("{}: {}", p.path, p.message))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            format!(
                "{dest}.allow[0].not_before: not_before (2027-02-01T00:00:00Z) is after not_after (2027-01-01T00:00:00Z), so the rule can never match; swap them, or fix the date that is wrong"
            ),
            format!(
                "{dest}.allow[1].methods: an empty list matches no request, so this rule would allow nothing; leave `methods` out to allow any, or list what to allow"
            ),
            format!(
                "{dest}.allow[2].grpc: an empty list matches no request, so this rule would allow nothing; leave `grpc` out to allow any, or list what to allow"
            ),
            format!(
                "{dest}.allow[2].paths: an empty list matches no request, so this rule would allow nothing; leave `paths` out to allow any, or list what to allow"
            ),
        ],
        "{found:#?}"
    );
}

/// An unknown method gets the list of methods a rule can name; a method in
/// the wrong case gets its right spelling (issue 14, item 4).
#[test]
fn an_unknown_method_lists_the_valid_ones() {
    let yaml = format!(
        "version: 1\ntrust_domains: [hospital.example]\nworkloads:\n  {LAB}:\n    allow:\n      - name: r\n        from: [spiffe://hospital.example/a]\n        methods: [POTS, get]\n"
    );
    let found = problems(&yaml);
    let messages: Vec<&str> = found.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "unknown HTTP method `POTS`; a rule can name GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE, CONNECT",
            "unknown HTTP method `get`: methods are case-sensitive; write `GET`",
        ],
        "{found:#?}"
    );
}

#[test]
fn policy_error_display_lists_every_problem() {
    let yaml = "version: 3\ntrust_domains: [Bad.Example]\n";
    let err = CompiledPolicy::from_yaml(yaml).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("version:"), "{text}");
    assert!(text.contains("trust_domains[0]:"), "{text}");
}

// ---------------------------------------------------------------- labels

const LABELLED: &str = r#"
version: 1
trust_domains: [hospital.example, imaging-vendor.example]
revoked:
  ids: [spiffe://hospital.example/ns/legacy/sa/fax-gateway]
workloads:
  spiffe://hospital.example/ns/clinical/sa/lab-results:
    allow:
      - name: ehr
        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]
      - name: pharmacy
        from: ["spiffe://hospital.example/ns/pharmacy/**"]
      - name: vendor
        from: [spiffe://imaging-vendor.example/uploader]
"#;

#[test]
fn source_labels_are_bounded() {
    let policy = CompiledPolicy::from_yaml(LABELLED).unwrap();
    let table: &[(&str, &str)] = &[
        // named exactly in a rule
        (
            "spiffe://hospital.example/ns/clinical/sa/ehr-api",
            "spiffe://hospital.example/ns/clinical/sa/ehr-api",
        ),
        (
            "spiffe://imaging-vendor.example/uploader",
            "spiffe://imaging-vendor.example/uploader",
        ),
        // named as a destination
        (LAB, LAB),
        // named in revoked
        (
            "spiffe://hospital.example/ns/legacy/sa/fax-gateway",
            "spiffe://hospital.example/ns/legacy/sa/fax-gateway",
        ),
        // only matched by a wildcard: not named
        (
            "spiffe://hospital.example/ns/pharmacy/sa/pharmacy",
            "other:hospital.example",
        ),
        (
            "spiffe://hospital.example/ns/random/p-12345",
            "other:hospital.example",
        ),
        (
            "spiffe://imaging-vendor.example/viewer",
            "other:imaging-vendor.example",
        ),
        // trust domain not listed
        (
            "spiffe://evil.example/ns/clinical/sa/ehr-api",
            "other:untrusted",
        ),
        ("spiffe://hospital.example.evil/a", "other:untrusted"),
    ];
    for (source, want) in table {
        assert_eq!(&*policy.source_label(&id(source)), *want, "{source}");
    }
}

#[test]
fn destination_labels_are_bounded() {
    let policy = CompiledPolicy::from_yaml(LABELLED).unwrap();
    assert_eq!(&*policy.destination_label(&id(LAB)), LAB);
    assert_eq!(
        &*policy.destination_label(&id("spiffe://hospital.example/ns/clinical/sa/ehr-api")),
        "other",
        "a source named in rules is not a destination"
    );
    assert_eq!(
        &*policy.destination_label(&id("spiffe://hospital.example/unknown")),
        "other"
    );
}

#[test]
fn trusted_domains_and_destinations_are_exposed() {
    let policy = CompiledPolicy::from_yaml(LABELLED).unwrap();
    assert!(policy.trusts(&TrustDomain::new("hospital.example").unwrap()));
    assert!(policy.trusts(&TrustDomain::new("imaging-vendor.example").unwrap()));
    assert!(!policy.trusts(&TrustDomain::new("evil.example").unwrap()));
    let dests: Vec<String> = policy.destinations().map(|d| d.to_string()).collect();
    assert_eq!(dests, [LAB]);
    let wl = policy.workload(&id(LAB)).unwrap();
    let names: Vec<&str> = wl.rules.iter().map(|r| &*r.name).collect();
    assert_eq!(names, ["ehr", "pharmacy", "vendor"]);
}

#[test]
fn revocation_serials_parse_to_bytes_without_leading_zeros() {
    use hallpass_policy::parse_serial;
    assert_eq!(parse_serial("00:0a:1b").unwrap(), [0x0a, 0x1b]);
    assert_eq!(parse_serial("abc").unwrap(), [0x0a, 0xbc]);
    assert_eq!(parse_serial("0:00").unwrap(), [] as [u8; 0]);
    assert_eq!(parse_serial("FF00").unwrap(), [0xff, 0x00]);
    for bad in ["", ":", "0g", "é1", &"a".repeat(129)] {
        assert!(parse_serial(bad).is_err(), "{bad:?}");
    }
}
