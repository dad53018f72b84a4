//! Write a generated audit log to stdout, for measuring
//! `hallpass policy replay` (docs/performance.md, "Policy replay"):
//!
//! ```text
//! hallpass-gen-audit-log RECORDS [--raw-paths]
//! ```
//!
//! Records as the sidecar writes them (`crates/telemetry/src/audit.rs`),
//! for the shipped clinical mesh (`examples/policies/clinical-mesh.yaml`):
//! allowed reads and gRPC lookups, charges and prescriptions, and the
//! denies of callers no rule names, over one day from 2026-09-01, in a
//! fixed pseudo-random mix (the same file every run).
//! `hallpass-gen-audit-log 1000000` is the benchmark's one-million-record day.
//! `--raw-paths` adds each call's path (as with `telemetry.log_raw_paths`),
//! a different patient on nearly every record: the replay's worst case,
//! where no two records share a cached decision.

use std::io::{BufWriter, Write as _};

use anyhow::{Context, bail};

const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";
const BILLING_DEST: &str = "spiffe://hospital.example/ns/billing/sa/billing";
const PHARMACY_DEST: &str = "spiffe://hospital.example/ns/pharmacy/sa/pharmacy";
const EHR: &str = "spiffe://hospital.example/ns/clinical/sa/ehr-api";
const PHARMACY: &str = "spiffe://hospital.example/ns/pharmacy/sa/pharmacy";
const BILLING: &str = "spiffe://hospital.example/ns/billing/sa/billing";

/// (weight, decision, reason, mode, source, destination, method, route, rule)
type Kind = (
    u32,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const KINDS: [Kind; 7] = [
    (
        50,
        "allow",
        "ok",
        "enforce",
        EHR,
        LAB,
        "GET",
        "/patients/{patient}/results",
        "ehr-reads-results",
    ),
    (
        20,
        "allow",
        "ok",
        "enforce",
        EHR,
        LAB,
        "GET",
        "/patients/{patient}/results/{result}",
        "ehr-reads-results",
    ),
    (
        15,
        "allow",
        "ok",
        "enforce",
        PHARMACY,
        LAB,
        "POST",
        "lab.v1.Results/GetResult",
        "pharmacy-lookup",
    ),
    (
        8,
        "allow",
        "ok",
        "enforce",
        EHR,
        BILLING_DEST,
        "POST",
        "/charges",
        "ehr-posts-charges",
    ),
    (
        4,
        "allow",
        "ok",
        "audit",
        EHR,
        PHARMACY_DEST,
        "POST",
        "/prescriptions",
        "ehr-sends-prescriptions",
    ),
    (
        2,
        "deny",
        "no_matching_rule",
        "enforce",
        BILLING,
        LAB,
        "GET",
        "",
        "",
    ),
    (
        1,
        "deny",
        "no_matching_rule",
        "enforce",
        EHR,
        LAB,
        "DELETE",
        "",
        "",
    ),
];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (records, raw_paths): (u64, bool) = match args.as_slice() {
        [n] => (
            n.parse().with_context(|| format!("not a number: {n}"))?,
            false,
        ),
        [n, flag] if flag == "--raw-paths" => (
            n.parse().with_context(|| format!("not a number: {n}"))?,
            true,
        ),
        _ => bail!("usage: hallpass-gen-audit-log RECORDS [--raw-paths]"),
    };
    let total: u32 = KINDS.iter().map(|k| k.0).sum();
    // 2026-09-01T00:00:00Z; one day spread over the records.
    let start_ms: i64 = 1_788_220_800_000;
    let step_ms = 86_400_000 / i64::try_from(records.max(1))?;
    let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..records {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let mut pick = u32::try_from(seed >> 33)? % total;
        let kind = KINDS
            .iter()
            .find(|k| {
                if pick < k.0 {
                    true
                } else {
                    pick -= k.0;
                    false
                }
            })
            .context("weights")?;
        let (_, decision, reason, mode, source, destination, method, route, rule) = *kind;
        let ms = start_ms + i64::try_from(i)? * step_ms;
        let secs = ms.div_euclid(1000);
        let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
        let path = if !raw_paths {
            String::new()
        } else if route.is_empty() {
            format!(",\"path\":\"/patients/{i}/results\"")
        } else if route.starts_with('/') {
            let concrete = route
                .replace("{patient}", &i.to_string())
                .replace("{result}", &(i % 7).to_string());
            format!(",\"path\":\"{concrete}\"")
        } else {
            format!(",\"path\":\"/{route}\"")
        };
        writeln!(
            out,
            "{{\"time\":\"2026-09-01T{h:02}:{m:02}:{s:02}.{:03}Z\",\"decision_id\":\"19a3c1f2e4b0a1f3c-{i:x}\",\
             \"decision\":\"{decision}\",\"reason\":\"{reason}\",\"mode\":\"{mode}\",\"source\":\"{source}\",\
             \"destination\":\"{destination}\",\"method\":\"{method}\",\"route\":\"{route}\",\"rule\":\"{rule}\",\
             \"credentials\":[\"x509\"],\"request_id\":\"5f0c2a7e-1b7d-4c1e-9d3a-8f2b6c4d1e00\",\
             \"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"{path}}}",
            ms.rem_euclid(1000),
        )?;
    }
    out.flush()?;
    Ok(())
}
