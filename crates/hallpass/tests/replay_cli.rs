//! `hallpass policy replay` as a user runs it: what each kind of audit
//! record becomes under a candidate, the gate's exit codes (0 nothing newly
//! denied, 1 newly denied or an invalid candidate, 64 usage) and what the
//! replay refuses to guess. The run through real Envoy is in
//! tests/tests/policy_replay.rs.

use crate::common::*;

const CANDIDATE: &str = "version: 1
trust_domains: [hospital.example]
revoked:
  ids: [spiffe://hospital.example/ns/legacy/sa/fax]
workloads:
  spiffe://hospital.example/ns/clinical/sa/lab-results:
    allow:
      - name: ehr-reads-results
        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]
        methods: [GET]
        paths: [\"/patients/{patient}/results\"]
      - name: nurse-with-header
        from: [spiffe://hospital.example/ns/clinical/sa/nurse]
        methods: [GET]
        paths: [\"/patients/{patient}/results\"]
        headers: {x-ward: icu}
      - name: pilot
        from: [spiffe://hospital.example/ns/clinical/sa/pilot]
        methods: [GET]
        paths: [\"/studies/{study}\"]
        not_after: 2026-06-30T00:00:00Z
";

/// One audit record as the sidecar writes it.
// The record's own fields, in the audit log's order: clearer than a struct here.
#[allow(clippy::too_many_arguments)]
fn record(
    time: &str,
    decision: &str,
    reason: &str,
    source: &str,
    method: &str,
    route: &str,
    rule: &str,
    extra: &str,
) -> String {
    format!(
        "{{\"time\":\"{time}\",\"decision_id\":\"1-1\",\"decision\":\"{decision}\",\"reason\":\"{reason}\",\
         \"mode\":\"enforce\",\"source\":\"{source}\",\"destination\":\"{LAB}\",\"method\":\"{method}\",\
         \"route\":\"{route}\",\"rule\":\"{rule}\",\"credentials\":[\"x509\"]{extra}}}\n"
    )
}

const T1: &str = "2026-09-01T08:00:00.000Z";
const T2: &str = "2026-09-01T09:30:00.000Z";

fn replay(dir: &tempfile::TempDir, log: &str, extra: &[&str]) -> Run {
    let candidate = temp_file(dir, "candidate.yaml", CANDIDATE);
    let log = temp_file(dir, "audit.jsonl", log);
    let mut args = vec!["policy", "replay", &candidate, "--audit-log", &log];
    args.extend_from_slice(extra);
    hallpass(&args)
}

#[test]
fn a_route_the_candidate_drops_is_newly_denied_with_counts_and_times() {
    let dir = tempfile::tempdir().unwrap();
    let sub = "/patients/{patient}/results/{result}";
    let log = [
        record(T2, "allow", "ok", EHR, "GET", sub, "ehr-reads-results", ""),
        record(T1, "allow", "ok", EHR, "GET", sub, "ehr-reads-results", ""),
        record(
            T1,
            "allow",
            "ok",
            EHR,
            "GET",
            "/patients/{patient}/results",
            "ehr-reads-results",
            "",
        ),
    ]
    .concat();
    let run = replay(&dir, &log, &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .starts_with("replayed 3 of 3 audit records under "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(": 1 unchanged, 2 newly denied, 0 newly allowed, 0 undetermined\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!(
            "Newly denied (2 calls):\n  {EHR} -> {LAB}  GET {sub}\n    was allowed by rule ehr-reads-results; \
             now deny no_matching_rule\n    2 calls, first {T1}, last {T2}\n"
        )),
        "{}",
        run.stdout
    );
}

#[test]
fn the_same_decisions_pass_the_gate_and_json_counts_every_kind_of_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = [
        record(
            T1,
            "allow",
            "ok",
            EHR,
            "GET",
            "/patients/{patient}/results",
            "ehr-reads-results",
            "",
        ),
        // A log line on the same stream, and a broken record.
        "{\"level\":\"INFO\",\"message\":\"listening\"}\n".to_owned(),
        "{\"decision_id\":\"1-2\",\"decision\":\n".to_owned(),
        // Decided before the policy: no identity.
        record(
            T1,
            "deny",
            "no_identity",
            "unauthenticated",
            "GET",
            "",
            "",
            "",
        ),
        // A destination the recorded policy did not name.
        record(T1, "deny", "no_matching_rule", EHR, "GET", "", "", "").replace(LAB, "other"),
        // A revoked caller stays revoked.
        record(
            T1,
            "deny",
            "revoked",
            "spiffe://hospital.example/ns/legacy/sa/fax",
            "GET",
            "",
            "",
            "",
        ),
        // A raw path decides exactly.
        record(
            T1,
            "deny",
            "no_matching_rule",
            EHR,
            "GET",
            "",
            "",
            ",\"path\":\"/patients/1/notes\"",
        ),
    ]
    .concat();
    let run = replay(&dir, &log, &["--format", "json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["lines"], 7, "{json}");
    assert_eq!(json["replayed"], 3, "{json}");
    assert_eq!(json["unchanged"], 3, "{json}");
    assert_eq!(json["newly_denied"], 0, "{json}");
    assert_eq!(json["undetermined"], 0, "{json}");
    assert_eq!(json["skipped"]["not_a_record"], 1, "{json}");
    assert_eq!(json["skipped"]["malformed"], 1, "{json}");
    assert_eq!(json["skipped"]["decided_before_policy"], 1, "{json}");
    assert_eq!(json["skipped"]["unnamed_destination"], 1, "{json}");
    assert_eq!(json["changes"], serde_json::json!([]), "{json}");
}

#[test]
fn what_the_record_cannot_tell_is_undetermined_not_guessed() {
    let dir = tempfile::tempdir().unwrap();
    let nurse = "spiffe://hospital.example/ns/clinical/sa/nurse";
    let log = [
        // Denied with no route: the candidate's rule names the caller, but
        // without the path nobody can say whether its template matches.
        record(T1, "deny", "no_matching_rule", EHR, "GET", "", "", ""),
        // Allowed under another rule: the candidate's rule needs a header.
        record(
            T1,
            "allow",
            "ok",
            nurse,
            "GET",
            "/patients/{patient}/results",
            "nurse-reads",
            "",
        ),
        // Allowed by the header rule itself: its headers held then.
        record(
            T1,
            "allow",
            "ok",
            nurse,
            "GET",
            "/patients/{patient}/results",
            "nurse-with-header",
            "",
        ),
    ]
    .concat();
    let run = replay(&dir, &log, &[]);
    assert_eq!(
        run.code, 0,
        "undetermined does not fail the gate: {}{}",
        run.stdout, run.stderr
    );
    assert!(
        run.stdout
            .contains("1 unchanged, 0 newly denied, 0 newly allowed, 2 undetermined"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("now needs the concrete path"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("now needs the request headers"),
        "{}",
        run.stdout
    );
}

#[test]
fn time_bound_grants_are_judged_at_the_recorded_time_and_since_filters() {
    let dir = tempfile::tempdir().unwrap();
    let pilot = "spiffe://hospital.example/ns/clinical/sa/pilot";
    let log = [
        // Before the grant ended: allowed then, and still allowed then.
        record(
            "2026-06-01T00:00:00.000Z",
            "allow",
            "ok",
            pilot,
            "GET",
            "/studies/{study}",
            "pilot",
            "",
        ),
        // After: the record's allow is now grant_expired.
        record(
            T1,
            "allow",
            "ok",
            pilot,
            "GET",
            "/studies/{study}",
            "pilot",
            "",
        ),
    ]
    .concat();
    let run = replay(&dir, &log, &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("now deny grant_expired\n    1 calls"),
        "{}",
        run.stdout
    );
    let run = replay(&dir, &log, &["--since", "2026-09-01T00:00:00Z"]);
    assert!(run.stdout.contains("replayed 1 of 2"), "{}", run.stdout);
    assert!(
        run.stdout.contains("skipped 1: before --since"),
        "{}",
        run.stdout
    );
    let run = replay(&dir, &log, &["--since", "36500d", "--format", "json"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
}

#[test]
fn hostile_text_is_escaped_and_usage_errors_exit_64() {
    let dir = tempfile::tempdir().unwrap();
    let log = record(
        T1,
        "allow",
        "ok",
        EHR,
        "G\\u001b[2JET",
        "/patients/{patient}/results",
        "ehr-reads-results",
        "",
    );
    let run = replay(&dir, &log, &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains('\u{1b}'), "{}", run.stdout);
    assert!(run.stdout.contains("G\\u{1b}[2JET"), "{}", run.stdout);

    let candidate = temp_file(&dir, "c.yaml", CANDIDATE);
    let run = hallpass(&[
        "policy",
        "replay",
        &candidate,
        "--audit-log",
        "/nonexistent/audit.jsonl",
    ]);
    assert_eq!(run.code, 64, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot read /nonexistent/audit.jsonl"),
        "{}",
        run.stderr
    );
    let run = hallpass(&[
        "policy",
        "replay",
        &candidate,
        "--audit-log",
        &candidate,
        "--since",
        "yesterday",
    ]);
    assert_eq!(run.code, 64, "{}", run.stderr);
    assert!(run.stderr.contains("--since"), "{}", run.stderr);
    // An invalid candidate fails the gate.
    let bad = temp_file(&dir, "bad.yaml", "version: 1\nworkloads: [\n");
    let run = hallpass(&["policy", "replay", &bad, "--audit-log", &candidate]);
    assert_eq!(run.code, 1, "{}", run.stderr);
}

#[test]
fn break_glass_allows_and_replayed_tokens_are_not_the_candidates_to_judge() {
    let dir = tempfile::tempdir().unwrap();
    let log = [
        // Let through by an emergency grant the candidate does not hold: the
        // overlay, not the policy under review, decided it.
        record(
            T1,
            "allow",
            "break_glass",
            "spiffe://hospital.example/ns/er/sa/downtime",
            "GET",
            "/patients/{patient}/results",
            "er-downtime",
            ",\"break_glass\":{\"grant\":\"er-downtime\",\"ticket\":\"INC-1\",\"opened_by\":\"oncall\"}",
        ),
        // Denied for a reused jti: the sidecar's memory, not in the log.
        record(
            T1,
            "deny",
            "jwt_replayed",
            EHR,
            "GET",
            "/patients/{patient}/results",
            "",
            "",
        ),
    ]
    .concat();
    let run = replay(&dir, &log, &["--format", "json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["replayed"], 0, "{json}");
    assert_eq!(json["newly_denied"], 0, "{json}");
    assert_eq!(json["newly_allowed"], 0, "{json}");
    assert_eq!(json["skipped"]["decided_outside_policy"], 2, "{json}");
}
