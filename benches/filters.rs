//! Pool filters: the cost of one token's trip through the identity pools, against the cost of
//! the RS256 signature check (aws-lc-rs `ParsedPublicKey::verify_sig`, key parsed once) that
//! precedes it.
//!
//! Run: `cargo bench --bench filters`. After criterion's own report, prints each measurement
//! as a ratio of the signature check measured in this run.

use std::hint::black_box;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    KeyPair, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents,
};
use criterion::{BenchmarkId, Criterion};
use poolgate::filter::{ClaimsContext, Filter, FilterIndex, FilterOutcome};
use serde_json::{Map, Value, json};

const ISSUER: &str = "https://idp.example.com/oauth2";

/// A realistic client_credentials access token's claims (12 claims).
fn claims(sub: &str) -> Map<String, Value> {
    let v = json!({
        "iss": ISSUER, "sub": sub, "aud": ["kafka", "schema-registry"],
        "iat": 1_800_000_000u64 - 60, "exp": 1_800_000_000u64 + 3540, "nbf": 1_800_000_000u64 - 60,
        "jti": "4f1c2d3e-5a6b-7c8d-9e0f-a1b2c3d4e5f6", "client_id": sub,
        "scope": "kafka.read kafka.write", "groups": ["analytics", "ops"], "tenant": "acme",
        "ext": {"team": "data", "cost_center": 4711},
    });
    v.as_object().cloned().unwrap()
}

fn sub(i: usize) -> String {
    format!("svc-{i:04}")
}

/// `n` pools of the common shape; one in ten also requires the `ops` group.
fn pools(n: usize) -> Vec<Filter> {
    (0..n)
        .map(|i| {
            let mut src = format!(r#"claims.iss == "{ISSUER}" && claims.sub == "{}""#, sub(i));
            if i % 10 == 0 {
                src.push_str(r#" && "ops" in claims.groups"#);
            }
            Filter::compile(&src).unwrap()
        })
        .collect()
}

/// Pool selection as the broker does it: index candidates, then evaluate only those.
fn select(
    index: &FilterIndex,
    filters: &[Filter],
    claims: &Map<String, Value>,
    ctx: &ClaimsContext,
) -> Vec<usize> {
    index
        .candidates(claims)
        .into_iter()
        .filter(|&i| filters[i].evaluate(ctx) == FilterOutcome::Matched)
        .collect()
}

fn bench(c: &mut Criterion) {
    // RS256 signature baseline.
    let rng = SystemRandom::new();
    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let message = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzdmMtMDAwMCJ9";
    let mut signature = vec![0; rsa.public_modulus_len()];
    rsa.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
        .unwrap();
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
    let public = RsaPublicKeyComponents { n: &n, e: &e }
        .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
        .unwrap();
    public.verify_sig(message, &signature).unwrap();
    c.bench_function("rs256_verify_sig", |b| {
        b.iter(|| {
            public
                .verify_sig(black_box(message), black_box(&signature))
                .unwrap()
        })
    });

    let token = claims(&sub(500));
    let ctx = ClaimsContext::new(&token);

    // (a) claims → CEL context, once per token.
    c.bench_function("claims_context_new", |b| {
        b.iter(|| ClaimsContext::new(black_box(&token)))
    });

    // (b) one evaluation of a typical filter (it matches).
    let typical = Filter::compile(&format!(
        r#"claims.iss == "{ISSUER}" && claims.sub == "{}""#,
        sub(500)
    ))
    .unwrap();
    assert_eq!(typical.evaluate(&ctx), FilterOutcome::Matched);
    c.bench_function("filter_evaluate", |b| {
        b.iter(|| typical.evaluate(black_box(&ctx)))
    });

    // (c) pool selection for 1..1000 pools of the common shape.
    let mut g = c.benchmark_group("select");
    for n in [1usize, 10, 100, 1000] {
        let filters = pools(n);
        let index = FilterIndex::build(filters.iter().enumerate());
        let token = claims(&sub(n / 2));
        let ctx = ClaimsContext::new(&token);
        assert_eq!(select(&index, &filters, &token, &ctx), [n / 2]);
        g.bench_with_input(BenchmarkId::new("indexed", n), &n, |b, _| {
            b.iter(|| select(&index, &filters, black_box(&token), black_box(&ctx)))
        });
        if n == 1000 {
            g.bench_with_input(BenchmarkId::new("indexed_with_context", n), &n, |b, _| {
                b.iter(|| {
                    let ctx = ClaimsContext::new(black_box(&token));
                    select(&index, &filters, &token, &ctx)
                })
            });
            g.bench_with_input(BenchmarkId::new("naive", n), &n, |b, _| {
                b.iter(|| {
                    filters
                        .iter()
                        .enumerate()
                        .filter(|(_, f)| f.evaluate(black_box(&ctx)).is_match())
                        .map(|(i, _)| i)
                        .collect::<Vec<_>>()
                })
            });
        }
    }
    // (d) filters the index cannot narrow: every one is evaluated.
    let unindexable: Vec<Filter> = (0..100)
        .map(|i| Filter::compile(&format!(r#"claims.sub.startsWith("svc-{i:02}")"#)).unwrap())
        .collect();
    let index = FilterIndex::build(unindexable.iter().enumerate());
    assert_eq!(index.unindexed().len(), 100);
    g.bench_with_input(
        BenchmarkId::new("unindexable_startsWith", 100),
        &100,
        |b, _| b.iter(|| select(&index, &unindexable, black_box(&token), black_box(&ctx))),
    );
    g.finish();
}

/// Reads criterion's estimates for this run and prints them against the signature check.
fn print_ratios() {
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned());
    let mean = |id: &str| -> Option<f64> {
        let path = format!("{dir}/criterion/{id}/new/estimates.json");
        let v: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        v["mean"]["point_estimate"].as_f64()
    };
    let Some(rs256) = mean("rs256_verify_sig") else {
        return;
    };
    println!(
        "\nmean, this run, vs the RS256 signature check ({:.2} us):",
        rs256 / 1000.0
    );
    for (id, label, per) in [
        ("claims_context_new", "ClaimsContext::new (12 claims)", 1.0),
        ("filter_evaluate", "Filter::evaluate (iss && sub)", 1.0),
        ("select/indexed/1", "select, 1 pool", 1.0),
        ("select/indexed/10", "select, 10 pools", 1.0),
        ("select/indexed/100", "select, 100 pools", 1.0),
        ("select/indexed/1000", "select, 1000 pools", 1.0),
        (
            "select/indexed_with_context/1000",
            "context + select, 1000 pools",
            1.0,
        ),
        ("select/naive/1000", "naive loop, 1000 pools", 1.0),
        (
            "select/unindexable_startsWith/100",
            "startsWith, 100 pools",
            1.0,
        ),
        (
            "select/unindexable_startsWith/100",
            "  per unindexable pool",
            100.0,
        ),
    ] {
        if let Some(t) = mean(id) {
            let t = t / per;
            println!("  {label:32} {:10.3} us = {:7.3}x", t / 1000.0, t / rs256);
        }
    }
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
    print_ratios();
}
