//! Table-driven validation vectors: `testdata/vectors/*.json` (format: `testdata/README.md`).
//!
//! Each vector describes a token as a recipe (keys are generated per run, so tokens cannot be
//! literal) and the outcome it must get. Every vector runs against its own [`TestIssuer`] and is
//! checked twice: by the pure [`poolgate::verify`] with a key set parsed from the issuer's JWKS,
//! and by a [`Validator`] whose key store fetches that JWKS over HTTP. Both must give the
//! expected outcome. Time is fixed ([`NOW`]); nothing depends on the wall clock.
#![cfg(feature = "testkit")]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use num_bigint::BigUint;
use poolgate::testkit::{Counts, IssuerConfig, SigningAlg, SigningKey, TestIssuer, TokenBuilder};
use poolgate::{
    Algorithm, ErrorCode, FetchOptions, KeySet, KeySource, KeyStore, KeyStoreConfig, ManualClock,
    Policy, Provider, UnixTime, UnverifiedToken, ValidationError, Validator, VerifiedToken,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

/// The fixed "now" of every vector (2023-11-14T22:13:20Z).
const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

/// The outcome string of a token that validates.
const OK: &str = "ok";

// ---------------------------------------------------------------------------------------------
// The vector format.
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VectorFile {
    /// What the vectors of this file are about.
    #[allow(dead_code, reason = "documentation for readers of the file")]
    about: String,
    vectors: Vec<Vector>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Vector {
    name: String,
    why: String,
    #[serde(default)]
    policy: PolicySpec,
    #[serde(default)]
    issuer: IssuerSpec,
    /// A second provider's issuer; it gets a fixed key store holding the same keys.
    #[serde(default)]
    second_provider: Option<String>,
    token: TokenSpec,
    /// `"ok"` or an error code.
    expect: String,
    /// When the pure `verify` must differ from the `Validator` (multi-provider routing only).
    #[serde(default)]
    expect_verify: Option<String>,
    /// Unknown-`kid` refetches the Validator's key store must make (default 0).
    #[serde(default)]
    refetches: u64,
    /// A known library issue: the outcome is currently `actual`, not `expect`.
    #[serde(default)]
    known_issue: Option<KnownIssue>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KnownIssue {
    actual: String,
    #[allow(dead_code, reason = "documentation for readers of the file")]
    note: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicySpec {
    /// Default `["kafka"]`.
    audiences: Option<Vec<String>>,
    #[serde(default)]
    any_audience: bool,
    algorithms: Option<Vec<String>>,
    token_types: Option<Vec<String>>,
    max_token_size: Option<usize>,
    /// Seconds.
    max_lifetime: Option<u64>,
    #[serde(default)]
    require_claims: Vec<String>,
    /// Seconds.
    clock_skew: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerSpec {
    /// Algorithms with an active published key at start (default RS256, ES256, EdDSA).
    signing: Option<Vec<String>>,
    /// Rotate these after start: a new active key, the old one stays published.
    #[serde(default)]
    rotate: Vec<String>,
    /// Named keys (see `Keys::named`) to publish as well.
    #[serde(default)]
    publish: Vec<String>,
    /// Edits to the published JWK of the active key of an algorithm (`null` removes a member).
    #[serde(default)]
    jwk_edits: BTreeMap<String, Map<String, Value>>,
    /// Literal JWKs appended to the JWKS.
    #[serde(default)]
    extra_jwks: Vec<Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenSpec {
    /// A literal token; every other field is then ignored.
    raw: Option<Value>,
    /// The signing key (default `"RS256"`, the issuer's active RS256 key).
    key: Option<String>,
    /// Header members set over the defaults `{alg, typ: "JWT", kid}` from the key.
    #[serde(default)]
    header: Map<String, Value>,
    #[serde(default)]
    without_header: Vec<String>,
    /// Claims set over the defaults `iss`, `sub`, `aud`, `iat`, `exp`, `jti`.
    #[serde(default)]
    claims: Map<String, Value>,
    #[serde(default)]
    without_claims: Vec<String>,
    /// `iat` = now + this many seconds (default 0).
    #[serde(default)]
    iat_offset: i64,
    /// `exp` = `iat` + this many seconds (default 3600).
    lifetime: Option<u64>,
    /// Literal text for the header section instead of the JSON header (still signed).
    header_text: Option<String>,
    /// Literal text for the payload section instead of the JSON claims (still signed).
    payload_text: Option<String>,
    /// How the signature is made or damaged.
    signature: Option<String>,
    /// Header members changed after signing.
    #[serde(default)]
    tamper_header: Map<String, Value>,
    /// Claims changed after signing.
    #[serde(default)]
    tamper_claims: Map<String, Value>,
    /// Character-level edits of the finished token, in order.
    #[serde(default)]
    edit: Vec<Edit>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Edit {
    /// `header`, `payload`, `signature` or `token` (the whole string).
    section: String,
    append: Option<String>,
    /// Character index for `put`; negative counts from the end.
    at: Option<i64>,
    put: Option<String>,
    #[serde(default)]
    drop: bool,
}

fn vector_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/vectors")
}

fn load_vectors() -> Vec<Vector> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(vector_dir())
        .expect("testdata/vectors exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no vector files in testdata/vectors");
    let mut vectors = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("readable vector file");
        let file: VectorFile = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not a vector file: {e}", path.display()));
        vectors.extend(file.vectors);
    }
    vectors
}

fn is_outcome(s: &str) -> bool {
    s == OK || s.parse::<ErrorCode>().is_ok()
}

// ---------------------------------------------------------------------------------------------
// Keys, policy and placeholders.
// ---------------------------------------------------------------------------------------------

fn signing_alg(name: &str) -> SigningAlg {
    SigningAlg::ALL
        .into_iter()
        .find(|a| a.as_str() == name)
        .unwrap_or_else(|| panic!("`{name}` is not a testkit signing algorithm"))
}

/// Makes the key a vector names: `RS256`, `ES256`, `EdDSA` (kid `<alg>-main`, published unless
/// `issuer.signing` leaves them out), `unpublished:<alg>` (kid `<alg>-unpublished`), an
/// unpublished RS256 `attacker` (kid `attacker`) and the 1024-bit `weak_rsa_1024`
/// (kid `weak-rsa-1024`).
fn make_key(name: &str) -> SigningKey {
    let kid = |alg: SigningAlg, tag: &str| format!("{}-{tag}", alg.as_str().to_ascii_lowercase());
    match name {
        "attacker" => SigningKey::generate(SigningAlg::RS256, "attacker"),
        "weak_rsa_1024" => SigningKey::weak_rsa_1024("weak-rsa-1024"),
        other => match other.strip_prefix("unpublished:") {
            Some(alg) => {
                let alg = signing_alg(alg);
                SigningKey::generate(alg, kid(alg, "unpublished"))
            }
            None => {
                let alg = signing_alg(other);
                SigningKey::generate(alg, kid(alg, "main"))
            }
        },
    }
}

/// Keys are shared by every vector (each made once per run): RSA key generation is the slow
/// part of a run. Nothing in a vector depends on a key being fresh.
fn shared_key(name: &str) -> Arc<SigningKey> {
    static KEYS: LazyLock<Mutex<HashMap<String, Arc<SigningKey>>>> = LazyLock::new(Mutex::default);
    let mut keys = KEYS.lock().unwrap_or_else(PoisonError::into_inner);
    Arc::clone(
        keys.entry(name.to_owned())
            .or_insert_with(|| Arc::new(make_key(name))),
    )
}

/// The keys of one vector: the shared ones, except that a rotation gives `<alg>` a fresh key
/// (kid `<alg>-rotated`) and keeps the replaced one as `previous:<alg>`.
#[derive(Default)]
struct Keys {
    local: HashMap<String, Arc<SigningKey>>,
}

impl Keys {
    fn named(&self, name: &str) -> Arc<SigningKey> {
        match self.local.get(name) {
            Some(key) => Arc::clone(key),
            None => shared_key(name),
        }
    }

    fn rotate(&mut self, alg: &str) -> Arc<SigningKey> {
        let alg = signing_alg(alg);
        let previous = self.named(alg.as_str());
        let kid = format!("{}-rotated", alg.as_str().to_ascii_lowercase());
        let fresh = Arc::new(SigningKey::generate(alg, kid));
        self.local
            .insert(format!("previous:{}", alg.as_str()), previous);
        self.local
            .insert(alg.as_str().to_owned(), Arc::clone(&fresh));
        fresh
    }
}

/// Resolves placeholders: in strings `{iss}`, `{evil}` and `{kid:<alg>}`; objects
/// `{"$now": n}` (now + n, n may be fractional), `{"$jwk": key}` (a key's public JWK, `signer`
/// for the token's key) and `{"$repeat": [text, n]}`.
struct Resolver<'a> {
    issuer: &'a TestIssuer,
    evil: Option<&'a TestIssuer>,
    keys: &'a Keys,
    signer: Option<Arc<SigningKey>>,
}

impl Resolver<'_> {
    fn value(&mut self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(items) => Value::Array(items.iter().map(|i| self.value(i)).collect()),
            Value::Object(map) if map.len() == 1 && map.contains_key("$now") => {
                let offset = &map["$now"];
                match offset.as_i64() {
                    Some(n) => json!(NOW.as_secs() as i64 + n),
                    None => json!(NOW.as_secs() as f64 + offset.as_f64().expect("$now number")),
                }
            }
            Value::Object(map) if map.len() == 1 && map.contains_key("$jwk") => {
                match map["$jwk"].as_str().expect("$jwk names a key") {
                    "signer" => self.signer.as_ref().expect("a signing key").public_jwk(),
                    name => self.keys.named(name).public_jwk(),
                }
            }
            Value::Object(map) if map.len() == 1 && map.contains_key("$repeat") => {
                let args = map["$repeat"].as_array().expect("$repeat: [text, count]");
                let text = args[0].as_str().expect("$repeat text");
                let count = args[1].as_u64().expect("$repeat count");
                Value::String(text.repeat(usize::try_from(count).expect("count")))
            }
            Value::Object(map) => Value::Object(self.map(map)),
            other => other.clone(),
        }
    }

    fn map(&mut self, map: &Map<String, Value>) -> Map<String, Value> {
        map.iter()
            .map(|(k, v)| (k.clone(), self.value(v)))
            .collect()
    }

    fn text(&mut self, s: &str) -> String {
        let mut out = s.replace("{iss}", self.issuer.issuer());
        if let Some(evil) = self.evil {
            out = out.replace("{evil}", evil.issuer());
        }
        for alg in SigningAlg::ALL {
            let tag = format!("{{kid:{}}}", alg.as_str());
            if out.contains(&tag) {
                out = out.replace(&tag, self.keys.named(alg.as_str()).kid());
            }
        }
        assert!(!out.contains("{evil}"), "`{{evil}}` needs an evil server");
        out
    }
}

fn build_policy(spec: &PolicySpec, issuer: &str) -> Policy {
    let mut b = Policy::builder(issuer);
    if spec.any_audience {
        b = b.dangerous_allow_any_audience();
    } else {
        b = b.audiences(
            spec.audiences
                .clone()
                .unwrap_or_else(|| vec!["kafka".into()]),
        );
    }
    if let Some(algs) = &spec.algorithms {
        b = b.algorithms(
            algs.iter()
                .map(|a| a.parse::<Algorithm>().expect("algorithm")),
        );
    }
    if let Some(types) = &spec.token_types {
        b = b.token_types(types);
    }
    if let Some(size) = spec.max_token_size {
        b = b.max_token_size(size);
    }
    if let Some(secs) = spec.max_lifetime {
        b = b.max_lifetime(Duration::from_secs(secs));
    }
    if let Some(secs) = spec.clock_skew {
        b = b.clock_skew(Duration::from_secs(secs));
    }
    b.require_claims(&spec.require_claims)
        .build()
        .expect("vector policy builds")
}

// ---------------------------------------------------------------------------------------------
// Signatures.
// ---------------------------------------------------------------------------------------------

fn b64d(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).expect("base64url")
}

fn jwk_member(jwk: &Value, name: &str) -> Vec<u8> {
    b64d(jwk[name].as_str().expect("RSA JWK member"))
}

/// The PEM `SubjectPublicKeyInfo` of an RSA JWK: what a confused verifier loads as an HMAC
/// secret.
fn rsa_public_pem(jwk: &Value) -> String {
    let components = aws_lc_rs::rsa::PublicKeyComponents {
        n: jwk_member(jwk, "n"),
        e: jwk_member(jwk, "e"),
    };
    let der = components.as_der().expect("RSA public key DER");
    let body = STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}

/// HMAC over the signing input with the digest the header's `alg` names (HS256 by default).
fn hmac_sig(header_alg: Option<&str>, secret: &[u8], input: &str) -> Vec<u8> {
    let alg = match header_alg {
        Some("HS384") => hmac::HMAC_SHA384,
        Some("HS512") => hmac::HMAC_SHA512,
        _ => hmac::HMAC_SHA256,
    };
    hmac::sign(&hmac::Key::new(alg, secret), input.as_bytes())
        .as_ref()
        .to_vec()
}

/// One DER INTEGER from big-endian unsigned bytes.
fn der_uint(bytes: &[u8]) -> Vec<u8> {
    let start = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len() - 1);
    let mut content = bytes[start..].to_vec();
    if content[0] & 0x80 != 0 {
        content.insert(0, 0);
    }
    let mut out = vec![0x02, u8::try_from(content.len()).expect("short")];
    out.extend(content);
    out
}

/// A raw P-256 `r || s` signature as ASN.1 DER `SEQUENCE { r INTEGER, s INTEGER }`.
fn ecdsa_raw_to_der(raw: &[u8]) -> Vec<u8> {
    assert_eq!(raw.len(), 64, "a raw P-256 signature");
    let mut body = der_uint(&raw[..32]);
    body.extend(der_uint(&raw[32..]));
    let mut out = vec![0x30, u8::try_from(body.len()).expect("short")];
    out.extend(body);
    out
}

/// The order of the P-256 group.
const P256_N: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

/// `(r, n - s)`: the other valid ECDSA signature of the same message.
fn ecdsa_high_s(raw: &[u8]) -> Vec<u8> {
    let n = BigUint::parse_bytes(P256_N.as_bytes(), 16).expect("P-256 order");
    let s = BigUint::from_bytes_be(&raw[32..]);
    let high = (n - s).to_bytes_be();
    let mut out = raw[..32].to_vec();
    out.extend(std::iter::repeat_n(0, 32 - high.len()));
    out.extend(high);
    out
}

/// The order L of the Ed25519 group.
const ED25519_L: &str = "1000000000000000000000000000000014def9dea2f79cd65812631a5cf5d3ed";

/// `R || (S + L)`: the unreduced twin of an Ed25519 signature (little-endian S).
fn eddsa_s_plus_l(sig: &[u8]) -> Vec<u8> {
    let l = BigUint::parse_bytes(ED25519_L.as_bytes(), 16).expect("Ed25519 order");
    let s = BigUint::from_bytes_le(&sig[32..]) + l;
    let mut s = s.to_bytes_le();
    assert!(s.len() <= 32, "S + L fits in 32 bytes");
    s.resize(32, 0);
    let mut out = sig[..32].to_vec();
    out.extend(s);
    out
}

/// The signature bytes for `input`, made or damaged as `how` says.
fn signature(
    how: Option<&str>,
    key: &SigningKey,
    header_alg: Option<&str>,
    input: &str,
) -> Vec<u8> {
    let good = || key.sign(input.as_bytes());
    match how.unwrap_or("valid") {
        "valid" => good(),
        "empty" => Vec::new(),
        "literal_sig" => b"sig".to_vec(),
        "flip_last_byte" => {
            let mut s = good();
            *s.last_mut().expect("non-empty") ^= 0x01;
            s
        }
        "flip_first_byte" => {
            let mut s = good();
            s[0] ^= 0x80;
            s
        }
        "truncate" => {
            let mut s = good();
            s.pop();
            s
        }
        "extend" => {
            let mut s = good();
            s.push(0);
            s
        }
        "zeros" => vec![0; good().len()],
        "der_ecdsa" => ecdsa_raw_to_der(&good()),
        "ecdsa_high_s" => ecdsa_high_s(&good()),
        "eddsa_s_plus_l" => eddsa_s_plus_l(&good()),
        "hmac_jwk_n" => hmac_sig(header_alg, &jwk_member(&key.public_jwk(), "n"), input),
        "hmac_pem" => hmac_sig(
            header_alg,
            rsa_public_pem(&key.public_jwk()).as_bytes(),
            input,
        ),
        "hmac_jwk_json" => hmac_sig(header_alg, key.public_jwk().to_string().as_bytes(), input),
        other => panic!("unknown signature transform `{other}`"),
    }
}

fn edit_token(token: &str, edit: &Edit) -> String {
    let mut sections: Vec<String> = token.split('.').map(str::to_owned).collect();
    let index = match edit.section.as_str() {
        "token" => None,
        "header" => Some(0),
        "payload" => Some(1),
        "signature" => Some(2),
        other => panic!("unknown section `{other}`"),
    };
    let mut whole = token.to_owned();
    let target = match index {
        Some(i) => &mut sections[i],
        None => &mut whole,
    };
    if let Some(text) = &edit.append {
        target.push_str(text);
    }
    if let Some(put) = &edit.put {
        let at = edit.at.expect("`put` needs `at`");
        let len = i64::try_from(target.len()).expect("length");
        let at = usize::try_from(if at < 0 { len + at } else { at }).expect("index in range");
        target.replace_range(at..=at, put);
    }
    match index {
        None => whole,
        Some(i) => {
            if edit.drop {
                sections.remove(i);
            }
            sections.join(".")
        }
    }
}

fn b64(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text.as_bytes())
}

/// The token a vector describes.
fn mint(spec: &TokenSpec, r: &mut Resolver<'_>) -> String {
    if let Some(raw) = &spec.raw {
        return r.value(raw).as_str().expect("`raw` is a string").to_owned();
    }
    let key = r.keys.named(spec.key.as_deref().unwrap_or("RS256"));
    r.signer = Some(Arc::clone(&key));

    let iat = if spec.iat_offset >= 0 {
        NOW + Duration::from_secs(spec.iat_offset.unsigned_abs())
    } else {
        NOW - Duration::from_secs(spec.iat_offset.unsigned_abs())
    };
    let mut b: TokenBuilder = r.issuer.mint().key(Arc::clone(&key)).issued_at(iat);
    if let Some(secs) = spec.lifetime {
        b = b.lifetime(Duration::from_secs(secs));
    }
    for (name, value) in r.map(&spec.header) {
        b = b.header(&name, value);
    }
    for name in &spec.without_header {
        b = b.without_header(name);
    }
    for (name, value) in r.map(&spec.claims) {
        b = b.claim(&name, value);
    }
    for name in &spec.without_claims {
        b = b.without_claim(name);
    }
    let header_alg = b
        .header_json()
        .get("alg")
        .and_then(Value::as_str)
        .map(str::to_owned);

    let mut token = if spec.header_text.is_some() || spec.payload_text.is_some() {
        let default_input = b.signing_input();
        let (h64, p64) = default_input.split_once('.').expect("two sections");
        let h64 = spec
            .header_text
            .as_ref()
            .map_or(h64.to_owned(), |t| b64(&r.text(t)));
        let p64 = spec
            .payload_text
            .as_ref()
            .map_or(p64.to_owned(), |t| b64(&r.text(t)));
        let input = format!("{h64}.{p64}");
        let sig = signature(
            spec.signature.as_deref(),
            &key,
            header_alg.as_deref(),
            &input,
        );
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    } else if spec.signature.is_none()
        && spec.tamper_header.is_empty()
        && spec.tamper_claims.is_empty()
    {
        b.sign()
    } else {
        let sig = signature(
            spec.signature.as_deref(),
            &key,
            header_alg.as_deref(),
            &b.signing_input(),
        );
        for (name, value) in r.map(&spec.tamper_header) {
            b = b.header(&name, value);
        }
        for (name, value) in r.map(&spec.tamper_claims) {
            b = b.claim(&name, value);
        }
        b.sign_with_signature(&sig)
    };
    for edit in &spec.edit {
        token = edit_token(&token, edit);
    }
    token
}

// ---------------------------------------------------------------------------------------------
// Running a vector.
// ---------------------------------------------------------------------------------------------

fn outcome(result: &Result<VerifiedToken, ValidationError>) -> String {
    match result {
        Ok(_) => OK.to_owned(),
        Err(e) => e.code().as_str().to_owned(),
    }
}

fn describe(result: &Result<VerifiedToken, ValidationError>) -> String {
    match result {
        Ok(t) => format!("ok (iss {}, sub {:?})", t.issuer(), t.claim("sub")),
        Err(e) => format!("{} ({e})", e.code()),
    }
}

/// An accepted token must expose its claims: `claims()` has the verified `iss`.
fn incoherent(result: &Result<VerifiedToken, ValidationError>) -> Option<String> {
    let t = result.as_ref().ok()?;
    if t.claim("iss").and_then(Value::as_str) == Some(t.issuer()) {
        None
    } else {
        Some(format!(
            "accepted, but claims() lacks the verified iss ({} claims readable)",
            t.claims().len()
        ))
    }
}

/// What one vector produced.
struct Observed {
    verify: String,
    validator: String,
    detail: String,
    /// Why an accepted token is not usable, if it is not.
    incoherent: Option<String>,
}

/// Runs one vector; `Err` for a broken expectation that is not about the outcome code
/// (fetch counts, an evil URL fetched).
async fn run(v: &Vector) -> Result<Observed, String> {
    let clock = Arc::new(ManualClock::new(NOW));
    // The issuer serves discovery and the JWKS the vector describes, and mints; its own
    // generated key is never published or used.
    let server = || async {
        TestIssuer::start_with(IssuerConfig {
            signing: vec![SigningAlg::EdDSA],
            clock: clock.clone(),
            ..IssuerConfig::default()
        })
        .await
        .expect("test issuer starts")
    };
    let issuer = server().await;
    let needs_evil = serde_json::to_string(&v.token.header)
        .expect("json")
        .contains("{evil}");
    let evil = if needs_evil {
        Some(server().await)
    } else {
        None
    };

    // The published keys, in order: `signing`, rotated keys, `publish`, then edits and extras.
    let mut keys = Keys::default();
    let mut published: Vec<Arc<SigningKey>> = match &v.issuer.signing {
        Some(algs) => algs.iter().map(|a| keys.named(a)).collect(),
        None => SigningAlg::ALL
            .iter()
            .map(|a| keys.named(a.as_str()))
            .collect(),
    };
    for alg in &v.issuer.rotate {
        published.push(keys.rotate(alg));
    }
    for name in &v.issuer.publish {
        published.push(keys.named(name));
    }
    let mut jwks: Vec<Value> = published.iter().map(|k| k.public_jwk()).collect();
    for (alg, edits) in &v.issuer.jwk_edits {
        let kid = keys.named(alg).kid().to_owned();
        let jwk = jwks
            .iter_mut()
            .find(|k| k["kid"] == kid.as_str())
            .and_then(Value::as_object_mut)
            .expect("an edited key is published");
        for (name, value) in edits {
            if value.is_null() {
                jwk.remove(name);
            } else {
                jwk.insert(name.clone(), value.clone());
            }
        }
    }
    jwks.extend(v.issuer.extra_jwks.iter().cloned());
    issuer.set_jwks_override(Some(json!({ "keys": jwks })));

    let token = {
        let mut r = Resolver {
            issuer: &issuer,
            evil: evil.as_ref(),
            keys: &keys,
            signer: None,
        };
        mint(&v.token, &mut r)
    };

    let main_policy = build_policy(&v.policy, issuer.issuer());
    let second_policy = v
        .second_provider
        .as_ref()
        .map(|iss| build_policy(&v.policy, iss));
    let key_set =
        KeySet::from_jwks(issuer.jwks().to_string().as_bytes()).expect("the JWKS has usable keys");

    // The pure core, with the policy a validator would route to.
    let routed = UnverifiedToken::parse(&token, usize::MAX)
        .ok()
        .and_then(|t| t.unverified_issuer().map(str::to_owned));
    let pure_policy = match (&second_policy, routed) {
        (Some(p), Some(iss)) if p.issuer() == iss => p,
        _ => &main_policy,
    };
    let pure = poolgate::verify(&token, &key_set, pure_policy, NOW);

    // The async shell, fetching the JWKS over HTTP like a broker would.
    let config = KeyStoreConfig {
        fetch: FetchOptions {
            insecure_allow_http: true,
            ..FetchOptions::default()
        },
        // Generous: the refetch answers in milliseconds, but a loaded CI machine must not turn
        // a slow refetch into a different outcome.
        refetch_wait: Duration::from_secs(30),
        ..KeyStoreConfig::default()
    };
    let store = KeyStore::start(
        issuer.issuer(),
        KeySource::Discovery(issuer.discovery_url()),
        config,
        clock.clone(),
    )
    .await
    .map_err(|e| format!("key store did not start: {e}"))?;
    let mut providers = vec![Provider::new(main_policy.clone(), store.clone()).expect("provider")];
    if let (Some(iss), Some(policy)) = (&v.second_provider, second_policy) {
        let fixed = KeyStore::fixed(iss.clone(), key_set.clone(), clock.clone());
        providers.push(Provider::new(policy, fixed).expect("second provider"));
    }
    let validator = Validator::with_clock(providers, clock.clone()).expect("validator");
    let shell = validator.validate_at(&token, NOW).await;

    let refetches = store.stats().unknown_kid_refetches;
    if refetches != v.refetches {
        return Err(format!(
            "{refetches} unknown-kid refetches, expected {}",
            v.refetches
        ));
    }
    let counts = issuer.counts();
    if counts.discovery != 1 || counts.jwks != 1 + v.refetches {
        return Err(format!(
            "issuer saw {counts:?}, expected 1 discovery and {} JWKS requests",
            1 + v.refetches
        ));
    }
    if let Some(evil) = &evil
        && evil.counts() != Counts::default()
    {
        return Err(format!(
            "a URL named by the token was fetched: {:?}",
            evil.counts()
        ));
    }
    Ok(Observed {
        incoherent: incoherent(&pure).or_else(|| incoherent(&shell)),
        verify: outcome(&pure),
        validator: outcome(&shell),
        detail: format!(
            "verify: {}; validator: {}",
            describe(&pure),
            describe(&shell)
        ),
    })
}

// ---------------------------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------------------------

/// The signature helpers do what they claim, so a `bad_signature` is about the encoding a
/// vector tests, not a broken transform.
#[test]
fn signature_helpers_are_faithful() {
    use aws_lc_rs::signature::{self as sig, UnparsedPublicKey};
    let msg = b"header.payload";

    let ec = shared_key("ES256");
    let jwk = ec.public_jwk();
    let mut point = vec![0x04];
    point.extend(jwk_member(&jwk, "x"));
    point.extend(jwk_member(&jwk, "y"));
    let raw = ec.sign(msg);
    let der = ecdsa_raw_to_der(&raw);
    UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_ASN1, &point)
        .verify(msg, &der)
        .expect("the DER conversion is a valid ASN.1 ECDSA signature");
    UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, &point)
        .verify(msg, &ecdsa_high_s(&raw))
        .expect("(r, n - s) verifies");

    let ed = shared_key("EdDSA");
    let unreduced = eddsa_s_plus_l(&ed.sign(msg));
    let l = BigUint::parse_bytes(ED25519_L.as_bytes(), 16).expect("L");
    let s = BigUint::from_bytes_le(&unreduced[32..]);
    assert!(s >= l, "S + L is not reduced");
    assert_eq!(
        (s - &l).to_bytes_le(),
        BigUint::from_bytes_le(&ed.sign(msg)[32..]).to_bytes_le(),
        "Ed25519 signatures are deterministic: S + L - L is the original S"
    );

    let rsa = shared_key("RS256");
    let pem = rsa_public_pem(&rsa.public_jwk());
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(body).expect("PEM body is base64");
    aws_lc_rs::rsa::PublicKey::from_der(&der).expect("the PEM holds the RSA public key");
}

#[test]
fn vector_files_are_well_formed() {
    let vectors = load_vectors();
    let mut names = BTreeSet::new();
    for v in &vectors {
        assert!(
            names.insert(v.name.as_str()),
            "duplicate vector name `{}`",
            v.name
        );
        assert!(
            !v.name.is_empty()
                && v.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "vector name `{}` is not kebab-case",
            v.name
        );
        assert!(!v.why.trim().is_empty(), "vector `{}` has no `why`", v.name);
        assert!(is_outcome(&v.expect), "vector `{}`: bad expect", v.name);
        if let Some(e) = &v.expect_verify {
            assert!(is_outcome(e), "vector `{}`: bad expect_verify", v.name);
            assert!(
                v.second_provider.is_some(),
                "vector `{}`: expect_verify is only for multi-provider routing",
                v.name
            );
        }
        if let Some(k) = &v.known_issue {
            assert!(
                is_outcome(&k.actual),
                "vector `{}`: bad known_issue",
                v.name
            );
            assert_ne!(k.actual, v.expect, "vector `{}`: known_issue", v.name);
        }
    }
}

/// Coverage cannot silently shrink: every code but `jwks_unavailable` (a key store state, not a
/// property of a token) is the expected outcome of a vector that holds today.
#[test]
fn every_error_code_is_covered() {
    let vectors = load_vectors();
    let covered: BTreeSet<&str> = vectors
        .iter()
        .filter(|v| v.known_issue.is_none())
        .flat_map(|v| std::iter::once(v.expect.as_str()).chain(v.expect_verify.as_deref()))
        .collect();
    let missing: Vec<&str> = ErrorCode::ALL
        .into_iter()
        .filter(|c| *c != ErrorCode::JwksUnavailable)
        .map(ErrorCode::as_str)
        .filter(|c| !covered.contains(c))
        .collect();
    assert!(missing.is_empty(), "no vector expects {missing:?}");
    assert!(covered.contains(OK), "no vector expects ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vectors_hold() {
    let vectors = load_vectors();
    let total = vectors.len();
    // Each vector starts its own issuer (RSA key generation); bound the parallelism.
    let permits = Arc::new(Semaphore::new(8));
    let mut tasks = Vec::new();
    for v in vectors {
        let permits = Arc::clone(&permits);
        let name = v.name.clone();
        let handle = tokio::spawn(async move {
            let _permit = permits.acquire().await.expect("semaphore open");
            let result = run(&v).await;
            (v, result)
        });
        tasks.push((name, handle));
    }

    let mut failures = Vec::new();
    let mut known = Vec::new();
    for (name, handle) in tasks {
        let (v, result) = match handle.await {
            Ok(done) => done,
            Err(e) => {
                failures.push(format!("vector `{name}` panicked: {e}"));
                continue;
            }
        };
        let observed = match result {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("vector `{name}` ({}): {e}", v.why));
                continue;
            }
        };
        let want_validator = v.expect.as_str();
        let want_verify = v.expect_verify.as_deref().unwrap_or(want_validator);
        let meets = observed.validator == want_validator && observed.verify == want_verify;
        match &v.known_issue {
            None if meets && observed.incoherent.is_some() => failures.push(format!(
                "vector `{name}` ({}): {}",
                v.why,
                observed.incoherent.unwrap_or_default()
            )),
            None if meets => {}
            None => failures.push(format!(
                "vector `{name}` ({}): expected verify `{want_verify}` and validator \
                 `{want_validator}`, got {}",
                v.why, observed.detail
            )),
            Some(_) if meets => failures.push(format!(
                "vector `{name}` now gets its expected outcome `{want_validator}`: \
                 remove its `known_issue`"
            )),
            Some(k) if observed.validator == k.actual && observed.verify == k.actual => {
                known.push(format!("{name}: {}", observed.detail));
            }
            Some(k) => failures.push(format!(
                "vector `{name}` ({}): known issue expected `{}`, got {}",
                v.why, k.actual, observed.detail
            )),
        }
    }
    eprintln!("{total} vectors; {} known issues", known.len());
    for k in &known {
        eprintln!("  known issue: {k}");
    }
    assert!(
        failures.is_empty(),
        "{} of {total} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
