//! Tables for the typed matchers: `SourcePattern`, `RouteTemplate`,
//! `GrpcPattern` and `normalize_path`.

use hallpass_policy::{
    GrpcPattern, PathIssue, RouteTemplate, SourcePattern, normalize_path, parse_path,
};
use spiffe::SpiffeId;

fn segments(path: &str) -> Vec<String> {
    normalize_path(path)
        .unwrap_or_else(|| panic!("{path:?} should be unambiguous"))
        .segments()
        .iter()
        .map(|s| s.to_string())
        .collect()
}

// ---------------------------------------------------------------- SourcePattern

#[test]
fn source_pattern_parse_accepts_exact_and_wildcards() {
    let exact = SourcePattern::parse("spiffe://hospital.example/ns/clinical/sa/ehr").unwrap();
    assert_eq!(
        exact,
        SourcePattern::Exact(
            SpiffeId::new("spiffe://hospital.example/ns/clinical/sa/ehr").unwrap()
        )
    );
    assert!(matches!(
        SourcePattern::parse("spiffe://hospital.example/ns/clinical/*").unwrap(),
        SourcePattern::OneBelow { ref segments, .. } if segments == &["ns", "clinical"]
    ));
    assert!(matches!(
        SourcePattern::parse("spiffe://hospital.example/ns/**").unwrap(),
        SourcePattern::AnyBelow { ref segments, .. } if segments == &["ns"]
    ));
    assert!(matches!(
        SourcePattern::parse("spiffe://hospital.example/**").unwrap(),
        SourcePattern::AnyBelow { ref segments, .. } if segments.is_empty()
    ));
}

#[test]
fn source_pattern_parse_rejects() {
    for bad in [
        "",
        "spiffe://hospital.example",
        "spiffe://hospital.example/",
        "spiffe://hospital.example/ns/*/sa/x",
        "spiffe://hospital.example/ns/clinical*",
        "spiffe://hospital.example/ns/*clinical",
        "spiffe://hospital.example/ns/***",
        "spiffe://hospital.example/ns/**/*",
        "spiffe://hospital.example/*/**",
        "spiffe://Hospital.example/ns/a",
        "SPIFFE://hospital.example/ns/a",
        "spiffe://Hospital.example/ns/*",
        "https://hospital.example/ns/a",
        "hospital.example/ns/a",
        "spiffe://hospital.example/ns//a",
        "spiffe://hospital.example/ns/../a",
        "spiffe://hospital.example/ns/./a",
        "spiffe://hospital.example/ns/a/",
        "spiffe://hospital.example/ns/a%20b",
        "spiffe://hospital.example/ns/a?x",
    ] {
        assert!(
            SourcePattern::parse(bad).is_err(),
            "{bad:?} must not parse, got {:?}",
            SourcePattern::parse(bad)
        );
    }
}

#[test]
fn source_pattern_matches_segment_wise() {
    let table: &[(&str, &str, bool)] = &[
        // exact
        ("spiffe://td/ns/a", "spiffe://td/ns/a", true),
        ("spiffe://td/ns/a", "spiffe://td/ns/a/b", false),
        ("spiffe://td/ns/a", "spiffe://td/ns/ab", false),
        ("spiffe://td/ns/a", "spiffe://other/ns/a", false),
        // one below
        (
            "spiffe://td/ns/clinical/*",
            "spiffe://td/ns/clinical/x",
            true,
        ),
        (
            "spiffe://td/ns/clinical/*",
            "spiffe://td/ns/clinical",
            false,
        ),
        (
            "spiffe://td/ns/clinical/*",
            "spiffe://td/ns/clinical/x/y",
            false,
        ),
        (
            "spiffe://td/ns/clinical/*",
            "spiffe://td/ns/clinicalx/a",
            false,
        ),
        (
            "spiffe://td/ns/clinical/*",
            "spiffe://td/ns/clinicalx",
            false,
        ),
        (
            "spiffe://td/ns/clinical/*",
            "spiffe://td/ns/clinica/x",
            false,
        ),
        (
            "spiffe://td/ns/clinical/*",
            "spiffe://td2/ns/clinical/x",
            false,
        ),
        (
            "spiffe://td/ns/clinical/*",
            "spiffe://td/ns/Clinical/x",
            false,
        ),
        ("spiffe://td/*", "spiffe://td/x", true),
        ("spiffe://td/*", "spiffe://td/x/y", false),
        ("spiffe://td/*", "spiffe://td", false),
        // any below
        ("spiffe://td/ns/**", "spiffe://td/ns/a", true),
        ("spiffe://td/ns/**", "spiffe://td/ns/a/b/c/d", true),
        ("spiffe://td/ns/**", "spiffe://td/ns", false),
        ("spiffe://td/ns/**", "spiffe://td/nsx/a", false),
        ("spiffe://td/ns/**", "spiffe://td/other/ns/a", false),
        ("spiffe://td/ns/**", "spiffe://td.evil/ns/a", false),
        ("spiffe://td/**", "spiffe://td/a/b", true),
        ("spiffe://td/**", "spiffe://td", false),
        ("spiffe://td/**", "spiffe://td2/a", false),
    ];
    for (pattern, id, want) in table {
        let p = SourcePattern::parse(pattern).unwrap();
        let id_parsed = SpiffeId::new(id).unwrap();
        assert_eq!(p.matches(&id_parsed), *want, "{pattern} vs {id}");
        assert_eq!(p.trust_domain().as_str(), "td", "{pattern}");
    }
}

#[test]
fn source_pattern_displays_as_written() {
    for text in [
        "spiffe://td/ns/a",
        "spiffe://td/ns/clinical/*",
        "spiffe://td/ns/**",
        "spiffe://td/*",
        "spiffe://td/**",
    ] {
        let p = SourcePattern::parse(text).unwrap();
        assert_eq!(p.to_string(), text);
        assert_eq!(SourcePattern::parse(&p.to_string()).unwrap(), p);
    }
}

// ---------------------------------------------------------------- RouteTemplate

#[test]
fn route_template_parse_rejects() {
    for bad in [
        "",
        "patients",
        "patients/{id}",
        "/a/**/b",
        "/**/a",
        "/a/*",
        "/a/*/b",
        "/a*",
        "/{}",
        "/{a-b}",
        "/{a b}",
        "/{a}/{a}",
        "/{a",
        "/a}",
        "/x{a}",
        "/a//b",
        "//a",
        "/a/",
        "/a/./b",
        "/a/../b",
        "/.",
        "/..",
        "/a%2e",
        "/a%2Fb",
        "/a?b",
        "/a#b",
        "/a\\b",
    ] {
        assert!(
            RouteTemplate::parse(bad).is_err(),
            "{bad:?} must not parse, got {:?}",
            RouteTemplate::parse(bad)
        );
    }
}

#[test]
fn route_template_matches() {
    let table: &[(&str, &str, bool)] = &[
        ("/", "/", true),
        ("/", "/a", false),
        ("/health", "/health", true),
        ("/health", "/health/x", false),
        ("/health", "/healthz", false),
        ("/health", "/Health", false),
        ("/patients/{p}/results", "/patients/1/results", true),
        ("/patients/{p}/results", "/patients/a%20b/results", true),
        ("/patients/{p}/results", "/patients/results", false),
        ("/patients/{p}/results", "/patients/1/2/results", false),
        ("/patients/{p}/results", "/patients/1/results/x", false),
        ("/patients/{p}/results", "/patient/1/results", false),
        ("/{a}/{b}", "/x/y", true),
        ("/{a}/{b}", "/x", false),
        ("/{a}/{b}", "/x/y/z", false),
        ("/files/**", "/files/a", true),
        ("/files/**", "/files/a/b/c", true),
        ("/files/**", "/files", false),
        ("/files/**", "/filesx/a", false),
        ("/files/**", "/", false),
        ("/**", "/a", true),
        ("/**", "/a/b", true),
        ("/**", "/", false),
        ("/v1/{id}/**", "/v1/7/a", true),
        ("/v1/{id}/**", "/v1/7", false),
        ("/v1/{id}/**", "/v2/7/a", false),
    ];
    for (template, path, want) in table {
        let t = RouteTemplate::parse(template).unwrap();
        assert_eq!(t.as_str(), *template);
        assert_eq!(t.matches(&segments(path)), *want, "{template} vs {path}");
    }
}

// ---------------------------------------------------------------- GrpcPattern

#[test]
fn grpc_pattern_parse() {
    for good in [
        "lab.v1.Results/GetResult",
        "lab.v1.Results/*",
        "Results/Get",
        "a_b.C9/M_1",
    ] {
        let p = GrpcPattern::parse(good).unwrap();
        assert_eq!(p.as_str(), good);
    }
    for bad in [
        "",
        "lab.v1.Results",
        "lab.v1.Results/",
        "/GetResult",
        "lab..v1.Results/Get",
        ".lab.Results/Get",
        "lab.Results./Get",
        "lab.v1.Results/Get/Extra",
        "lab.v1.Results/Get*",
        "lab.v1.Results/**",
        "lab.v1.*/Get",
        "lab.v1.Res-ults/Get",
        "/lab.v1.Results/Get",
    ] {
        assert!(
            GrpcPattern::parse(bad).is_err(),
            "{bad:?} must not parse, got {:?}",
            GrpcPattern::parse(bad)
        );
    }
}

#[test]
fn grpc_pattern_matches() {
    let table: &[(&str, &str, bool)] = &[
        (
            "lab.v1.Results/GetResult",
            "/lab.v1.Results/GetResult",
            true,
        ),
        (
            "lab.v1.Results/GetResult",
            "/lab.v1.Results/GetResults",
            false,
        ),
        (
            "lab.v1.Results/GetResult",
            "/lab.v1.Results/getResult",
            false,
        ),
        (
            "lab.v1.Results/GetResult",
            "/lab.v1.Result/GetResult",
            false,
        ),
        ("lab.v1.Results/GetResult", "/v1.Results/GetResult", false),
        ("lab.v1.Results/GetResult", "/lab.v1.Results", false),
        (
            "lab.v1.Results/GetResult",
            "/lab.v1.Results/GetResult/x",
            false,
        ),
        (
            "lab.v1.Results/GetResult",
            "/x/lab.v1.Results/GetResult",
            false,
        ),
        ("lab.v1.Results/*", "/lab.v1.Results/Anything", true),
        ("lab.v1.Results/*", "/lab.v1.Results", false),
        ("lab.v1.Results/*", "/lab.v1.ResultsX/Get", false),
        ("lab.v1.Results/*", "/lab.v1.Results/a/b", false),
    ];
    for (pattern, path, want) in table {
        let p = GrpcPattern::parse(pattern).unwrap();
        assert_eq!(p.matches(&segments(path)), *want, "{pattern} vs {path}");
    }
}

// ---------------------------------------------------------------- normalize_path

#[test]
fn normalize_path_accepts_and_decodes() {
    let table: &[(&str, &[&str])] = &[
        ("/", &[]),
        ("/?q=1", &[]),
        ("/a", &["a"]),
        ("/a/b/c", &["a", "b", "c"]),
        ("/a/b?x=1&y=/../", &["a", "b"]),
        ("/a/b#frag/..", &["a", "b"]),
        ("/a?%zz", &["a"]),
        ("/a%20b", &["a b"]),
        ("/p%61th", &["path"]),
        ("/%E2%9C%93", &["\u{2713}"]),
        ("/a.b/..c/c..", &["a.b", "..c", "c.."]),
        ("/.../x", &["...", "x"]),
        ("/%2e%2e%2e", &["..."]),
        ("/a%25b", &["a%b"]),
        ("/a;b=c", &["a;b=c"]),
        ("/a/x..;y", &["a", "x..;y"]),
    ];
    for (raw, want) in table {
        assert_eq!(segments(raw), *want, "{raw:?}");
    }
}

#[test]
fn normalize_path_refuses_ambiguous() {
    for raw in [
        "",
        "a",
        "a/b",
        "*",
        "?x",
        "//",
        "//a",
        "/a//b",
        "/a/",
        "/.",
        "/..",
        "/a/.",
        "/a/..",
        "/a/./b",
        "/a/../b",
        "/%2e",
        "/%2E",
        "/%2e%2e",
        "/%2E%2e",
        "/a/%2e%2e/b",
        "/.%2e",
        "/a%2Fb",
        "/a%2fb",
        "/%2F",
        "/a%5cb",
        "/a%5Cb",
        "/a\\b",
        "\\a",
        "/a/b\\",
        "/%zz",
        "/a%z1",
        "/a%1",
        "/a%",
        "/%ff",
        "/%c0%ae",
        "/%80",
        "/a%00%ff",
        // servlet path parameters: Tomcat reads `/..;/admin` as `/../admin`
        "/..;/admin",
        "/a/..;x=1/b",
        "/.;/a",
        "/;/a",
        "/a/;jsessionid=1",
        "/%2e%2e;/a",
    ] {
        assert_eq!(normalize_path(raw), None, "{raw:?} must be ambiguous");
    }
}

#[test]
fn normalize_path_limits() {
    // 128 segments are fine, 129 are not.
    let ok = "/a".repeat(128);
    assert_eq!(normalize_path(&ok).unwrap().segments().len(), 128);
    assert_eq!(normalize_path(&"/a".repeat(129)), None);
    // 8 KiB of path is fine, one byte more is not; the query does not count.
    let long = format!("/{}", "a".repeat(8 * 1024 - 1));
    assert_eq!(long.len(), 8 * 1024);
    assert!(normalize_path(&long).is_some());
    assert!(normalize_path(&format!("{long}?{}", "q".repeat(10_000))).is_some());
    assert_eq!(normalize_path(&format!("{long}a")), None);
}

/// `paths: ["/appointments/*"]` is what an Istio user writes: the error
/// says what to write instead (issue 14, item 6).
#[test]
fn a_lone_star_segment_suggests_a_parameter_or_double_star() {
    for (template, want) in [
        ("/appointments/*", "`/appointments/{name}`"),
        ("/appointments/*", "`/appointments/**`"),
        ("/a/*/b", "`/a/{name}/b`"),
    ] {
        let err = RouteTemplate::parse(template).unwrap_err();
        assert!(err.contains(want), "{template}: {err}");
        assert!(!err.contains("reserved"), "{template}: {err}");
    }
    // `/**` is only for the end, so the middle `*` suggests `{name}` alone.
    let err = RouteTemplate::parse("/a/*/b").unwrap_err();
    assert!(!err.contains("**"), "{err}");
}

/// Each ambiguous path names one cause, the first found (issue 14, item 5):
/// a trailing `/` is `trailing_slash`, not an empty segment among others.
#[test]
fn parse_path_names_the_cause() {
    let long = format!("/{}", "a".repeat(8 * 1024));
    for (raw, want) in [
        ("a/b", PathIssue::NoLeadingSlash),
        ("", PathIssue::NoLeadingSlash),
        ("/a/", PathIssue::TrailingSlash),
        ("/patients/1/results/", PathIssue::TrailingSlash),
        ("/a/?q=1", PathIssue::TrailingSlash),
        ("//", PathIssue::EmptySegment),
        ("/a//b", PathIssue::EmptySegment),
        ("/a//", PathIssue::EmptySegment),
        ("/a/;x", PathIssue::EmptySegment),
        ("/a/../b", PathIssue::DotSegment),
        ("/%2e%2E", PathIssue::DotSegment),
        ("/..;/admin", PathIssue::DotSegment),
        ("/a/..", PathIssue::DotSegment),
        ("/a%2Fb", PathIssue::EncodedSeparator),
        ("/a%5cb", PathIssue::EncodedSeparator),
        ("/a\\b", PathIssue::Backslash),
        ("/%zz", PathIssue::BadEscape),
        ("/a%", PathIssue::BadEscape),
        ("/%ff", PathIssue::InvalidUtf8),
        (long.as_str(), PathIssue::TooLong),
    ] {
        assert_eq!(parse_path(raw), Err(want), "{raw:?}");
    }
    assert_eq!(
        parse_path(&"/a".repeat(129)),
        Err(PathIssue::TooLong),
        "129 segments"
    );
    assert_eq!(parse_path("/").map(|p| p.segments().len()), Ok(0));
}

/// A template written with a trailing `/` could never match (such a request
/// path is ambiguous): the error says to remove it (issue 14, item 5).
#[test]
fn a_template_with_a_trailing_slash_says_to_remove_it() {
    for (template, want) in [
        ("/patients/", "`/patients`"),
        (
            "/patients/{patient}/results/",
            "`/patients/{patient}/results`",
        ),
    ] {
        let err = RouteTemplate::parse(template).unwrap_err();
        assert!(err.contains("remove the trailing `/`"), "{template}: {err}");
        assert!(err.contains(want), "{template}: {err}");
    }
    // An empty segment elsewhere keeps the general message.
    let err = RouteTemplate::parse("/a//b").unwrap_err();
    assert!(!err.contains("trailing"), "{err}");
}
