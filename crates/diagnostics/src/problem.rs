//! [`Problem`] and the [`Problems`] collector.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::ser::SerializeStruct;

use crate::path::{self, is_within};
use crate::yaml::LocationIndex;

/// Stable problem codes shared by every loader. Lints add their own
/// (`shadowed_rule`, `grant_expiring`, …); all are part of the JSON output
/// of `hallpass policy check`.
pub mod codes {
    /// The text is not YAML.
    pub const YAML_SYNTAX: &str = "yaml_syntax";
    /// A key that is not valid where it is written.
    pub const UNKNOWN_KEY: &str = "unknown_key";
    /// A key written twice in one mapping.
    pub const DUPLICATE_KEY: &str = "duplicate_key";
    /// A required key is missing.
    pub const MISSING_KEY: &str = "missing_key";
    /// A list where a string was expected, and the like.
    pub const WRONG_TYPE: &str = "wrong_type";
    /// The value has the right type but is not acceptable.
    pub const INVALID_VALUE: &str = "invalid_value";
}

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file cannot be used.
    Error,
    /// The file can be used, but probably does not say what was meant.
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
        }
    }
}

/// A place in a text file: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// 1-based line.
    pub line: u32,
    /// 1-based column (in characters).
    pub column: u32,
}

impl Location {
    /// The place at `line`, `column` (both 1-based; beyond `u32::MAX`, that).
    pub fn new(line: usize, column: usize) -> Self {
        let narrow = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Self {
            line: narrow(line),
            column: narrow(column),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One problem in a file, with its place.
///
/// Shown as `[FILE:][LINE:COL: ]PATH: MESSAGE[; HINT]`, the form compilers
/// use, so editors and CI annotate the right line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// A stable code for the kind of problem (see [`codes`]).
    pub code: &'static str,
    /// The file the problem is in, when it came from a named file; for a
    /// value set by an environment variable, `$NAME`.
    pub file: Option<Arc<str>>,
    /// Key path, e.g. `trust.bundles[0].trust_domain` or
    /// `workloads."spiffe://…/lab-results".allow[0].from[1]`; `(document)`
    /// for the file as a whole.
    pub path: String,
    /// Where in the file, when known.
    pub location: Option<Location>,
    /// What is wrong.
    pub message: String,
    /// What to do about it, when there is more to say (for example the keys
    /// that are valid here).
    pub hint: Option<String>,
}

impl Problem {
    /// An error with `code` at key path `path`.
    pub fn error(code: &'static str, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            file: None,
            path: path.into(),
            location: None,
            message: message.into(),
            hint: None,
        }
    }

    /// A warning with `code` at key path `path`.
    pub fn warning(
        code: &'static str,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, path, message)
        }
    }

    /// The most common problem: the value at `path` is not acceptable
    /// ([`codes::INVALID_VALUE`]).
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::error(codes::INVALID_VALUE, path, message)
    }

    /// At `location` in the file.
    #[must_use]
    pub fn at(mut self, location: Option<Location>) -> Self {
        self.location = location;
        self
    }

    /// With a hint on what to do.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// In `file`.
    #[must_use]
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(Arc::from(file.into()));
        self
    }

    /// Is this problem about `prefix` or something inside it?
    pub fn is_within(&self, prefix: &str) -> bool {
        is_within(&self.path, prefix)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}:")?;
        }
        if let Some(at) = self.location {
            write!(f, "{at}: ")?;
        } else if self.file.is_some() {
            f.write_str(" ")?;
        }
        write!(f, "{}: {}", self.path, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

/// `{severity, code, [file], path, line, column, message, [hint]}`: the
/// JSON form of `hallpass policy check --format json`.
impl Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = 6 + usize::from(self.file.is_some()) + usize::from(self.hint.is_some());
        let mut s = serializer.serialize_struct("Problem", fields)?;
        s.serialize_field("severity", &self.severity)?;
        s.serialize_field("code", self.code)?;
        if let Some(file) = &self.file {
            s.serialize_field("file", &**file)?;
        }
        s.serialize_field("path", &self.path)?;
        s.serialize_field("line", &self.location.map(|l| l.line))?;
        s.serialize_field("column", &self.location.map(|l| l.column))?;
        s.serialize_field("message", &self.message)?;
        if let Some(hint) = &self.hint {
            s.serialize_field("hint", hint)?;
        }
        s.end()
    }
}

/// Collects every problem found, so that one run reports them all.
///
/// A loader that meets a bad value records it and carries on with a
/// stand-in (the default); [`Problems::replaced`] then marks that part of
/// the file, and checks of the stand-in, which would only invent problems,
/// are not recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    found: Vec<Problem>,
    replaced: Vec<String>,
}

impl Problems {
    /// Nothing found yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record `problem`, unless it is about a part of the file that was
    /// replaced after an earlier problem.
    pub fn push(&mut self, problem: Problem) {
        if !self.replaced.iter().any(|r| problem.is_within(r)) {
            self.found.push(problem);
        }
    }

    /// Record that the value at `path` is not acceptable.
    pub fn invalid(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.push(Problem::new(path, message));
    }

    /// The value of `result`, or `None` after recording its error at `path`.
    pub fn check<T, E: fmt::Display>(&mut self, path: &str, result: Result<T, E>) -> Option<T> {
        result.map_err(|e| self.invalid(path, e.to_string())).ok()
    }

    /// The value at `path` (a key path, or a top-level section) was replaced
    /// by a stand-in after a problem: problems found later at or inside it
    /// are not recorded.
    pub fn replaced(&mut self, path: impl Into<String>) {
        self.replaced.push(path.into());
    }

    /// Was the value at `path`, or a part of it, replaced?
    pub fn was_replaced(&self, path: &str) -> bool {
        self.replaced
            .iter()
            .any(|r| is_within(path, r) || is_within(r, path))
    }

    /// Nothing found.
    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// How many problems were found.
    pub fn len(&self) -> usize {
        self.found.len()
    }

    /// The problems, in the order found.
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.found.iter()
    }

    /// Give every problem without a place or a source of its own its place
    /// in `text` (see [`LocationIndex::locate`]); an unknown or duplicate key
    /// points at the key itself.
    pub fn locate(&mut self, text: &str) {
        if self.found.iter().all(|p| p.location.is_some()) {
            return;
        }
        let index = LocationIndex::for_paths(text, self.found.iter().map(|p| p.path.as_str()));
        for p in &mut self.found {
            // A problem that names its own source (an environment variable)
            // is not in this text.
            if p.location.is_some() || p.file.is_some() || p.path == path::ROOT {
                continue;
            }
            p.location = if p.code == codes::UNKNOWN_KEY || p.code == codes::DUPLICATE_KEY {
                index.key(&p.path)
            } else {
                index.locate(&p.path)
            };
        }
    }

    /// Name `file` as the file of every problem that does not name its own
    /// source.
    pub fn in_file(&mut self, file: &str) {
        let file: Arc<str> = Arc::from(file);
        for p in &mut self.found {
            p.file.get_or_insert_with(|| file.clone());
        }
    }

    /// File order: by place, then key path (problems without a place last).
    pub fn sort(&mut self) {
        self.found.sort_by(|a, b| {
            let place = |p: &Problem| (p.location.is_none(), p.location);
            place(a).cmp(&place(b)).then_with(|| a.path.cmp(&b.path))
        });
    }

    /// The end of reading `text` (from `file`, when it has a name): every
    /// problem gets its place and the file's name, in file order. `Ok` only
    /// when a value was read and nothing was found.
    pub fn finish<T>(
        mut self,
        value: Option<T>,
        text: &str,
        file: Option<&str>,
    ) -> Result<T, Vec<Problem>> {
        self.locate(text);
        if let Some(file) = file {
            self.in_file(file);
        }
        self.sort();
        match value {
            Some(value) if self.is_empty() => Ok(value),
            // A loader that returns nothing has recorded why; this is a
            // backstop, so that no path ends in an empty list of problems.
            _ if self.is_empty() => Err(vec![Problem::new(path::ROOT, "incomplete")]),
            _ => Err(self.found),
        }
    }

    /// `Ok(value)` when nothing was found, else every problem.
    pub fn into_result<T>(self, value: T) -> Result<T, Vec<Problem>> {
        if self.found.is_empty() {
            Ok(value)
        } else {
            Err(self.found)
        }
    }

    /// The problems, in the order found.
    pub fn into_vec(self) -> Vec<Problem> {
        self.found
    }
}

impl From<Vec<Problem>> for Problems {
    fn from(found: Vec<Problem>) -> Self {
        Self {
            found,
            replaced: Vec::new(),
        }
    }
}

impl Extend<Problem> for Problems {
    fn extend<I: IntoIterator<Item = Problem>>(&mut self, iter: I) {
        for p in iter {
            self.push(p);
        }
    }
}

impl IntoIterator for Problems {
    type Item = Problem;
    type IntoIter = std::vec::IntoIter<Problem>;

    fn into_iter(self) -> Self::IntoIter {
        self.found.into_iter()
    }
}

impl<'a> IntoIterator for &'a Problems {
    type Item = &'a Problem;
    type IntoIter = std::slice::Iter<'a, Problem>;

    fn into_iter(self) -> Self::IntoIter {
        self.found.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_compiler_style() {
        let p = Problem::new("authz.listen", "`x` is not host:port");
        assert_eq!(p.to_string(), "authz.listen: `x` is not host:port");
        let p = p.at(Some(Location::new(3, 11)));
        assert_eq!(p.to_string(), "3:11: authz.listen: `x` is not host:port");
        let p = p.in_file("config.yaml").with_hint("e.g. 127.0.0.1:9191");
        assert_eq!(
            p.to_string(),
            "config.yaml:3:11: authz.listen: `x` is not host:port; e.g. 127.0.0.1:9191"
        );
        let p = Problem::new("policy.file", "required").in_file("c.yaml");
        assert_eq!(p.to_string(), "c.yaml: policy.file: required");
    }

    #[test]
    fn json_has_flat_line_and_column_and_only_present_options() {
        let p = Problem::warning("wide_source", "a.b", "too wide").at(Some(Location::new(2, 5)));
        assert_eq!(
            serde_json::to_value(&p).ok(),
            Some(serde_json::json!({
                "severity": "warning", "code": "wide_source", "path": "a.b",
                "line": 2, "column": 5, "message": "too wide"
            }))
        );
        let p = Problem::new("a", "m").in_file("f.yaml").with_hint("h");
        let v = serde_json::to_value(&p).unwrap_or_default();
        assert_eq!(v["file"], "f.yaml");
        assert_eq!(v["hint"], "h");
        assert_eq!(v["line"], serde_json::Value::Null);
    }

    #[test]
    fn problems_inside_a_replaced_value_are_not_recorded() {
        let mut problems = Problems::new();
        problems.invalid("identity.x509_from", "unknown value");
        problems.replaced("identity");
        problems.invalid("identity.xfcc.trusted_proxies", "invented by the default");
        problems.invalid("identity", "invented too");
        problems.invalid("identityx", "another key");
        problems.invalid("trust", "kept");
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["identity.x509_from", "identityx", "trust"]);
        assert!(problems.was_replaced("identity.jwt"));
        assert!(!problems.was_replaced("trust"));
    }

    #[test]
    fn finish_places_names_and_orders_every_problem() {
        let text = "a: 1\nb:\n  c: 2\n";
        let mut problems = Problems::new();
        problems.invalid("b.c", "second");
        problems.push(Problem::new("a", "from elsewhere").in_file("$VAR"));
        problems.invalid("a", "first");
        let Err(found) = problems.finish(Some(()), text, Some("f.yaml")) else {
            unreachable!("problems were found")
        };
        let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "f.yaml:1:4: a: first",
                "f.yaml:3:6: b.c: second",
                "$VAR: a: from elsewhere"
            ]
        );
        assert_eq!(Problems::new().finish(Some(7), text, None), Ok(7));
        let nothing = Problems::new().finish(None::<()>, text, None);
        assert_eq!(nothing.map_err(|p| p.len()), Err(1));
    }

    #[test]
    fn sort_is_file_order_with_unplaced_problems_last() {
        let mut problems = Problems::from(vec![
            Problem::new("z", "env"),
            Problem::new("b", "second").at(Some(Location::new(4, 1))),
            Problem::new("a", "first").at(Some(Location::new(2, 3))),
        ]);
        problems.sort();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["a", "b", "z"]);
    }
}
