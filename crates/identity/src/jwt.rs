//! JWT-SVID verification (SPIFFE JWT-SVID specification).
//!
//! hallpass verifies JWT-SVIDs itself, with aws-lc-rs for the signatures,
//! rather than through `spiffe::JwtSvid::parse_and_validate`, because that
//! function has no clock-skew leeway, no ES512, and no way to restrict `kid`
//! to the `jwt-svid` keys of the token's own trust domain. The rules:
//!
//! - size caps on the token and on each decoded part;
//! - `alg` in RS/ES/PS 256/384/512, never `none` or HMAC; `typ`, if present,
//!   is `JWT` or `JOSE`; no `crit` extensions;
//! - `sub` is a canonical SPIFFE ID; `kid` is looked up only among the
//!   `jwt-svid` keys of the bundle of `sub`'s trust domain, and the key type
//!   must fit `alg`;
//! - the signature verifies, *then* the claims are checked: `exp` required,
//!   `nbf` and `iat` honoured, all with the configured skew; `aud` contains
//!   one of the configured audiences.

use std::collections::HashMap;
use std::time::Duration;

use aws_lc_rs::signature::{
    self, RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use spiffe::SpiffeId;

use crate::jwks::JwtPublicKey;
use crate::{IdentityError, TrustBundleSet, parse_spiffe_id_strict};

/// Longest token accepted (bytes).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Longest decoded header or claims part.
const MAX_PART_LEN: usize = 4 * 1024;

/// A caller identity proven by a JWT-SVID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedJwt {
    /// The `sub` claim.
    pub id: SpiffeId,
    /// The `exp` claim (Unix seconds).
    pub expires: i64,
    /// The `iat` claim (else `nbf`), when present: the start of its lifetime.
    pub issued: Option<i64>,
    /// The `jti` claim, when present and a non-empty string: what replay
    /// protection (`jwt_replay: deny`) keys on, with the trust domain.
    pub jti: Option<String>,
    /// The `exp` claim in Unix milliseconds (rounded down), exclusive: how
    /// long a replay-cache entry for `jti` must be kept.
    pub expires_ms: i64,
}

#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
    /// Present-ness is what counts: `"crit": null` is still a `crit` header.
    #[serde(default, deserialize_with = "present")]
    crit: Option<serde_json::Value>,
}

/// `Some` for any value, `null` included (plain `Option` maps `null` to `None`).
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<f64>,
    nbf: Option<f64>,
    iat: Option<f64>,
    /// Any JSON value: only a non-empty string counts as a `jti`.
    jti: Option<serde_json::Value>,
}

/// The JWS algorithms a JWT-SVID may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    Rs(u16),
    Ps(u16),
    Es(u16),
}

impl Alg {
    fn parse(alg: &str) -> Option<Self> {
        Some(match alg {
            "RS256" => Self::Rs(256),
            "RS384" => Self::Rs(384),
            "RS512" => Self::Rs(512),
            "PS256" => Self::Ps(256),
            "PS384" => Self::Ps(384),
            "PS512" => Self::Ps(512),
            "ES256" => Self::Es(256),
            "ES384" => Self::Es(384),
            "ES512" => Self::Es(512),
            _ => return None,
        })
    }

    fn rsa(self) -> Option<&'static signature::RsaParameters> {
        Some(match self {
            Self::Rs(256) => &signature::RSA_PKCS1_2048_8192_SHA256,
            Self::Rs(384) => &signature::RSA_PKCS1_2048_8192_SHA384,
            Self::Rs(512) => &signature::RSA_PKCS1_2048_8192_SHA512,
            Self::Ps(256) => &signature::RSA_PSS_2048_8192_SHA256,
            Self::Ps(384) => &signature::RSA_PSS_2048_8192_SHA384,
            Self::Ps(512) => &signature::RSA_PSS_2048_8192_SHA512,
            _ => return None,
        })
    }

    /// The ECDSA algorithm and the curve it requires.
    fn ecdsa(self) -> Option<(&'static dyn VerificationAlgorithm, &'static str)> {
        Some(match self {
            Self::Es(256) => (&signature::ECDSA_P256_SHA256_FIXED, "P-256"),
            Self::Es(384) => (&signature::ECDSA_P384_SHA384_FIXED, "P-384"),
            Self::Es(512) => (&signature::ECDSA_P521_SHA512_FIXED, "P-521"),
            _ => return None,
        })
    }
}

/// Verifies JWT-SVIDs for a set of audiences.
#[derive(Debug, Clone)]
pub struct JwtSvidVerifier {
    audiences: Vec<String>,
    /// Milliseconds.
    clock_skew: i64,
}

fn decode_part<T: for<'de> Deserialize<'de>>(
    part: &str,
    what: &'static str,
) -> Result<T, IdentityError> {
    if part.len() > MAX_PART_LEN * 4 / 3 + 4 {
        return Err(IdentityError::InvalidJwt(what));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| IdentityError::InvalidJwt(what))?;
    // A JOSE header and a claims set are JSON objects. serde would also fill
    // a struct from a JSON array, by position; refuse that reading.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(IdentityError::InvalidJwt(what));
    }
    serde_json::from_slice(&bytes).map_err(|_| IdentityError::InvalidJwt(what))
}

impl JwtSvidVerifier {
    /// A verifier accepting tokens whose `aud` contains one of `audiences`.
    pub fn new(audiences: Vec<String>, clock_skew: Duration) -> Self {
        Self {
            audiences,
            clock_skew: i64::try_from(clock_skew.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// Verify a compact JWS token (without the `Bearer ` prefix) at `now_ms`
    /// (Unix milliseconds; NumericDate claims may carry fractions of a second).
    pub fn verify(
        &self,
        bundles: &TrustBundleSet,
        token: &str,
        now_ms: i64,
    ) -> Result<VerifiedJwt, IdentityError> {
        if token.is_empty() {
            return Err(IdentityError::NoCredential);
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(IdentityError::InvalidJwt("token too large"));
        }
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(IdentityError::InvalidJwt("not a compact JWS (three parts)"));
        };
        let header: Header = decode_part(h, "malformed header")?;
        let alg =
            Alg::parse(&header.alg).ok_or(IdentityError::InvalidJwt("algorithm not allowed"))?;
        if header
            .typ
            .as_deref()
            .is_some_and(|t| t != "JWT" && t != "JOSE")
        {
            return Err(IdentityError::InvalidJwt("typ must be JWT or JOSE"));
        }
        if header.crit.is_some() {
            return Err(IdentityError::InvalidJwt(
                "critical header extensions are not supported",
            ));
        }
        let kid = header
            .kid
            .filter(|k| !k.is_empty())
            .ok_or(IdentityError::InvalidJwt("no kid"))?;
        let claims: Claims = decode_part(c, "malformed claims")?;
        let sub = claims
            .sub
            .as_deref()
            .ok_or(IdentityError::InvalidJwt("no sub"))?;
        let id = parse_spiffe_id_strict(sub)
            .map_err(|_| IdentityError::InvalidJwt("sub is not a SPIFFE ID"))?;

        let keys = bundles
            .jwt(id.trust_domain())
            .ok_or_else(|| IdentityError::UntrustedTrustDomain(id.trust_domain().clone()))?;
        let key = keys.get(&kid).ok_or(IdentityError::InvalidJwt(
            "unknown kid for this trust domain",
        ))?;
        let sig = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| IdentityError::InvalidJwt("malformed signature"))?;
        // The signing input is `header.claims`, the token up to the last dot.
        let signed = token
            .rsplit_once('.')
            .map_or(&[][..], |(input, _)| input.as_bytes());
        verify_signature(alg, key, signed, &sig)?;

        // Claims only count once the signature holds.
        let exp = claims.exp.ok_or(IdentityError::InvalidJwt("no exp"))?;
        // Each bound is rounded the strict way: `exp` down, `nbf` and `iat` up.
        let exp_ms = to_millis(exp, f64::floor)?;
        // RFC 7519 §4.1.4: valid only *before* `exp`.
        if now_ms.saturating_sub(self.clock_skew) >= exp_ms {
            return Err(IdentityError::Expired);
        }
        if let Some(nbf) = claims.nbf
            && now_ms.saturating_add(self.clock_skew) < to_millis(nbf, f64::ceil)?
        {
            return Err(IdentityError::Expired);
        }
        if let Some(iat) = claims.iat
            && to_millis(iat, f64::ceil)? > now_ms.saturating_add(self.clock_skew)
        {
            return Err(IdentityError::InvalidJwt("issued in the future"));
        }
        let exp = exp_ms.div_euclid(1000);
        let audiences = match claims.aud {
            Some(Audience::One(a)) => vec![a],
            Some(Audience::Many(a)) => a,
            None => Vec::new(),
        };
        if !audiences.iter().any(|a| self.audiences.contains(a)) {
            return Err(IdentityError::JwtAudienceMismatch);
        }
        let issued = match (claims.iat, claims.nbf) {
            (Some(t), _) | (None, Some(t)) => Some(to_secs(t)?),
            (None, None) => None,
        };
        let jti = match claims.jti {
            Some(serde_json::Value::String(j)) if !j.is_empty() => Some(j),
            _ => None,
        };
        Ok(VerifiedJwt {
            id,
            expires: exp,
            issued,
            jti,
            expires_ms: exp_ms,
        })
    }
}

/// A NumericDate (seconds, possibly fractional) as whole seconds, rounded down.
fn to_secs(value: f64) -> Result<i64, IdentityError> {
    to_millis(value, f64::floor).map(|ms| ms.div_euclid(1000))
}

/// A NumericDate as Unix milliseconds, rounded by `round`. Bounded to the
/// years 1970..=33658, so the result and any sum with a skew stay far from
/// `i64`'s limits.
fn to_millis(value: f64, round: fn(f64) -> f64) -> Result<i64, IdentityError> {
    if !value.is_finite() || !(0.0..=1e12).contains(&value) {
        return Err(IdentityError::InvalidJwt("bad numeric date"));
    }
    Ok(round(value * 1000.0) as i64)
}

fn verify_signature(
    alg: Alg,
    key: &JwtPublicKey,
    signed: &[u8],
    sig: &[u8],
) -> Result<(), IdentityError> {
    let bad = IdentityError::InvalidJwt("signature does not verify");
    match (key, alg.rsa(), alg.ecdsa()) {
        (JwtPublicKey::Rsa { n, e }, Some(params), _) => RsaPublicKeyComponents {
            n: n.as_slice(),
            e: e.as_slice(),
        }
        .verify(params, signed, sig)
        .map_err(|_| bad),
        (JwtPublicKey::Ec { curve, point }, _, Some((algorithm, want))) if curve == want => {
            UnparsedPublicKey::new(algorithm, point)
                .verify(signed, sig)
                .map_err(|_| bad)
        }
        _ => Err(IdentityError::InvalidJwt("key type does not fit alg")),
    }
}

/// JWT-SVID keys of one trust domain, by `kid`.
pub type JwtAuthorities = HashMap<String, JwtPublicKey>;
