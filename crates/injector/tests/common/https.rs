//! A TLS client for the webhook server: the CA and serving certificate the
//! tests serve, and one HTTP/1.1 request at a time, verified the way the
//! API server verifies the webhook (CA bundle, Service DNS name).

use std::net::SocketAddr;
use std::sync::Arc;

use hallpass_testkit::Ca;
use hallpass_testkit::http::{Request, exchange};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

pub const SERVICE: &str = "hallpass-injector.hallpass-system.svc";

/// A CA and a serving certificate for the webhook's Service name.
pub struct Pki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// A fresh CA (each call a different one) and a serving certificate for
/// [`SERVICE`] (from the test kit's PKI).
pub fn pki() -> Pki {
    let ca = Ca::root("injector.test").unwrap();
    let leaf = ca.issue_server(&[SERVICE]).unwrap();
    Pki {
        ca_pem: ca.cert_pem().to_owned(),
        cert_pem: leaf.cert_pem,
        key_pem: leaf.key_pem,
    }
}

pub fn connector(ca_pem: &str) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile_certs(ca_pem) {
        roots.add(cert).unwrap();
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

fn rustls_pemfile_certs(pem: &str) -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

/// One HTTP/1.1 request over TLS (verified against `ca_pem`, SNI = the
/// Service name, as the API server connects); returns status and body.
pub async fn https_to(
    server_name: &str,
    addr: SocketAddr,
    ca_pem: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<(u16, Vec<u8>), String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let tls = connector(ca_pem)
        .connect(
            ServerName::try_from(server_name.to_owned()).map_err(|e| e.to_string())?,
            tcp,
        )
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    let headers = [("content-type", "application/json")];
    let request = Request::new(method, path)
        .host(server_name)
        .headers(&headers)
        .body(body);
    let response = exchange(tls, &request).await.map_err(|e| e.to_string())?;
    Ok((response.status, response.body.into_bytes()))
}

/// [`https_to`] the test Service name.
pub async fn https(
    addr: SocketAddr,
    ca_pem: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<(u16, Vec<u8>), String> {
    https_to(SERVICE, addr, ca_pem, method, path, body).await
}

/// An open TLS connection to the test Service name, nothing sent yet.
pub async fn tls_connect(
    addr: SocketAddr,
    ca_pem: &str,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    connector(ca_pem)
        .connect(
            ServerName::try_from(SERVICE.to_owned()).map_err(|e| e.to_string())?,
            tcp,
        )
        .await
        .map_err(|e| format!("TLS: {e}"))
}
