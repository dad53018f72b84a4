//! Issue 14 item 11: the `hallpass` commands shown in README.md and
//! docs/*.md work with the binary that ships.
//!
//! Extraction: in fenced blocks marked `sh`, `bash`, `shell` or `console`,
//! or not marked (where synopses are written), every line that starts
//! with `hallpass ` or `$ hallpass ` (and, in any fenced block, with
//! `$ hallpass `), joined with its `\` continuation
//! lines, split into words as a shell would (quotes, escapes), and cut at
//! the first comment, pipe or redirection.
//!
//! Each example is checked in a temporary directory holding a copy of the
//! repository's `examples/`:
//! - a synopsis (`[--format text|json]`, `FILE…`): its subcommand exists
//!   and every `--flag` it shows is in that subcommand's help;
//! - any other example: the binary parses it (the words, then `--help`:
//!   clap stops at `--help` only after accepting every subcommand, flag,
//!   value and argument before it);
//! - a self-contained one (every file it names exists in the directory,
//!   and it is not in [`NOT_RUN`]) is run, and must exit with its
//!   documented code: 0, or the `# exit N` comment written after it. For
//!   `policy explain`, the first line of output shown under it in a
//!   `console` block must be the first line printed.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// Examples parsed but never run, with the reason: they need a live
/// sidecar, Prometheus, cluster or webhook, or start a server.
const NOT_RUN: &[(&str, &str)] = &[
    ("serve", "starts the sidecar and runs until stopped"),
    ("demo", "the demo is run by tests/demo_cli.rs"),
    (
        "report",
        "reads a running sidecar's /callgraph or Prometheus",
    ),
    ("baseline export", "reads a running sidecar's /callgraph"),
    (
        "inject",
        "without --render it serves the webhook; with it, needs a pod file",
    ),
];

/// Paths in the docs that name files a reader made in an earlier step:
/// the file they stand for in this directory (the tutorial's first step
/// copies the example policy to /tmp/tut/policy.yaml).
const MADE_EARLIER: &[(&str, &str)] = &[(
    "/tmp/tut/policy.yaml",
    "examples/policies/clinical-mesh.yaml",
)];

#[derive(Debug)]
struct Example {
    /// `FILE:LINE` of the example.
    at: String,
    /// The words after `hallpass`.
    words: Vec<String>,
    /// `# exit N` written after it.
    exit: Option<i32>,
    /// The first line of output shown under it (console blocks).
    output: Option<String>,
}

impl Example {
    fn is_synopsis(&self) -> bool {
        self.words.iter().any(|w| {
            w.contains('[')
                || w.contains('(')
                || w.contains('…')
                || w.contains("...")
                || w.contains('|')
        })
    }
}

/// Split a command line into words as sh does; `None` at the first
/// unquoted comment, pipe, redirection or command separator. Returns the
/// words and the comment (without `#`), if any.
fn shell_words(line: &str) -> (Vec<String>, Option<String>) {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    let mut comment = None;
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => word.extend(chars.next()),
                        q => word.push(q),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.extend(chars.next());
            }
            '#' if !in_word => {
                comment = Some(chars.collect::<String>().trim().to_owned());
                break;
            }
            '|' | '>' | '<' | ';' | '&' if !in_word || word.chars().all(|d| d.is_ascii_digit()) => {
                if in_word && !word.is_empty() {
                    // `2>`: the descriptor is not a word.
                    word.clear();
                    in_word = false;
                }
                break;
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    (words, comment)
}

/// Every `hallpass` example of one markdown file.
fn examples(file: &str, text: &str) -> Vec<Example> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut fence: Option<String> = None;
    let mut i = 0;
    while let Some(line) = lines.get(i) {
        i += 1;
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            fence = match fence {
                Some(_) => None,
                None => Some(info.trim().to_owned()),
            };
            continue;
        }
        let Some(lang) = &fence else { continue };
        // A block without a language is where synopses are written.
        let shell = matches!(lang.as_str(), "sh" | "bash" | "shell" | "console" | "");
        let command = match trimmed.strip_prefix("$ ") {
            Some(c) => c,
            None if shell => trimmed,
            None => continue,
        };
        let Some(rest) = command.strip_prefix("hallpass ") else {
            continue;
        };
        let start = i;
        let mut joined = rest.to_owned();
        while joined.trim_end().ends_with('\\') {
            let cut = joined.trim_end().len() - 1;
            joined.truncate(cut);
            match lines.get(i) {
                Some(next) => {
                    joined.push(' ');
                    joined.push_str(next.trim());
                    i += 1;
                }
                None => break,
            }
        }
        let (words, comment) = shell_words(&joined);
        let exit = comment
            .as_deref()
            .and_then(|c| c.strip_prefix("exit "))
            .and_then(|n| n.trim().parse().ok());
        let output = (lang == "console")
            .then(|| lines.get(i))
            .flatten()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty() && !l.starts_with('$') && !l.starts_with("```"));
        out.push(Example {
            at: format!("{file}:{start}"),
            words,
            exit,
            output,
        });
    }
    out
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn all_examples() -> Vec<Example> {
    let mut files = vec![repo().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
        .iter()
        .flat_map(|path| {
            let name = path
                .strip_prefix(repo())
                .unwrap_or(path)
                .display()
                .to_string();
            let name = name.trim_start_matches("../").to_owned();
            examples(&name, &std::fs::read_to_string(path).unwrap())
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn run_in(dir: &Path, args: &[String]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .args(args)
        .current_dir(dir)
        .env_remove("HALLPASS_CONFIG")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The subcommands listed in a help text's `Commands:` section.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|s| s != "help")
        .collect()
}

/// The leading words of `words` that name subcommands.
fn subcommand_path(dir: &Path, words: &[String]) -> Vec<String> {
    let mut path: Vec<String> = Vec::new();
    for w in words {
        let mut args = path.clone();
        args.push("--help".into());
        let help = run_in(dir, &args).stdout;
        if subcommands(&help).contains(w) {
            path.push(w.clone());
        } else {
            break;
        }
    }
    path
}

#[test]
fn doc_examples_match_the_binary() {
    let examples = all_examples();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_dir(&repo().join("examples"), &dir.join("examples"));
    let map_path = |w: &str| -> String {
        for (doc, _) in MADE_EARLIER {
            if w == *doc {
                return format!("made-earlier/{}", w.trim_start_matches('/'));
            }
        }
        w.to_owned()
    };
    for (doc, source) in MADE_EARLIER {
        let target = dir.join(format!("made-earlier/{}", doc.trim_start_matches('/')));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(dir.join(source), target).unwrap();
    }

    let mut failures = Vec::new();
    let (mut synopses, mut parsed, mut ran) = (0, 0, 0);
    for ex in &examples {
        let path = subcommand_path(dir, &ex.words);
        if path.is_empty() {
            failures.push(format!(
                "{}: `hallpass {}`: no such subcommand",
                ex.at,
                ex.words.join(" ")
            ));
            continue;
        }
        if ex.is_synopsis() {
            synopses += 1;
            let mut args = path.clone();
            args.push("--help".into());
            let help = run_in(dir, &args).stdout;
            for flag in ex.words.iter().flat_map(|w| {
                w.split(|c: char| "[]()|=…".contains(c))
                    .filter(|f| f.starts_with("--") && f.len() > 2)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            }) {
                let known = help
                    .split(|c: char| c.is_whitespace() || c == ',' || c == '=')
                    .any(|w| w == flag);
                if !known {
                    failures.push(format!(
                        "{}: `hallpass {}` shows {flag}, which `hallpass {} --help` does not list",
                        ex.at,
                        ex.words.join(" "),
                        path.join(" ")
                    ));
                }
            }
            continue;
        }
        let words: Vec<String> = ex.words.iter().map(|w| map_path(w)).collect();
        let mut args = words.clone();
        args.push("--help".into());
        let parse = run_in(dir, &args);
        parsed += 1;
        if parse.code != 0 {
            failures.push(format!(
                "{}: `hallpass {}` does not parse: {}",
                ex.at,
                ex.words.join(" "),
                parse.stderr.trim()
            ));
            continue;
        }
        let name = path.join(" ");
        let not_run = NOT_RUN
            .iter()
            .any(|(prefix, _)| name == *prefix || name.starts_with(&format!("{prefix} ")));
        let files_exist = words
            .iter()
            .filter(|w| {
                [".yaml", ".yml", ".json", ".jsonl", ".pem"]
                    .iter()
                    .any(|e| w.ends_with(e))
            })
            .all(|w| dir.join(w).is_file());
        if not_run || !files_exist {
            continue;
        }
        ran += 1;
        let run = run_in(dir, &words);
        let expected = ex.exit.unwrap_or(0);
        if run.code != expected {
            failures.push(format!(
                "{}: `hallpass {}` exited {} (documented: {expected}): {}{}",
                ex.at,
                ex.words.join(" "),
                run.code,
                run.stdout,
                run.stderr
            ));
        }
        if name == "policy explain"
            && let Some(shown) = &ex.output
            && run.stdout.lines().next() != Some(shown.as_str())
        {
            failures.push(format!(
                "{}: `hallpass {}` first prints {:?}; the doc shows {shown:?}",
                ex.at,
                ex.words.join(" "),
                run.stdout.lines().next()
            ));
        }
    }
    eprintln!("doc examples: {synopses} synopses checked, {parsed} parsed, {ran} run");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The extraction found what the docs hold (a broken extractor must not
    // pass by finding nothing).
    assert!(
        synopses >= 3 && parsed >= 15 && ran >= 5,
        "synopses {synopses}, parsed {parsed}, ran {ran}: {examples:#?}"
    );
}

#[test]
fn extraction_handles_prompts_continuations_comments_and_redirections() {
    let doc = "text\n```console\n$ hallpass policy explain p.yaml \\\n    --source 'a b' \\\n    --path /x\ndecision: allow\n$ echo hi\n```\n\
               ```sh\nhallpass baseline export --admin http://h:1 > b.json   # or -o b.json\n\
               hallpass policy check x.yaml  # exit 1\nnot hallpass\n```\n\
               ```\nhallpass policy check FILE [--strict]\n$ hallpass policy check y.yaml\n```\n\
               ```yaml\nhallpass: 1\n```\n";
    let found = examples("d.md", doc);
    type Summary = (String, Vec<String>, Option<i32>, Option<String>);
    let summary: Vec<Summary> = found
        .iter()
        .map(|e| (e.at.clone(), e.words.clone(), e.exit, e.output.clone()))
        .collect();
    let words = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        summary,
        [
            (
                "d.md:3".to_owned(),
                vec![
                    "policy".to_owned(),
                    "explain".into(),
                    "p.yaml".into(),
                    "--source".into(),
                    "a b".into(),
                    "--path".into(),
                    "/x".into()
                ],
                None,
                Some("decision: allow".to_owned())
            ),
            (
                "d.md:10".to_owned(),
                words("baseline export --admin http://h:1"),
                None,
                None
            ),
            (
                "d.md:11".to_owned(),
                words("policy check x.yaml"),
                Some(1),
                None
            ),
            (
                "d.md:15".to_owned(),
                words("policy check FILE [--strict]"),
                None,
                None
            ),
            (
                "d.md:16".to_owned(),
                words("policy check y.yaml"),
                None,
                None
            ),
        ]
    );
    assert!(!found[0].is_synopsis());
    let (w, _) = shell_words("policy check FILE [--strict] 2>/dev/null");
    assert_eq!(w, words("policy check FILE [--strict]"));
}
