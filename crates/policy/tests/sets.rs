//! A policy of several files (`policy.files`, issue 14 part 1): a platform
//! file with the mesh-wide sections and team files with their own
//! destinations. Combined, checked (every conflict names both files and
//! lines), and compiled whole or for one destination.

use std::collections::HashMap;

use hallpass_policy::check::check_files;
use hallpass_policy::{
    CompiledPolicy, Method, OwnerScope, PolicyError, PolicyFile, Request, SourcePattern,
    expand_source, read_policy_files,
};
use spiffe::SpiffeId;

const PLATFORM: &str = "\
version: 1
trust_domains: [hospital.example]
revoked:
  ids: [spiffe://hospital.example/ns/legacy/sa/fax-gateway]
";

const CLINICAL: &str = "\
version: 1
owner: [\"spiffe://hospital.example/ns/clinical/**\"]
workloads:
  spiffe://hospital.example/ns/clinical/sa/lab-results:
    allow:
      - name: ehr-reads-results
        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]
        methods: [GET]
        paths: [\"/patients/{patient}/results\"]
";

const PHARMACY: &str = "\
version: 1
workloads:
  spiffe://hospital.example/ns/pharmacy/sa/dispensing:
    allow:
      - name: ehr-dispenses
        from: [spiffe://hospital.example/ns/clinical/sa/ehr-api]
        methods: [POST]
        paths: [\"/dispense\"]
";

const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";
const DISPENSING: &str = "spiffe://hospital.example/ns/pharmacy/sa/dispensing";
const EHR: &str = "spiffe://hospital.example/ns/clinical/sa/ehr-api";

fn file(name: &str, text: &str) -> PolicyFile {
    PolicyFile {
        name: name.into(),
        text: text.into(),
        owner: None,
    }
}

fn owned(name: &str, text: &str, patterns: &[&str]) -> PolicyFile {
    PolicyFile {
        owner: Some(OwnerScope {
            patterns: patterns
                .iter()
                .map(|p| SourcePattern::parse(p).unwrap())
                .collect(),
            origin: "policy.files[2].owner in the config".into(),
        }),
        ..file(name, text)
    }
}

fn id(text: &str) -> SpiffeId {
    SpiffeId::new(text).unwrap()
}

fn allows(policy: &CompiledPolicy, source: &str, dest: &str, method: Method, path: &str) -> bool {
    let headers = HashMap::new();
    let source = id(source);
    let req = Request {
        source: &source,
        method,
        path,
        headers: &headers,
        has_jwt: false,
        serial: None,
        now_ms: 1_700_000_000_000,
    };
    policy.evaluate(&id(dest), &req).0.is_allow()
}

fn problems(result: Result<CompiledPolicy, PolicyError>) -> Vec<String> {
    match result {
        Err(PolicyError::Invalid(problems)) => problems.iter().map(ToString::to_string).collect(),
        Err(e) => panic!("not a policy problem: {e}"),
        Ok(_) => panic!("the set was accepted"),
    }
}

fn set() -> Vec<PolicyFile> {
    vec![
        file("platform.yaml", PLATFORM),
        file("clinical.yaml", CLINICAL),
        file("pharmacy.yaml", PHARMACY),
    ]
}

#[test]
fn two_team_files_and_a_platform_file_combine() {
    let policy = CompiledPolicy::from_files(&set()).unwrap();
    assert_eq!(policy.destinations().count(), 2);
    assert!(allows(
        &policy,
        EHR,
        LAB,
        Method::Get,
        "/patients/p1/results"
    ));
    assert!(allows(&policy, EHR, DISPENSING, Method::Post, "/dispense"));
    assert!(!allows(&policy, EHR, DISPENSING, Method::Get, "/dispense"));
    // The platform's revocation and trust domains apply to every team's rules.
    let fax = "spiffe://hospital.example/ns/legacy/sa/fax-gateway";
    assert!(policy.is_revoked_id(&id(fax)));
    assert!(policy.trusts(id(LAB).trust_domain()));

    // Compiled for one destination: its rules and the mesh-wide parts only.
    let lab = id(LAB);
    let scoped = CompiledPolicy::from_files_for(&set(), Some(&lab)).unwrap();
    assert_eq!(scoped.destinations().collect::<Vec<_>>(), vec![&lab]);
    assert_eq!(scoped.destinations_dropped(), 1);
    assert!(scoped.defines(&id(DISPENSING)));
    assert!(scoped.is_revoked_id(&id(fax)));
    assert!(allows(
        &scoped,
        EHR,
        LAB,
        Method::Get,
        "/patients/p1/results"
    ));

    let report = check_files(&set(), 1_700_000_000);
    assert_eq!(report.errors(), 0, "{}", report.to_text("set"));
}

#[test]
fn a_destination_in_two_files_names_both_files_and_lines() {
    let second = "version: 1\nworkloads:\n  spiffe://hospital.example/ns/pharmacy/sa/dispensing:\n    allow: []\n";
    let mut files = set();
    files.push(file("other.yaml", second));
    let found = problems(CompiledPolicy::from_files(&files));
    assert_eq!(found.len(), 1, "{found:?}");
    let p = &found[0];
    assert!(p.starts_with("other.yaml:3:3: "), "{p}");
    assert!(
        p.contains(&format!(
            "`{DISPENSING}` is also defined in pharmacy.yaml:3:3"
        )),
        "{p}"
    );

    // Also when the sidecar compiles for another destination: conflicts
    // across the whole set are still found.
    let found = problems(CompiledPolicy::from_files_for(&files, Some(&id(LAB))));
    assert!(
        found[0].contains("also defined in pharmacy.yaml:3:3"),
        "{found:?}"
    );
}

#[test]
fn a_team_file_setting_mesh_wide_sections_names_both() {
    let team = format!("{CLINICAL}revoked:\n  ids: [spiffe://hospital.example/ns/x/sa/y]\n");
    let files = vec![
        file("platform.yaml", PLATFORM),
        file("clinical.yaml", &team),
    ];
    let found = problems(CompiledPolicy::from_files(&files));
    assert_eq!(found.len(), 1, "{found:?}");
    let p = &found[0];
    assert!(p.starts_with("clinical.yaml:10:"), "{p}");
    assert!(p.contains("`owner` at clinical.yaml:2:1"), "{p}");
    assert!(p.contains("platform.yaml:3:1"), "{p}");

    // A config-level owner makes a file a team file too.
    let team = format!("trust_domains: [hospital.example]\n{PHARMACY}");
    let files = vec![owned(
        "pharmacy.yaml",
        &team,
        &["spiffe://hospital.example/ns/pharmacy/**"],
    )];
    let found = problems(CompiledPolicy::from_files(&files));
    assert!(found[0].starts_with("pharmacy.yaml:1:1: trust_domains: a team file (owner scope: policy.files[2].owner in the config)"), "{found:?}");
}

#[test]
fn two_mesh_files_name_both() {
    let files = vec![
        file("platform.yaml", PLATFORM),
        file("clinical.yaml", CLINICAL),
        file("more.yaml", "version: 1\ntrust_domains: [other.example]\n"),
    ];
    let found = problems(CompiledPolicy::from_files(&files));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("more.yaml:2:1: trust_domains: "),
        "{found:?}"
    );
    assert!(
        found[0].contains("platform.yaml:2:1 sets them already"),
        "{found:?}"
    );
}

#[test]
fn owner_violations_file_and_config_level() {
    // The file's own scope: clinical may not define a pharmacy destination.
    let stray =
        format!("{CLINICAL}  spiffe://hospital.example/ns/pharmacy/sa/stock:\n    allow: []\n");
    let files = vec![
        file("platform.yaml", PLATFORM),
        file("clinical.yaml", &stray),
    ];
    let found = problems(CompiledPolicy::from_files(&files));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("clinical.yaml:10:3: "), "{found:?}");
    assert!(
        found[0].contains("outside this file's owner scope (`owner` at clinical.yaml:2:1"),
        "{found:?}"
    );

    // The config's scope (as `workload_namespace` gives it): both scopes apply.
    let files = vec![
        file("platform.yaml", PLATFORM),
        owned(
            "clinical.yaml",
            CLINICAL,
            &["spiffe://hospital.example/ns/billing/**"],
        ),
    ];
    let found = problems(CompiledPolicy::from_files(&files));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains(
            "policy.files[2].owner in the config [spiffe://hospital.example/ns/billing/**]"
        ),
        "{found:?}"
    );

    // check reports every violation, not only the first.
    let files = vec![
        file("platform.yaml", PLATFORM),
        owned(
            "clinical.yaml",
            &stray,
            &["spiffe://hospital.example/ns/clinical/**"],
        ),
        file("dup.yaml", CLINICAL),
        file(
            "more.yaml",
            "version: 1\nrevoked: {ids: [spiffe://hospital.example/ns/a/sa/b]}\n",
        ),
    ];
    let report = check_files(&files, 1_700_000_000);
    let text = report.to_text("set");
    assert_eq!(report.errors(), 4, "{text}");
    assert!(
        text.contains("clinical.yaml:10:3: error[owner_violation]"),
        "{text}"
    );
    assert!(
        text.contains("dup.yaml:4:3: error[duplicate_key]"),
        "{text}"
    );
    assert!(
        text.contains("dup.yaml:2:1: error[owner_violation]") || text.contains("more.yaml:2:1"),
        "{text}"
    );
}

#[test]
fn a_problem_inside_a_team_file_is_placed_in_that_file() {
    let bad = CLINICAL.replace("methods: [GET]", "methods: [GETS]");
    let files = vec![file("platform.yaml", PLATFORM), file("clinical.yaml", &bad)];
    let found = problems(CompiledPolicy::from_files(&files));
    assert!(found[0].starts_with("clinical.yaml:8:19: "), "{found:?}");
    let found = problems(CompiledPolicy::from_files_for(&files, Some(&id(LAB))));
    assert!(found[0].starts_with("clinical.yaml:8:19: "), "{found:?}");
}

#[test]
fn a_directory_is_its_yaml_files_by_name_without_hidden_entries() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("b-pharmacy.yml", PHARMACY);
    write("a-clinical.yaml", CLINICAL);
    write("00-platform.yaml", PLATFORM);
    write("README.md", "not a policy");
    write(".hidden.yaml", "not: [a policy");
    // A ConfigMap volume: `..data` and a timestamped directory, and the
    // files as symlinks into `..data`.
    std::fs::create_dir(dir.path().join("..2026_12_02_13_00_00.1")).unwrap();
    std::fs::write(dir.path().join("..2026_12_02_13_00_00.1/x.yaml"), "bad: [").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(
        dir.path().join("..2026_12_02_13_00_00.1"),
        dir.path().join("..data"),
    )
    .unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(
        dir.path().join("..data/x.yaml"),
        dir.path().join("..x.yaml"),
    )
    .unwrap();
    let names: Vec<String> = expand_source(dir.path())
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["00-platform.yaml", "a-clinical.yaml", "b-pharmacy.yml"]
    );
    let files = read_policy_files(&[dir.path().to_path_buf()]).unwrap();
    let policy = CompiledPolicy::from_files(&files).unwrap();
    assert_eq!(policy.destinations().count(), 2);

    let empty = tempfile::tempdir().unwrap();
    assert!(read_policy_files(&[empty.path().to_path_buf()]).is_err());
}

#[test]
fn a_team_file_read_alone_keeps_to_its_owner_scope() {
    // What `hallpass policy check clinical.yaml` and a sidecar whose only
    // policy file has `owner:` read.
    let stray = format!(
        "{CLINICAL}  spiffe://hospital.example/ns/pharmacy/sa/stock:\n    allow: []\ntrust_domains: [hospital.example]\n"
    );
    let found = problems(CompiledPolicy::from_yaml(&stray));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("10:3: ") && p.contains("outside this file's owner scope")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("12:16: trust_domains: a team file")),
        "{found:?}"
    );
    // Also when compiled for one destination, its entries cut out.
    let found = problems(CompiledPolicy::from_yaml_for(&stray, Some(&id(LAB))));
    assert_eq!(found.len(), 2, "{found:?}");
    let report = hallpass_policy::check::check(&stray, 1_700_000_000);
    assert_eq!(
        report.codes(),
        ["owner_violation", "mesh_wide_section"],
        "{}",
        report.to_text("f")
    );
    assert!(CompiledPolicy::from_yaml(CLINICAL).is_ok());
}
