//! Issue 14 item 11: every `--help` text agrees with what ships. The
//! command tree is clap's own (`Cli::command()`), so a new subcommand is
//! covered without touching this file. For each command:
//! - every reference to a document (`docs/policy.md`, `policy.md`,
//!   `docs/policy.md#anchor`, `docs/policy.md, "Heading"`) names a file of
//!   the repository and, when it names a section, a heading of that file;
//!   a section sign (`design §4`) points into a document that does not
//!   ship and is refused;
//! - every subcommand appears in its parent's help, and a parent whose
//!   one-line description names two or more of its subcommands names all
//!   of them (`policy --help` once said "check, test, explain" without
//!   `suggest`).
//!
//! The doc examples are run against the real binary in
//! `tests/doc_examples.rs`.

use std::path::{Path, PathBuf};

use clap::CommandFactory;

use super::Cli;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// GitHub's anchor of a heading: lower case, backquotes and punctuation
/// dropped, spaces to `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The headings of a markdown file (outside code fences).
fn headings(text: &str) -> Vec<String> {
    let mut in_fence = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if !in_fence && line.starts_with('#') {
            out.push(line.trim_start_matches('#').trim().to_owned());
        }
    }
    out
}

/// One reference to a document found in a help text.
#[derive(Debug, PartialEq)]
struct Reference {
    file: String,
    /// `#anchor`, or a quoted heading after the file name.
    section: Option<String>,
}

/// Every `NAME.md` reference in `text` (whitespace already collapsed),
/// with the section it names, if any.
fn references(text: &str) -> Vec<Reference> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(end) = rest.find(".md") {
        let before = rest.get(..end).unwrap_or_default();
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || "/._-".contains(c)))
            .map_or(0, |i| i + 1);
        let file = format!("{}.md", before.get(start..).unwrap_or_default());
        let after = rest.get(end + 3..).unwrap_or_default();
        let section = if let Some(a) = after.strip_prefix('#') {
            let len = a
                .find(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_'))
                .unwrap_or(a.len());
            Some(a.get(..len).unwrap_or_default().to_owned())
        } else if let Some(q) = after.strip_prefix(", \"") {
            q.split_once('"').map(|(h, _)| anchor(h))
        } else {
            None
        };
        if file != ".md" {
            out.push(Reference { file, section });
        }
        rest = after;
    }
    out
}

/// Problems with the document references of one help text.
fn check_references(command: &str, help: &str, failures: &mut Vec<String>) {
    let text = help.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.contains('§') {
        failures.push(format!(
            "`{command} --help` cites a numbered section (§) of a document that does not ship: {text}"
        ));
    }
    for r in references(&text) {
        let candidates = [repo().join(&r.file), repo().join("docs").join(&r.file)];
        let Some(path) = candidates.iter().find(|p| p.is_file()) else {
            failures.push(format!(
                "`{command} --help` cites {}, which does not exist",
                r.file
            ));
            continue;
        };
        let Some(section) = &r.section else { continue };
        let doc = std::fs::read_to_string(path).unwrap_or_default();
        if !headings(&doc).iter().any(|h| anchor(h) == *section) {
            failures.push(format!(
                "`{command} --help` cites section `{section}` of {}, which has no such heading",
                r.file
            ));
        }
    }
}

fn walk(cmd: &mut clap::Command, name: &str, failures: &mut Vec<String>) {
    let help = cmd.render_long_help().to_string();
    check_references(name, &help, failures);
    let subcommands: Vec<String> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .map(|s| s.get_name().to_owned())
        .collect();
    for sub in &subcommands {
        let listed = help
            .lines()
            .any(|l| l.split_whitespace().next() == Some(sub.as_str()));
        if !listed {
            failures.push(format!("`{name} --help` does not list `{sub}`"));
        }
    }
    // A one-line description that enumerates subcommands names them all.
    if let Some(about) = cmd.get_about().map(ToString::to_string) {
        let lower = about.to_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| !(c.is_alphanumeric() || c == '-'))
            .collect();
        let named: Vec<&String> = subcommands
            .iter()
            .filter(|s| words.contains(&s.as_str()))
            .collect();
        if named.len() >= 2 && named.len() < subcommands.len() {
            failures.push(format!(
                "`{name} --help` says \"{about}\", naming some subcommands but not all of {subcommands:?}"
            ));
        }
    }
    for sub in cmd.get_subcommands_mut() {
        let sub_name = format!("{name} {}", sub.get_name());
        walk(sub, &sub_name, failures);
    }
}

#[test]
fn every_help_text_cites_docs_that_exist_and_lists_every_subcommand() {
    let mut cmd = Cli::command();
    cmd.build();
    let mut failures = Vec::new();
    walk(&mut cmd, "hallpass", &mut failures);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_reference_finder_finds_what_help_texts_write() {
    assert_eq!(
        references("see docs/policy.md#hallpass-policy-test and configuration.md."),
        [
            Reference {
                file: "docs/policy.md".into(),
                section: Some("hallpass-policy-test".into())
            },
            Reference {
                file: "configuration.md".into(),
                section: None
            },
        ]
    );
    assert_eq!(
        references("(see docs/policy.md, \"Testing a policy\")"),
        [Reference {
            file: "docs/policy.md".into(),
            section: Some("testing-a-policy".into())
        }]
    );
    assert_eq!(anchor("`hallpass policy test`"), "hallpass-policy-test");
    assert_eq!(
        anchor("Path safety, and what Envoy should normalise"),
        "path-safety-and-what-envoy-should-normalise"
    );
    let mut failures = Vec::new();
    check_references("x", "The config file (design §4).", &mut failures);
    check_references(
        "x",
        "see docs/policy.md, \"Testing a policy\"",
        &mut failures,
    );
    check_references("x", "see docs/nothing.md", &mut failures);
    check_references("x", "see docs/policy.md#exit-codes", &mut failures);
    assert_eq!(failures.len(), 3, "{failures:#?}");
}
