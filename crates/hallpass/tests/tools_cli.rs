//! The offline tools (`report --state`, `baseline show`) on files a
//! compromised workload may have written: nothing reaches the terminal raw.

use crate::common::*;

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

/// `policy suggest --policy DIR` leaves out the destinations the policy in
/// force (a directory of files, combined) defines already, so its output can
/// be added to that directory as a new file without a `duplicate_key`.
#[test]
fn suggest_leaves_out_destinations_the_policy_set_defines() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.d");
    std::fs::create_dir(&policy).unwrap();
    std::fs::write(
        policy.join("platform.yaml"),
        "version: 1\ntrust_domains: [hospital.example]\n",
    )
    .unwrap();
    std::fs::write(
        policy.join("clinical.yaml"),
        format!("version: 1\nworkloads:\n  {LAB}:\n    allow:\n      - name: ehr\n        from: [{EHR}]\n"),
    )
    .unwrap();
    let stock = "spiffe://hospital.example/ns/pharmacy/sa/stock";
    let record = |dest: &str| {
        format!(
            "{{\"decision\":\"allow\",\"reason\":\"ok\",\"source\":\"{EHR}\",\"destination\":\"{dest}\",\"method\":\"GET\",\"route\":\"/items\"}}\n"
        )
    };
    let log = temp_file(&dir, "audit.jsonl", &(record(LAB) + &record(stock)));
    let dir_arg = policy.display().to_string();
    let run = hallpass(&[
        "policy",
        "suggest",
        "--from-audit-log",
        &log,
        "--policy",
        &dir_arg,
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains(stock), "{}", run.stdout);
    assert!(!run.stdout.contains(LAB), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("left out 1 destination the policy defines already"),
        "{}",
        run.stderr
    );
    // Added as a new file, the set still checks.
    std::fs::write(policy.join("pharmacy.yaml"), &run.stdout).unwrap();
    let run = hallpass(&["policy", "check", &dir_arg]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}
