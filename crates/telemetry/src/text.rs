//! Text that came from a file or a sidecar, made safe for a terminal.
//!
//! A baseline, a saved call graph or an audit log may have been written by a
//! compromised workload. Printed raw, an escape sequence in it (OSC, CSI,
//! clear-screen, a C1 control) is executed by the operator's terminal, and a
//! bidi control reorders what the operator reads.

use std::borrow::Cow;
use std::fmt;

/// Control characters (C0, DEL, C1) and invisible characters that reorder or
/// hide text (bidi controls, zero-width characters, BOM).
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{FEFF}'
        )
}

/// `text` with every unsafe character written as `\u{XX}` (and `\` as `\\`,
/// so an escape in the output is never ambiguous).
pub fn escape_for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| is_unsafe_char(c) || c == '\\') {
        return Cow::Borrowed(text);
    }
    Cow::Owned(Escaped(text).to_string())
}

/// Display adapter for [`escape_for_terminal`].
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c == '\\' {
                f.write_str("\\\\")?;
            } else if is_unsafe_char(c) {
                write!(f, "\\u{{{:x}}}", u32::from(c))?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

/// JSON text with the unsafe characters that JSON allows raw inside strings
/// (DEL, C1, bidi and zero-width characters) written as `\uXXXX`. serde_json
/// already escapes C0 inside strings, so a raw newline is the layout of
/// pretty-printed JSON and is kept. Outside strings, JSON text is plain
/// ASCII, so this never changes what the document means.
pub fn json_for_terminal(json: &str) -> Cow<'_, str> {
    let unsafe_in_json = |c: char| c != '\n' && is_unsafe_char(c);
    if !json.chars().any(unsafe_in_json) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if unsafe_in_json(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}
