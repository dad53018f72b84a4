//! Trust bundles streamed from the SPIFFE Workload API (a SPIRE agent).
//!
//! The `spiffe` client's streams do not reconnect, so this task does: it
//! connects, streams X.509 bundles (federated ones included) and, when JWT-SVIDs
//! are configured, JWT bundles, and on any error or end of stream waits with
//! exponential backoff (capped) and starts again. Each message carries the
//! full bundle set, so a trust domain missing from a message is dropped.
//! While disconnected, the last good bundles stay in force.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hallpass_identity::{JwtAuthorities, TrustDomain, X509Bundle, parse_jwk};
use hallpass_vocab::CredentialKind;
use spiffe::{JwtBundleSet, WorkloadApiClient, X509BundleSet};
use tokio::sync::watch;
use tokio_stream::StreamExt;

use crate::Shared;

const BACKOFF_START: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Keep the Workload API bundles current until `stop` turns true.
pub(crate) async fn run(shared: Arc<Shared>, endpoint: String, mut stop: watch::Receiver<bool>) {
    let mut backoff = BACKOFF_START;
    let mut attempt: u64 = 0;
    loop {
        if attempt > 0 {
            shared.metrics.workload_api_reconnects.inc();
        }
        attempt += 1;
        let mut received = false;
        let result = tokio::select! {
            r = session(&shared, &endpoint, &mut received) => r,
            _ = stop.changed() => return,
        };
        shared.metrics.workload_api_connected.set(0);
        match result {
            Ok(()) => {
                tracing::warn!(endpoint = %endpoint, "Workload API stream ended; keeping the last bundles and reconnecting")
            }
            Err(e) => {
                tracing::warn!(endpoint = %endpoint, error = %e, "Workload API unavailable; keeping the last bundles and reconnecting")
            }
        }
        if received {
            backoff = BACKOFF_START;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

async fn session(shared: &Shared, endpoint: &str, received: &mut bool) -> Result<(), String> {
    let client = WorkloadApiClient::connect_to(endpoint)
        .await
        .map_err(|e| e.to_string())?;
    let mut x509 = client
        .stream_x509_bundles()
        .await
        .map_err(|e| e.to_string())?;
    let mut jwt = match shared.jwt {
        Some(_) => Some(
            client
                .stream_jwt_bundles()
                .await
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    shared.metrics.workload_api_connected.set(1);
    tracing::info!(endpoint = %endpoint, "Workload API connected");
    loop {
        tokio::select! {
            message = x509.next() => match message {
                Some(Ok(set)) => {
                    *received = true;
                    shared.metrics.record_workload_api_update(CredentialKind::X509);
                    shared.trust.set_api_x509(x509_bundles(&set), &shared.metrics);
                }
                Some(Err(e)) => return Err(e.to_string()),
                None => return Ok(()),
            },
            message = async { jwt.as_mut()?.next().await }, if jwt.is_some() => match message {
                Some(Ok(set)) => {
                    *received = true;
                    shared.metrics.record_workload_api_update(CredentialKind::Jwt);
                    shared.trust.set_api_jwt(jwt_bundles(&set), &shared.metrics);
                }
                Some(Err(e)) => return Err(e.to_string()),
                None => return Ok(()),
            },
        }
    }
}

/// Convert the client's X.509 bundle set; a bundle that does not convert is
/// left out (and logged), never half-trusted.
fn x509_bundles(set: &X509BundleSet) -> HashMap<TrustDomain, X509Bundle> {
    let mut out = HashMap::new();
    for (td, bundle) in set.iter() {
        let ders: Vec<Vec<u8>> = bundle
            .authorities()
            .iter()
            .map(|c| c.as_bytes().to_vec())
            .collect();
        match X509Bundle::from_ders(td, &ders) {
            Ok(b) => {
                out.insert(td.clone(), b);
            }
            Err(e) => {
                tracing::error!(trust_domain = %td, error = %e, "unusable X.509 bundle from the Workload API")
            }
        }
    }
    out
}

fn jwt_bundles(set: &JwtBundleSet) -> HashMap<TrustDomain, JwtAuthorities> {
    let mut out = HashMap::new();
    for (td, bundle) in set.iter() {
        let mut keys = JwtAuthorities::new();
        for authority in bundle.jwt_authorities() {
            match parse_jwk(authority.jwk_json()) {
                Ok(key) => {
                    keys.insert(authority.key_id().to_owned(), key);
                }
                Err(e) => {
                    tracing::error!(trust_domain = %td, kid = authority.key_id(), error = %e, "unusable JWT key from the Workload API")
                }
            }
        }
        out.insert(td.clone(), keys);
    }
    out
}
