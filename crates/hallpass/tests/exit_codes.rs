//! Exit codes as documented in docs/reference.md: 64 (sysexits
//! `EX_USAGE`) for a usage error, clap's included, and for an invalid
//! config at `serve` start; 1 for a sidecar that cannot bind; 0 for help
//! and version.

use crate::common::*;

#[test]
fn policy_usage_errors_exit_64() {
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
        assert_eq!(run.code, 64, "{args:?}: {}{}", run.stdout, run.stderr);
    }
}

#[test]
fn argument_errors_exit_64_and_help_exits_0() {
    for args in [
        &["frobnicate"][..],
        &[],
        &["serve"],
        &["serve", "--config"],
        &["policy", "explain", "p.yaml", "--source", EHR],
        &["policy", "check", "a.yaml", "--no-such-flag"],
    ] {
        let run = hallpass(args);
        assert_eq!(run.code, 64, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        assert!(
            run.stderr.contains("Usage: hallpass") || run.stderr.contains("try '--help'"),
            "{args:?}: {}",
            run.stderr
        );
    }
    for args in [&["--help"][..], &["--version"], &["policy", "--help"]] {
        let run = hallpass(args);
        assert_eq!(run.code, 0, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(!run.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn serve_with_an_invalid_config_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let unknown_key = temp_file(
        &dir,
        "unknown.yaml",
        "authz:\n  listen: 127.0.0.1:0\nnot_a_key: 1\n",
    );
    let missing = dir.path().join("missing.yaml").display().to_string();
    for config in [unknown_key, missing] {
        let run = hallpass(&["serve", "--config", &config]);
        assert_eq!(run.code, 64, "{config}: {}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains("invalid config"), "{}", run.stderr);
    }
}

/// Runs `serve` with the port of `taken_key` (`authz` or `admin`) already
/// in use; the other listener gets a free port. Returns the run and the port.
fn serve_with_a_taken_port(taken_key: &str) -> (Run, u16) {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let policy = temp_file(
        &dir,
        "policy.yaml",
        "version: 1\ntrust_domains: [hospital.example]\nworkloads: {}\n",
    );
    let listen = |key: &str| {
        if key == taken_key {
            format!("127.0.0.1:{port}")
        } else {
            "127.0.0.1:0".to_owned()
        }
    };
    let config = temp_file(
        &dir,
        "config.yaml",
        &format!(
            "authz:\n  listen: {}\nadmin:\n  listen: {}\n\
             workload:\n  id: {LAB}\nidentity:\n  x509_from: envoy_principal\npolicy:\n  file: {policy}\ntelemetry:\n  audit_log: \"off\"\n",
            listen("authz"),
            listen("admin"),
        ),
    );
    let run = hallpass(&["serve", "--config", &config]);
    drop(taken);
    (run, port)
}

#[test]
fn serve_that_cannot_bind_exits_1() {
    let (run, port) = serve_with_a_taken_port("authz");
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    // Issue 14 item 8: one error that names the listener and its address,
    // with the OS error once.
    let error: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(error.len(), 1, "one error line expected: {}", run.stderr);
    let line = error[0];
    assert!(
        line.starts_with(&format!(
            "error: authz.listen: cannot listen on 127.0.0.1:{port}: "
        )),
        "{line}"
    );
    let os_error = "in use";
    assert_eq!(line.matches(os_error).count(), 1, "{line}");
}

/// The admin listener is named when it is the one that cannot bind.
#[test]
fn serve_names_the_admin_listener_when_it_cannot_bind() {
    let (run, port) = serve_with_a_taken_port("admin");
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "error: admin.listen: cannot listen on 127.0.0.1:{port}: "
        )),
        "{}",
        run.stderr
    );
}

/// Issue 14 item 2: a policy file missing or invalid at start is not an
/// exit (a ConfigMap can arrive after the pod starts): `serve` stays up,
/// not ready and denying, and its log says what is true (there is no last
/// good policy to keep yet).
#[test]
fn serve_without_a_valid_policy_at_start_stays_up_and_says_none_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let invalid = temp_file(&dir, "invalid.yaml", "version: 1\nworkloads: [oops\n");
    let missing = dir.path().join("missing.yaml").display().to_string();
    for policy in [missing, invalid] {
        let config = temp_file(
            &dir,
            "config.yaml",
            &format!(
                "authz:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\n\
                 workload:\n  id: {LAB}\nidentity:\n  x509_from: envoy_principal\npolicy:\n  file: {policy}\ntelemetry:\n  audit_log: \"off\"\n"
            ),
        );
        // `serve` logs JSON lines on stdout.
        let log = dir.path().join("stdout.log");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hallpass"))
            .args(["serve", "--config", &config])
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut text = String::new();
        for _ in 0..100 {
            text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("policy") && text.contains("denied") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let still_running = child.try_wait().unwrap().is_none();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(still_running, "{policy}: serve exited: {text}");
        assert!(
            text.contains(
                "no policy is loaded yet, so every call is denied and /readyz reports not ready until a valid policy file appears"
            ),
            "{policy}: {text}"
        );
        assert!(!text.contains("last good"), "{policy}: {text}");
    }
}
