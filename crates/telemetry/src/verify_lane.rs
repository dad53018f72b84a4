//! Metrics of the verification lane: checks that must verify a credential
//! are decided on one thread at a lower CPU priority, through a bounded
//! queue, so that a check whose credential is cached never waits behind
//! them (docs/architecture.md, "The verification lane").

use prometheus::{IntCounter, Opts, Registry};

use crate::TelemetryError;

/// Counters of the verification lane's two fail-closed refusals.
#[derive(Debug, Clone)]
pub struct VerificationLaneMetrics {
    /// `hallpass_verification_lane_full_total`: checks that had to verify a
    /// credential and found the lane's queue full, denied `internal_error`.
    pub full: IntCounter,
    /// `hallpass_verification_lane_timeouts_total`: checks the lane did not
    /// decide within the bound, denied `internal_error`.
    pub timed_out: IntCounter,
}

impl VerificationLaneMetrics {
    /// The counters, registered on `registry`.
    pub(crate) fn register(registry: &Registry) -> Result<Self, TelemetryError> {
        let full = IntCounter::with_opts(Opts::new(
            "hallpass_verification_lane_full_total",
            "Checks denied internal_error because the verification lane's queue was full (fail closed).",
        ))?;
        let timed_out = IntCounter::with_opts(Opts::new(
            "hallpass_verification_lane_timeouts_total",
            "Checks denied internal_error because the verification lane did not decide them within the bound (fail closed).",
        ))?;
        registry.register(Box::new(full.clone()))?;
        registry.register(Box::new(timed_out.clone()))?;
        Ok(Self { full, timed_out })
    }
}
