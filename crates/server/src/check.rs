//! One Check call, the way through the sidecar: [decide](crate::Shared::decide)
//! → [answer](crate::answer) → [record](crate::Shared::record), each step
//! guarded so that a panic is still answered, counted and audited.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use envoy_types::ext_authz::v3::pb::{Authorization, CheckRequest, CheckResponse};
use tonic::{Request, Response, Status};

use crate::{Decided, RequestFacts, Shared, answer};

#[cfg(test)]
mod tests;

/// The ext_authz v3 `Authorization` gRPC service.
#[derive(Debug, Clone)]
pub struct AuthzService {
    pub(crate) shared: Arc<Shared>,
}

impl AuthzService {
    /// A service deciding with `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Decide and answer one check. A panic anywhere in the decision is
    /// caught here and becomes an `internal_error` deny that is counted and
    /// audited like any other, instead of a cancelled stream (which Envoy
    /// would turn into its failure mode, with nothing recorded).
    /// `now_ms` is Unix milliseconds. The gRPC `Check` is this, timed and
    /// recorded ([`Shared::record`]).
    pub fn answer<'r>(&self, check: &'r CheckRequest, now_ms: i64) -> (Decided<'r>, CheckResponse) {
        let answered = catch_unwind(AssertUnwindSafe(|| {
            let decided = self.shared.decide(check, now_ms);
            let response = answer::check_response(&decided.outcome);
            (decided, response)
        }));
        answered.unwrap_or_else(|_| {
            self.shared.metrics.record_panic("decide");
            let decided = Decided::failed(check);
            let response = answer::check_response(&decided.outcome);
            (decided, response)
        })
    }
}

/// Current Unix time in milliseconds (0 if the clock is before 1970).
pub(crate) fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[tonic::async_trait]
impl Authorization for AuthzService {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let started = Instant::now();
        let check = Arc::new(request.into_inner());
        // Always an answer, never an Err: Err would hand the decision to
        // Envoy's failure mode instead of ours.
        let now_ms = unix_now_ms();
        // A check that verifies nothing is decided here, at once; one that
        // must verify a credential is decided on the verification lane, so
        // that it never holds up the known callers behind it (verify_lane.rs).
        let off_worker = match check.attributes.as_ref() {
            Some(attrs) if !self.shared.credentials_cached(attrs, now_ms) => {
                self.answer_on_lane(Arc::clone(&check), now_ms).await
            }
            _ => None,
        };
        let (decided, response) = match off_worker {
            Some((outcome, response)) => (
                Decided {
                    outcome,
                    request: RequestFacts::read(&check),
                },
                response,
            ),
            None => self.answer(&check, now_ms),
        };
        if self.shared.settings.telemetry.audit_required {
            // The record is written before the answer leaves (fail closed).
            let response = self.shared.record_required(decided, response, now_ms).await;
            self.shared
                .metrics
                .check_duration
                .observe(started.elapsed().as_secs_f64());
            return Ok(Response::new(response));
        }
        self.shared
            .metrics
            .check_duration
            .observe(started.elapsed().as_secs_f64());
        // Recording never costs the caller its answer.
        if catch_unwind(AssertUnwindSafe(|| {
            self.shared.record(&decided, now_ms);
        }))
        .is_err()
        {
            self.shared.metrics.record_panic("record");
        }
        Ok(Response::new(response))
    }
}
