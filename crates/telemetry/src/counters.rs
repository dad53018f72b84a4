//! Decision counters without label hashing on the hot path.
//!
//! `IntCounterVec::with_label_values` hashes four strings on every call. The
//! label values of `hallpass_decisions_total` are all known when a policy is
//! loaded (its named sources and destinations, the reason codes), so each
//! combination gets a slot in a flat table, indexed by small integers. A
//! slot's counter handle is created on first use (so no all-zero series are
//! exported for combinations that never happen) and is a pointer load after.

use std::sync::{Arc, OnceLock};

use prometheus::{IntCounter, IntCounterVec};

use crate::DecisionLabel;

/// Counter handles for one policy's label space.
#[derive(Debug)]
pub struct DecisionCounters {
    vec: IntCounterVec,
    sources: Vec<Arc<str>>,
    destinations: Vec<Arc<str>>,
    reasons: Vec<&'static str>,
    slots: Vec<OnceLock<IntCounter>>,
}

impl DecisionCounters {
    /// Slots for every `(source, destination, decision, reason)` combination.
    /// Sizes are bounded by the policy: sources and destinations it names,
    /// plus the fixed fallback labels the caller adds.
    pub fn new(
        metrics: &crate::Metrics,
        sources: Vec<Arc<str>>,
        destinations: Vec<Arc<str>>,
        reasons: Vec<&'static str>,
    ) -> Self {
        let n = sources.len() * destinations.len() * DecisionLabel::ALL.len() * reasons.len();
        Self {
            vec: metrics.decisions.clone(),
            sources,
            destinations,
            reasons,
            slots: (0..n).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Count one decision. Indices out of range fall back to a label lookup
    /// (never a panic, never a lost count).
    pub fn inc(&self, source: usize, destination: usize, decision: DecisionLabel, reason: usize) {
        let (ns, nr) = (self.sources.len(), self.reasons.len());
        let nd = self.destinations.len();
        if source >= ns || destination >= nd || reason >= nr {
            let label =
                |v: &[Arc<str>], i: usize| v.get(i).map_or("unknown", |s| s.as_ref()).to_owned();
            let r = self.reasons.get(reason).copied().unwrap_or("unknown");
            self.vec
                .with_label_values(&[
                    &label(&self.sources, source),
                    &label(&self.destinations, destination),
                    decision.as_str(),
                    r,
                ])
                .inc();
            return;
        }
        let index = ((source * nd + destination) * DecisionLabel::ALL.len() + decision.index())
            * nr
            + reason;
        self.slots[index]
            .get_or_init(|| {
                self.vec.with_label_values(&[
                    &self.sources[source],
                    &self.destinations[destination],
                    decision.as_str(),
                    self.reasons[reason],
                ])
            })
            .inc();
    }

    /// Number of slots (for documentation of the bound).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
}
