//! Request path normalisation: what is safe to match, and what is ambiguous.

use std::borrow::Cow;

use hallpass_vocab::PathIssue;
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

/// Normalise a raw `:path`, or `None` if it is ambiguous (see
/// [`parse_path`] for what that means, and for the cause).
pub fn normalize_path(raw: &str) -> Option<NormalizedPath<'_>> {
    parse_path(raw).ok()
}

/// Normalise a raw `:path`, or say why it is ambiguous.
///
/// Ambiguous means: not starting with `/`; ending with `/` (`/a/` may be a
/// different resource from `/a` to the application, so neither is read as
/// the other); empty, `.` or `..` segments (also when percent-encoded, and
/// also before a `;` path parameter, which servlet containers strip:
/// `/..;/admin` is `/../admin` to Tomcat); an encoded `/` or `\`; a raw `\`;
/// bad percent escapes; invalid UTF-8; or over the length limits. hallpass
/// refuses these rather than guess how the application will read them. One
/// cause is returned: the length, a raw `\` and the leading `/` are checked
/// first, then each segment from left to right.
pub fn parse_path(raw: &str) -> Result<NormalizedPath<'_>, PathIssue> {
    let end = raw.find(['?', '#']).unwrap_or(raw.len());
    let path = raw.get(..end).unwrap_or(raw);
    if path.len() > MAX_PATH_LEN {
        return Err(PathIssue::TooLong);
    }
    if path.contains('\\') {
        return Err(PathIssue::Backslash);
    }
    let rest = path.strip_prefix('/').ok_or(PathIssue::NoLeadingSlash)?;
    let mut segments = Vec::new();
    if rest.is_empty() {
        return Ok(NormalizedPath { segments });
    }
    let mut parts = rest.split('/').peekable();
    while let Some(seg) = parts.next() {
        if segments.len() == MAX_SEGMENTS {
            return Err(PathIssue::TooLong);
        }
        if seg.is_empty() && parts.peek().is_none() {
            return Err(PathIssue::TrailingSlash);
        }
        let decoded: Cow<'_, str> = if seg.contains('%') {
            if !valid_escapes(seg) {
                return Err(PathIssue::BadEscape);
            }
            let bytes: Cow<'_, [u8]> = percent_decode_str(seg).into();
            let text = String::from_utf8(bytes.into_owned()).map_err(|_| PathIssue::InvalidUtf8)?;
            if text.contains(['/', '\\']) {
                return Err(PathIssue::EncodedSeparator);
            }
            Cow::Owned(text)
        } else {
            Cow::Borrowed(seg)
        };
        let name = decoded.split(';').next().unwrap_or_default();
        if name.is_empty() {
            return Err(PathIssue::EmptySegment);
        }
        if name == "." || name == ".." {
            return Err(PathIssue::DotSegment);
        }
        segments.push(decoded);
    }
    Ok(NormalizedPath { segments })
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
