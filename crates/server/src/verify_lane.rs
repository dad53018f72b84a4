//! The verification lane: verification off the runtime worker, at a lower
//! CPU priority. hallpass answers checks on one tokio worker
//! (`hallpass::process::serve_runtime`); a check whose credential is cached
//! takes microseconds, a fresh one costs a signature check per chain link
//! (about 0.1 ms of P-256 on the test machine). Decided inline, a check of a
//! known caller waited behind every verification queued before it, and a
//! flood of new certificates took CPU from the known callers' Envoys too
//! (the 10,000-identity flood, docs/reliability.md).
//!
//! So the check handler first asks whether deciding would verify anything
//! ([`Shared::credentials_cached`](crate::Shared)): if not, it decides
//! inline, as before; if so, the same decision ([`AuthzService::answer`],
//! the one decide) runs on the lane: one dedicated thread whose nice value
//! is raised by [`LANE_NICE`], fed by a queue of at most [`LANE_QUEUE`]
//! checks. The kernel then runs known callers' work (this worker, and on a
//! shared host their Envoys) before verifications of certificates it has
//! never seen. Bounded and fail closed: a check that finds the queue full
//! is denied `internal_error` at once; one not decided within [`LANE_WAIT`]
//! is denied `internal_error` (well before Envoy's own ext_authz timeout
//! would deny it with nothing recorded), and the lane skips it when its
//! turn comes.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::Duration;

use envoy_types::ext_authz::v3::pb::{CheckRequest, CheckResponse};
use hallpass_vocab::DenyReason;
use tokio::sync::oneshot;

use crate::{AuthzService, Outcome, answer};

/// The longest a check waits for its verification before it is denied
/// `internal_error`. Well under the 0.5 s ext_authz timeout the shipped
/// Envoy configs use, so the deny is hallpass's (counted, audited).
pub(crate) const LANE_WAIT: Duration = Duration::from_millis(250);

/// The most checks waiting for the lane. At about 0.1 ms a verification,
/// a full queue drains in tens of milliseconds, inside [`LANE_WAIT`].
pub(crate) const LANE_QUEUE: usize = 256;

/// How much the lane's nice value is raised (a lower priority). Lowering
/// one's own priority needs no privilege.
pub(crate) const LANE_NICE: i32 = 10;

/// One check for the lane: decide it, unless its caller stopped waiting.
type Job = Box<dyn FnOnce() + Send + 'static>;

/// The lane: a bounded queue into its thread. When the thread cannot be
/// started, checks are decided inline, as before the lane existed.
#[derive(Debug)]
pub(crate) struct VerifyLane {
    jobs: Option<SyncSender<Job>>,
}

/// Why the lane did not take a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// [`LANE_QUEUE`] checks are already waiting.
    Full,
    /// The lane thread is gone.
    Gone,
}

impl VerifyLane {
    /// Start the lane's thread (named `hallpass-verify`). It ends when the
    /// lane is dropped.
    pub(crate) fn start() -> Self {
        Self::with_queue(LANE_QUEUE)
    }

    fn with_queue(capacity: usize) -> Self {
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(capacity);
        let started = std::thread::Builder::new()
            .name("hallpass-verify".into())
            .spawn(move || run(&queue));
        match started {
            Ok(_) => Self { jobs: Some(jobs) },
            Err(error) => {
                tracing::warn!(%error, "no verification lane: checks verify on the runtime worker");
                Self { jobs: None }
            }
        }
    }
}

impl VerifyLane {
    /// Queue `job`, never waiting. `Ok(false)`: there is no lane.
    fn submit(&self, job: Job) -> Result<bool, Refusal> {
        let Some(jobs) = &self.jobs else {
            return Ok(false);
        };
        match jobs.try_send(job) {
            Ok(()) => Ok(true),
            Err(TrySendError::Full(_)) => Err(Refusal::Full),
            Err(TrySendError::Disconnected(_)) => Err(Refusal::Gone),
        }
    }
}

/// The lane thread: lower its own priority, then run jobs until every
/// sender is gone.
fn run(queue: &Receiver<Job>) {
    let thread = rustix::thread::gettid();
    // On Linux a thread ID names one thread for setpriority.
    let lowered = rustix::process::getpriority_process(Some(thread))
        .and_then(|nice| rustix::process::setpriority_process(Some(thread), nice + LANE_NICE));
    if let Err(error) = lowered {
        tracing::warn!(%error, "the verification lane keeps the default CPU priority");
    }
    while let Ok(job) = queue.recv() {
        job();
    }
}

impl AuthzService {
    /// Decide `check` on the verification lane; the outcome and its
    /// answer. `None` when there is no lane (decide inline). Denied
    /// `internal_error` when the queue is full, when the lane does not
    /// decide within [`LANE_WAIT`], or when the lane is gone: fail closed.
    pub(crate) async fn answer_on_lane(
        &self,
        check: Arc<CheckRequest>,
        now_ms: i64,
    ) -> Option<(Outcome, CheckResponse)> {
        let lane = &self.shared.metrics.verification_lane;
        let (reply, answered) = oneshot::channel();
        let service = self.clone();
        let job: Job = Box::new(move || {
            // A check whose caller stopped waiting is not decided at all.
            if reply.is_closed() {
                return;
            }
            // `answer` catches a panic of the decision itself.
            let (decided, response) = service.answer(&check, now_ms);
            drop(reply.send((decided.outcome, response)));
        });
        match self.shared.verify_lane.submit(job) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(Refusal::Full) => {
                lane.full.inc();
                return Some(refused());
            }
            Err(Refusal::Gone) => {
                self.shared.metrics.record_panic("verify-lane");
                return Some(refused());
            }
        }
        Some(match tokio::time::timeout(LANE_WAIT, answered).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => {
                // The job was dropped unrun: the lane thread is gone.
                self.shared.metrics.record_panic("verify-lane");
                refused()
            }
            Err(_) => {
                lane.timed_out.inc();
                refused()
            }
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
    use super::{LANE_NICE, Refusal, VerifyLane};

    /// The queue holds at most its capacity: with the lane thread busy and
    /// the queue full, one more job is refused at once, never waits; once
    /// the lane is free, queued jobs run.
    #[test]
    fn a_full_queue_refuses_at_once() {
        let lane = VerifyLane::with_queue(1);
        let (hold, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = std::sync::mpsc::channel::<()>();
        let (ran, done) = std::sync::mpsc::channel::<()>();
        assert_eq!(
            lane.submit(Box::new(move || {
                started.send(()).unwrap();
                held.recv().ok();
            })),
            Ok(true)
        );
        running.recv().unwrap();
        assert_eq!(
            lane.submit(Box::new(move || ran.send(()).unwrap())),
            Ok(true)
        );
        assert_eq!(lane.submit(Box::new(|| {})), Err(Refusal::Full));
        hold.send(()).unwrap();
        done.recv().unwrap();
        assert_eq!(VerifyLane { jobs: None }.submit(Box::new(|| {})), Ok(false));
    }

    /// The lane thread runs at a nice value [`LANE_NICE`] above the
    /// process's, read back from `/proc` (the thread named
    /// `hallpass-verify`).
    #[test]
    fn the_lane_thread_runs_at_a_lower_priority() {
        let lane = VerifyLane::start();
        let (tx, rx) = std::sync::mpsc::channel();
        let job = Box::new(move || {
            tx.send(rustix::thread::gettid().as_raw_nonzero().get())
                .unwrap();
        });
        assert_eq!(lane.submit(job), Ok(true));
        let tid = rx.recv().unwrap();
        let nice = |path: &str| -> i32 {
            let stat = std::fs::read_to_string(path).unwrap();
            // Field 19 of stat, counted after the `(comm)` field.
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            after.split(' ').nth(16).unwrap().parse().unwrap()
        };
        let comm = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap();
        assert_eq!(comm.trim(), "hallpass-verify");
        let own = nice("/proc/self/stat");
        assert_eq!(
            nice(&format!("/proc/self/task/{tid}/stat")),
            (own + LANE_NICE).min(19)
        );
    }
}
