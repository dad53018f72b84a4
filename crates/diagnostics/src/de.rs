//! serde deserialization that reports every problem, not the first.
//!
//! The models keep `#[serde(deny_unknown_fields)]`, so nothing that reads
//! them directly can skip a misspelt key. serde stops at its first error;
//! [`from_value`] records it with its key path, takes the offending key out
//! of the value and asks again, until the value deserializes. Each round
//! removes at least one key, so this ends; it is bounded anyway.
//!
//! The kind of problem comes from serde's own messages (`unknown field`,
//! `missing field`, `unknown variant`, `invalid type`), whose wording serde
//! has kept since 1.0; the tests below pin it, so a change shows up as a
//! failing test rather than a vaguer message. The valid keys serde lists
//! become the problem's hint.

use serde::de::DeserializeOwned;
use serde_yaml_ng::{Mapping, Value};

use crate::path::{ROOT, Step as Segment, child_path};
use crate::{Location, Problem, Problems, codes};

/// At most this many problems are reported from one value.
const MAX_ROUNDS: usize = 64;

/// Parse YAML text into a value. A syntax error is recorded with its
/// place, and gives `None`. An empty document is an empty mapping.
pub fn yaml_value(text: &str, problems: &mut Problems) -> Option<Value> {
    match serde_yaml_ng::from_str::<Value>(text) {
        Ok(Value::Null) => Some(Value::Mapping(Mapping::new())),
        Ok(value) => Some(value),
        Err(e) => {
            let at = e.location().map(|l| Location::new(l.line(), l.column()));
            problems.push(crate::yaml::syntax_problem(
                text,
                format!("not valid YAML: {e}"),
                at,
            ));
            None
        }
    }
}

/// Remove every mapping entry whose value is null (`key:` or `key: ~`),
/// at any depth: in a config file an empty key means the same as an absent
/// one (a section whose keys are all commented out, for example).
pub fn drop_nulls(value: &mut Value) {
    match value {
        Value::Mapping(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(drop_nulls);
        }
        Value::Sequence(items) => items.iter_mut().for_each(drop_nulls),
        Value::Tagged(t) => drop_nulls(&mut t.value),
        _ => {}
    }
}

/// Deserialize `T` from `value`, recording every problem serde finds, each
/// with its key path: every unknown key (with the valid keys as a hint),
/// every value of the wrong type, every missing required key.
///
/// `Some(T)` when the value deserializes once its unknown keys are dropped
/// and its bad values replaced by defaults; the problems are recorded all
/// the same, and each top-level key whose content was replaced is marked
/// [`Problems::replaced`], so later checks of the stand-in invent nothing.
/// `None` when no such stand-in exists (the document is not a mapping, or a
/// required key at the top is missing).
pub fn from_value<T: DeserializeOwned>(mut value: Value, problems: &mut Problems) -> Option<T> {
    if value.is_null() {
        value = Value::Mapping(Mapping::new());
    }
    let mut found: Vec<Problem> = Vec::new();
    let mut replaced = Vec::new();
    // Key paths taken out as stand-ins: a required key among them is
    // missing because of this function, not because of the file.
    let mut removed: Vec<String> = Vec::new();
    let mut result = None;
    for _ in 0..MAX_ROUNDS {
        let error = match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(v) => {
                result = Some(v);
                break;
            }
            Err(e) => e,
        };
        let at: Vec<Segment> = error.path().iter().map(Segment::from).collect();
        let found_here = classify(at, &error.into_inner().to_string());
        let problem = found_here.problem;
        if !(problem.code == codes::MISSING_KEY && removed.contains(&problem.path)) {
            found.push(problem);
        }
        match remove(&mut value, &found_here.remove) {
            Some((top, path)) if found_here.replaces => {
                replaced.push(top);
                removed.push(path);
            }
            Some(_) => {}
            None => break,
        }
    }
    if result.is_none() && found.len() >= MAX_ROUNDS {
        found.push(Problem::error(
            codes::INVALID_VALUE,
            ROOT,
            format!("more than {MAX_ROUNDS} problems; fix these and check again"),
        ));
    }
    // Every problem serde found is recorded before anything is marked
    // replaced: two bad values in one section are both reported.
    problems.extend(found);
    for r in replaced {
        problems.replaced(r);
    }
    result
}

fn path_of(steps: &[Segment]) -> String {
    crate::path::display_path(&crate::path::join(steps))
}

/// A problem, and what to take out of the value to get past it.
struct Found {
    problem: Problem,
    remove: Vec<Segment>,
    /// Taking it out puts a default in place of what was written.
    replaces: bool,
}

fn classify(mut at: Vec<Segment>, message: &str) -> Found {
    if let Some((key, valid)) = named_and_expected(message, "unknown field `") {
        // serde_path_to_error has usually recorded the key already.
        if at.last() != Some(&Segment::Key(key.clone())) {
            at.push(Segment::Key(key));
        }
        let problem = Problem::error(codes::UNKNOWN_KEY, path_of(&at), "unknown key");
        let problem = match valid {
            Some(keys) => problem.with_hint(valid_hint(&key_name(&at), &keys, "keys")),
            None => problem.with_hint("this mapping takes no keys"),
        };
        return Found {
            problem,
            remove: at,
            replaces: false,
        };
    }
    if let Some(key) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        let container = at.clone();
        at.push(Segment::Key(key.to_owned()));
        return Found {
            problem: Problem::error(codes::MISSING_KEY, path_of(&at), "required, but missing"),
            remove: container,
            replaces: true,
        };
    }
    let problem = if let Some((value, valid)) = named_and_expected(message, "unknown variant `") {
        let problem = Problem::error(
            codes::INVALID_VALUE,
            path_of(&at),
            format!("unknown value `{value}`"),
        );
        match valid {
            Some(values) => problem.with_hint(valid_hint(&value, &values, "values")),
            None => problem,
        }
    } else if message.starts_with("invalid type: ") {
        Problem::error(codes::WRONG_TYPE, path_of(&at), message)
    } else if message.starts_with("duplicate field `") {
        Problem::error(codes::DUPLICATE_KEY, path_of(&at), message)
    } else {
        Problem::error(codes::INVALID_VALUE, path_of(&at), message)
    };
    Found {
        problem,
        remove: at,
        replaces: true,
    }
}

/// The last key of a path.
fn key_name(at: &[Segment]) -> String {
    match at.last() {
        Some(Segment::Key(k)) => k.clone(),
        _ => String::new(),
    }
}

/// `did you mean `x`? valid keys are: a, b, x` (the guess only when one is
/// close).
fn valid_hint(written: &str, valid: &[String], what: &str) -> String {
    let list = format!("valid {what} are: {}", valid.join(", "));
    match crate::similar::closest(written, valid.iter().map(String::as_str)) {
        Some(near) => format!("did you mean `{near}`? {list}"),
        None => list,
    }
}

/// From ``<prefix>NAME`, expected `a`, `b`…`` (serde's wording for unknown
/// fields and variants): the name, and the expected names (`None` for
/// "there are no fields/variants").
fn named_and_expected(message: &str, prefix: &str) -> Option<(String, Option<Vec<String>>)> {
    let rest = message.strip_prefix(prefix)?;
    if let Some(end) = rest.rfind("`, expected ") {
        let name = rest.get(..end)?;
        let expected = rest.get(end + "`, expected ".len()..)?;
        // `a`, `a` or `b`, one of `a`, `b`, `c`: the names are the odd
        // pieces between backquotes.
        let names = expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect();
        return Some((name.to_owned(), Some(names)));
    }
    let end = rest.rfind("`, there are no ")?;
    Some((rest.get(..end)?.to_owned(), None))
}

/// Take the key at `segments` out of `root`; when it is not there (a
/// missing key) or is a list item (removing it would renumber its
/// siblings), take out the nearest enclosing key instead. Returns the
/// top-level key the removal was under and the key path removed, or `None`
/// when nothing could be removed.
fn remove(root: &mut Value, segments: &[Segment]) -> Option<(String, String)> {
    let top = match segments.first() {
        Some(Segment::Key(k)) => child_path("", k),
        _ => ROOT.to_owned(),
    };
    for end in (1..=segments.len()).rev() {
        let (Some(Segment::Key(key)), Some(parent)) =
            (segments.get(end - 1), segments.get(..end - 1))
        else {
            continue;
        };
        if let Some(Value::Mapping(m)) = descend(root, parent)
            && remove_key(m, key)
        {
            return Some((top, path_of(segments.get(..end)?)));
        }
    }
    None
}

fn descend<'a>(mut value: &'a mut Value, segments: &[Segment]) -> Option<&'a mut Value> {
    for s in segments {
        value = match (s, value) {
            (Segment::Key(k), Value::Mapping(m)) => {
                m.iter_mut().find(|(key, _)| key_text(key) == *k)?.1
            }
            (Segment::Index(i), Value::Sequence(items)) => items.get_mut(*i)?,
            (_, Value::Tagged(t)) => descend(&mut t.value, std::slice::from_ref(s))?,
            _ => return None,
        };
    }
    Some(value)
}

fn remove_key(m: &mut Mapping, key: &str) -> bool {
    let before = m.len();
    m.retain(|k, _| key_text(k) != key);
    m.len() < before
}

/// A mapping key as serde_path_to_error shows it.
fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        _ => "?".into(),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Root {
        listen: String,
        section: Section,
        items: Vec<Item>,
        mode: Mode,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Section {
        seconds: u64,
        flag: bool,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Item {
        name: String,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        #[default]
        Enforce,
        Audit,
    }

    fn parse(text: &str) -> (Option<Root>, Vec<Problem>) {
        let mut problems = Problems::new();
        let value = yaml_value(text, &mut problems);
        let root = value.and_then(|v| from_value::<Root>(v, &mut problems));
        (root, problems.into_vec())
    }

    #[test]
    fn every_unknown_key_and_bad_value_is_reported_with_its_path() {
        let (root, found) = parse(
            "listen: a\nlisen: b\nsection:\n  seconds: many\n  flag: maybe\n  flg: 1\nitems:\n  - name: x\n  - nme: y\nmode: permissive\n",
        );
        let codes_paths: Vec<(&str, &str)> =
            found.iter().map(|p| (p.code, p.path.as_str())).collect();
        // serde's order: a key's problem when it is read.
        assert_eq!(
            codes_paths,
            [
                ("unknown_key", "lisen"),
                ("wrong_type", "section.seconds"),
                ("wrong_type", "section.flag"),
                ("unknown_key", "section.flg"),
                ("unknown_key", "items[1].nme"),
                ("missing_key", "items[1].name"),
                ("invalid_value", "mode"),
            ],
            "{found:#?}"
        );
        let hint = |path: &str| {
            found
                .iter()
                .find(|p| p.path == path)
                .and_then(|p| p.hint.clone())
        };
        assert_eq!(
            hint("lisen").as_deref(),
            Some("did you mean `listen`? valid keys are: listen, section, items, mode")
        );
        assert_eq!(
            hint("section.flg").as_deref(),
            Some("did you mean `flag`? valid keys are: seconds, flag")
        );
        assert_eq!(
            hint("mode").as_deref(),
            Some("valid values are: enforce, audit")
        );
        // The stand-in: unknown keys dropped, bad values replaced by defaults.
        let root = root.unwrap_or_default();
        assert_eq!(root.listen, "a");
        assert_eq!(root.section, Section::default());
        assert_eq!(root.items, []);
    }

    #[test]
    fn replaced_sections_silence_later_checks_but_unknown_keys_do_not() {
        let mut problems = Problems::new();
        let value = yaml_value(
            "section: {seconds: x}\nlisten: a\nlistn: b\n",
            &mut problems,
        );
        let _ = value.and_then(|v| from_value::<Root>(v, &mut problems));
        problems.invalid("section.flag", "invented by the stand-in");
        problems.invalid("listen", "a real check");
        let paths: Vec<String> = problems.into_iter().map(|p| p.path).collect();
        assert_eq!(paths, ["section.seconds", "listn", "listen"]);
    }

    #[test]
    fn a_document_that_is_not_a_mapping_is_one_problem() {
        let (root, found) = parse("- a\n- b\n");
        assert!(root.is_none());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].code, found[0].path.as_str()),
            ("wrong_type", "(document)")
        );
    }

    #[test]
    fn empty_text_is_the_default_and_bad_yaml_is_located() {
        assert_eq!(parse(""), (Some(Root::default()), vec![]));
        let mut problems = Problems::new();
        assert!(yaml_value("a: [\n", &mut problems).is_none());
        let p = problems.into_vec();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].code, "yaml_syntax");
        assert!(p[0].location.is_some());
    }

    #[test]
    fn nulls_mean_absent() {
        let mut problems = Problems::new();
        let mut value =
            yaml_value("listen:\nsection:\n  seconds: ~\n", &mut problems).unwrap_or(Value::Null);
        drop_nulls(&mut value);
        assert_eq!(
            from_value::<Root>(value, &mut problems),
            Some(Root::default())
        );
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn serde_wording_is_what_the_classifier_expects() {
        // If serde ever words these differently, this fails first.
        let one = named_and_expected("unknown field `x`, expected `a`", "unknown field `");
        assert_eq!(one, Some(("x".into(), Some(vec!["a".into()]))));
        let two = named_and_expected("unknown field `x`, expected `a` or `b`", "unknown field `");
        assert_eq!(two, Some(("x".into(), Some(vec!["a".into(), "b".into()]))));
        let none = named_and_expected("unknown field `x`, there are no fields", "unknown field `");
        assert_eq!(none, Some(("x".into(), None)));
    }

    #[test]
    fn there_is_a_bound() {
        let text: String = (0..100).map(|i| format!("k{i}: 1\n")).collect();
        let (_, found) = parse(&text);
        assert_eq!(found.len(), MAX_ROUNDS + 1);
        assert_eq!(found[MAX_ROUNDS].path, "(document)");
    }
}
