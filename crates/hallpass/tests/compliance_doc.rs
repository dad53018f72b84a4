//! docs/compliance.md names the tests that show each claim; a renamed or
//! deleted test must not leave the map pointing at nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file under `dir`, by the module name a test path uses
/// (`foo.rs` and `foo/mod.rs` are both `foo`). Build output is skipped.
fn rust_files(dir: &Path, out: &mut BTreeMap<String, Vec<PathBuf>>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if let Some(stem) = name.strip_suffix(".rs") {
            let module = if stem == "mod" {
                path.parent()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap()
            } else {
                stem.to_owned()
            };
            out.entry(module).or_default().push(path);
        }
    }
}

/// `module::function` names in backticks: the form the map uses for tests.
fn test_names(line: &str) -> Vec<(String, String)> {
    let is_word = |s: &str| {
        !s.is_empty()
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    line.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|span| {
            let (module, function) = span.split_once("::")?;
            (is_word(module) && is_word(function)).then(|| (module.to_owned(), function.to_owned()))
        })
        .collect()
}

/// The file defines `function` as a test: `fn function(` in a file that has
/// tests (`#[test]`, `#[tokio::test]` or a `proptest!` block).
fn defines_test(path: &Path, function: &str) -> bool {
    let text = fs::read_to_string(path).unwrap();
    let has_tests =
        text.contains("#[test]") || text.contains("::test") || text.contains("proptest!");
    has_tests
        && (text.contains(&format!("fn {function}(")) || text.contains(&format!("fn {function}<")))
}

#[test]
fn every_test_the_compliance_map_names_exists() {
    let root = repo_root();
    let doc = fs::read_to_string(root.join("docs/compliance.md")).unwrap();
    let mut files = BTreeMap::new();
    rust_files(&root.join("crates"), &mut files);
    rust_files(&root.join("tests"), &mut files);

    let mut named = BTreeSet::new();
    let mut missing = Vec::new();
    let mut rows_without_a_test = Vec::new();
    let mut section = String::new();
    for (number, line) in doc.lines().enumerate() {
        if let Some(heading) = line.strip_prefix("## ") {
            section = heading.to_owned();
        }
        let names = test_names(line);
        // A data row of the tenet and risk tables must point at evidence.
        let data_row = line.starts_with("| ")
            && !line.starts_with("| #")
            && !line.starts_with("| risk")
            && !line.starts_with("| question");
        if data_row && !section.starts_with("HIPAA") && names.is_empty() {
            rows_without_a_test.push(format!("line {}: {line}", number + 1));
        }
        for (module, function) in names {
            let found = files
                .get(&module)
                .is_some_and(|paths| paths.iter().any(|p| defines_test(p, &function)));
            if !found {
                missing.push(format!("line {}: {module}::{function}", number + 1));
            }
            named.insert(format!("{module}::{function}"));
        }
    }
    assert!(
        missing.is_empty(),
        "docs/compliance.md names tests that do not exist:\n{}",
        missing.join("\n")
    );
    assert!(
        rows_without_a_test.is_empty(),
        "rows of docs/compliance.md with no test:\n{}",
        rows_without_a_test.join("\n")
    );
    // The seven tenets and ten risks each name tests; far fewer names means
    // the extractor broke, not that the map got shorter.
    assert!(
        named.len() >= 40,
        "only {} test names found in docs/compliance.md",
        named.len()
    );
}

#[test]
fn the_name_extractor_reads_only_module_function_pairs() {
    let line = "| x | `a::b`, `hallpass_x_total`, `c::d::e`, `Foo::bar`, `x_1::y_2` |";
    assert_eq!(
        test_names(line),
        vec![
            ("a".to_owned(), "b".to_owned()),
            ("x_1".to_owned(), "y_2".to_owned())
        ]
    );
}

#[test]
fn a_name_that_is_not_a_test_does_not_resolve() {
    let root = repo_root();
    // A real function that is not a test, and a made-up test name.
    assert!(!defines_test(
        &root.join("crates/hallpass/tests/compliance_doc.rs"),
        "repo_root_missing"
    ));
    assert!(defines_test(
        &root.join("crates/hallpass/tests/compliance_doc.rs"),
        "every_test_the_compliance_map_names_exists"
    ));
}
