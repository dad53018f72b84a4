//! Metrics of the healthcare controls: break-glass (emergency) grants and
//! JWT-SVID replay protection. Kept apart from the core registry list so
//! that each control's metrics read together.

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::TelemetryError;

/// Metrics of the break-glass grants and the JWT-SVID replay cache.
#[derive(Debug, Clone)]
pub struct ControlMetrics {
    /// `hallpass_break_glass_calls_total{source,destination,grant}`: calls
    /// let through by an emergency grant. `grant` is the grant's name (the
    /// policy crate caps a grant list at 32); `source`/`destination` are
    /// the policy's bounded labels.
    pub break_glass_calls: IntCounterVec,
    /// `hallpass_break_glass_active{grant}`: the expiry (Unix seconds) of
    /// each open, unexpired grant; a grant's series is removed when it
    /// closes or expires.
    pub break_glass_active: IntGaugeVec,
    /// `hallpass_break_glass_overlay_reloads_total{result}`: overlay file
    /// loads (success, failure: a corrupt overlay keeps the last good one).
    pub break_glass_overlay_reloads: IntCounterVec,
    /// `hallpass_jwt_replay_cache_entries`: `jti`s remembered.
    pub jwt_replay_entries: IntGauge,
    /// `hallpass_jwt_replay_cache_full_total`: single-use tokens denied
    /// because the replay cache was full of unexpired entries (fail closed).
    pub jwt_replay_cache_full: IntCounter,
}

impl ControlMetrics {
    /// The metrics, registered on `registry`.
    pub(crate) fn register(registry: &Registry) -> Result<Self, TelemetryError> {
        let break_glass_calls = IntCounterVec::new(
            Opts::new(
                "hallpass_break_glass_calls_total",
                "Calls allowed by an emergency (break-glass) grant, by bounded source, destination and grant name.",
            ),
            &["source", "destination", "grant"],
        )?;
        let break_glass_active = IntGaugeVec::new(
            Opts::new(
                "hallpass_break_glass_active",
                "Open break-glass grants that apply to this sidecar: the grant's expiry as Unix time. Absent when none is open.",
            ),
            &["grant"],
        )?;
        let break_glass_overlay_reloads = IntCounterVec::new(
            Opts::new(
                "hallpass_break_glass_overlay_reloads_total",
                "Loads of the break-glass overlay file, by result (success or failure; a failure keeps the last good overlay).",
            ),
            &["result"],
        )?;
        for result in ["success", "failure"] {
            break_glass_overlay_reloads.with_label_values(&[result]);
        }
        let jwt_replay_entries = IntGauge::with_opts(Opts::new(
            "hallpass_jwt_replay_cache_entries",
            "JWT-SVID jti values remembered for replay protection (rules with jwt_replay: deny).",
        ))?;
        let jwt_replay_cache_full = IntCounter::with_opts(Opts::new(
            "hallpass_jwt_replay_cache_full_total",
            "Single-use JWT-SVIDs denied jwt_replayed because the replay cache was full of unexpired entries (fail closed).",
        ))?;
        registry.register(Box::new(break_glass_calls.clone()))?;
        registry.register(Box::new(break_glass_active.clone()))?;
        registry.register(Box::new(break_glass_overlay_reloads.clone()))?;
        registry.register(Box::new(jwt_replay_entries.clone()))?;
        registry.register(Box::new(jwt_replay_cache_full.clone()))?;
        Ok(Self {
            break_glass_calls,
            break_glass_active,
            break_glass_overlay_reloads,
            jwt_replay_entries,
            jwt_replay_cache_full,
        })
    }
}
