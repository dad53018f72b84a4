//! `hallpass policy check|test|explain` as a user runs them: output and
//! exit codes (0 ok, 1 errors or failures, 64 usage). These commands are in
//! the sidecar build too.

use crate::common::*;

#[test]
fn check_passes_the_example_with_its_warnings() {
    let file = example("clinical-mesh.yaml");
    let run = hallpass(&["policy", "check", &file, "--now", "2026-06-01T00:00:00Z"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains(": warning[audit_mode]: workloads.\"spiffe://hospital.example/ns/pharmacy/sa/pharmacy\".mode: "), "{}", run.stdout);
    assert!(
        run.stdout.ends_with(": ok, 1 warning(s)\n"),
        "{}",
        run.stdout
    );

    // Later the pilot grant has run out: one more warning, still exit 0.
    let run = hallpass(&["policy", "check", &file, "--now", "2026-09-01T00:00:00Z"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.contains("warning[grant_expired]"),
        "{}",
        run.stdout
    );
}

#[test]
fn check_errors_give_file_line_column_and_path_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = temp_file(
        &dir,
        "bad.yaml",
        "version: 1\ntrust_domains: [hospital.example]\nworkloads:\n  spiffe://hospital.example/a:\n    allow:\n      - name: r\n        metods: [GET]\n        from: [\"spiffe://hospital.example/ns/*/x\"]\n",
    );
    let run = hallpass(&["policy", "check", &file]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(&format!(
            "{file}:7:9: error[unknown_key]: workloads.\"spiffe://hospital.example/a\".allow[0].metods: unknown field `metods`"
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.ends_with(": 1 error(s), 0 warning(s)\n"),
        "{}",
        run.stdout
    );

    // Fix the key: the compile error underneath is located too.
    let file = temp_file(
        &dir,
        "bad2.yaml",
        "version: 1\ntrust_domains: [hospital.example]\nworkloads:\n  spiffe://hospital.example/a:\n    allow:\n      - name: r\n        methods: [GET]\n        from: [\"spiffe://hospital.example/ns/*/x\"]\n",
    );
    let run = hallpass(&["policy", "check", &file]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains(&format!(
            "{file}:8:16: error[invalid_value]: workloads.\"spiffe://hospital.example/a\".allow[0].from[0]: "
        )),
        "{}",
        run.stdout
    );
}

#[test]
fn check_json_for_ci() {
    let file = example("clinical-mesh.yaml");
    let run = hallpass(&[
        "policy",
        "check",
        &file,
        "--format",
        "json",
        "--now",
        "2026-06-01T00:00:00Z",
    ]);
    assert_eq!(run.code, 0);
    for want in [
        "\"errors\": 0",
        "\"warnings\": 1",
        "\"severity\": \"warning\"",
        "\"code\": \"audit_mode\"",
        "\"line\": ",
        "\"column\": ",
        "\"message\": ",
    ] {
        assert!(run.stdout.contains(want), "{want} in {}", run.stdout);
    }
    assert!(run.stdout.trim_start().starts_with('{') && run.stdout.trim_end().ends_with('}'));
}

#[test]
fn test_runs_the_shipped_suite() {
    let run = hallpass(&[
        "policy",
        "test",
        &example("clinical-mesh.yaml"),
        &example("clinical-mesh.tests.yaml"),
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let last = run.stdout.lines().last().unwrap();
    assert!(last.ends_with(" passed, 0 failed"), "{}", run.stdout);
    assert!(!run.stdout.contains("FAIL"), "{}", run.stdout);
}

#[test]
fn test_failure_shows_a_diff_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let tests = temp_file(
        &dir,
        "t.yaml",
        &format!(
            "tests:\n  - name: ehr may delete\n    source: {EHR}\n    destination: {LAB}\n    method: DELETE\n    path: /patients/p/results\n    time: 2026-06-01T00:00:00Z\n    expect: {{decision: allow}}\n  - name: ehr reads\n    source: {EHR}\n    destination: {LAB}\n    path: /patients/p/results\n    expect: {{decision: allow}}\n"
        ),
    );
    let run = hallpass(&["policy", "test", &example("clinical-mesh.yaml"), &tests]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains(&format!("FAIL ehr may delete ({tests}:2:5, tests[0])")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "    - decision: allow\n    + decision: deny\n      reason:   no_matching_rule\n"
        ),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("PASS ehr reads\n"), "{}", run.stdout);
    assert!(
        run.stdout.ends_with("1 passed, 1 failed\n"),
        "{}",
        run.stdout
    );

    let broken = temp_file(
        &dir,
        "broken.yaml",
        "tests:\n  - name: x\n    path: /\n    expect: {decision: maybe}\n",
    );
    let run = hallpass(&["policy", "test", &example("clinical-mesh.yaml"), &broken]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains(&format!("{broken}:4:24: tests[0].expect.decision: ")),
        "{}",
        run.stderr
    );
}

#[test]
fn explain_prints_the_decision_and_the_trace() {
    let run = hallpass(&[
        "policy",
        "explain",
        &example("clinical-mesh.yaml"),
        "--source",
        EHR,
        "--destination",
        LAB,
        "--method",
        "GET",
        "--path",
        "/patients/p-1/results/r-2",
        "--time",
        "2026-06-01T00:00:00Z",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.starts_with(
            "decision: allow (rule ehr-reads-results, route /patients/{patient}/results/{result})\n"
        ),
        "{}",
        run.stdout
    );
    for want in [
        "  at   2026-06-01T00:00:00Z, credentials: x509\n",
        "  [ok] trust domain hospital.example is listed in trust_domains\n",
        "  #0 ehr-reads-results: MATCH: decides\n",
        "  #1 pharmacy-lookup: no match\n",
        "  #3 imaging-vendor-pilot: no match\n",
    ] {
        assert!(run.stdout.contains(want), "{want:?} in\n{}", run.stdout);
    }

    let run = hallpass(&[
        "policy",
        "explain",
        &example("clinical-mesh.yaml"),
        "--source",
        "spiffe://hospital.example/ns/pharmacy/sa/dispensing",
        "--destination",
        LAB,
        "--grpc",
        "lab.v1.Results/GetResult",
        "--header",
        "X-Request-Id=1",
        "--jwt",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.starts_with(
            "decision: allow (rule pharmacy-lookup, route lab.v1.Results/GetResult)\n"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("credentials: x509, jwt"),
        "{}",
        run.stdout
    );
}

#[test]
fn explain_of_an_invalid_policy_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = temp_file(&dir, "p.yaml", "version: 2\n");
    let run = hallpass(&[
        "policy",
        "explain",
        &file,
        "--source",
        EHR,
        "--destination",
        LAB,
        "--path",
        "/",
    ]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains(&format!("{file}:1:10: version: unsupported version 2")),
        "{}",
        run.stderr
    );
}

/// `--method get` is not explained as a deny of some other method: HTTP
/// methods are case-sensitive (so the sidecar would see `OTHER`), and the
/// user meant `GET` (issue 14, item 9).
#[test]
fn explain_rejects_a_lower_case_method_with_the_right_spelling() {
    let file = example("clinical-mesh.yaml");
    let with = |method: &str| {
        hallpass(&[
            "policy",
            "explain",
            &file,
            "--source",
            EHR,
            "--destination",
            LAB,
            "--method",
            method,
            "--path",
            "/patients/p-1/results/r-2",
            "--time",
            "2026-06-01T00:00:00Z",
        ])
    };
    let run = with("get");
    assert_eq!(run.code, 64, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("--method get: HTTP methods are case-sensitive; did you mean GET?"),
        "{}",
        run.stderr
    );
    // Not a method at all: rejected, with the methods a rule can name.
    let run = with("G T");
    assert_eq!(run.code, 64, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE, CONNECT"),
        "{}",
        run.stderr
    );
    // A method no rule can name is still explained (as the sidecar sees it).
    let run = with("PROPFIND");
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.starts_with("decision: deny"), "{}", run.stdout);
}

/// `--strict` makes warnings fail a CI job (issue 14, item 7).
#[test]
fn check_strict_makes_warnings_fail() {
    let file = example("clinical-mesh.yaml");
    let args = ["policy", "check", &file, "--now", "2026-06-01T00:00:00Z"];
    let run = hallpass(&args);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let mut strict = args.to_vec();
    strict.push("--strict");
    let run = hallpass(&strict);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("warning[audit_mode]"), "{}", run.stdout);
    assert!(
        run.stderr.contains("--strict: warnings fail the check"),
        "{}",
        run.stderr
    );
    // No warnings: --strict passes.
    let dir = tempfile::tempdir().unwrap();
    let clean = temp_file(
        &dir,
        "clean.yaml",
        "version: 1\ntrust_domains: [hospital.example]\nworkloads:\n  spiffe://hospital.example/a:\n    allow:\n      - name: r\n        from: [spiffe://hospital.example/b]\n        methods: [GET]\n",
    );
    let run = hallpass(&["policy", "check", &clean, "--strict"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

/// Issue 14 item 8, in the policy too: a tab is named at the tab, and a
/// misspelt key gets a "did you mean".
#[test]
fn check_names_a_tab_and_guesses_a_misspelt_key() {
    let dir = tempfile::tempdir().unwrap();
    let head = "version: 1\ntrust_domains: [hospital.example]\nworkloads:\n  spiffe://hospital.example/ns/a/sa/b:\n    allow:\n      - name: r\n";
    let tab = temp_file(
        &dir,
        "tab.yaml",
        &format!("{head}  \t  from: [spiffe://hospital.example/ns/a/sa/c]\n"),
    );
    let run = hallpass(&["policy", "check", &tab]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.starts_with(&format!(
            "{tab}:7:3: error[yaml_syntax]: (document): tabs are not allowed for indentation in YAML; use spaces"
        )),
        "{}",
        run.stdout
    );
    let typo = temp_file(
        &dir,
        "typo.yaml",
        &format!(
            "{head}        from: [spiffe://hospital.example/ns/a/sa/c]\n        methds: [GET]\n"
        ),
    );
    let run = hallpass(&["policy", "check", &typo]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("allow[0].methds: unknown field `methds`")
            && run.stdout.contains("; did you mean `methods`?"),
        "{}",
        run.stdout
    );
}

/// A policy directory: a platform file and two team files (issue 14 part 1).
fn policy_dir(dir: &tempfile::TempDir) -> String {
    let root = dir.path().join("policy.d");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(
        root.join("00-platform.yaml"),
        "version: 1\ntrust_domains: [hospital.example]\n",
    )
    .unwrap();
    std::fs::write(
        root.join("clinical.yaml"),
        format!(
            "version: 1\nowner: [\"spiffe://hospital.example/ns/clinical/**\"]\nworkloads:\n  {LAB}:\n    allow:\n      - name: ehr-reads\n        from: [{EHR}]\n        methods: [GET]\n        paths: [\"/patients/{{p}}/results\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(
        root.join("pharmacy.yaml"),
        format!(
            "version: 1\nowner: [\"spiffe://hospital.example/ns/pharmacy/**\"]\nworkloads:\n  spiffe://hospital.example/ns/pharmacy/sa/dispensing:\n    allow:\n      - name: ehr-dispenses\n        from: [{EHR}]\n        methods: [POST]\n        paths: [/dispense]\n"
        ),
    )
    .unwrap();
    root.display().to_string()
}

#[test]
fn check_of_a_directory_reports_every_violation_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let root = policy_dir(&dir);
    let run = hallpass(&["policy", "check", &root]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.ends_with(&format!("{root}: ok\n")),
        "{}",
        run.stdout
    );

    // Three mistakes at once: a destination in two files, a team file
    // setting a mesh-wide section, a destination outside its owner scope.
    std::fs::write(
        format!("{root}/zz-pharmacy.yaml"),
        format!(
            "version: 1\nowner: [\"spiffe://hospital.example/ns/pharmacy/**\"]\nrevoked:\n  ids: [{EHR}]\nworkloads:\n  {LAB}:\n    allow: []\n"
        ),
    )
    .unwrap();
    let run = hallpass(&["policy", "check", &root]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let out = &run.stdout;
    assert!(
        out.contains(&format!(
            "{root}/zz-pharmacy.yaml:3:1: error[mesh_wide_section]: revoked: a team file"
        )),
        "{out}"
    );
    assert!(out.contains(&format!("{root}/zz-pharmacy.yaml:6:3: error[duplicate_key]: workloads.\"{LAB}\": destination `{LAB}` is also defined in {root}/clinical.yaml:4:3")), "{out}");
    assert!(
        out.contains(&format!(
            "{root}/zz-pharmacy.yaml:6:3: error[owner_violation]"
        )),
        "{out}"
    );
    assert!(
        out.ends_with(&format!("{root}: 3 error(s), 0 warning(s)\n")),
        "{out}"
    );

    // JSON names each finding's file.
    let run = hallpass(&["policy", "check", &root, "--format", "json"]);
    assert_eq!(run.code, 1);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["errors"], 3);
    assert_eq!(v["findings"][0]["file"], format!("{root}/zz-pharmacy.yaml"));
}

#[test]
fn test_and_explain_work_on_a_directory_and_on_several_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = policy_dir(&dir);
    let tests = temp_file(
        &dir,
        "t.yaml",
        &format!(
            "tests:\n  - name: ehr reads\n    source: {EHR}\n    destination: {LAB}\n    path: /patients/p/results\n    expect: {{decision: allow}}\n  - name: ehr dispenses\n    source: {EHR}\n    destination: spiffe://hospital.example/ns/pharmacy/sa/dispensing\n    method: POST\n    path: /dispense\n    expect: {{decision: allow}}\n"
        ),
    );
    let run = hallpass(&["policy", "test", &root, &tests]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.ends_with("2 passed, 0 failed\n"),
        "{}",
        run.stdout
    );

    // The same set given as files: without the platform file nothing is
    // trusted, so both cases fail.
    let clinical = format!("{root}/clinical.yaml");
    let pharmacy = format!("{root}/pharmacy.yaml");
    let run = hallpass(&["policy", "test", &clinical, &pharmacy, &tests]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.ends_with("0 passed, 2 failed\n"),
        "{}",
        run.stdout
    );

    let run = hallpass(&[
        "policy",
        "explain",
        &root,
        "--source",
        EHR,
        "--destination",
        "spiffe://hospital.example/ns/pharmacy/sa/dispensing",
        "--method",
        "POST",
        "--path",
        "/dispense",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("ehr-dispenses"), "{}", run.stdout);
    assert!(
        run.stdout.to_lowercase().contains("allow"),
        "{}",
        run.stdout
    );

    // An invalid set: explain names the file and line, exit 1.
    std::fs::write(
        format!("{root}/dup.yaml"),
        format!("version: 1\nworkloads:\n  {LAB}: {{}}\n"),
    )
    .unwrap();
    let run = hallpass(&[
        "policy",
        "explain",
        &root,
        "--source",
        EHR,
        "--destination",
        LAB,
        "--path",
        "/patients/p/results",
    ]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(&format!("{root}/dup.yaml:3:3: ")),
        "{}",
        run.stderr
    );
}

/// `policy test --coverage` names the rule no case exercises, per
/// destination; `--min-coverage 100` fails a partial suite (exit 1) and
/// passes the shipped one (issue 15, item 4).
#[test]
fn test_coverage_names_the_uncovered_rule_and_min_coverage_fails_below() {
    let dir = tempfile::tempdir().unwrap();
    let tests = temp_file(
        &dir,
        "t.yaml",
        &format!(
            "tests:\n  - name: ehr reads\n    source: {EHR}\n    destination: {LAB}\n    path: /patients/p/results\n    time: 2026-06-01T00:00:00Z\n    expect: {{decision: allow}}\n"
        ),
    );
    let policy = example("clinical-mesh.yaml");
    let run = hallpass(&["policy", "test", &policy, &tests, "--coverage"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let lab = format!(
        "  {LAB}: 1/4 rules (25.0 %)\n    rule not exercised: pharmacy-lookup (allow[1])\n"
    );
    for want in [
        "PASS ehr reads\n1 passed, 0 failed\n",
        lab.as_str(),
        "    rule not exercised: imaging-vendor-pilot (allow[3])\n",
        "    reason no case expects: grant_expired\n",
        "  spiffe://hospital.example/ns/billing/sa/billing: 0/1 rules (0.0 %)\n    rule not exercised: ehr-posts-charges (allow[0])\n",
        "  mesh-wide reasons no case expects: untrusted_trust_domain, revoked\n",
    ] {
        assert!(run.stdout.contains(want), "{want:?} in\n{}", run.stdout);
    }
    assert!(
        run.stdout.ends_with("coverage: 1/6 rules (16.6 %)\n"),
        "{}",
        run.stdout
    );

    let run = hallpass(&["policy", "test", &policy, &tests, "--min-coverage", "100"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("coverage: 1/6 rules"), "{}", run.stdout);
    assert!(
        run.stderr.contains(&format!(
            "{tests}: coverage 16.6 % is below --min-coverage 100 %"
        )),
        "{}",
        run.stderr
    );
    let run = hallpass(&["policy", "test", &policy, &tests, "--min-coverage", "16.5"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);

    let run = hallpass(&[
        "policy",
        "test",
        &policy,
        &example("clinical-mesh.tests.yaml"),
        "--min-coverage",
        "100",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.ends_with("coverage: 6/6 rules (100.0 %)\n"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("no case"), "{}", run.stdout);
    assert!(!run.stdout.contains("not exercised"), "{}", run.stdout);
}

/// `--min-coverage` takes a per cent from 0 to 100; anything else is a
/// usage error (exit 64) that says so, before any case runs.
#[test]
fn test_min_coverage_rejects_a_bad_percentage() {
    let policy = example("clinical-mesh.yaml");
    let tests = example("clinical-mesh.tests.yaml");
    for bad in ["101", "-1", "abc", "NaN", "inf", ""] {
        let run = hallpass(&["policy", "test", &policy, &tests, "--min-coverage", bad]);
        assert_eq!(run.code, 64, "{bad}: {}{}", run.stdout, run.stderr);
        assert!(run.stdout.is_empty(), "{bad}: {}", run.stdout);
        assert!(
            run.stderr
                .contains("expected a per cent from 0 to 100, e.g. 90 or 99.5"),
            "{bad}: {}",
            run.stderr
        );
    }
    let run = hallpass(&["policy", "test", &policy, &tests, "--min-coverage=-1"]);
    assert_eq!(run.code, 64, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("--min-coverage"), "{}", run.stderr);
}
