//! From YAML text to a [`PolicyDocument`], with every problem located.

use hallpass_diagnostics::{Problems, codes, path};

use crate::Problem;
use crate::document::{PolicyDocument, shape};
use crate::locate::{self, Location, check_shape};

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
    let at = path::from_serde(err.path());
    let inner = err.into_inner();
    let location = inner
        .location()
        .map(|l| Location::new(l.line(), l.column()));
    let mut problems = Problems::new();
    match locate::parse(text) {
        Err(syntax) => {
            // A tab is named at the tab itself; serde's place is elsewhere.
            let at = if syntax.message == hallpass_diagnostics::yaml::TAB_INDENTATION {
                syntax.location
            } else {
                location.or(syntax.location)
            };
            problems.push((*syntax).at(at));
        }
        Ok(None) => problems.push(
            Problem::error(
                codes::MISSING_KEY,
                path::ROOT,
                "the policy is empty; it needs at least `version: 1`",
            )
            .at(Some(Location::new(1, 1))),
        ),
        Ok(Some(root)) => check_shape(&root, &shape::POLICY, "", &mut problems),
    }
    if problems.is_empty() {
        problems.push(Problem::new(path::display_path(&at), inner.to_string()).at(location));
    }
    problems.sort();
    Err(problems.into_vec())
}

/// Fill in the line and column of problems found after parsing (compile
/// errors know their key path only).
pub fn locate_problems(problems: Vec<Problem>, text: &str) -> Vec<Problem> {
    let mut problems = Problems::from(problems);
    problems.locate(text);
    problems.into_vec()
}
