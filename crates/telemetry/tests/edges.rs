//! The edge table (learning, new edges, caps), rate spikes and the baseline
//! file (round trip, atomic write, merge).

use crate::common;

use common::*;
use hallpass_telemetry::{Baseline, EdgeTable, Observation, RateSpikeSettings};

const T0: i64 = 1_000_000;
const LEARN_UNTIL: i64 = T0 + 60_000;
const AFTER: i64 = LEARN_UNTIL + 1;

#[test]
fn learning_adds_allowed_and_audit_denied_edges_only() {
    let mut table = EdgeTable::new(100, Baseline::new(), Some(LEARN_UNTIL));
    assert!(table.learning(T0) && !table.learning(LEARN_UNTIL));
    let allowed = key(EHR, RESULTS, "GET");
    let audit_denied = key(BILLING, "(unmatched)", "GET");
    let denied = key(BILLING, "(unmatched)", "POST");
    // observe(key, allowed_traffic, denied, now): audit_deny lets the call through.
    assert_eq!(
        table.observe(&allowed, true, false, T0),
        Observation::default()
    );
    assert_eq!(
        table.observe(&audit_denied, true, true, T0),
        Observation::default()
    );
    assert_eq!(
        table.observe(&denied, false, true, T0),
        Observation::default()
    );
    let learned: Vec<_> = table.baseline().edges.iter().cloned().collect();
    assert_eq!(learned, vec![audit_denied.clone(), allowed.clone()]);
    assert!(table.take_dirty(), "learning marks the baseline for saving");
    assert!(!table.take_dirty());
    assert_eq!(table.baseline().learning_until_ms, Some(LEARN_UNTIL));
    // Nothing seen while learning is new, not even the enforced deny.
    assert!(table.iter().all(|(_, s)| !s.new));
}

#[test]
fn new_edge_only_after_learning_and_once_per_edge() {
    let mut table = EdgeTable::new(100, Baseline::new(), Some(LEARN_UNTIL));
    let known = key(EHR, RESULTS, "GET");
    let during = table.observe(&known, true, false, T0);
    assert!(!during.new_edge);
    // After the window: a known edge is not new, an unknown one is, once.
    assert!(!table.observe(&known, true, false, AFTER).new_edge);
    let fresh = key(EHR, "/patients/{patient}/results/{result}", "GET");
    assert!(table.observe(&fresh, true, false, AFTER).new_edge);
    for _ in 0..5 {
        assert!(!table.observe(&fresh, true, false, AFTER + 10).new_edge);
    }
    // A denied edge after learning is new too (and is never learned).
    let denied = key(BILLING, "(unmatched)", "GET");
    assert!(table.observe(&denied, false, true, AFTER).new_edge);
    assert!(!table.baseline().edges.contains(&denied));
    assert!(!table.baseline().edges.contains(&fresh), "learning is over");
    let stats = |k| table.iter().find(|(x, _)| *x == k).unwrap().1.clone();
    let s = stats(&fresh);
    assert_eq!((s.count, s.allowed, s.denied, s.new), (6, 6, 0, true));
    assert_eq!((s.first_seen_ms, s.last_seen_ms), (AFTER, AFTER + 10));
    assert_eq!(stats(&denied).denied, 1);
}

#[test]
fn without_a_learning_window_every_edge_outside_the_baseline_is_new() {
    let mut baseline = Baseline::new();
    baseline.edges.insert(key(EHR, RESULTS, "GET"));
    let mut table = EdgeTable::new(100, baseline, None);
    assert!(!table.learning(0));
    assert!(
        !table
            .observe(&key(EHR, RESULTS, "GET"), true, false, 0)
            .new_edge
    );
    assert!(
        table
            .observe(&key(EHR, RESULTS, "POST"), true, false, 0)
            .new_edge
    );
    assert!(!table.take_dirty(), "nothing learned");
}

#[test]
fn the_table_is_capped_and_overflow_is_reported() {
    let mut table = EdgeTable::new(3, Baseline::new(), None);
    for i in 0..3 {
        let o = table.observe(&key(EHR, &format!("/r{i}"), "GET"), true, false, 0);
        assert_eq!(
            o,
            Observation {
                new_edge: true,
                dropped: false
            }
        );
    }
    assert_eq!(table.len(), 3);
    for _ in 0..2 {
        let o = table.observe(&key(EHR, "/r3", "GET"), true, false, 0);
        assert_eq!(
            o,
            Observation {
                new_edge: false,
                dropped: true
            }
        );
    }
    assert_eq!(table.len(), 3);
    // Tracked edges are still counted when the table is full.
    let o = table.observe(&key(EHR, "/r0", "GET"), true, false, 1);
    assert_eq!(o, Observation::default());
}

#[test]
fn the_baseline_learns_at_most_cap_edges() {
    let mut table = EdgeTable::new(2, Baseline::new(), Some(LEARN_UNTIL));
    for i in 0..4 {
        table.observe(&key(EHR, &format!("/r{i}"), "GET"), true, false, T0);
    }
    assert_eq!(table.baseline().edges.len(), 2);
}

fn spike_settings() -> RateSpikeSettings {
    RateSpikeSettings {
        factor: 5.0,
        min_requests: 50,
        alpha: 0.5,
    }
}

fn burst(table: &mut EdgeTable, k: &hallpass_telemetry::EdgeKey, n: u64) {
    for _ in 0..n {
        table.observe(k, true, false, AFTER);
    }
}

#[test]
fn quiet_edges_below_min_requests_never_spike() {
    let mut table = EdgeTable::new(10, Baseline::new(), None);
    let quiet = key(EHR, RESULTS, "GET");
    let s = spike_settings();
    // One request per window, then a 40x jump that is still under 50 requests.
    for _ in 0..5 {
        burst(&mut table, &quiet, 1);
        assert!(table.close_window(10.0, &s).is_empty());
    }
    burst(&mut table, &quiet, 40);
    assert!(table.close_window(10.0, &s).is_empty());
    // An edge that was idle (moving average 0) and then sees a few requests.
    let idle = key(BILLING, "/x", "GET");
    burst(&mut table, &idle, 1);
    table.close_window(10.0, &s);
    for _ in 0..3 {
        table.close_window(10.0, &s);
    }
    burst(&mut table, &idle, 49);
    assert!(table.close_window(10.0, &s).is_empty());
}

/// An edge that first appears 90 % of the way into a rate window has a tenth
/// of a window's traffic in it. Priming the moving average from that window
/// once made the edge's first full window look like a tenfold spike.
#[test]
fn an_edge_that_starts_at_90_percent_of_a_window_does_not_spike_at_its_usual_rate() {
    let mut table = EdgeTable::new(10, Baseline::new(), None);
    let s = spike_settings();
    // Another edge keeps the windows ticking (10 s each, 10 rps).
    let steady = key(BILLING, "/x", "GET");
    burst(&mut table, &steady, 100);
    assert!(table.close_window(10.0, &s).is_empty());
    // The new edge, also 10 rps, from 9 s into the window: 10 requests.
    let edge = key(EHR, RESULTS, "GET");
    burst(&mut table, &steady, 100);
    burst(&mut table, &edge, 10);
    assert!(table.close_window(10.0, &s).is_empty());
    // Its usual rate in full windows is no spike, now or later.
    for window in 0..4 {
        burst(&mut table, &steady, 100);
        burst(&mut table, &edge, 100);
        assert!(
            table.close_window(10.0, &s).is_empty(),
            "full window {window} at the usual rate counted as a spike"
        );
    }
    let ewma = table.iter().find(|(k, _)| **k == edge).unwrap().1.ewma_rps;
    assert!(
        (ewma - 10.0).abs() < 1e-9,
        "primed from full windows: {ewma}"
    );
    // A real burst still spikes.
    burst(&mut table, &edge, 1000);
    assert_eq!(table.close_window(10.0, &s), vec![edge]);
}

#[test]
fn a_ten_fold_burst_spikes_and_the_ewma_follows() {
    let mut table = EdgeTable::new(10, Baseline::new(), None);
    let edge = key(EHR, RESULTS, "GET");
    let s = spike_settings();
    // The edge's first window is partial and discarded; the first full one
    // only primes the average: never a spike, however busy.
    burst(&mut table, &edge, 5);
    assert!(table.close_window(10.0, &s).is_empty());
    let ewma = |t: &EdgeTable| t.iter().next().unwrap().1.ewma_rps;
    assert!(ewma(&table).abs() < 1e-9, "a partial window primes nothing");
    burst(&mut table, &edge, 1000);
    assert!(table.close_window(10.0, &s).is_empty());
    assert!((ewma(&table) - 100.0).abs() < 1e-9);
    // Steady 100 per window = 10 rps.
    for _ in 0..6 {
        burst(&mut table, &edge, 100);
        assert!(table.close_window(10.0, &s).is_empty());
    }
    // The EWMA (alpha 0.5) converges towards 10 rps from 100.
    let settled = ewma(&table);
    assert!((settled - 10.0).abs() < 2.0, "ewma {settled}");
    // 10x the usual rate.
    burst(&mut table, &edge, 1000);
    assert_eq!(table.close_window(10.0, &s), vec![edge.clone()]);
    assert!(table.iter().next().unwrap().1.spiking);
    let after = ewma(&table);
    assert!(
        (after - (0.5 * 100.0 + 0.5 * settled)).abs() < 1e-9,
        "EWMA = alpha*rate + (1-alpha)*old: {after}"
    );
    // Back to the usual rate: the flag clears.
    burst(&mut table, &edge, 100);
    assert!(table.close_window(10.0, &s).is_empty());
    assert!(!table.iter().next().unwrap().1.spiking);
    // A zero-length window changes nothing.
    assert!(table.close_window(0.0, &s).is_empty());
}

#[test]
fn baseline_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/baseline.json");
    let mut baseline = Baseline::new();
    baseline.edges.insert(key(EHR, RESULTS, "GET"));
    baseline.edges.insert(key(BILLING, "/charges", "POST"));
    baseline.learning_until_ms = Some(LEARN_UNTIL);
    baseline.save(&path).unwrap();
    assert_eq!(Baseline::load(&path).unwrap(), baseline);
    // The file is pretty JSON with the documented fields.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["learning_until_ms"], LEARN_UNTIL);
    assert_eq!(json["edges"][0]["route"], "/charges");
    // A finished baseline has no learning_until_ms at all.
    Baseline::new().save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("learning_until_ms"), "{text}");
}

#[test]
fn baseline_save_writes_a_temp_file_then_renames() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baseline.json");
    let mut first = Baseline::new();
    first.edges.insert(key(EHR, RESULTS, "GET"));
    first.save(&path).unwrap();
    let mut second = first.clone();
    second.edges.insert(key(BILLING, "/charges", "POST"));
    second.save(&path).unwrap();
    assert_eq!(Baseline::load(&path).unwrap(), second);
    // Only the final file remains: the temporary one was renamed over it.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["baseline.json"]);
}

#[test]
fn a_leftover_temp_file_from_a_crash_does_not_break_load_or_save() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baseline.json");
    let mut good = Baseline::new();
    good.edges.insert(key(EHR, RESULTS, "GET"));
    good.save(&path).unwrap();
    // A crash between write and rename leaves a half-written temp file.
    let leftover = dir
        .path()
        .join(format!(".baseline.json.tmp-{}", std::process::id()));
    std::fs::write(&leftover, b"{\"version\":1,\"edges\":[{\"sour").unwrap();
    std::fs::write(dir.path().join(".baseline.json.tmp-1"), b"garbage").unwrap();
    assert_eq!(Baseline::load(&path).unwrap(), good);
    // The next save replaces the stale temp file and still succeeds.
    let mut next = good.clone();
    next.edges.insert(key(BILLING, "/charges", "POST"));
    next.save(&path).unwrap();
    assert_eq!(Baseline::load(&path).unwrap(), next);
}

#[test]
fn bad_baseline_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baseline.json");
    assert!(Baseline::load(&path).is_err(), "missing");
    std::fs::write(&path, "{\"version\":1,\"edges\":[").unwrap();
    assert!(Baseline::load(&path).is_err(), "truncated");
    std::fs::write(&path, "{\"version\":2,\"edges\":[]}").unwrap();
    let err = Baseline::load(&path).unwrap_err().to_string();
    assert!(err.contains("unsupported version 2"), "{err}");
}

#[test]
fn merge_is_a_union_and_ends_learning() {
    let mut a = Baseline::new();
    a.edges.insert(key(EHR, RESULTS, "GET"));
    a.learning_until_ms = Some(LEARN_UNTIL);
    let mut b = Baseline::new();
    b.edges.insert(key(EHR, RESULTS, "GET"));
    b.edges.insert(key(BILLING, "/charges", "POST"));
    a.merge(&b);
    assert_eq!(a.edges, b.edges);
    assert_eq!(a.learning_until_ms, None);
    let before = a.clone();
    a.merge(&Baseline::new());
    assert_eq!(a, before, "merging nothing changes nothing");
}

#[test]
fn baseline_save_never_follows_a_planted_symlink() {
    // Someone who can write to the state directory plants symlinks where the
    // old code wrote (`.NAME.tmp-PID`) and at the target itself. Neither
    // victim may change; the target becomes a regular file.
    let dir = tempfile::tempdir().unwrap();
    let victims = tempfile::tempdir().unwrap();
    let (tmp_victim, target_victim) = (
        victims.path().join("tmp-victim"),
        victims.path().join("target-victim"),
    );
    std::fs::write(&tmp_victim, "precious one").unwrap();
    std::fs::write(&target_victim, "precious two").unwrap();
    let path = dir.path().join("baseline.json");
    std::os::unix::fs::symlink(
        &tmp_victim,
        dir.path()
            .join(format!(".baseline.json.tmp-{}", std::process::id())),
    )
    .unwrap();
    std::os::unix::fs::symlink(&target_victim, &path).unwrap();
    let mut baseline = Baseline::new();
    baseline.edges.insert(key(EHR, RESULTS, "GET"));
    baseline.save(&path).unwrap();
    assert_eq!(
        std::fs::read_to_string(&tmp_victim).unwrap(),
        "precious one"
    );
    assert_eq!(
        std::fs::read_to_string(&target_victim).unwrap(),
        "precious two"
    );
    assert!(
        std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_file(),
        "the link is replaced, not followed"
    );
    assert_eq!(Baseline::load(&path).unwrap(), baseline);
}

#[test]
fn baseline_fields_must_be_what_a_sidecar_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baseline.json");
    let edge = |source: &str, destination: &str, route: &str, method: &str| serde_json::json!({"source": source, "destination": destination, "route": route, "method": method});
    // Every label form the sidecar writes loads.
    let good = [
        edge(EHR, LAB, RESULTS, "GET"),
        edge("other:hospital.example", LAB, "(unmatched)", "OTHER"),
        edge(
            "other:untrusted",
            "other",
            "lab.v1.Results/GetResult",
            "POST",
        ),
        edge("unauthenticated", "unknown", "/befunde/ärztlich", "DELETE"),
        edge(EHR, LAB, "*", "PUT"),
    ];
    std::fs::write(
        &path,
        serde_json::json!({"version": 1, "edges": good}).to_string(),
    )
    .unwrap();
    assert_eq!(Baseline::load(&path).unwrap().edges.len(), 5);

    for (bad, field) in [
        (edge("\u{1b}]0;pwned\u{7}", LAB, RESULTS, "GET"), "source"),
        (
            edge("spiffe://hospital.example", LAB, RESULTS, "GET"),
            "source",
        ),
        (
            edge("other:Hospital.Example", LAB, RESULTS, "GET"),
            "source",
        ),
        (
            edge(EHR, "lab-results\u{1b}[2J", RESULTS, "GET"),
            "destination",
        ),
        (
            edge(EHR, LAB, "/patients/\u{1b}[2J\u{1b}[H", "GET"),
            "route",
        ),
        (edge(EHR, LAB, "/a\u{9b}2J", "GET"), "route"),
        (edge(EHR, LAB, "/a\u{202e}gnp.exe", "GET"), "route"),
        (edge(EHR, LAB, "/a b", "GET"), "route"),
        (edge(EHR, LAB, RESULTS, "get"), "method"),
        (edge(EHR, LAB, RESULTS, "GET\u{7}"), "method"),
    ] {
        std::fs::write(
            &path,
            serde_json::json!({"version": 1, "edges": [bad]}).to_string(),
        )
        .unwrap();
        let err = Baseline::load(&path).unwrap_err().to_string();
        assert!(err.contains(&format!("edge {field} ")), "{err}");
        assert!(
            !err.chars().any(hallpass_telemetry::is_unsafe_char),
            "the error quotes the value escaped: {err:?}"
        );
    }
}

#[test]
fn terminal_escaping() {
    use hallpass_telemetry::{escape_for_terminal, json_for_terminal};
    assert_eq!(escape_for_terminal(EHR), EHR, "plain text is untouched");
    assert_eq!(
        escape_for_terminal("a\u{1b}]0;pwned\u{7}b\u{1b}[2J\u{9b}c\u{202e}d\\e\nf"),
        "a\\u{1b}]0;pwned\\u{7}b\\u{1b}[2J\\u{9b}c\\u{202e}d\\\\e\\u{a}f"
    );
    let value = serde_json::json!({"k": "x\u{1b}[2J\u{9b}\u{7f}\u{202e}y\n"});
    let json = serde_json::to_string_pretty(&value).unwrap();
    let safe = json_for_terminal(&json);
    assert!(
        !safe
            .chars()
            .any(|c| c != '\n' && hallpass_telemetry::is_unsafe_char(c)),
        "{safe}"
    );
    assert_eq!(safe.lines().count(), json.lines().count(), "layout kept");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&safe).unwrap(),
        value,
        "the JSON still means the same"
    );
}
