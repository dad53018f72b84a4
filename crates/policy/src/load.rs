//! From YAML text to a [`PolicyDocument`], with every problem located.

use crate::Problem;
use crate::document::{PolicyDocument, shape};
use crate::locate::{self, LocationIndex, check_shape, child_path, item_path};

/// Parse policy YAML into the document model.
///
/// serde reads the file first (the fast path of every reload). When it fails,
/// the located shape check walks the whole file and reports every unknown,
/// duplicate or missing key and every wrong type, each with its key path and
/// line:column; serde's own error is the fallback for anything the shape
/// check does not model.
pub fn load_document(text: &str) -> Result<PolicyDocument, Vec<Problem>> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    let err = match serde_path_to_error::deserialize::<_, PolicyDocument>(de) {
        Ok(doc) => return Ok(doc),
        Err(err) => err,
    };
    let path = serde_path(err.path());
    let inner = err.into_inner();
    let location = inner.location().map(|l| (l.line(), l.column()));
    let mut problems = Vec::new();
    match locate::parse(text) {
        Err((message, at)) => problems.push(Problem {
            code: "yaml_syntax",
            path: "(document)".into(),
            location: location.or(Some(at)),
            message: format!("not valid YAML: {message}"),
        }),
        Ok(None) => problems.push(Problem {
            code: "missing_key",
            path: "(document)".into(),
            location: Some((1, 1)),
            message: "the policy is empty; it needs at least `version: 1`".into(),
        }),
        Ok(Some(root)) => check_shape(&root, &shape::POLICY, "", &mut problems),
    }
    if problems.is_empty() {
        problems.push(Problem {
            code: "invalid_value",
            path: locate::display_path(&path),
            location,
            message: inner.to_string(),
        });
    }
    problems.sort_by_key(|p| p.location);
    Err(problems)
}

/// Fill in the line and column of problems found after parsing (compile
/// errors know their key path only).
pub fn locate_problems(mut problems: Vec<Problem>, text: &str) -> Vec<Problem> {
    let index = LocationIndex::new(text);
    for p in &mut problems {
        if p.location.is_none() {
            p.location = locate_path(&index, &p.path);
        }
    }
    problems
}

/// A problem about a quoted key (a destination ID) points at the key; any
/// other at the value.
pub(crate) fn locate_path(index: &LocationIndex, path: &str) -> Option<(usize, usize)> {
    if path.ends_with('"') {
        index.key(path)
    } else {
        index.value(path)
    }
}

fn serde_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    path.iter()
        .fold(String::new(), |out, segment| match segment {
            Segment::Seq { index } => item_path(&out, *index),
            Segment::Map { key } => child_path(&out, key),
            Segment::Enum { variant } => child_path(&out, variant),
            Segment::Unknown => child_path(&out, "?"),
        })
}
