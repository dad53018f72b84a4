//! The injector (`hallpass inject`, the real binary with its default limits)
//! under attack from real TCP+TLS clients, as any pod in the cluster network
//! could attack it: slowly sent 3 MiB bodies, half-sent request heads,
//! oversized and chunked bodies, connections that never finish the TLS
//! handshake, far more of them than the connection cap. Its peak resident
//! memory (VmHWM) must stay under the chart's memory limit for the injector,
//! and it must answer an AdmissionReview afterwards.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hallpass_e2e::{Proc, free_ports, hallpass_bin, wait_for_port, workspace_root};
use hallpass_testkit::Ca;
use hallpass_testkit::http::{Request, exchange};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

const SERVICE: &str = "hallpass-injector.hallpass-system.svc";
const BODY_LIMIT: usize = 3 * 1024 * 1024;

struct Pki {
    ca: String,
    cert: String,
    key: String,
}

/// A fresh CA and a serving certificate for the webhook's Service name.
fn pki() -> Pki {
    let ca = Ca::root("injector.test").unwrap();
    let leaf = ca.issue_server(&[SERVICE]).unwrap();
    Pki {
        ca: ca.cert_pem().to_owned(),
        cert: leaf.cert_pem,
        key: leaf.key_pem,
    }
}

fn connector(ca_pem: &str) -> TlsConnector {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn tls(
    addr: SocketAddr,
    connector: &TlsConnector,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    connector
        .connect(ServerName::try_from(SERVICE).unwrap(), tcp)
        .await
}

/// Read (bounded) until the server closes; the first bytes of the answer.
async fn until_closed<S: tokio::io::AsyncRead + Unpin>(mut s: S) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), async {
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if out.len() < 256 {
                out.extend_from_slice(&buf[..n]);
            }
        }
    })
    .await;
    String::from_utf8_lossy(&out).chars().take(40).collect()
}

/// Resident memory of a process, from /proc (KiB): (current, peak).
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The chart's memory limit for the injector, in KiB.
fn chart_memory_limit_kib() -> u64 {
    let values =
        std::fs::read_to_string(workspace_root().join("charts/hallpass/values.yaml")).unwrap();
    let mut in_injector = false;
    let mut in_limits = false;
    for line in values.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() && !line.starts_with('#') {
            in_injector = line.starts_with("injector:");
        }
        if in_injector && line.trim() == "limits:" && line.starts_with("    limits:") {
            in_limits = true;
        }
        if in_injector
            && in_limits
            && let Some(v) = line.trim().strip_prefix("memory: ")
        {
            let v = v.trim();
            if let Some(mi) = v.strip_suffix("Mi") {
                return mi.parse::<u64>().unwrap() * 1024;
            }
            panic!("unexpected memory limit {v}");
        }
    }
    panic!("no injector.resources.limits.memory in values.yaml");
}

#[test]
fn injector_memory_stays_under_its_chart_limit_under_slow_and_oversized_clients() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    std::fs::write(dir.path().join("tls.crt"), &pki.cert).unwrap();
    std::fs::write(dir.path().join("tls.key"), &pki.key).unwrap();
    let port = free_ports(1).unwrap()[0];
    let config = dir.path().join("injector.yaml");
    // The chart's defaults for every limit; only the address and files differ.
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}\nshutdownDelaySeconds: 0\ntls: {{certFile: {d}/tls.crt, keyFile: {d}/tls.key}}\n",
            d = dir.path().display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(hallpass_bin().unwrap());
    cmd.args(["inject", "--config"]).arg(&config);
    let mut injector = Proc::spawn("injector", cmd, dir.path().join("injector.log")).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_for_port(addr, Duration::from_secs(20)).unwrap();
    let pid = injector.pid();
    let limit_kib = chart_memory_limit_kib();
    let (idle_rss, _) = rss_kib(pid);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let connector = connector(&pki.ca);
    let review =
        std::fs::read(workspace_root().join("crates/injector/tests/fixtures/pod-annotated.json"))
            .unwrap();
    let started = Instant::now();
    let (answers, peak_seen) = runtime.block_on(async {
        let sampling = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let sampler = {
            let sampling = sampling.clone();
            tokio::spawn(async move {
                for _ in 0..1200 {
                    let (rss, _) = rss_kib(pid);
                    sampling.fetch_max(rss, std::sync::atomic::Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        let mut attacks = Vec::new();
        for round in 0..2 {
            // Nearly whole 3 MiB bodies that never finish (held until the body timeout).
            for _ in 0..60 {
                let connector = connector.clone();
                attacks.push(tokio::spawn(async move {
                    let Ok(mut s) = tls(addr, &connector).await else { return "connect failed".to_owned() };
                    let head = format!("POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-length: {BODY_LIMIT}\r\n\r\n");
                    if s.write_all(head.as_bytes()).await.is_err() {
                        return "head refused".into();
                    }
                    let chunk = vec![b'x'; 64 * 1024];
                    let mut sent = 0;
                    while sent + chunk.len() < BODY_LIMIT {
                        if s.write_all(&chunk).await.is_err() {
                            break;
                        }
                        sent += chunk.len();
                    }
                    until_closed(s).await
                }));
            }
            // Half-sent heads.
            for _ in 0..40 {
                let connector = connector.clone();
                attacks.push(tokio::spawn(async move {
                    let Ok(mut s) = tls(addr, &connector).await else { return "connect failed".to_owned() };
                    let _ = s.write_all(b"POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-le").await;
                    until_closed(s).await
                }));
            }
            // Announced too large.
            for _ in 0..20 {
                let connector = connector.clone();
                attacks.push(tokio::spawn(async move {
                    let Ok(mut s) = tls(addr, &connector).await else { return "connect failed".to_owned() };
                    let head = format!("POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n", 8 * BODY_LIMIT);
                    let _ = s.write_all(head.as_bytes()).await;
                    until_closed(s).await
                }));
            }
            // Chunked, without end.
            for _ in 0..10 {
                let connector = connector.clone();
                attacks.push(tokio::spawn(async move {
                    let Ok(mut s) = tls(addr, &connector).await else { return "connect failed".to_owned() };
                    let _ = s.write_all(b"POST /mutate HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n").await;
                    let chunk = format!("10000\r\n{}\r\n", "y".repeat(0x10000));
                    for _ in 0..(2 * BODY_LIMIT / 0x10000) {
                        if s.write_all(chunk.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                    until_closed(s).await
                }));
            }
            // TCP only, never a TLS handshake.
            for _ in 0..20 {
                attacks.push(tokio::spawn(async move {
                    match TcpStream::connect(addr).await {
                        Ok(s) => until_closed(s).await,
                        Err(_) => "connect failed".into(),
                    }
                }));
            }
            if round == 0 {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
        let mut answers = Vec::new();
        for a in attacks {
            answers.push(a.await.unwrap());
        }
        sampler.abort();
        (answers, sampling.load(std::sync::atomic::Ordering::Relaxed))
    });
    let attack_time = started.elapsed();
    let (after_rss, peak_kib) = rss_kib(pid);

    // Afterwards the webhook answers a real AdmissionReview.
    let answer = runtime.block_on(async {
        let s = tls(addr, &connector).await.unwrap();
        let headers = [("content-type", "application/json")];
        let request = Request::new("POST", "/mutate")
            .host(SERVICE)
            .headers(&headers)
            .body(&review);
        exchange(s, &request).await.unwrap()
    });
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(
        answer.body.contains("\"allowed\":true") && answer.body.contains("\"patch\""),
        "{answer:?}"
    );
    let count = |prefix: &str| answers.iter().filter(|a| a.starts_with(prefix)).count();
    println!(
        "injector under attack: {} clients in {:.1} s; answers: {} x 408, {} x 413, {} closed without an answer; \
         RSS idle {} KiB, peak sampled {} KiB, VmHWM {} KiB, after {} KiB; chart limit {} KiB",
        answers.len(),
        attack_time.as_secs_f64(),
        count("HTTP/1.1 408"),
        count("HTTP/1.1 413"),
        answers.iter().filter(|a| a.is_empty()).count(),
        idle_rss,
        peak_seen,
        peak_kib,
        after_rss,
        limit_kib
    );
    // Most clients read their answer (a reset can swallow one the server
    // sent just before closing a connection it did not read to the end).
    assert!(
        count("HTTP/1.1 408") >= 60,
        "slow bodies cut off by the body timeout: {answers:?}"
    );
    assert!(
        count("HTTP/1.1 413") >= 20,
        "oversized bodies refused: {answers:?}"
    );
    assert!(
        peak_kib < limit_kib,
        "peak RSS {peak_kib} KiB is not under the chart's limit of {limit_kib} KiB"
    );
    assert!(injector.is_running(), "{}", injector.output());
    injector.kill();
}
