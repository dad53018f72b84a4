//! The one HTTP client of the offline tools: reqwest over rustls (aws-lc-rs,
//! no OpenSSL), HTTP/1.1.
//!
//! A hospital's Prometheus usually sits behind TLS and an authenticating
//! proxy, so every command that reads Prometheus or a sidecar's admin
//! endpoint takes the same [`HttpOptions`]: extra headers, a bearer token
//! read from a file (a Kubernetes service account token, say), and a CA
//! file to trust instead of the system's roots. Answers are bounded in size
//! and time. A redirect is followed (at most [`MAX_REDIRECTS`]) unless it
//! would leave HTTPS for plain HTTP; reqwest drops the `Authorization`
//! header when a redirect leaves the host.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use url::Url;

use crate::InsightsError;

/// Largest answer read (a call graph is bounded by the sidecar's
/// `telemetry.max_edges`; a Prometheus answer by the label bounds).
pub const MAX_RESPONSE: usize = 64 << 20;
/// Deadline of one request, connect to last byte.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 5;

/// How to reach the endpoints: extra headers, a bearer token, a CA file.
/// `Debug` shows header names only: values may be credentials.
#[derive(Clone, Default)]
pub struct HttpOptions {
    headers: Vec<(HeaderName, HeaderValue)>,
    bearer: Option<HeaderValue>,
    ca_pem: Option<Vec<u8>>,
}

impl fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpOptions")
            .field("headers", &names)
            .field("bearer_token", &self.bearer.as_ref().map(|_| "<redacted>"))
            .field("ca_file", &self.ca_pem.is_some())
            .finish()
    }
}

impl HttpOptions {
    /// Send `NAME: VALUE` (as `--header` gives it; the space is optional)
    /// with every request.
    pub fn header(mut self, text: &str) -> Result<Self, InsightsError> {
        let (name, value) = text.split_once(':').ok_or_else(|| {
            InsightsError::Option(format!("--header {text:?}: expected NAME:VALUE"))
        })?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
            InsightsError::Option(format!("--header: {:?} is not a header name", name.trim()))
        })?;
        let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
            // The value may be a secret: never echo it.
            InsightsError::Option(format!(
                "--header {name}: the value has characters a header cannot carry"
            ))
        })?;
        value.set_sensitive(true);
        if name == AUTHORIZATION && self.bearer.is_some() {
            return Err(InsightsError::Option(
                "--header authorization and --bearer-token-file both set Authorization".into(),
            ));
        }
        self.headers.push((name, value));
        Ok(self)
    }

    /// Send `Authorization: Bearer TOKEN`, the token being the contents of
    /// `path` without surrounding whitespace.
    pub fn bearer_token_file(mut self, path: &Path) -> Result<Self, InsightsError> {
        let text = std::fs::read_to_string(path).map_err(|source| InsightsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let token = text.trim();
        let invalid = |why: &str| {
            InsightsError::Option(format!("--bearer-token-file {}: {why}", path.display()))
        };
        if token.is_empty() {
            return Err(invalid("the file is empty"));
        }
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| invalid("the token has characters a header cannot carry"))?;
        value.set_sensitive(true);
        if self.headers.iter().any(|(n, _)| n == AUTHORIZATION) {
            return Err(InsightsError::Option(
                "--header authorization and --bearer-token-file both set Authorization".into(),
            ));
        }
        self.bearer = Some(value);
        Ok(self)
    }

    /// Trust only the CA certificates (PEM) in `path` for HTTPS, instead of
    /// the system's roots.
    pub fn ca_file(mut self, path: &Path) -> Result<Self, InsightsError> {
        let pem = std::fs::read(path).map_err(|source| InsightsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| InsightsError::Option(format!("--ca-file {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(InsightsError::Option(format!(
                "--ca-file {}: no PEM certificate in the file",
                path.display()
            )));
        }
        self.ca_pem = Some(pem);
        Ok(self)
    }
}

/// A URL the tools may read: `http` or `https`, with a host. This is the
/// parser behind `--admin` and `--prometheus`.
pub fn parse_base_url(text: &str) -> Result<Url, String> {
    let url =
        Url::parse(text).map_err(|e| format!("{text}: {e}; give http(s)://HOST:PORT[/PATH]"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text}: only http:// and https:// URLs are read"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{text}: no host"));
    }
    Ok(url)
}

/// `base` with `path` appended to its path (`http://h/prefix` +
/// `/callgraph` = `http://h/prefix/callgraph`), query and fragment dropped.
pub fn endpoint(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}{path}", base.path().trim_end_matches('/'));
    url.set_path(&joined);
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// A configured client; cheap to share, one per command.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
}

impl HttpClient {
    /// A client with these options.
    pub fn new(options: &HttpOptions) -> Result<Self, InsightsError> {
        let mut headers = HeaderMap::new();
        for (name, value) in &options.headers {
            headers.append(name.clone(), value.clone());
        }
        if let Some(bearer) = &options.bearer {
            headers.insert(AUTHORIZATION, bearer.clone());
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("hallpass/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .redirect(redirect_policy());
        if let Some(pem) = &options.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| InsightsError::Option(format!("--ca-file: {e}")))?;
            builder = builder.tls_certs_only(certs);
        }
        let client = builder
            .build()
            .map_err(|e| InsightsError::Option(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Self { client })
    }

    /// `GET url`: the body of a 200 answer, as text.
    pub async fn get_text(&self, url: &Url) -> Result<String, InsightsError> {
        let failed = |message: String| InsightsError::Http {
            url: url.to_string(),
            message,
        };
        let mut response = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json, text/plain")
            .send()
            .await
            .map_err(|e| failed(describe(&e)))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| failed(describe(&e)))? {
            if body.len() + chunk.len() > MAX_RESPONSE {
                return Err(failed(format!(
                    "the answer is larger than {MAX_RESPONSE} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if status != reqwest::StatusCode::OK {
            let text = String::from_utf8_lossy(&body);
            let excerpt: String = text.trim().chars().take(300).collect();
            return Err(failed(format!("HTTP {}: {excerpt}", status.as_u16())));
        }
        String::from_utf8(body).map_err(|_| failed("the body is not UTF-8".into()))
    }
}

/// Follow at most [`MAX_REDIRECTS`] redirects, never from HTTPS to HTTP.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let downgrade = attempt.url().scheme() == "http"
            && attempt.previous().iter().any(|u| u.scheme() == "https");
        if downgrade {
            let to = attempt.url().to_string();
            attempt.error(format!(
                "refused a redirect from HTTPS to plain HTTP ({to})"
            ))
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else {
            attempt.follow()
        }
    })
}

/// reqwest's error with its causes (the TLS reason sits deep in the chain).
fn describe(error: &reqwest::Error) -> String {
    let mut out = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert!(parse_base_url("http://127.0.0.1:9902").is_ok());
        assert!(parse_base_url("https://prometheus.example/prom/").is_ok());
        assert!(parse_base_url("127.0.0.1:9902").is_err());
        assert!(parse_base_url("ftp://x/").is_err());
        assert!(parse_base_url("unix:///run/x.sock").is_err());
        let base = parse_base_url("http://h:1/prefix/?x=1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            endpoint(&base, "/callgraph").as_str(),
            "http://h:1/prefix/callgraph"
        );
        let root = parse_base_url("http://[::1]:9902").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            endpoint(&root, "/callgraph").as_str(),
            "http://[::1]:9902/callgraph"
        );
    }

    #[test]
    fn headers_are_checked_and_never_echoed() {
        let ok = HttpOptions::default()
            .header("X-Scope-OrgID: hospital")
            .and_then(|o| o.header("x-trace:1"));
        assert!(ok.is_ok());
        for bad in ["no colon", "bad name: x", ": empty name"] {
            assert!(HttpOptions::default().header(bad).is_err(), "{bad}");
        }
        let secret = HttpOptions::default()
            .header("authorization: Bearer s3cr3t\u{7}")
            .map(|_| ())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!secret.is_empty() && !secret.contains("s3cr3t"), "{secret}");
        let options = HttpOptions::default()
            .header("authorization: Bearer s3cr3t")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{options:?}").contains("s3cr3t"));
    }
}
