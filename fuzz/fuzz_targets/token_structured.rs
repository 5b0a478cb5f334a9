//! Well-formed tokens built from structured input: a header and claims as JSON objects (duplicate
//! members, odd types, boundary dates and numbers included), base64url-encoded, then either signed
//! for real with the fixed Ed25519 key or given a junk signature.
//!
//! Raw bytes rarely get past base64 and JSON; these do, and the real signature carries them past
//! the signature check into the claim checks. Ed25519 signing is deterministic, so the target
//! needs no RNG. Checked:
//! - nothing panics;
//! - a token verifies only with the real signature, untouched;
//! - what verifies satisfies the policy (issuer, audience, dates, algorithm, key).
#![no_main]

mod common;

use std::fmt::Write as _;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use poolgate::{Algorithm, ErrorCode, UnverifiedToken, verify};

use common::{AUDIENCE, ED25519_KID, ED25519_SEED, ED25519_X, ISSUER, NOW, SKEW, fixture};

/// Strings worth hitting exactly.
const TEXTS: &[&str] = &[
    "EdDSA",
    "ES256",
    "RS256",
    "PS256",
    "ES384",
    "none",
    "HS256",
    "ed1",
    "es1",
    ISSUER,
    "https://idp.fuzz.test/",
    AUDIENCE,
    "JWT",
    "at+jwt",
    "application/at+jwt",
    "",
    "verify",
    "sig",
    "https://evil.test/jwks",
];

/// Number literals that the typed generators cannot produce: out-of-range, negative zero,
/// exponents, and the NumericDate bounds.
const NUMBERS: &[&str] = &[
    "1e400",
    "-1e400",
    "-0",
    "0",
    "0.5",
    "1E3",
    "1700000000.999",
    "1700000030",
    "1699999970",
    "1700000031",
    "1699999969.5",
    "253402300799",
    "253402300800",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "1.7e9",
    "4e-324",
];

/// String literals, as JSON text.
const ESCAPED: &[&str] = &[
    r#""\ud800""#,
    r#""\udc00\ud800""#,
    r#""\ud83d\ude00""#,
    r#""\u0000""#,
    r#""\/\b\f\n\r\t""#,
    r#""\u00e9""#,
    r#""\uD834\uDD1E""#,
];

#[derive(Arbitrary, Debug)]
enum Name {
    Alg,
    Kid,
    Typ,
    Crit,
    Jku,
    Iss,
    Sub,
    Aud,
    Exp,
    Nbf,
    Iat,
    Jti,
    Other(String),
    /// A known name spelled with escapes (`"\u0069ss"` is `iss`).
    Escaped(u8),
}

/// Member names as JSON text, spelled with escapes.
const ESCAPED_NAMES: &[&str] = &[
    r#""\u0069ss""#,
    r#""\u0061ud""#,
    r#""ex\u0070""#,
    r#""\u006ebf""#,
    r#""\u0061lg""#,
    r#""k\u0069d""#,
    r#""cr\u0069t""#,
    r#""t\u0079p""#,
];

impl Name {
    fn as_str(&self) -> &str {
        match self {
            Name::Alg => "alg",
            Name::Kid => "kid",
            Name::Typ => "typ",
            Name::Crit => "crit",
            Name::Jku => "jku",
            Name::Iss => "iss",
            Name::Sub => "sub",
            Name::Aud => "aud",
            Name::Exp => "exp",
            Name::Nbf => "nbf",
            Name::Iat => "iat",
            Name::Jti => "jti",
            Name::Other(s) => s,
            Name::Escaped(_) => "",
        }
    }

    /// The name as JSON text.
    fn json(&self) -> String {
        match self {
            Name::Escaped(i) => ESCAPED_NAMES[usize::from(*i) % ESCAPED_NAMES.len()].to_owned(),
            other => json_str(other.as_str()),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Text {
    Known(u8),
    Any(String),
    /// Long strings, to exercise clipping in error messages.
    Repeat(char, u8),
}

#[derive(Arbitrary, Debug)]
enum Val {
    Null,
    Bool(bool),
    Str(Text),
    Int(i64),
    Float(f64),
    /// `NOW + offset` seconds: dates around the boundaries.
    Time(i16),
    Number(u8),
    /// A JSON string literal with escapes Rust strings cannot hold (lone surrogates).
    Escaped(u8),
    /// Arrays nested this deep (serde_json stops at 128).
    Deep(u8),
    Array(Vec<Val>),
    Object(Vec<(Name, Val)>),
}

#[derive(Arbitrary, Debug)]
enum Sig {
    /// The fixed Ed25519 key's signature over the signing input.
    Valid,
    /// That signature with one byte XORed (mask made non-zero).
    Flipped(u8, u8),
    /// That signature, cut short or extended.
    Resized(u8, Vec<u8>),
    /// Arbitrary bytes, base64url-encoded.
    Junk(Vec<u8>),
    /// Arbitrary text as the signature section (may be invalid base64url).
    Raw(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    header: Vec<(Name, Val)>,
    claims: Vec<(Name, Val)>,
    /// Emit a well-formed base header (`alg: EdDSA`, `kid: ed1`) before `header`.
    base_header: bool,
    /// Emit well-formed base claims (`iss`, `aud`, `exp`) before `claims`.
    base_claims: bool,
    sig: Sig,
}

fn text(t: &Text) -> String {
    match t {
        Text::Known(i) => TEXTS[usize::from(*i) % TEXTS.len()].to_owned(),
        Text::Any(s) => s.clone(),
        Text::Repeat(c, n) => std::iter::repeat_n(*c, usize::from(*n)).collect(),
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

fn write_val(out: &mut String, v: &Val) {
    match v {
        Val::Null => out.push_str("null"),
        Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Val::Str(t) => out.push_str(&json_str(&text(t))),
        Val::Int(i) => {
            let _ = write!(out, "{i}");
        }
        // Non-finite floats serialize as `null`.
        Val::Float(f) => out.push_str(&serde_json::to_string(f).expect("a float serializes")),
        Val::Time(off) => {
            let _ = write!(out, "{}", NOW.as_secs() as i64 + i64::from(*off));
        }
        Val::Number(i) => out.push_str(NUMBERS[usize::from(*i) % NUMBERS.len()]),
        Val::Escaped(i) => out.push_str(ESCAPED[usize::from(*i) % ESCAPED.len()]),
        Val::Deep(n) => {
            let n = usize::from(*n);
            out.push_str(&"[".repeat(n));
            out.push_str(&"]".repeat(n));
        }
        Val::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_val(out, item);
            }
            out.push(']');
        }
        Val::Object(members) => write_object(out, "", members),
    }
}

/// `{base, members...}`; duplicate names are kept, as a hostile issuer could send them.
fn write_object(out: &mut String, base: &str, members: &[(Name, Val)]) {
    out.push('{');
    out.push_str(base);
    for (i, (name, value)) in members.iter().enumerate() {
        if i > 0 || !base.is_empty() {
            out.push(',');
        }
        out.push_str(&name.json());
        out.push(':');
        write_val(out, value);
    }
    out.push('}');
}

/// Set `POOLGATE_FUZZ_OUTCOMES=1` to print each input's outcome (to see how deep a corpus gets).
static SHOW_OUTCOMES: OnceLock<bool> = OnceLock::new();

fn signer() -> &'static Ed25519KeyPair {
    static KEY: OnceLock<Ed25519KeyPair> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = Ed25519KeyPair::from_seed_unchecked(&ED25519_SEED).expect("RFC 8032 seed");
        assert_eq!(URL_SAFE_NO_PAD.encode(key.public_key().as_ref()), ED25519_X);
        key
    })
}

fuzz_target!(|input: Input| {
    let fx = fixture();

    let mut header = String::new();
    let base_header = if input.base_header {
        format!(r#""alg":"EdDSA","kid":"{ED25519_KID}""#)
    } else {
        String::new()
    };
    write_object(&mut header, &base_header, &input.header);
    let mut claims = String::new();
    let base_claims = if input.base_claims {
        format!(
            r#""iss":{},"aud":"{AUDIENCE}","exp":{}"#,
            json_str(ISSUER),
            NOW.as_secs() + 600
        )
    } else {
        String::new()
    };
    write_object(&mut claims, &base_claims, &input.claims);

    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&header),
        URL_SAFE_NO_PAD.encode(&claims)
    );
    let real = signer().sign(signing_input.as_bytes()).as_ref().to_vec();
    let (sig_section, genuine) = match &input.sig {
        Sig::Valid => (URL_SAFE_NO_PAD.encode(&real), true),
        Sig::Flipped(at, mask) => {
            let mut s = real.clone();
            let at = usize::from(*at) % s.len();
            s[at] ^= (*mask).max(1);
            (URL_SAFE_NO_PAD.encode(&s), false)
        }
        Sig::Resized(len, extra) => {
            let mut s = real.clone();
            s.truncate(usize::from(*len));
            s.extend_from_slice(extra);
            let genuine = s == real;
            (URL_SAFE_NO_PAD.encode(&s), genuine)
        }
        Sig::Junk(bytes) => (URL_SAFE_NO_PAD.encode(bytes), *bytes == real),
        Sig::Raw(s) => (s.clone(), *s == URL_SAFE_NO_PAD.encode(&real)),
    };
    let token = format!("{signing_input}.{sig_section}");

    let parsed = UnverifiedToken::parse(&token, fx.policy.max_token_size());
    if let Ok(t) = &parsed {
        // The lazily built claims map agrees with the eagerly parsed registered claims.
        let iss = t.unverified_claims().get("iss").and_then(|i| i.as_str());
        assert_eq!(
            iss,
            t.unverified_issuer(),
            "claims map and registered `iss` disagree"
        );
    }
    let result = verify(&token, &fx.keys, &fx.policy, NOW);
    if *SHOW_OUTCOMES.get_or_init(|| std::env::var_os("POOLGATE_FUZZ_OUTCOMES").is_some()) {
        match &result {
            Ok(_) => eprintln!("outcome: ok"),
            Err(e) => eprintln!("outcome: {}", e.code()),
        }
    }
    match (&parsed, &result) {
        (Err(p), Err(v)) => assert_eq!(p, v),
        (Err(p), Ok(_)) => panic!("verify accepted what parse rejects: {p}"),
        (Ok(t), Err(e)) => {
            assert!(!matches!(
                e.code(),
                ErrorCode::Malformed | ErrorCode::TokenTooLarge
            ));
            if t.header().has_crit() {
                assert_eq!(e.code(), ErrorCode::CriticalHeader);
            }
            let _ = e.to_string();
        }
        (Ok(t), Ok(v)) => {
            assert!(
                genuine,
                "a token verified without the real signature: {token}"
            );
            assert!(!t.header().has_crit());
            assert_eq!(t.header().alg(), Some("EdDSA"));
            assert_eq!(v.algorithm(), Algorithm::EdDSA);
            assert!(matches!(v.kid(), None | Some(ED25519_KID)), "{:?}", v.kid());
            assert_eq!(v.issuer(), ISSUER);
            assert!(v.audiences().contains(&AUDIENCE), "{:?}", v.audiences());
            assert!(v.expires_at().as_secs() + SKEW >= NOW.as_secs());
            if let Some(nbf) = v.not_before() {
                assert!(nbf.as_secs() <= NOW.as_secs() + SKEW);
            }
            if let Some(iat) = v.issued_at() {
                assert!(iat.as_secs() <= NOW.as_secs() + SKEW);
            }
            // The claims map agrees with the registered claims the checks saw.
            let claims = v.claims();
            assert_eq!(claims.get("iss").and_then(|i| i.as_str()), Some(ISSUER));
            assert!(claims.contains_key("exp"));
            assert_eq!(claims.get("sub").and_then(|s| s.as_str()), v.subject());
        }
    }
});
