//! Owns the key set: parsing a JWKS into verification keys, and selecting the key for a token.
//!
//! Pure: no I/O. Each public key is parsed once, per algorithm it may serve, when the set is
//! built; verification then reuses it. Unusable JWKs are skipped with a reason, never fatal
//! unless none is left.

use std::fmt;

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, DecodingKeyKind};
use serde_json::Value;

use crate::algorithm::{Algorithm, Family};

/// JWKs beyond this many in one document are skipped (a hostile JWKS cannot make us parse
/// thousands of keys).
pub const MAX_JWKS_KEYS: usize = 100;
/// A `kid` longer than this is never a real key id; such keys are skipped and such tokens never
/// trigger a fetch.
pub const MAX_KID_LEN: usize = 256;
/// RSA keys below this many bits are refused.
pub const MIN_RSA_BITS: usize = 2048;
/// RSA keys above this many bits are refused (the crypto backend's limit).
pub const MAX_RSA_BITS: usize = 8192;
/// RSA public exponents longer than this many bits are refused: the crypto backend (AWS-LC)
/// never verifies with them (its denial-of-service limit), so such a key can never verify.
pub const MAX_RSA_EXPONENT_BITS: usize = 33;

/// A set of verification keys, built from one JWKS document.
///
/// ```
/// use poolgate::KeySet;
/// let jwks = br#"{"keys":[
///   {"kty":"OKP","crv":"Ed25519","kid":"ed1","use":"sig","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
///   {"kty":"oct","kid":"h1","k":"c2VjcmV0"}
/// ]}"#;
/// let set = KeySet::from_jwks(jwks).unwrap();
/// assert_eq!(set.len(), 1);
/// assert_eq!(set.skipped().len(), 1);
/// assert_eq!(set.skipped()[0].kid(), Some("h1"));
/// ```
///
/// Two sets are equal when they hold equal keys and skipped the same keys, in the same order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
    skipped: Vec<SkippedKey>,
}

/// One usable public key from a JWKS.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: Option<String>,
    kind: KeyKind,
    jwk_alg: Option<Algorithm>,
    /// One parsed key per algorithm this key may serve, indexed by [`Algorithm::index`].
    verifiers: [Option<ParsedPublicKey>; Algorithm::ALL.len()],
}

/// The type and size of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyKind {
    /// An RSA key with a modulus of this many bits.
    Rsa {
        /// Modulus size in bits.
        bits: usize,
    },
    /// An EC key on P-256.
    EcP256,
    /// An EC key on P-384.
    EcP384,
    /// An Ed25519 key.
    Ed25519,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::Rsa { bits } => write!(f, "RSA {bits}"),
            KeyKind::EcP256 => f.write_str("EC P-256"),
            KeyKind::EcP384 => f.write_str("EC P-384"),
            KeyKind::Ed25519 => f.write_str("OKP Ed25519"),
        }
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("kind", &self.kind)
            .field("alg", &self.jwk_alg)
            .finish_non_exhaustive()
    }
}

/// Two keys are equal when they have the same `kid`, type, pinned `alg` and public key
/// material, serving the same algorithms: a key set refetched with a key unchanged verifies
/// exactly the tokens it verified before.
impl PartialEq for VerifyingKey {
    fn eq(&self, other: &VerifyingKey) -> bool {
        self.kid == other.kid
            && self.kind == other.kind
            && self.jwk_alg == other.jwk_alg
            && self
                .verifiers
                .iter()
                .zip(&other.verifiers)
                .all(|(a, b)| match (a, b) {
                    (Some(a), Some(b)) => a.as_ref() == b.as_ref(),
                    (None, None) => true,
                    _ => false,
                })
    }
}

impl Eq for VerifyingKey {}

impl VerifyingKey {
    /// The key's `kid`, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The key's type and size.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The `alg` the JWK pins, if any.
    pub fn jwk_alg(&self) -> Option<Algorithm> {
        self.jwk_alg
    }

    /// The algorithms this key can verify.
    pub fn algorithms(&self) -> impl Iterator<Item = Algorithm> + '_ {
        Algorithm::ALL
            .into_iter()
            .filter(|a| self.verifiers[a.index()].is_some())
    }

    fn can_serve(&self, alg: Algorithm) -> bool {
        self.verifiers[alg.index()].is_some()
    }

    /// Checks `signature` over `message` with this key for `alg`. `false` when the signature
    /// does not verify or the key cannot serve `alg`.
    pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        match &self.verifiers[alg.index()] {
            Some(key) => key.verify_sig(message, signature).is_ok(),
            None => false,
        }
    }
}

/// A JWK that was not loaded, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedKey {
    kid: Option<String>,
    reason: SkipReason,
}

impl SkippedKey {
    /// The skipped key's `kid`, if it had a usable one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Why it was skipped.
    pub fn reason(&self) -> &SkipReason {
        &self.reason
    }
}

impl fmt::Display for SkippedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kid {
            Some(kid) => write!(f, "key `{}`: {}", crate::error::clip(kid), self.reason),
            None => write!(f, "key without kid: {}", self.reason),
        }
    }
}

/// Why a JWK was skipped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SkipReason {
    /// Not a JSON object, or its members have the wrong types or encodings.
    #[error("invalid JWK: {0}")]
    Invalid(&'static str),
    /// `use` is present and is not `sig`.
    #[error("`use` is `{0}`, not `sig`")]
    NotForSignature(String),
    /// `key_ops` is present and does not include `verify`.
    #[error("`key_ops` does not include `verify`")]
    NoVerifyOperation,
    /// A symmetric (`oct`) key: never used to verify, whatever the token says.
    #[error("symmetric (`oct`) keys are never used")]
    Symmetric,
    /// A `kty` poolgate does not support.
    #[error("unsupported key type `{0}`")]
    UnsupportedKeyType(String),
    /// A curve poolgate does not support.
    #[error("unsupported curve `{0}`")]
    UnsupportedCurve(String),
    /// An `alg` poolgate does not support.
    #[error("unsupported algorithm `{0}`")]
    UnsupportedAlgorithm(String),
    /// The JWK's `alg` does not fit its `kty`/`crv`.
    #[error("algorithm `{alg}` does not fit a {kind} key")]
    AlgorithmMismatch {
        /// The JWK's `alg`.
        alg: Algorithm,
        /// The key's type.
        kind: KeyKind,
    },
    /// An RSA modulus outside 2048..=8192 bits.
    #[error("RSA key of {0} bits (2048 to 8192 accepted)")]
    RsaSize(usize),
    /// An RSA public exponent no signature can ever verify with.
    #[error("unusable RSA public exponent: {0}")]
    RsaExponent(RsaExponentFlaw),
    /// The `kid` is longer than [`MAX_KID_LEN`] bytes.
    #[error("`kid` longer than 256 bytes")]
    KidTooLong,
    /// More than [`MAX_JWKS_KEYS`] keys in the document.
    #[error("beyond the first 100 keys of the document")]
    TooMany,
}

/// What is wrong with an RSA public exponent. The crypto backend (AWS-LC) refuses each of these
/// when verifying; `e = 3` and every other odd exponent up to [`MAX_RSA_EXPONENT_BITS`] bits
/// is accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RsaExponentFlaw {
    /// `e = 1`: the "signature" would be the padded message itself.
    #[error("it is 1")]
    One,
    /// An even `e` (0 included) has no inverse modulo phi(n): no private key matches it.
    #[error("it is even")]
    Even,
    /// Longer than [`MAX_RSA_EXPONENT_BITS`] bits.
    #[error("it has {0} bits (at most 33 can verify)")]
    TooLong(usize),
}

/// A JWKS document that yields no key set.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// Not JSON at all.
    #[error("the key set is not JSON")]
    NotJson,
    /// JSON, but not an object with a `keys` array.
    #[error("the key set is not a JSON object with a `keys` array")]
    NotAJwks,
    /// No key in it is usable; the skipped keys say why.
    #[error("the key set has no usable key ({})", skipped_summary(.skipped))]
    NoUsableKey {
        /// Every key and why it was skipped.
        skipped: Vec<SkippedKey>,
    },
}

fn skipped_summary(skipped: &[SkippedKey]) -> String {
    if skipped.is_empty() {
        return "it is empty".to_owned();
    }
    let mut parts: Vec<String> = skipped.iter().take(5).map(ToString::to_string).collect();
    if skipped.len() > 5 {
        parts.push(format!("and {} more", skipped.len() - 5));
    }
    parts.join("; ")
}

/// Why no key was selected for a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeyLookup {
    /// No key, usable or skipped, has this `kid`: a refetch may help.
    UnknownKid,
    /// Keys with this `kid` exist but none can serve the algorithm.
    Ineligible(String),
    /// No `kid` and no key can serve the algorithm.
    NoEligible,
    /// No `kid` and this many keys can serve the algorithm.
    Ambiguous(usize),
}

impl KeySet {
    /// Parses a JWKS document (RFC 7517), keeping every usable signature key.
    ///
    /// # Errors
    /// [`JwksError`] when the document is not a JWKS or has no usable key.
    pub fn from_jwks(bytes: &[u8]) -> Result<KeySet, JwksError> {
        let doc: Value = serde_json::from_slice(bytes).map_err(|_| JwksError::NotJson)?;
        let Some(Value::Array(raw_keys)) = doc.get("keys") else {
            return Err(JwksError::NotAJwks);
        };
        let mut set = KeySet::default();
        for (i, raw) in raw_keys.iter().enumerate() {
            if i >= MAX_JWKS_KEYS {
                set.skipped.push(SkippedKey {
                    kid: raw_kid(raw),
                    reason: SkipReason::TooMany,
                });
                continue;
            }
            match parse_jwk(raw) {
                Ok(key) => set.keys.push(key),
                Err(reason) => set.skipped.push(SkippedKey {
                    kid: raw_kid(raw),
                    reason,
                }),
            }
        }
        if set.keys.is_empty() {
            return Err(JwksError::NoUsableKey {
                skipped: set.skipped,
            });
        }
        Ok(set)
    }

    /// The usable keys.
    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }

    /// The keys that were skipped, with reasons.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// How many usable keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no usable key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether any key, usable or skipped, has this `kid`.
    pub fn knows_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid() == Some(kid))
            || self.skipped.iter().any(|k| k.kid() == Some(kid))
    }

    /// Selects the key that verifies a token with this `kid` and `alg`.
    pub(crate) fn select(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<&VerifyingKey, KeyLookup> {
        match kid {
            Some(kid) => {
                let mut seen = false;
                for key in &self.keys {
                    if key.kid() == Some(kid) {
                        if key.can_serve(alg) {
                            return Ok(key);
                        }
                        seen = true;
                    }
                }
                if seen {
                    let kinds: Vec<String> = self
                        .keys
                        .iter()
                        .filter(|k| k.kid() == Some(kid))
                        .map(|k| match k.jwk_alg {
                            Some(a) => format!("{} key pinned to {a}", k.kind),
                            None => format!("{} key", k.kind),
                        })
                        .collect();
                    return Err(KeyLookup::Ineligible(format!(
                        "the key with this `kid` ({}) cannot verify {alg}",
                        kinds.join(", ")
                    )));
                }
                if let Some(skipped) = self.skipped.iter().find(|k| k.kid() == Some(kid)) {
                    return Err(KeyLookup::Ineligible(format!(
                        "the key with this `kid` was not loaded: {}",
                        skipped.reason
                    )));
                }
                Err(KeyLookup::UnknownKid)
            }
            None => {
                let mut eligible = self.keys.iter().filter(|k| k.can_serve(alg));
                match (eligible.next(), eligible.count()) {
                    (Some(key), 0) => Ok(key),
                    (Some(_), more) => Err(KeyLookup::Ambiguous(more + 1)),
                    (None, _) => Err(KeyLookup::NoEligible),
                }
            }
        }
    }
}

fn raw_kid(raw: &Value) -> Option<String> {
    raw.get("kid")
        .and_then(Value::as_str)
        .filter(|k| k.len() <= MAX_KID_LEN)
        .map(str::to_owned)
}

fn str_member<'a>(raw: &'a Value, name: &str) -> Result<Option<&'a str>, SkipReason> {
    match raw.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(SkipReason::Invalid("a member that must be a string is not")),
    }
}

fn parse_jwk(raw: &Value) -> Result<VerifyingKey, SkipReason> {
    if !raw.is_object() {
        return Err(SkipReason::Invalid("not a JSON object"));
    }
    let kid = str_member(raw, "kid")?;
    if kid.is_some_and(|k| k.len() > MAX_KID_LEN) {
        return Err(SkipReason::KidTooLong);
    }
    if let Some(usage) = str_member(raw, "use")?
        && usage != "sig"
    {
        return Err(SkipReason::NotForSignature(crate::error::clip(usage)));
    }
    if let Some(ops) = raw.get("key_ops") {
        let Value::Array(ops) = ops else {
            return Err(SkipReason::Invalid("`key_ops` is not an array"));
        };
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return Err(SkipReason::NoVerifyOperation);
        }
    }
    let kty = str_member(raw, "kty")?.ok_or(SkipReason::Invalid("no `kty`"))?;
    let jwk_alg = match str_member(raw, "alg")? {
        None => None,
        Some(a) => Some(
            a.parse::<Algorithm>()
                .map_err(|_| SkipReason::UnsupportedAlgorithm(crate::error::clip(a)))?,
        ),
    };
    let family = match (kty, str_member(raw, "crv")?) {
        ("RSA", _) => Family::Rsa,
        ("EC", Some("P-256")) => Family::EcP256,
        ("EC", Some("P-384")) => Family::EcP384,
        ("OKP", Some("Ed25519")) => Family::Ed25519,
        ("EC" | "OKP", Some(crv)) => {
            return Err(SkipReason::UnsupportedCurve(crate::error::clip(crv)));
        }
        ("EC" | "OKP", None) => return Err(SkipReason::Invalid("no `crv`")),
        ("oct", _) => return Err(SkipReason::Symmetric),
        (other, _) => return Err(SkipReason::UnsupportedKeyType(crate::error::clip(other))),
    };

    // jsonwebtoken owns the JWK model and the JWK-to-key conversion.
    let jwk: Jwk = serde_json::from_value(raw.clone())
        .map_err(|_| SkipReason::Invalid("key parameters missing or malformed"))?;
    let decoding = DecodingKey::from_jwk(&jwk)
        .map_err(|_| SkipReason::Invalid("key parameters are not base64url"))?;

    let mut verifiers: [Option<ParsedPublicKey>; Algorithm::ALL.len()] = Default::default();
    let candidates = Algorithm::ALL
        .into_iter()
        .filter(|a| a.family() == family && jwk_alg.is_none_or(|j| j == *a));
    let kind = match (family, decoding.kind()) {
        (Family::Rsa, DecodingKeyKind::RsaModulusExponent { n, e }) => {
            let n = strip_leading_zeros(n);
            let e = strip_leading_zeros(e);
            let bits = bit_length(n);
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Err(SkipReason::RsaSize(bits));
            }
            check_rsa_exponent(e).map_err(SkipReason::RsaExponent)?;
            let components = RsaPublicKeyComponents { n, e };
            for alg in candidates {
                let parsed = components
                    .to_parsed_public_key(rsa_params(alg))
                    .map_err(|_| SkipReason::Invalid("not a valid RSA public key"))?;
                verifiers[alg.index()] = Some(parsed);
            }
            KeyKind::Rsa { bits }
        }
        (Family::EcP256 | Family::EcP384, DecodingKeyKind::SecretOrDer(point)) => {
            let (coord, verify_alg, kind): (usize, &'static dyn sig::VerificationAlgorithm, _) =
                if family == Family::EcP256 {
                    (32, &sig::ECDSA_P256_SHA256_FIXED, KeyKind::EcP256)
                } else {
                    (48, &sig::ECDSA_P384_SHA384_FIXED, KeyKind::EcP384)
                };
            if point.len() != 1 + 2 * coord {
                return Err(SkipReason::Invalid("EC coordinates have the wrong length"));
            }
            let parsed = ParsedPublicKey::new(verify_alg, point)
                .map_err(|_| SkipReason::Invalid("EC point is not on the curve"))?;
            for alg in candidates {
                verifiers[alg.index()] = Some(parsed.clone());
            }
            kind
        }
        (Family::Ed25519, DecodingKeyKind::SecretOrDer(x)) => {
            if x.len() != 32 {
                return Err(SkipReason::Invalid("Ed25519 key is not 32 bytes"));
            }
            let parsed = ParsedPublicKey::new(&sig::ED25519, x)
                .map_err(|_| SkipReason::Invalid("not a valid Ed25519 key"))?;
            for alg in candidates {
                verifiers[alg.index()] = Some(parsed.clone());
            }
            KeyKind::Ed25519
        }
        _ => return Err(SkipReason::Invalid("key parameters do not fit `kty`")),
    };
    if let Some(alg) = jwk_alg
        && verifiers[alg.index()].is_none()
    {
        return Err(SkipReason::AlgorithmMismatch { alg, kind });
    }
    Ok(VerifyingKey {
        kid: kid.map(str::to_owned),
        kind,
        jwk_alg,
        verifiers,
    })
}

fn rsa_params(alg: Algorithm) -> &'static sig::RsaParameters {
    match alg {
        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        _ => &sig::RSA_PKCS1_2048_8192_SHA256,
    }
}

/// Refuses the exponents the backend never verifies with (`e` without leading zeros), so the
/// key is reported as skipped instead of failing every signature.
fn check_rsa_exponent(e: &[u8]) -> Result<(), RsaExponentFlaw> {
    let bits = bit_length(e);
    if e.last().is_none_or(|low| low % 2 == 0) {
        Err(RsaExponentFlaw::Even)
    } else if bits == 1 {
        Err(RsaExponentFlaw::One)
    } else if bits > MAX_RSA_EXPONENT_BITS {
        Err(RsaExponentFlaw::TooLong(bits))
    } else {
        Ok(())
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

fn bit_length(n: &[u8]) -> usize {
    match n.first() {
        None => 0,
        Some(first) => (n.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn b64(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).unwrap()
    }

    const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    fn rsa_jwk(bits: usize, extra: &str) -> String {
        // A syntactically valid modulus of the given size (odd, top bit set).
        let mut n = vec![0xffu8; bits / 8];
        if let Some(last) = n.last_mut() {
            *last = 0xfb;
        }
        format!(
            r#"{{"kty":"RSA","n":"{}","e":"AQAB"{extra}}}"#,
            URL_SAFE_NO_PAD.encode(n)
        )
    }

    fn set(keys: &[String]) -> Result<KeySet, JwksError> {
        KeySet::from_jwks(format!(r#"{{"keys":[{}]}}"#, keys.join(",")).as_bytes())
    }

    fn skip_reason(key: String) -> SkipReason {
        let keys = [
            key,
            format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{ED_X}"}}"#),
        ];
        let s = set(&keys).unwrap();
        assert_eq!(s.len(), 1, "{:?}", s.skipped());
        s.skipped()[0].reason().clone()
    }

    #[test]
    fn rejects_documents_that_are_not_key_sets() {
        assert_eq!(
            KeySet::from_jwks(b"<html>").unwrap_err(),
            JwksError::NotJson
        );
        assert_eq!(KeySet::from_jwks(b"[]").unwrap_err(), JwksError::NotAJwks);
        assert_eq!(
            KeySet::from_jwks(br#"{"keys":{}}"#).unwrap_err(),
            JwksError::NotAJwks
        );
        assert!(matches!(
            KeySet::from_jwks(br#"{"keys":[]}"#).unwrap_err(),
            JwksError::NoUsableKey { skipped } if skipped.is_empty()
        ));
        let err = set(&[r#"{"kty":"oct","k":"c2VjcmV0","kid":"h"}"#.to_owned()]).unwrap_err();
        assert!(err.to_string().contains("symmetric"), "{err}");
    }

    #[test]
    fn skips_unusable_keys_with_reasons() {
        use SkipReason as R;
        let ed = |extra: &str| format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{ED_X}"{extra}}}"#);
        assert_eq!(
            skip_reason(ed(r#","use":"enc""#)),
            R::NotForSignature("enc".into())
        );
        assert_eq!(
            skip_reason(ed(r#","key_ops":["encrypt"]"#)),
            R::NoVerifyOperation
        );
        assert_eq!(
            skip_reason(ed(r#","alg":"HS256""#)),
            R::UnsupportedAlgorithm("HS256".into())
        );
        assert_eq!(
            skip_reason(ed(r#","alg":"none""#)),
            R::UnsupportedAlgorithm("none".into())
        );
        assert!(matches!(
            skip_reason(ed(r#","alg":"RS256""#)),
            R::AlgorithmMismatch { .. }
        ));
        assert_eq!(
            skip_reason(ed(&format!(r#","kid":"{}""#, "k".repeat(300)))),
            R::KidTooLong
        );
        assert!(matches!(skip_reason(ed(r#","kid":7"#)), R::Invalid(_)));
        assert_eq!(
            skip_reason(r#"{"kty":"oct","k":"c2VjcmV0"}"#.into()),
            R::Symmetric
        );
        assert_eq!(
            skip_reason(r#"{"kty":"XYZ"}"#.into()),
            R::UnsupportedKeyType("XYZ".into())
        );
        assert_eq!(
            skip_reason(r#"{"kty":"EC","crv":"P-521","x":"AA","y":"AA"}"#.into()),
            R::UnsupportedCurve("P-521".into())
        );
        assert!(matches!(
            skip_reason(r#"{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}"#.into()),
            R::Invalid(_)
        ));
        assert!(matches!(
            skip_reason(r#"{"kty":"OKP","crv":"Ed25519","x":"!!"}"#.into()),
            R::Invalid(_)
        ));
        assert!(matches!(
            skip_reason(r#"{"kty":"RSA"}"#.into()),
            R::Invalid(_)
        ));
        assert!(matches!(skip_reason("17".into()), R::Invalid(_)));
        assert_eq!(skip_reason(rsa_jwk(1024, "")), R::RsaSize(1024));
        assert_eq!(skip_reason(rsa_jwk(2040, "")), R::RsaSize(2040));
    }

    #[test]
    fn rsa_exponents_that_can_never_verify_are_skipped() {
        use RsaExponentFlaw as F;
        let with_e = |e: &[u8]| {
            let mut n = vec![0xffu8; 256];
            n[255] = 0xfb;
            format!(
                r#"{{"kty":"RSA","kid":"r","n":"{}","e":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(n),
                URL_SAFE_NO_PAD.encode(e)
            )
        };
        let skipped: &[(&[u8], F)] = &[
            (&[1], F::One),
            (&[0, 1], F::One),
            (&[2], F::Even),
            (&[0x01, 0x00, 0x00], F::Even),
            (&[0], F::Even),
            // 2^33 + 1: odd, over 2^32, 34 bits.
            (&[0x02, 0, 0, 0, 1], F::TooLong(34)),
            (&[0xff; 64], F::TooLong(512)),
        ];
        for (e, flaw) in skipped {
            let reason = skip_reason(with_e(e));
            assert_eq!(reason, SkipReason::RsaExponent(*flaw), "e = {e:?}");
            assert!(
                reason.to_string().contains("RSA public exponent"),
                "{reason}"
            );
        }
        // 3, 65537 (with a leading zero byte) and 2^33 - 1, the largest the backend verifies.
        for e in [&[3u8][..], &[0, 1, 0, 1], &[0x01, 0xff, 0xff, 0xff, 0xff]] {
            let s = set(&[with_e(e)]).unwrap();
            assert_eq!(s.len(), 1, "e = {e:?}: {:?}", s.skipped());
        }
    }

    #[test]
    fn rsa_key_serves_every_rsa_algorithm_unless_pinned() {
        let s = set(&[
            rsa_jwk(2048, r#","kid":"a""#),
            rsa_jwk(2048, r#","kid":"b","alg":"PS384""#),
        ])
        .unwrap();
        let a: Vec<_> = s.keys()[0].algorithms().collect();
        assert_eq!(a.len(), 6);
        assert_eq!(s.keys()[0].kind(), KeyKind::Rsa { bits: 2048 });
        let b: Vec<_> = s.keys()[1].algorithms().collect();
        assert_eq!(b, vec![Algorithm::PS384]);
    }

    #[test]
    fn selection_by_kid_and_without_kid() {
        let s = set(&[
            rsa_jwk(2048, r#","kid":"r1""#),
            format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{ED_X}","kid":"e1"}}"#),
            r#"{"kty":"oct","k":"c2VjcmV0","kid":"h1"}"#.to_owned(),
        ])
        .unwrap();
        assert_eq!(
            s.select(Some("r1"), Algorithm::RS256).unwrap().kid(),
            Some("r1")
        );
        assert!(matches!(
            s.select(Some("r1"), Algorithm::ES256),
            Err(KeyLookup::Ineligible(_))
        ));
        assert!(matches!(
            s.select(Some("h1"), Algorithm::RS256),
            Err(KeyLookup::Ineligible(_))
        ));
        assert_eq!(
            s.select(Some("zz"), Algorithm::RS256).unwrap_err(),
            KeyLookup::UnknownKid
        );
        assert_eq!(s.select(None, Algorithm::EdDSA).unwrap().kid(), Some("e1"));
        assert_eq!(
            s.select(None, Algorithm::ES256).unwrap_err(),
            KeyLookup::NoEligible
        );
        assert!(s.knows_kid("h1") && s.knows_kid("r1") && !s.knows_kid("zz"));

        let two = set(&[
            rsa_jwk(2048, r#","kid":"r1""#),
            rsa_jwk(3072, r#","kid":"r2""#),
        ])
        .unwrap();
        assert_eq!(
            two.select(None, Algorithm::RS256).unwrap_err(),
            KeyLookup::Ambiguous(2)
        );
    }

    #[test]
    fn keys_are_equal_by_kid_and_material() {
        // Another valid Ed25519 public key (RFC 8032 test 2).
        const ED_X2: &str = "PUAXw-hDiVqStwqnTRt-vJyYLM8uxJaMwM1V8Sr0Zgw";
        let ed = |x: &str, extra: &str| {
            format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{x}","kid":"k"{extra}}}"#)
        };
        let key = |jwk: String| set(&[jwk]).unwrap().keys()[0].clone();
        let base = key(ed(ED_X, ""));
        let cases = [
            (ed(ED_X, ""), true),
            (ed(ED_X, r#","use":"sig""#), true),
            (ed(ED_X2, ""), false),
            (ed(ED_X, r#","alg":"EdDSA""#), false),
            (
                ed(ED_X, "").replace(r#""kid":"k""#, r#""kid":"other""#),
                false,
            ),
            (rsa_jwk(2048, r#","kid":"k""#), false),
        ];
        for (jwk, equal) in cases {
            assert_eq!(base == key(jwk.clone()), equal, "{jwk}");
        }
        assert_eq!(
            key(rsa_jwk(2048, r#","kid":"r""#)),
            key(rsa_jwk(2048, r#","kid":"r""#))
        );
        assert_ne!(
            key(rsa_jwk(2048, r#","kid":"r""#)),
            key(rsa_jwk(3072, r#","kid":"r""#))
        );
        // Sets: the same document twice is equal; a changed key or skipped key is not.
        let a = set(&[
            ed(ED_X, ""),
            r#"{"kty":"oct","k":"c2VjcmV0","kid":"h"}"#.to_owned(),
        ]);
        let b = set(&[
            ed(ED_X, ""),
            r#"{"kty":"oct","k":"c2VjcmV0","kid":"h"}"#.to_owned(),
        ]);
        assert_eq!(a.unwrap(), b.unwrap());
        assert_ne!(
            set(&[ed(ED_X, "")]).unwrap(),
            set(&[ed(ED_X2, "")]).unwrap()
        );
        assert_ne!(
            set(&[ed(ED_X, "")]).unwrap(),
            set(&[ed(ED_X, ""), r#"{"kty":"oct","k":"c2VjcmV0"}"#.to_owned()]).unwrap()
        );
    }

    #[test]
    fn too_many_keys_are_cut() {
        let keys: Vec<String> = (0..MAX_JWKS_KEYS + 5)
            .map(|i| format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{ED_X}","kid":"k{i}"}}"#))
            .collect();
        let s = set(&keys).unwrap();
        assert_eq!(s.len(), MAX_JWKS_KEYS);
        assert_eq!(s.skipped().len(), 5);
        assert_eq!(s.skipped()[0].reason(), &SkipReason::TooMany);
    }

    #[test]
    fn bit_length_counts_significant_bits() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[1]), 1);
        assert_eq!(bit_length(&[0x80, 0]), 16);
        assert_eq!(strip_leading_zeros(&[0, 0, 5]), &[5]);
        assert_eq!(b64("AQAB"), vec![1, 0, 1]);
    }
}
