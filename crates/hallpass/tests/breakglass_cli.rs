//! `hallpass breakglass open|close|list` as an operator runs them: exit
//! codes (0 done, 1 refused, 64 usage), and an overlay that is never left
//! half-written or overwritten when it does not parse. The full path through
//! a running sidecar and Envoy is tests/tests/healthcare_controls.rs.

use crate::common::*;

const BILLING: &str = "spiffe://hospital.example/ns/billing/sa/billing";

fn open_args<'a>(overlay: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "breakglass",
        "open",
        "--overlay",
        overlay,
        "--from",
        BILLING,
        "--to",
        LAB,
        "--reason",
        "downtime",
        "--ticket",
        "INC-9",
        "--opened-by",
        "alice",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn breakglass_exit_codes_and_a_safe_overlay() {
    let dir = tempfile::tempdir().unwrap();
    let overlay = dir.path().join("overlay.yaml");
    let file = overlay.to_str().unwrap();

    // Usage: no expiry, both expiries, no command.
    for args in [
        open_args(file, &[]),
        open_args(
            file,
            &["--expires-in", "1h", "--expires", "2030-01-01T00:00:00Z"],
        ),
        vec!["breakglass"],
    ] {
        let run = hallpass(&args);
        assert_eq!(run.code, 64, "{args:?}: {}", run.stderr);
    }
    // Refused: a bad duration, a bad name, longer than the maximum.
    for extra in [
        &["--expires-in", "2 days"][..],
        &["--expires-in", "1h", "--name", "no spaces"],
        &["--expires-in", "3h", "--max-duration", "2h"],
    ] {
        let run = hallpass(&open_args(file, extra));
        assert_eq!(run.code, 1, "{extra:?}: {}{}", run.stdout, run.stderr);
    }
    assert!(!overlay.exists(), "a refused grant writes nothing");

    let run = hallpass(&open_args(file, &["--expires-in", "1h"]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("bg-inc-9"), "{}", run.stdout);
    // The same name again: refused, the file as it was.
    let before = std::fs::read_to_string(&overlay).unwrap();
    assert_eq!(hallpass(&open_args(file, &["--expires-in", "1h"])).code, 1);
    assert_eq!(std::fs::read_to_string(&overlay).unwrap(), before);
    // No temporary file is left beside it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    let run = hallpass(&["breakglass", "list", "--overlay", file]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.starts_with("bg-inc-9 [open] "), "{}", run.stdout);
    assert_eq!(
        hallpass(&["breakglass", "close", "nope", "--overlay", file]).code,
        1
    );
    assert_eq!(
        hallpass(&["breakglass", "close", "bg-inc-9", "--overlay", file]).code,
        0
    );

    // An overlay that does not parse is never overwritten.
    std::fs::write(&overlay, "version: 1\nbreak_glass: [oops\n").unwrap();
    let run = hallpass(&open_args(file, &["--expires-in", "1h"]));
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("fix or remove the file"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&overlay).unwrap(),
        "version: 1\nbreak_glass: [oops\n"
    );
    assert_eq!(hallpass(&["breakglass", "list", "--overlay", file]).code, 1);
}
