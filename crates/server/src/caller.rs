//! Who is calling: the X.509 and JWT credentials of one `CheckRequest`, turned
//! into at most one proven SPIFFE ID, through the verification cache.

use std::collections::HashMap;
use std::sync::Arc;

use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use hallpass_identity::{
    CredentialDigest, IdentityError, SpiffeId, TrustBundleSet, credential_digest,
    decode_envoy_certificate, parse_spiffe_id_strict, parse_xfcc,
};
use hallpass_vocab::{CredentialKind, Credentials, DenyReason};

use crate::Shared;
use crate::config::X509From;

/// The header Envoy (or a front proxy) uses for client certificate details.
const XFCC_HEADER: &str = "x-forwarded-client-cert";

/// A caller identity, proven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    /// The SPIFFE ID.
    pub(crate) id: SpiffeId,
    /// The same ID as text, made once per verified credential.
    pub(crate) text: Arc<str>,
    /// Serial of the X.509-SVID that proved it, if a certificate did.
    pub(crate) serial: Option<Arc<[u8]>>,
    /// A JWT-SVID naming the same ID was verified.
    pub(crate) has_jwt: bool,
    /// The verified JWT-SVID's replay key and expiry, when it has a `jti`
    /// (what `jwt_replay: deny` consumes).
    pub(crate) jti: Option<Jti>,
    /// Credential kinds that proved it.
    pub(crate) credentials: Credentials,
}

/// A verified JWT-SVID's `jti`, as the replay cache keys it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Jti {
    /// Digest of (trust domain, `jti`): a token re-signed with the same
    /// `jti` is the same key; another trust domain's is not.
    pub(crate) key: CredentialDigest,
    /// The token's `exp`, Unix ms (exclusive).
    pub(crate) expires_ms: i64,
}

/// What the cache remembers of one verified credential.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    id: SpiffeId,
    /// `id` as text: the cache keeps it, so that a check copies it rather
    /// than formats it (the answer's header, the audit record).
    text: Arc<str>,
    serial: Option<Arc<[u8]>>,
    /// A JWT-SVID's `jti` (none for a certificate, or a token without one).
    jti: Option<Jti>,
}

/// The one mapping from an identity failure to a reason code.
pub(crate) fn identity_reason(e: &IdentityError) -> DenyReason {
    match e {
        IdentityError::NoCredential => DenyReason::NoIdentity,
        IdentityError::UntrustedTrustDomain(_) => DenyReason::UntrustedTrustDomain,
        IdentityError::Expired => DenyReason::ExpiredCredential,
        IdentityError::InvalidJwt(_) => DenyReason::InvalidJwt,
        IdentityError::JwtAudienceMismatch => DenyReason::JwtAudienceMismatch,
        IdentityError::Malformed(_)
        | IdentityError::NotAnSvid(_)
        | IdentityError::ChainInvalid(_) => DenyReason::InvalidSvid,
        _ => DenyReason::InternalError,
    }
}

impl Shared {
    /// Prove the caller from the request's credentials, or say why not.
    pub(crate) fn caller(
        &self,
        attrs: &AttributeContext,
        now_ms: i64,
    ) -> Result<Caller, DenyReason> {
        let empty = HashMap::new();
        let headers = request_headers(attrs).unwrap_or(&empty);
        let x509 = self.x509_caller(attrs, headers, now_ms)?;
        let jwt = match &self.jwt {
            Some((settings, _)) => match bearer_token(headers, &settings.header) {
                Some(token) => Some(self.jwt_caller(token, now_ms)?),
                None if settings.required => return Err(DenyReason::NoIdentity),
                None => None,
            },
            None => None,
        };
        match (x509, jwt) {
            (Some(x), Some(j)) if x.id != j.id => Err(DenyReason::IdentityMismatch),
            (Some(x), Some(j)) => Ok(Caller {
                id: x.id,
                text: x.text,
                serial: x.serial,
                has_jwt: true,
                jti: j.jti,
                credentials: Credentials::NONE
                    .with(CredentialKind::X509)
                    .with(CredentialKind::Jwt),
            }),
            (Some(x), None) => Ok(Caller {
                id: x.id,
                text: x.text,
                serial: x.serial,
                has_jwt: false,
                jti: None,
                credentials: Credentials::NONE.with(CredentialKind::X509),
            }),
            (None, Some(j)) => Ok(Caller {
                id: j.id,
                text: j.text,
                serial: None,
                has_jwt: true,
                jti: j.jti,
                credentials: Credentials::NONE.with(CredentialKind::Jwt),
            }),
            (None, None) => Err(DenyReason::NoIdentity),
        }
    }

    /// The bundles in force. With none at all (nothing delivered yet), the
    /// fault is ours, not the caller's: `internal_error`, not a 401.
    fn bundles(&self, jwt: bool) -> Result<Arc<TrustBundleSet>, DenyReason> {
        let set = self.trust.current().ok_or(DenyReason::InternalError)?;
        let empty = if jwt {
            set.jwt_iter().next().is_none()
        } else {
            set.is_empty()
        };
        if empty {
            return Err(DenyReason::InternalError);
        }
        Ok(set)
    }

    /// The X.509 identity: `None` when no certificate was presented.
    fn x509_caller(
        &self,
        attrs: &AttributeContext,
        headers: &HashMap<String, String>,
        now_ms: i64,
    ) -> Result<Option<Verified>, DenyReason> {
        let peer = attrs.source.as_ref();
        match self.settings.x509_from {
            X509From::EnvoyPrincipal => {
                let principal = peer.map(|p| p.principal.as_str()).unwrap_or_default();
                if principal.is_empty() {
                    return Ok(None);
                }
                let id = parse_spiffe_id_strict(principal).map_err(|_| DenyReason::InvalidSvid)?;
                Ok(Some(Verified {
                    text: Arc::from(id.to_string()),
                    id,
                    serial: None,
                    jti: None,
                }))
            }
            X509From::PeerCertificate => {
                let leaf = peer.map(|p| p.certificate.as_str()).unwrap_or_default();
                if leaf.is_empty() {
                    return Ok(None);
                }
                // Our own Envoy may forward the chain (SANITIZE_SET, chain: true).
                // Intermediates are only helpers: trust still ends at the bundle.
                let chain = forwarded_chain(headers)?;
                self.verify_x509(leaf, &chain, now_ms).map(Some)
            }
            X509From::Xfcc => {
                // The direct peer must itself prove to be a trusted proxy.
                let proxy_cert = peer.map(|p| p.certificate.as_str()).unwrap_or_default();
                if proxy_cert.is_empty() {
                    return Err(DenyReason::NoIdentity);
                }
                let proxy = self.verify_x509(proxy_cert, "", now_ms)?;
                if !self.settings.xfcc_trusted_proxies.contains(&proxy.id) {
                    tracing::debug!(proxy = %proxy.id, "XFCC from a peer that is not a trusted proxy");
                    return Err(DenyReason::InvalidSvid);
                }
                let Some(header) = headers.get(XFCC_HEADER) else {
                    return Ok(None);
                };
                match nearest_forwarded(header)? {
                    Some((cert, chain)) => self.verify_x509(&cert, &chain, now_ms).map(Some),
                    None => Ok(None),
                }
            }
        }
    }

    /// Is every credential `attrs` carries in the verification cache, so
    /// that deciding it verifies nothing? A scheduling hint for the check
    /// handler, never part of a decision: a wrong `false` only moves a
    /// check to a verification slot, a wrong `true` only decides it on the
    /// runtime worker (as every check was before). It reads the credentials
    /// the way [`Shared::caller`] does, through the same key and header
    /// helpers; whatever `caller` would deny before verifying (no bundles,
    /// a malformed header) counts as cached: nothing to verify.
    pub(crate) fn credentials_cached(&self, attrs: &AttributeContext, now_ms: i64) -> bool {
        let Some(bundles) = self.trust.current() else {
            return true;
        };
        let cached =
            |key: CredentialDigest| self.cache.contains(&key, bundles.generation(), now_ms);
        let empty = HashMap::new();
        let headers = request_headers(attrs).unwrap_or(&empty);
        let peer_certificate = attrs
            .source
            .as_ref()
            .map(|p| p.certificate.as_str())
            .unwrap_or_default();
        let x509 = match self.settings.x509_from {
            X509From::EnvoyPrincipal => true,
            X509From::PeerCertificate => {
                peer_certificate.is_empty()
                    || match forwarded_chain(headers) {
                        Ok(chain) => cached(x509_key(peer_certificate, &chain)),
                        Err(_) => true,
                    }
            }
            X509From::Xfcc => {
                peer_certificate.is_empty()
                    || (cached(x509_key(peer_certificate, ""))
                        && headers.get(XFCC_HEADER).is_none_or(|header| {
                            match nearest_forwarded(header) {
                                Ok(Some((cert, chain))) => cached(x509_key(&cert, &chain)),
                                Ok(None) | Err(_) => true,
                            }
                        }))
            }
        };
        let jwt = match &self.jwt {
            Some((settings, _)) => {
                bearer_token(headers, &settings.header).is_none_or(|token| cached(jwt_key(token)))
            }
            None => true,
        };
        x509 && jwt
    }

    /// Verify a URL-encoded PEM leaf (plus optional URL-encoded PEM chain),
    /// through the cache.
    fn verify_x509(&self, leaf: &str, chain: &str, now_ms: i64) -> Result<Verified, DenyReason> {
        let bundles = self.bundles(false)?;
        let key = x509_key(leaf, chain);
        if let Some(hit) = self.cache.get(&key, bundles.generation(), now_ms) {
            self.metrics.cache_hits.inc();
            return Ok(hit);
        }
        self.metrics.cache_misses.inc();
        #[cfg(test)]
        self.verify_gate.pass();
        let certs = decode_envoy_certificate(leaf).map_err(|e| identity_reason(&e))?;
        let Some((leaf_der, extra)) = certs.split_first() else {
            return Err(DenyReason::NoIdentity);
        };
        let mut intermediates = extra.to_vec();
        if !chain.is_empty() {
            let mut chain_certs =
                decode_envoy_certificate(chain).map_err(|e| identity_reason(&e))?;
            // XFCC's Chain starts with the leaf itself.
            if chain_certs
                .first()
                .is_some_and(|c| c.as_ref() == leaf_der.as_ref())
            {
                chain_certs.remove(0);
            }
            intermediates.extend(chain_certs);
        }
        let svid = self
            .x509
            .verify(&bundles, leaf_der, &intermediates, now_ms)
            .map_err(|e| {
                tracing::debug!(
                    reason = identity_reason(&e).code(),
                    detail = e.log_text(),
                    "X.509-SVID rejected"
                );
                identity_reason(&e)
            })?;
        // Credential posture: counted once per distinct credential (a miss).
        self.metrics.record_credential_lifetime(
            CredentialKind::X509,
            svid.not_after.saturating_sub(svid.not_before),
            self.settings.max_lifetime_x509,
        );
        let verified = Verified {
            text: Arc::from(svid.id.to_string()),
            id: svid.id,
            serial: Some(Arc::from(svid.serial)),
            jti: None,
        };
        // `notAfter` is inclusive to the millisecond, as the verifier reads it.
        let evicted = self.cache.insert(
            key,
            bundles.generation(),
            verified.clone(),
            svid.not_after.saturating_mul(1000),
            now_ms,
        );
        self.metrics.cache_evictions.inc_by(evicted);
        Ok(verified)
    }

    fn jwt_caller(&self, token: &str, now_ms: i64) -> Result<Verified, DenyReason> {
        let Some((_, verifier)) = &self.jwt else {
            return Err(DenyReason::InternalError);
        };
        let bundles = self.bundles(true)?;
        let key = jwt_key(token);
        if let Some(hit) = self.cache.get(&key, bundles.generation(), now_ms) {
            self.metrics.cache_hits.inc();
            return Ok(hit);
        }
        self.metrics.cache_misses.inc();
        let jwt = verifier.verify(&bundles, token, now_ms).map_err(|e| {
            tracing::debug!(
                reason = identity_reason(&e).code(),
                detail = e.log_text(),
                "JWT-SVID rejected"
            );
            identity_reason(&e)
        })?;
        if let Some(issued) = jwt.issued {
            self.metrics.record_credential_lifetime(
                CredentialKind::Jwt,
                jwt.expires.saturating_sub(issued),
                self.settings.max_lifetime_jwt,
            );
        }
        let jti = jwt.jti.as_ref().map(|jti| Jti {
            key: credential_digest(&[
                b"jti",
                jwt.id.trust_domain().as_str().as_bytes(),
                jti.as_bytes(),
            ]),
            expires_ms: jwt.expires_ms,
        });
        let verified = Verified {
            text: Arc::from(jwt.id.to_string()),
            id: jwt.id,
            serial: None,
            jti,
        };
        let evicted = self.cache.insert(
            key,
            bundles.generation(),
            verified.clone(),
            // `exp` is exclusive (RFC 7519); the cache expiry is inclusive.
            jwt.expires.saturating_mul(1000).saturating_sub(1),
            now_ms,
        );
        self.metrics.cache_evictions.inc_by(evicted);
        Ok(verified)
    }
}

/// The HTTP request headers of a check, if it carries an HTTP request.
fn request_headers(attrs: &AttributeContext) -> Option<&HashMap<String, String>> {
    attrs
        .request
        .as_ref()
        .and_then(|r| r.http.as_ref())
        .map(|h| &h.headers)
}

/// The cache key of an X.509 credential: the exact leaf and chain text.
fn x509_key(leaf: &str, chain: &str) -> CredentialDigest {
    credential_digest(&[b"x509", leaf.as_bytes(), chain.as_bytes()])
}

/// The cache key of a JWT-SVID: the exact token.
fn jwt_key(token: &str) -> CredentialDigest {
    credential_digest(&[b"jwt", token.as_bytes()])
}

/// The chain our own Envoy forwards beside the peer certificate (the
/// nearest XFCC element's `Chain`), empty without the header.
fn forwarded_chain(headers: &HashMap<String, String>) -> Result<String, DenyReason> {
    match headers.get(XFCC_HEADER) {
        Some(h) => Ok(parse_xfcc(h)
            .map_err(|_| DenyReason::InvalidSvid)?
            .pop()
            .and_then(|e| e.chain)
            .unwrap_or_default()),
        None => Ok(String::new()),
    }
}

/// The nearest XFCC element's certificate and chain, if it has a
/// certificate.
fn nearest_forwarded(header: &str) -> Result<Option<(String, String)>, DenyReason> {
    let nearest = parse_xfcc(header)
        .map_err(|_| DenyReason::InvalidSvid)?
        .pop();
    Ok(nearest.and_then(|e| e.cert.map(|c| (c, e.chain.unwrap_or_default()))))
}

/// The token in `header`: for `authorization`, the part after `Bearer `
/// (any other scheme means no JWT-SVID); for other headers, the whole value.
fn bearer_token<'a>(headers: &'a HashMap<String, String>, header: &str) -> Option<&'a str> {
    let value = headers.get(header)?.trim();
    let token = if header == "authorization" {
        let (scheme, rest) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        rest.trim()
    } else {
        value
    };
    (!token.is_empty()).then_some(token)
}
