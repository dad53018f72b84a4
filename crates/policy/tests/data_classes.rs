//! Data classes (issue 15 §2): `data_classes`, a destination's and a rule's
//! `data_class`, checked with located errors; the evaluation carries the
//! call's class; `policy check --require-data-class`.

use std::collections::HashMap;

use hallpass_policy::check::{CheckOptions, Severity, check, check_with};
use hallpass_policy::{CompiledPolicy, DataClass, Decision, Method, PolicyError, Problem, Request};
use spiffe::SpiffeId;

const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";
const EHR: &str = "spiffe://hospital.example/ns/clinical/sa/ehr-api";
const BILLING: &str = "spiffe://hospital.example/ns/billing/sa/billing";
const AT: i64 = 1_780_272_000_000;

fn policy(top: &str, destination: &str, rule_class: &str) -> String {
    format!(
        "version: 1\ntrust_domains: [hospital.example]\n{top}workloads:\n  {LAB}:\n{destination}    allow:\n\
         \x20     - name: ehr-reads-results\n        from: [{EHR}]\n        methods: [GET]\n        paths: [\"/patients/{{p}}/results\"]\n\
         \x20     - name: ehr-reads-invoices\n        from: [{EHR}]\n        methods: [GET]\n        paths: [\"/invoices/{{id}}\"]\n{rule_class}"
    )
}

fn problems(yaml: &str) -> Vec<Problem> {
    match CompiledPolicy::from_yaml(yaml) {
        Err(PolicyError::Invalid(problems)) => problems,
        Err(other) => panic!("expected Invalid, got {other:?}"),
        Ok(_) => panic!("policy should not load:\n{yaml}"),
    }
}

fn class_of(policy: &CompiledPolicy, source: &str, path: &str) -> (Decision, DataClass) {
    let source = SpiffeId::new(source).unwrap();
    let headers = HashMap::new();
    let req = Request {
        source: &source,
        method: Method::Get,
        path,
        headers: &headers,
        has_jwt: false,
        serial: None,
        now_ms: AT,
    };
    let e = policy.evaluate_with(
        &SpiffeId::new(LAB).unwrap(),
        &req,
        &mut hallpass_policy::NoTrace,
    );
    (e.decision, e.data_class)
}

#[test]
fn an_allow_takes_its_rules_class_and_a_deny_the_destinations() {
    let yaml = policy("", "    data_class: phi\n", "        data_class: billing\n");
    let compiled = CompiledPolicy::from_yaml(&yaml).unwrap();
    let (d, class) = class_of(&compiled, EHR, "/patients/1/results");
    assert!(d.is_allow(), "{d:?}");
    assert_eq!(
        class,
        DataClass::Phi,
        "a rule without its own takes the destination's"
    );
    let (d, class) = class_of(&compiled, EHR, "/invoices/9");
    assert!(d.is_allow(), "{d:?}");
    assert_eq!(class, DataClass::Billing);
    // A caller no rule names: denied, on the destination's data.
    let (d, class) = class_of(&compiled, BILLING, "/patients/1/results");
    assert!(!d.is_allow());
    assert_eq!(class, DataClass::Phi);
    // An ambiguous path is still a call on the destination's data.
    let (_, class) = class_of(&compiled, EHR, "/patients/1/results/");
    assert_eq!(class, DataClass::Phi);
    // The compiled rules carry it, with whether it was their own.
    let lab = compiled.workload(&SpiffeId::new(LAB).unwrap()).unwrap();
    assert_eq!(lab.data_class, DataClass::Phi);
    let own: Vec<(DataClass, bool)> = lab
        .rules
        .iter()
        .map(|r| (r.data_class, r.own_data_class))
        .collect();
    assert_eq!(own, [(DataClass::Phi, false), (DataClass::Billing, true)]);
    // The declared graph (report, call graph page) carries the rule's class.
    let classes: Vec<DataClass> = compiled
        .declared_graph(None)
        .edges
        .iter()
        .map(|e| e.data_class)
        .collect();
    assert_eq!(classes, [DataClass::Phi, DataClass::Billing]);
}

#[test]
fn without_classes_every_call_is_none() {
    let compiled = CompiledPolicy::from_yaml(&policy("", "", "")).unwrap();
    assert_eq!(class_of(&compiled, EHR, "/invoices/9").1, DataClass::None);
    assert_eq!(
        class_of(&compiled, BILLING, "/invoices/9").1,
        DataClass::None
    );
    // A destination the policy has no entry for.
    let other = SpiffeId::new("spiffe://hospital.example/ns/x/sa/y").unwrap();
    let source = SpiffeId::new(EHR).unwrap();
    let headers = HashMap::new();
    let req = Request {
        source: &source,
        method: Method::Get,
        path: "/",
        headers: &headers,
        has_jwt: false,
        serial: None,
        now_ms: AT,
    };
    let e = compiled.evaluate_with(&other, &req, &mut hallpass_policy::NoTrace);
    assert_eq!(e.data_class, DataClass::None);
}

#[test]
fn an_unknown_class_is_a_located_error_with_a_did_you_mean() {
    let found = problems(&policy(
        "",
        "    data_class: phy\n",
        "        data_class: secret\n",
    ));
    let got: Vec<(&str, &str)> = found
        .iter()
        .map(|p| (p.path.as_str(), p.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                &*format!("workloads.\"{LAB}\".data_class"),
                "unknown data class `phy`; did you mean `phi`? (one of phi, billing, operational, public)"
            ),
            (
                &*format!("workloads.\"{LAB}\".allow[1].data_class"),
                "unknown data class `secret`; a class is one of phi, billing, operational, public"
            ),
        ],
        "{found:#?}"
    );
    // `none` is what leaving the key out means: it cannot be written.
    let found = problems(&policy("", "    data_class: none\n", ""));
    assert_eq!(found.len(), 1, "{found:#?}");
}

#[test]
fn data_classes_restricts_the_classes_a_policy_may_use() {
    let found = problems(&policy(
        "data_classes: [phi, billing]\n",
        "    data_class: operational\n",
        "        data_class: billing\n",
    ));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].path, format!("workloads.\"{LAB}\".data_class"));
    assert!(
        found[0]
            .message
            .contains("not in this policy's `data_classes`; it lists phi, billing"),
        "{found:#?}"
    );
    // The list itself: known words, each once.
    let found = problems(&policy("data_classes: [phi, phi, billnig]\n", "", ""));
    let got: Vec<(&str, &str)> = found
        .iter()
        .map(|p| (p.path.as_str(), p.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("data_classes[1]", "data class `phi` is listed twice"),
            (
                "data_classes[2]",
                "unknown data class `billnig`; did you mean `billing`? (one of phi, billing, operational, public)"
            ),
        ]
    );
    // A misspelt key is an unknown key, never silently "no class".
    let found = problems(&policy("", "    data_clas: phi\n", ""));
    assert!(
        found.iter().any(|p| p.message.contains("data_clas")),
        "{found:#?}"
    );
}

#[test]
fn require_data_class_fails_each_rule_without_one_at_its_place() {
    let yaml = policy("", "", "        data_class: billing\n");
    let plain = check(&yaml, AT / 1000);
    assert_eq!(plain.errors(), 0, "{plain:#?}");
    let required = check_with(
        &yaml,
        AT / 1000,
        CheckOptions {
            require_data_class: true,
        },
    );
    let missing: Vec<&Problem> = required
        .findings
        .iter()
        .filter(|f| f.code == "missing_data_class")
        .collect();
    assert_eq!(missing.len(), 1, "{required:#?}");
    assert_eq!(missing[0].severity, Severity::Error);
    assert_eq!(missing[0].path, format!("workloads.\"{LAB}\".allow[0]"));
    let at = missing[0].location.unwrap();
    assert_eq!(at.line, 6, "{at:?}");
    assert!(missing[0].message.contains("ehr-reads-results"));
    // The destination's class covers every rule.
    let covered = check_with(
        &policy("", "    data_class: phi\n", ""),
        AT / 1000,
        CheckOptions {
            require_data_class: true,
        },
    );
    assert_eq!(covered.errors(), 0, "{covered:#?}");
}
