//! AdmissionReview v1 in, AdmissionReview v1 out.

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use kube_core::DynamicObject;
use kube_core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};

use serde_json::Value;

use crate::config::InjectorConfig;
use crate::guard::{self, Change};
use crate::inject::{self, Decision, Scope};
use crate::posture::Override;

/// Which webhook a review came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Webhook {
    /// A mutating webhook (`/mutate`, `/mutate/namespace`): inject.
    Mutate(Scope),
    /// The validating webhook (`/validate`): guard what the injector owns.
    Validate,
}

/// What happened to one review: for the metric and the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewOutcome {
    /// Patched.
    Injected,
    /// Admitted unchanged (not a pod CREATE, not opted in, opted out, already injected).
    Skipped(&'static str),
    /// Admitted by the validating webhook.
    Allowed,
    /// Refused with a reason.
    Rejected,
    /// The body was not an AdmissionReview.
    Invalid,
}

impl ReviewOutcome {
    /// `injected`, `skipped`, `allowed`, `rejected` or `invalid`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Injected => "injected",
            Self::Skipped(_) => "skipped",
            Self::Allowed => "allowed",
            Self::Rejected => "rejected",
            Self::Invalid => "invalid",
        }
    }
}

/// One review answered.
#[derive(Debug)]
pub struct Reviewed {
    /// The answer.
    pub review: AdmissionReview<DynamicObject>,
    /// What happened.
    pub outcome: ReviewOutcome,
    /// The overrides applied (for `hallpass_injector_overrides_total`).
    pub overrides: Vec<Override>,
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

/// Answer one AdmissionReview body through a mutating webhook. Never fails:
/// an unreadable body gets an `AdmissionResponse::invalid` (a refusal, so
/// failurePolicy does not apply).
pub fn review(
    config: &InjectorConfig,
    scope: Scope,
    body: &[u8],
) -> (AdmissionReview<DynamicObject>, ReviewOutcome) {
    let r = answer_review(config, Webhook::Mutate(scope), body);
    (r.review, r.outcome)
}

/// Answer one AdmissionReview body through `webhook`.
pub fn answer_review(config: &InjectorConfig, webhook: Webhook, body: &[u8]) -> Reviewed {
    let invalid = |message: String| Reviewed {
        review: AdmissionResponse::invalid(message).into_review(),
        outcome: ReviewOutcome::Invalid,
        overrides: Vec::new(),
    };
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return invalid(format!("not an AdmissionReview: {e}")),
    };
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(e) => return invalid(e.to_string()),
    };
    let (response, outcome, overrides) = match webhook {
        Webhook::Mutate(scope) => answer(config, scope, &request),
        Webhook::Validate => validate(config, &request),
    };
    log(&request, outcome, &response);
    Reviewed {
        review: response.into_review(),
        outcome,
        overrides,
    }
}

fn as_json(object: &DynamicObject) -> Result<Value, String> {
    serde_json::to_value(object).map_err(|e| format!("cannot read the pod: {e}"))
}

fn answer(
    config: &InjectorConfig,
    scope: Scope,
    request: &AdmissionRequest<DynamicObject>,
) -> (AdmissionResponse, ReviewOutcome, Vec<Override>) {
    let response = AdmissionResponse::from(request);
    if request.kind.kind != "Pod" || !request.kind.group.is_empty() {
        return (response, ReviewOutcome::Skipped("not_a_pod"), Vec::new());
    }
    if request.operation != Operation::Create || request.sub_resource.is_some() {
        return (response, ReviewOutcome::Skipped("not_a_create"), Vec::new());
    }
    let refuse = |response: AdmissionResponse, message: String| {
        (response.deny(message), ReviewOutcome::Rejected, Vec::new())
    };
    let Some(object) = &request.object else {
        return refuse(response, "the request carries no pod".into());
    };
    let Some(namespace) = request.namespace.as_deref() else {
        return refuse(response, "the request names no namespace".into());
    };
    let pod = match as_json(object) {
        Ok(v) => v,
        Err(e) => return refuse(response, e),
    };
    let decision = inject::decide(config, scope, namespace, &pod);
    let overrides = decision.overrides();
    match decision {
        Decision::Skip(skip) => (response, ReviewOutcome::Skipped(skip.as_str()), overrides),
        Decision::Reject(problems) => refuse(response, refusal(&problems)),
        Decision::Inject(injection) => match response.clone().with_patch(injection.patch) {
            Ok(patched) => (patched, ReviewOutcome::Injected, overrides),
            Err(e) => refuse(response, format!("hallpass injection: {e}")),
        },
    }
}

fn validate(
    config: &InjectorConfig,
    request: &AdmissionRequest<DynamicObject>,
) -> (AdmissionResponse, ReviewOutcome, Vec<Override>) {
    let response = AdmissionResponse::from(request);
    if request.kind.kind != "Pod" || !request.kind.group.is_empty() {
        return (response, ReviewOutcome::Allowed, Vec::new());
    }
    let change = match (&request.operation, request.sub_resource.as_deref()) {
        (Operation::Create, None) => Change::Create,
        (Operation::Update, None | Some("ephemeralcontainers")) => Change::Update,
        _ => return (response, ReviewOutcome::Allowed, Vec::new()),
    };
    let refuse = |response: AdmissionResponse, message: String| {
        (response.deny(message), ReviewOutcome::Rejected, Vec::new())
    };
    let (Some(object), Some(namespace)) = (&request.object, request.namespace.as_deref()) else {
        return refuse(
            response,
            "the request carries no pod or no namespace".into(),
        );
    };
    let new = match as_json(object) {
        Ok(v) => v,
        Err(e) => return refuse(response, e),
    };
    let old = match request.old_object.as_ref().map(as_json).transpose() {
        Ok(v) => v,
        Err(e) => return refuse(response, e),
    };
    match guard::check(config, namespace, change, old.as_ref(), &new) {
        Ok(overrides) => (response, ReviewOutcome::Allowed, overrides),
        Err(problems) => refuse(response, refusal(&problems)),
    }
}

/// The message shown to whoever created or changed the pod.
fn refusal(problems: &[crate::Problem]) -> String {
    let reasons: Vec<String> = problems.iter().map(ToString::to_string).collect();
    format!("hallpass injection: {}", reasons.join("; "))
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
        ReviewOutcome::Allowed => {
            tracing::debug!(namespace, pod = %name, uid = %request.uid, "allowed")
        }
        ReviewOutcome::Rejected => {
            tracing::warn!(namespace, pod = %name, uid = %request.uid, reason = %response.result.message, "rejected")
        }
        ReviewOutcome::Invalid => {}
    }
}
