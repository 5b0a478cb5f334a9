//! Owns minting: building compact JWS tokens for tests, well-formed or deliberately broken.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::keys::SigningKey;
use crate::{Clock, SystemClock, UnixTime};

/// The `sub` of minted tokens unless overridden.
pub const DEFAULT_SUBJECT: &str = "svc-test";

/// The `aud` of minted tokens (and the issuer's default audience) unless overridden.
pub const DEFAULT_AUDIENCE: &str = "kafka";

/// The lifetime (`exp - iat`) of minted tokens unless overridden.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// Encodes and signs a compact JWS: `b64(header) "." b64(claims) "." b64(sig)`, base64url without
/// padding. The header is taken as given (its `alg`/`kid` are not checked against `key`).
pub fn encode_jws(
    header: &Map<String, Value>,
    claims: &Map<String, Value>,
    key: &SigningKey,
) -> String {
    let input = signing_input(header, claims);
    let signature = key.sign(input.as_bytes());
    join(input, &signature)
}

/// `b64(header) "." b64(claims)`.
fn signing_input(header: &Map<String, Value>, claims: &Map<String, Value>) -> String {
    let header = Value::Object(header.clone()).to_string();
    let claims = Value::Object(claims.clone()).to_string();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.as_bytes()),
        URL_SAFE_NO_PAD.encode(claims.as_bytes())
    )
}

fn join(mut input: String, signature: &[u8]) -> String {
    input.push('.');
    input.push_str(&URL_SAFE_NO_PAD.encode(signature));
    input
}

/// A random `jti`: 16 random bytes, base64url.
pub(crate) fn random_jti() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

/// Builds a token for a test. Defaults: header `{alg, typ: "JWT", kid}` from the key; claims
/// `iss`, `sub: "svc-test"`, `aud: "kafka"`, `iat` = clock now, `exp = iat + 3600`, random `jti`.
///
/// Header and claim edits apply after the defaults, in call order, so they always win.
#[must_use = "a TokenBuilder does nothing until signed"]
#[derive(Clone)]
pub struct TokenBuilder {
    key: Arc<SigningKey>,
    issuer: String,
    audience: String,
    issued_at: UnixTime,
    lifetime: Duration,
    jti: String,
    header_edits: Vec<(String, Option<Value>)>,
    claim_edits: Vec<(String, Option<Value>)>,
    /// Resolves `alg(..)` to the issuer's active key for that algorithm.
    active: Option<Arc<dyn Fn(super::SigningAlg) -> Arc<SigningKey> + Send + Sync>>,
}

impl fmt::Debug for TokenBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenBuilder")
            .field("kid", &self.key.kid())
            .field("issuer", &self.issuer)
            .field("issued_at", &self.issued_at)
            .field("lifetime", &self.lifetime)
            .field("header_edits", &self.header_edits)
            .field("claim_edits", &self.claim_edits)
            .finish_non_exhaustive()
    }
}

impl TokenBuilder {
    /// A builder signing with `key`, `iss` = `issuer`, `iat` = the system clock's now.
    /// Without an issuer, [`TokenBuilder::alg`] generates a fresh (unpublished) key.
    pub fn new(key: Arc<SigningKey>, issuer: impl Into<String>) -> TokenBuilder {
        TokenBuilder::with_clock(key, issuer, &SystemClock)
    }

    /// As [`TokenBuilder::new`], with `iat` taken from `clock`.
    pub fn with_clock(
        key: Arc<SigningKey>,
        issuer: impl Into<String>,
        clock: &dyn Clock,
    ) -> TokenBuilder {
        TokenBuilder {
            key,
            issuer: issuer.into(),
            audience: DEFAULT_AUDIENCE.to_owned(),
            issued_at: clock.now(),
            lifetime: DEFAULT_LIFETIME,
            jti: random_jti(),
            header_edits: Vec::new(),
            claim_edits: Vec::new(),
            active: None,
        }
    }

    /// Used by the issuer: `aud` = its audience, and `alg(..)` picks its active keys.
    pub(crate) fn for_issuer(
        mut self,
        audience: &str,
        active: Arc<dyn Fn(super::SigningAlg) -> Arc<SigningKey> + Send + Sync>,
    ) -> TokenBuilder {
        audience.clone_into(&mut self.audience);
        self.active = Some(active);
        self
    }

    /// Signs with the issuer's active key for `alg`; the `alg` and `kid` headers follow.
    pub fn alg(mut self, alg: super::SigningAlg) -> Self {
        self.key = match &self.active {
            Some(active) => active(alg),
            None => Arc::new(SigningKey::generate(
                alg,
                format!("{}-unpublished", alg.kid_prefix()),
            )),
        };
        self
    }

    /// Signs with `key`, which need not be published (a "forged" token when it is not).
    pub fn key(mut self, key: Arc<SigningKey>) -> Self {
        self.key = key;
        self
    }

    /// Sets or overrides a header field (`"alg": "none"`, `"crit"`, `"jku"`, `"kid": 5`, ...).
    pub fn header(mut self, name: &str, value: Value) -> Self {
        self.header_edits.push((name.to_owned(), Some(value)));
        self
    }

    /// Removes a header field (e.g. `kid`).
    pub fn without_header(mut self, name: &str) -> Self {
        self.header_edits.push((name.to_owned(), None));
        self
    }

    /// Sets or overrides a claim.
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.claim_edits.push((name.to_owned(), Some(value)));
        self
    }

    /// Removes a claim (e.g. `exp`).
    pub fn without_claim(mut self, name: &str) -> Self {
        self.claim_edits.push((name.to_owned(), None));
        self
    }

    /// Sets `iat`; `exp` is `iat + lifetime` unless set with [`TokenBuilder::claim`].
    pub fn issued_at(mut self, t: UnixTime) -> Self {
        self.issued_at = t;
        self
    }

    /// Sets the lifetime: `exp = iat + d` unless `exp` is set with [`TokenBuilder::claim`].
    pub fn lifetime(mut self, d: Duration) -> Self {
        self.lifetime = d;
        self
    }

    /// The key the token will be signed with.
    pub fn signing_key(&self) -> &Arc<SigningKey> {
        &self.key
    }

    /// The header as it will be encoded.
    pub fn header_json(&self) -> Map<String, Value> {
        let mut header = Map::new();
        header.insert("alg".to_owned(), json!(self.key.alg().as_str()));
        header.insert("typ".to_owned(), json!("JWT"));
        header.insert("kid".to_owned(), json!(self.key.kid()));
        apply(&mut header, &self.header_edits);
        header
    }

    /// The claims as they will be encoded.
    pub fn claims_json(&self) -> Map<String, Value> {
        let mut claims = Map::new();
        claims.insert("iss".to_owned(), json!(self.issuer));
        claims.insert("sub".to_owned(), json!(DEFAULT_SUBJECT));
        claims.insert("aud".to_owned(), json!(self.audience));
        claims.insert("iat".to_owned(), json!(self.issued_at.as_secs()));
        claims.insert(
            "exp".to_owned(),
            json!((self.issued_at + self.lifetime).as_secs()),
        );
        claims.insert("jti".to_owned(), json!(self.jti));
        apply(&mut claims, &self.claim_edits);
        claims
    }

    /// The compact JWS, signed with the key.
    pub fn sign(self) -> String {
        encode_jws(&self.header_json(), &self.claims_json(), &self.key)
    }

    /// The compact JWS with `sig` as its signature bytes (e.g. empty, or a DER ECDSA signature).
    pub fn sign_with_signature(self, sig: &[u8]) -> String {
        join(signing_input(&self.header_json(), &self.claims_json()), sig)
    }

    /// The `b64(header) "." b64(claims)` this builder signs (its `jti` is fixed at creation), for
    /// tests that compute their own signature and pass it to [`TokenBuilder::sign_with_signature`].
    pub fn signing_input(&self) -> String {
        signing_input(&self.header_json(), &self.claims_json())
    }
}

fn apply(map: &mut Map<String, Value>, edits: &[(String, Option<Value>)]) {
    for (name, value) in edits {
        match value {
            Some(value) => {
                map.insert(name.clone(), value.clone());
            }
            None => {
                map.remove(name);
            }
        }
    }
}
