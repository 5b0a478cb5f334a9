//! Full validation through poolgate's public API vs the bare signature check of the same token
//! on the same key (aws-lc-rs `ParsedPublicKey::verify_sig`, key parsed once), per algorithm.
//!
//! Run: `cargo bench --bench validation`. After criterion's own report, prints the ratios
//! full / bare measured in this run (the target is at most 1.10x).

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair, ParsedPublicKey, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use std::hint::black_box;

use criterion::Criterion;
use futures_util::FutureExt as _;
use poolgate::{KeySet, KeyStore, Policy, Provider, SystemClock, UnixTime, Validator, verify};
use serde_json::json;

const ISSUER: &str = "https://idp.example.com/oauth2";
const NOW: u64 = 1_800_000_000;

struct Case {
    name: &'static str,
    token: String,
    jwks: String,
    bare_key: ParsedPublicKey,
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn token(alg: &str, kid: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let header = json!({"alg": alg, "typ": "JWT", "kid": kid});
    // A realistic client_credentials access token.
    let claims = json!({
        "iss": ISSUER, "sub": "svc-analytics-reader", "aud": ["kafka", "schema-registry"],
        "iat": NOW - 60, "exp": NOW + 3540, "nbf": NOW - 60,
        "jti": "4f1c2d3e-5a6b-7c8d-9e0f-a1b2c3d4e5f6", "client_id": "svc-analytics-reader",
        "scope": "kafka.read kafka.write", "groups": ["analytics", "ops"], "tenant": "acme",
    });
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

fn cases() -> Vec<Case> {
    let rng = SystemRandom::new();
    let mut out = Vec::new();

    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let n = rsa
        .public_key()
        .modulus()
        .big_endian_without_leading_zero()
        .to_vec();
    let e = rsa
        .public_key()
        .exponent()
        .big_endian_without_leading_zero()
        .to_vec();
    let t = token("RS256", "rsa-1", |m| {
        let mut s = vec![0; rsa.public_modulus_len()];
        rsa.sign(&sig::RSA_PKCS1_SHA256, &rng, m, &mut s).unwrap();
        s
    });
    let bare = sig::RsaPublicKeyComponents { n: &n, e: &e }
        .to_parsed_public_key(&sig::RSA_PKCS1_2048_8192_SHA256)
        .unwrap();
    out.push(Case {
        name: "RS256",
        token: t,
        jwks: json!({"keys":[{"kty":"RSA","kid":"rsa-1","use":"sig","alg":"RS256","n":b64(&n),"e":b64(&e)}]}).to_string(),
        bare_key: bare,
    });

    let ec = EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let point = ec.public_key().as_ref().to_vec();
    let t = token("ES256", "ec-1", |m| {
        ec.sign(&rng, m).unwrap().as_ref().to_vec()
    });
    out.push(Case {
        name: "ES256",
        token: t,
        jwks: json!({"keys":[{"kty":"EC","crv":"P-256","kid":"ec-1","use":"sig","alg":"ES256","x":b64(&point[1..33]),"y":b64(&point[33..])}]}).to_string(),
        bare_key: ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, &point).unwrap(),
    });

    let ed = Ed25519KeyPair::generate().unwrap();
    let x = ed.public_key().as_ref().to_vec();
    let t = token("EdDSA", "ed-1", |m| ed.sign(m).as_ref().to_vec());
    out.push(Case {
        name: "EdDSA",
        token: t,
        jwks: json!({"keys":[{"kty":"OKP","crv":"Ed25519","kid":"ed-1","use":"sig","alg":"EdDSA","x":b64(&x)}]}).to_string(),
        bare_key: ParsedPublicKey::new(&sig::ED25519, &x).unwrap(),
    });
    out
}

fn bench(c: &mut Criterion) {
    let policy = Policy::builder(ISSUER)
        .audience("kafka")
        .require_claims(["sub"])
        .build()
        .unwrap();
    let now = UnixTime::from_secs(NOW);
    for case in cases() {
        let keys = KeySet::from_jwks(case.jwks.as_bytes()).unwrap();
        let store = KeyStore::fixed(ISSUER, keys.clone(), Arc::new(SystemClock));
        let validator =
            Validator::new(vec![Provider::new(policy.clone(), store).unwrap()]).unwrap();
        let (input, sig64) = case.token.rsplit_once('.').unwrap();
        let signature = B64.decode(sig64).unwrap();
        // Sanity: every path accepts the token.
        assert!(
            case.bare_key
                .verify_sig(input.as_bytes(), &signature)
                .is_ok()
        );
        verify(&case.token, &keys, &policy, now).unwrap();
        validator
            .validate_at(&case.token, now)
            .now_or_never()
            .unwrap()
            .unwrap();

        let mut g = c.benchmark_group(case.name);
        g.bench_function("bare_signature", |b| {
            b.iter(|| {
                case.bare_key
                    .verify_sig(black_box(input.as_bytes()), black_box(&signature))
                    .unwrap()
            })
        });
        g.bench_function("verify", |b| {
            b.iter(|| verify(black_box(&case.token), &keys, &policy, now).unwrap())
        });
        g.bench_function("validator", |b| {
            b.iter(|| {
                validator
                    .validate_at(black_box(&case.token), now)
                    .now_or_never()
                    .unwrap()
                    .unwrap()
            })
        });
        g.finish();
    }
}

/// Reads criterion's estimates for this run and prints full/bare ratios.
fn print_ratios() {
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned());
    let mean = |group: &str, id: &str| -> Option<f64> {
        let path = format!("{dir}/criterion/{group}/{id}/new/estimates.json");
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        v["mean"]["point_estimate"].as_f64()
    };
    println!("\nratios (mean, this run; target <= 1.10x):");
    for alg in ["RS256", "ES256", "EdDSA"] {
        let Some(bare) = mean(alg, "bare_signature") else {
            continue;
        };
        for id in ["verify", "validator"] {
            if let Some(full) = mean(alg, id) {
                println!(
                    "  {alg:6} {id:10} {:8.2} us vs bare {:8.2} us = {:.3}x",
                    full / 1000.0,
                    bare / 1000.0,
                    full / bare
                );
            }
        }
    }
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
    print_ratios();
}
