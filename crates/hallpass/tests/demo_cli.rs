//! `hallpass demo` as a new user sees it (issue 14 item 14): it says where
//! its policy is and prints it on request, its table's every column has a
//! heading, and it shows the anomaly counters, the headline feature.

use crate::common::*;

#[test]
fn the_demo_shows_its_policy_its_headings_and_the_anomaly_counters() {
    let run = hallpass(&["demo"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let out = &run.stdout;
    assert!(
        out.contains(
            "  policy: examples/policies/clinical-mesh.yaml (the shipped example; `hallpass demo --print-policy` prints it)\n"
        ),
        "{out}"
    );
    let heading = out
        .lines()
        .find(|l| l.contains("caller") && l.contains("x-hallpass-source"))
        .unwrap();
    assert!(heading.starts_with("ok? call "), "{heading}");
    // Every row's first column is under that heading, and each got the
    // answer the demo expects.
    let rows: Vec<&str> = out
        .lines()
        .skip_while(|l| *l != heading)
        .skip(1)
        .take_while(|l| !l.starts_with('('))
        .collect();
    assert_eq!(rows.len(), 13, "{out}");
    assert!(rows.iter().all(|r| r.starts_with("ok  ")), "{out}");
    // The anomalies the scripted calls show, as the counters say.
    let section = out
        .split("The unexpected call paths they showed")
        .nth(1)
        .unwrap();
    for kind in ["denied", "revoked"] {
        assert!(
            section
                .lines()
                .any(|l| l.starts_with("  hallpass_call_path_anomalies_total{")
                    && l.contains(&format!("kind=\"{kind}\""))),
            "{kind}: {out}"
        );
    }
}

#[test]
fn the_demo_prints_its_policy_on_request() {
    let run = hallpass(&["demo", "--print-policy"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let shipped = std::fs::read_to_string(example("clinical-mesh.yaml")).unwrap();
    assert_eq!(run.stdout, shipped);
}
