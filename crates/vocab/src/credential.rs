//! Which kinds of credential proved a caller.

use std::fmt;

use serde::ser::{Serialize, SerializeSeq, Serializer};

/// A kind of SPIFFE credential (and of the trust bundle that verifies it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// An X.509-SVID (the mTLS peer certificate, or one from XFCC).
    X509,
    /// A JWT-SVID.
    Jwt,
}

impl CredentialKind {
    /// Both kinds, in the order the audit record lists them.
    pub const ALL: [CredentialKind; 2] = [Self::X509, Self::Jwt];

    /// The label value (`x509`, `jwt`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::X509 => "x509",
            Self::Jwt => "jwt",
        }
    }

    const fn bit(self) -> u8 {
        match self {
            Self::X509 => 1,
            Self::Jwt => 2,
        }
    }
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The credential kinds that proved one caller: none, one or both.
/// Serialised as a list of labels in [`CredentialKind::ALL`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Credentials(u8);

impl Credentials {
    /// No credential proved anything.
    pub const NONE: Credentials = Credentials(0);

    /// These credentials and `kind`.
    #[must_use]
    pub const fn with(self, kind: CredentialKind) -> Self {
        Self(self.0 | kind.bit())
    }

    /// Did a credential of `kind` take part?
    pub const fn contains(self, kind: CredentialKind) -> bool {
        self.0 & kind.bit() != 0
    }

    /// True when no credential took part.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds, in [`CredentialKind::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = CredentialKind> {
        CredentialKind::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }
}

impl Serialize for Credentials {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        for kind in self.iter() {
            seq.serialize_element(kind.as_str())?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::{CredentialKind, Credentials};

    #[test]
    fn sets_list_their_kinds_in_order() {
        let both = Credentials::NONE
            .with(CredentialKind::Jwt)
            .with(CredentialKind::X509);
        assert_eq!(
            both.iter().collect::<Vec<_>>(),
            [CredentialKind::X509, CredentialKind::Jwt]
        );
        assert!(Credentials::NONE.is_empty());
        assert!(
            !Credentials::NONE
                .with(CredentialKind::Jwt)
                .contains(CredentialKind::X509)
        );
    }
}
