//! Where the telemetry commands read a call graph from: a running sidecar's
//! admin endpoint (`GET /callgraph`, plain HTTP/1.1 over a TCP stream) or a
//! saved `/callgraph` JSON file.
//!
//! A Prometheus source (rule usage from
//! `hallpass_rule_last_match_timestamp_seconds`, edges from
//! `hallpass_decisions_total`) would be one more [`Source`] variant whose
//! `load` builds the same [`CallGraph`]; the analyses only see the graph.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use hallpass_telemetry::{CallGraph, DeclaredEdge, ObservedEdge, RuleUsage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest admin response read (the call graph is bounded by `max_edges`).
const MAX_RESPONSE: u64 = 64 << 20;
/// Connect-and-read deadline.
const TIMEOUT: Duration = Duration::from_secs(15);

/// One place to read a call graph from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A sidecar's admin base URL, `http://127.0.0.1:9902`.
    Admin(String),
    /// A saved `/callgraph` JSON document.
    State(PathBuf),
    /// A Prometheus base URL that scrapes the sidecars, and optionally the
    /// policy file (for the declared edges).
    Prometheus(String, Option<PathBuf>),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Admin(url) => write!(f, "{url}"),
            Self::State(path) => write!(f, "{}", path.display()),
            Self::Prometheus(url, _) => write!(f, "{url} (Prometheus)"),
        }
    }
}

impl Source {
    /// Read the call graph.
    pub async fn load(&self) -> anyhow::Result<CallGraph> {
        let text = match self {
            Self::Prometheus(url, policy) => {
                return super::prometheus::load(url, policy.as_deref()).await;
            }
            Self::Admin(url) => http_get(url, "/callgraph").await?,
            Self::State(path) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        };
        serde_json::from_str(&text).with_context(|| format!("{self}: not a hallpass call graph"))
    }
}

/// Read every source and combine them (see [`merge`]).
pub fn load_all(sources: &[Source]) -> anyhow::Result<CallGraph> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let graphs = runtime.block_on(async {
        let mut graphs = Vec::new();
        for source in sources {
            graphs.push(source.load().await?);
        }
        anyhow::Ok(graphs)
    })?;
    Ok(merge(graphs))
}

/// Combine the graphs of several sidecars: declared edges de-duplicated,
/// observed edges with the same key summed, the latest match of each rule.
pub fn merge(graphs: Vec<CallGraph>) -> CallGraph {
    let mut out = CallGraph {
        generated_at_ms: 0,
        learning: false,
        declared: Vec::new(),
        observed: Vec::new(),
        rules: Vec::new(),
    };
    let mut observed: BTreeMap<(String, String, String, String), ObservedEdge> = BTreeMap::new();
    let mut rules: BTreeMap<(String, String), i64> = BTreeMap::new();
    for graph in graphs {
        out.generated_at_ms = out.generated_at_ms.max(graph.generated_at_ms);
        out.learning |= graph.learning;
        for d in graph.declared {
            if !out.declared.contains(&d) {
                out.declared.push(d);
            }
        }
        for e in graph.observed {
            let key = (
                e.source.clone(),
                e.destination.clone(),
                e.route.clone(),
                e.method.clone(),
            );
            match observed.get_mut(&key) {
                None => {
                    observed.insert(key, e);
                }
                Some(m) => {
                    m.count += e.count;
                    m.allowed += e.allowed;
                    m.denied += e.denied;
                    m.first_seen_ms = m.first_seen_ms.min(e.first_seen_ms);
                    m.last_seen_ms = m.last_seen_ms.max(e.last_seen_ms);
                    m.new |= e.new;
                    m.spiking |= e.spiking;
                    m.in_baseline |= e.in_baseline;
                    m.ewma_rps += e.ewma_rps;
                }
            }
        }
        for r in graph.rules {
            let last = rules.entry((r.destination, r.rule)).or_insert(0);
            *last = (*last).max(r.last_match_seconds);
        }
    }
    out.observed = observed.into_values().collect();
    out.rules = rules
        .into_iter()
        .map(|((destination, rule), last_match_seconds)| RuleUsage {
            destination,
            rule,
            last_match_seconds,
        })
        .collect();
    out
}

/// The declared edges of one rule, in policy order.
pub fn rules_in_order(graph: &CallGraph) -> Vec<((String, String), Vec<&DeclaredEdge>)> {
    let mut out: Vec<((String, String), Vec<&DeclaredEdge>)> = Vec::new();
    for d in &graph.declared {
        let key = (d.destination.clone(), d.rule.clone());
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, edges)) => edges.push(d),
            None => out.push((key, vec![d])),
        }
    }
    out
}

/// `http://host[:port][/base]` → (host, port, base path without a trailing `/`).
fn parse_url(url: &str) -> anyhow::Result<(String, u16, String)> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("{url}: the admin endpoint is plain HTTP; give http://HOST:PORT");
    };
    let (authority, base) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .with_context(|| format!("{url}: unclosed `[` in the host"))?;
        (host.to_owned(), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        }
    };
    if host.is_empty() {
        bail!("{url}: no host");
    }
    let port = match port {
        None => 80,
        Some(p) => p
            .parse()
            .with_context(|| format!("{url}: bad port `{p}`"))?,
    };
    Ok((host, port, base.trim_end_matches('/').to_owned()))
}

/// `GET base + path` over HTTP/1.1; the body of a 200 answer.
pub async fn http_get(url: &str, path: &str) -> anyhow::Result<String> {
    let (host, port, base) = parse_url(url)?;
    let target = format!("{base}{path}");
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .with_context(|| format!("cannot connect to {host}:{port}"))?;
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/json\r\nUser-Agent: hallpass-cli\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        (&mut stream)
            .take(MAX_RESPONSE + 1)
            .read_to_end(&mut raw)
            .await?;
        if raw.len() as u64 > MAX_RESPONSE {
            bail!("the answer is larger than {MAX_RESPONSE} bytes");
        }
        anyhow::Ok(raw)
    };
    let raw = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .with_context(|| format!("{url}{path}: no answer within {}s", TIMEOUT.as_secs()))?
        .with_context(|| format!("GET {url}{path}"))?;
    let (status, body) = parse_response(&raw).with_context(|| format!("GET {url}{path}"))?;
    if status != 200 {
        let text = String::from_utf8_lossy(&body);
        bail!(
            "GET {url}{path}: HTTP {status}: {}",
            text.trim().chars().take(300).collect::<String>()
        );
    }
    String::from_utf8(body).with_context(|| format!("GET {url}{path}: the body is not UTF-8"))
}

/// Status code and body of an HTTP/1.x response (`Content-Length`, chunked,
/// or read to the end).
fn parse_response(raw: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of the response headers")?;
    let head = std::str::from_utf8(&raw[..split]).context("response headers are not text")?;
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        bail!("not an HTTP/1 response: `{status_line}`");
    }
    let status: u16 = parts
        .next()
        .unwrap_or_default()
        .parse()
        .with_context(|| format!("bad status line `{status_line}`"))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "content-length" {
            length = Some(value.parse::<usize>().context("bad Content-Length")?);
        } else if name == "transfer-encoding" && value.to_ascii_lowercase().contains("chunked") {
            chunked = true;
        }
    }
    if chunked {
        return Ok((status, dechunk(body)?));
    }
    match length {
        Some(n) if n > body.len() => bail!("the body ended after {} of {n} bytes", body.len()),
        Some(n) => Ok((status, body[..n].to_vec())),
        None => Ok((status, body.to_vec())),
    }
}

fn dechunk(mut body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("truncated chunk size")?;
        let size_text = std::str::from_utf8(&body[..eol]).context("bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).context("bad chunk size")?;
        body = &body[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            bail!("truncated chunk");
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("http://127.0.0.1:9902").unwrap(),
            ("127.0.0.1".into(), 9902, String::new())
        );
        assert_eq!(
            parse_url("http://localhost/hallpass/").unwrap(),
            ("localhost".into(), 80, "/hallpass".into())
        );
        assert_eq!(
            parse_url("http://[::1]:9902").unwrap(),
            ("::1".into(), 9902, String::new())
        );
        assert!(parse_url("https://x:1").is_err());
        assert!(parse_url("http://:1").is_err());
        assert!(parse_url("http://x:port").is_err());
    }

    #[test]
    fn responses() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello, and more";
        assert_eq!(parse_response(plain).unwrap(), (200, b"hello".to_vec()));
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;x=y\r\n, world\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(chunked).unwrap(),
            (200, b"hello, world".to_vec())
        );
        let until_close = b"HTTP/1.0 503 Service Unavailable\r\n\r\nnot ready";
        assert_eq!(
            parse_response(until_close).unwrap(),
            (503, b"not ready".to_vec())
        );
        assert!(parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nshort").is_err());
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
    }
}
