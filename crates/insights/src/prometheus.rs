//! The mesh-wide call graph from the Prometheus that scrapes every sidecar
//! (`hallpass report --prometheus URL`), instead of one sidecar's memory.
//!
//! Prometheus keeps what every sidecar exported, so the graph is built from
//! instant queries over the metric names hallpass guarantees:
//!
//! - observed edges from `hallpass_decisions_total`, per (source, destination)
//!   (the metric carries no route: routes stay with the sidecars);
//! - new edges from `hallpass_call_path_anomalies_total{kind="new_edge"}`;
//! - rule usage from `hallpass_rule_last_match_timestamp_seconds` (the latest
//!   match across replicas);
//! - declared edges from the policy file, when `--policy` is given (Prometheus
//!   has no copy of the policy).

use std::collections::BTreeMap;
use std::path::PathBuf;

use hallpass_policy::CompiledPolicy;
use hallpass_telemetry::{CallGraph, ObservedEdge, RuleUsage};
use serde_json::Value;
use url::Url;

use crate::InsightsError;
use crate::http::{HttpClient, endpoint};

/// Route label of a Prometheus-built edge (the metric has no route).
pub const ALL_ROUTES: &str = "(all routes)";

/// One instant query (`GET /api/v1/query?query=…`, the PromQL
/// form-encoded by `url`); the result vector.
async fn query(client: &HttpClient, base: &Url, promql: &str) -> Result<Vec<Value>, InsightsError> {
    let mut url = endpoint(base, "/api/v1/query");
    url.query_pairs_mut().append_pair("query", promql);
    let body = client.get_text(&url).await?;
    let invalid = |message: String| InsightsError::Invalid {
        origin: base.to_string(),
        message,
    };
    let answer: Value = serde_json::from_str(&body)
        .map_err(|e| invalid(format!("not a Prometheus answer: {e}")))?;
    if answer.get("status").and_then(Value::as_str) != Some("success") {
        return Err(invalid(format!(
            "query `{promql}` failed: {}",
            answer.get("error").unwrap_or(&Value::Null)
        )));
    }
    Ok(answer
        .pointer("/data/result")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

fn label(sample: &Value, name: &str) -> String {
    sample
        .get("metric")
        .and_then(|m| m.get(name))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn number(sample: &Value) -> f64 {
    sample
        .pointer("/value/1")
        .and_then(Value::as_str)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Build the mesh-wide call graph from Prometheus (and the policy, if given).
pub async fn load(
    client: &HttpClient,
    url: &Url,
    policy: &[PathBuf],
) -> Result<CallGraph, InsightsError> {
    let mut edges: BTreeMap<(String, String), ObservedEdge> = BTreeMap::new();
    let decisions = query(
        client,
        url,
        "sum by (source, destination, decision) (hallpass_decisions_total)",
    )
    .await?;
    for sample in &decisions {
        let key = (label(sample, "source"), label(sample, "destination"));
        let count = number(sample).round().max(0.0) as u64;
        let edge = edges.entry(key.clone()).or_insert_with(|| ObservedEdge {
            source: key.0.clone(),
            destination: key.1.clone(),
            route: ALL_ROUTES.to_owned(),
            method: "*".to_owned(),
            count: 0,
            allowed: 0,
            denied: 0,
            first_seen_ms: 0,
            last_seen_ms: 0,
            new: false,
            spiking: false,
            in_baseline: false,
            ewma_rps: 0.0,
            data_class: Default::default(),
        });
        edge.count += count;
        if label(sample, "decision") == "allow" {
            edge.allowed += count;
        } else {
            edge.denied += count;
        }
    }
    let anomalies = query(
        client,
        url,
        "sum by (source, destination, kind) (hallpass_call_path_anomalies_total{kind=~\"new_edge|rate_spike\"}) > 0",
    )
    .await?;
    for sample in &anomalies {
        if let Some(edge) = edges.get_mut(&(label(sample, "source"), label(sample, "destination")))
        {
            match label(sample, "kind").as_str() {
                "new_edge" => edge.new = true,
                _ => edge.spiking = true,
            }
        }
    }
    for edge in edges.values_mut() {
        edge.in_baseline = !edge.new;
    }
    let rules = query(
        client,
        url,
        "max by (destination, rule) (hallpass_rule_last_match_timestamp_seconds)",
    )
    .await?
    .iter()
    .map(|s| RuleUsage {
        destination: label(s, "destination"),
        rule: label(s, "rule"),
        last_match_seconds: number(s) as i64,
    })
    .collect();
    // The latest start of tracking among the sidecars: a rule is only known
    // unused for as long as every sidecar has tracked it. None: unknown.
    let tracking_since_ms = query(
        client,
        url,
        "max(hallpass_rule_tracking_since_timestamp_seconds)",
    )
    .await?
    .first()
    .map_or(0, |s| (number(s) as i64).saturating_mul(1000));
    let declared = match policy {
        [] => Vec::new(),
        // One file reads as a policy file always did; several files or a
        // directory are combined (`policy.files`).
        [one] if !one.is_dir() => {
            CompiledPolicy::from_file(one)
                .map_err(|e| InsightsError::Policy {
                    path: one.clone(),
                    message: e.to_string(),
                })?
                .declared_graph(None)
                .edges
        }
        paths => {
            hallpass_policy::read_policy_files(paths)
                .and_then(|set| CompiledPolicy::from_files(&set))
                .map_err(|e| InsightsError::Policy {
                    path: paths.first().cloned().unwrap_or_default(),
                    message: e.to_string(),
                })?
                .declared_graph(None)
                .edges
        }
    };
    Ok(CallGraph {
        generated_at_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        learning: false,
        declared,
        observed: edges.into_values().collect(),
        rules,
        tracking_since_ms,
        sources: Vec::new(),
    })
}
