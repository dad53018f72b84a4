//! Request path normalisation: what is safe to match, and what is ambiguous.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

/// Longest request path considered (bytes, before the query).
const MAX_PATH_LEN: usize = 8 * 1024;
/// Most segments considered.
const MAX_SEGMENTS: usize = 128;

/// A request path that is safe to match: query stripped, segments decoded,
/// and free of anything that two parsers could read differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedPath<'a> {
    segments: Vec<Cow<'a, str>>,
}

impl NormalizedPath<'_> {
    /// The decoded segments; `/` has none.
    pub fn segments(&self) -> &[Cow<'_, str>] {
        &self.segments
    }
}

/// Normalise a raw `:path`, or `None` if it is ambiguous.
///
/// Ambiguous means: not starting with `/`; empty, `.` or `..` segments (also
/// when percent-encoded, and also before a `;` path parameter, which servlet
/// containers strip: `/..;/admin` is `/../admin` to Tomcat); an encoded `/`
/// or `\`; a raw `\`; bad percent escapes; invalid UTF-8; or over the length
/// limits. hallpass refuses these rather than guess how the application will
/// read them.
pub fn normalize_path(raw: &str) -> Option<NormalizedPath<'_>> {
    let end = raw.find(['?', '#']).unwrap_or(raw.len());
    let path = &raw[..end];
    if path.len() > MAX_PATH_LEN || path.contains('\\') {
        return None;
    }
    let rest = path.strip_prefix('/')?;
    let mut segments = Vec::new();
    if rest.is_empty() {
        return Some(NormalizedPath { segments });
    }
    for seg in rest.split('/') {
        if segments.len() == MAX_SEGMENTS {
            return None;
        }
        let decoded: Cow<'_, str> = if seg.contains('%') {
            if !valid_escapes(seg) {
                return None;
            }
            let bytes: Cow<'_, [u8]> = percent_decode_str(seg).into();
            let text = String::from_utf8(bytes.into_owned()).ok()?;
            if text.contains(['/', '\\']) {
                return None;
            }
            Cow::Owned(text)
        } else {
            Cow::Borrowed(seg)
        };
        let name = decoded.split(';').next().unwrap_or_default();
        if name.is_empty() || name == "." || name == ".." {
            return None;
        }
        segments.push(decoded);
    }
    Some(NormalizedPath { segments })
}

/// Every `%` is followed by two hex digits.
fn valid_escapes(seg: &str) -> bool {
    let mut bytes = seg.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let ok = bytes.next().is_some_and(|h| h.is_ascii_hexdigit())
                && bytes.next().is_some_and(|h| h.is_ascii_hexdigit());
            if !ok {
                return false;
            }
        }
    }
    true
}
