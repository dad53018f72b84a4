//! Generated JWT-SVID fixtures: signing keys, SPIFFE bundle documents and
//! compact JWS tokens, well-formed or deliberately broken.
//!
//! A [`JwtIssuer`] is one trust domain's JWT signing authority: a freshly
//! generated aws-lc-rs key for one of the nine JWT-SVID algorithms, and a
//! `kid`. It publishes its public key as a JWK ([`JwtIssuer::jwk`]), joins
//! other issuers (and X.509 CAs) in a SPIFFE bundle document
//! ([`bundle_json`]), and mints tokens from [`JwtClaims`], which can bend every
//! header field and claim the verifier looks at: `alg`, `typ`, `crit`, `kid`,
//! `sub`, `aud`, `exp`, `nbf`, `iat`, and the signature itself.
//!
//! Nothing here is pasted: every key is generated when a test runs.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::error::Unspecified;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, KeyPair, RsaEncoding, RsaKeyPair,
    RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

use crate::Ca;

/// Errors from JWT fixture generation; they only happen on a broken aws-lc setup.
pub type JwtError = Unspecified;

/// A JWS algorithm that a JWT-SVID may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwtAlg {
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// ECDSA P-384 with SHA-384.
    Es384,
    /// ECDSA P-521 with SHA-512.
    Es512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
}

impl JwtAlg {
    /// Every JWT-SVID algorithm.
    pub const ALL: [Self; 9] = [
        Self::Es256,
        Self::Es384,
        Self::Es512,
        Self::Rs256,
        Self::Rs384,
        Self::Rs512,
        Self::Ps256,
        Self::Ps384,
        Self::Ps512,
    ];

    /// The JOSE name (`ES256`, `PS512`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::Es512 => "ES512",
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
        }
    }

    /// The JOSE curve name of an ECDSA algorithm; `None` for RSA.
    pub fn curve(self) -> Option<&'static str> {
        match self {
            Self::Es256 => Some("P-256"),
            Self::Es384 => Some("P-384"),
            Self::Es512 => Some("P-521"),
            _ => None,
        }
    }

    fn ecdsa(self) -> Option<&'static EcdsaSigningAlgorithm> {
        match self {
            Self::Es256 => Some(&signature::ECDSA_P256_SHA256_FIXED_SIGNING),
            Self::Es384 => Some(&signature::ECDSA_P384_SHA384_FIXED_SIGNING),
            Self::Es512 => Some(&signature::ECDSA_P521_SHA512_FIXED_SIGNING),
            _ => None,
        }
    }

    fn rsa_padding(self) -> Option<&'static dyn RsaEncoding> {
        match self {
            Self::Rs256 => Some(&signature::RSA_PKCS1_SHA256),
            Self::Rs384 => Some(&signature::RSA_PKCS1_SHA384),
            Self::Rs512 => Some(&signature::RSA_PKCS1_SHA512),
            Self::Ps256 => Some(&signature::RSA_PSS_SHA256),
            Self::Ps384 => Some(&signature::RSA_PSS_SHA384),
            Self::Ps512 => Some(&signature::RSA_PSS_SHA512),
            _ => None,
        }
    }
}

impl fmt::Display for JwtAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

enum SigningKey {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// One trust domain's JWT-SVID signing key, with its `kid` and algorithm.
pub struct JwtIssuer {
    trust_domain: String,
    alg: JwtAlg,
    kid: String,
    key: SigningKey,
}

impl fmt::Debug for JwtIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material, even in test output.
        f.debug_struct("JwtIssuer")
            .field("trust_domain", &self.trust_domain)
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The `kid` a minted token carries in its header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Kid {
    /// The issuer's own `kid` (the default).
    #[default]
    Issuer,
    /// No `kid` header at all.
    Omit,
    /// This `kid` instead of the issuer's.
    Set(String),
}

/// The signature part of a minted token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SignatureSpec {
    /// A real signature by the issuer's key over the signing input (the default).
    #[default]
    Sign,
    /// An empty third part (`header.claims.`), as `alg: none` tokens have.
    Empty,
    /// These bytes, base64url-encoded, whatever the header says.
    Raw(Vec<u8>),
}

/// How to shape a token: claims, header fields and signature.
///
/// [`JwtClaims::new`] gives a valid JWT-SVID (issued now, expiring in five
/// minutes, `typ: JWT`, the issuer's `alg` and `kid`); every field can then be
/// set, changed or removed to make one specific defect.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtClaims {
    /// `sub`; omitted when `None`.
    pub sub: Option<String>,
    /// `aud`, a string or an array; omitted when `None`.
    pub aud: Option<Value>,
    /// `exp` (Unix seconds); omitted when `None`.
    pub exp: Option<i64>,
    /// `nbf` (Unix seconds); omitted when `None`.
    pub nbf: Option<i64>,
    /// `iat` (Unix seconds); omitted when `None`.
    pub iat: Option<i64>,
    /// Further claims, added as they are (and overriding the fields above).
    pub extra_claims: Map<String, Value>,
    /// Header `alg`; the issuer's algorithm when `None`. The signature is
    /// always made with the issuer's key and algorithm, so an override makes
    /// a header that lies about the key.
    pub alg: Option<String>,
    /// Header `typ`; omitted when `None`.
    pub typ: Option<String>,
    /// Header `crit`; omitted when `None`.
    pub crit: Option<Value>,
    /// Header `kid`.
    pub kid: Kid,
    /// Further header fields, added as they are (and overriding the fields above).
    pub extra_header: Map<String, Value>,
    /// The signature part.
    pub signature: SignatureSpec,
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Unix milliseconds now: the clock the verifiers and the decision take.
pub fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl JwtClaims {
    /// A valid JWT-SVID for `sub` and one audience: `iat` now, `exp` in five minutes.
    pub fn new(sub: &str, aud: &str) -> Self {
        let now = unix_now();
        Self {
            sub: Some(sub.to_owned()),
            aud: Some(Value::String(aud.to_owned())),
            exp: Some(now + 300),
            nbf: None,
            iat: Some(now),
            extra_claims: Map::new(),
            alg: None,
            typ: Some("JWT".to_owned()),
            crit: None,
            kid: Kid::Issuer,
            extra_header: Map::new(),
            signature: SignatureSpec::Sign,
        }
    }

    /// Set `aud` to an array of audiences.
    #[must_use]
    pub fn audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.aud = Some(Value::Array(
            audiences
                .into_iter()
                .map(|a| Value::String(a.into()))
                .collect(),
        ));
        self
    }

    /// Set or remove `sub`.
    #[must_use]
    pub fn with_sub(mut self, sub: Option<&str>) -> Self {
        self.sub = sub.map(str::to_owned);
        self
    }

    /// Set or remove `aud` (a single string).
    #[must_use]
    pub fn with_aud(mut self, aud: Option<&str>) -> Self {
        self.aud = aud.map(|a| Value::String(a.to_owned()));
        self
    }

    /// Set or remove `exp`.
    #[must_use]
    pub fn with_exp(mut self, exp: Option<i64>) -> Self {
        self.exp = exp;
        self
    }

    /// Set or remove `nbf`.
    #[must_use]
    pub fn with_nbf(mut self, nbf: Option<i64>) -> Self {
        self.nbf = nbf;
        self
    }

    /// Set or remove `iat`.
    #[must_use]
    pub fn with_iat(mut self, iat: Option<i64>) -> Self {
        self.iat = iat;
        self
    }

    /// Put `alg` in the header instead of the issuer's algorithm.
    #[must_use]
    pub fn with_alg(mut self, alg: &str) -> Self {
        self.alg = Some(alg.to_owned());
        self
    }

    /// Set or remove the header `typ`.
    #[must_use]
    pub fn with_typ(mut self, typ: Option<&str>) -> Self {
        self.typ = typ.map(str::to_owned);
        self
    }

    /// Set or remove the header `crit`.
    #[must_use]
    pub fn with_crit(mut self, crit: Option<Value>) -> Self {
        self.crit = crit;
        self
    }

    /// Choose the header `kid`.
    #[must_use]
    pub fn with_kid(mut self, kid: Kid) -> Self {
        self.kid = kid;
        self
    }

    /// Add (or override) a header field.
    #[must_use]
    pub fn header_field(mut self, name: &str, value: Value) -> Self {
        self.extra_header.insert(name.to_owned(), value);
        self
    }

    /// Add (or override) a claim.
    #[must_use]
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.extra_claims.insert(name.to_owned(), value);
        self
    }

    /// Choose the signature part.
    #[must_use]
    pub fn with_signature(mut self, signature: SignatureSpec) -> Self {
        self.signature = signature;
        self
    }

    /// The JOSE header object for a token minted by `issuer`.
    pub fn header_json(&self, issuer: &JwtIssuer) -> Value {
        let mut header = Map::new();
        header.insert(
            "alg".into(),
            Value::String(
                self.alg
                    .clone()
                    .unwrap_or_else(|| issuer.alg.name().to_owned()),
            ),
        );
        if let Some(typ) = &self.typ {
            header.insert("typ".into(), Value::String(typ.clone()));
        }
        match &self.kid {
            Kid::Issuer => {
                header.insert("kid".into(), Value::String(issuer.kid.clone()));
            }
            Kid::Set(kid) => {
                header.insert("kid".into(), Value::String(kid.clone()));
            }
            Kid::Omit => {}
        }
        if let Some(crit) = &self.crit {
            header.insert("crit".into(), crit.clone());
        }
        for (k, v) in &self.extra_header {
            header.insert(k.clone(), v.clone());
        }
        Value::Object(header)
    }

    /// The claims object.
    pub fn claims_json(&self) -> Value {
        let mut claims = Map::new();
        if let Some(sub) = &self.sub {
            claims.insert("sub".into(), Value::String(sub.clone()));
        }
        if let Some(aud) = &self.aud {
            claims.insert("aud".into(), aud.clone());
        }
        for (name, value) in [("exp", self.exp), ("nbf", self.nbf), ("iat", self.iat)] {
            if let Some(v) = value {
                claims.insert(name.into(), Value::from(v));
            }
        }
        for (k, v) in &self.extra_claims {
            claims.insert(k.clone(), v.clone());
        }
        Value::Object(claims)
    }
}

/// Base64url without padding, as JOSE uses.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl JwtIssuer {
    /// A new signing key for `trust_domain`: an EC key on the curve of an
    /// `ES*` algorithm, or a 2048-bit RSA key for `RS*` and `PS*`.
    pub fn new(trust_domain: &str, alg: JwtAlg, kid: &str) -> Result<Self, JwtError> {
        let key = match alg.ecdsa() {
            Some(ec) => SigningKey::Ec(EcdsaKeyPair::generate(ec)?),
            None => SigningKey::Rsa(RsaKeyPair::generate(KeySize::Rsa2048)?),
        };
        Ok(Self {
            trust_domain: trust_domain.to_owned(),
            alg,
            kid: kid.to_owned(),
            key,
        })
    }

    /// The trust domain this issuer signs for.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The algorithm this issuer signs with.
    pub fn alg(&self) -> JwtAlg {
        self.alg
    }

    /// The key id published in the JWK and put in token headers.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a SPIFFE bundle JWK: `kty`, `crv`/`x`/`y` or `n`/`e`,
    /// `kid`, and `use: "jwt-svid"`.
    pub fn jwk(&self) -> Value {
        let mut jwk = self.public_jwk();
        if let Value::Object(map) = &mut jwk {
            map.insert("kid".into(), Value::String(self.kid.clone()));
            map.insert("use".into(), Value::String("jwt-svid".into()));
        }
        jwk
    }

    /// The public key as a bare JWK (no `kid`, no `use`), as a plain JWKS or
    /// the Workload API's JWT bundle holds it.
    pub fn public_jwk(&self) -> Value {
        match &self.key {
            SigningKey::Ec(key) => {
                let point = key.public_key().as_ref();
                let size = (point.len() - 1) / 2;
                json!({
                    "kty": "EC",
                    "crv": self.alg.curve().unwrap_or_default(),
                    "x": b64url(&point[1..=size]),
                    "y": b64url(&point[1 + size..]),
                })
            }
            SigningKey::Rsa(key) => {
                let parts = RsaPublicKeyComponents::<Vec<u8>>::from(key.public_key());
                json!({
                    "kty": "RSA",
                    "n": b64url(&parts.n),
                    "e": b64url(&parts.e),
                })
            }
        }
    }

    /// Sign `input` with this issuer's key and algorithm; the raw JWS signature
    /// (`r || s` for ECDSA).
    pub fn sign(&self, input: &[u8]) -> Result<Vec<u8>, JwtError> {
        let rng = SystemRandom::new();
        match &self.key {
            SigningKey::Ec(key) => Ok(key.sign(&rng, input)?.as_ref().to_vec()),
            SigningKey::Rsa(key) => {
                let padding = self.alg.rsa_padding().ok_or(Unspecified)?;
                let mut sig = vec![0; key.public_modulus_len()];
                key.sign(padding, &rng, input, &mut sig)?;
                Ok(sig)
            }
        }
    }

    /// Mint a compact JWS (`header.claims.signature`) shaped by `claims`.
    pub fn mint(&self, claims: &JwtClaims) -> Result<String, JwtError> {
        let header = claims.header_json(self).to_string();
        let body = claims.claims_json().to_string();
        let signing_input = format!("{}.{}", b64url(header.as_bytes()), b64url(body.as_bytes()));
        let signature = match &claims.signature {
            SignatureSpec::Sign => self.sign(signing_input.as_bytes())?,
            SignatureSpec::Empty => Vec::new(),
            SignatureSpec::Raw(bytes) => bytes.clone(),
        };
        Ok(format!("{signing_input}.{}", b64url(&signature)))
    }

    /// Mint a valid JWT-SVID for `sub` and `aud`, expiring in five minutes.
    pub fn mint_for(&self, sub: &str, aud: &str) -> Result<String, JwtError> {
        self.mint(&JwtClaims::new(sub, aud))
    }
}

/// A CA as a SPIFFE bundle key (an extension of [`Ca`], which lives in
/// `hallpass-pki`).
pub trait X509SvidJwk {
    /// This CA as a SPIFFE bundle JWK: `use: "x509-svid"` and the certificate
    /// in `x5c` (standard base64 DER). `kty`, `crv`, `x` and `y` are filled in
    /// for the EC P-256 keys the test kit generates.
    fn x509_svid_jwk(&self) -> Value;
}

impl X509SvidJwk for Ca {
    fn x509_svid_jwk(&self) -> Value {
        let mut jwk = Map::new();
        let raw = self.public_key_raw();
        if self.is_ecdsa_p256() && raw.len() == 65 {
            jwk.insert("kty".into(), "EC".into());
            jwk.insert("crv".into(), "P-256".into());
            jwk.insert("x".into(), b64url(&raw[1..33]).into());
            jwk.insert("y".into(), b64url(&raw[33..]).into());
        } else {
            jwk.insert("kty".into(), "RSA".into());
        }
        jwk.insert("use".into(), "x509-svid".into());
        jwk.insert(
            "x5c".into(),
            Value::Array(vec![STANDARD.encode(self.cert_der()).into()]),
        );
        Value::Object(jwk)
    }
}

/// A SPIFFE bundle document `{"keys": [...]}` holding the `x509-svid` key of
/// each CA in `cas` and the `jwt-svid` key of each issuer in `issuers`.
pub fn bundle_json(issuers: &[&JwtIssuer], cas: &[&Ca]) -> String {
    let keys: Vec<Value> = cas
        .iter()
        .map(|ca| ca.x509_svid_jwk())
        .chain(issuers.iter().map(|i| i.jwk()))
        .collect();
    json!({ "keys": keys }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(part: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn jwk_has_the_shape_of_each_algorithm() {
        for alg in JwtAlg::ALL {
            let issuer = JwtIssuer::new("td.example", alg, "k").unwrap();
            let jwk = issuer.jwk();
            assert_eq!(jwk["kid"], "k");
            assert_eq!(jwk["use"], "jwt-svid");
            let len = |field: &str| {
                URL_SAFE_NO_PAD
                    .decode(jwk[field].as_str().unwrap())
                    .unwrap()
                    .len()
            };
            match alg.curve() {
                Some(crv) => {
                    let size = match crv {
                        "P-256" => 32,
                        "P-384" => 48,
                        _ => 66,
                    };
                    assert_eq!(jwk["crv"], crv);
                    assert_eq!((len("x"), len("y")), (size, size), "{alg}");
                }
                None => {
                    assert_eq!(jwk["kty"], "RSA");
                    assert_eq!(len("n"), 256, "{alg}");
                    assert_eq!(jwk["e"], "AQAB");
                }
            }
        }
    }

    #[test]
    fn mint_follows_the_claims_spec() {
        let issuer = JwtIssuer::new("td.example", JwtAlg::Es256, "k").unwrap();
        let token = issuer
            .mint(&JwtClaims::new("spiffe://td.example/a", "aud"))
            .unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            decode(parts[0]),
            json!({"alg": "ES256", "typ": "JWT", "kid": "k"})
        );
        assert_eq!(decode(parts[1])["sub"], "spiffe://td.example/a");
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 64);

        let odd = JwtClaims::new("spiffe://td.example/a", "aud")
            .with_alg("none")
            .with_typ(None)
            .with_kid(Kid::Omit)
            .with_exp(None)
            .with_signature(SignatureSpec::Empty);
        let token = issuer.mint(&odd).unwrap();
        assert!(token.ends_with('.'));
        assert_eq!(
            decode(token.split('.').next().unwrap()),
            json!({"alg": "none"})
        );
        assert!(
            decode(token.split('.').nth(1).unwrap())
                .get("exp")
                .is_none()
        );
    }

    #[test]
    fn bundle_json_lists_cas_then_issuers() {
        let ca = Ca::root("td.example").unwrap();
        let issuer = JwtIssuer::new("td.example", JwtAlg::Ps256, "k").unwrap();
        let doc: Value = serde_json::from_str(&bundle_json(&[&issuer], &[&ca])).unwrap();
        let keys = doc["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0]["use"], "x509-svid");
        assert_eq!(keys[0]["x5c"][0], STANDARD.encode(ca.cert_der()));
        assert_eq!(keys[1], issuer.jwk());
    }
}
