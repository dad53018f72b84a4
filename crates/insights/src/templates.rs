//! Route templates inferred from concrete request paths.
//!
//! A segment that looks like an identifier (a number, a UUID, a long hex
//! string, an MRN-like token such as `MRN-00417` or `p-1001`, a date, an
//! e-mail address) always becomes a parameter: an identifier must never end
//! up as a literal in a policy file. Paths that differ in one segment only,
//! with more than `max_literals` distinct values there, get that segment
//! turned into a parameter too. Parameters are named `{id}`, `{id2}`, … in
//! the order they appear.

use std::collections::{BTreeMap, BTreeSet};

/// One segment of an inferred template.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Seg {
    /// This exact text.
    Literal(String),
    /// Any one segment.
    Param,
}

/// Does `segment` look like an identifier rather than a fixed name?
pub fn is_id_like(segment: &str) -> bool {
    let s = segment;
    if s.is_empty() {
        return false;
    }
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    let letters = s.bytes().filter(u8::is_ascii_alphabetic).count();
    let all = |f: fn(u8) -> bool| s.bytes().all(f);
    // Numbers; dates and other digit groups (`2026-01-01`).
    if all(|b| b.is_ascii_digit())
        || (digits >= 4 && all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'_' | b':')))
    {
        return true;
    }
    // UUIDs, and long hex strings (hashes, object ids).
    let uuid = s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    if uuid || (s.len() >= 16 && digits > 0 && all(|b| b.is_ascii_hexdigit())) {
        return true;
    }
    // E-mail addresses are personal data, whatever else they are.
    if s.contains('@') {
        return true;
    }
    // MRN-like: letters and digits (and `-`/`_`), but not versions like
    // `v1`, `v2beta1`, `V10`.
    if digits == 0 || letters == 0 || !all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return false;
    }
    if is_version(s) {
        return false;
    }
    s.contains(['-', '_']) || digits >= 4 || (s.len() >= 8 && digits >= 3)
}

/// `v1`, `v2`, `v2beta1`, `v10alpha`: API versions, kept literal.
fn is_version(s: &str) -> bool {
    let Some(rest) = s.strip_prefix(['v', 'V']) else {
        return false;
    };
    let num = rest.bytes().take_while(u8::is_ascii_digit).count();
    if num == 0 || num > 2 {
        return false;
    }
    let tail = &rest[num..];
    let word = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
    let tail_digits = &tail[word..];
    tail_digits.len() <= 2 && tail_digits.bytes().all(|b| b.is_ascii_digit())
}

/// Can `segment` be written literally in a route template?
fn literal_ok(segment: &str) -> bool {
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && !segment.contains(['{', '}', '*', '?', '#', '%', '\\', '/'])
        && !segment.chars().any(char::is_control)
        && !segment.contains(char::is_whitespace)
}

fn classify(segment: &str) -> Seg {
    if is_id_like(segment) || !literal_ok(segment) {
        Seg::Param
    } else {
        Seg::Literal(segment.to_owned())
    }
}

/// Templates covering every path (each a list of decoded segments).
pub fn infer<S: AsRef<str>>(paths: &[Vec<S>], max_literals: usize) -> Vec<Vec<Seg>> {
    let mut templates: BTreeSet<Vec<Seg>> = paths
        .iter()
        .map(|p| p.iter().map(|s| classify(s.as_ref())).collect())
        .collect();
    // Collapse one varying literal position at a time until nothing changes.
    loop {
        let mut changed = false;
        let lengths: BTreeSet<usize> = templates.iter().map(Vec::len).collect();
        'positions: for len in lengths {
            for pos in 0..len {
                // Group same-length templates by everything but `pos`.
                let mut groups: BTreeMap<Vec<Seg>, BTreeSet<String>> = BTreeMap::new();
                for t in templates.iter().filter(|t| t.len() == len) {
                    if let Some((rest, text)) = generalize(t, pos) {
                        groups.entry(rest).or_default().insert(text.to_owned());
                    }
                }
                for (rest, values) in groups {
                    if values.len() > max_literals {
                        templates.retain(|t| {
                            t.len() != len || generalize(t, pos).is_none_or(|(r, _)| r != rest)
                        });
                        templates.insert(rest);
                        changed = true;
                        break 'positions;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    templates.into_iter().collect()
}

/// `template` with the literal at `pos` made a parameter, and that literal;
/// `None` when there is no literal at `pos`.
fn generalize(template: &[Seg], pos: usize) -> Option<(Vec<Seg>, &str)> {
    let Some(Seg::Literal(text)) = template.get(pos) else {
        return None;
    };
    let mut rest = template.to_vec();
    if let Some(slot) = rest.get_mut(pos) {
        *slot = Seg::Param;
    }
    Some((rest, text))
}

/// The template as policy text: `/patients/{id}/results/{id2}`.
pub fn render(template: &[Seg]) -> String {
    if template.is_empty() {
        return "/".into();
    }
    let mut out = String::new();
    let mut n = 0;
    for seg in template {
        out.push('/');
        match seg {
            Seg::Literal(text) => out.push_str(text),
            Seg::Param => {
                n += 1;
                if n == 1 {
                    out.push_str("{id}");
                } else {
                    out.push_str(&format!("{{id{n}}}"));
                }
            }
        }
    }
    out
}

/// A gRPC call's path, `/package.Service/Method`, as the policy's
/// `package.Service/Method` pattern; `None` for anything else. gRPC calls are
/// POSTs to exactly two segments: a dotted service name, then a method name
/// in upper camel case.
pub fn grpc_method(method: &str, segments: &[impl AsRef<str>]) -> Option<String> {
    let [service, name] = segments else {
        return None;
    };
    let (service, name) = (service.as_ref(), name.as_ref());
    let ident = |s: &str| {
        !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && s.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
    };
    let dotted = service.contains('.') && service.split('.').all(ident);
    let upper = name.bytes().next().is_some_and(|b| b.is_ascii_uppercase());
    (method == "POST" && dotted && upper && ident(name)).then(|| format!("{service}/{name}"))
}
