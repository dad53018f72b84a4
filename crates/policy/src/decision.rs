use std::sync::Arc;

/// Whether a destination's decisions are enforced or only recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Denies are answered as denies.
    #[default]
    Enforce,
    /// Denies are recorded as `audit_deny` and the call goes through.
    Audit,
}

/// Why a request was denied. The codes are a stable, documented interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DenyReason {
    /// No credential was presented.
    NoIdentity,
    /// A credential was presented but is not a valid X.509-SVID.
    InvalidSvid,
    /// The credential's trust domain is not trusted.
    UntrustedTrustDomain,
    /// The credential is outside its validity window.
    ExpiredCredential,
    /// The identity or certificate is on the revocation list.
    Revoked,
    /// The JWT-SVID failed verification.
    InvalidJwt,
    /// The JWT-SVID's audience does not include this destination.
    JwtAudienceMismatch,
    /// The X.509 and JWT identities name different SPIFFE IDs.
    IdentityMismatch,
    /// No rule of the destination allows this request.
    NoMatchingRule,
    /// The only rule that would allow this request is outside its time window.
    GrantExpired,
    /// The path is ambiguous (dot or empty segments, encoded separators).
    AmbiguousPath,
    /// hallpass could not decide (fail closed).
    InternalError,
}

impl DenyReason {
    /// Every reason, for documentation and exhaustive tests.
    pub const ALL: [DenyReason; 12] = [
        Self::NoIdentity,
        Self::InvalidSvid,
        Self::UntrustedTrustDomain,
        Self::ExpiredCredential,
        Self::Revoked,
        Self::InvalidJwt,
        Self::JwtAudienceMismatch,
        Self::IdentityMismatch,
        Self::NoMatchingRule,
        Self::GrantExpired,
        Self::AmbiguousPath,
        Self::InternalError,
    ];

    /// Position in [`DenyReason::ALL`] (for flat metric tables).
    pub fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|r| *r == self)
            .unwrap_or_default()
    }

    /// The stable reason code used in the `x-hallpass-reason` header, the JSON
    /// body and the `reason` metric label.
    pub const fn code(self) -> &'static str {
        match self {
            Self::NoIdentity => "no_identity",
            Self::InvalidSvid => "invalid_svid",
            Self::UntrustedTrustDomain => "untrusted_trust_domain",
            Self::ExpiredCredential => "expired_credential",
            Self::Revoked => "revoked",
            Self::InvalidJwt => "invalid_jwt",
            Self::JwtAudienceMismatch => "jwt_audience_mismatch",
            Self::IdentityMismatch => "identity_mismatch",
            Self::NoMatchingRule => "no_matching_rule",
            Self::GrantExpired => "grant_expired",
            Self::AmbiguousPath => "ambiguous_path",
            Self::InternalError => "internal_error",
        }
    }

    /// True when the caller proved no valid identity (answered 401); false
    /// when a valid identity is not permitted (answered 403).
    pub const fn is_unauthenticated(self) -> bool {
        matches!(
            self,
            Self::NoIdentity
                | Self::InvalidSvid
                | Self::UntrustedTrustDomain
                | Self::ExpiredCredential
                | Self::Revoked
                | Self::InvalidJwt
                | Self::JwtAudienceMismatch
                | Self::IdentityMismatch
        )
    }
}

/// The outcome of evaluating one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A rule allowed the request.
    Allow {
        /// The rule's name.
        rule: Arc<str>,
        /// The route template (or gRPC pattern) that matched; safe to log.
        route: Arc<str>,
    },
    /// The request is denied.
    Deny {
        /// Why.
        reason: DenyReason,
    },
}

impl Decision {
    /// A deny for `reason`.
    pub const fn deny(reason: DenyReason) -> Self {
        Self::Deny { reason }
    }

    /// True for [`Decision::Allow`].
    pub const fn is_allow(&self) -> bool {
        matches!(self, Self::Allow { .. })
    }
}
