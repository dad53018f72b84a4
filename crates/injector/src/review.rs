//! AdmissionReview v1 in, AdmissionReview v1 out.

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use kube_core::DynamicObject;
use kube_core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};

use serde_json::Value;

use crate::config::InjectorConfig;
use crate::inject::{self, Decision, Scope};

/// What happened to one review: for the metric and the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewOutcome {
    /// Patched.
    Injected,
    /// Admitted unchanged (not a pod CREATE, not opted in, opted out, already injected).
    Skipped(&'static str),
    /// Refused with a reason.
    Rejected,
    /// The body was not an AdmissionReview.
    Invalid,
}

impl ReviewOutcome {
    /// `injected`, `skipped`, `rejected` or `invalid`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Injected => "injected",
            Self::Skipped(_) => "skipped",
            Self::Rejected => "rejected",
            Self::Invalid => "invalid",
        }
    }
}

/// The answer as the API server reads it. Kubernetes declares `patch` as Go
/// `[]byte`, whose JSON form is a base64 string; kube-core serializes its
/// `Vec<u8>` as an array of numbers, so the patch is re-encoded here.
pub fn to_wire(review: &AdmissionReview<DynamicObject>) -> Result<Value, serde_json::Error> {
    let mut value = serde_json::to_value(review)?;
    if let Some(patch) = value.pointer_mut("/response/patch")
        && let Value::Array(items) = patch
    {
        let bytes: Vec<u8> = items
            .iter()
            .map(|b| {
                b.as_u64()
                    .and_then(|b| u8::try_from(b).ok())
                    .unwrap_or_default()
            })
            .collect();
        *patch = Value::String(BASE64_STANDARD.encode(bytes));
    }
    Ok(value)
}

/// Answer one AdmissionReview body. Never fails: an unreadable body gets an
/// `AdmissionResponse::invalid` (a refusal, so failurePolicy does not apply).
pub fn review(
    config: &InjectorConfig,
    scope: Scope,
    body: &[u8],
) -> (AdmissionReview<DynamicObject>, ReviewOutcome) {
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return (
                AdmissionResponse::invalid(format!("not an AdmissionReview: {e}")).into_review(),
                ReviewOutcome::Invalid,
            );
        }
    };
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(e) => {
            return (
                AdmissionResponse::invalid(e).into_review(),
                ReviewOutcome::Invalid,
            );
        }
    };
    let (response, outcome) = answer(config, scope, &request);
    log(&request, outcome, &response);
    (response.into_review(), outcome)
}

fn answer(
    config: &InjectorConfig,
    scope: Scope,
    request: &AdmissionRequest<DynamicObject>,
) -> (AdmissionResponse, ReviewOutcome) {
    let response = AdmissionResponse::from(request);
    if request.kind.kind != "Pod" || !request.kind.group.is_empty() {
        return (response, ReviewOutcome::Skipped("not_a_pod"));
    }
    if request.operation != Operation::Create || request.sub_resource.is_some() {
        return (response, ReviewOutcome::Skipped("not_a_create"));
    }
    let Some(object) = &request.object else {
        return (
            response.deny("the request carries no pod"),
            ReviewOutcome::Rejected,
        );
    };
    let pod = match serde_json::to_value(object) {
        Ok(v) => v,
        Err(e) => {
            return (
                response.deny(format!("cannot read the pod: {e}")),
                ReviewOutcome::Rejected,
            );
        }
    };
    match inject::decide(config, scope, &pod) {
        Decision::Skip(skip) => (response, ReviewOutcome::Skipped(skip.as_str())),
        Decision::Reject(problems) => {
            let reasons: Vec<String> = problems.iter().map(ToString::to_string).collect();
            (
                response.deny(format!("hallpass injection: {}", reasons.join("; "))),
                ReviewOutcome::Rejected,
            )
        }
        Decision::Inject(injection) => match response.clone().with_patch(injection.patch) {
            Ok(patched) => (patched, ReviewOutcome::Injected),
            Err(e) => (
                response.deny(format!("hallpass injection: {e}")),
                ReviewOutcome::Rejected,
            ),
        },
    }
}

fn log(
    request: &AdmissionRequest<DynamicObject>,
    outcome: ReviewOutcome,
    response: &AdmissionResponse,
) {
    let namespace = request.namespace.as_deref().unwrap_or("");
    let name = request
        .object
        .as_ref()
        .and_then(|o| {
            o.metadata
                .name
                .clone()
                .or_else(|| o.metadata.generate_name.clone())
        })
        .unwrap_or_default();
    match outcome {
        ReviewOutcome::Injected => {
            tracing::info!(namespace, pod = %name, uid = %request.uid, dry_run = request.dry_run, "injected")
        }
        ReviewOutcome::Skipped(why) => {
            tracing::debug!(namespace, pod = %name, uid = %request.uid, why, "skipped")
        }
        ReviewOutcome::Rejected => {
            tracing::warn!(namespace, pod = %name, uid = %request.uid, reason = %response.result.message, "rejected")
        }
        ReviewOutcome::Invalid => {}
    }
}
