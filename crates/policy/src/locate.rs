//! Where things are in a YAML file: a located tree, a key path → line:column
//! index, and a shape check that reports every unknown key, duplicate key,
//! missing key and wrong type at once (serde stops at the first).
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

use crate::Problem;

/// 1-based line and column.
pub type Location = (usize, usize);

/// A YAML value with its place.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) value: Value,
    pub(crate) at: Location,
}

#[derive(Debug, Clone)]
pub(crate) enum Value {
    Scalar { text: String, plain: bool },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
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
pub(crate) fn parse(text: &str) -> Result<Option<Node>, (String, Location)> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| {
            (
                e.info().to_owned(),
                (e.marker().line(), e.marker().col() + 1),
            )
        })?;
        let at = (span.start.line(), span.start.col() + 1);
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

/// The key path of `key` below `parent`: `parent.key`, or `parent."key"`
/// when the key holds anything but letters, digits, `_` and `-`.
pub fn child_path(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if plain {
        key.to_owned()
    } else {
        format!("\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""))
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

/// The path of item `index` of the list at `parent`.
pub fn item_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// The parent of a key path, `None` for a top-level key.
fn parent_path(path: &str) -> Option<&str> {
    if path.ends_with(']') {
        return path.rfind('[').map(|i| &path[..i]);
    }
    if let Some(inner) = path.strip_suffix('"') {
        let open = inner
            .rfind(".\"")
            .or_else(|| inner.starts_with('"').then_some(0))?;
        return (open > 0).then(|| &path[..open]);
    }
    path.rfind('.').map(|i| &path[..i])
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
        let mut index = Self::default();
        if let Ok(Some(root)) = parse(text) {
            index.add("", &root);
        }
        index
    }

    fn add(&mut self, path: &str, node: &Node) {
        self.values.insert(path.to_owned(), node.at);
        match &node.value {
            Value::Scalar { .. } => {}
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.add(&item_path(path, i), item);
                }
            }
            Value::Map(entries) => {
                for (k, v) in entries {
                    let Value::Scalar { text, .. } = &k.value else {
                        continue;
                    };
                    let p = child_path(path, text);
                    // The first of duplicate keys keeps its place.
                    if self.keys.contains_key(&p) {
                        continue;
                    }
                    self.keys.insert(p.clone(), k.at);
                    self.add(&p, v);
                }
            }
        }
    }

    /// Where the value at `path` starts; for a path that is not in the file
    /// (a missing key), where its nearest enclosing value starts.
    pub fn value(&self, path: &str) -> Option<Location> {
        let mut p = path;
        loop {
            if let Some(at) = self.values.get(p) {
                return Some(*at);
            }
            p = parent_path(p)?;
        }
    }

    /// Where the key of `path` is written (or its value, for a list item).
    pub fn key(&self, path: &str) -> Option<Location> {
        self.keys.get(path).copied().or_else(|| self.value(path))
    }
}

/// The expected shape of a YAML value.
#[derive(Debug)]
pub(crate) enum Shape {
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
pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) shape: &'static Shape,
    pub(crate) required: bool,
}

impl Shape {
    fn expected(&self) -> String {
        match self {
            Self::Int => "a whole number".into(),
            Self::Str => "a string".into(),
            Self::Bool => "true or false".into(),
            Self::OneOf(words) => format!(
                "one of {}",
                words
                    .iter()
                    .map(|w| format!("`{w}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
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

/// Check `node` against `shape`, pushing one problem per mistake found.
/// Lenient where serde is (any scalar is a string, an optional key may be
/// empty), so that what passes here fails in serde only for reasons this
/// does not model.
pub(crate) fn check_shape(node: &Node, shape: &Shape, path: &str, out: &mut Vec<Problem>) {
    let wrong = |out: &mut Vec<Problem>| {
        out.push(Problem {
            code: "wrong_type",
            path: display_path(path),
            location: Some(node.at),
            message: format!("expected {}, found {}", shape.expected(), node.describe()),
        });
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
                    out.push(Problem {
                        code: "duplicate_key",
                        path: child_path(path, key),
                        location: Some(k.at),
                        message: format!("duplicate key `{key}`"),
                    });
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
                    let names: Vec<String> =
                        fields.iter().map(|f| format!("`{}`", f.name)).collect();
                    out.push(Problem {
                        code: "unknown_key",
                        path: at,
                        location: Some(k.at),
                        message: format!(
                            "unknown field `{key}`, expected one of {}",
                            names.join(", ")
                        ),
                    });
                    continue;
                };
                if seen.contains(&key) {
                    out.push(Problem {
                        code: "duplicate_key",
                        path: at,
                        location: Some(k.at),
                        message: format!("duplicate field `{key}`"),
                    });
                    continue;
                }
                seen.push(key);
                if !v.is_null() || field.required {
                    check_shape(v, field.shape, &at, out);
                }
            }
            for field in fields.iter().filter(|f| f.required) {
                if !seen.contains(&field.name) {
                    out.push(Problem {
                        code: "missing_key",
                        path: child_path(path, field.name),
                        location: Some(node.at),
                        message: format!("missing field `{}`", field.name),
                    });
                }
            }
        }
        _ => wrong(out),
    }
}

fn scalar_key<'a>(k: &'a Node, path: &str, out: &mut Vec<Problem>) -> Option<&'a str> {
    match &k.value {
        Value::Scalar { text, .. } => Some(text),
        _ => {
            out.push(Problem {
                code: "wrong_type",
                path: display_path(path),
                location: Some(k.at),
                message: "keys must be strings".into(),
            });
            None
        }
    }
}

/// The root is shown as `(document)`.
pub(crate) fn display_path(path: &str) -> String {
    if path.is_empty() {
        "(document)".into()
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_paths() {
        assert_eq!(parent_path("a.b[3]"), Some("a.b"));
        assert_eq!(parent_path("a.b"), Some("a"));
        assert_eq!(parent_path("a"), None);
        assert_eq!(parent_path("workloads.\"spiffe://x/y\""), Some("workloads"));
        assert_eq!(parent_path("\"spiffe://x/y\""), None);
        assert_eq!(
            parent_path("workloads.\"spiffe://x/y\".allow"),
            Some("workloads.\"spiffe://x/y\"")
        );
    }

    #[test]
    fn flow_and_block_values_are_located() {
        let text = "a:\n  b: [x, \"y\"]\n  c:\n    - k: 1\n      l: {m: n}\n";
        let index = LocationIndex::new(text);
        assert_eq!(index.value("a.b[0]"), Some((2, 7)));
        assert_eq!(index.value("a.b[1]"), Some((2, 10)));
        assert_eq!(index.key("a.c"), Some((3, 3)));
        assert_eq!(index.value("a.c[0].k"), Some((4, 10)));
        assert_eq!(index.key("a.c[0].l"), Some((5, 7)));
        assert_eq!(index.value("a.c[0].l.m"), Some((5, 14)));
        assert_eq!(index.value("a.c[0].missing"), Some((4, 7)));
    }
}
