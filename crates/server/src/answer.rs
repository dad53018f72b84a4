//! The answers given to Envoy (design §2 step 6), built from an [`Outcome`].
//!
//! [`deny_status`] is the one place where a reason becomes an HTTP status and
//! an error word; the body never reveals policy contents.

use envoy_types::ext_authz::v3::pb::{CheckResponse, HeaderAppendAction, HttpStatusCode};
use envoy_types::ext_authz::v3::{
    CheckResponseExt, DeniedHttpResponseBuilder, OkHttpResponseBuilder,
};
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use hallpass_policy::Decision;
use hallpass_vocab::{DenyReason, reason_label};

use crate::Outcome;

/// Header that tells the application who called; set only by hallpass.
pub const SOURCE_HEADER: &str = "x-hallpass-source";
/// Header carrying the deny reason code.
pub const REASON_HEADER: &str = "x-hallpass-reason";

/// HTTP status and error word for a deny reason: 401 `unauthenticated` when no
/// valid identity was proven, 403 `forbidden` when a valid identity is not
/// permitted.
pub const fn deny_status(reason: DenyReason) -> (HttpStatusCode, u16, &'static str) {
    if reason.is_unauthenticated() {
        (HttpStatusCode::Unauthorized, 401, "unauthenticated")
    } else {
        (HttpStatusCode::Forbidden, 403, "forbidden")
    }
}

/// The JSON body of a deny.
pub fn deny_body(reason: DenyReason) -> String {
    let (_, _, error) = deny_status(reason);
    format!(r#"{{"error":"{error}","reason":"{}"}}"#, reason.code())
}

/// Build the `CheckResponse` for an outcome.
pub fn check_response(outcome: &Outcome) -> CheckResponse {
    let mut response = CheckResponse::default();
    if outcome.lets_through() {
        let mut ok = OkHttpResponseBuilder::new();
        match outcome.vouched_source_text() {
            // Overwrite: whatever the caller sent under this name is replaced.
            Some(id) => {
                ok.add_header(
                    SOURCE_HEADER,
                    id,
                    Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
                    false,
                );
            }
            None => {
                ok.remove_header(SOURCE_HEADER);
            }
        }
        response.set_status(tonic::Status::ok(""));
        response.set_http_response(ok);
    } else {
        let reason = match outcome.decision {
            Decision::Deny { reason } => reason,
            Decision::Allow { .. } => DenyReason::InternalError,
        };
        let (status, _, _) = deny_status(reason);
        let mut denied = DeniedHttpResponseBuilder::new();
        denied
            .set_http_status(status)
            .add_header(
                REASON_HEADER,
                reason.code(),
                Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
                false,
            )
            .add_header(
                "content-type",
                "application/json",
                Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
                false,
            )
            .set_body(deny_body(reason));
        let code = if reason.is_unauthenticated() {
            tonic::Code::Unauthenticated
        } else {
            tonic::Code::PermissionDenied
        };
        response.set_status(tonic::Status::new(code, reason.code()));
        response.set_http_response(denied);
    }
    response.set_dynamic_metadata(Some(metadata(outcome)));
    response
}

/// Dynamic metadata for Envoy's access log: bounded values only.
fn metadata(outcome: &Outcome) -> Struct {
    let text = |s: &str| Value {
        kind: Some(Kind::StringValue(s.to_owned())),
    };
    // Straight into the message's map: at most five entries.
    let mut fields = std::collections::HashMap::with_capacity(5);
    fields.insert("source".to_owned(), text(&outcome.source_label));
    fields.insert(
        "decision".to_owned(),
        text(outcome.decision_label().as_str()),
    );
    fields.insert(
        "reason".to_owned(),
        text(reason_label(outcome.decision.deny_reason())),
    );
    if let Decision::Allow { rule, route } = &outcome.decision {
        fields.insert("rule".to_owned(), text(rule));
        fields.insert("route".to_owned(), text(route));
    }
    Struct { fields }
}
