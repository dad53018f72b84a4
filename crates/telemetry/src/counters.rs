//! Decision counters without label hashing on the hot path.
//!
//! `IntCounterVec::with_label_values` hashes four strings on every call. The
//! label values of `hallpass_decisions_total` are all known when a policy is
//! loaded (the policy's label table, the reason codes), so each combination
//! gets a slot, indexed by small integers. Slots are grouped per destination
//! and a destination's group is allocated on first use: a sidecar serves one
//! destination, so it pays for `labels × 3 × reasons` slots, not for the
//! whole mesh. A slot's counter handle is created on first use (no all-zero
//! series for combinations that never happen) and is a pointer load after.

use std::sync::{Arc, OnceLock};

use hallpass_vocab::{DecisionLabel, DenyReason, reason_label};
use prometheus::{IntCounter, IntCounterVec};

/// Reason slots: every deny reason, then `ok`.
const REASONS: usize = DenyReason::ALL.len() + 1;

/// The slot of a reason (`None` is an allow, `ok`).
const fn reason_slot(reason: Option<DenyReason>) -> usize {
    match reason {
        Some(r) => r.index(),
        None => DenyReason::ALL.len(),
    }
}

/// Counter handles for one policy's label space.
#[derive(Debug)]
pub struct DecisionCounters {
    vec: IntCounterVec,
    labels: Vec<Arc<str>>,
    by_destination: Vec<OnceLock<Box<[OnceLock<IntCounter>]>>>,
}

impl DecisionCounters {
    /// Slots for every `(source, destination, decision, reason)` combination,
    /// where sources and destinations are positions in `labels`.
    pub fn new(metrics: &crate::Metrics, labels: Vec<Arc<str>>) -> Self {
        let by_destination = (0..labels.len()).map(|_| OnceLock::new()).collect();
        Self {
            vec: metrics.decisions.clone(),
            labels,
            by_destination,
        }
    }

    /// Count one decision (`reason` is `None` for an allow). Label positions
    /// out of range fall back to a label lookup with `unknown` values (never
    /// a panic, never a lost count).
    pub fn inc(
        &self,
        source: usize,
        destination: usize,
        decision: DecisionLabel,
        reason: Option<DenyReason>,
    ) {
        let n = self.labels.len();
        let label = |i: usize| self.labels.get(i).map_or("unknown", |s| s.as_ref());
        let counter = || {
            self.vec.with_label_values(&[
                label(source),
                label(destination),
                decision.as_str(),
                reason_label(reason),
            ])
        };
        let Some(group) = self.by_destination.get(destination).filter(|_| source < n) else {
            counter().inc();
            return;
        };
        let slots = group.get_or_init(|| {
            (0..n * DecisionLabel::ALL.len() * REASONS)
                .map(|_| OnceLock::new())
                .collect()
        });
        let index =
            (source * DecisionLabel::ALL.len() + decision.index()) * REASONS + reason_slot(reason);
        // In range by the check above; `get` keeps a slip from being a panic.
        match slots.get(index) {
            Some(slot) => slot.get_or_init(counter).inc(),
            None => counter().inc(),
        }
    }

    /// Slots of one destination group (the memory bound per destination served).
    pub fn slots_per_destination(&self) -> usize {
        self.labels.len() * DecisionLabel::ALL.len() * REASONS
    }
}
