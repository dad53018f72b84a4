//! The offline tools' HTTP client against real local servers: HTTPS with a
//! CA file (certificates from the test kit), extra headers and a bearer
//! token on the wire, an unknown issuer refused, no downgrade from HTTPS on
//! a redirect, the token kept from another host, and the Prometheus query
//! encoded so that Prometheus reads back the exact PromQL.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hallpass_insights::{HttpOptions, InsightsError, Source, load_all};
use hallpass_telemetry::CallGraph;
use hallpass_testkit::Ca;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use url::Url;

/// Connections one test server accepts before its thread ends.
const MAX_CONNECTIONS: usize = 8;
const TOKEN: &str = "s3cr3t-token-4711";

/// What a server answers: status, extra headers, body.
type Answer = (u16, Vec<(String, String)>, String);

/// A server on 127.0.0.1 (TLS when given a config) that records each
/// request's head and answers it with `handler(target)`.
struct Server {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: impl Fn(&str) -> Answer + Send + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&heads);
        std::thread::spawn(move || {
            for conn in listener.incoming().take(MAX_CONNECTIONS) {
                let Ok(tcp) = conn else { continue };
                tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let _ = match &tls {
                    Some(config) => {
                        let server = rustls::ServerConnection::new(Arc::clone(config)).unwrap();
                        let mut stream = rustls::StreamOwned::new(server, tcp);
                        let done = exchange(&mut stream, &seen, &handler);
                        stream.conn.send_close_notify();
                        let _ = stream.flush();
                        done
                    }
                    None => {
                        let mut tcp = tcp;
                        exchange(&mut tcp, &seen, &handler)
                    }
                };
            }
        });
        Self { addr, heads }
    }

    fn url(&self, scheme: &str, host: &str) -> Url {
        Url::parse(&format!("{scheme}://{host}:{}", self.addr.port())).unwrap()
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

fn exchange<S: Read + Write>(
    stream: &mut S,
    seen: &Mutex<Vec<String>>,
    handler: &impl Fn(&str) -> Answer,
) -> std::io::Result<()> {
    let mut raw = Vec::new();
    let mut buf = [0_u8; 4096];
    while !raw.windows(4).any(|w| w == b"\r\n\r\n") && raw.len() < 64 * 1024 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&raw).into_owned();
    let target = head
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    seen.lock().unwrap().push(head);
    let (status, headers, body) = handler(&target);
    let mut answer = format!(
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        answer.push_str(&format!("{name}: {value}\r\n"));
    }
    answer.push_str("\r\n");
    answer.push_str(&body);
    stream.write_all(answer.as_bytes())?;
    stream.flush()
}

/// A TLS config for a certificate of `ca` naming 127.0.0.1 and localhost.
fn tls(ca: &Ca) -> Arc<rustls::ServerConfig> {
    let leaf = ca.issue_server(&["127.0.0.1", "localhost"]).unwrap();
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(leaf.full_chain_pem().as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
    Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    )
}

fn graph_json() -> String {
    serde_json::to_string(&CallGraph {
        generated_at_ms: 1_800_000_000_000,
        learning: false,
        declared: Vec::new(),
        observed: Vec::new(),
        rules: Vec::new(),
        tracking_since_ms: 0,
        sources: Vec::new(),
    })
    .unwrap()
}

fn callgraph(target: &str) -> Answer {
    if target == "/callgraph" {
        (200, Vec::new(), graph_json())
    } else {
        (404, Vec::new(), "not found".into())
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn error_text(result: Result<CallGraph, InsightsError>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn https_with_a_ca_file_sends_the_headers_and_the_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::root("hospital.example").unwrap();
    let server = Server::start(Some(tls(&ca)), callgraph);
    let options = HttpOptions::default()
        .header("X-Scope-OrgID: radiology")
        .unwrap()
        .bearer_token_file(&write(dir.path(), "token", &format!("  {TOKEN}\n")))
        .unwrap()
        .ca_file(&write(dir.path(), "ca.pem", ca.cert_pem()))
        .unwrap();
    let source = Source::Admin(server.url("https", "127.0.0.1"));
    let graph = load_all(&[source], &options).unwrap();
    assert_eq!(graph.generated_at_ms, 1_800_000_000_000);
    let heads = server.heads();
    assert_eq!(heads.len(), 1, "{heads:?}");
    let head = heads[0].to_ascii_lowercase();
    assert!(head.starts_with("get /callgraph http/1.1\r\n"), "{head}");
    assert!(
        head.contains(&format!(
            "\r\nauthorization: bearer {}\r\n",
            TOKEN.to_ascii_lowercase()
        )),
        "{head}"
    );
    assert!(head.contains("\r\nx-scope-orgid: radiology\r\n"), "{head}");
    assert!(!format!("{options:?}").contains(TOKEN));
}

#[test]
fn https_refuses_a_certificate_from_an_unknown_issuer() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::root("hospital.example").unwrap();
    let other = Ca::root("hospital.example").unwrap();
    let server = Server::start(Some(tls(&ca)), callgraph);
    let source = Source::Admin(server.url("https", "127.0.0.1"));
    // The system's roots (no CA file) and another CA both refuse it.
    for options in [
        HttpOptions::default(),
        HttpOptions::default()
            .ca_file(&write(dir.path(), "other.pem", other.cert_pem()))
            .unwrap(),
    ] {
        let options = options
            .bearer_token_file(&write(dir.path(), "token", TOKEN))
            .unwrap();
        let err = error_text(load_all(std::slice::from_ref(&source), &options));
        assert!(err.contains("certificate"), "{err}");
        assert!(!err.contains(TOKEN), "{err}");
    }
    assert!(
        server.heads().is_empty(),
        "no request went over the refused connection"
    );
}

#[test]
fn a_redirect_from_https_to_plain_http_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::root("hospital.example").unwrap();
    let plain = Server::start(None, callgraph);
    let to = format!("{}callgraph", plain.url("http", "127.0.0.1"));
    let tls_server = Server::start(Some(tls(&ca)), move |_| {
        (302, vec![("location".into(), to.clone())], String::new())
    });
    let options = HttpOptions::default()
        .bearer_token_file(&write(dir.path(), "token", TOKEN))
        .unwrap()
        .ca_file(&write(dir.path(), "ca.pem", ca.cert_pem()))
        .unwrap();
    let err = error_text(load_all(
        &[Source::Admin(tls_server.url("https", "127.0.0.1"))],
        &options,
    ));
    assert!(err.contains("from HTTPS to plain HTTP"), "{err}");
    assert_eq!(tls_server.heads().len(), 1);
    assert!(
        plain.heads().is_empty(),
        "the token never went out in clear"
    );
}

#[test]
fn the_bearer_token_does_not_follow_a_redirect_to_another_host() {
    let dir = tempfile::tempdir().unwrap();
    let target = Server::start(None, callgraph);
    let to = format!("{}callgraph", target.url("http", "localhost"));
    let first = Server::start(None, move |_| {
        (307, vec![("location".into(), to.clone())], String::new())
    });
    let options = HttpOptions::default()
        .bearer_token_file(&write(dir.path(), "token", TOKEN))
        .unwrap();
    load_all(&[Source::Admin(first.url("http", "127.0.0.1"))], &options).unwrap();
    assert!(first.heads()[0].contains(TOKEN));
    let heads = target.heads();
    assert_eq!(heads.len(), 1, "the redirect was followed");
    assert!(!heads[0].contains(TOKEN), "{}", heads[0]);
}

#[test]
fn prometheus_over_https_reads_back_the_exact_promql() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::root("hospital.example").unwrap();
    let ehr = "spiffe://hospital.example/ns/clinical/sa/ehr-api";
    let lab = "spiffe://hospital.example/ns/clinical/sa/lab-results";
    let answer = move |target: &str| -> Answer {
        let url = Url::parse(&format!("https://x{target}")).unwrap();
        let query: String = url
            .query_pairs()
            .find(|(k, _)| k == "query")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let result = if url.path() != "/prometheus/api/v1/query" {
            return (404, Vec::new(), String::new());
        } else if query == "sum by (source, destination, decision) (hallpass_decisions_total)" {
            format!(
                r#"[{{"metric":{{"source":"{ehr}","destination":"{lab}","decision":"allow"}},"value":[1,"12"]}}]"#
            )
        } else if query
            == "sum by (source, destination, kind) (hallpass_call_path_anomalies_total{kind=~\"new_edge|rate_spike\"}) > 0"
        {
            format!(
                r#"[{{"metric":{{"source":"{ehr}","destination":"{lab}","kind":"new_edge"}},"value":[1,"1"]}}]"#
            )
        } else if query == "max by (destination, rule) (hallpass_rule_last_match_timestamp_seconds)"
        {
            format!(
                r#"[{{"metric":{{"destination":"{lab}","rule":"ehr-reads-results"}},"value":[1,"1800000000"]}}]"#
            )
        } else if query == "max(hallpass_rule_tracking_since_timestamp_seconds)" {
            r#"[{"metric":{},"value":[1,"1700000000"]}]"#.to_owned()
        } else {
            return (400, Vec::new(), format!("unexpected query {query:?}"));
        };
        (
            200,
            vec![("content-type".into(), "application/json".into())],
            format!(r#"{{"status":"success","data":{{"resultType":"vector","result":{result}}}}}"#),
        )
    };
    let server = Server::start(Some(tls(&ca)), answer);
    let options = HttpOptions::default()
        .bearer_token_file(&write(dir.path(), "token", TOKEN))
        .unwrap()
        .ca_file(&write(dir.path(), "ca.pem", ca.cert_pem()))
        .unwrap();
    let url = server
        .url("https", "127.0.0.1")
        .join("/prometheus/")
        .unwrap();
    let graph = load_all(
        &[Source::Prometheus {
            url,
            policy: Vec::new(),
        }],
        &options,
    )
    .unwrap();
    assert_eq!(graph.observed.len(), 1, "{graph:?}");
    let edge = &graph.observed[0];
    assert_eq!((edge.count, edge.allowed, edge.new), (12, 12, true));
    assert_eq!(graph.rules.len(), 1);
    assert_eq!(graph.rules[0].last_match_seconds, 1_800_000_000);
    assert_eq!(graph.tracking_since_ms, 1_700_000_000_000);
    let heads = server.heads();
    assert_eq!(heads.len(), 4, "{heads:?}");
    assert!(heads.iter().all(|h| h.contains(TOKEN)));
}
