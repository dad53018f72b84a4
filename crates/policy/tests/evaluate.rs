//! Decision tables for `CompiledPolicy::evaluate`: one compiled policy (the
//! shape of design §5), and one row per behaviour a bug could break.

use std::collections::HashMap;

use hallpass_policy::{CompiledPolicy, Decision, DenyReason, Method, Mode, Request};
use spiffe::SpiffeId;

const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";
const SANDBOX: &str = "spiffe://hospital.example/ns/audit/sa/sandbox";

const EHR: &str = "spiffe://hospital.example/ns/clinical/sa/ehr-api";
const PHARMACY: &str = "spiffe://hospital.example/ns/pharmacy/sa/pharmacy";
const BILLING: &str = "spiffe://hospital.example/ns/billing/sa/billing";
const REPORTER: &str = "spiffe://hospital.example/ns/ops/sa/reporter";
const PORTAL: &str = "spiffe://hospital.example/ns/tenants/sa/portal";
const VENDOR: &str = "spiffe://imaging-vendor.example/uploader";
const STUDY: &str = "spiffe://hospital.example/ns/research/sa/study";
const FAX: &str = "spiffe://hospital.example/ns/legacy/sa/fax-gateway";
const PARTNER: &str = "spiffe://partner.example/app";

// Times are Unix milliseconds, the precision grants are compared at.
/// 2026-06-01T00:00:00Z: inside every time-bound grant's window except `future-grant`.
const JUNE_2026: i64 = 1_780_272_000_000;
/// 2026-12-01T00:00:00Z: the vendor grant's `not_after`.
const VENDOR_END: i64 = 1_796_083_200_000;
/// 2030-01-01T00:00:00Z: the research grant's `not_before`.
const STUDY_START: i64 = 1_893_456_000_000;

const POLICY: &str = r#"
version: 1
trust_domains: [hospital.example, imaging-vendor.example]
revoked:
  ids: [spiffe://hospital.example/ns/legacy/sa/fax-gateway]
workloads:
  spiffe://hospital.example/ns/clinical/sa/lab-results:
    mode: enforce
    allow:
      - name: ehr-reads-results
        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]
        methods: [GET]
        paths: ["/patients/{patient}/results", "/patients/{patient}/results/{result}"]
      - name: pharmacy-lookup
        from: ["spiffe://hospital.example/ns/pharmacy/**"]
        grpc: ["lab.v1.Results/GetResult"]
      - name: clinical-health
        from: ["spiffe://hospital.example/ns/clinical/*"]
        methods: [GET, HEAD]
        paths: ["/health"]
      - name: reports-any-method
        from: [spiffe://hospital.example/ns/ops/sa/reporter]
        paths: ["/reports/**"]
      - name: billing-service
        from: [spiffe://hospital.example/ns/billing/sa/billing]
        grpc: ["lab.v1.Billing/*"]
      - name: tenant-north
        from: [spiffe://hospital.example/ns/tenants/sa/portal]
        methods: [GET]
        paths: ["/tenant/data"]
        headers: {X-Tenant: north}
      - name: imaging-vendor-upload
        from: [spiffe://imaging-vendor.example/uploader]
        methods: [POST]
        paths: ["/imaging/uploads"]
        require_jwt: true
        not_after: 2026-12-01T00:00:00Z
      - name: future-grant
        from: [spiffe://hospital.example/ns/research/sa/study]
        paths: ["/studies/**"]
        not_before: 2030-01-01T00:00:00Z
      - name: fax-anything
        from: [spiffe://hospital.example/ns/legacy/sa/fax-gateway]
      - name: partner-anything
        from: [spiffe://partner.example/app]
  spiffe://hospital.example/ns/audit/sa/sandbox:
    mode: audit
    allow:
      - name: clinical-reads-anything
        from: ["spiffe://hospital.example/ns/clinical/**"]
        methods: [GET]
        paths: ["/**"]
"#;

fn id(text: &str) -> SpiffeId {
    SpiffeId::new(text).unwrap()
}

fn policy() -> CompiledPolicy {
    CompiledPolicy::from_yaml(POLICY).unwrap()
}

/// One request to decide, with the defaults of a plain call in June 2026.
#[derive(Clone)]
struct Call {
    dest: &'static str,
    source: &'static str,
    method: &'static str,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    jwt: bool,
    now_ms: i64,
}

fn call(source: &'static str, method: &'static str, path: &'static str) -> Call {
    Call {
        dest: LAB,
        source,
        method,
        path,
        headers: &[],
        jwt: false,
        now_ms: JUNE_2026,
    }
}

impl Call {
    fn to(mut self, dest: &'static str) -> Self {
        self.dest = dest;
        self
    }
    fn headers(mut self, headers: &'static [(&'static str, &'static str)]) -> Self {
        self.headers = headers;
        self
    }
    fn jwt(mut self) -> Self {
        self.jwt = true;
        self
    }
    fn at(mut self, now_ms: i64) -> Self {
        self.now_ms = now_ms;
        self
    }

    fn decide(&self, policy: &CompiledPolicy) -> (Decision, Mode) {
        let source = id(self.source);
        let headers: HashMap<String, String> = self
            .headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let req = Request {
            source: &source,
            method: Method::parse(self.method),
            path: self.path,
            headers: &headers,
            has_jwt: self.jwt,
            serial: None,
            now_ms: self.now_ms,
        };
        policy.evaluate(&id(self.dest), &req)
    }
}

fn allow(rule: &str, route: &str) -> Decision {
    Decision::Allow {
        rule: rule.into(),
        route: route.into(),
    }
}

fn deny(reason: DenyReason) -> Decision {
    Decision::deny(reason)
}

fn check_table(rows: &[(&str, Call, Decision)]) {
    let policy = policy();
    let mut failures = Vec::new();
    for (what, call, want) in rows {
        let (got, _) = call.decide(&policy);
        if &got != want {
            failures.push(format!(
                "{what}: {} {} from {}: want {want:?}, got {got:?}",
                call.method, call.path, call.source
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn exact_sources_methods_and_templates() {
    use DenyReason::NoMatchingRule;
    check_table(&[
        (
            "template with one param",
            call(EHR, "GET", "/patients/p-123/results"),
            allow("ehr-reads-results", "/patients/{patient}/results"),
        ),
        (
            "second template of the same rule",
            call(EHR, "GET", "/patients/p-123/results/r9"),
            allow("ehr-reads-results", "/patients/{patient}/results/{result}"),
        ),
        (
            "method not listed",
            call(EHR, "POST", "/patients/p-123/results"),
            deny(NoMatchingRule),
        ),
        (
            "methods are exact, upper case",
            call(EHR, "get", "/patients/p-123/results"),
            deny(NoMatchingRule),
        ),
        (
            "one segment too many",
            call(EHR, "GET", "/patients/p-123/results/r9/raw"),
            deny(NoMatchingRule),
        ),
        (
            "param is not optional",
            call(EHR, "GET", "/patients/results"),
            deny(NoMatchingRule),
        ),
        (
            "literal segments are exact, case-sensitive",
            call(EHR, "GET", "/Patients/p-123/results"),
            deny(NoMatchingRule),
        ),
        (
            "literal is not a prefix",
            call(EHR, "GET", "/patients/p-123/resultsx"),
            deny(NoMatchingRule),
        ),
        (
            "query is stripped before matching",
            call(EHR, "GET", "/patients/p-123/results?fields=all&x=/../"),
            allow("ehr-reads-results", "/patients/{patient}/results"),
        ),
        (
            "fragment is stripped before matching",
            call(EHR, "GET", "/patients/p-123/results#top"),
            allow("ehr-reads-results", "/patients/{patient}/results"),
        ),
        (
            "percent-encoded literal decodes to the same segment",
            call(EHR, "GET", "/p%61tients/p-123/results"),
            allow("ehr-reads-results", "/patients/{patient}/results"),
        ),
        (
            "a param matches an encoded space",
            call(EHR, "GET", "/patients/a%20b/results"),
            allow("ehr-reads-results", "/patients/{patient}/results"),
        ),
        (
            "exact source only: a sibling workload is not the named one",
            call(LAB, "GET", "/patients/p-123/results"),
            deny(NoMatchingRule),
        ),
        (
            "exact source is not a prefix of longer IDs",
            call(
                "spiffe://hospital.example/ns/clinical/sa/ehr-api/v2",
                "GET",
                "/patients/p-123/results",
            ),
            deny(NoMatchingRule),
        ),
        (
            "no methods listed: any method",
            call(REPORTER, "DELETE", "/reports/2026/q1"),
            allow("reports-any-method", "/reports/**"),
        ),
        (
            "no methods listed: even one no rule can name",
            call(REPORTER, "PROPFIND", "/reports/2026/q1"),
            allow("reports-any-method", "/reports/**"),
        ),
        (
            "no methods listed: a lower-case method too",
            call(REPORTER, "get", "/reports/2026/q1"),
            allow("reports-any-method", "/reports/**"),
        ),
    ]);
}

#[test]
fn source_wildcards_are_segment_wise() {
    use DenyReason::NoMatchingRule;
    let clinical_x = "spiffe://hospital.example/ns/clinical/x";
    check_table(&[
        (
            "/* matches exactly one more segment",
            call(clinical_x, "GET", "/health"),
            allow("clinical-health", "/health"),
        ),
        (
            "/* allows HEAD too",
            call(clinical_x, "HEAD", "/health"),
            allow("clinical-health", "/health"),
        ),
        (
            "/* rule's methods still apply",
            call(clinical_x, "DELETE", "/health"),
            deny(NoMatchingRule),
        ),
        (
            "/* does not match two more segments",
            call(EHR, "GET", "/health"),
            deny(NoMatchingRule),
        ),
        (
            "/* does not match the prefix itself",
            call("spiffe://hospital.example/ns/clinical", "GET", "/health"),
            deny(NoMatchingRule),
        ),
        (
            "/* is not a substring match (clinicalx)",
            call("spiffe://hospital.example/ns/clinicalx/a", "GET", "/health"),
            deny(NoMatchingRule),
        ),
        (
            "/* in one trust domain never matches another",
            call(
                "spiffe://imaging-vendor.example/ns/clinical/x",
                "GET",
                "/health",
            ),
            deny(NoMatchingRule),
        ),
        (
            "/** matches one below",
            call(
                "spiffe://hospital.example/ns/pharmacy/p",
                "POST",
                "/lab.v1.Results/GetResult",
            ),
            allow("pharmacy-lookup", "lab.v1.Results/GetResult"),
        ),
        (
            "/** matches any depth below",
            call(
                "spiffe://hospital.example/ns/pharmacy/sa/a/b/c",
                "POST",
                "/lab.v1.Results/GetResult",
            ),
            allow("pharmacy-lookup", "lab.v1.Results/GetResult"),
        ),
        (
            "/** does not match the prefix itself",
            call(
                "spiffe://hospital.example/ns/pharmacy",
                "POST",
                "/lab.v1.Results/GetResult",
            ),
            deny(NoMatchingRule),
        ),
        (
            "/** is not a substring match (pharmacyx)",
            call(
                "spiffe://hospital.example/ns/pharmacyx/sa/a",
                "POST",
                "/lab.v1.Results/GetResult",
            ),
            deny(NoMatchingRule),
        ),
    ]);
}

#[test]
fn paths_with_trailing_any_depth() {
    use DenyReason::NoMatchingRule;
    check_table(&[
        (
            "one segment below",
            call(REPORTER, "GET", "/reports/x"),
            allow("reports-any-method", "/reports/**"),
        ),
        (
            "many segments below",
            call(REPORTER, "PUT", "/reports/a/b/c/d"),
            allow("reports-any-method", "/reports/**"),
        ),
        (
            "/** needs at least one segment",
            call(REPORTER, "GET", "/reports"),
            deny(NoMatchingRule),
        ),
        (
            "/** is segment-wise, not a prefix",
            call(REPORTER, "GET", "/reportsx/a"),
            deny(NoMatchingRule),
        ),
    ]);
}

#[test]
fn grpc_patterns_are_post_only() {
    use DenyReason::NoMatchingRule;
    check_table(&[
        (
            "Service/Method",
            call(PHARMACY, "POST", "/lab.v1.Results/GetResult"),
            allow("pharmacy-lookup", "lab.v1.Results/GetResult"),
        ),
        (
            "gRPC is POST only",
            call(PHARMACY, "GET", "/lab.v1.Results/GetResult"),
            deny(NoMatchingRule),
        ),
        (
            "other method of the service",
            call(PHARMACY, "POST", "/lab.v1.Results/ListResults"),
            deny(NoMatchingRule),
        ),
        (
            "method name is exact",
            call(PHARMACY, "POST", "/lab.v1.Results/GetResults"),
            deny(NoMatchingRule),
        ),
        (
            "extra segment",
            call(PHARMACY, "POST", "/lab.v1.Results/GetResult/x"),
            deny(NoMatchingRule),
        ),
        (
            "package must match",
            call(PHARMACY, "POST", "/lab.v2.Results/GetResult"),
            deny(NoMatchingRule),
        ),
        (
            "Service/* allows every method",
            call(BILLING, "POST", "/lab.v1.Billing/Charge"),
            allow("billing-service", "lab.v1.Billing/*"),
        ),
        (
            "Service/* needs a method",
            call(BILLING, "POST", "/lab.v1.Billing"),
            deny(NoMatchingRule),
        ),
        (
            "Service/* is not a service prefix",
            call(BILLING, "POST", "/lab.v1.BillingAdmin/Charge"),
            deny(NoMatchingRule),
        ),
        (
            "Service/* is one method segment",
            call(BILLING, "POST", "/lab.v1.Billing/Charge/x"),
            deny(NoMatchingRule),
        ),
        (
            "Service/* still POST only",
            call(BILLING, "PUT", "/lab.v1.Billing/Charge"),
            deny(NoMatchingRule),
        ),
    ]);
}

#[test]
fn required_headers_match_exact_values() {
    use DenyReason::NoMatchingRule;
    check_table(&[
        (
            "header present with the value (rule wrote X-Tenant)",
            call(PORTAL, "GET", "/tenant/data").headers(&[("x-tenant", "north")]),
            allow("tenant-north", "/tenant/data"),
        ),
        (
            "header missing",
            call(PORTAL, "GET", "/tenant/data"),
            deny(NoMatchingRule),
        ),
        (
            "other value",
            call(PORTAL, "GET", "/tenant/data").headers(&[("x-tenant", "south")]),
            deny(NoMatchingRule),
        ),
        (
            "values are exact, case-sensitive",
            call(PORTAL, "GET", "/tenant/data").headers(&[("x-tenant", "North")]),
            deny(NoMatchingRule),
        ),
        (
            "value is not a prefix",
            call(PORTAL, "GET", "/tenant/data").headers(&[("x-tenant", "northwest")]),
            deny(NoMatchingRule),
        ),
    ]);
}

#[test]
fn time_windows_and_jwt() {
    use DenyReason::{GrantExpired, NoMatchingRule};
    check_table(&[
        (
            "time-bound grant inside its window, with JWT",
            call(VENDOR, "POST", "/imaging/uploads").jwt(),
            allow("imaging-vendor-upload", "/imaging/uploads"),
        ),
        (
            "not_after is inclusive",
            call(VENDOR, "POST", "/imaging/uploads")
                .jwt()
                .at(VENDOR_END),
            allow("imaging-vendor-upload", "/imaging/uploads"),
        ),
        (
            "the last millisecond of not_after's second is past it: grant_expired",
            call(VENDOR, "POST", "/imaging/uploads")
                .jwt()
                .at(VENDOR_END + 999),
            deny(GrantExpired),
        ),
        (
            "one millisecond after not_after: grant_expired",
            call(VENDOR, "POST", "/imaging/uploads")
                .jwt()
                .at(VENDOR_END + 1),
            deny(GrantExpired),
        ),
        (
            "one millisecond before not_after: allowed",
            call(VENDOR, "POST", "/imaging/uploads")
                .jwt()
                .at(VENDOR_END - 1),
            allow("imaging-vendor-upload", "/imaging/uploads"),
        ),
        (
            "require_jwt never matches without a JWT",
            call(VENDOR, "POST", "/imaging/uploads"),
            deny(NoMatchingRule),
        ),
        (
            "expired grant without JWT is no match, not grant_expired",
            call(VENDOR, "POST", "/imaging/uploads").at(VENDOR_END + 1),
            deny(NoMatchingRule),
        ),
        (
            "expired grant, wrong path: no match, not grant_expired",
            call(VENDOR, "POST", "/imaging/other")
                .jwt()
                .at(VENDOR_END + 1),
            deny(NoMatchingRule),
        ),
        (
            "before not_before: grant_expired",
            call(STUDY, "GET", "/studies/s1"),
            deny(GrantExpired),
        ),
        (
            "one millisecond before not_before",
            call(STUDY, "GET", "/studies/s1").at(STUDY_START - 1),
            deny(GrantExpired),
        ),
        (
            "one millisecond after not_before",
            call(STUDY, "GET", "/studies/s1").at(STUDY_START + 1),
            allow("future-grant", "/studies/**"),
        ),
        (
            "not_before is inclusive",
            call(STUDY, "GET", "/studies/s1").at(STUDY_START),
            allow("future-grant", "/studies/**"),
        ),
        (
            "not-yet grant, wrong path: no match",
            call(STUDY, "GET", "/other").at(STUDY_START - 1),
            deny(NoMatchingRule),
        ),
    ]);
}

/// Bounds finer than a millisecond are rounded the strict way: `not_before`
/// up, `not_after` down, so a window never opens early or closes late.
#[test]
fn sub_millisecond_bounds_round_towards_a_narrower_window() {
    let policy = CompiledPolicy::from_yaml(&format!(
        "version: 1\ntrust_domains: [hospital.example]\nworkloads:\n  {LAB}:\n    allow:\n\
         \x20     - name: fine\n        from: [{EHR}]\n\
         \x20       not_before: 2030-01-01T00:00:00.0005Z\n\
         \x20       not_after: 2030-01-01T00:00:01.9999Z\n"
    ))
    .unwrap();
    let at = |ms: i64| {
        call(EHR, "GET", "/x")
            .at(STUDY_START + ms)
            .decide(&policy)
            .0
    };
    assert_eq!(at(0), deny(DenyReason::GrantExpired), "0.0005 s rounds up");
    assert_eq!(at(1), allow("fine", "*"));
    assert_eq!(at(1999), allow("fine", "*"), "1.9999 s rounds down");
    assert_eq!(at(2000), deny(DenyReason::GrantExpired));
}

#[test]
fn revocation_trust_domains_and_destinations() {
    use DenyReason::{NoMatchingRule, Revoked, UntrustedTrustDomain};
    check_table(&[
        (
            "revoked wins over a rule that allows everything",
            call(FAX, "GET", "/anything"),
            deny(Revoked),
        ),
        (
            "revoked even on a destination with no rule for it",
            call(FAX, "GET", "/x").to(SANDBOX),
            deny(Revoked),
        ),
        (
            "an unlisted trust domain is never accepted, even when named",
            call(PARTNER, "GET", "/anything"),
            deny(UntrustedTrustDomain),
        ),
        (
            "a listed trust domain without a rule",
            call("spiffe://imaging-vendor.example/viewer", "GET", "/x"),
            deny(NoMatchingRule),
        ),
        (
            "unknown destination: no_matching_rule",
            call(EHR, "GET", "/patients/p-123/results")
                .to("spiffe://hospital.example/ns/clinical/sa/unknown"),
            deny(NoMatchingRule),
        ),
        (
            "rules of one destination do not leak to another",
            call(EHR, "GET", "/patients/p-123/results").to(SANDBOX),
            allow("clinical-reads-anything", "/**"),
        ),
        (
            "... and the other's rules still apply to it",
            call(EHR, "POST", "/patients/p-123/results").to(SANDBOX),
            deny(NoMatchingRule),
        ),
    ]);
}

#[test]
fn ambiguous_paths_never_match() {
    // REPORTER may call `/reports/**` with any method, and FAX is revoked, so
    // the only thing wrong with these calls is the path.
    let paths = [
        "/reports/a/../b",
        "/reports/../reports/a",
        "/reports/./a",
        "/reports/a/.",
        "/reports//a",
        "/reports/a/",
        "//reports/a",
        "/reports/%2e%2e/a",
        "/reports/%2E%2e/a",
        "/reports/%2e/a",
        "/reports/a%2Fb",
        "/reports/a%2fb",
        "/reports/a%5cb",
        "/reports/a%5Cb",
        "/reports/a\\b",
        "/reports/%zz",
        "/reports/a%2",
        "/reports/a%",
        "/reports/%ff",
        "/reports/%c0%ae%c0%ae",
        "/reports/..;/admin",
        "reports/a",
        "",
        "*",
    ];
    let policy = policy();
    for path in paths {
        let (got, _) = call(REPORTER, "GET", path).decide(&policy);
        assert_eq!(
            got,
            deny(DenyReason::AmbiguousPath),
            "{path:?} must be ambiguous"
        );
    }
    // Sanity: the same caller is allowed on the plain path.
    assert!(
        call(REPORTER, "GET", "/reports/a/b")
            .decide(&policy)
            .0
            .is_allow()
    );
}

#[test]
fn trust_and_revocation_are_checked_before_the_path() {
    let policy = policy();
    assert_eq!(
        call(PARTNER, "GET", "/a/../b").decide(&policy).0,
        deny(DenyReason::UntrustedTrustDomain)
    );
    assert_eq!(
        call(FAX, "GET", "/a/../b").decide(&policy).0,
        deny(DenyReason::Revoked)
    );
}

#[test]
fn mode_of_the_destination_is_returned() {
    let policy = policy();
    let (decision, mode) = call(PHARMACY, "GET", "/x").to(SANDBOX).decide(&policy);
    assert_eq!(decision, deny(DenyReason::NoMatchingRule));
    assert_eq!(mode, Mode::Audit, "audit denies must be reported as audit");

    let (decision, mode) = call(EHR, "GET", "/x").to(SANDBOX).decide(&policy);
    assert!(decision.is_allow());
    assert_eq!(mode, Mode::Audit);

    let (_, mode) = call(EHR, "POST", "/x").decide(&policy);
    assert_eq!(mode, Mode::Enforce);

    let (_, mode) = call(EHR, "GET", "/x")
        .to("spiffe://hospital.example/unknown")
        .decide(&policy);
    assert_eq!(mode, Mode::Enforce, "an unknown destination is enforced");
}

#[test]
fn first_matching_rule_in_file_order_wins() {
    let policy = CompiledPolicy::from_yaml(
        r#"
version: 1
trust_domains: [hospital.example]
workloads:
  spiffe://hospital.example/api:
    allow:
      - name: wildcard-first
        from: ["spiffe://hospital.example/ns/**"]
        paths: ["/items/{id}"]
      - name: exact-second
        from: [spiffe://hospital.example/ns/a]
        paths: ["/items/{id}"]
      - name: expired-third
        from: [spiffe://hospital.example/ns/b]
        paths: ["/old"]
        not_after: 2020-01-01T00:00:00Z
      - name: current-fourth
        from: ["spiffe://hospital.example/ns/*"]
        paths: ["/old"]
"#,
    )
    .unwrap();
    let dest = "spiffe://hospital.example/api";
    let (d, _) = call("spiffe://hospital.example/ns/a", "GET", "/items/1")
        .to(dest)
        .decide(&policy);
    assert_eq!(d, allow("wildcard-first", "/items/{id}"));
    // An expired rule that matches does not hide a later current one.
    let (d, _) = call("spiffe://hospital.example/ns/b", "GET", "/old")
        .to(dest)
        .decide(&policy);
    assert_eq!(d, allow("current-fourth", "/old"));
}

#[test]
fn empty_allow_list_allows_nothing() {
    let policy = CompiledPolicy::from_yaml(
        "version: 1\ntrust_domains: [hospital.example]\nworkloads:\n  spiffe://hospital.example/api:\n    allow: []\n",
    )
    .unwrap();
    let (d, mode) = call(EHR, "GET", "/")
        .to("spiffe://hospital.example/api")
        .decide(&policy);
    assert_eq!(d, deny(DenyReason::NoMatchingRule));
    assert_eq!(mode, Mode::Enforce);
}

#[test]
fn root_template_matches_only_root() {
    let policy = CompiledPolicy::from_yaml(
        r#"
version: 1
trust_domains: [hospital.example]
workloads:
  spiffe://hospital.example/api:
    allow:
      - name: root
        from: [spiffe://hospital.example/ns/a]
        paths: ["/"]
"#,
    )
    .unwrap();
    let dest = "spiffe://hospital.example/api";
    let a = "spiffe://hospital.example/ns/a";
    assert_eq!(
        call(a, "GET", "/?q=1").to(dest).decide(&policy).0,
        allow("root", "/")
    );
    assert_eq!(
        call(a, "GET", "/x").to(dest).decide(&policy).0,
        deny(DenyReason::NoMatchingRule)
    );
}

#[test]
fn rule_without_paths_or_grpc_allows_any_path_under_route_star() {
    let policy = CompiledPolicy::from_yaml(
        r#"
version: 1
trust_domains: [hospital.example]
workloads:
  spiffe://hospital.example/api:
    allow:
      - name: reads-anything
        from: [spiffe://hospital.example/ns/a]
        methods: [GET]
"#,
    )
    .unwrap();
    let dest = "spiffe://hospital.example/api";
    let a = "spiffe://hospital.example/ns/a";
    // The route label is `*`, never the raw path (which may carry patient IDs).
    assert_eq!(
        call(a, "GET", "/patients/p-123").to(dest).decide(&policy).0,
        allow("reads-anything", "*")
    );
    assert_eq!(
        call(a, "POST", "/patients/p-123")
            .to(dest)
            .decide(&policy)
            .0,
        deny(DenyReason::NoMatchingRule)
    );
    // Any path still means any *unambiguous* path.
    assert_eq!(
        call(a, "GET", "/patients/../admin")
            .to(dest)
            .decide(&policy)
            .0,
        deny(DenyReason::AmbiguousPath)
    );
}

#[test]
fn jwt_replay_deny_needs_a_jwt_and_marks_the_allow_single_use() {
    let policy = CompiledPolicy::from_yaml(&format!(
        "version: 1\ntrust_domains: [hospital.example]\nworkloads:\n  {LAB}:\n    allow:\n\
         \x20     - name: orders\n        from: [{EHR}]\n        methods: [POST]\n        paths: [\"/orders\"]\n        jwt_replay: deny\n\
         \x20     - name: reads\n        from: [{EHR}]\n        methods: [GET]\n        paths: [\"/orders\"]\n"
    ))
    .unwrap();
    let source = id(EHR);
    let headers = HashMap::new();
    let evaluate = |method: Method, has_jwt: bool| {
        let req = Request {
            source: &source,
            method,
            path: "/orders",
            headers: &headers,
            has_jwt,
            serial: None,
            now_ms: JUNE_2026,
        };
        policy.evaluate_with(&id(LAB), &req, &mut hallpass_policy::NoTrace)
    };
    let write = evaluate(Method::Post, true);
    assert_eq!(write.decision, allow("orders", "/orders"));
    assert!(write.single_use_jwt);
    // jwt_replay: deny implies require_jwt.
    let bare = evaluate(Method::Post, false);
    assert_eq!(bare.decision, deny(DenyReason::NoMatchingRule));
    assert!(!bare.single_use_jwt);
    // Another rule's allow is not single-use.
    let read = evaluate(Method::Get, true);
    assert_eq!(read.decision, allow("reads", "/orders"));
    assert!(!read.single_use_jwt);
    // `jwt_replay` takes only `allow` or `deny`.
    let bad = CompiledPolicy::from_yaml(&format!(
        "version: 1\nworkloads:\n  {LAB}:\n    allow:\n      - name: r\n        from: [{EHR}]\n        jwt_replay: sometimes\n"
    ));
    assert!(bad.is_err());
}
