//! The injector's HTTPS server, end to end over real TLS: AdmissionReviews
//! on both webhook paths, health and metrics, and the serving certificate
//! replaced on disk (as cert-manager and the kubelet do) without a restart.

use crate::common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::https::{Pki, https, pki, tls_connect};
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
    start_with(pki, "").await
}

/// Start with extra config (e.g. `limits: {...}`).
async fn start_with(pki: &Pki, extra: &str) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    std::fs::write(&cert, &pki.cert_pem).unwrap();
    std::fs::write(&key, &pki.key_pem).unwrap();
    let config = InjectorConfig::from_yaml(&format!(
        "listen: 127.0.0.1:0\nshutdownDelaySeconds: 0\ntls: {{certFile: {}, keyFile: {}, reloadIntervalSeconds: 1}}\n{extra}",
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
    let pki = pki();
    let server = start(&pki).await;

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

    let metrics = metrics_of(server.addr, &pki.ca_pem).await;
    for line in [
        "hallpass_injector_reviews_total{outcome=\"injected\",reason=\"\"} 2",
        "hallpass_injector_reviews_total{outcome=\"skipped\",reason=\"not_opted_in\"} 1",
        "hallpass_injector_reviews_total{outcome=\"invalid\",reason=\"\"} 1",
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    assert!(metrics.contains("hallpass_injector_certificate_expiry_timestamp_seconds "));

    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_certificate_is_served_without_a_restart() {
    let one = pki();
    let two = pki();
    let server = start(&one).await;
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

    let metrics = metrics_of(server.addr, &two.ca_pem).await;
    assert!(
        metrics.contains("hallpass_injector_certificate_reloads_total{result=\"success\"} 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("hallpass_injector_certificate_reloads_total{result=\"failure\"} 0"),
        "{metrics}"
    );

    stop(server).await;
}

#[test]
fn a_certificate_that_cannot_be_served_stops_the_start() {
    let one = pki();
    let two = pki();
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

// ------------------------------------------------------------ limits

/// Short limits, so hostile clients are cut off quickly.
const TIGHT: &str = "limits: {maxConnections: 8, maxRequestsInFlight: 2, handshakeTimeoutSeconds: 3, headerTimeoutSeconds: 2, bodyTimeoutSeconds: 2}\n";

/// Read until the server closes the connection (bounded: the test fails if
/// it never does). Returns what was received.
async fn read_until_closed<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server never closed the connection");
    out
}

/// The injector's `/metrics` text.
async fn metrics_of(addr: SocketAddr, ca_pem: &str) -> String {
    let (status, body) = https(addr, ca_pem, "GET", "/metrics", b"").await.unwrap();
    assert_eq!(status, 200);
    String::from_utf8(body).unwrap()
}

fn metric(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
}

async fn stop(mut server: Running) {
    server.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), server.done)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_cut_off() {
    use tokio::io::AsyncWriteExt;
    let pki = pki();
    let server = start_with(&pki, TIGHT).await;

    // Half a request head, then nothing (slowloris).
    let mut slow_head = tls_connect(server.addr, &pki.ca_pem).await.unwrap();
    slow_head
        .write_all(b"POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-type: applica")
        .await
        .unwrap();
    // A connection that never sends a byte after the handshake.
    let mut idle = tls_connect(server.addr, &pki.ca_pem).await.unwrap();
    // TCP only: never starts the TLS handshake.
    let mut no_handshake = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // A whole head announcing 1000 bytes, then 10 of them.
    let mut slow_body = tls_connect(server.addr, &pki.ca_pem).await.unwrap();
    slow_body
        .write_all(b"POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n{\"apiVersi")
        .await
        .unwrap();

    assert!(read_until_closed(&mut slow_head).await.is_empty());
    assert!(read_until_closed(&mut idle).await.is_empty());
    assert!(read_until_closed(&mut no_handshake).await.is_empty());
    let answer = String::from_utf8(read_until_closed(&mut slow_body).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );

    // The webhook still answers, and counted every cut-off.
    let metrics = metrics_of(server.addr, &pki.ca_pem).await;
    assert!(
        metric(
            &metrics,
            "hallpass_injector_limited_total{limit=\"header_timeout\"}"
        ) >= 2.0,
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "hallpass_injector_limited_total{limit=\"handshake_timeout\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &metrics,
            "hallpass_injector_limited_total{limit=\"body_timeout\"}"
        ),
        1.0
    );
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_above_the_api_servers_limit_are_refused() {
    use tokio::io::AsyncWriteExt;
    let pki = pki();
    // The default limits: 3 MiB.
    let server = start(&pki).await;
    let limit = 3 * 1024 * 1024;

    // Announced too large: refused before the body is read.
    let mut announced = tls_connect(server.addr, &pki.ca_pem).await.unwrap();
    announced
        .write_all(
            format!(
                "POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
                limit + 1
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&read_until_closed(&mut announced).await).to_string();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains(&format!("at most {limit} bytes")),
        "{answer}"
    );

    // Chunked, so the size is only known while reading: cut off at the limit.
    let mut chunked = tls_connect(server.addr, &pki.ca_pem).await.unwrap();
    chunked
        .write_all(
            b"POST /mutate/namespace HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n",
        )
        .await
        .unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent <= limit + chunk.len() {
        let head = format!("{:x}\r\n", chunk.len());
        if chunked.write_all(head.as_bytes()).await.is_err()
            || chunked.write_all(&chunk).await.is_err()
            || chunked.write_all(b"\r\n").await.is_err()
        {
            break;
        }
        sent += chunk.len();
    }
    let answer = String::from_utf8_lossy(&read_until_closed(&mut chunked).await).to_string();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // Just under the limit is read (and answered as the garbage it is).
    let (status, body) = https(
        server.addr,
        &pki.ca_pem,
        "POST",
        "/mutate",
        &vec![b' '; limit - 1],
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let review: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(review["response"]["allowed"], false);

    let metrics = metrics_of(server.addr, &pki.ca_pem).await;
    assert_eq!(
        metric(
            &metrics,
            "hallpass_injector_limited_total{limit=\"body_too_large\"}"
        ),
        2.0,
        "{metrics}"
    );
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_until_one_ends() {
    let pki = pki();
    let server = start_with(
        &pki,
        "limits: {maxConnections: 4, handshakeTimeoutSeconds: 60, headerTimeoutSeconds: 60}\n",
    )
    .await;
    // Four clients that hold their connections (no TLS handshake yet).
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    }
    // A fifth, real request: queued by the kernel, not served while the cap is held.
    let (addr, ca) = (server.addr, pki.ca_pem.clone());
    let mut fifth = tokio::spawn(async move { https(addr, &ca, "GET", "/healthz", b"").await });
    let waited = tokio::time::timeout(Duration::from_millis(1500), &mut fifth).await;
    assert!(
        waited.is_err(),
        "served beyond the connection cap: {waited:?}"
    );
    // One held connection ends: the fifth is served.
    drop(held.pop());
    let (status, body) = tokio::time::timeout(Duration::from_secs(20), fifth)
        .await
        .expect("served once a slot was free")
        .unwrap()
        .unwrap();
    assert_eq!((status, body.as_slice()), (200, b"ok\n".as_slice()));
    drop(held);
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_overrides_and_refusals_are_counted() {
    let pki = pki();
    let server = start_with(&pki, "overrides: {mode: [clinical]}\n").await;
    let mut review: Value = serde_json::from_slice(&fixture("pod-annotated.json")).unwrap();
    review["request"]["object"]["metadata"]["annotations"]["hallpass.io/mode"] =
        serde_json::json!("standalone");
    let (_, body) = https(
        server.addr,
        &pki.ca_pem,
        "POST",
        "/mutate",
        &serde_json::to_vec(&review).unwrap(),
    )
    .await
    .unwrap();
    let answer = parse_answer(serde_json::from_slice(&body).unwrap());
    let patched = apply(&answer, &fixture_pod("pod-annotated.json"));
    assert_eq!(
        patched["metadata"]["annotations"]["hallpass.io/overrides"],
        "mode"
    );
    // The same pod in a namespace the chart does not list: refused.
    review["request"]["namespace"] = serde_json::json!("billing");
    let (_, body) = https(
        server.addr,
        &pki.ca_pem,
        "POST",
        "/mutate",
        &serde_json::to_vec(&review).unwrap(),
    )
    .await
    .unwrap();
    assert!(!parse_answer(serde_json::from_slice(&body).unwrap()).allowed);
    // A forged label through the guard: refused.
    let mut forged: Value = serde_json::from_slice(&fixture("pod-plain.json")).unwrap();
    forged["request"]["object"]["metadata"]["labels"]["hallpass.io/sidecar"] =
        serde_json::json!("istio");
    let (_, body) = https(
        server.addr,
        &pki.ca_pem,
        "POST",
        "/validate",
        &serde_json::to_vec(&forged).unwrap(),
    )
    .await
    .unwrap();
    assert!(!parse_answer(serde_json::from_slice(&body).unwrap()).allowed);

    let metrics = metrics_of(server.addr, &pki.ca_pem).await;
    assert_eq!(
        metric(
            &metrics,
            "hallpass_injector_overrides_total{override=\"mode\"}"
        ),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "hallpass_injector_overrides_total{override=\"hostPID\"}"
        ),
        0.0
    );
    assert_eq!(
        metric(
            &metrics,
            "hallpass_injector_reviews_total{outcome=\"rejected\",reason=\"\"}"
        ),
        2.0
    );
    stop(server).await;
}
