//! Why a call was denied, how a destination enforces, and the decision label.

use std::fmt;

/// Why a request was denied. The codes are a stable, documented interface
/// (design §2): the `x-hallpass-reason` header, the JSON body, the `reason`
/// metric label and the audit record all carry [`DenyReason::code`].
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
    /// The path is ambiguous (dot or empty segments, a trailing `/`, encoded
    /// separators, …; [`PathIssue`](crate::PathIssue) says which).
    AmbiguousPath,
    /// hallpass could not decide (fail closed).
    InternalError,
    /// A rule with `jwt_replay: deny` matched, but the JWT-SVID's `jti` was
    /// already used within the token's lifetime, the token has no `jti`, or
    /// the replay cache is full (fail closed).
    JwtReplayed,
}

impl DenyReason {
    /// Every reason, in declaration order (which [`DenyReason::index`] follows).
    pub const ALL: [DenyReason; 13] = [
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
        Self::JwtReplayed,
    ];

    /// Position in [`DenyReason::ALL`] (for flat metric tables).
    pub const fn index(self) -> usize {
        self as usize
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
            Self::JwtReplayed => "jwt_replayed",
        }
    }

    /// The reason whose [`code`](Self::code) is `code`.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
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
                | Self::JwtReplayed
        )
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The `reason` label of an allow: it takes the slot after the deny reasons.
pub const OK_REASON: &str = "ok";

/// The `reason` label (and audit record reason) of an allow made by an
/// emergency (break-glass) grant rather than by a rule of the policy.
pub const BREAK_GLASS_REASON: &str = "break_glass";

/// The `reason` label of a decision: the deny reason's code, or
/// [`OK_REASON`] for an allow (`None`).
pub const fn reason_label(reason: Option<DenyReason>) -> &'static str {
    match reason {
        Some(reason) => reason.code(),
        None => OK_REASON,
    }
}

/// Whether a destination's decisions are enforced or only recorded.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Denies are answered as denies.
    #[default]
    Enforce,
    /// Denies are recorded as `audit_deny` and the call goes through.
    Audit,
}

impl Mode {
    /// Both modes.
    pub const ALL: [Mode; 2] = [Self::Enforce, Self::Audit];

    /// The word used in the policy file, the audit record and `explain`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Audit => "audit",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `decision` label of `hallpass_decisions_total` and of the audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecisionLabel {
    /// Allowed.
    Allow,
    /// Denied and enforced.
    Deny,
    /// Would have been denied; let through because the destination is in audit mode.
    AuditDeny,
}

impl DecisionLabel {
    /// Every value, in slot order.
    pub const ALL: [DecisionLabel; 3] = [Self::Allow, Self::Deny, Self::AuditDeny];

    /// The label of an allow (`allowed`) or a deny under `mode`.
    pub const fn of(allowed: bool, mode: Mode) -> Self {
        match (allowed, mode) {
            (true, _) => Self::Allow,
            (false, Mode::Enforce) => Self::Deny,
            (false, Mode::Audit) => Self::AuditDeny,
        }
    }

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::AuditDeny => "audit_deny",
        }
    }

    /// Position in [`DecisionLabel::ALL`] (for flat metric tables).
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DecisionLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_the_all_tables() {
        for (i, r) in DenyReason::ALL.into_iter().enumerate() {
            assert_eq!(r.index(), i);
            assert_eq!(DenyReason::from_code(r.code()), Some(r));
        }
        for (i, d) in DecisionLabel::ALL.into_iter().enumerate() {
            assert_eq!(d.index(), i);
        }
        assert_eq!(DenyReason::from_code(OK_REASON), None);
    }

    #[test]
    fn codes_and_labels_are_distinct() {
        let mut codes: Vec<&str> = DenyReason::ALL.iter().map(|r| r.code()).collect();
        codes.push(OK_REASON);
        let n = codes.len();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), n);
        assert_eq!(reason_label(None), "ok");
        assert_eq!(reason_label(Some(DenyReason::Revoked)), "revoked");
    }

    #[test]
    fn the_decision_label_follows_the_mode() {
        assert_eq!(DecisionLabel::of(true, Mode::Audit), DecisionLabel::Allow);
        assert_eq!(DecisionLabel::of(false, Mode::Enforce), DecisionLabel::Deny);
        assert_eq!(
            DecisionLabel::of(false, Mode::Audit),
            DecisionLabel::AuditDeny
        );
        assert_eq!(Mode::Audit.to_string(), "audit");
        assert_eq!(Mode::default(), Mode::Enforce);
    }
}
