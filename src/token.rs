//! Owns strict parsing of a compact JWS into an [`UnverifiedToken`]; verifies nothing.
//!
//! Nothing read here is trusted: the header only steers key selection, and the payload's
//! `iss` only routes the token to a provider, whose keys and policy then decide.

use std::fmt;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::ValidationError;

/// The default cap on a whole token, checked before any decoding (16 KiB).
pub const DEFAULT_MAX_TOKEN_SIZE: usize = 16 * 1024;

/// A compact JWS split, decoded and parsed, but not verified.
///
/// Its header and claims are readable for routing and diagnostics only; they become
/// trustworthy solely through [`verify`](crate::verify), which returns a
/// [`VerifiedToken`](crate::VerifiedToken).
///
/// ```
/// use poolgate::UnverifiedToken;
/// // {"alg":"RS256","kid":"k1"} . {"iss":"https://idp"} . "sig"
/// let t = UnverifiedToken::parse("eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL2lkcCJ9.c2ln", 16 * 1024).unwrap();
/// assert_eq!(t.header().alg(), Some("RS256"));
/// assert_eq!(t.header().kid(), Some("k1"));
/// assert_eq!(t.unverified_issuer(), Some("https://idp"));
/// ```
#[derive(Debug, Clone)]
pub struct UnverifiedToken<'a> {
    signing_input: &'a str,
    header: Header,
    payload: Payload,
    signature: Vec<u8>,
}

/// The decoded payload: the registered claims, parsed eagerly, and the whole JSON object,
/// parsed only when someone asks for it (the hot path never needs every claim as a tree).
#[derive(Debug, Clone)]
pub(crate) struct Payload {
    json: Vec<u8>,
    registered: Registered,
    all: OnceLock<Map<String, Value>>,
}

/// The registered claims (RFC 7519 section 4.1) poolgate checks, as found (`null` included).
/// Their types are checked after the signature, so a forged token learns nothing from a type
/// error. A registered claim given twice makes the payload malformed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Registered {
    pub(crate) iss: Option<Value>,
    pub(crate) sub: Option<Value>,
    pub(crate) aud: Option<Value>,
    pub(crate) exp: Option<Value>,
    pub(crate) nbf: Option<Value>,
    pub(crate) iat: Option<Value>,
}

/// Hand-written rather than derived: a derived struct would also accept a JSON array, and would
/// skip other members without checking they parse as `serde_json::Value` would (`1e400`, a lone
/// surrogate), which could leave the lazily built claims map unbuildable.
impl<'de> Deserialize<'de> for Registered {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Registered;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Registered, A::Error> {
                let mut r = Registered::default();
                while let Some(name) = map.next_key::<Name>()? {
                    let slot = match name.0 {
                        "iss" => &mut r.iss,
                        "sub" => &mut r.sub,
                        "aud" => &mut r.aud,
                        "exp" => &mut r.exp,
                        "nbf" => &mut r.nbf,
                        "iat" => &mut r.iat,
                        _ => {
                            map.next_value::<Checked>()?;
                            continue;
                        }
                    };
                    if slot.is_some() {
                        return Err(de::Error::custom("duplicate registered claim"));
                    }
                    *slot = Some(map.next_value::<Value>()?);
                }
                Ok(r)
            }
        }
        d.deserialize_map(V)
    }
}

/// An object member name: one of the few names poolgate reads, or `""` for any other. Never
/// allocates.
struct Name(&'static str);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Name;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Name, E> {
                const KNOWN: [&str; 10] = [
                    "iss", "sub", "aud", "exp", "nbf", "iat", "alg", "kid", "typ", "crit",
                ];
                Ok(Name(KNOWN.into_iter().find(|k| *k == v).unwrap_or("")))
            }
        }
        d.deserialize_str(V)
    }
}

/// Any JSON value, walked so that it parses exactly as `serde_json::Value` would (numbers in
/// range, valid escapes, nesting limit) without building anything.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Checked;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_unit<E>(self) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
                while seq.next_element::<Checked>()?.is_some() {}
                Ok(Checked)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
                while map.next_key::<Checked>()?.is_some() {
                    map.next_value::<Checked>()?;
                }
                Ok(Checked)
            }
        }
        d.deserialize_any(V)
    }
}

impl Payload {
    pub(crate) fn parse(json: Vec<u8>) -> Result<Payload, ValidationError> {
        let registered: Registered = serde_json::from_slice(&json)
            .map_err(|_| ValidationError::Malformed("payload is not a JSON object"))?;
        Ok(Payload {
            json,
            registered,
            all: OnceLock::new(),
        })
    }

    pub(crate) fn registered(&self) -> &Registered {
        &self.registered
    }

    /// Every claim. [`Payload::parse`] checked every member parses as a `Value`, so building
    /// the map cannot fail; were it to, the map would be empty (no claim matches), not a panic.
    pub(crate) fn all(&self) -> &Map<String, Value> {
        self.all
            .get_or_init(|| serde_json::from_slice(&self.json).unwrap_or_default())
    }

    pub(crate) fn take_all(&mut self) -> Map<String, Value> {
        self.all.take().unwrap_or_default()
    }

    /// Whether a claim is present, parsing the whole payload only for unregistered names.
    pub(crate) fn contains(&self, name: &str) -> bool {
        let r = &self.registered;
        match name {
            "iss" => r.iss.is_some(),
            "sub" => r.sub.is_some(),
            "aud" => r.aud.is_some(),
            "exp" => r.exp.is_some(),
            "nbf" => r.nbf.is_some(),
            "iat" => r.iat.is_some(),
            other => self.all().contains_key(other),
        }
    }
}

/// The parts of a JOSE header poolgate looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    alg: Option<String>,
    kid: Option<String>,
    typ: Option<String>,
    crit: bool,
}

impl Header {
    /// The `alg` member, if present.
    pub fn alg(&self) -> Option<&str> {
        self.alg.as_deref()
    }

    /// The `kid` member, if present.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The `typ` member, if present.
    pub fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }

    /// Whether a `crit` member is present (such a token is always rejected).
    pub fn has_crit(&self) -> bool {
        self.crit
    }
}

/// The header as it is on the wire: the members poolgate reads, `null` kept as present.
/// `jku`, `jwk`, `x5u`, `x5c` are skipped on purpose: key material named by a token is never
/// fetched or trusted.
#[derive(Default)]
struct RawHeader {
    alg: Option<Value>,
    kid: Option<Value>,
    typ: Option<Value>,
    crit: bool,
}

impl<'de> Deserialize<'de> for RawHeader {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawHeader;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawHeader, A::Error> {
                let mut h = RawHeader::default();
                while let Some(name) = map.next_key::<Name>()? {
                    let slot = match name.0 {
                        "alg" => &mut h.alg,
                        "kid" => &mut h.kid,
                        "typ" => &mut h.typ,
                        "crit" if h.crit => {
                            return Err(de::Error::custom("duplicate header member"));
                        }
                        "crit" => {
                            h.crit = true;
                            map.next_value::<Checked>()?;
                            continue;
                        }
                        _ => {
                            map.next_value::<Checked>()?;
                            continue;
                        }
                    };
                    if slot.is_some() {
                        return Err(de::Error::custom("duplicate header member"));
                    }
                    *slot = Some(map.next_value::<Value>()?);
                }
                Ok(h)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'a> UnverifiedToken<'a> {
    /// Parses `token` strictly: at most `max_size` bytes, three base64url sections without
    /// padding, a JSON object header whose `alg`, `kid` and `typ` (when present) are strings,
    /// and a JSON object payload.
    ///
    /// # Errors
    /// [`ValidationError::TokenTooLarge`] or [`ValidationError::Malformed`].
    pub fn parse(token: &'a str, max_size: usize) -> Result<Self, ValidationError> {
        if token.len() > max_size {
            return Err(ValidationError::TokenTooLarge {
                size: token.len(),
                limit: max_size,
            });
        }
        // Only a failure pays for the diagnosis.
        Self::parse_sections(token).map_err(|e| match e {
            ValidationError::Malformed(why) => {
                ValidationError::Malformed(mistake(token).unwrap_or(why))
            }
            other => other,
        })
    }

    fn parse_sections(token: &'a str) -> Result<Self, ValidationError> {
        let mut parts = token.split('.');
        let (Some(h64), Some(p64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ValidationError::Malformed(
                "expected three dot-separated sections",
            ));
        };
        let signing_input = &token[..h64.len() + 1 + p64.len()];

        let header_bytes = decode_section(h64, "header is not base64url")?;
        let raw: RawHeader = serde_json::from_slice(&header_bytes)
            .map_err(|_| ValidationError::Malformed("header is not a JSON object"))?;
        let header = Header {
            alg: string_member(raw.alg, "`alg` is not a string")?,
            kid: string_member(raw.kid, "`kid` is not a string")?,
            typ: string_member(raw.typ, "`typ` is not a string")?,
            crit: raw.crit,
        };

        let payload = Payload::parse(decode_section(p64, "payload is not base64url")?)?;

        // An empty signature parses; it then fails the algorithm or the signature check.
        let signature = decode_section(s64, "signature is not base64url")?;
        Ok(UnverifiedToken {
            signing_input,
            header,
            payload,
            signature,
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The claims, not verified.
    pub fn unverified_claims(&self) -> &Map<String, Value> {
        self.payload.all()
    }

    /// The `iss` claim if it is a string, not verified; used only to route to a provider.
    pub fn unverified_issuer(&self) -> Option<&str> {
        self.payload.registered.iss.as_ref().and_then(Value::as_str)
    }

    pub(crate) fn payload(&self) -> &Payload {
        &self.payload
    }

    pub(crate) fn signing_input(&self) -> &[u8] {
        self.signing_input.as_bytes()
    }

    pub(crate) fn signature(&self) -> &[u8] {
        &self.signature
    }

    pub(crate) fn into_parts(self) -> (Header, Payload) {
        (self.header, self.payload)
    }
}

/// What a string that is not a compact JWS recognisably is instead: the mistakes people make
/// when they copy a token (a `Bearer ` prefix, quotes, a line break, a whole JSON response or
/// SASL message, a JWE). `None` when it is none of those. Never quotes the input.
fn mistake(token: &str) -> Option<&'static str> {
    let t = token.trim_ascii();
    let starts = |prefix: &str| {
        t.get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
    };
    Some(if token.is_empty() {
        "the token is empty"
    } else if t.is_empty() {
        "the token is only whitespace"
    } else if token.contains('\x01') || (starts("n,") && t.contains("auth=")) {
        "this is a SASL/OAUTHBEARER client message, not a token: give only what follows `auth=Bearer `"
    } else if starts("bearer ") || starts("bearer\t") {
        "it starts with `Bearer `, which is not part of the token: remove the prefix"
    } else if t.starts_with('{') {
        "this is a JSON object, not a token (a token endpoint response? give its `access_token`)"
    } else if t.len() >= 2
        && (t.starts_with('"') && t.ends_with('"') || t.starts_with('\'') && t.ends_with('\''))
    {
        "the token is wrapped in quotes: remove them"
    } else if token.chars().any(char::is_whitespace) {
        "the token contains whitespace or a line break (wrapped or split when copied?): remove it"
    } else if token.split('.').count() == 5 {
        "five sections: this is an encrypted JWT (JWE); poolgate verifies signed JWTs (JWS)"
    } else {
        return None;
    })
}

fn decode_section(section: &str, what: &'static str) -> Result<Vec<u8>, ValidationError> {
    // URL_SAFE_NO_PAD rejects padding, the standard alphabet and non-canonical trailing bits.
    URL_SAFE_NO_PAD
        .decode(section)
        .map_err(|_| ValidationError::Malformed(what))
}

fn string_member(v: Option<Value>, what: &'static str) -> Result<Option<String>, ValidationError> {
    match v {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ValidationError::Malformed(what)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn tok(h: &str, p: &str) -> String {
        format!("{}.{}.{}", b64(h), b64(p), b64("sig"))
    }

    fn code(t: &str) -> ErrorCode {
        match UnverifiedToken::parse(t, DEFAULT_MAX_TOKEN_SIZE) {
            Ok(_) => panic!("parsed: {t}"),
            Err(e) => e.code(),
        }
    }

    #[test]
    fn parses_a_good_token() {
        let t = tok(
            r#"{"alg":"ES256","typ":"at+jwt","jku":"https://evil"}"#,
            r#"{"iss":"x"}"#,
        );
        let p = UnverifiedToken::parse(&t, DEFAULT_MAX_TOKEN_SIZE).unwrap();
        assert_eq!(p.header().alg(), Some("ES256"));
        assert_eq!(p.header().typ(), Some("at+jwt"));
        assert_eq!(p.header().kid(), None);
        assert!(!p.header().has_crit());
        assert_eq!(p.signature(), b"sig");
        assert_eq!(
            p.signing_input(),
            format!(
                "{}.{}",
                b64(r#"{"alg":"ES256","typ":"at+jwt","jku":"https://evil"}"#),
                b64(r#"{"iss":"x"}"#)
            )
            .as_bytes()
        );
    }

    #[test]
    fn rejects_malformed_shapes() {
        let good_h = b64(r#"{"alg":"RS256"}"#);
        let good_p = b64(r#"{}"#);
        let cases = [
            String::new(),
            "a.b".to_owned(),
            format!("{good_h}.{good_p}"),
            format!("{good_h}.{good_p}.c2ln.c2ln"),
            format!("{good_h}=.{good_p}.c2ln"),
            format!("{good_h}.{good_p}.c2ln="),
            format!("{good_h}.{good_p}.c+ln"),
            format!("{}.{good_p}.c2ln", b64("[1]")),
            format!("{}.{good_p}.c2ln", b64("not json")),
            format!("{good_h}.{}.c2ln", b64("[]")),
            format!("{good_h}.{}.c2ln", b64("\"s\"")),
            format!("{good_h}.{}.c2ln", b64("{} trailing")),
            tok(r#"{"alg":"RS256","kid":5}"#, "{}"),
            tok(r#"{"alg":7}"#, "{}"),
            tok(r#"{"alg":"RS256","typ":["JWT"]}"#, "{}"),
            tok(r#"{"alg":"RS256","alg":"none"}"#, "{}"),
            tok(r#"["RS256","k","JWT"]"#, "{}"),
            tok(r#"{"alg":null}"#, "{}"),
            tok(r#"{"alg":"RS256","kid":null}"#, "{}"),
            tok(r#"{"alg":"RS256","typ":null}"#, "{}"),
            tok(r#"{"alg":"RS256","crit":1,"crit":2}"#, "{}"),
            tok(r#"{"alg":"RS256"}"#, r#"{"iss":"a","iss":"b"}"#),
            tok(r#"{"alg":"RS256"}"#, r#"{"x":1e400}"#),
            tok(r#"{"alg":"RS256"}"#, r#"{"x":"\ud800"}"#),
            tok(r#"{"alg":"RS256"}"#, r#"{"x":[1,{"y":1e999}]}"#),
            tok(r#"{"alg":"RS256","x5u":1e400}"#, "{}"),
            // Non-canonical base64: "c2lo" vs trailing bits set.
            format!("{good_h}.{good_p}.c2m"),
        ];
        for c in cases {
            assert_eq!(code(&c), ErrorCode::Malformed, "{c}");
        }
    }

    #[test]
    fn recognisable_mistakes_are_named() {
        let good = tok(r#"{"alg":"RS256"}"#, "{}");
        let why = |t: &str| match UnverifiedToken::parse(t, DEFAULT_MAX_TOKEN_SIZE) {
            Err(ValidationError::Malformed(why)) => why,
            other => panic!("{t}: {other:?}"),
        };
        let (head, rest) = good.split_at(10);
        let cases = [
            (String::new(), "the token is empty"),
            (" \n".to_owned(), "only whitespace"),
            (format!("Bearer {good}"), "starts with `Bearer `"),
            (format!("bearer {good}"), "starts with `Bearer `"),
            (
                format!("n,,\x01auth=Bearer {good}\x01\x01"),
                "SASL/OAUTHBEARER client message",
            ),
            (
                format!(r#"{{"access_token":"{good}","token_type":"Bearer"}}"#),
                "JSON object",
            ),
            (format!("\"{good}\""), "wrapped in quotes"),
            (format!("'{good}'"), "wrapped in quotes"),
            (format!("{head}\n{rest}"), "whitespace or a line break"),
            (format!("{head} {rest}"), "whitespace or a line break"),
            (format!("{good}\r\n"), "whitespace or a line break"),
            (
                format!(
                    "{}.{}.{}.{}.{}",
                    b64(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#),
                    "a",
                    "b",
                    "c",
                    "d"
                ),
                "this is an encrypted JWT (JWE); poolgate verifies signed JWTs (JWS)",
            ),
            ("a.b".to_owned(), "expected three dot-separated sections"),
            (format!("{good}="), "signature is not base64url"),
        ];
        for (input, want) in cases {
            let got = why(&input);
            assert!(got.contains(want), "{input:?}: {got}");
        }
        // Still the same code.
        assert_eq!(code(&format!("Bearer {good}")), ErrorCode::Malformed);
    }

    #[test]
    fn size_cap_is_checked_before_decoding() {
        let big = "!".repeat(DEFAULT_MAX_TOKEN_SIZE + 1);
        assert_eq!(code(&big), ErrorCode::TokenTooLarge);
        let at_cap = "!".repeat(DEFAULT_MAX_TOKEN_SIZE);
        assert_eq!(code(&at_cap), ErrorCode::Malformed);
    }

    #[test]
    fn crit_is_noted_whatever_its_value() {
        for crit in [r#"["exp"]"#, "[]", "null", "0"] {
            let t = tok(&format!(r#"{{"alg":"RS256","crit":{crit}}}"#), "{}");
            let parsed = UnverifiedToken::parse(&t, 1 << 20).unwrap();
            assert!(parsed.header().has_crit(), "{crit}");
        }
    }

    #[test]
    fn every_accepted_payload_builds_its_claims_map() {
        let t = tok(
            r#"{"alg":"RS256"}"#,
            r#"{"iss":"i","big":1e300,"u":"\u00e9\ud83d\ude00","n":{"a":[1,2,{"b":null}]},"x":"x","x":"y"}"#,
        );
        let p = UnverifiedToken::parse(&t, 1 << 20).unwrap();
        let claims = p.unverified_claims();
        assert_eq!(claims.len(), 5);
        assert_eq!(claims["u"], "é😀");
        assert_eq!(
            claims["x"], "y",
            "a repeated unregistered claim: the last one wins"
        );
    }

    #[test]
    fn empty_signature_parses() {
        let t = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64("{}"));
        let parsed = UnverifiedToken::parse(&t, 1 << 20).unwrap();
        assert!(parsed.signature().is_empty());
    }
}
