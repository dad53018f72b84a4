//! The injector's HTTPS server, end to end over real TLS: AdmissionReviews
//! on both webhook paths, health and metrics, and the serving certificate
//! replaced on disk (as cert-manager and the kubelet do) without a restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::https::{Pki, https, pki};
use common::*;
use hallpass_injector::{Injector, InjectorConfig};
use serde_json::Value;
use tokio::sync::oneshot;

/// Replace a file the way the kubelet updates a Secret volume: write
/// elsewhere, then rename over it.
fn replace(path: &Path, contents: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

async fn start(pki: &Pki) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    std::fs::write(&cert, &pki.cert_pem).unwrap();
    std::fs::write(&key, &pki.key_pem).unwrap();
    let config = InjectorConfig::from_yaml(&format!(
        "listen: 127.0.0.1:0\nshutdownDelaySeconds: 0\ntls: {{certFile: {}, keyFile: {}, reloadIntervalSeconds: 1}}\n",
        cert.display(),
        key.display()
    ))
    .unwrap();
    let injector = Injector::bind(config).await.unwrap();
    let addr = injector.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        injector
            .run(async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Running {
        addr,
        stop: Some(stop),
        done,
        _dir: dir,
        cert,
        key,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_admission_reviews_over_tls() {
    let pki = pki("webhook CA one");
    let mut server = start(&pki).await;

    let (status, body) = https(server.addr, &pki.ca_pem, "GET", "/healthz", b"")
        .await
        .unwrap();
    assert_eq!((status, body.as_slice()), (200, b"ok\n".as_slice()));

    // The pod webhook path: an annotated pod is injected.
    let (status, body) = https(
        server.addr,
        &pki.ca_pem,
        "POST",
        "/mutate",
        &fixture("pod-annotated.json"),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let answer = parse_answer(serde_json::from_slice(&body).unwrap());
    assert_eq!(answer.uid, "5a1f7e2c-0c4b-4f55-8d0e-1b2c3d4e5f60");
    assert!(answer.allowed);
    let patched = apply(&answer, &fixture_pod("pod-annotated.json"));
    assert_eq!(init_container_names(&patched), ["hallpass"]);

    // Same path, a pod that did not opt in: admitted, untouched.
    let (_, body) = https(
        server.addr,
        &pki.ca_pem,
        "POST",
        "/mutate",
        &fixture("pod-plain.json"),
    )
    .await
    .unwrap();
    let review: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(review["response"]["allowed"], true);
    assert!(review["response"].get("patch").is_none());

    // The namespace webhook path: the same pod is injected.
    let (_, body) = https(
        server.addr,
        &pki.ca_pem,
        "POST",
        "/mutate/namespace",
        &fixture("pod-plain.json"),
    )
    .await
    .unwrap();
    let answer = parse_answer(serde_json::from_slice(&body).unwrap());
    assert!(answer.patch.is_some(), "{}", answer.wire);

    // Garbage gets an AdmissionReview refusal, not a 4xx/5xx.
    let (status, body) = https(server.addr, &pki.ca_pem, "POST", "/mutate", b"[]")
        .await
        .unwrap();
    assert_eq!(status, 200);
    let review: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(review["response"]["allowed"], false);

    let (_, body) = https(server.addr, &pki.ca_pem, "GET", "/metrics", b"")
        .await
        .unwrap();
    let metrics = String::from_utf8(body).unwrap();
    for line in [
        "hallpass_injector_reviews_total{outcome=\"injected\",reason=\"\"} 2",
        "hallpass_injector_reviews_total{outcome=\"skipped\",reason=\"not_opted_in\"} 1",
        "hallpass_injector_reviews_total{outcome=\"invalid\",reason=\"\"} 1",
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    assert!(metrics.contains("hallpass_injector_certificate_expiry_timestamp_seconds "));

    server.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server.done)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_certificate_is_served_without_a_restart() {
    let one = pki("webhook CA one");
    let two = pki("webhook CA two");
    let mut server = start(&one).await;
    https(server.addr, &one.ca_pem, "GET", "/healthz", b"")
        .await
        .unwrap();
    let err = https(server.addr, &two.ca_pem, "GET", "/healthz", b"")
        .await
        .unwrap_err();
    assert!(err.contains("TLS"), "{err}");

    // A half-written pair (new certificate, old key) is not served: the old
    // pair stays, and the failure is counted.
    replace(&server.cert, &two.cert_pem);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    https(server.addr, &one.ca_pem, "GET", "/healthz", b"")
        .await
        .expect("still the old certificate");

    // The key arrives: from now on the new certificate is served.
    replace(&server.key, &two.key_pem);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if https(server.addr, &two.ca_pem, "GET", "/healthz", b"")
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let err = https(server.addr, &one.ca_pem, "GET", "/healthz", b"")
        .await
        .unwrap_err();
    assert!(err.contains("TLS"), "{err}");

    let (_, body) = https(server.addr, &two.ca_pem, "GET", "/metrics", b"")
        .await
        .unwrap();
    let metrics = String::from_utf8(body).unwrap();
    assert!(
        metrics.contains("hallpass_injector_certificate_reloads_total{result=\"success\"} 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("hallpass_injector_certificate_reloads_total{result=\"failure\"} 0"),
        "{metrics}"
    );

    server.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server.done)
        .await
        .unwrap()
        .unwrap();
}

#[test]
fn a_certificate_that_cannot_be_served_stops_the_start() {
    let one = pki("webhook CA one");
    let two = pki("webhook CA two");
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    std::fs::write(&cert, &one.cert_pem).unwrap();
    std::fs::write(&key, &two.key_pem).unwrap();
    let err = hallpass_injector::tls::ReloadingCert::load(&cert, &key)
        .unwrap_err()
        .to_string();
    assert!(err.contains("certificate and key"), "{err}");
    std::fs::write(&cert, "not a certificate").unwrap();
    let err = hallpass_injector::tls::ReloadingCert::load(&cert, &key)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no certificate"), "{err}");
}
