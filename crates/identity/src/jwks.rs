//! SPIFFE bundle documents (JWKS with `use`), for both X.509 and JWT keys.
//!
//! A SPIFFE bundle is a JWK Set whose keys carry `use`: `x509-svid` keys hold
//! one CA certificate in `x5c`; `jwt-svid` keys hold a public key and a `kid`.
//! Keys of any other use are ignored, as the SPIFFE Trust Domain and Bundle
//! specification requires.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;

/// Largest bundle document accepted.
const MAX_BUNDLE_LEN: usize = 1024 * 1024;
/// Most keys in one bundle.
const MAX_KEYS: usize = 256;

#[derive(Debug, Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

#[derive(Debug, Deserialize)]
struct Jwk {
    kty: String,
    #[serde(rename = "use")]
    key_use: Option<String>,
    kid: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x5c: Option<Vec<String>>,
}

/// A public key that can verify JWT-SVID signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtPublicKey {
    /// An EC key: curve name (`P-256`, `P-384`, `P-521`) and the uncompressed point.
    Ec {
        /// JOSE curve name.
        curve: String,
        /// `0x04 || x || y`.
        point: Vec<u8>,
    },
    /// An RSA key: big-endian modulus and exponent.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
}

/// What a bundle document holds, split by use.
#[derive(Debug, Default)]
pub struct ParsedBundle {
    /// DER CA certificates of `x509-svid` keys.
    pub x509_authorities: Vec<Vec<u8>>,
    /// `jwt-svid` keys by `kid`.
    pub jwt_authorities: HashMap<String, JwtPublicKey>,
}

/// Parse a SPIFFE bundle (or, for the JWT side, a plain JWKS).
///
/// With `keys_without_use_are_jwt`, a key that has no `use` is taken as a
/// JWT-SVID key (for plain JWKS files configured as `trust.bundles[].jwt`).
pub fn parse_spiffe_bundle(
    json: &[u8],
    keys_without_use_are_jwt: bool,
) -> Result<ParsedBundle, String> {
    if json.len() > MAX_BUNDLE_LEN {
        return Err("bundle document too large".into());
    }
    let set: JwkSet = serde_json::from_slice(json).map_err(|e| format!("not a JWK set: {e}"))?;
    if set.keys.len() > MAX_KEYS {
        return Err(format!("more than {MAX_KEYS} keys"));
    }
    let mut out = ParsedBundle::default();
    for (i, key) in set.keys.into_iter().enumerate() {
        let key_use = key
            .key_use
            .clone()
            .or_else(|| keys_without_use_are_jwt.then(|| "jwt-svid".to_owned()));
        match key_use.as_deref() {
            Some("x509-svid") => {
                let chain = key.x5c.as_deref().unwrap_or_default();
                let [cert] = chain else {
                    return Err(format!(
                        "keys[{i}]: an x509-svid key needs exactly one x5c certificate"
                    ));
                };
                let der = STANDARD
                    .decode(cert)
                    .map_err(|_| format!("keys[{i}]: x5c is not base64"))?;
                out.x509_authorities.push(der);
            }
            Some("jwt-svid") => {
                let kid = key
                    .kid
                    .clone()
                    .filter(|k| !k.is_empty())
                    .ok_or_else(|| format!("keys[{i}]: a jwt-svid key needs a kid"))?;
                let public = jwt_key(&key).map_err(|e| format!("keys[{i}]: {e}"))?;
                if out.jwt_authorities.insert(kid.clone(), public).is_some() {
                    return Err(format!("keys[{i}]: kid `{kid}` appears twice"));
                }
            }
            // Other uses are for other protocols; the spec says ignore them.
            _ => {}
        }
    }
    Ok(out)
}

/// Parse one JWK (as the Workload API delivers JWT authorities).
pub fn parse_jwk(json: &[u8]) -> Result<JwtPublicKey, String> {
    if json.len() > 64 * 1024 {
        return Err("JWK too large".into());
    }
    let key: Jwk = serde_json::from_slice(json).map_err(|e| format!("not a JWK: {e}"))?;
    jwt_key(&key)
}

fn b64(field: &Option<String>, name: &str) -> Result<Vec<u8>, String> {
    let text = field
        .as_deref()
        .ok_or_else(|| format!("missing `{name}`"))?;
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| format!("`{name}` is not base64url"))
}

fn jwt_key(key: &Jwk) -> Result<JwtPublicKey, String> {
    match key.kty.as_str() {
        "EC" => {
            let curve = key.crv.clone().ok_or("missing `crv`")?;
            let size = match curve.as_str() {
                "P-256" => 32,
                "P-384" => 48,
                "P-521" => 66,
                other => return Err(format!("unsupported curve `{other}`")),
            };
            let (x, y) = (b64(&key.x, "x")?, b64(&key.y, "y")?);
            if x.len() != size || y.len() != size {
                return Err(format!("coordinates of a {curve} key must be {size} bytes"));
            }
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            Ok(JwtPublicKey::Ec { curve, point })
        }
        "RSA" => Ok(JwtPublicKey::Rsa {
            n: b64(&key.n, "n")?,
            e: b64(&key.e, "e")?,
        }),
        other => Err(format!("unsupported key type `{other}`")),
    }
}
