//! Property tests: a signed token stays valid only while every byte of it is untouched.
//!
//! One key per algorithm (RS256, ES256, EdDSA) signs one token each; proptest then alters a single
//! byte of the signing input or of the signature, or truncates or extends the signature, and checks
//! that [`poolgate::verify`] never accepts the result. So that these properties cannot pass by
//! stopping every case at the parser, each also requires that at least a tenth of its cases reach
//! the signature check (`bad_signature`); run with `--nocapture` to see the error-code tallies.
//! A last group feeds arbitrary strings, and well-formed tokens with junk signatures, to the parser
//! and the verifier, which must answer with an error and never panic.
//!
//! The keys are generated once per test binary (RSA key generation is slow). The default case
//! counts keep the file to a few seconds in a debug build; the `#[ignore]`d `*_heavy` tests run the
//! same properties with many more cases: `cargo test --all-features --test tamper -- --ignored`.
#![cfg(feature = "testkit")]

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use poolgate::testkit::{SigningAlg, SigningKey, TokenBuilder, encode_jws};
use poolgate::{
    DEFAULT_MAX_TOKEN_SIZE, KeySet, Policy, UnixTime, UnverifiedToken, ValidationError, verify,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

const ISSUER: &str = "https://issuer.test/tamper";
/// `iat` of every token; they expire an hour later.
const ISSUED_AT: u64 = 1_700_000_000;
/// The verification time: a minute after issue.
const NOW: u64 = ISSUED_AT + 60;

/// Cases per property in the default run.
const CASES: u32 = 512;
/// Cases per property in the `#[ignore]`d heavy run.
const HEAVY_CASES: u32 = 20_000;

/// The base64url alphabet (no padding).
const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// One signed token per algorithm, the key set that verifies them all, and the policy.
struct Fixture {
    keys: KeySet,
    policy: Policy,
    /// `(algorithm, token)` for RS256, ES256 and EdDSA, in that order.
    tokens: Vec<(SigningAlg, String)>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let signers: Vec<Arc<SigningKey>> = SigningAlg::ALL
        .into_iter()
        .map(|alg| Arc::new(SigningKey::generate(alg, format!("tamper-{alg}"))))
        .collect();
    let jwks = json!({ "keys": signers.iter().map(|k| k.public_jwk()).collect::<Vec<_>>() });
    let keys = KeySet::from_jwks(jwks.to_string().as_bytes()).expect("the testkit's JWKS loads");
    assert_eq!(keys.len(), 3, "skipped: {:?}", keys.skipped());
    let policy = Policy::builder(ISSUER)
        .audience("kafka")
        .build()
        .expect("a valid policy");
    let tokens = signers
        .iter()
        .map(|key| {
            let token = TokenBuilder::new(Arc::clone(key), ISSUER)
                .issued_at(UnixTime::from_secs(ISSUED_AT))
                .claim("scope", json!("kafka.produce"))
                .sign();
            (key.alg(), token)
        })
        .collect();
    Fixture {
        keys,
        policy,
        tokens,
    }
});

fn check(token: &str) -> Result<poolgate::VerifiedToken, ValidationError> {
    let f = &*FIXTURE;
    verify(token, &f.keys, &f.policy, UnixTime::from_secs(NOW))
}

/// Runs `test` on `cases` values of `strategy`; panics with the shrunk input on failure.
fn run<S>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let config = Config {
        cases,
        // Nothing is written next to the sources; a failure prints its minimal input instead.
        failure_persistence: None,
        ..Config::default()
    };
    if let Err(e) = TestRunner::new(config).run(&strategy, test) {
        panic!("{e}");
    }
}

/// How often each error code answered, per property, so a property can show that its cases got
/// as far as the signature check rather than all stopping at the parser.
#[derive(Default)]
struct Tally(Mutex<BTreeMap<&'static str, usize>>);

impl Tally {
    fn count(&self, code: &'static str) {
        *self
            .0
            .lock()
            .expect("not poisoned")
            .entry(code)
            .or_default() += 1;
    }

    /// Prints the tally (visible with `--nocapture`) and returns how often `code` answered.
    fn report(&self, property: &str, code: &str) -> usize {
        let tally = self.0.lock().expect("not poisoned");
        eprintln!("{property}: {tally:?}");
        tally.get(code).copied().unwrap_or(0)
    }
}

/// Fails the case when `token` verifies, naming what was done to it.
fn assert_rejected(token: &str, what: &str, tally: &Tally) -> Result<(), TestCaseError> {
    match check(token) {
        Ok(v) => Err(TestCaseError::fail(format!(
            "{what}: verified as {:?} {:?}: {token}",
            v.algorithm(),
            v.kid()
        ))),
        Err(e) => {
            // The error renders whatever the token held.
            let _ = e.to_string();
            tally.count(e.code().as_str());
            Ok(())
        }
    }
}

/// Asserts that at least a tenth of a property's cases reached the signature check.
fn assert_reached_signature_check(property: &str, tally: &Tally, cases: u32) {
    let bad = tally.report(property, "bad_signature");
    assert!(
        bad * 10 >= cases as usize,
        "{property}: only {bad} of {cases} cases reached the signature check"
    );
}

/// Where the signature section of `token` starts (after the second dot).
fn signature_start(token: &str) -> usize {
    token.rfind('.').expect("a compact JWS has two dots") + 1
}

/// A replacement for one byte of a token: a base64url character (the token may still parse), any
/// ASCII byte, or any `char` (whose UTF-8 encoding replaces the byte).
fn replacement() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select(B64URL).prop_map(char::from),
        2 => (0u8..0x80).prop_map(char::from),
        1 => any::<char>(),
    ]
}

/// `token` with the byte at `index` replaced by `with`, or `None` when `with` is that byte
/// already.
fn replace_byte(token: &str, index: usize, with: char) -> Option<String> {
    let old = token.as_bytes()[index];
    if with.is_ascii() && with as u8 == old {
        return None;
    }
    // Tokens are ASCII, so every index is a char boundary.
    let mut out = String::with_capacity(token.len() + 4);
    out.push_str(&token[..index]);
    out.push(with);
    out.push_str(&token[index + 1..]);
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

fn untouched_tokens_verify() {
    for (alg, token) in &FIXTURE.tokens {
        let v = check(token).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(v.algorithm(), alg.algorithm());
        assert_eq!(v.kid(), Some(format!("tamper-{alg}").as_str()));
        assert_eq!(v.issuer(), ISSUER);
        assert_eq!(v.audiences(), vec!["kafka"]);
        assert_eq!(v.issued_at(), Some(UnixTime::from_secs(ISSUED_AT)));
        assert_eq!(v.claim("scope"), Some(&json!("kafka.produce")));
    }
}

fn signing_input_tamper(cases: u32) {
    let tally = Tally::default();
    let strategy = (
        0..FIXTURE.tokens.len(),
        any::<prop::sample::Index>(),
        replacement(),
    );
    run(cases, strategy, |(which, index, with)| {
        let (alg, token) = &FIXTURE.tokens[which];
        // Any byte of `header.payload`, the dot between them included.
        let index = index.index(signature_start(token) - 1);
        let Some(tampered) = replace_byte(token, index, with) else {
            return Ok(());
        };
        assert_rejected(
            &tampered,
            &format!("{alg}: signing-input byte {index} -> {with:?}"),
            &tally,
        )
    });
    assert_reached_signature_check("signing input", &tally, cases);
}

fn signature_char_tamper(cases: u32) {
    let tally = Tally::default();
    let strategy = (
        0..FIXTURE.tokens.len(),
        any::<prop::sample::Index>(),
        replacement(),
    );
    run(cases, strategy, |(which, index, with)| {
        let (alg, token) = &FIXTURE.tokens[which];
        // Any byte of the encoded signature, or the dot before it.
        let start = signature_start(token) - 1;
        let index = start + index.index(token.len() - start);
        let Some(tampered) = replace_byte(token, index, with) else {
            return Ok(());
        };
        assert_rejected(
            &tampered,
            &format!("{alg}: signature char {index} -> {with:?}"),
            &tally,
        )
    });
    assert_reached_signature_check("signature char", &tally, cases);
}

/// What to do to the decoded signature bytes.
#[derive(Clone, Debug)]
enum SigEdit {
    /// XOR the byte at this index with a non-zero mask.
    Flip(prop::sample::Index, u8),
    /// Keep only this many leading bytes (fewer than all; zero included).
    Truncate(prop::sample::Index),
    /// Drop this many leading bytes (at least one).
    DropFront(prop::sample::Index),
    /// Append these bytes (at least one).
    Extend(Vec<u8>),
    /// Prepend these bytes (at least one).
    Prefix(Vec<u8>),
}

fn sig_edit() -> impl Strategy<Value = SigEdit> {
    prop_oneof![
        3 => (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(i, m)| SigEdit::Flip(i, m)),
        1 => any::<prop::sample::Index>().prop_map(SigEdit::Truncate),
        1 => any::<prop::sample::Index>().prop_map(SigEdit::DropFront),
        1 => prop::collection::vec(any::<u8>(), 1..64).prop_map(SigEdit::Extend),
        1 => prop::collection::vec(any::<u8>(), 1..8).prop_map(SigEdit::Prefix),
    ]
}

fn apply_sig_edit(sig: &[u8], edit: &SigEdit) -> Vec<u8> {
    let mut out = sig.to_vec();
    match edit {
        SigEdit::Flip(i, mask) => out[i.index(sig.len())] ^= mask,
        SigEdit::Truncate(n) => out.truncate(n.index(sig.len())),
        SigEdit::DropFront(n) => {
            out.drain(..=n.index(sig.len()));
        }
        SigEdit::Extend(extra) => out.extend_from_slice(extra),
        SigEdit::Prefix(extra) => {
            out.splice(0..0, extra.iter().copied());
        }
    }
    out
}

fn signature_bytes_tamper(cases: u32) {
    let tally = Tally::default();
    let strategy = (0..FIXTURE.tokens.len(), sig_edit());
    run(cases, strategy, |(which, edit)| {
        let (alg, token) = &FIXTURE.tokens[which];
        let start = signature_start(token);
        let sig = URL_SAFE_NO_PAD
            .decode(&token[start..])
            .expect("the minted signature is base64url");
        let edited = apply_sig_edit(&sig, &edit);
        prop_assert_ne!(&edited, &sig);
        let tampered = format!("{}{}", &token[..start], URL_SAFE_NO_PAD.encode(&edited));
        assert_rejected(&tampered, &format!("{alg}: signature {edit:?}"), &tally)
    });
    assert_reached_signature_check("signature bytes", &tally, cases);
}

/// Encoded-signature truncation and extension at the text level (lengths that are not valid
/// base64url included).
fn signature_text_resize(cases: u32) {
    let tally = Tally::default();
    let extra = prop::collection::vec(prop::sample::select(B64URL).prop_map(char::from), 1..16);
    let strategy = (
        0..FIXTURE.tokens.len(),
        any::<prop::sample::Index>(),
        prop::option::of(extra),
    );
    run(cases, strategy, |(which, cut, extend)| {
        let (alg, token) = &FIXTURE.tokens[which];
        let start = signature_start(token);
        let tampered = match &extend {
            // Append base64url characters to the encoded signature.
            Some(extra) => {
                let mut t = token.clone();
                t.extend(extra.iter());
                t
            }
            // Cut the token anywhere inside or right before the signature section.
            None => token[..start - 1 + cut.index(token.len() - start + 1)].to_owned(),
        };
        assert_rejected(
            &tampered,
            &format!("{alg}: signature cut {cut:?} / extended {extend:?}"),
            &tally,
        )
    });
    assert_reached_signature_check("signature resize", &tally, cases);
}

/// Strings over the JWS alphabet (and its non-url-safe cousins).
fn parse_and_verify_never_panic(cases: u32) {
    let tally = Tally::default();
    run(cases, "[A-Za-z0-9_\\-.=+/]{0,400}", |s| {
        if let Ok(t) = UnverifiedToken::parse(&s, DEFAULT_MAX_TOKEN_SIZE) {
            let _ = (
                t.header().alg(),
                t.unverified_issuer(),
                t.unverified_claims(),
            );
        }
        assert_rejected(&s, "random JWS-alphabet string", &tally)
    });
    run(cases, any::<String>(), |s| {
        let _ = UnverifiedToken::parse(&s, DEFAULT_MAX_TOKEN_SIZE);
        assert_rejected(&s, "random string", &tally)
    });
    tally.report("arbitrary strings", "");
}

/// Well-formed tokens from arbitrary header and claim values, with a junk signature: they parse
/// deeper than random strings, and none verifies.
fn structured_junk_never_verifies(cases: u32) {
    let tally = Tally::default();
    let alg = prop::sample::select(vec![
        json!("RS256"),
        json!("ES256"),
        json!("EdDSA"),
        json!("PS256"),
        json!("ES384"),
        json!("none"),
        json!("HS256"),
        json!(null),
        json!(7),
    ]);
    let kid = prop::sample::select(vec![
        Some(json!("tamper-RS256")),
        Some(json!("tamper-ES256")),
        Some(json!("tamper-EdDSA")),
        Some(json!("unknown")),
        Some(json!(5)),
        None,
    ]);
    let value = prop_oneof![
        Just(json!(ISSUER)),
        Just(json!("kafka")),
        Just(json!(["x", "kafka"])),
        (0u64..4_000_000_000).prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,80}".prop_map(Value::String),
        Just(Value::Null),
    ];
    let claim_name = prop::sample::select(vec!["iss", "sub", "aud", "exp", "nbf", "iat", "jti"]);
    let claims = prop::collection::vec((claim_name, value), 0..8);
    let sig = prop::collection::vec(any::<u8>(), 0..300);
    let strategy = (0..FIXTURE.tokens.len(), alg, kid, claims, sig);
    run(cases, strategy, |(which, alg, kid, claims, sig)| {
        let mut header = Map::new();
        header.insert("alg".to_owned(), alg);
        if let Some(kid) = kid {
            header.insert("kid".to_owned(), kid);
        }
        let claims: Map<String, Value> =
            claims.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        // A real signature over a different message: the signing key is right, the bytes are not.
        let (_, donor) = &FIXTURE.tokens[which];
        let donor_sig = &donor[signature_start(donor)..];
        let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let input = format!(
            "{}.{}",
            b64(Value::Object(header)),
            b64(Value::Object(claims))
        );
        assert_rejected(
            &format!("{input}.{}", URL_SAFE_NO_PAD.encode(&sig)),
            "junk signature",
            &tally,
        )?;
        assert_rejected(
            &format!("{input}.{donor_sig}"),
            "transplanted signature",
            &tally,
        )
    });
    assert!(
        tally.report("structured junk", "bad_signature") > 0,
        "structured junk: no case reached the signature check"
    );
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn untouched_tokens_verify_for_every_algorithm() {
    untouched_tokens_verify();
}

#[test]
fn encode_jws_tokens_verify_and_resist_header_edits() {
    // The same properties hold for a token made by `encode_jws` from explicit maps.
    let key = SigningKey::generate(SigningAlg::EdDSA, "tamper-EdDSA");
    let mut header = Map::new();
    header.insert("alg".to_owned(), json!("EdDSA"));
    header.insert("kid".to_owned(), json!("tamper-EdDSA"));
    let claims: Map<String, Value> = serde_json::from_value(json!({
        "iss": ISSUER, "aud": "kafka", "iat": ISSUED_AT, "exp": ISSUED_AT + 600,
    }))
    .expect("an object");
    let token = encode_jws(&header, &claims, &key);
    let keys = KeySet::from_jwks(json!({ "keys": [key.public_jwk()] }).to_string().as_bytes())
        .expect("one Ed25519 key");
    let policy = &FIXTURE.policy;
    let now = UnixTime::from_secs(NOW);
    verify(&token, &keys, policy, now).expect("the encode_jws token verifies");

    // Re-encoding an edited header with the old signature never verifies.
    for (name, value) in [
        ("typ", json!("JWT")),
        ("kid", json!("other")),
        ("alg", json!("ES256")),
        ("jku", json!("https://evil.test/jwks")),
    ] {
        let mut edited = header.clone();
        edited.insert(name.to_owned(), value);
        let other = encode_jws(&edited, &claims, &key);
        let forged = format!(
            "{}{}",
            &other[..signature_start(&other)],
            &token[signature_start(&token)..]
        );
        assert!(verify(&forged, &keys, policy, now).is_err(), "{name}");
    }
}

#[test]
fn signatures_do_not_transfer_between_tokens() {
    let tokens = &FIXTURE.tokens;
    for (a, ta) in tokens {
        for (b, tb) in tokens {
            if a == b {
                continue;
            }
            let forged = format!(
                "{}{}",
                &ta[..signature_start(ta)],
                &tb[signature_start(tb)..]
            );
            assert!(check(&forged).is_err(), "{a} input with {b} signature");
        }
    }
}

#[test]
fn signing_input_byte_tamper_never_verifies() {
    untouched_tokens_verify();
    signing_input_tamper(CASES);
}

#[test]
fn signature_char_tamper_never_verifies() {
    untouched_tokens_verify();
    signature_char_tamper(CASES);
}

#[test]
fn signature_bytes_tamper_never_verifies() {
    untouched_tokens_verify();
    signature_bytes_tamper(CASES);
}

#[test]
fn signature_truncation_and_extension_never_verify() {
    untouched_tokens_verify();
    signature_text_resize(CASES);
}

#[test]
fn arbitrary_strings_never_panic() {
    parse_and_verify_never_panic(CASES);
}

#[test]
fn structured_tokens_with_junk_signatures_never_verify() {
    structured_junk_never_verifies(CASES);
}

#[test]
#[ignore = "heavy: tens of thousands of cases per property"]
fn tamper_heavy() {
    untouched_tokens_verify();
    signing_input_tamper(HEAVY_CASES);
    signature_char_tamper(HEAVY_CASES);
    signature_bytes_tamper(HEAVY_CASES);
    signature_text_resize(HEAVY_CASES);
}

#[test]
#[ignore = "heavy: tens of thousands of cases per property"]
fn never_panic_heavy() {
    parse_and_verify_never_panic(HEAVY_CASES);
    structured_junk_never_verifies(HEAVY_CASES);
}
