//! The typed outcome of evaluating one request.

use std::sync::Arc;

use hallpass_vocab::DenyReason;

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

    /// The deny reason, or `None` for an allow.
    pub const fn deny_reason(&self) -> Option<DenyReason> {
        match self {
            Self::Allow { .. } => None,
            Self::Deny { reason } => Some(*reason),
        }
    }
}
