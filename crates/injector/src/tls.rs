//! The webhook's serving certificate, re-read from disk when it changes.
//!
//! cert-manager (or the chart) keeps the certificate in a Secret; the kubelet
//! swaps the mounted files atomically (a `..data` symlink flip) some time
//! after the Secret changes. [`ReloadingCert`] compares the files' bytes on
//! every tick and swaps the served key in place: handshakes in flight keep
//! the old one, new handshakes get the new one, no restart and no dropped
//! connection. A pair that does not load (half-written, or key and
//! certificate that do not match) keeps the last good one and is retried on
//! the next tick.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, version};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::InjectorError;

struct Loaded {
    key: Arc<CertifiedKey>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    not_after: i64,
}

/// A certificate and key pair that follows its files.
pub struct ReloadingCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<Loaded>,
}

impl fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("not_after", &self.not_after())
            .finish_non_exhaustive()
    }
}

/// How a reload went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// The files hold what is being served.
    Unchanged,
    /// A new pair is being served.
    Changed,
}

impl ReloadingCert {
    /// Load the pair; fails when it cannot be served.
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Self, InjectorError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let loaded = read_pair(cert_file, key_file, &provider)?;
        Ok(Self {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            provider,
            current: ArcSwap::from_pointee(loaded),
        })
    }

    /// Re-read the files; swap when their bytes changed and they load.
    pub fn reload(&self) -> Result<Reload, InjectorError> {
        let cert_pem = read(&self.cert_file)?;
        let key_pem = read(&self.key_file)?;
        let current = self.current.load();
        if current.cert_pem == cert_pem && current.key_pem == key_pem {
            return Ok(Reload::Unchanged);
        }
        let loaded = parse_pair(cert_pem, key_pem, &self.provider)?;
        self.current.store(Arc::new(loaded));
        Ok(Reload::Changed)
    }

    /// notAfter of the served leaf, in Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.current.load().not_after
    }

    /// A rustls server config (TLS 1.2 and 1.3, ALPN http/1.1: the server
    /// speaks HTTP/1.1 only) that always serves the current pair.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, InjectorError> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&version::TLS13, &version::TLS12])
            .map_err(|e| InjectorError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Reload every `every` until the task is dropped; report each result.
    pub async fn watch(
        self: Arc<Self>,
        every: Duration,
        on_result: impl Fn(&Result<Reload, InjectorError>) + Send,
    ) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let result = self.reload();
            match &result {
                Ok(Reload::Changed) => {
                    tracing::info!(cert = %self.cert_file.display(), not_after = self.not_after(), "serving certificate reloaded")
                }
                Ok(Reload::Unchanged) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "serving certificate not reloaded; keeping the last good one")
                }
            }
            on_result(&result);
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load().key.clone())
    }
}

fn read(path: &Path) -> Result<Vec<u8>, InjectorError> {
    std::fs::read(path).map_err(|e| InjectorError::Tls(format!("{}: {e}", path.display())))
}

fn read_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<Loaded, InjectorError> {
    parse_pair(read(cert)?, read(key)?, provider)
}

fn parse_pair(
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    provider: &CryptoProvider,
) -> Result<Loaded, InjectorError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| InjectorError::Tls(format!("certificate file: {e}")))?;
    let Some(leaf) = chain.first() else {
        return Err(InjectorError::Tls(
            "certificate file: no certificate in it".into(),
        ));
    };
    let not_after = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| InjectorError::Tls(format!("certificate file: {e}")))?
        .1
        .validity()
        .not_after
        .timestamp();
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| InjectorError::Tls(format!("key file: {e}")))?;
    let certified = CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| InjectorError::Tls(format!("certificate and key: {e}")))?;
    Ok(Loaded {
        key: Arc::new(certified),
        cert_pem,
        key_pem,
        not_after,
    })
}
