//! Break-glass grants through the gRPC API: where a grant lets a call
//! through, and every path where it must not (a revoked caller, an
//! ambiguous path, a method or path it does not name, another destination,
//! a grant past its expiry, a corrupt overlay that keeps the last good one).

use crate::common;

use std::time::Duration;

use common::*;
use hallpass_testkit::unix_now_ms;
use time::OffsetDateTime;

const REVOKED: &str = "spiffe://hospital.example/ns/legacy/sa/fax-gateway";

fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// A grant in the policy file's own `break_glass:` list.
fn grant(name: &str, from: &str, to: &str, methods: &str, opened: i64, expires: i64) -> String {
    format!(
        "  - name: {name}\n    from: [\"{from}\"]\n    to: {to}\n    methods: [{methods}]\n\
         \x20   paths: [\"/patients/{{patient}}/results\"]\n    reason: downtime\n    ticket: INC-1\n\
         \x20   opened_by: alice\n    opened: {o}\n    expires: {e}\n",
        o = rfc3339(opened),
        e = rfc3339(expires)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_allows_only_what_it_names_and_never_over_a_rejection() {
    let (dir, ca) = clinical_dir();
    let now = unix_now_ms();
    let hour = 3_600_000;
    let policy = format!(
        "version: 1\ntrust_domains: [hospital.example]\nrevoked:\n  ids: [{REVOKED}]\n\
         workloads:\n  {LAB}:\n    allow:\n\
         \x20     - name: ehr-reads-results\n        from: [{EHR}]\n        methods: [GET]\n        paths: [\"/patients/{{patient}}/results\"]\n\
         break_glass:\n{}{}{}",
        grant(
            "bg-billing",
            "spiffe://hospital.example/ns/**",
            LAB,
            "GET",
            now - 60_000,
            now + hour
        ),
        grant("bg-past", BILLING, LAB, "POST", now - 2 * hour, now - hour),
        grant(
            "bg-other",
            BILLING,
            PHARMACY_DEST,
            "PUT",
            now - 60_000,
            now + hour
        ),
    );
    std::fs::write(dir.path().join("policy.yaml"), policy).unwrap();
    let extra = format!("workload:\n  id: {LAB}\n");
    let mut running = Running::start_ready(config(dir.path(), &extra)).await;
    let billing = ca.issue(BILLING).unwrap();
    let revoked = ca.issue(REVOKED).unwrap();
    let results = "/patients/1/results";

    // The grant lets billing read, and names it to the application.
    let (status, source, _) = running.check_svid(&billing, "GET", results).await;
    assert_eq!((status, source.as_str()), (200, BILLING));
    // Never over a revocation, even though the grant's pattern covers it.
    let (status, reason, _) = running.check_svid(&revoked, "GET", results).await;
    assert_eq!((status, reason.as_str()), (401, "revoked"));
    // Never on an ambiguous path.
    let (status, reason, _) = running
        .check_svid(&billing, "GET", "/patients/1/../1/results")
        .await;
    assert_eq!((status, reason.as_str()), (403, "ambiguous_path"));
    // A method or a path the grant does not name.
    let (status, reason, _) = running.check_svid(&billing, "DELETE", results).await;
    assert_eq!((status, reason.as_str()), (403, "no_matching_rule"));
    let (status, reason, _) = running.check_svid(&billing, "GET", "/admin").await;
    assert_eq!((status, reason.as_str()), (403, "no_matching_rule"));
    // Expired (bg-past): inert.
    let (status, reason, _) = running.check_svid(&billing, "POST", results).await;
    assert_eq!((status, reason.as_str()), (403, "no_matching_rule"));
    // Another destination's grant (bg-other) is not this sidecar's.
    let (status, reason, _) = running.check_svid(&billing, "PUT", results).await;
    assert_eq!((status, reason.as_str()), (403, "no_matching_rule"));

    let (_, metrics) = running.get("/metrics").await;
    let line = |name: &str, labels: &[&str]| {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && labels.iter().all(|want| l.contains(want)))
            .map(str::to_owned)
    };
    let calls = line(
        "hallpass_break_glass_calls_total{",
        // Billing is named by no rule: its label is its trust domain's (the
        // audit record has the full ID).
        &[
            "grant=\"bg-billing\"",
            "source=\"other:hospital.example\"",
            &format!("destination=\"{LAB}\""),
        ],
    );
    assert!(calls.is_some_and(|l| l.ends_with(" 1")), "{metrics}");
    let decisions = line(
        "hallpass_decisions_total{",
        &["decision=\"allow\"", "reason=\"break_glass\""],
    );
    assert!(decisions.is_some_and(|l| l.ends_with(" 1")), "{metrics}");
    // Only this sidecar's grants in force are on the gauge.
    for _ in 0..50 {
        if running
            .get("/metrics")
            .await
            .1
            .contains("hallpass_break_glass_active{grant=\"bg-billing\"}")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, metrics) = running.get("/metrics").await;
    assert!(
        metrics.contains("hallpass_break_glass_active{grant=\"bg-billing\"}"),
        "{metrics}"
    );
    assert!(!metrics.contains("grant=\"bg-past\"}"), "{metrics}");
    assert!(
        !metrics.contains("hallpass_break_glass_active{grant=\"bg-other\"}"),
        "{metrics}"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_overlay_keeps_the_last_good_grants_and_a_missing_one_is_no_grants() {
    let (dir, ca) = clinical_dir();
    let overlay = dir.path().join("overlay.yaml");
    let extra = format!("workload:\n  id: {LAB}\n");
    let config_text = config(dir.path(), &extra).replace(
        "  reload_interval_seconds: 1\n",
        &format!(
            "  reload_interval_seconds: 1\n  break_glass_file: {}\n",
            overlay.display()
        ),
    );
    // No overlay file: ready, and no grants.
    let mut running = Running::start_ready(config_text).await;
    let billing = ca.issue(BILLING).unwrap();
    let results = "/patients/1/results";
    let (status, reason, _) = running.check_svid(&billing, "GET", results).await;
    assert_eq!((status, reason.as_str()), (403, "no_matching_rule"));

    let now = unix_now_ms();
    let good = format!(
        "version: 1\nbreak_glass:\n{}",
        grant(
            "bg-overlay",
            BILLING,
            LAB,
            "GET",
            now - 60_000,
            now + 3_600_000
        )
    );
    std::fs::write(&overlay, &good).unwrap();
    let mut allowed = false;
    for _ in 0..100 {
        if running.check_svid(&billing, "GET", results).await.0 == 200 {
            allowed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(allowed, "the overlay's grant never applied");

    // A corrupt overlay (a grant without its ticket) is refused and counted;
    // the last good grant stays in force.
    std::fs::write(&overlay, good.replace("    ticket: INC-1\n", "")).unwrap();
    let mut counted = false;
    for _ in 0..100 {
        let (_, metrics) = running.get("/metrics").await;
        if metrics.contains("hallpass_break_glass_overlay_reloads_total{result=\"failure\"} 1") {
            counted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(counted, "the corrupt overlay was not counted");
    let (status, _, _) = running.check_svid(&billing, "GET", results).await;
    assert_eq!(status, 200);
    running.stop().await;
}
