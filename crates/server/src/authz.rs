use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use envoy_types::ext_authz::v3::pb::{Authorization, CheckRequest, CheckResponse};
use tonic::{Request, Response, Status};

use crate::{Shared, answer};

/// The ext_authz v3 `Authorization` gRPC service.
#[derive(Debug, Clone)]
pub struct AuthzService {
    shared: Arc<Shared>,
}

impl AuthzService {
    /// A service deciding with `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
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
        let check = request.into_inner();
        // Always an answer, never an Err: Err would hand the decision to
        // Envoy's failure mode instead of ours.
        let now_ms = unix_now_ms();
        let outcome = self.shared.decide(&check, now_ms);
        let response = answer::check_response(&outcome);
        self.shared
            .metrics
            .check_duration
            .observe(started.elapsed().as_secs_f64());
        self.shared.record(&outcome, &check, now_ms);
        Ok(Response::new(response))
    }
}
