//! Unexpected call paths: the kinds of `hallpass_call_path_anomalies_total`,
//! and the ones a single decision shows.

use serde::Serialize;

use crate::{DecisionLabel, DenyReason};

/// Kinds of `hallpass_call_path_anomalies_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// A call was denied (or would have been, in audit mode).
    Denied,
    /// A proven identity that no rule of this destination names.
    UnknownSource,
    /// An edge not in the learned baseline.
    NewEdge,
    /// An edge's rate far above its moving average.
    RateSpike,
    /// A time-bound grant was used after (or before) its window.
    GrantExpired,
    /// X.509 and JWT credentials named different identities.
    IdentityMismatch,
    /// A revoked identity or certificate was used.
    Revoked,
}

impl AnomalyKind {
    /// Every kind.
    pub const ALL: [AnomalyKind; 7] = [
        Self::Denied,
        Self::UnknownSource,
        Self::NewEdge,
        Self::RateSpike,
        Self::GrantExpired,
        Self::IdentityMismatch,
        Self::Revoked,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Denied => "denied",
            Self::UnknownSource => "unknown_source",
            Self::NewEdge => "new_edge",
            Self::RateSpike => "rate_spike",
            Self::GrantExpired => "grant_expired",
            Self::IdentityMismatch => "identity_mismatch",
            Self::Revoked => "revoked",
        }
    }
}

/// The anomalies one decision shows, as whoever decided knows them.
///
/// `new_edge` and `rate_spike` are not here: they need the call history,
/// which only the telemetry worker keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Anomalies {
    /// The call was denied (or would have been, in audit mode).
    pub denied: bool,
    /// A proven caller that no rule of the destination names.
    pub unknown_source: bool,
    /// The caller's ID or certificate is revoked.
    pub revoked: bool,
    /// X.509 and JWT credentials named different identities.
    pub identity_mismatch: bool,
    /// The only rule that would allow the call is outside its time window.
    pub grant_expired: bool,
}

impl Anomalies {
    /// The anomalies of a decision labelled `decision`, denied for `reason`
    /// (`None` for an allow). `unknown_source` is the decider's own finding:
    /// only the policy can say whether a rule names the caller.
    pub const fn of(
        decision: DecisionLabel,
        reason: Option<DenyReason>,
        unknown_source: bool,
    ) -> Self {
        let mut out = Self {
            denied: !matches!(decision, DecisionLabel::Allow),
            unknown_source,
            revoked: false,
            identity_mismatch: false,
            grant_expired: false,
        };
        // Every reason is listed, so a new one is a decision made here.
        match reason {
            Some(DenyReason::Revoked) => out.revoked = true,
            Some(DenyReason::IdentityMismatch) => out.identity_mismatch = true,
            Some(DenyReason::GrantExpired) => out.grant_expired = true,
            Some(
                DenyReason::NoIdentity
                | DenyReason::InvalidSvid
                | DenyReason::UntrustedTrustDomain
                | DenyReason::ExpiredCredential
                | DenyReason::InvalidJwt
                | DenyReason::JwtAudienceMismatch
                | DenyReason::NoMatchingRule
                | DenyReason::AmbiguousPath
                | DenyReason::InternalError
                | DenyReason::JwtReplayed,
            )
            | None => {}
        }
        out
    }

    /// The kinds set, in [`AnomalyKind::ALL`] order.
    pub fn kinds(self) -> impl Iterator<Item = AnomalyKind> {
        [
            (self.denied, AnomalyKind::Denied),
            (self.unknown_source, AnomalyKind::UnknownSource),
            (self.grant_expired, AnomalyKind::GrantExpired),
            (self.identity_mismatch, AnomalyKind::IdentityMismatch),
            (self.revoked, AnomalyKind::Revoked),
        ]
        .into_iter()
        .filter_map(|(set, kind)| set.then_some(kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_with_an_anomaly_kind_sets_it() {
        let kinds = |reason| {
            Anomalies::of(DecisionLabel::Deny, Some(reason), false)
                .kinds()
                .collect::<Vec<_>>()
        };
        for reason in DenyReason::ALL {
            let want: &[AnomalyKind] = match reason {
                DenyReason::Revoked => &[AnomalyKind::Denied, AnomalyKind::Revoked],
                DenyReason::IdentityMismatch => {
                    &[AnomalyKind::Denied, AnomalyKind::IdentityMismatch]
                }
                DenyReason::GrantExpired => &[AnomalyKind::Denied, AnomalyKind::GrantExpired],
                _ => &[AnomalyKind::Denied],
            };
            assert_eq!(kinds(reason), want, "{reason}");
        }
        // The kind's label is the reason's code, where both exist.
        for (reason, kind) in [
            (DenyReason::Revoked, AnomalyKind::Revoked),
            (DenyReason::IdentityMismatch, AnomalyKind::IdentityMismatch),
            (DenyReason::GrantExpired, AnomalyKind::GrantExpired),
        ] {
            assert_eq!(reason.code(), kind.as_str());
        }
    }

    #[test]
    fn an_allow_shows_nothing_and_audit_deny_is_a_denial() {
        assert_eq!(
            Anomalies::of(DecisionLabel::Allow, None, false)
                .kinds()
                .count(),
            0
        );
        let audit = Anomalies::of(
            DecisionLabel::AuditDeny,
            Some(DenyReason::NoMatchingRule),
            true,
        );
        assert_eq!(
            audit.kinds().collect::<Vec<_>>(),
            [AnomalyKind::Denied, AnomalyKind::UnknownSource]
        );
    }
}
