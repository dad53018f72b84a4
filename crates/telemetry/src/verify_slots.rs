//! Metrics of the verification slots: checks that must verify a credential
//! run off the runtime worker, a bounded number at a time, so that a check
//! whose credential is cached never waits behind them
//! (docs/architecture.md, "Verification off the runtime worker").

use prometheus::{IntCounter, Opts, Registry};

use crate::TelemetryError;

/// Counters of the verification slots.
#[derive(Debug, Clone)]
pub struct VerificationSlotMetrics {
    /// `hallpass_verification_slot_waits_total`: checks that had to verify
    /// a credential and found every slot taken, so waited for one.
    pub waited: IntCounter,
    /// `hallpass_verification_slot_refused_total`: checks that waited
    /// longer than the bound for a slot and were denied `internal_error`
    /// (fail closed).
    pub refused: IntCounter,
}

impl VerificationSlotMetrics {
    /// The counters, registered on `registry`.
    pub(crate) fn register(registry: &Registry) -> Result<Self, TelemetryError> {
        let waited = IntCounter::with_opts(Opts::new(
            "hallpass_verification_slot_waits_total",
            "Checks that had to verify a credential and waited because every verification slot was taken.",
        ))?;
        let refused = IntCounter::with_opts(Opts::new(
            "hallpass_verification_slot_refused_total",
            "Checks denied internal_error because no verification slot came free within the bound (fail closed).",
        ))?;
        registry.register(Box::new(waited.clone()))?;
        registry.register(Box::new(refused.clone()))?;
        Ok(Self { waited, refused })
    }
}
