//! `hallpass policy check|test|explain` as a user runs them: output and
//! exit codes (0 ok, 1 errors or failures, 2 usage). And the offline tools
//! (`report --state`, `baseline show`) on files a compromised workload may
//! have written: nothing reaches the terminal raw.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn hallpass(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/policies")
        .join(name)
        .display()
        .to_string()
}

fn temp_file(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path: PathBuf = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";
const EHR: &str = "spiffe://hospital.example/ns/clinical/sa/ehr-api";

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
fn usage_errors_exit_2() {
    for args in [
        &["policy", "check"][..],
        &["policy", "check", "/nonexistent/policy.yaml"],
        &["policy", "check", "x.yaml", "--format", "xml"],
        &[
            "policy",
            "test",
            "/nonexistent/p.yaml",
            "/nonexistent/t.yaml",
        ],
        &[
            "policy",
            "explain",
            "p.yaml",
            "--source",
            EHR,
            "--destination",
            LAB,
        ],
        &[
            "policy",
            "explain",
            "p.yaml",
            "--source",
            "spiffe://hospital.example/ns/**",
            "--destination",
            LAB,
            "--path",
            "/",
        ],
        &[
            "policy",
            "explain",
            "p.yaml",
            "--source",
            EHR,
            "--destination",
            LAB,
            "--path",
            "/",
            "--time",
            "soon",
        ],
    ] {
        let run = hallpass(args);
        assert_eq!(run.code, 2, "{args:?}: {}{}", run.stdout, run.stderr);
    }
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

// ------------------------------------------------- offline tools, hostile files

/// An OSC (set the window title), a clear-screen, a C1 CSI and a bidi override.
const HOSTILE: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[H\u{9b}2J\u{202e}";

/// Nothing a terminal acts on: C0 controls other than newline, DEL, C1,
/// bidi and zero-width characters.
fn assert_terminal_safe(what: &str, text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| c != '\n' && (c.is_control() || ('\u{200b}'..='\u{206f}').contains(&c)))
        .collect();
    assert!(bad.is_empty(), "{what}: raw {bad:?} in {text:?}");
}

fn hostile_callgraph() -> serde_json::Value {
    let rule = format!("reads{HOSTILE}");
    serde_json::json!({
        "generated_at_ms": 1_800_000_000_000_i64,
        "learning": false,
        "declared": [
            {"source": EHR, "destination": LAB, "rule": rule, "routes": [], "methods": []},
            {"source": format!("spiffe://hospital.example/ns/x/sa/{HOSTILE}"), "destination": format!("{LAB}{HOSTILE}"),
             "rule": "never", "routes": ["/a"], "methods": ["GET"]}
        ],
        "observed": [{
            "source": EHR, "destination": LAB, "route": format!("/x{HOSTILE}"), "method": "GET",
            "count": 3, "allowed": 3, "denied": 0, "first_seen_ms": 1, "last_seen_ms": 2,
            "new": false, "spiking": false, "in_baseline": true, "ewma_rps": 0.0
        }],
        "rules": [
            {"destination": LAB, "rule": rule, "last_match_seconds": 1_799_999_000_i64},
            {"destination": format!("{LAB}{HOSTILE}"), "rule": "never", "last_match_seconds": 0}
        ]
    })
}

#[test]
fn report_state_escapes_every_control_character() {
    let dir = tempfile::tempdir().unwrap();
    let file = temp_file(&dir, "callgraph.json", &hostile_callgraph().to_string());
    let run = hallpass(&["report", "--state", &file]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_terminal_safe("report text", &run.stdout);
    assert!(
        run.stdout
            .contains("lab-results\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\u{1b}[H"),
        "shown escaped: {}",
        run.stdout
    );
    assert!(run.stdout.contains("\\u{9b}2J\\u{202e}"), "{}", run.stdout);

    let run = hallpass(&["report", "--state", &file, "--format", "json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_terminal_safe("report json", &run.stdout);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        report["never_used"][0]["destination"],
        format!("{LAB}{HOSTILE}"),
        "JSON keeps the exact value"
    );
}

#[test]
fn baseline_show_refuses_fields_a_sidecar_never_writes_and_escapes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let edges = |source: String| {
        serde_json::json!({"version": 1, "edges": [
            {"source": source, "destination": LAB, "route": "/patients/{patient}/results", "method": "GET"}
        ]})
        .to_string()
    };
    let hostile = temp_file(&dir, "hostile.json", &edges(format!("{EHR}{HOSTILE}")));
    let run = hallpass(&["baseline", "show", &hostile]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.contains("edge source \"spiffe://"),
        "{}",
        run.stderr
    );
    assert_terminal_safe("baseline show error", &run.stderr);
    let run = hallpass(&["baseline", "show", &hostile, "--format", "json"]);
    assert_eq!(run.code, 1);
    assert_terminal_safe("baseline show json error", &run.stderr);

    // A valid file under a hostile name: the name is escaped too.
    let named = temp_file(&dir, &format!("b{HOSTILE}.json"), &edges(EHR.into()));
    let run = hallpass(&["baseline", "show", &named]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_terminal_safe("baseline show", &run.stdout);
    assert!(
        run.stdout.contains(&format!("from {EHR}\n")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("b\\u{1b}]0;pwned"), "{}", run.stdout);
}

// ------------------------------------------------------------ inject --render

#[test]
fn inject_render_refuses_pods_that_weaken_or_forge_their_protection() {
    let dir = tempfile::tempdir().unwrap();
    let pod = |extra_meta: &str, extra_spec: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: lab\n  namespace: clinical\n  annotations:\n    hallpass.io/inject: \"true\"\n{extra_meta}\
             spec:\n  serviceAccountName: lab-results\n{extra_spec}  containers:\n    - name: app\n      image: app:1\n      ports: [{{containerPort: 8080}}]\n"
        )
    };
    let plain = temp_file(&dir, "plain.yaml", &pod("", ""));
    let run = hallpass(&["inject", "--render", &plain]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("hallpass.io/sidecar: istio"),
        "{}",
        run.stdout
    );

    for (name, meta, spec, expected) in [
        (
            "audit",
            "    hallpass.io/audit: \"true\"\n",
            "",
            "hallpass.io/audit: `true`: a pod cannot put itself in audit mode",
        ),
        (
            "mode",
            "    hallpass.io/mode: standalone\n",
            "",
            "(overrides.mode)",
        ),
        (
            "forged",
            "  labels:\n    hallpass.io/sidecar: istio\n",
            "",
            "carries names that belong to the injector (label hallpass.io/sidecar)",
        ),
        ("hostpid", "", "  hostPID: true\n", "spec.hostPID"),
    ] {
        let file = temp_file(&dir, &format!("{name}.yaml"), &pod(meta, spec));
        let run = hallpass(&["inject", "--render", &file]);
        assert_eq!(run.code, 1, "{name}: {}{}", run.stdout, run.stderr);
        assert!(run.stdout.is_empty(), "{name}: nothing rendered");
        assert!(run.stderr.contains(expected), "{name}: {}", run.stderr);
    }

    // The chart's injector config can allow an override for a namespace;
    // --namespace decides as if the pod were there.
    let config = temp_file(&dir, "injector.yaml", "overrides: {mode: [sandbox]}\n");
    let mode = temp_file(
        &dir,
        "mode.yaml",
        &pod("    hallpass.io/mode: standalone\n", ""),
    );
    let run = hallpass(&["inject", "--config", &config, "--render", &mode]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let run = hallpass(&[
        "inject",
        "--config",
        &config,
        "--render",
        &mode,
        "--namespace",
        "sandbox",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("hallpass.io/overrides: mode"),
        "{}",
        run.stdout
    );
}
