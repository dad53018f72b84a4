//! The identity flood: many distinct caller certificates sent straight to
//! hallpass's authz port by a real gRPC client, as the Envoys of that many
//! callers would send them (Envoy presents one certificate per caller).
//!
//! It runs as its own process (`hallpass-flood`), so the flood generator's
//! CPU can be kept out of the way of the system under test: the test starts
//! it at `nice 19`, where it only takes CPU nothing else wants, which stands
//! in for callers on other machines. A release build of it
//! (`HALLPASS_FLOOD_BIN`) is what the published figures use.
//!
//! The certificates come from a file, one per line: `good` or `bad`, a
//! space, and the certificate as Envoy encodes it for ext_authz (URL-encoded
//! PEM, so one line). A good one must get 403 `no_matching_rule` (the
//! policy names no such caller), a bad one 401 `invalid_svid`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use envoy_types::ext_authz::v3::pb::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;

/// One flood certificate and whether its chain is good.
#[derive(Clone, Debug)]
pub struct FloodCert {
    /// The certificate as Envoy sends it (URL-encoded PEM).
    pub encoded: String,
    /// Issued by the mesh CA (true) or a rogue CA of the same trust domain.
    pub good: bool,
}

/// Write the flood's certificates to `path` (the format in the module docs).
pub fn write_certs(path: &Path, certs: &[FloodCert]) -> anyhow::Result<()> {
    let mut text = String::new();
    for c in certs {
        text.push_str(if c.good { "good " } else { "bad " });
        text.push_str(&c.encoded);
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Read what [`write_certs`] wrote.
pub fn read_certs(path: &Path) -> anyhow::Result<Vec<FloodCert>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(n, line)| match line.split_once(' ') {
            Some(("good", c)) => Ok(FloodCert {
                encoded: c.into(),
                good: true,
            }),
            Some(("bad", c)) => Ok(FloodCert {
                encoded: c.into(),
                good: false,
            }),
            _ => bail!(
                "{}:{}: expected `good|bad <certificate>`",
                path.display(),
                n + 1
            ),
        })
        .collect()
}

/// What a flood run saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FloodResult {
    /// Checks sent.
    pub sent: usize,
    /// Answered, but not as the certificate deserves.
    pub wrong: usize,
    /// Not answered (a transport error or no HTTP response).
    pub unanswered: usize,
    /// From the first send to the last answer.
    pub elapsed: Duration,
}

impl FloodResult {
    /// One line of JSON (what `hallpass-flood` prints).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "sent": self.sent,
            "wrong": self.wrong,
            "unanswered": self.unanswered,
            "elapsed_ms": self.elapsed.as_secs_f64() * 1000.0,
        })
    }

    /// Parse [`FloodResult::to_json`]'s line.
    pub fn from_json(line: &str) -> anyhow::Result<Self> {
        let v: serde_json::Value = serde_json::from_str(line.trim())
            .with_context(|| format!("the flood's result line {line:?}"))?;
        let n = |k: &str| {
            v[k].as_u64()
                .map(|n| n as usize)
                .with_context(|| format!("no {k} in {line:?}"))
        };
        Ok(Self {
            sent: n("sent")?,
            wrong: n("wrong")?,
            unanswered: n("unanswered")?,
            elapsed: Duration::from_secs_f64(
                v["elapsed_ms"].as_f64().context("no elapsed_ms")? / 1000.0,
            ),
        })
    }

    /// Checks per second.
    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Send `checks` checks to `authz` (`http://127.0.0.1:PORT`), going round
/// the certificates in order (more checks than certificates start again
/// from the first: with more certificates than the verification cache
/// holds, each is still one it has to verify), from `workers` concurrent
/// gRPC calls over one HTTP/2 connection, as fast as hallpass answers, or
/// paced to `rate` checks a second.
pub async fn run(
    authz: String,
    certs: Vec<FloodCert>,
    checks: usize,
    workers: usize,
    rate: Option<f64>,
) -> anyhow::Result<FloodResult> {
    if certs.is_empty() {
        bail!("no certificates to flood with");
    }
    let channel = tonic::transport::Endpoint::from_shared(authz)?
        .connect()
        .await
        .context("connecting to the authz port")?;
    let certs = Arc::new(certs);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let start = tokio::time::Instant::from_std(started);
    let mut tasks = Vec::new();
    for _ in 0..workers.max(1) {
        let mut client = AuthorizationClient::new(channel.clone());
        let (certs, next) = (certs.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let (mut wrong, mut unanswered) = (0usize, 0usize);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= checks {
                    return (wrong, unanswered);
                }
                let Some(cert) = certs.get(i % certs.len()) else {
                    return (wrong, unanswered);
                };
                if let Some(rate) = rate {
                    tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate))
                        .await;
                }
                let want = if cert.good {
                    (403, "no_matching_rule")
                } else {
                    (401, "invalid_svid")
                };
                match check_as(&mut client, cert.encoded.clone()).await {
                    Some((status, reason)) if (status, reason.as_str()) == want => {}
                    Some(_) => wrong += 1,
                    None => unanswered += 1,
                }
            }
        }));
    }
    let mut result = FloodResult {
        sent: checks,
        ..FloodResult::default()
    };
    for t in tasks {
        let (wrong, unanswered) = t.await?;
        result.wrong += wrong;
        result.unanswered += unanswered;
    }
    result.elapsed = started.elapsed();
    Ok(result)
}

/// One check as the caller presenting `certificate`: the status and
/// `x-hallpass-reason` of the answer.
pub async fn check_as(
    client: &mut AuthorizationClient<tonic::transport::Channel>,
    certificate: String,
) -> Option<(u32, String)> {
    let request = CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(Peer {
                certificate,
                ..Default::default()
            }),
            request: Some(Request {
                http: Some(HttpRequest {
                    method: "GET".into(),
                    path: "/patients/7/results".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    let response = client.check(request).await.ok()?.into_inner();
    match response.http_response? {
        HttpResponse::DeniedResponse(d) => {
            let reason = d
                .headers
                .iter()
                .filter_map(|h| h.header.as_ref())
                .find(|h| h.key == "x-hallpass-reason")
                .map(|h| h.value.clone())
                .unwrap_or_default();
            Some((d.status.map_or(0, |s| s.code as u32), reason))
        }
        HttpResponse::OkResponse(_) => Some((200, String::new())),
        _ => None,
    }
}
