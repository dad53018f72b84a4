//! `hallpass config check` (issue 14 item 8): a config file and the
//! `HALLPASS_*` variables checked as `serve` reads them, printed in the
//! policy checker's format, with its exit codes (docs/reference.md): 0 no
//! errors (warnings allowed unless `--strict`), 1 errors, 64 usage. In the
//! sidecar build too: these tests run in both builds.

use std::process::Command;

use crate::common::*;

/// `hallpass config check ARGS` with only `vars` of the HALLPASS_*
/// variables set.
fn config_check(args: &[&str], vars: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hallpass"));
    cmd.arg("config").arg("check").args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("HALLPASS_") || name == "SPIFFE_ENDPOINT_SOCKET" {
            cmd.env_remove(name);
        }
    }
    cmd.envs(vars.iter().copied());
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

const GOOD: &str = "\
authz:
  listen: 127.0.0.1:9191
admin:
  listen: 127.0.0.1:9902
workload:
  id: spiffe://hospital.example/ns/clinical/sa/lab-results
trust:
  workload_api: unix:///run/spire/agent.sock
policy:
  file: /etc/hallpass/policy.yaml
";

#[test]
fn a_good_config_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let file = temp_file(&dir, "config.yaml", GOOD);
    let run = config_check(&[&file], &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, format!("{file}: ok\n"));
}

#[test]
fn every_problem_is_printed_in_the_policy_checkers_format_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = temp_file(
        &dir,
        "config.yaml",
        "authz:\n  listen: localhost:19191\nadmin:\n  lisen: 127.0.0.1:9902\n\
         workload:\n  id: hospital.example/ns/clinical/sa/lab-results\npolicy:\n  file: /p.yaml\n",
    );
    let run = config_check(
        &[&file],
        &[("HALLPASS_POLICY_RELOAD_INTERVAL_SECONDS", "0")],
    );
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let expected = [
        format!(
            "{file}:2:11: error[invalid_value]: authz.listen: `localhost` is a host name; the address must be an IP address (e.g. 127.0.0.1:19191) or unix:///path; host names are not resolved: a listener binds one local address"
        ),
        format!(
            "{file}:4:3: error[unknown_key]: admin.lisen: unknown key; did you mean `listen`? valid keys are: listen"
        ),
        format!(
            "{file}:6:7: error[invalid_value]: workload.id: `hospital.example/ns/clinical/sa/lab-results` is not a SPIFFE ID: it must be `spiffe://<trust domain>/<path>`, e.g. spiffe://hospital.example/ns/clinical/sa/lab-results"
        ),
    ];
    let lines: Vec<&str> = run.stdout.lines().collect();
    for e in &expected {
        assert!(
            lines.contains(&e.as_str()),
            "missing {e:?} in:\n{}",
            run.stdout
        );
    }
    // The variable is named for the value it set; then the summary.
    assert!(
        lines.contains(
            &"$HALLPASS_POLICY_RELOAD_INTERVAL_SECONDS: error[invalid_value]: policy.reload_interval_seconds: must be between 1 and 3600"
        ),
        "{}",
        run.stdout
    );
    // A problem about a section the file lacks points at the top.
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "{file}:1:1: error[invalid_value]: trust: verifying certificates needs"
        ))),
        "{}",
        run.stdout
    );
    assert_eq!(
        lines.last().copied(),
        Some(format!("{file}: 5 error(s), 0 warning(s)").as_str())
    );
}

#[test]
fn a_tab_is_reported_as_a_tab() {
    let dir = tempfile::tempdir().unwrap();
    let file = temp_file(&dir, "config.yaml", "policy:\n\tfile: /p.yaml\n");
    let run = config_check(&[&file], &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.starts_with(&format!(
            "{file}:2:1: error[yaml_syntax]: (document): tabs are not allowed for indentation in YAML; use spaces"
        )),
        "{}",
        run.stdout
    );
}

#[test]
fn the_listener_clash_is_caught_before_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = temp_file(
        &dir,
        "config.yaml",
        &GOOD.replace("127.0.0.1:9902", "127.0.0.1:9191"),
    );
    let run = config_check(&[&file], &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(&format!(
            "{file}:4:11: error[invalid_value]: admin.listen: `127.0.0.1:9191` clashes with authz.listen (`127.0.0.1:9191`)"
        )),
        "{}",
        run.stdout
    );
}

#[test]
fn warnings_pass_unless_strict_and_json_is_for_ci() {
    let dir = tempfile::tempdir().unwrap();
    let file = temp_file(&dir, "config.yaml", GOOD);
    let vars = [("HALLPASS_AUTHZ_LISTN", "127.0.0.1:1")];
    let run = config_check(&[&file], &vars);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(
            "$HALLPASS_AUTHZ_LISTN: warning[config_warning]: (environment): not a hallpass setting; ignored"
        ),
        "{}",
        run.stdout
    );
    assert!(run.stdout.ends_with(&format!("{file}: ok, 1 warning(s)\n")));
    let strict = config_check(&[&file, "--strict"], &vars);
    assert_eq!(strict.code, 1, "{}{}", strict.stdout, strict.stderr);
    let json = config_check(&[&file, "--format", "json"], &vars);
    assert_eq!(json.code, 0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["errors"], 0);
    assert_eq!(v["warnings"], 1);
    assert_eq!(v["findings"][0]["code"], "config_warning");
}

#[test]
fn usage_errors_exit_64() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.yaml").display().to_string();
    for args in [
        &[missing.as_str()][..],
        &[],
        &["a.yaml", "--format", "xml"],
        &["a.yaml", "--no-such-flag"],
    ] {
        let run = config_check(args, &[]);
        assert_eq!(run.code, 64, "{args:?}: {}{}", run.stdout, run.stderr);
    }
}
