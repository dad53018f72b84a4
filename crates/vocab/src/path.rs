//! Why a request path is ambiguous: the cause behind an `ambiguous_path` deny.

use std::fmt;

/// Which rule of path safety a request path broke. The deny reason stays
/// `ambiguous_path` (a stable code); this says which of its causes it was, in
/// `policy explain` and in the audit record's `path_issue` field. A closed
/// set of fixed words: the audit record names the cause, never the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PathIssue {
    /// The path does not start with `/`.
    NoLeadingSlash,
    /// The path ends with `/` (and is not `/` itself): `/a/` is not `/a`.
    TrailingSlash,
    /// An empty segment inside the path (`//`).
    EmptySegment,
    /// A `.` or `..` segment, also percent-encoded or before a `;` parameter.
    DotSegment,
    /// A percent-encoded `/` or `\` (`%2F`, `%5C`).
    EncodedSeparator,
    /// A raw `\`.
    Backslash,
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// A segment that is not UTF-8 once decoded.
    InvalidUtf8,
    /// Over 8 KiB (before the query) or 128 segments.
    TooLong,
}

impl PathIssue {
    /// Every cause, in declaration order.
    pub const ALL: [PathIssue; 9] = [
        Self::NoLeadingSlash,
        Self::TrailingSlash,
        Self::EmptySegment,
        Self::DotSegment,
        Self::EncodedSeparator,
        Self::Backslash,
        Self::BadEscape,
        Self::InvalidUtf8,
        Self::TooLong,
    ];

    /// The stable code written to the audit record's `path_issue` field.
    pub const fn code(self) -> &'static str {
        match self {
            Self::NoLeadingSlash => "no_leading_slash",
            Self::TrailingSlash => "trailing_slash",
            Self::EmptySegment => "empty_segment",
            Self::DotSegment => "dot_segment",
            Self::EncodedSeparator => "encoded_separator",
            Self::Backslash => "backslash",
            Self::BadEscape => "bad_escape",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::TooLong => "too_long",
        }
    }

    /// The cause in words, for `policy explain`: what is wrong and what to
    /// send instead.
    pub const fn describe(self) -> &'static str {
        match self {
            Self::NoLeadingSlash => "it does not start with `/`",
            Self::TrailingSlash => {
                "it ends with `/`, and hallpass does not read `/a/` as `/a` (the \
                 application may not either); call it without the trailing `/`"
            }
            Self::EmptySegment => "it has an empty segment (`//`)",
            Self::DotSegment => {
                "it has a `.` or `..` segment (perhaps percent-encoded, or before a `;`)"
            }
            Self::EncodedSeparator => "it has an encoded `/` or `\\` (`%2F`, `%5C`)",
            Self::Backslash => "it has a `\\`",
            Self::BadEscape => "it has a `%` not followed by two hex digits",
            Self::InvalidUtf8 => "a segment is not UTF-8 once decoded",
            Self::TooLong => "it is over 8 KiB (before the query) or 128 segments",
        }
    }
}

impl fmt::Display for PathIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_snake_case_words() {
        let mut codes: Vec<&str> = PathIssue::ALL.iter().map(|p| p.code()).collect();
        assert!(codes.iter().all(|c| {
            c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        }));
        let n = codes.len();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), n);
    }
}
