//! Verification off the runtime worker. hallpass answers checks on one
//! tokio worker (`hallpass::process::serve_runtime`); a check whose
//! credential is cached takes microseconds, a fresh one costs a signature
//! check per chain link. Decided inline, a check of a cached caller waited
//! behind every verification queued before it (the 10,000-identity flood,
//! docs/reliability.md). So the check handler first asks whether deciding
//! would verify anything ([`Shared::credentials_cached`]): if not, it
//! decides inline, as before; if so, the same decision ([`AuthzService::answer`],
//! the one decide) runs on tokio's blocking pool, at most
//! [`VerifySlots::count`] at a time. A check that finds every slot taken
//! waits for one, at most [`SLOT_WAIT`]; past that it is denied
//! `internal_error` (fail closed), well before Envoy's own ext_authz
//! timeout would deny it with nothing recorded.

use std::sync::Arc;
use std::time::Duration;

use envoy_types::ext_authz::v3::pb::{CheckRequest, CheckResponse};
use hallpass_vocab::DenyReason;
use tokio::sync::Semaphore;

use crate::{AuthzService, Outcome, answer};

/// The longest a check waits for a verification slot before it is denied
/// `internal_error`. Well under the 0.5 s ext_authz timeout the shipped
/// Envoy configs use, so the deny is hallpass's (counted, audited).
pub(crate) const SLOT_WAIT: Duration = Duration::from_millis(250);

/// The most verification slots, whatever the core count: a verification
/// is CPU work, more slots than cores only queue in the kernel instead.
const MAX_SLOTS: usize = 4;

/// The bounded set of verifications that may run at once.
#[derive(Debug)]
pub(crate) struct VerifySlots {
    permits: Arc<Semaphore>,
    count: usize,
}

impl VerifySlots {
    /// One slot per core the process may use, at least 1, at most
    /// [`MAX_SLOTS`].
    pub(crate) fn for_this_host() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(cores.clamp(1, MAX_SLOTS))
    }

    fn new(count: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(count)),
            count,
        }
    }

    /// How many verifications may run at once.
    pub(crate) fn count(&self) -> usize {
        self.count
    }
}

impl AuthzService {
    /// Decide `check` on the blocking pool, in a verification slot; the
    /// outcome and its answer. Denied `internal_error` when no slot comes
    /// free within [`SLOT_WAIT`], or when the blocking task is lost (the
    /// runtime shutting down): fail closed.
    pub(crate) async fn answer_off_worker(
        &self,
        check: Arc<CheckRequest>,
        now_ms: i64,
    ) -> (Outcome, CheckResponse) {
        let shared = &self.shared;
        let slots = &shared.verify_slots;
        let permit = match Arc::clone(&slots.permits).try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                shared.metrics.verification_slots.waited.inc();
                tokio::time::timeout(SLOT_WAIT, Arc::clone(&slots.permits).acquire_owned())
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
        };
        let Some(permit) = permit else {
            shared.metrics.verification_slots.refused.inc();
            return refused();
        };
        let service = self.clone();
        let decided = tokio::task::spawn_blocking(move || {
            // `answer` catches a panic of the decision itself.
            let (decided, response) = service.answer(&check, now_ms);
            drop(permit);
            (decided.outcome, response)
        })
        .await;
        decided.unwrap_or_else(|_| {
            self.shared.metrics.record_panic("decide");
            refused()
        })
    }
}

/// The `internal_error` deny of a check that could not be decided.
fn refused() -> (Outcome, CheckResponse) {
    let outcome = Outcome::denied(DenyReason::InternalError);
    let response = answer::check_response(&outcome);
    (outcome, response)
}

/// A gate the unit tests hold a verification at, to prove that a cached
/// caller is answered while verifications are in flight. Compiled into the
/// crate's own test build only.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct VerifyGate {
    /// True while verifications must wait.
    closed: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
    /// Verifications that reached the gate.
    pub(crate) reached: std::sync::atomic::AtomicUsize,
}

#[cfg(test)]
impl VerifyGate {
    /// Hold every verification from now on.
    pub(crate) fn close(&self) {
        *self
            .closed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
    }

    /// Let every held verification go on.
    pub(crate) fn open(&self) {
        *self
            .closed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = false;
        self.opened.notify_all();
    }

    /// Wait here while the gate is closed (at most 60 s, so a test that
    /// forgets to open it fails rather than hangs).
    pub(crate) fn pass(&self) {
        self.reached
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let closed = self
            .closed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        drop(
            self.opened
                .wait_timeout_while(closed, Duration::from_secs(60), |closed| *closed),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::VerifySlots;

    #[test]
    fn slots_are_bounded() {
        let slots = VerifySlots::for_this_host();
        assert!((1..=super::MAX_SLOTS).contains(&slots.count()));
        assert_eq!(slots.permits.available_permits(), slots.count());
    }
}
