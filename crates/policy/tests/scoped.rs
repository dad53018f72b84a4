//! A policy compiled for one destination (`CompiledPolicy::from_yaml_for`,
//! what a sidecar with `workload.id` loads, issue 17) decides for that
//! destination exactly as the whole policy does, keeps no other
//! destination, labels callers as the whole policy does, gives the declared graph its telemetry used before,
//! and reports a problem of its own entry where the file has it.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use hallpass_policy::{CompiledPolicy, Method, PolicyError, Request};
use spiffe::SpiffeId;

const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";
const BILLING: &str = "spiffe://hospital.example/ns/billing/sa/billing";
const PHARMACY: &str = "spiffe://hospital.example/ns/pharmacy/sa/pharmacy";

fn mesh() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/policies/clinical-mesh.yaml"
    ))
    .unwrap()
}

fn id(text: &str) -> SpiffeId {
    SpiffeId::new(text).unwrap()
}

#[test]
fn decides_for_its_destination_as_the_whole_policy_does() {
    let text = mesh();
    let whole = CompiledPolicy::from_yaml(&text).unwrap();
    let lab = id(LAB);
    let scoped = CompiledPolicy::from_yaml_for(&text, Some(&lab)).unwrap();
    assert_eq!(scoped.destinations().collect::<Vec<_>>(), vec![&lab]);
    assert_eq!(
        scoped.destinations_dropped(),
        whole.destinations().count() - 1
    );
    assert_eq!(
        scoped.rule_count(),
        whole.workload(&lab).unwrap().rules.len()
    );
    let headers = HashMap::new();
    let callers = [
        "spiffe://hospital.example/ns/clinical/sa/ehr-api",
        PHARMACY,
        "spiffe://hospital.example/ns/legacy/sa/fax-gateway",
        "spiffe://imaging-vendor.example/uploader",
        "spiffe://partner.example/app",
        BILLING,
    ];
    let paths = [
        "/patients/p-1/results",
        "/patients/p-1/results/r-2",
        "/lab.v1.Results/GetResult",
        "/imaging/uploads",
        "/imaging/studies/s-1",
        "/charges",
        "/a/../b",
    ];
    let methods = [Method::Get, Method::Post, Method::Delete];
    for caller in callers {
        let source = id(caller);
        for path in paths {
            for method in methods {
                let req = Request {
                    source: &source,
                    method,
                    path,
                    headers: &headers,
                    has_jwt: false,
                    serial: None,
                    now_ms: 1_780_272_000_000,
                };
                let mut trace = hallpass_policy::NoTrace;
                assert_eq!(
                    scoped.evaluate_with(&lab, &req, &mut trace),
                    whole.evaluate_with(&lab, &req, &mut trace),
                    "{caller} {method:?} {path}"
                );
                assert_eq!(
                    scoped.explain(&lab, &req).to_string(),
                    whole.explain(&lab, &req).to_string(),
                    "explain: {caller} {method:?} {path}"
                );
            }
        }
        // Labels mean what they mean in the whole policy: an ID the rest
        // of the file names exactly (billing and pharmacy are destinations;
        // lab-results' rules name pharmacy by a pattern only) keeps its own.
        assert_eq!(
            &*scoped.source_label(&source),
            &*whole.source_label(&source),
            "{caller}"
        );
    }
    assert_eq!(&*scoped.destination_label(&lab), LAB);
    // The declared graph: the destination's edges, as telemetry had them.
    assert_eq!(
        scoped.declared_graph(None),
        whole.declared_graph(Some(&lab))
    );
    assert_eq!(
        scoped.declared_graph(Some(&lab)),
        whole.declared_graph(Some(&lab))
    );
}

#[test]
fn another_destinations_entry_is_read_as_yaml_only() {
    // A problem in billing's entry: the whole file is invalid (`policy
    // check` says so), but lab-results' sidecar loads its own entry.
    let text = mesh().replace(
        "methods: [POST]\n        paths: [\"/charges\"]",
        "methods: [FETCH]\n        paths: [\"/charges\"]",
    );
    assert!(CompiledPolicy::from_yaml(&text).is_err());
    let lab = id(LAB);
    let scoped = CompiledPolicy::from_yaml_for(&text, Some(&lab)).unwrap();
    assert_eq!(scoped.destinations().count(), 1);
    // Billing is still named (its entry's key), so it keeps its label.
    assert_eq!(&*scoped.source_label(&id(BILLING)), BILLING);
    // Billing's own sidecar refuses it, and says where.
    let Err(PolicyError::Invalid(problems)) =
        CompiledPolicy::from_yaml_for(&text, Some(&id(BILLING)))
    else {
        panic!("billing's entry is invalid");
    };
    let whole = match CompiledPolicy::from_yaml(&text) {
        Err(PolicyError::Invalid(p)) => p,
        other => panic!("{other:?}"),
    };
    assert_eq!(problems, whole, "located in the file as written");
    assert!(
        problems.iter().any(|p| p.location.is_some()),
        "{problems:?}"
    );
}

#[test]
fn a_file_it_cannot_cut_is_read_whole() {
    // An anchor shared across destinations: the cut would break the alias,
    // so the whole text is read, and the result is the same.
    let text = "version: 1\ntrust_domains: [hospital.example]\nworkloads:\n  spiffe://hospital.example/ns/billing/sa/billing:\n    allow: &rules\n      - name: ehr\n        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]\n  spiffe://hospital.example/ns/clinical/sa/lab-results:\n    allow: *rules\n";
    let lab = id(LAB);
    let scoped = CompiledPolicy::from_yaml_for(text, Some(&lab)).unwrap();
    assert_eq!(scoped.destinations().collect::<Vec<_>>(), vec![&lab]);
    assert_eq!(scoped.rule_count(), 1);
    assert_eq!(scoped.destinations_dropped(), 1);
    // A destination the file has no entry for: nothing kept, every call denied.
    let absent = id("spiffe://hospital.example/ns/x/sa/y");
    let none = CompiledPolicy::from_yaml_for(&mesh(), Some(&absent)).unwrap();
    assert_eq!(none.destinations().count(), 0);
    assert_eq!(none.rule_count(), 0);
}

/// Issue 14 item 1: a sidecar compiles only its own destination, yet a
/// mistyped `workload.id` is still told apart from a defined one and gets
/// the "did you mean" of the whole file, whether the file was cut or read
/// whole.
#[test]
fn a_mistyped_workload_id_is_found_with_its_closest_destination() {
    let typo = id("spiffe://hospital.example/ns/clinical/sa/lab-result");
    let cut = mesh();
    // An anchor makes the file unsafe to cut: it is read whole.
    let whole_read = "version: 1\ntrust_domains: [hospital.example]\nworkloads:\n  spiffe://hospital.example/ns/billing/sa/billing:\n    allow: &rules\n      - name: ehr\n        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]\n  spiffe://hospital.example/ns/clinical/sa/lab-results:\n    allow: *rules\n";
    for text in [cut.as_str(), whole_read] {
        let whole = CompiledPolicy::from_yaml(text).unwrap();
        let scoped = CompiledPolicy::from_yaml_for(text, Some(&typo)).unwrap();
        assert_eq!(scoped.destinations().count(), 0);
        for policy in [&whole, &scoped] {
            let undefined = policy.undefined_destination(&typo).unwrap();
            assert_eq!(undefined.did_you_mean, Some(id(LAB)));
            assert_eq!(
                undefined.to_string(),
                format!(
                    "{typo} is not a destination in the policy, so every call to it is denied; did you mean {LAB}?"
                )
            );
            // Defined destinations, kept or not, are not reported.
            assert!(policy.defines(&id(LAB)));
            assert_eq!(policy.undefined_destination(&id(BILLING)), None);
        }
        // Scoped to a real destination, the others still count as defined.
        let lab = CompiledPolicy::from_yaml_for(text, Some(&id(LAB))).unwrap();
        assert_eq!(lab.undefined_destination(&id(LAB)), None);
        assert_eq!(lab.undefined_destination(&id(BILLING)), None);
        assert_eq!(lab.closest_destination(&typo), Some(id(LAB)));
    }
    // Nothing close: no guess, but still undefined.
    let far = id("spiffe://hospital.example/ns/x/sa/y");
    let scoped = CompiledPolicy::from_yaml_for(&cut, Some(&far)).unwrap();
    let undefined = scoped.undefined_destination(&far).unwrap();
    assert_eq!(undefined.did_you_mean, None);
    assert!(!undefined.to_string().contains("did you mean"));
}
