//! Writes the seed corpora under `fuzz/seeds/<target>/`: real tokens signed by the fixed keys of
//! `fuzz_targets/common.rs` (they verify against the targets' key set at their fixed clock), broken
//! variants of them, and JWKS documents covering every key type and skip reason.
//!
//! Run from `fuzz/`: `cargo run --example gen_seeds`. ECDSA and RSA key generation are randomized,
//! so a rerun rewrites some files with different (equally good) bytes.

#[path = "../fuzz_targets/common.rs"]
mod common;

use std::fs;
use std::path::{Path, PathBuf};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair as _, RsaKeyPair, RsaPublicKeyComponents,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use common::{AUDIENCE, ED25519_SEED, ISSUER, JWKS, NOW, P256_D, P256_X, P256_Y};

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).expect("base64url")
}

enum Signer {
    Ed(Ed25519KeyPair),
    Es(EcdsaKeyPair),
}

impl Signer {
    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match self {
            Signer::Ed(k) => k.sign(msg).as_ref().to_vec(),
            Signer::Es(k) => k
                .sign(&SystemRandom::new(), msg)
                .expect("ECDSA signing")
                .as_ref()
                .to_vec(),
        }
    }
}

fn token(header: &Value, claims: &Value, signer: &Signer) -> String {
    token_raw(&header.to_string(), &claims.to_string(), signer)
}

fn token_raw(header: &str, claims: &str, signer: &Signer) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let sig = signer.sign(input.as_bytes());
    format!("{input}.{}", b64(sig))
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) {
    fs::write(dir.join(name), contents).expect("write seed");
}

fn main() {
    let root = std::env::args().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds"),
        PathBuf::from,
    );
    let now = NOW.as_secs();

    // --- token_parse -------------------------------------------------------------------------
    let dir = root.join("token_parse");
    fs::create_dir_all(&dir).expect("mkdir");
    let ed = Signer::Ed(Ed25519KeyPair::from_seed_unchecked(&ED25519_SEED).expect("seed"));
    let point = [vec![4u8], unb64(P256_X), unb64(P256_Y)].concat();
    let es = Signer::Es(
        EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &unb64(P256_D),
            &point,
        )
        .expect("the fixed P-256 key"),
    );
    let claims = json!({
        "iss": ISSUER, "sub": "svc-orders", "aud": AUDIENCE,
        "iat": now - 60, "exp": now + 3600, "jti": "seed-1", "scope": "kafka.produce kafka.consume",
    });
    let ed_h = json!({"alg": "EdDSA", "kid": "ed1", "typ": "JWT"});
    let es_h = json!({"alg": "ES256", "kid": "es1", "typ": "JWT"});

    let valid_ed = token(&ed_h, &claims, &ed);
    write(&dir, "valid_ed25519", &valid_ed);
    write(&dir, "valid_es256", token(&es_h, &claims, &es));
    write(
        &dir,
        "valid_ed25519_no_kid",
        token(&json!({"alg": "EdDSA"}), &claims, &ed),
    );
    write(
        &dir,
        "valid_es256_no_kid",
        token(&json!({"alg": "ES256"}), &claims, &es),
    );
    write(
        &dir,
        "valid_rich_claims",
        token(
            &json!({"alg": "EdDSA", "kid": "ed1", "typ": "at+jwt", "jku": "https://evil.test/jwks"}),
            &json!({
                "iss": ISSUER, "sub": "svc-é-✓", "aud": ["other", AUDIENCE],
                "iat": now - 10, "nbf": now + 20, "exp": (now + 600) as f64 + 0.5,
                "groups": ["a", "b"], "ext": {"tenant": {"id": 7, "tags": [null, true, 1.5e3]}},
            }),
            &ed,
        ),
    );
    let mut bad_sig = valid_ed.clone().into_bytes();
    let last = bad_sig.len() - 5;
    bad_sig[last] = if bad_sig[last] == b'A' { b'B' } else { b'A' };
    write(&dir, "bad_signature", bad_sig);
    let time_cases = [
        (
            "expired",
            json!({"iss": ISSUER, "aud": AUDIENCE, "exp": now - 31}),
        ),
        (
            "exp_at_skew",
            json!({"iss": ISSUER, "aud": AUDIENCE, "exp": now - 30}),
        ),
        (
            "not_yet_valid",
            json!({"iss": ISSUER, "aud": AUDIENCE, "exp": now + 600, "nbf": now + 31}),
        ),
        (
            "issued_in_future",
            json!({"iss": ISSUER, "aud": AUDIENCE, "exp": now + 600, "iat": now + 31}),
        ),
        (
            "wrong_issuer",
            json!({"iss": "https://idp.fuzz.test/", "aud": AUDIENCE, "exp": now + 600}),
        ),
        (
            "wrong_audience",
            json!({"iss": ISSUER, "aud": ["x", "y"], "exp": now + 600}),
        ),
        ("no_exp", json!({"iss": ISSUER, "aud": AUDIENCE})),
        (
            "exp_string",
            json!({"iss": ISSUER, "aud": AUDIENCE, "exp": "1700000600"}),
        ),
        (
            "sub_number",
            json!({"iss": ISSUER, "aud": AUDIENCE, "exp": now + 600, "sub": 5}),
        ),
    ];
    for (name, claims) in time_cases {
        write(&dir, name, token(&ed_h, &claims, &ed));
    }
    // Valid signatures, unacceptable headers.
    let header_cases = [
        (
            "crit",
            json!({"alg": "EdDSA", "kid": "ed1", "crit": ["exp"]}),
        ),
        ("alg_none", json!({"alg": "none", "kid": "ed1"})),
        ("alg_hs256", json!({"alg": "HS256", "kid": "ed1"})),
        ("alg_mismatch", json!({"alg": "ES256", "kid": "ed1"})),
        ("unknown_kid", json!({"alg": "EdDSA", "kid": "nope"})),
        ("kid_number", json!({"alg": "EdDSA", "kid": 1})),
        ("kid_null", json!({"alg": "EdDSA", "kid": null})),
    ];
    for (name, header) in header_cases {
        write(&dir, name, token(&header, &claims, &ed));
    }
    // The crate's doc example and a few malformed shapes.
    write(
        &dir,
        "doc_example",
        "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL2lkcCJ9.c2ln",
    );
    let (head, _) = valid_ed.rsplit_once('.').expect("three sections");
    write(&dir, "empty_signature", format!("{head}."));
    write(&dir, "four_sections", format!("{valid_ed}.c2ln"));
    write(&dir, "padded", format!("{valid_ed}=="));
    write(
        &dir,
        "payload_array",
        format!("{}.{}.c2ln", b64(ed_h.to_string()), b64("[1]")),
    );
    // A number beyond f64 in an unregistered claim (serde_json's `Value` cannot hold it).
    write(
        &dir,
        "huge_number_claim",
        token_raw(
            &ed_h.to_string(),
            &format!(
                r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{},"big":1e400}}"#,
                now + 600
            ),
            &ed,
        ),
    );

    // Self-check: the `valid_*` seeds verify against the targets' key set; show every outcome.
    let fx = common::fixture();
    let mut names: Vec<_> = fs::read_dir(&dir)
        .expect("read seeds")
        .map(|e| e.expect("dir entry").path())
        .collect();
    names.sort();
    for path in names {
        let token = fs::read_to_string(&path).expect("seed is UTF-8");
        let name = path.file_name().expect("a file").to_string_lossy();
        let outcome = match poolgate::verify(&token, &fx.keys, &fx.policy, NOW) {
            Ok(v) => format!("ok ({})", v.algorithm()),
            Err(e) => format!("{}: {e}", e.code()),
        };
        println!("token_parse/{name}: {outcome}");
        if name.starts_with("valid_") {
            assert!(outcome.starts_with("ok"), "{name}: {outcome}");
        }
    }

    // --- jwks_parse --------------------------------------------------------------------------
    let dir = root.join("jwks_parse");
    fs::create_dir_all(&dir).expect("mkdir");
    write(&dir, "fixed_keys", JWKS);
    write(
        &dir,
        "doc_example",
        r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"ed1","use":"sig","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},{"kty":"oct","kid":"h1","k":"c2VjcmV0"}]}"#,
    );
    let rsa = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("RSA keygen");
    let rsa = RsaPublicKeyComponents::<Vec<u8>>::from(rsa.public_key());
    let (n, e) = (b64(&rsa.n), b64(&rsa.e));
    let p384 = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).expect("P-384 keygen");
    let p384 = p384.public_key().as_ref();
    let (x384, y384) = (b64(&p384[1..49]), b64(&p384[49..97]));
    write(
        &dir,
        "every_type",
        json!({"keys": [
            {"kty": "RSA", "kid": "r1", "use": "sig", "alg": "RS256", "n": n, "e": e},
            {"kty": "RSA", "kid": "r2", "alg": "PS384", "key_ops": ["verify"], "n": n, "e": e},
            {"kty": "RSA", "kid": "r3", "n": n, "e": e},
            {"kty": "EC", "crv": "P-384", "kid": "p384", "alg": "ES384", "x": x384, "y": y384},
            {"kty": "EC", "crv": "P-256", "kid": "es1", "x": P256_X, "y": P256_Y},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed1", "x": common::ED25519_X},
        ]})
        .to_string(),
    );
    let weak_n = {
        let mut n = vec![0xffu8; 128];
        n[127] = 0xfb;
        b64(n)
    };
    write(
        &dir,
        "every_skip_reason",
        json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "kid": "ok", "x": common::ED25519_X},
            {"kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc", "x": common::ED25519_X},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ops", "key_ops": ["encrypt"], "x": common::ED25519_X},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ops2", "key_ops": "verify", "x": common::ED25519_X},
            {"kty": "OKP", "crv": "Ed25519", "kid": "hs", "alg": "HS256", "x": common::ED25519_X},
            {"kty": "OKP", "crv": "Ed25519", "kid": "mismatch", "alg": "RS256", "x": common::ED25519_X},
            {"kty": "OKP", "crv": "Ed25519", "kid": "k".repeat(300), "x": common::ED25519_X},
            {"kty": "OKP", "crv": "Ed25519", "kid": 7, "x": common::ED25519_X},
            {"kty": "OKP", "crv": "X25519", "kid": "x25519", "x": common::ED25519_X},
            {"kty": "OKP", "crv": "Ed25519", "kid": "short", "x": "AAAA"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "bad64", "x": "!!"},
            {"kty": "oct", "kid": "h1", "k": "c2VjcmV0"},
            {"kty": "XYZ", "kid": "xyz"},
            {"kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA"},
            {"kty": "EC", "crv": "P-256", "kid": "offcurve", "x": P256_X, "y": P256_X},
            {"kty": "EC", "kid": "nocrv", "x": P256_X, "y": P256_Y},
            {"kty": "RSA", "kid": "weak", "n": weak_n, "e": "AQAB"},
            {"kty": "RSA", "kid": "noe", "n": n},
            17,
            null,
        ]})
        .to_string(),
    );
    let many: Vec<Value> = (0..105)
        .map(|i| json!({"kty": "OKP", "crv": "Ed25519", "kid": format!("k{i}"), "x": common::ED25519_X}))
        .collect();
    write(&dir, "too_many", json!({ "keys": many }).to_string());
    write(
        &dir,
        "no_usable_key",
        r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#,
    );
    write(&dir, "empty", r#"{"keys":[]}"#);
    write(&dir, "not_a_jwks", r#"{"keys":{}}"#);

    println!("seeds written under {}", root.display());
}
