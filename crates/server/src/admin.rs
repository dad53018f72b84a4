//! The admin HTTP endpoints: health, readiness, metrics and the call graph.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::Shared;

/// The admin HTTP routes: `/healthz`, `/readyz`, `/metrics`, `/config`,
/// `/callgraph` (JSON, `.dot`, `.html`).
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/config", get(config))
        .route("/callgraph", get(callgraph_json))
        .route("/callgraph.dot", get(callgraph_dot))
        .route("/callgraph.html", get(callgraph_html))
        .with_state(shared)
}

async fn readyz(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let reasons = shared.not_ready_reasons();
    let (status, mut body) = if reasons.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", reasons.join("; ")),
        )
    };
    for warning in shared.readiness_warnings() {
        body.push_str(&format!("warning: {warning}\n"));
    }
    (status, body)
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    match shared.metrics.encode() {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("cannot encode metrics: {e}\n"),
        ),
    }
}

/// The effective config (`Settings` in the config file's shape, secrets
/// redacted): what this sidecar actually runs with, after defaults and
/// `HALLPASS_*` overrides. JSON, which is also YAML `hallpass serve` reads.
async fn config(State(shared): State<Arc<Shared>>) -> axum::response::Response {
    match serde_json::to_string_pretty(&shared.settings) {
        Ok(mut text) => {
            text.push('\n');
            ([(header::CONTENT_TYPE, "application/json")], text).into_response()
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the config: {e}\n"),
        )
            .into_response(),
    }
}

async fn snapshot(shared: &Shared) -> Result<hallpass_telemetry::CallGraph, (StatusCode, String)> {
    shared.telemetry.snapshot().await.ok_or((
        StatusCode::SERVICE_UNAVAILABLE,
        "telemetry is not running\n".to_owned(),
    ))
}

async fn callgraph_json(State(shared): State<Arc<Shared>>) -> axum::response::Response {
    match snapshot(&shared).await {
        Ok(graph) => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string_pretty(&graph).unwrap_or_default(),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn callgraph_dot(State(shared): State<Arc<Shared>>) -> axum::response::Response {
    match snapshot(&shared).await {
        Ok(graph) => (
            [(header::CONTENT_TYPE, "text/vnd.graphviz")],
            hallpass_callgraph_page::to_dot(&graph),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn callgraph_html(State(shared): State<Arc<Shared>>) -> axum::response::Response {
    match snapshot(&shared).await {
        Ok(graph) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            hallpass_callgraph_page::to_html(&graph),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}
