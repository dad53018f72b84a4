//! Key paths: how a problem names the value it is about.
//!
//! Keys are joined with `.`, list items are `[index]`, and a key holding
//! anything but letters, digits, `_` and `-` is quoted:
//! `workloads."spiffe://hospital.example/ns/a/sa/b".allow[0].from[1]`. The
//! whole file is [`ROOT`].

/// The path shown for the file as a whole.
pub const ROOT: &str = "(document)";

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
    if parent.is_empty() || parent == ROOT {
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
pub fn parent_path(path: &str) -> Option<&str> {
    if path.ends_with(']') {
        return path.rfind('[').and_then(|i| path.get(..i));
    }
    if let Some(inner) = path.strip_suffix('"') {
        let open = inner
            .rfind(".\"")
            .or_else(|| inner.starts_with('"').then_some(0))?;
        return if open > 0 { path.get(..open) } else { None };
    }
    path.rfind('.').and_then(|i| path.get(..i))
}

/// The root (`""`) is shown as [`ROOT`].
pub fn display_path(path: &str) -> String {
    if path.is_empty() {
        ROOT.to_owned()
    } else {
        path.to_owned()
    }
}

/// Is `path` the same as `prefix`, or inside it (`prefix.key…`,
/// `prefix[i]…`)? Everything is inside the root.
pub fn is_within(path: &str, prefix: &str) -> bool {
    if prefix.is_empty() || prefix == ROOT {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('.') || rest.starts_with('['),
        None => false,
    }
}

/// The key path serde_path_to_error recorded, in this module's style (`""`
/// for the root).
pub fn from_serde(path: &serde_path_to_error::Path) -> String {
    join(&path.iter().map(Step::from).collect::<Vec<_>>())
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// A mapping key.
    Key(String),
    /// A list item.
    Index(usize),
}

impl From<&serde_path_to_error::Segment> for Step {
    fn from(s: &serde_path_to_error::Segment) -> Self {
        use serde_path_to_error::Segment;
        match s {
            Segment::Seq { index } => Self::Index(*index),
            Segment::Map { key } => Self::Key(key.clone()),
            Segment::Enum { variant } => Self::Key(variant.clone()),
            Segment::Unknown => Self::Key("?".into()),
        }
    }
}

/// The key path of `steps` (`""` for the root).
pub(crate) fn join(steps: &[Step]) -> String {
    steps.iter().fold(String::new(), |out, s| match s {
        Step::Key(k) => child_path(&out, k),
        Step::Index(i) => item_path(&out, *i),
    })
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
    fn children_are_quoted_when_not_plain() {
        assert_eq!(child_path("", "authz"), "authz");
        assert_eq!(child_path(ROOT, "authz"), "authz");
        assert_eq!(child_path("a", "b_c-1"), "a.b_c-1");
        assert_eq!(child_path("w", "spiffe://x/y"), "w.\"spiffe://x/y\"");
        assert_eq!(child_path("w", "say \"hi\""), "w.\"say \\\"hi\\\"\"");
        assert_eq!(child_path("w", ""), "w.\"\"");
        assert_eq!(item_path("trust.bundles", 2), "trust.bundles[2]");
    }

    #[test]
    fn within_means_the_same_value_or_inside_it() {
        assert!(is_within("identity", "identity"));
        assert!(is_within("identity.jwt.header", "identity"));
        assert!(is_within("trust.bundles[1].x509", "trust.bundles"));
        assert!(!is_within("identityx", "identity"));
        assert!(!is_within("trust", "trust.bundles"));
        assert!(is_within("anything", ROOT));
    }
}
