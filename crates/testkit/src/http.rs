//! One HTTP/1.1 client for every test harness: blocking ([`send`]) for the
//! end-to-end harness and the local mesh, async ([`send_async`],
//! [`exchange`]) for tests that run a server on the same runtime or speak
//! TLS.
//!
//! The request goes out byte for byte as given: a test of Envoy or of the
//! sidecar must be able to send `/a/../b`, `%2F` or an `x_underscore`
//! header, which a real client (reqwest, `url::Url`) would normalise or
//! refuse. Each request is on a fresh connection with `Connection: close`;
//! the answer is read to the end (bounded in size and time) and then parsed,
//! with `Content-Length` or chunked bodies. The product's own client (the
//! offline tools) is reqwest, in `hallpass-insights`.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long a connect, or reading the whole answer, may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read.
const MAX_RESPONSE: u64 = 64 << 20;

/// One request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The request target, sent as is: `/patients/1?x=y`.
    pub target: &'a str,
    /// The `Host` header.
    pub host: &'a str,
    /// More headers, sent as is and in order.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body (`Content-Length` is always sent).
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    /// `GET target` with `Host: localhost`, no headers.
    pub fn get(target: &'a str) -> Self {
        Self::new("GET", target)
    }

    /// `method target` with `Host: localhost`, no headers, no body.
    pub fn new(method: &'a str, target: &'a str) -> Self {
        Self {
            method,
            target,
            host: "localhost",
            headers: &[],
            body: &[],
        }
    }

    /// The same request with another `Host`.
    #[must_use]
    pub fn host(self, host: &'a str) -> Self {
        Self { host, ..self }
    }

    /// The same request with these headers.
    #[must_use]
    pub fn headers(self, headers: &'a [(&'a str, &'a str)]) -> Self {
        Self { headers, ..self }
    }

    /// The same request with this body.
    #[must_use]
    pub fn body(self, body: &'a [u8]) -> Self {
        Self { body, ..self }
    }

    /// The bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.method,
            self.target,
            self.host,
            self.body.len()
        );
        for (name, value) in self.headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(self.body);
        out
    }
}

/// A parsed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header names lower-cased; a repeated header's values joined with `, `.
    pub headers: HashMap<String, String>,
    /// The body, decoded as UTF-8 (lossily: tests look at text).
    pub body: String,
}

impl Response {
    /// A header's value (`name` in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// Send `request` to `addr` on a fresh blocking connection.
pub fn send(addr: SocketAddr, request: &Request<'_>) -> io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    stream.write_all(&request.to_bytes())?;
    let mut raw = Vec::new();
    stream.take(MAX_RESPONSE + 1).read_to_end(&mut raw)?;
    parse(&raw)
}

/// `GET target` on `addr`, blocking.
pub fn get(addr: SocketAddr, target: &str) -> io::Result<Response> {
    send(addr, &Request::get(target))
}

/// Send `request` to `addr` on a fresh tokio connection.
pub async fn send_async(addr: SocketAddr, request: &Request<'_>) -> io::Result<Response> {
    let stream = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("connect to {addr}")))??;
    exchange(stream, request).await
}

/// `GET target` on `addr`, async.
pub async fn get_async(addr: SocketAddr, target: &str) -> io::Result<Response> {
    send_async(addr, &Request::get(target)).await
}

/// Send `request` over an open stream (plain TCP, or TLS a test set up)
/// and read the answer to the end.
pub async fn exchange<S>(mut stream: S, request: &Request<'_>) -> io::Result<Response>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let talk = async {
        stream.write_all(&request.to_bytes()).await?;
        stream.flush().await?;
        let mut raw = Vec::new();
        // A TLS peer that closes without close_notify still gave its answer.
        match (&mut stream)
            .take(MAX_RESPONSE + 1)
            .read_to_end(&mut raw)
            .await
        {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
            Err(e) => return Err(e),
        }
        Ok(raw)
    };
    let raw = tokio::time::timeout(TIMEOUT, talk)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no complete answer"))??;
    parse(&raw)
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// Parse a whole HTTP/1.x answer.
pub fn parse(raw: &[u8]) -> io::Result<Response> {
    if raw.len() as u64 > MAX_RESPONSE {
        return Err(invalid(format!("answer over {MAX_RESPONSE} bytes")));
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("no end of the headers"))?;
    let (head, rest) = raw.split_at(split);
    let body = rest.get(4..).unwrap_or_default();
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    if !status_line.starts_with("HTTP/1.") {
        return Err(invalid(format!("not an HTTP/1 answer: {status_line:?}")));
    }
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let mut headers: HashMap<String, String> = HashMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            headers
                .entry(name.trim().to_ascii_lowercase())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(value);
                })
                .or_insert_with(|| value.to_owned());
        }
    }
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(body)?
    } else if let Some(length) = headers.get("content-length") {
        let n: usize = length
            .parse()
            .map_err(|_| invalid(format!("bad Content-Length {length:?}")))?;
        body.get(..n)
            .ok_or_else(|| invalid(format!("body ended after {} of {n} bytes", body.len())))?
            .to_vec()
    } else {
        body.to_vec()
    };
    Ok(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| invalid("truncated chunk size"))?;
        let (size_line, rest) = data.split_at(eol);
        let size_text = String::from_utf8_lossy(size_line);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
        let rest = rest.get(2..).unwrap_or_default();
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest.get(..size).ok_or_else(|| invalid("truncated chunk"))?;
        out.extend_from_slice(chunk);
        data = rest
            .get(size + 2..)
            .ok_or_else(|| invalid("truncated chunk"))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_go_out_as_given() {
        let headers = [("x_underscore", "1")];
        let req = Request::new("GET", "/a/../b%2F")
            .host("lab-results")
            .headers(&headers);
        assert_eq!(
            String::from_utf8(req.to_bytes()).unwrap(),
            "GET /a/../b%2F HTTP/1.1\r\nHost: lab-results\r\nConnection: close\r\nContent-Length: 0\r\nx_underscore: 1\r\n\r\n"
        );
    }

    #[test]
    fn answers_with_length_chunks_or_neither() {
        let plain = parse(
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nSet: a\r\nset: b\r\n\r\nhello, and more",
        )
        .unwrap();
        assert_eq!((plain.status, plain.body.as_str()), (200, "hello"));
        assert_eq!(plain.header("set"), Some("a, b"));
        let chunked = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;x=y\r\n, world\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(chunked.body, "hello, world");
        let until_close = parse(b"HTTP/1.0 503 Service Unavailable\r\n\r\nnot ready").unwrap();
        assert_eq!(
            (until_close.status, until_close.body.as_str()),
            (503, "not ready")
        );
        assert!(parse(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nshort").is_err());
        assert!(parse(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel").is_err());
    }
}
