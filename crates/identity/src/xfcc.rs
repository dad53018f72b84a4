//! Parsing Envoy's `x-forwarded-client-cert` (XFCC) header.
//!
//! The header is a comma-separated list of elements, one per proxy hop; each
//! element is `key=value` pairs separated by `;`, values optionally in double
//! quotes (with `\"` escapes) when they contain `,`, `;` or `=`. Keys are
//! case-insensitive. `Cert` and `Chain` hold URL-encoded PEM. Parsing is
//! strict and bounded: anything odd is an error, never a guess.

/// Longest XFCC header accepted.
const MAX_XFCC_LEN: usize = 64 * 1024;
/// Most elements (proxy hops) accepted.
const MAX_ELEMENTS: usize = 16;

/// One XFCC element: what one proxy says about the client it saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XfccElement {
    /// `By`: the URI SAN of the proxy that added the element.
    pub by: Option<String>,
    /// `Hash`: SHA-256 of the client certificate, hex.
    pub hash: Option<String>,
    /// `Cert`: the client's leaf certificate, URL-encoded PEM.
    pub cert: Option<String>,
    /// `Chain`: the client's certificate chain, URL-encoded PEM.
    pub chain: Option<String>,
    /// `URI`: URI SANs of the client certificate.
    pub uris: Vec<String>,
}

/// Parse an XFCC header into its elements, in order (the last is the nearest hop).
pub fn parse_xfcc(header: &str) -> Result<Vec<XfccElement>, &'static str> {
    if header.len() > MAX_XFCC_LEN {
        return Err("XFCC header too large");
    }
    let mut elements = Vec::new();
    for raw in split_unquoted(header, ',')? {
        if elements.len() == MAX_ELEMENTS {
            return Err("too many XFCC elements");
        }
        let mut element = XfccElement::default();
        for pair in split_unquoted(raw, ';')? {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let (key, value) = pair.split_once('=').ok_or("XFCC pair without `=`")?;
            let value = unquote(value.trim())?;
            match key.trim().to_ascii_lowercase().as_str() {
                "by" => element.by = Some(value),
                "hash" => element.hash = Some(value),
                "cert" => element.cert = Some(value),
                "chain" => element.chain = Some(value),
                "uri" => element.uris.push(value),
                // Subject, DNS and future keys carry nothing hallpass relies on.
                _ => {}
            }
        }
        elements.push(element);
    }
    Ok(elements)
}

/// Split on `sep` outside double quotes.
fn split_unquoted(text: &str, sep: char) -> Result<Vec<&str>, &'static str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quoted {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    if quoted {
        return Err("unterminated quote in XFCC");
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn unquote(value: &str) -> Result<String, &'static str> {
    let Some(inner) = value.strip_prefix('"') else {
        if value.contains('"') {
            return Err("stray quote in XFCC value");
        }
        return Ok(value.to_owned());
    };
    let inner = inner
        .strip_suffix('"')
        .ok_or("unterminated quote in XFCC value")?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next().ok_or("dangling escape in XFCC value")?),
            '"' => return Err("stray quote in XFCC value"),
            c => out.push(c),
        }
    }
    Ok(out)
}
