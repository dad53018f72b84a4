//! The audit log: record format, the raw-path opt-in, and size-based rotation.

use crate::common;

use std::path::{Path, PathBuf};

use common::*;
use hallpass_telemetry::{
    AuditTarget, AuditWriter, CredentialKind, Credentials, DenyReason, PathIssue, audit_line,
    request_id, trace_id,
};

/// `metrics.md` promises milliseconds: always three digits, so records line
/// up and sort as text (issue 14, item 13).
#[test]
fn audit_time_always_has_three_millisecond_digits() {
    for (ms, want) in [
        (1_767_225_600_000, "2026-01-01T00:00:00.000Z"),
        (1_767_225_600_140, "2026-01-01T00:00:00.140Z"),
        (1_767_225_600_100, "2026-01-01T00:00:00.100Z"),
        (1_767_225_600_007, "2026-01-01T00:00:00.007Z"),
        (1_767_225_659_999, "2026-01-01T00:00:59.999Z"),
    ] {
        let v: serde_json::Value = serde_json::from_str(&audit_line(&allow(ms), "id")).unwrap();
        assert_eq!(v["time"], want, "at {ms} ms");
    }
}

#[test]
fn a_record_has_every_documented_field() {
    let mut event = allow(1_767_225_600_123); // 2026-01-01T00:00:00.123Z
    event.trace_id = Some("4bf92f3577b34da6a3ce929d0e0e4736".into());
    event.credentials = Credentials::NONE
        .with(CredentialKind::Jwt)
        .with(CredentialKind::X509);
    let line = audit_line(&event, "abc-1");
    assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["time"], "2026-01-01T00:00:00.123Z");
    assert_eq!(v["decision_id"], "abc-1");
    assert_eq!(v["decision"], "allow");
    assert_eq!(v["reason"], "ok");
    assert_eq!(v["mode"], "enforce");
    assert_eq!(v["source"], EHR);
    assert_eq!(v["destination"], LAB);
    assert_eq!(v["method"], "GET");
    assert_eq!(v["route"], RESULTS);
    assert_eq!(v["rule"], "ehr-reads-results");
    assert_eq!(v["credentials"], serde_json::json!(["x509", "jwt"]));
    assert_eq!(v["request_id"], "5f0c2a7e-1b7d-4c1e-9d3a-8f2b6c4d1e00");
    assert_eq!(v["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert!(v.get("path").is_none());
    // A deny has empty route and rule, and no optional ids when absent.
    let mut denied = deny(0, BILLING, DenyReason::NoMatchingRule);
    denied.request_id = None;
    let v: serde_json::Value = serde_json::from_str(&audit_line(&denied, "x")).unwrap();
    assert_eq!(
        (v["route"].as_str(), v["rule"].as_str()),
        (Some(""), Some(""))
    );
    assert_eq!(v["decision"], "deny");
    assert!(v.get("request_id").is_none() && v.get("trace_id").is_none());
}

#[test]
fn a_raw_path_is_written_only_when_opted_in() {
    let raw = format!("/patients/{CANARY}/results?name=Jane");
    // The decision path only fills raw_path with telemetry.log_raw_paths.
    for event in [
        allow(0),
        deny(0, BILLING, DenyReason::NoMatchingRule),
        audit_deny(0, BILLING),
    ] {
        let line = audit_line(&event, "id");
        assert!(!line.contains(CANARY) && !line.contains("Jane"), "{line}");
        assert!(!line.contains("\"path\""), "{line}");
    }
    let mut opted_in = allow(0);
    opted_in.raw_path = Some(raw.clone());
    let v: serde_json::Value = serde_json::from_str(&audit_line(&opted_in, "id")).unwrap();
    assert_eq!(v["path"], raw.as_str());
}

/// An `ambiguous_path` deny's record names its cause as a fixed code, and
/// only when there is one (issue 14, item 5).
#[test]
fn an_ambiguous_path_record_carries_its_cause_code() {
    let mut event = deny(0, BILLING, DenyReason::AmbiguousPath);
    event.path_issue = Some(PathIssue::TrailingSlash);
    let v: serde_json::Value = serde_json::from_str(&audit_line(&event, "id")).unwrap();
    assert_eq!(v["reason"], "ambiguous_path");
    assert_eq!(v["path_issue"], "trailing_slash");
    assert!(v.get("path").is_none());
    let line = audit_line(&deny(0, BILLING, DenyReason::NoMatchingRule), "id");
    assert!(!line.contains("path_issue"), "{line}");
}

/// Only Envoy's own request-ID form (a UUID) reaches the audit record: the
/// looser rule of letters, digits and `-` once recorded `MRN-12345` verbatim.
#[test]
fn request_ids_are_kept_only_in_envoys_uuid_form() {
    assert_eq!(
        request_id("5F0C2A7E-1b7d-4c1e-9d3a-8f2b6c4d1e00").as_deref(),
        Some("5f0c2a7e-1b7d-4c1e-9d3a-8f2b6c4d1e00")
    );
    for caller_chosen in [
        "MRN-12345",
        "mrn-5551234",
        "req-1",
        "5f0c2a7e1b7d4c1e9d3a8f2b6c4d1e00",
        "5f0c2a7e-1b7d-4c1e-9d3a-8f2b6c4d1e00-MRN",
        "5f0c2a7e-1b7d-4c1e-9d3a-8f2b6c4d1e0g",
        "{5f0c2a7e-1b7d-4c1e-9d3a-8f2b6c4d1e00}",
        " 5f0c2a7e-1b7d-4c1e-9d3a-8f2b6c4d1e00",
        "",
    ] {
        assert_eq!(request_id(caller_chosen), None, "{caller_chosen:?}");
    }
    assert_eq!(
        trace_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    for caller_chosen in [
        "00-MRN-5551234-01",
        "00-mrn5551234mrn5551234mrn5551234-x-01",
    ] {
        assert_eq!(trace_id(caller_chosen), None, "{caller_chosen:?}");
    }
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    PathBuf::from(format!("{}.{n}", path.display()))
}

#[test]
fn rotation_respects_the_size_cap_and_keeps_n_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs/audit.jsonl");
    let max_bytes = 1000;
    let mut writer = AuditWriter::open(AuditTarget::File {
        path: path.clone(),
        max_bytes,
        keep: 2,
    })
    .unwrap();
    // 100 numbered lines of 100 bytes: 10 per file, 10 files' worth.
    for i in 0..100 {
        let head = format!("{{\"n\":{i}");
        let line = format!("{head}{}}}\n", " ".repeat(100 - 2 - head.len()));
        assert_eq!(line.len(), 100);
        writer.write_line(&line).unwrap();
    }
    drop(writer);
    for p in [&path, &numbered(&path, 1), &numbered(&path, 2)] {
        let size = std::fs::metadata(p).unwrap().len();
        assert!(size <= max_bytes, "{} is {size} bytes", p.display());
    }
    assert!(!numbered(&path, 3).exists(), "only `keep` rotated files");
    let first = |p: &Path| {
        let text = std::fs::read_to_string(p).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        v["n"].as_u64().unwrap()
    };
    // Newest in the active file, then .1, then .2; older ones were dropped.
    assert_eq!(first(&path), 90);
    assert_eq!(first(&numbered(&path, 1)), 80);
    assert_eq!(first(&numbered(&path, 2)), 70);
}

#[test]
fn reopening_appends_and_counts_the_existing_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let target = AuditTarget::File {
        path: path.clone(),
        max_bytes: 250,
        keep: 1,
    };
    let line = format!("{}\n", "x".repeat(99));
    let mut w = AuditWriter::open(target.clone()).unwrap();
    w.write_line(&line).unwrap();
    w.write_line(&line).unwrap();
    drop(w);
    // A restart: the third line would pass 250 bytes, so it rotates first.
    let mut w = AuditWriter::open(target).unwrap();
    w.write_line(&line).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 100);
    assert_eq!(std::fs::metadata(numbered(&path, 1)).unwrap().len(), 200);
}

#[test]
fn keep_zero_truncates_instead_of_rotating() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut w = AuditWriter::open(AuditTarget::File {
        path: path.clone(),
        max_bytes: 150,
        keep: 0,
    })
    .unwrap();
    let line = format!("{}\n", "y".repeat(99));
    for _ in 0..3 {
        w.write_line(&line).unwrap();
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 100);
    assert!(!numbered(&path, 1).exists());
}

#[test]
fn off_accepts_every_line_without_an_error() {
    let mut w = AuditWriter::open(AuditTarget::Off).unwrap();
    w.write_line("anything\n").unwrap();
}

/// The worker's batches (`append`, then one `flush`) leave exactly the files
/// that one `write_line` per record leaves: same records, same order, and
/// rotation between the same two records, never splitting a batch across
/// the size cap.
#[test]
fn batched_records_rotate_exactly_where_single_writes_do() {
    let dir = tempfile::tempdir().unwrap();
    let target = |name: &str| AuditTarget::File {
        path: dir.path().join(name),
        max_bytes: 2_000,
        keep: 3,
    };
    let events: Vec<_> = (0..23).map(|i| allow(1_767_225_600_000 + i)).collect();
    let mut single = AuditWriter::open(target("single.jsonl")).unwrap();
    for (i, e) in events.iter().enumerate() {
        single
            .write_line(&audit_line(e, &format!("d-{i}")))
            .unwrap();
    }
    let mut batched = AuditWriter::open(target("batched.jsonl")).unwrap();
    // Batches of 1, 2, 3, ... records, as the worker's passes would be.
    let mut i = 0;
    for size in 1.. {
        if i >= events.len() {
            break;
        }
        for e in events.iter().skip(i).take(size) {
            assert_eq!(batched.append(e, &format!("d-{i}")), 0);
            i += 1;
        }
        assert_eq!(batched.flush(), 0);
    }
    drop((single, batched));
    for n in [None, Some(1), Some(2), Some(3)] {
        let name = |base: &str| match n {
            None => dir.path().join(base),
            Some(n) => numbered(&dir.path().join(base), n),
        };
        let want = std::fs::read_to_string(name("single.jsonl")).unwrap();
        let got = std::fs::read_to_string(name("batched.jsonl")).unwrap();
        assert_eq!(got, want, "file {n:?}");
        assert!(got.len() <= 2_000);
        assert!(got.ends_with('\n') && !got.is_empty());
    }
}
