//! `hallpass inject --render` on pods that try to weaken or forge their
//! protection.

use crate::common::*;

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
