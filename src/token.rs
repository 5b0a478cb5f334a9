//! Owns strict parsing of a compact JWS into an [`UnverifiedToken`]; verifies nothing.
//!
//! Nothing read here is trusted: the header only steers key selection, and the payload's
//! `iss` only routes the token to a provider, whose keys and policy then decide.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::IgnoredAny;
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
    claims: Map<String, Value>,
    signature: Vec<u8>,
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

/// The header as it is on the wire. `jku`, `jwk`, `x5u`, `x5c` are ignored on purpose: key
/// material named by a token is never fetched or trusted.
#[derive(Deserialize)]
struct RawHeader {
    alg: Option<Value>,
    kid: Option<Value>,
    typ: Option<Value>,
    crit: Option<IgnoredAny>,
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
            crit: raw.crit.is_some(),
        };

        let payload = decode_section(p64, "payload is not base64url")?;
        let claims: Map<String, Value> = serde_json::from_slice(&payload)
            .map_err(|_| ValidationError::Malformed("payload is not a JSON object"))?;

        let signature = decode_section(s64, "signature is not base64url")?;
        if signature.is_empty() {
            return Err(ValidationError::Malformed("signature is empty"));
        }
        Ok(UnverifiedToken {
            signing_input,
            header,
            claims,
            signature,
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The claims, not verified.
    pub fn unverified_claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The `iss` claim if it is a string, not verified; used only to route to a provider.
    pub fn unverified_issuer(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }

    pub(crate) fn signing_input(&self) -> &[u8] {
        self.signing_input.as_bytes()
    }

    pub(crate) fn signature(&self) -> &[u8] {
        &self.signature
    }

    pub(crate) fn into_parts(self) -> (Header, Map<String, Value>) {
        (self.header, self.claims)
    }
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
            format!("{good_h}.{good_p}."),
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
            // Non-canonical base64: "c2lo" vs trailing bits set.
            format!("{good_h}.{good_p}.c2m"),
        ];
        for c in cases {
            assert_eq!(code(&c), ErrorCode::Malformed, "{c}");
        }
    }

    #[test]
    fn size_cap_is_checked_before_decoding() {
        let big = "!".repeat(DEFAULT_MAX_TOKEN_SIZE + 1);
        assert_eq!(code(&big), ErrorCode::TokenTooLarge);
        let at_cap = "!".repeat(DEFAULT_MAX_TOKEN_SIZE);
        assert_eq!(code(&at_cap), ErrorCode::Malformed);
    }

    #[test]
    fn crit_is_noted() {
        let t = tok(r#"{"alg":"RS256","crit":["exp"]}"#, "{}");
        assert!(
            UnverifiedToken::parse(&t, 1 << 20)
                .unwrap()
                .header()
                .has_crit()
        );
    }
}
