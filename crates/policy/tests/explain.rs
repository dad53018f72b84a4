//! `policy explain`: the trace names each check and each rule, and says why.

use std::collections::HashMap;

use hallpass_policy::{CompiledPolicy, Decision, DenyReason, Method, Request};
use spiffe::SpiffeId;

const POLICY: &str = r#"
version: 1
trust_domains: [hospital.example, imaging-vendor.example]
revoked:
  ids: [spiffe://hospital.example/ns/legacy/sa/fax-gateway]
workloads:
  spiffe://hospital.example/ns/clinical/sa/lab-results:
    allow:
      - name: ehr-reads-results
        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]
        methods: [GET]
        paths: ["/patients/{patient}/results"]
      - name: pharmacy-lookup
        from: ["spiffe://hospital.example/ns/pharmacy/**"]
        grpc: ["lab.v1.Results/GetResult"]
      - name: imaging-vendor-pilot
        from: [spiffe://imaging-vendor.example/uploader]
        methods: [GET]
        paths: ["/imaging/studies/{study}"]
        not_after: 2026-06-30T00:00:00Z
      - name: tenant
        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]
        paths: ["/patients/**"]
        headers: {x-tenant: north}
        require_jwt: true
  spiffe://hospital.example/ns/pharmacy/sa/pharmacy:
    mode: audit
    allow: []
"#;

const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";
const EHR: &str = "spiffe://hospital.example/ns/clinical/sa/ehr-api";
/// 2026-09-01T00:00:00Z.
const SEPT: i64 = 1_788_220_800;

fn explain(
    source: &str,
    dest: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (Decision, String) {
    let policy = CompiledPolicy::from_yaml(POLICY).unwrap();
    let source = SpiffeId::new(source).unwrap();
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let req = Request {
        source: &source,
        method: Method::parse(method),
        path,
        headers: &headers,
        has_jwt: false,
        serial: None,
        now_ms: SEPT * 1000,
    };
    let dest = SpiffeId::new(dest).unwrap();
    let e = policy.explain(&dest, &req);
    assert_eq!(e.decision, policy.evaluate(&dest, &req).0);
    (e.decision.clone(), e.to_string())
}

#[test]
fn an_allow_names_the_rule_and_every_other_rule_says_why_not() {
    let (decision, text) = explain(
        EHR,
        LAB,
        "GET",
        "/patients/p-1/results?x=1",
        &[("x-tenant", "south")],
    );
    assert!(decision.is_allow());
    let want = [
        "decision: allow (rule ehr-reads-results, route /patients/{patient}/results)",
        "  [ok] trust domain hospital.example is listed in trust_domains",
        "  [ok] revocation   the ID is not revoked (no certificate serial given)",
        "  [ok] path         \"/patients/p-1/results?x=1\" normalises to /patients/p-1/results (3 segment(s); query stripped, escapes decoded)",
        "  #0 ehr-reads-results: MATCH: decides",
        "      [ok] source   matches spiffe://hospital.example/ns/clinical/sa/ehr-api",
        "      [ok] method   GET is in [GET]",
        "      [ok] route    matches /patients/{patient}/results",
        "  #1 pharmacy-lookup: no match",
        "      [no] source   not named by [spiffe://hospital.example/ns/pharmacy/**]",
        "      [no] method   gRPC patterns need POST",
        "      [no] route    nothing matches; tried [grpc lab.v1.Results/GetResult]",
        "  #2 imaging-vendor-pilot: no match",
        "      [no] time     expired: (open) .. 2026-06-30T00:00:00Z",
        "  #3 tenant: no match",
        "      [ok] route    matches /patients/**",
        "      [no] headers  x-tenant: want \"north\", got \"south\"",
        "      [no] jwt      required, not presented",
    ];
    for line in want {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}

#[test]
fn a_deny_shows_each_rule_failing() {
    let (decision, text) = explain(EHR, LAB, "DELETE", "/patients/p-1/results", &[]);
    assert_eq!(decision, Decision::deny(DenyReason::NoMatchingRule));
    assert!(
        text.starts_with("decision: deny (no_matching_rule)\n"),
        "{text}"
    );
    assert!(
        text.contains("      [no] method   DELETE is not in [GET]\n"),
        "{text}"
    );
    assert!(
        text.contains("      [no] route    nothing matches; tried [/patients/{patient}/results (the path matches, the method does not)]\n"),
        "{text}"
    );
}

#[test]
fn an_expired_grant_is_named() {
    let (decision, text) = explain(
        "spiffe://imaging-vendor.example/uploader",
        LAB,
        "GET",
        "/imaging/studies/s-1",
        &[],
    );
    assert_eq!(decision, Decision::deny(DenyReason::GrantExpired));
    assert!(
        text.contains("  #2 imaging-vendor-pilot: would match, but is outside its time window\n"),
        "{text}"
    );
}

#[test]
fn checks_before_the_rules_stop_the_trace() {
    let (decision, text) = explain(
        "spiffe://hospital.example/ns/legacy/sa/fax-gateway",
        LAB,
        "GET",
        "/",
        &[],
    );
    assert_eq!(decision, Decision::deny(DenyReason::Revoked));
    assert!(text.contains("  [no] revocation   spiffe://hospital.example/ns/legacy/sa/fax-gateway is in revoked.ids\n"), "{text}");
    assert!(
        text.ends_with("rules: not considered (the request was decided above)\n"),
        "{text}"
    );

    let (decision, text) = explain("spiffe://partner.example/app", LAB, "GET", "/", &[]);
    assert_eq!(decision, Decision::deny(DenyReason::UntrustedTrustDomain));
    assert!(
        text.contains("  [no] trust domain partner.example is not listed in trust_domains\n"),
        "{text}"
    );

    let (decision, text) = explain(EHR, LAB, "GET", "/patients/../admin", &[]);
    assert_eq!(decision, Decision::deny(DenyReason::AmbiguousPath));
    assert!(
        text.contains("  [no] path         \"/patients/../admin\" is ambiguous"),
        "{text}"
    );

    let (decision, text) = explain(EHR, "spiffe://hospital.example/nowhere", "GET", "/", &[]);
    assert_eq!(decision, Decision::deny(DenyReason::NoMatchingRule));
    assert!(
        text.contains("  [no] destination  spiffe://hospital.example/nowhere is not a destination in the policy, so every call to it is denied\n"),
        "{text}"
    );

    // A typo of a destination gets the sidecar's own "did you mean"
    // (`CompiledPolicy::undefined_destination`, issue 14 item 1).
    let (decision, text) = explain(EHR, &LAB.replace("results", "result"), "GET", "/", &[]);
    assert_eq!(decision, Decision::deny(DenyReason::NoMatchingRule));
    assert!(
        text.contains(&format!(
            "every call to it is denied; did you mean {LAB}?\n"
        )),
        "{text}"
    );
}

#[test]
fn audit_mode_is_shown_in_the_decision() {
    let (_, text) = explain(
        EHR,
        "spiffe://hospital.example/ns/pharmacy/sa/pharmacy",
        "GET",
        "/x",
        &[],
    );
    assert!(
        text.starts_with("decision: audit_deny (no_matching_rule): audit mode records the deny and lets the call through\n"),
        "{text}"
    );
    assert!(
        text.contains("rules: none (an empty allow list allows nothing)"),
        "{text}"
    );
}

/// An ambiguous path says which of the causes it is, not a list of them all
/// (issue 14, item 5), and a trailing `/` says what to call instead.
#[test]
fn an_ambiguous_path_names_its_one_cause() {
    let (decision, text) = explain(EHR, LAB, "GET", "/patients/1/results/", &[]);
    assert_eq!(decision, Decision::deny(DenyReason::AmbiguousPath));
    assert!(
        text.contains(
            "  [no] path         \"/patients/1/results/\" is ambiguous (trailing_slash): it ends with `/`"
        ),
        "{text}"
    );
    assert!(text.contains("without the trailing `/`"), "{text}");
    assert!(!text.contains("encoded"), "{text}");

    let (_, text) = explain(EHR, LAB, "GET", "/patients/1//results", &[]);
    assert!(text.contains("is ambiguous (empty_segment): "), "{text}");
    let (_, text) = explain(EHR, LAB, "GET", "/patients/%2e%2e/admin", &[]);
    assert!(text.contains("is ambiguous (dot_segment): "), "{text}");
}
