//! Grants in the shipped docs and examples must not run out under their
//! readers (issue 14, item 15): every `not_after` a reader may copy lies at
//! least a year ahead, unless its line says the grant ended on purpose.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The comment that marks a grant shown as already over.
const ENDED_ON_PURPOSE: &str = "# ended on purpose";

/// How far ahead a grant in a doc must end, so the doc outlives a release.
const MIN_AHEAD_MS: i64 = 365 * 86_400 * 1000;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn shipped_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            shipped_files(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("md" | "yaml" | "yml" | "tpl" | "txt")
        ) {
            out.push(path);
        }
    }
}

/// Every `not_after: TIME` in `text` that is too close or past and not
/// marked, as `line: time`.
fn too_soon(text: &str, now_ms: i64) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let Some(at) = line.find("not_after:") else {
            continue;
        };
        let value = line[at + "not_after:".len()..]
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_matches(|c| c == '"' || c == '\'' || c == ',' || c == '}');
        let Ok(end) = hallpass_policy::parse_rfc3339_ms(value) else {
            continue;
        };
        if end < now_ms + MIN_AHEAD_MS && !line.contains(ENDED_ON_PURPOSE) {
            found.push(format!("{}: {value}", n + 1));
        }
    }
    found
}

#[test]
fn shipped_grants_end_far_enough_away() {
    let root = workspace_root();
    let mut files = vec![root.join("README.md")];
    for dir in ["docs", "examples", "charts"] {
        shipped_files(&root.join(dir), &mut files);
    }
    let now_ms = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let mut bad = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for hit in too_soon(&text, now_ms) {
            bad.push(format!("{}:{hit}", file.display()));
        }
    }
    assert!(
        bad.is_empty(),
        "grants that end within a year (move them to 2030 or later, or mark the line `{ENDED_ON_PURPOSE}`):\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_date_check_catches_a_grant_ending_tomorrow() {
    let now = hallpass_policy::parse_rfc3339_ms("2026-12-02T00:00:00Z").unwrap();
    let doc = "a:\n  not_after: 2026-12-03T00:00:00Z\n  not_after: 2031-01-01T00:00:00Z\n  not_after: 2026-06-30T00:00:00Z   # ended on purpose\n";
    assert_eq!(too_soon(doc, now), vec!["2: 2026-12-03T00:00:00Z"]);
}
