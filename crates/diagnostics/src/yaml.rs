//! Where things are in a YAML file: a located tree, a key path →
//! line:column index, and a shape check that reports every unknown key,
//! duplicate key, missing key and wrong type at once (serde stops at the
//! first).
//!
//! Why `saphyr-parser` rather than a hand-written locator: YAML puts values
//! in block and flow styles, plain or quoted, across lines, with comments and
//! anchors; a locator that guesses from indentation gets flow lists
//! (`from: [a, b]`), multi-line flow maps and quoted keys wrong, and a wrong
//! line number is worse than none. `saphyr-parser` is a pure-Rust YAML 1.2
//! event parser with spans and two small dependencies (`arraydeque`,
//! `thiserror`); `serde_yaml_ng` keeps libyaml's marks to itself. This runs
//! only when a file has a problem or is being checked, never on the decision
//! path or on a successful reload.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle};

use crate::path::{child_path, display_path, item_path, parent_path};
use crate::{Location, Problem, Problems, codes};

/// A YAML value with its place.
#[derive(Debug, Clone)]
pub struct Node {
    value: Value,
    at: Location,
}

#[derive(Debug, Clone)]
enum Value {
    Scalar { text: String, plain: bool },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// Where the value starts.
    pub fn location(&self) -> Location {
        self.at
    }

    fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    fn describe(&self) -> String {
        match &self.value {
            Value::Scalar { .. } if self.is_null() => "nothing".into(),
            Value::Scalar { text, .. } => format!("`{text}`"),
            Value::Seq(_) => "a list".into(),
            Value::Map(_) => "a mapping".into(),
        }
    }
}

enum Frame {
    Seq(Vec<Node>, Location, usize),
    Map(Vec<(Node, Node)>, Option<Node>, Location, usize),
}

/// Parse the first YAML document of `text` into a located tree. `Ok(None)`
/// is an empty document. Aliases are expanded (with the anchor's location).
/// A syntax error is a [`codes::YAML_SYNTAX`] problem at its place.
pub fn parse(text: &str) -> Result<Option<Node>, Box<Problem>> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| {
            let at = Location::new(e.marker().line(), e.marker().col() + 1);
            Box::new(syntax_problem(
                text,
                format!("not valid YAML: {}", e.info()),
                Some(at),
            ))
        })?;
        let at = Location::new(span.start.line(), span.start.col() + 1);
        let done = match event {
            Event::Scalar(text, style, anchor, _) => Some((
                Node {
                    value: Value::Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                    },
                    at,
                },
                anchor,
            )),
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Seq(Vec::new(), at, anchor));
                None
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map(Vec::new(), None, at, anchor));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq(items, at, anchor)) => Some((
                    Node {
                        value: Value::Seq(items),
                        at,
                    },
                    anchor,
                )),
                Some(Frame::Map(entries, _, at, anchor)) => Some((
                    Node {
                        value: Value::Map(entries),
                        at,
                    },
                    anchor,
                )),
                None => None,
            },
            Event::Alias(id) => anchors.get(&id).cloned().map(|n| (n, 0)),
            _ => None,
        };
        let Some((node, anchor)) = done else { continue };
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            Some(Frame::Seq(items, ..)) => items.push(node),
            Some(Frame::Map(entries, key, ..)) => match key.take() {
                Some(k) => entries.push((k, node)),
                None => *key = Some(node),
            },
            None => return Ok(Some(node)),
        }
    }
    Ok(None)
}

/// The message for a tab in the indentation.
pub const TAB_INDENTATION: &str = "tabs are not allowed for indentation in YAML; use spaces";

/// The [`codes::YAML_SYNTAX`] problem for a parser's error `message` at
/// `at`. When a tab in the indentation of that line (or of the nearest
/// line above it) is the likely cause, it says so plainly, at the tab,
/// rather than as a scanner error.
pub fn syntax_problem(text: &str, message: String, at: Option<Location>) -> Problem {
    let line = at.map_or(usize::MAX, |l| {
        usize::try_from(l.line).unwrap_or(usize::MAX)
    });
    match tab_in_indentation(text, line) {
        Some(tab) => Problem::error(codes::YAML_SYNTAX, crate::path::ROOT, TAB_INDENTATION)
            .at(Some(tab))
            .with_hint("indent with spaces only (an editor setting: insert spaces for tabs)"),
        None => Problem::error(codes::YAML_SYNTAX, crate::path::ROOT, message).at(at),
    }
}

/// The first tab in the indentation of line `line` (1-based), or else of
/// the line after it (a parser may stop at the end of the line before),
/// or else of the nearest line above it that has one. Blank and comment
/// lines do not count: YAML allows a tab there.
fn tab_in_indentation(text: &str, line: usize) -> Option<Location> {
    let tabs: Vec<Location> = text
        .lines()
        .take(line.saturating_add(1))
        .enumerate()
        .filter_map(|(i, l)| {
            let indent = l.len() - l.trim_start_matches([' ', '\t']).len();
            let rest = l.get(indent..)?;
            if rest.is_empty() || rest.starts_with('#') {
                return None;
            }
            let column = l.get(..indent)?.find('\t')?;
            Some(Location::new(i + 1, column + 1))
        })
        .collect();
    let on = |n: usize| {
        tabs.iter()
            .find(|t| usize::try_from(t.line).ok() == Some(n))
    };
    on(line)
        .or_else(|| on(line.saturating_add(1)))
        .or_else(|| {
            tabs.iter()
                .rev()
                .find(|t| usize::try_from(t.line).is_ok_and(|l| l < line))
        })
        .copied()
}

/// Key path → location of the value and of the key.
#[derive(Debug, Clone, Default)]
pub struct LocationIndex {
    values: HashMap<String, Location>,
    keys: HashMap<String, Location>,
}

impl LocationIndex {
    /// Index a YAML text. An unparseable text gives an empty index.
    pub fn new(text: &str) -> Self {
        Self::new_for(text, |_| true)
    }

    /// Index only the parts of a YAML text on the way to the key paths
    /// `wanted` accepts: a path is indexed, and its children looked at,
    /// when `wanted` says some problem's path starts with it. Locating a
    /// few problems in a mesh-wide file then skips the rest of it.
    pub fn new_for(text: &str, wanted: impl Fn(&str) -> bool) -> Self {
        let mut index = Self::default();
        if let Ok(Some(root)) = parse(text) {
            index.add("", &root, &wanted);
        }
        index
    }

    /// An index for locating problems at these key paths.
    pub fn for_paths<'p>(text: &str, paths: impl IntoIterator<Item = &'p str>) -> Self {
        let paths: Vec<&str> = paths.into_iter().collect();
        Self::new_for(text, |prefix| paths.iter().any(|p| p.starts_with(prefix)))
    }

    fn add(&mut self, path: &str, node: &Node, wanted: &impl Fn(&str) -> bool) {
        if !wanted(path) {
            return;
        }
        self.values.insert(path.to_owned(), node.at);
        match &node.value {
            Value::Scalar { .. } => {}
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.add(&item_path(path, i), item, wanted);
                }
            }
            Value::Map(entries) => {
                for (k, v) in entries {
                    let Value::Scalar { text, .. } = &k.value else {
                        continue;
                    };
                    let p = child_path(path, text);
                    // The first of duplicate keys keeps its place.
                    if self.keys.contains_key(&p) || !wanted(&p) {
                        continue;
                    }
                    self.keys.insert(p.clone(), k.at);
                    self.add(&p, v, wanted);
                }
            }
        }
    }

    /// Where the value at `path` starts; for a path that is not in the file
    /// (a missing key), where its nearest enclosing value starts, the
    /// document itself for a missing top-level key.
    pub fn value(&self, path: &str) -> Option<Location> {
        let mut p = path;
        loop {
            if let Some(at) = self.values.get(p) {
                return Some(*at);
            }
            p = match parent_path(p) {
                Some(parent) => parent,
                None if !p.is_empty() => "",
                None => return None,
            };
        }
    }

    /// Where the key of `path` is written (or its value, for a list item).
    pub fn key(&self, path: &str) -> Option<Location> {
        self.keys.get(path).copied().or_else(|| self.value(path))
    }

    /// Where a problem about `path` points: the key when it is quoted (a
    /// destination ID is the subject, not its mapping), else the value.
    pub fn locate(&self, path: &str) -> Option<Location> {
        if path.ends_with('"') {
            self.key(path)
        } else {
            self.value(path)
        }
    }
}

/// The expected shape of a YAML value, for [`check_shape`].
#[derive(Debug)]
pub enum Shape {
    /// A plain whole number.
    Int,
    /// Any scalar.
    Str,
    /// `true` or `false`.
    Bool,
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// A list of values of one shape.
    List(&'static Shape),
    /// A mapping with free string keys (unique) and values of one shape.
    Dict(&'static Shape),
    /// A mapping with these keys only.
    Struct(&'static [Field]),
}

/// One key of a [`Shape::Struct`].
#[derive(Debug)]
pub struct Field {
    /// The key.
    pub name: &'static str,
    /// Its value's shape.
    pub shape: &'static Shape,
    /// Must the key be there?
    pub required: bool,
}

impl Field {
    /// A key `name` whose value has `shape`.
    pub const fn new(name: &'static str, shape: &'static Shape, required: bool) -> Self {
        Self {
            name,
            shape,
            required,
        }
    }
}

impl Shape {
    fn expected(&self) -> String {
        match self {
            Self::Int => "a whole number".into(),
            Self::Str => "a string".into(),
            Self::Bool => "true or false".into(),
            Self::OneOf(words) => format!("one of {}", quoted_list(words)),
            Self::List(inner) => format!("a list of {}", plural(inner)),
            Self::Dict(_) | Self::Struct(_) => "a mapping".into(),
        }
    }
}

fn plural(shape: &Shape) -> &'static str {
    match shape {
        Shape::Int => "numbers",
        Shape::Str | Shape::OneOf(_) => "strings",
        Shape::Bool => "booleans",
        Shape::List(_) => "lists",
        Shape::Dict(_) | Shape::Struct(_) => "mappings",
    }
}

fn quoted_list(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| format!("`{w}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Check `node` against `shape`, recording one problem per mistake found.
/// Lenient where serde is (any scalar is a string, an optional key may be
/// empty), so that what passes here fails in serde only for reasons this
/// does not model.
pub fn check_shape(node: &Node, shape: &Shape, path: &str, out: &mut Problems) {
    let wrong = |out: &mut Problems| {
        out.push(
            Problem::error(
                codes::WRONG_TYPE,
                display_path(path),
                format!("expected {}, found {}", shape.expected(), node.describe()),
            )
            .at(Some(node.at)),
        );
    };
    match (shape, &node.value) {
        (Shape::Str, Value::Scalar { .. }) => {}
        (Shape::Int, Value::Scalar { text, plain: true })
            if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {}
        (Shape::Bool, Value::Scalar { text, plain: true })
            if matches!(
                text.as_str(),
                "true" | "True" | "TRUE" | "false" | "False" | "FALSE"
            ) => {}
        (Shape::OneOf(words), Value::Scalar { text, .. }) if words.contains(&text.as_str()) => {}
        (Shape::List(inner), Value::Seq(items)) => {
            for (i, item) in items.iter().enumerate() {
                check_shape(item, inner, &item_path(path, i), out);
            }
        }
        (Shape::Dict(inner), Value::Map(entries)) => {
            let mut seen: Vec<&str> = Vec::new();
            for (k, v) in entries {
                let Some(key) = scalar_key(k, path, out) else {
                    continue;
                };
                if seen.contains(&key) {
                    out.push(
                        Problem::error(
                            codes::DUPLICATE_KEY,
                            child_path(path, key),
                            format!("duplicate key `{key}`"),
                        )
                        .at(Some(k.at)),
                    );
                    continue;
                }
                seen.push(key);
                check_shape(v, inner, &child_path(path, key), out);
            }
        }
        (Shape::Struct(fields), Value::Map(entries)) => {
            let mut seen: Vec<&str> = Vec::new();
            for (k, v) in entries {
                let Some(key) = scalar_key(k, path, out) else {
                    continue;
                };
                let at = child_path(path, key);
                let Some(field) = fields.iter().find(|f| f.name == key) else {
                    let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
                    let problem = Problem::error(
                        codes::UNKNOWN_KEY,
                        at,
                        format!(
                            "unknown field `{key}`, expected one of {}",
                            quoted_list(&names)
                        ),
                    )
                    .at(Some(k.at));
                    out.push(match crate::similar::closest(key, names.iter().copied()) {
                        Some(near) => problem.with_hint(format!("did you mean `{near}`?")),
                        None => problem,
                    });
                    continue;
                };
                if seen.contains(&key) {
                    out.push(
                        Problem::error(
                            codes::DUPLICATE_KEY,
                            at,
                            format!("duplicate field `{key}`"),
                        )
                        .at(Some(k.at)),
                    );
                    continue;
                }
                seen.push(key);
                if !v.is_null() || field.required {
                    check_shape(v, field.shape, &at, out);
                }
            }
            for field in fields.iter().filter(|f| f.required) {
                if !seen.contains(&field.name) {
                    out.push(
                        Problem::error(
                            codes::MISSING_KEY,
                            child_path(path, field.name),
                            format!("missing field `{}`", field.name),
                        )
                        .at(Some(node.at)),
                    );
                }
            }
        }
        _ => wrong(out),
    }
}

fn scalar_key<'a>(k: &'a Node, path: &str, out: &mut Problems) -> Option<&'a str> {
    match &k.value {
        Value::Scalar { text, .. } => Some(text),
        _ => {
            out.push(
                Problem::error(
                    codes::WRONG_TYPE,
                    display_path(path),
                    "keys must be strings",
                )
                .at(Some(k.at)),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: usize, column: usize) -> Option<Location> {
        Some(Location::new(line, column))
    }

    #[test]
    fn flow_and_block_values_are_located() {
        let text = "a:\n  b: [x, \"y\"]\n  c:\n    - k: 1\n      l: {m: n}\n";
        let index = LocationIndex::new(text);
        assert_eq!(index.value("a.b[0]"), at(2, 7));
        assert_eq!(index.value("a.b[1]"), at(2, 10));
        assert_eq!(index.key("a.c"), at(3, 3));
        assert_eq!(index.value("a.c[0].k"), at(4, 10));
        assert_eq!(index.key("a.c[0].l"), at(5, 7));
        assert_eq!(index.value("a.c[0].l.m"), at(5, 14));
        assert_eq!(index.value("a.c[0].missing"), at(4, 7));
    }

    #[test]
    fn a_syntax_error_is_one_located_problem() {
        let Err(p) = parse("a: [\n") else {
            unreachable!("not YAML")
        };
        assert_eq!(p.code, codes::YAML_SYNTAX);
        assert_eq!(p.path, "(document)");
        assert!(p.location.is_some(), "{p}");
    }

    #[test]
    fn a_tab_in_the_indentation_is_named_at_the_tab() {
        for text in ["a:\n\tb: 1\n", "a:\n  b: 1\n \tc: 2\n"] {
            let Err(p) = parse(text) else {
                unreachable!("a tab cannot indent")
            };
            assert_eq!(p.message, TAB_INDENTATION, "{text:?}");
            assert_eq!(p.code, codes::YAML_SYNTAX);
            let line = text.lines().position(|l| l.contains('\t')).unwrap_or(0) + 1;
            let column = text
                .lines()
                .nth(line - 1)
                .and_then(|l| l.find('\t'))
                .unwrap_or(0)
                + 1;
            assert_eq!(p.location, at(line, column), "{text:?}");
        }
        // serde's reader says the same.
        let mut problems = Problems::new();
        assert!(crate::de::yaml_value("a:\n\tb: 1\n", &mut problems).is_none());
        let found = problems.into_vec();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].message, TAB_INDENTATION);
        assert_eq!(found[0].location, at(2, 1));
        // A tab after the indentation, or in a comment, is no problem, and
        // another syntax error keeps the parser's words.
        assert!(parse("a: 1\t# note\n#\tx\n").is_ok());
        let Err(p) = parse("a:\n  - [\n") else {
            unreachable!("not YAML")
        };
        assert_ne!(p.message, TAB_INDENTATION);
    }

    #[test]
    fn the_shape_check_reports_every_mistake() {
        static STR: Shape = Shape::Str;
        static INT: Shape = Shape::Int;
        static ITEM: Shape = Shape::Struct(&[Field::new("name", &STR, true)]);
        static ITEMS: Shape = Shape::List(&ITEM);
        static ROOT: Shape = Shape::Struct(&[
            Field::new("n", &INT, false),
            Field::new("items", &ITEMS, false),
        ]);
        let text = "n: many\nitems:\n  - nme: a\n  - name: b\n    name: c\nextra: 1\n";
        let Ok(Some(root)) = parse(text) else {
            unreachable!("valid YAML")
        };
        let mut out = Problems::new();
        check_shape(&root, &ROOT, "", &mut out);
        let got: Vec<(&str, &str, Option<Location>)> = out
            .iter()
            .map(|p| (p.code, p.path.as_str(), p.location))
            .collect();
        assert_eq!(
            got,
            [
                ("wrong_type", "n", at(1, 4)),
                ("unknown_key", "items[0].nme", at(3, 5)),
                ("missing_key", "items[0].name", at(3, 5)),
                ("duplicate_key", "items[1].name", at(5, 5)),
                ("unknown_key", "extra", at(6, 1)),
            ]
        );
        // A misspelt key gets a guess; a key like no other does not.
        let hints: Vec<Option<&str>> = out.iter().map(|p| p.hint.as_deref()).collect();
        assert_eq!(
            hints,
            [None, Some("did you mean `name`?"), None, None, None]
        );
    }
}

/// `text` without the entries of the top-level block mapping `section`
/// whose keys `keep` refuses, cut out line by line, so what is left is the
/// original text verbatim, and how many entries were cut; `None` when nothing would be cut or the text is
/// not in the one shape this cuts safely (a block mapping at the root and
/// under `section`, each key first on its line, no anchors, tags or
/// complex keys, one document): the caller then reads the whole text.
///
/// The parser streams: no event outlives its step, so a sidecar that needs
/// one entry of a mesh-wide file does not hold the events of every other
/// entry in memory (serde's YAML reader loads the whole document's events
/// first). Entries cut out are only parsed as YAML, never checked further.
///
/// `cut_scalar` sees every scalar of the entries cut out (their keys too),
/// for what the caller still needs of them.
pub fn keep_entries(
    text: &str,
    section: &str,
    keep: impl Fn(&str) -> bool,
    mut cut_scalar: impl FnMut(&str),
) -> Option<(String, usize)> {
    // Byte offset of the start of each line (1-indexed lines: index 0 is line 1).
    if text.contains('\r') && text.replace("\r\n", "").contains('\r') {
        return None;
    }
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let line_start = |line: usize| line_starts.get(line.checked_sub(1)?).copied();
    // The key at `line`/`col` (characters) is the first thing on its line.
    let first_on_line = |line: usize, col: usize| {
        line_start(line).is_some_and(|start| {
            text.get(start..)
                .is_some_and(|rest| rest.chars().take(col).all(|c| c == ' '))
        })
    };
    let is_block = |line: usize, col: usize| {
        line_start(line).is_some_and(|start| {
            text.get(start..)
                .and_then(|rest| rest.chars().nth(col))
                .is_some_and(|c| c != '{' && c != '[')
        })
    };

    let mut parser = Parser::new_from_str(text);
    // Nesting depth: 1 is the root mapping, 2 the section's mapping.
    let mut depth = 0usize;
    let mut documents = 0;
    // At depth 1 and 2: whether the next node is a key.
    let mut root_key_next = true;
    let mut entry_key_next = true;
    let mut in_section = false;
    let mut section_next = false;
    let mut section_seen = false;
    // (first line, kept) of each entry; then the line after the section.
    let mut entries: Vec<(usize, bool)> = Vec::new();
    let mut end_line: Option<usize> = None;
    let mut section_closed = false;
    while let Some(event) = parser.next_event() {
        let (event, span) = event.ok()?;
        let (line, col) = (span.start.line(), span.start.col());
        // Where a node starts, whether it is a key at depth 1 or 2.
        let node_starts = matches!(
            event,
            Event::Scalar(..)
                | Event::Alias(_)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
        );
        if node_starts && depth == 1 {
            if root_key_next {
                let Event::Scalar(key, _, 0, None) = &event else {
                    return None;
                };
                if section_closed && end_line.is_none() {
                    if !first_on_line(line, col) {
                        return None;
                    }
                    end_line = Some(line);
                }
                section_next = key.as_ref() == section;
                if section_next {
                    if section_seen {
                        return None;
                    }
                    section_seen = true;
                }
            }
            root_key_next = !root_key_next;
        } else if node_starts && depth == 2 && in_section {
            if entry_key_next {
                let Event::Scalar(key, _, 0, None) = &event else {
                    return None;
                };
                if !first_on_line(line, col) {
                    return None;
                }
                entries.push((line, keep(key)));
            }
            entry_key_next = !entry_key_next;
        }
        if in_section
            && depth >= 2
            && let Event::Scalar(value, ..) = &event
            && entries.last().is_some_and(|(_, kept)| !kept)
        {
            cut_scalar(value);
        }
        match &event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return None;
                }
            }
            Event::Alias(_) => return None,
            Event::Scalar(_, _, anchor, tag) if *anchor != 0 || tag.is_some() => return None,
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag) => {
                if *anchor != 0 || tag.is_some() {
                    return None;
                }
                let is_map = matches!(event, Event::MappingStart(..));
                depth += 1;
                if depth == 1 && !(is_map && is_block(line, col)) {
                    return None;
                }
                if depth == 2 && section_next {
                    // The section's value: a block mapping of entries.
                    if !(is_map && is_block(line, col)) {
                        return None;
                    }
                    in_section = true;
                    section_next = false;
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if depth == 2 && in_section {
                    in_section = false;
                    section_closed = true;
                }
                depth = depth.checked_sub(1)?;
            }
            _ => {}
        }
    }
    if entries.iter().all(|(_, kept)| *kept) {
        return None;
    }
    let end = match end_line {
        Some(line) => line_start(line)?,
        None => text.len(),
    };
    let mut out = String::new();
    let mut from = 0;
    let mut bounds: Vec<usize> = entries
        .iter()
        .map(|(line, _)| line_start(*line))
        .collect::<Option<_>>()?;
    bounds.push(end);
    for ((_, kept), window) in entries.iter().zip(bounds.windows(2)) {
        let (Some(&start), Some(&stop)) = (window.first(), window.get(1)) else {
            return None;
        };
        if !kept {
            out.push_str(text.get(from..start)?);
            from = stop;
        }
    }
    out.push_str(text.get(from..)?);
    Some((out, entries.iter().filter(|(_, kept)| !kept).count()))
}

#[cfg(test)]
mod keep_entries_tests {
    use super::keep_entries;

    // A comment between entries goes with the entry above it.
    const FILE: &str = "# head\nversion: 1\nworkloads:\n  a:\n    allow: []\n  # after a\n  \"b\":\n    allow:\n      - x: [1, 2]\n  c: {allow: []}\ntrust_domains: [t]\n";

    #[test]
    fn cuts_the_entries_not_kept_line_by_line() {
        assert_eq!(
            keep_entries(FILE, "workloads", |k| k == "b", |_| {}),
            Some(("# head\nversion: 1\nworkloads:\n  \"b\":\n    allow:\n      - x: [1, 2]\ntrust_domains: [t]\n".to_owned(), 2))
        );
        assert_eq!(
            keep_entries(FILE, "workloads", |k| k == "c", |_| {}),
            Some((
                "# head\nversion: 1\nworkloads:\n  c: {allow: []}\ntrust_domains: [t]\n".to_owned(),
                2
            ))
        );
        // The scalars of what is cut, keys too.
        let mut seen = Vec::new();
        keep_entries(FILE, "workloads", |k| k == "b", |s| seen.push(s.to_owned()));
        assert_eq!(seen, ["a", "allow", "c", "allow"]);
        // The section last in the file: cut to the end.
        let last = "version: 1\nworkloads:\n  a: 1\n  b: 2\n";
        assert_eq!(
            keep_entries(last, "workloads", |k| k == "a", |_| {}),
            Some(("version: 1\nworkloads:\n  a: 1\n".to_owned(), 1))
        );
    }

    #[test]
    fn leaves_what_it_cannot_cut_safely_to_the_caller() {
        let keep_b = |k: &str| k == "b";
        // Nothing to cut.
        assert_eq!(keep_entries(FILE, "workloads", |_| true, |_| {}), None);
        // Flow style, anchors, aliases, tags, two documents, a syntax error.
        for text in [
            "workloads: {a: 1, b: 2}\n",
            "{workloads: {a: 1, b: 2}}\n",
            "workloads:\n  a: &x 1\n  b: *x\n",
            "workloads:\n  a: !!str 1\n  b: 2\n",
            "workloads:\n  a: 1\n  b: 2\n---\nworkloads:\n  a: 1\n",
            "workloads:\n  a: [1\n  b: 2\n",
            "workloads:\n  ? [a]\n  : 1\n  b: 2\n",
        ] {
            assert_eq!(
                keep_entries(text, "workloads", keep_b, |_| {}),
                None,
                "{text}"
            );
        }
    }
}
