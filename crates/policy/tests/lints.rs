//! `policy check` lints: one test per lint, each with a policy that has the
//! problem and one that does not. Findings carry their key path and place.

use hallpass_policy::Problem;
use hallpass_policy::check::{Report, Severity, check};

/// 2026-06-01T00:00:00Z.
const NOW: i64 = 1_780_272_000;
const DAY: i64 = 86_400;

fn policy(mode: &str, rules: &str) -> String {
    format!(
        "version: 1\ntrust_domains: [hospital.example]\nworkloads:\n  spiffe://hospital.example/ns/clinical/sa/lab-results:\n    mode: {mode}\n    allow:\n{rules}"
    )
}

fn lint(rules: &str) -> Report {
    check(&policy("enforce", rules), NOW)
}

fn with_code<'a>(report: &'a Report, code: &str) -> Vec<&'a Problem> {
    report.findings.iter().filter(|f| f.code == code).collect()
}

fn only(report: &Report, code: &str) -> Problem {
    assert_eq!(report.errors(), 0, "{report:#?}");
    let found = with_code(report, code);
    assert_eq!(found.len(), 1, "{report:#?}");
    let f = found[0].clone();
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.location.is_some(), "{f:?}");
    f
}

fn none(report: &Report, code: &str) {
    assert_eq!(report.errors(), 0, "{report:#?}");
    assert!(with_code(report, code).is_empty(), "{report:#?}");
}

const DEST: &str = "workloads.\"spiffe://hospital.example/ns/clinical/sa/lab-results\"";

#[test]
fn a_clean_policy_has_no_findings() {
    let report = lint(
        r#"      - name: ehr
        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]
        methods: [GET]
        paths: ["/patients/{patient}/results"]
"#,
    );
    assert_eq!(report.findings, [], "{report:#?}");
    assert!(report.to_text("p.yaml").ends_with("p.yaml: ok\n"));
}

#[test]
fn shadowed_rule() {
    let report = lint(
        r#"      - name: broad
        from: ["spiffe://hospital.example/ns/clinical/**"]
        methods: [GET, POST]
        paths: ["/patients/**"]
      - name: narrow
        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]
        methods: [GET]
        paths: ["/patients/{patient}/results"]
"#,
    );
    let f = only(&report, "shadowed_rule");
    assert_eq!(f.path, format!("{DEST}.allow[1]"));
    assert_eq!(f.location.map(|l| (l.line, l.column)), Some((11, 9)));
    assert!(f.message.contains("allow[0] (`broad`)"), "{}", f.message);

    // Narrower in any one respect (here a header) is not shadowed…
    none(
        &lint(
            r#"      - name: broad
        from: ["spiffe://hospital.example/ns/clinical/**"]
        paths: ["/patients/**"]
        headers: {x-tenant: north}
      - name: narrow
        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]
        paths: ["/patients/{patient}/results"]
"#,
        ),
        "shadowed_rule",
    );
    // …nor is a later rule that is broader than the earlier one.
    none(
        &lint(
            r#"      - name: narrow
        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]
        methods: [GET]
        paths: ["/patients/{patient}/results"]
      - name: broad
        from: ["spiffe://hospital.example/ns/clinical/**"]
        methods: [GET, POST]
        paths: ["/patients/**"]
"#,
        ),
        "shadowed_rule",
    );
}

#[test]
fn shadowed_by_a_longer_time_window_but_not_a_shorter_one() {
    let rules = |first: &str| {
        format!(
            r#"      - name: first
        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]
        paths: ["/a"]
        not_after: {first}
      - name: second
        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]
        paths: ["/a"]
        not_after: 2027-01-01T00:00:00Z
"#
        )
    };
    only(&lint(&rules("2028-01-01T00:00:00Z")), "shadowed_rule");
    none(&lint(&rules("2026-12-01T00:00:00Z")), "shadowed_rule");
}

/// Listing all nine methods is not "any method": a request with another
/// method (`PROPFIND`) is allowed only by the later rule, so it is not
/// shadowed. The other way round it is.
#[test]
fn every_named_method_does_not_shadow_any_method() {
    let every = r#"      - name: every-named
        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]
        methods: [GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE, CONNECT]
        paths: ["/reports/**"]
"#;
    let any = r#"      - name: any
        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]
        paths: ["/reports/**"]
"#;
    none(&lint(&format!("{every}{any}")), "shadowed_rule");
    let f = only(&lint(&format!("{any}{every}")), "shadowed_rule");
    assert_eq!(f.path, format!("{DEST}.allow[1]"));
}

#[test]
fn shadowed_grpc_rule() {
    let report = lint(
        r#"      - name: service
        from: [spiffe://hospital.example/ns/pharmacy/sa/pharmacy]
        grpc: ["lab.v1.Results/*"]
      - name: method
        from: [spiffe://hospital.example/ns/pharmacy/sa/pharmacy]
        grpc: ["lab.v1.Results/GetResult"]
"#,
    );
    only(&report, "shadowed_rule");
    none(
        &lint(
            r#"      - name: method
        from: [spiffe://hospital.example/ns/pharmacy/sa/pharmacy]
        grpc: ["lab.v1.Results/GetResult"]
      - name: service
        from: [spiffe://hospital.example/ns/pharmacy/sa/pharmacy]
        grpc: ["lab.v1.Results/*"]
"#,
        ),
        "shadowed_rule",
    );
}

#[test]
fn duplicate_rule_name() {
    let rules = |second: &str| {
        format!(
            r#"      - name: ehr
        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]
        methods: [GET]
        paths: ["/a"]
      - name: {second}
        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]
        methods: [POST]
        paths: ["/b"]
"#
        )
    };
    let f = only(&lint(&rules("ehr")), "duplicate_rule_name");
    assert_eq!(f.path, format!("{DEST}.allow[1].name"));
    assert_eq!(f.location.map(|l| (l.line, l.column)), Some((11, 15)));
    none(&lint(&rules("ehr-writes")), "duplicate_rule_name");
}

#[test]
fn duplicate_names_in_different_destinations_are_fine() {
    let text = r#"version: 1
trust_domains: [hospital.example]
workloads:
  spiffe://hospital.example/a:
    allow:
      - {name: ehr, from: [spiffe://hospital.example/x], paths: ["/a"]}
  spiffe://hospital.example/b:
    allow:
      - {name: ehr, from: [spiffe://hospital.example/x], paths: ["/a"]}
"#;
    none(&check(text, NOW), "duplicate_rule_name");
}

#[test]
fn wide_source() {
    for wide in [
        "spiffe://hospital.example/**",
        "spiffe://hospital.example/ns/*",
        "spiffe://hospital.example/ns/**",
    ] {
        let report = lint(&format!(
            "      - name: r\n        from: [spiffe://hospital.example/ns/a/sa/b, \"{wide}\"]\n        paths: [\"/a\"]\n"
        ));
        let f = only(&report, "wide_source");
        assert_eq!(f.path, format!("{DEST}.allow[0].from[1]"), "{wide}");
        assert_eq!(
            f.location.map(|l| (l.line, l.column)),
            Some((8, 53)),
            "{wide}"
        );
    }
    for narrow in [
        "spiffe://hospital.example/ns/pharmacy/**",
        "spiffe://hospital.example/ns/pharmacy/*",
        "spiffe://hospital.example/ns/pharmacy/sa/*",
    ] {
        let report = lint(&format!(
            "      - name: r\n        from: [\"{narrow}\"]\n        paths: [\"/a\"]\n"
        ));
        none(&report, "wide_source");
    }
}

#[test]
fn unlisted_trust_domain() {
    let report = lint(
        r#"      - name: partner
        from: [spiffe://partner.example/app]
        paths: ["/a"]
"#,
    );
    let f = only(&report, "unlisted_trust_domain");
    assert_eq!(f.path, format!("{DEST}.allow[0].from[0]"));
    assert!(f.message.contains("partner.example"));
    none(
        &lint(
            r#"      - name: local
        from: [spiffe://hospital.example/app]
        paths: ["/a"]
"#,
        ),
        "unlisted_trust_domain",
    );
}

#[test]
fn unlisted_trust_domain_of_a_destination() {
    let text = "version: 1\ntrust_domains: [hospital.example]\nworkloads:\n  spiffe://other.example/svc:\n    allow: []\n";
    let report = check(text, NOW);
    let f = only(&report, "unlisted_trust_domain");
    assert_eq!(f.path, "workloads.\"spiffe://other.example/svc\"");
    assert_eq!(f.location.map(|l| (l.line, l.column)), Some((4, 3)));
}

#[test]
fn grant_expired_and_expiring() {
    let grant = |not_after: i64| {
        let t = time_text(not_after);
        lint(&format!(
            "      - name: vendor\n        from: [spiffe://hospital.example/vendor]\n        paths: [\"/a\"]\n        not_after: {t}\n"
        ))
    };
    let f = only(&grant(NOW - DAY), "grant_expired");
    assert_eq!(f.path, format!("{DEST}.allow[0].not_after"));
    assert_eq!(f.location.map(|l| (l.line, l.column)), Some((10, 20)));
    let f = only(&grant(NOW + 3 * DAY), "grant_expiring");
    assert!(f.message.contains("in 3 day(s)"), "{}", f.message);
    let report = grant(NOW + 8 * DAY);
    none(&report, "grant_expired");
    none(&report, "grant_expiring");
}

fn time_text(unix: i64) -> String {
    // Whole days after 2026-06-01 (NOW) or the day before, which is all the tests need.
    let day = (unix - NOW) / DAY;
    let date = match day {
        -1 => "2026-05-31".to_owned(),
        d if (0..=29).contains(&d) => format!("2026-06-{:02}", d + 1),
        d => panic!("day {d}"),
    };
    format!("{date}T00:00:00Z")
}

#[test]
fn audit_mode() {
    let rules = "      - name: ehr\n        from: [spiffe://hospital.example/ehr]\n        paths: [\"/a\"]\n";
    let f = only(&check(&policy("audit", rules), NOW), "audit_mode");
    assert_eq!(f.path, format!("{DEST}.mode"));
    assert_eq!(f.location.map(|l| (l.line, l.column)), Some((5, 11)));
    none(&check(&policy("enforce", rules), NOW), "audit_mode");
}

#[test]
fn allows_everything() {
    for rule in [
        "      - name: r\n        from: [spiffe://hospital.example/ehr]\n",
        "      - name: r\n        from: [spiffe://hospital.example/ehr]\n        paths: [\"/**\"]\n",
        "      - name: r\n        from: [spiffe://hospital.example/ehr]\n        methods: [GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE, CONNECT]\n        paths: [\"/a\", \"/**\"]\n",
    ] {
        let f = only(&lint(rule), "allows_everything");
        assert_eq!(f.path, format!("{DEST}.allow[0]"));
    }
    for rule in [
        "      - name: r\n        from: [spiffe://hospital.example/ehr]\n        methods: [GET]\n",
        "      - name: r\n        from: [spiffe://hospital.example/ehr]\n        methods: [GET]\n        paths: [\"/**\"]\n",
        "      - name: r\n        from: [spiffe://hospital.example/ehr]\n        paths: [\"/reports/**\"]\n",
        "      - name: r\n        from: [spiffe://hospital.example/ehr]\n        grpc: [\"lab.v1.Results/*\"]\n",
    ] {
        none(&lint(rule), "allows_everything");
    }
}

#[test]
fn warnings_do_not_make_errors_and_errors_stop_lints() {
    let report = check(&policy("audit", ""), NOW);
    assert_eq!((report.errors(), report.warnings()), (0, 1));
    assert!(
        report
            .to_text("p.yaml")
            .ends_with("p.yaml: ok, 1 warning(s)\n"),
        "{}",
        report.to_text("p.yaml")
    );
    let report = check(
        &policy(
            "audit",
            "      - name: r\n        from: [spiffe://hospital.example/ehr]\n        methods: [FETCH]\n",
        ),
        NOW,
    );
    assert_eq!(report.codes(), ["invalid_value"], "{report:#?}");
}

#[test]
fn json_report_lists_findings_with_their_fields() {
    let report = check(&policy("audit", ""), NOW);
    let json: serde_json::Value = serde_json::from_str(&report.to_json("p.yaml")).unwrap();
    assert_eq!(json["file"], "p.yaml");
    assert_eq!(json["errors"], 0);
    assert_eq!(json["warnings"], 1);
    let f = &json["findings"][0];
    assert_eq!(f["severity"], "warning");
    assert_eq!(f["code"], "audit_mode");
    assert_eq!(f["path"], format!("{DEST}.mode"));
    assert_eq!(f["line"], 5);
    assert_eq!(f["column"], 11);
    assert!(f["message"].as_str().unwrap().contains("audit"));
}

/// A source one letter away from a destination is most likely that
/// destination mistyped (issue 14, item 7); siblings that differ only in a
/// number, other trust domains and patterns are left alone.
#[test]
fn similar_id() {
    let text = "version: 1\ntrust_domains: [hospital.example]\nworkloads:\n  spiffe://hospital.example/ns/comms/sa/notifier:\n    allow:\n      - name: from-lab\n        from: [spiffe://hospital.example/ns/clinical/sa/lab-results]\n  spiffe://hospital.example/ns/clinical/sa/lab-results:\n    allow:\n      - name: notify\n        from: [spiffe://hospital.example/ns/comms/sa/notifer]\n      - name: worker\n        from: [spiffe://hospital.example/ns/clinical/sa/worker-2, \"spiffe://hospital.example/ns/comms/sa/*\"]\n  spiffe://hospital.example/ns/clinical/sa/worker-1:\n    allow: []\n";
    let report = check(text, NOW);
    let f = only(&report, "similar_id");
    assert_eq!(
        f.path,
        "workloads.\"spiffe://hospital.example/ns/clinical/sa/lab-results\".allow[0].from[0]"
    );
    assert_eq!(
        f.message,
        "`spiffe://hospital.example/ns/comms/sa/notifer` is not a destination of this policy; did you mean `spiffe://hospital.example/ns/comms/sa/notifier`?"
    );
    assert_eq!(f.location.map(|l| l.line), Some(11));
    none(
        &lint("      - name: ok\n        from: [spiffe://hospital.example/ns/comms/sa/notifier]\n"),
        "similar_id",
    );
}

#[test]
fn jwt_replay_on_reads() {
    let rule = |methods: &str| {
        format!(
            "      - name: ehr-orders\n        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]\n{methods}        paths: [\"/patients/{{patient}}/orders\"]\n        jwt_replay: deny\n"
        )
    };
    let f = only(
        &lint(&rule("        methods: [GET, POST]\n")),
        "jwt_replay_on_reads",
    );
    assert_eq!(f.path, format!("{DEST}.allow[0].jwt_replay"));
    // Any method includes the reads.
    only(&lint(&rule("")), "jwt_replay_on_reads");
    none(
        &lint(&rule("        methods: [POST, PUT]\n")),
        "jwt_replay_on_reads",
    );
}

#[test]
fn break_glass_expired() {
    let grant = |expires: &str| {
        format!(
            "{}break_glass:\n  - name: bg-inc-1\n    from: [spiffe://hospital.example/ns/billing/sa/billing]\n    to: spiffe://hospital.example/ns/clinical/sa/lab-results\n    reason: downtime\n    ticket: INC-1\n    opened_by: alice\n    opened: 2026-05-31T22:00:00Z\n    expires: {expires}\n",
            policy(
                "enforce",
                "      - name: ehr\n        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]\n        methods: [GET]\n"
            )
        )
    };
    let report = check(&grant("2026-05-31T23:00:00Z"), NOW);
    let f = only(&report, "break_glass_expired");
    assert_eq!(f.path, "break_glass[0].expires");
    assert!(f.message.contains("ticket INC-1"), "{f:?}");
    none(
        &check(&grant("2026-06-01T01:00:00Z"), NOW),
        "break_glass_expired",
    );
    // Longer than 4 h: an error, with its place.
    let report = check(&grant("2026-06-01T02:00:01Z"), NOW);
    assert_eq!(report.errors(), 1, "{report:#?}");
    let error = &report.findings[0];
    assert_eq!(error.path, "break_glass[0].expires");
    assert!(error.location.is_some(), "{error:?}");
    assert!(
        error.message.contains("longer than the maximum"),
        "{error:?}"
    );
}
