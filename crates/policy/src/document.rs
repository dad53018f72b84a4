//! The policy file's serde model (design §5), and its shape for located errors.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::Mode;

/// The policy file as written (design §5), before compilation.
///
/// Unknown keys are errors everywhere: a misspelt `methods` must never turn a
/// rule into "any method".
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// Schema version; only `1` exists.
    pub version: u32,
    /// The file's owner scope (a team file in a policy of several files):
    /// source patterns every destination of the file must match. A file
    /// with a scope may not set mesh-wide sections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Vec<String>>,
    /// Trust domains whose identities may be accepted at all.
    #[serde(default)]
    pub trust_domains: Vec<String>,
    /// The data classes rules and destinations of this policy may declare
    /// (`phi`, `billing`, `operational`, `public`); absent means all four.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_classes: Option<Vec<String>>,
    /// Revoked identities.
    #[serde(default)]
    pub revoked: RevokedDocument,
    /// Rules per destination SPIFFE ID. A destination written twice is an
    /// error, never a silent replacement of the first entry.
    #[serde(default, deserialize_with = "unique_keys")]
    pub workloads: BTreeMap<String, WorkloadDocument>,
    /// Emergency grants written into the policy itself (most are opened
    /// in the overlay file instead, by `hallpass breakglass open`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub break_glass: Vec<crate::BreakGlassDocument>,
}

/// The `revoked` section.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RevokedDocument {
    /// SPIFFE IDs that are denied `revoked` wherever they call.
    #[serde(default)]
    pub ids: Vec<String>,
    /// Individual X.509-SVIDs, by issuing trust domain and serial number.
    #[serde(default)]
    pub serials: Vec<RevokedSerialDocument>,
}

/// One revoked certificate.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RevokedSerialDocument {
    /// The trust domain whose CA issued the certificate.
    pub trust_domain: String,
    /// The serial number in hex; `:` separators and leading zeros are allowed.
    pub serial: String,
}

/// One destination's entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadDocument {
    /// `enforce` (default) or `audit`.
    #[serde(default)]
    pub mode: Mode,
    /// The destination's data class: the class of every rule that declares
    /// none, and of a call no rule matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_class: Option<String>,
    /// Allow rules, evaluated in order; no match means deny.
    #[serde(default)]
    pub allow: Vec<RuleDocument>,
}

/// One allow rule.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDocument {
    /// Rule name: shows up in metrics, logs and the decision.
    pub name: String,
    /// Source patterns: exact IDs, or prefixes ending in `/*` or `/**`.
    pub from: Vec<String>,
    /// HTTP methods; absent means any.
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    /// Path templates.
    #[serde(default)]
    pub paths: Option<Vec<String>>,
    /// gRPC methods: `package.Service/Method` or `package.Service/*`.
    #[serde(default)]
    pub grpc: Option<Vec<String>>,
    /// Request headers that must be present with exactly these values.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// RFC 3339 time before which the rule does not apply.
    #[serde(default)]
    pub not_before: Option<String>,
    /// RFC 3339 time after which the rule does not apply.
    #[serde(default)]
    pub not_after: Option<String>,
    /// The caller must also present a valid JWT-SVID.
    #[serde(default)]
    pub require_jwt: bool,
    /// `deny`: the JWT-SVID must carry a `jti` not seen before within the
    /// token's lifetime (replay protection for non-idempotent routes).
    /// Implies `require_jwt`.
    #[serde(default, skip_serializing_if = "JwtReplay::is_allow")]
    pub jwt_replay: JwtReplay,
    /// The class of data the rule's routes serve; absent means the
    /// destination's `data_class`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_class: Option<String>,
}

/// A rule's `jwt_replay`: whether one JWT-SVID may be presented twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JwtReplay {
    /// A token may be presented any number of times within its lifetime
    /// (the default).
    #[default]
    Allow,
    /// A token's `jti` is single-use: a second presentation is denied
    /// `jwt_replayed`, and so is a token without a `jti`.
    Deny,
}

impl JwtReplay {
    /// The word used in the policy file.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }

    /// True for the default.
    pub const fn is_allow(&self) -> bool {
        matches!(self, Self::Allow)
    }
}

/// Deserialize a map whose keys must be unique. A plain `BTreeMap` keeps the
/// last of two equal keys, so a second entry for a destination (say one with
/// `mode: audit`) would silently replace the first.
fn unique_keys<'de, D, V>(deserializer: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct UniqueKeys<V>(PhantomData<V>);

    impl<'de, V: Deserialize<'de>> Visitor<'de> for UniqueKeys<V> {
        type Value = BTreeMap<String, V>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key::<String>()? {
                if out.contains_key(&key) {
                    return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
                }
                let value = map.next_value()?;
                out.insert(key, value);
            }
            Ok(out)
        }
    }

    deserializer.deserialize_map(UniqueKeys(PhantomData))
}

/// The shape of a policy file, for the located check that reports every
/// unknown key and wrong type at once. It mirrors the serde model above;
/// `tests/load.rs` keeps the two in step.
pub(crate) mod shape {
    use crate::Mode;
    use crate::locate::{Field, Shape};

    const fn field(name: &'static str, shape: &'static Shape, required: bool) -> Field {
        Field::new(name, shape, required)
    }

    static STR: Shape = Shape::Str;
    static STRS: Shape = Shape::List(&STR);
    static INT: Shape = Shape::Int;
    static BOOL: Shape = Shape::Bool;
    static MODE: Shape = Shape::OneOf(&[Mode::Enforce.as_str(), Mode::Audit.as_str()]);
    static HEADERS: Shape = Shape::Dict(&STR);
    static JWT_REPLAY: Shape = Shape::OneOf(&[
        crate::JwtReplay::Allow.as_str(),
        crate::JwtReplay::Deny.as_str(),
    ]);
    static SERIAL: Shape = Shape::Struct(&[
        field("trust_domain", &STR, true),
        field("serial", &STR, true),
    ]);
    static SERIALS: Shape = Shape::List(&SERIAL);
    static REVOKED: Shape = Shape::Struct(&[
        field("ids", &STRS, false),
        field("serials", &SERIALS, false),
    ]);
    static RULE: Shape = Shape::Struct(&[
        field("name", &STR, true),
        field("from", &STRS, true),
        field("methods", &STRS, false),
        field("paths", &STRS, false),
        field("grpc", &STRS, false),
        field("headers", &HEADERS, false),
        field("not_before", &STR, false),
        field("not_after", &STR, false),
        field("require_jwt", &BOOL, false),
        field("jwt_replay", &JWT_REPLAY, false),
        // A word checked by the compiler against `data_classes`, with a
        // "did you mean" (a fixed list here could not follow that key).
        field("data_class", &STR, false),
    ]);
    static RULES: Shape = Shape::List(&RULE);
    static WORKLOAD: Shape = Shape::Struct(&[
        field("mode", &MODE, false),
        field("data_class", &STR, false),
        field("allow", &RULES, false),
    ]);
    static WORKLOADS: Shape = Shape::Dict(&WORKLOAD);

    static GRANT: Shape = Shape::Struct(&[
        field("name", &STR, true),
        field("from", &STRS, true),
        field("to", &STR, true),
        field("methods", &STRS, false),
        field("paths", &STRS, false),
        field("reason", &STR, true),
        field("ticket", &STR, true),
        field("opened_by", &STR, true),
        field("opened", &STR, true),
        field("expires", &STR, true),
    ]);
    static GRANTS: Shape = Shape::List(&GRANT);

    /// The whole file.
    pub(crate) static POLICY: Shape = Shape::Struct(&[
        field("version", &INT, true),
        field("owner", &STRS, false),
        field("trust_domains", &STRS, false),
        field("data_classes", &STRS, false),
        field("revoked", &REVOKED, false),
        field("workloads", &WORKLOADS, false),
        field("break_glass", &GRANTS, false),
    ]);
}
