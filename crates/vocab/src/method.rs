//! HTTP request methods: the ones a rule can name, and everything else.

use std::fmt;

/// An HTTP request method, parsed once where the request enters.
///
/// The nine methods a policy rule may list have their own variants; any
/// other method (including a lower-case spelling: methods are
/// case-sensitive) is [`Method::Other`], which no rule can name and which
/// is labelled `OTHER`. So a method is a bounded metric label by
/// construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
    /// `POST` (every gRPC call).
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
    /// `PATCH`.
    Patch,
    /// `OPTIONS`.
    Options,
    /// `TRACE`.
    Trace,
    /// `CONNECT`.
    Connect,
    /// Any other method: matched only by rules that allow every method.
    #[default]
    Other,
}

impl Method {
    /// The methods a rule may list, in the order documented.
    pub const NAMED: [Method; 9] = [
        Self::Get,
        Self::Head,
        Self::Post,
        Self::Put,
        Self::Delete,
        Self::Patch,
        Self::Options,
        Self::Trace,
        Self::Connect,
    ];

    /// The request method `text` as a type: one of [`Method::NAMED`] when it
    /// is spelled exactly so (upper case), else [`Method::Other`]. The label
    /// `OTHER` parses back to [`Method::Other`], so `parse(m.as_str()) == m`.
    pub fn parse(text: &str) -> Self {
        Self::named(text).unwrap_or(Self::Other)
    }

    /// A method as a rule names it: one of [`Method::NAMED`], exactly.
    pub fn named(text: &str) -> Option<Self> {
        Some(match text {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "DELETE" => Self::Delete,
            "PATCH" => Self::Patch,
            "OPTIONS" => Self::Options,
            "TRACE" => Self::Trace,
            "CONNECT" => Self::Connect,
            _ => return None,
        })
    }

    /// The method as written on the wire, or `OTHER`: the `method` label of
    /// the call graph and the audit record.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
            Self::Patch => "PATCH",
            Self::Options => "OPTIONS",
            Self::Trace => "TRACE",
            Self::Connect => "CONNECT",
            Self::Other => "OTHER",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Method;

    #[test]
    fn every_label_parses_back_to_its_method() {
        for m in Method::NAMED {
            assert_eq!(Method::parse(m.as_str()), m);
            assert_eq!(Method::named(m.as_str()), Some(m));
        }
        assert_eq!(Method::parse("OTHER"), Method::Other);
        assert_eq!(Method::named("OTHER"), None);
    }

    #[test]
    fn methods_are_case_sensitive_and_unknown_ones_are_other() {
        for text in ["get", "Get", "PROPFIND", "", "GET "] {
            assert_eq!(Method::parse(text), Method::Other, "{text:?}");
            assert_eq!(Method::named(text), None, "{text:?}");
        }
    }
}
