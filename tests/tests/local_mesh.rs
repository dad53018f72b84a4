//! The shortened run of the local mesh demo (`examples/local`): real Envoys,
//! hallpass sidecars and Prometheus; the on-call summary must show the
//! incident, and only the incident, as new call paths.

use std::process::Command;

#[test]
fn local_mesh_demo_catches_the_incident() {
    hallpass_e2e::envoy_bin().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hallpass-local-mesh"))
        .args(["--quick", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "local mesh failed:\n{stdout}\n{stderr}"
    );
    for expected in [
        "403  billing suddenly pulls lab results",
        "401  the retired fax gateway tries again",
        "new_edge          billing -> lab-results",
        "revoked           fax-gateway -> lab-results",
        "grant_expired     uploader -> lab-results",
        "rate_spike        ehr-api -> lab-results",
        "HallpassMeshNewCallPath          billing -> lab-results",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    // The mesh-wide report, built from Prometheus: the expired pilot grant
    // never allowed anything, and the retired fax gateway is named nowhere
    // as allowed.
    let report = stdout
        .split("=== mesh-wide report")
        .nth(1)
        .unwrap_or_default();
    let never_used: String = report
        .split("Rules never used")
        .nth(1)
        .unwrap_or_default()
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(never_used.contains("imaging-vendor-pilot"), "{report}");
    assert!(
        !never_used.contains("ehr-reads-results"),
        "a used rule listed as unused:\n{report}"
    );
    // Normal call paths are not flagged as new.
    assert!(
        !stdout.contains("HallpassMeshNewCallPath          ehr-api -> lab-results"),
        "{stdout}"
    );
    // No patient identifier reaches Prometheus or the audit logs.
    // The run used `dir`, or `dir/retry-N` after a port clash at start.
    let run_dir = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("retry-"))
        })
        .max()
        .unwrap_or_else(|| dir.path().to_path_buf());
    let audit = std::fs::read_to_string(run_dir.join("audit-lab-results.jsonl")).unwrap();
    assert!(!audit.contains("MRN-"), "{audit}");
}
