//! Integration tests of the test issuer itself, over real HTTP on 127.0.0.1.
#![cfg(feature = "testkit")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::FutureExt as _;
use poolgate::testkit::{
    Client, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Endpoint, Fault, GARBAGE_BODY, IssuerConfig,
    SigningAlg, SigningKey, TestIssuer, WRONG_ISSUER,
};
use poolgate::{ManualClock, UnixTime};
use serde_json::{Map, Value, json};

/// A guard against a broken test hanging forever; never hit when the issuer works.
const GUARD: Duration = Duration::from_secs(30);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(GUARD)
        .build()
        .expect("reqwest client")
}

async fn get_json(http: &reqwest::Client, url: url::Url) -> (reqwest::StatusCode, Value) {
    let resp = http.get(url.as_str()).send().await.expect("request");
    let status = resp.status();
    let body = resp.bytes().await.expect("body");
    (status, serde_json::from_slice(&body).expect("JSON body"))
}

fn b64d(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).expect("base64url")
}

fn jwk_str<'a>(jwk: &'a Value, name: &str) -> &'a str {
    jwk[name]
        .as_str()
        .unwrap_or_else(|| panic!("JWK member {name}"))
}

/// Splits a compact JWS into (header, claims, signing input, signature).
fn parse_jws(token: &str) -> (Map<String, Value>, Map<String, Value>, String, Vec<u8>) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "compact JWS has 3 parts: {token}");
    assert!(!token.contains('='), "no base64 padding");
    let header = serde_json::from_slice(&b64d(parts[0])).expect("header JSON");
    let claims = serde_json::from_slice(&b64d(parts[1])).expect("claims JSON");
    (
        header,
        claims,
        format!("{}.{}", parts[0], parts[1]),
        b64d(parts[2]),
    )
}

/// Verifies `token` with aws-lc-rs against the JWK in `jwks` named by its `kid`.
fn verify_against_jwks(token: &str, jwks: &Value) -> Map<String, Value> {
    let (header, claims, input, sig) = parse_jws(token);
    let kid = header["kid"].as_str().expect("kid header");
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys array")
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("kid {kid} is published"));
    assert_eq!(jwk["alg"], header["alg"]);
    verify_with_jwk(jwk, input.as_bytes(), &sig).expect("signature verifies");
    claims
}

fn verify_with_jwk(
    jwk: &Value,
    msg: &[u8],
    sig: &[u8],
) -> Result<(), aws_lc_rs::error::Unspecified> {
    match jwk_str(jwk, "kty") {
        "RSA" => {
            let key = RsaPublicKeyComponents {
                n: b64d(jwk_str(jwk, "n")),
                e: b64d(jwk_str(jwk, "e")),
            };
            key.verify(
                &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
                msg,
                sig,
            )
        }
        "EC" => {
            assert_eq!(jwk_str(jwk, "crv"), "P-256");
            let mut point = vec![0x04];
            point.extend(b64d(jwk_str(jwk, "x")));
            point.extend(b64d(jwk_str(jwk, "y")));
            assert_eq!(point.len(), 65);
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).verify(msg, sig)
        }
        "OKP" => {
            assert_eq!(jwk_str(jwk, "crv"), "Ed25519");
            UnparsedPublicKey::new(&signature::ED25519, b64d(jwk_str(jwk, "x"))).verify(msg, sig)
        }
        other => panic!("unexpected kty {other}"),
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

async fn post_token(
    http: &reqwest::Client,
    issuer: &TestIssuer,
    pairs: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = http
        .post(issuer.token_url().as_str())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs));
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let resp = req.send().await.expect("token request");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.expect("body");
    (
        status,
        headers,
        serde_json::from_slice(&body).expect("JSON"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn urls_and_discovery_document() {
    let issuer = TestIssuer::start().await.expect("start");
    let port = issuer.addr().port();
    assert_eq!(issuer.issuer(), format!("http://127.0.0.1:{port}"));
    assert!(!issuer.issuer().ends_with('/'));
    assert_eq!(
        issuer.discovery_url().as_str(),
        format!("{}/.well-known/openid-configuration", issuer.issuer())
    );
    assert_eq!(
        issuer.jwks_url().as_str(),
        format!("{}/jwks", issuer.issuer())
    );
    assert_eq!(
        issuer.token_url().as_str(),
        format!("{}/token", issuer.issuer())
    );

    let (status, doc) = get_json(&client(), issuer.discovery_url()).await;
    assert_eq!(status, 200);
    assert_eq!(doc["issuer"], issuer.issuer());
    assert_eq!(doc["jwks_uri"], issuer.jwks_url().as_str());
    assert_eq!(doc["token_endpoint"], issuer.token_url().as_str());
    assert_eq!(doc["grant_types_supported"], json!(["client_credentials"]));
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["RS256", "ES256", "EdDSA"])
    );
    assert_eq!(doc["response_types_supported"], json!(["token"]));
    assert_eq!(doc["subject_types_supported"], json!(["public"]));
    assert_eq!(issuer.counts().discovery, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn jwks_lists_one_key_per_algorithm() {
    let issuer = TestIssuer::start().await.expect("start");
    let (status, jwks) = get_json(&client(), issuer.jwks_url()).await;
    assert_eq!(status, 200);
    assert_eq!(jwks, issuer.jwks());
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 3);
    for (jwk, alg) in keys.iter().zip(SigningAlg::ALL) {
        assert_eq!(jwk["alg"], alg.as_str());
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["kid"], issuer.active_key(alg).kid());
        assert_eq!(*jwk, issuer.active_key(alg).public_jwk());
    }
    assert_eq!(keys[0]["kty"], "RSA");
    assert_eq!(b64d(jwk_str(&keys[0], "n")).len(), 256);
    assert_eq!(b64d(jwk_str(&keys[0], "e")), vec![1, 0, 1]);
    assert_eq!(keys[1]["kty"], "EC");
    assert_eq!(keys[1]["crv"], "P-256");
    assert_eq!(b64d(jwk_str(&keys[1], "x")).len(), 32);
    assert_eq!(b64d(jwk_str(&keys[1], "y")).len(), 32);
    assert_eq!(keys[2]["kty"], "OKP");
    assert_eq!(keys[2]["crv"], "Ed25519");
    assert_eq!(b64d(jwk_str(&keys[2], "x")).len(), 32);
    assert_eq!(issuer.counts().jwks, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn token_endpoint_basic_and_post_auth() {
    let clock = ManualClock::new(UnixTime::from_secs(1_700_000_000));
    let issuer = TestIssuer::start_with(IssuerConfig {
        clock: Arc::new(clock.clone()),
        ..IssuerConfig::default()
    })
    .await
    .expect("start");
    let http = client();
    let (_, jwks) = get_json(&http, issuer.jwks_url()).await;

    let grant = [("grant_type", "client_credentials")];
    let (status, headers, basic) = post_token(
        &http,
        &issuer,
        &grant,
        Some((DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(basic["token_type"], "Bearer");
    assert_eq!(basic["expires_in"], 3600);

    let (status, _, post) = post_token(
        &http,
        &issuer,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
            ("scope", "kafka:read kafka:write"),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200);

    for (response, scope) in [(&basic, None), (&post, Some("kafka:read kafka:write"))] {
        let token = response["access_token"].as_str().expect("access_token");
        let (header, ..) = parse_jws(token);
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["kid"], issuer.active_key(SigningAlg::RS256).kid());
        let claims = verify_against_jwks(token, &jwks);
        assert_eq!(claims["iss"], issuer.issuer());
        assert_eq!(claims["sub"], DEFAULT_CLIENT_ID);
        assert_eq!(claims["client_id"], DEFAULT_CLIENT_ID);
        assert_eq!(claims["aud"], "kafka");
        assert_eq!(claims["iat"], 1_700_000_000);
        assert_eq!(claims["exp"], 1_700_003_600);
        assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
        assert_eq!(claims.get("scope").and_then(Value::as_str), scope);
    }
    let jti = |r: &Value| parse_jws(r["access_token"].as_str().expect("token")).1["jti"].clone();
    assert_ne!(jti(&basic), jti(&post));
    assert_eq!(issuer.counts().token, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn token_endpoint_client_claims_and_encoded_basic_credentials() {
    let issuer = TestIssuer::start_with(IssuerConfig {
        signing: vec![SigningAlg::EdDSA, SigningAlg::RS256],
        audience: "broker".to_owned(),
        ..IssuerConfig::default()
    })
    .await
    .expect("start");
    issuer.add_client(
        Client::new("svc:odd id", "s3cr+t/%")
            .claim("sub", json!("principal-7"))
            .claim("pool", json!("ingest"))
            .lifetime(Duration::from_secs(60)),
    );
    let http = client();
    // RFC 6749 2.3.1: id and secret are form-urlencoded before Basic encoding.
    let encoded = form(&[("i", "svc:odd id"), ("s", "s3cr+t/%")]);
    let (id, secret) = encoded
        .split_once('&')
        .map(|(i, s)| (&i[2..], &s[2..]))
        .expect("two pairs");
    let (status, _, body) = post_token(
        &http,
        &issuer,
        &[("grant_type", "client_credentials")],
        Some((id, secret)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 60);
    let token = body["access_token"].as_str().expect("token");
    let (header, ..) = parse_jws(token);
    assert_eq!(header["alg"], "EdDSA", "first configured algorithm signs");
    let claims = verify_against_jwks(token, &issuer.jwks());
    assert_eq!(claims["sub"], "principal-7");
    assert_eq!(claims["client_id"], "svc:odd id");
    assert_eq!(claims["pool"], "ingest");
    assert_eq!(claims["aud"], "broker");
    assert_eq!(
        claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat"),
        60
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn token_endpoint_rejections() {
    let issuer = TestIssuer::start().await.expect("start");
    let http = client();
    let grant = [("grant_type", "client_credentials")];

    let (status, headers, body) =
        post_token(&http, &issuer, &grant, Some((DEFAULT_CLIENT_ID, "wrong"))).await;
    assert_eq!(status, 401);
    assert_eq!(body, json!({"error": "invalid_client"}));
    assert!(
        headers["www-authenticate"]
            .to_str()
            .expect("ascii")
            .starts_with("Basic")
    );

    let (status, _, body) = post_token(
        &http,
        &issuer,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "nobody"),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ],
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body, json!({"error": "invalid_client"}));

    let (status, _, body) = post_token(&http, &issuer, &grant, None).await;
    assert_eq!(status, 401);
    assert_eq!(body, json!({"error": "invalid_client"}));

    let (status, _, body) = post_token(
        &http,
        &issuer,
        &[("grant_type", "password")],
        Some((DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body, json!({"error": "unsupported_grant_type"}));

    let (status, _, body) = post_token(
        &http,
        &issuer,
        &[],
        Some((DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body, json!({"error": "unsupported_grant_type"}));
    assert_eq!(issuer.counts().token, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_publishes_and_signs_with_new_key_and_retire_removes() {
    let issuer = TestIssuer::start().await.expect("start");
    let http = client();
    let old = issuer.active_key(SigningAlg::RS256).kid().to_owned();
    let new = issuer.rotate(SigningAlg::RS256);
    assert_ne!(old, new);
    assert_eq!(issuer.active_key(SigningAlg::RS256).kid(), new);

    let (_, jwks) = get_json(&http, issuer.jwks_url()).await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid"))
        .collect();
    assert_eq!(kids.len(), 4);
    assert!(kids.contains(&old.as_str()) && kids.contains(&new.as_str()));

    let (_, _, body) = post_token(
        &http,
        &issuer,
        &[("grant_type", "client_credentials")],
        Some((DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)),
    )
    .await;
    let token = body["access_token"].as_str().expect("token");
    assert_eq!(parse_jws(token).0["kid"], new.as_str());
    verify_against_jwks(token, &jwks);
    let minted = issuer.mint().sign();
    assert_eq!(parse_jws(&minted).0["kid"], new.as_str());

    issuer.retire(&old);
    let (_, jwks) = get_json(&http, issuer.jwks_url()).await;
    assert_eq!(jwks["keys"].as_array().expect("keys").len(), 3);
    assert!(
        jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .all(|k| k["kid"] != old.as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn minted_tokens_verify_for_every_algorithm() {
    let clock = ManualClock::new(UnixTime::from_secs(1_000));
    let issuer = TestIssuer::start_with(IssuerConfig {
        clock: Arc::new(clock.clone()),
        ..IssuerConfig::default()
    })
    .await
    .expect("start");
    let jwks = issuer.jwks();
    for alg in SigningAlg::ALL {
        let token = issuer.mint().alg(alg).sign();
        let (header, ..) = parse_jws(&token);
        assert_eq!(header["alg"], alg.as_str());
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["kid"], issuer.active_key(alg).kid());
        assert_eq!(header.len(), 3);
        let claims = verify_against_jwks(&token, &jwks);
        assert_eq!(claims["iss"], issuer.issuer());
        assert_eq!(claims["sub"], "svc-test");
        assert_eq!(claims["aud"], "kafka");
        assert_eq!(claims["iat"], 1_000);
        assert_eq!(claims["exp"], 4_600);
        assert!(claims["jti"].is_string());
    }
    let es = issuer.mint().alg(SigningAlg::ES256).sign();
    assert_eq!(parse_jws(&es).3.len(), 64, "fixed-width r || s");

    clock.advance(Duration::from_secs(10));
    let claims = parse_jws(&issuer.mint().sign()).1;
    assert_eq!(claims["iat"], 1_010);
}

#[tokio::test(flavor = "multi_thread")]
async fn minted_tokens_can_be_broken_on_purpose() {
    let issuer = TestIssuer::start().await.expect("start");
    let jwks = issuer.jwks();

    let token = issuer
        .mint()
        .issued_at(UnixTime::from_secs(500))
        .lifetime(Duration::from_secs(20))
        .claim("aud", json!(["kafka", "other"]))
        .claim("custom", json!({"nested": true}))
        .without_claim("jti")
        .header("jku", json!("https://attacker.example/jwks"))
        .header("crit", json!(["exp"]))
        .sign();
    let (header, claims, ..) = parse_jws(&token);
    assert_eq!(header["jku"], "https://attacker.example/jwks");
    assert_eq!(header["crit"], json!(["exp"]));
    assert_eq!(claims["iat"], 500);
    assert_eq!(claims["exp"], 520);
    assert_eq!(claims["aud"], json!(["kafka", "other"]));
    assert_eq!(claims["custom"]["nested"], true);
    assert!(claims.get("jti").is_none());
    verify_against_jwks(&token, &jwks);

    // alg none with an empty signature: "header.claims."
    let none = issuer
        .mint()
        .header("alg", json!("none"))
        .without_header("kid")
        .sign_with_signature(&[]);
    assert!(none.ends_with('.'));
    let (header, ..) = parse_jws(&none);
    assert_eq!(header["alg"], "none");
    assert!(header.get("kid").is_none());

    // Header edits win over the key, whatever the call order.
    let odd = issuer
        .mint()
        .header("kid", json!(5))
        .alg(SigningAlg::EdDSA)
        .sign();
    assert_eq!(parse_jws(&odd).0["kid"], 5);
    assert_eq!(parse_jws(&odd).0["alg"], "EdDSA");

    // A forged token: valid signature from an unpublished key that claims a published kid.
    let forger = Arc::new(SigningKey::generate(
        SigningAlg::RS256,
        issuer.active_key(SigningAlg::RS256).kid(),
    ));
    let forged = issuer.mint().key(forger).sign();
    let (_, _, input, sig) = parse_jws(&forged);
    let published = &jwks["keys"][0];
    assert!(verify_with_jwk(published, input.as_bytes(), &sig).is_err());

    // exp explicitly set wins over iat + lifetime; signing_input matches sign_with_signature.
    let builder = issuer.mint().claim("exp", json!(7));
    let input = builder.signing_input();
    let sig = issuer.active_key(SigningAlg::RS256).sign(input.as_bytes());
    let token = builder.sign_with_signature(&sig);
    assert_eq!(parse_jws(&token).1["exp"], 7);
    verify_against_jwks(&token, &jwks);
}

#[tokio::test(flavor = "multi_thread")]
async fn weak_rsa_key_is_published_and_signs() {
    let der = include_bytes!("../testdata/keys/rsa-1024.pk8.der");
    assert!(
        aws_lc_rs::signature::RsaKeyPair::from_pkcs8(der).is_err(),
        "aws-lc-rs refuses the 1024-bit key, so the testkit signs it itself"
    );
    let issuer = TestIssuer::start().await.expect("start");
    let weak = issuer.publish(SigningKey::weak_rsa_1024("weak-1024"));
    assert_eq!(weak.modulus_bits(), Some(1024));
    assert_eq!(weak.kid(), "weak-1024");

    let (_, jwks) = get_json(&client(), issuer.jwks_url()).await;
    assert_eq!(jwks["keys"].as_array().expect("keys").len(), 4);
    let jwk = &jwks["keys"][3];
    assert_eq!(jwk["kid"], "weak-1024");
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["alg"], "RS256");
    assert_eq!(b64d(jwk_str(jwk, "n")).len(), 128);

    let token = issuer.mint().key(Arc::clone(&weak)).sign();
    let (header, _, input, sig) = parse_jws(&token);
    assert_eq!(header["kid"], "weak-1024");
    assert_eq!(sig.len(), 128);
    verify_against_jwks(&token, &jwks);
    // The standard (2048+) profile refuses it.
    let key = RsaPublicKeyComponents {
        n: b64d(jwk_str(jwk, "n")),
        e: b64d(jwk_str(jwk, "e")),
    };
    assert!(
        key.verify(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            input.as_bytes(),
            &sig
        )
        .is_err()
    );
    // Not active: minting RS256 still uses the strong key.
    assert_ne!(issuer.active_key(SigningAlg::RS256).kid(), "weak-1024");
}

#[tokio::test(flavor = "multi_thread")]
async fn jwks_override_and_max_age() {
    let issuer = TestIssuer::start_with(IssuerConfig {
        max_age: Some(300),
        ..IssuerConfig::default()
    })
    .await
    .expect("start");
    let http = client();
    let resp = http
        .get(issuer.jwks_url().as_str())
        .send()
        .await
        .expect("jwks");
    assert_eq!(resp.headers()["cache-control"], "max-age=300");
    issuer.set_max_age(Some(5));
    let resp = http
        .get(issuer.jwks_url().as_str())
        .send()
        .await
        .expect("jwks");
    assert_eq!(resp.headers()["cache-control"], "max-age=5");
    issuer.set_max_age(None);
    let resp = http
        .get(issuer.jwks_url().as_str())
        .send()
        .await
        .expect("jwks");
    assert!(resp.headers().get("cache-control").is_none());

    let hostile = json!({"keys": [{"kty": "RSA", "kid": 5, "n": "", "e": ""}], "extra": null});
    issuer.set_jwks_override(Some(hostile.clone()));
    assert_eq!(get_json(&http, issuer.jwks_url()).await.1, hostile);
    issuer.set_jwks_override(None);
    let (_, jwks) = get_json(&http, issuer.jwks_url()).await;
    assert_eq!(jwks["keys"].as_array().expect("keys").len(), 3);
    assert_eq!(issuer.counts().jwks, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_down_drops_connections_and_recovers() {
    let issuer = TestIssuer::start().await.expect("start");
    let pooled = client();
    // Open a keep-alive connection before the issuer goes down.
    assert_eq!(get_json(&pooled, issuer.jwks_url()).await.0, 200);

    issuer.set_fault(Fault::Down);
    let err = pooled
        .get(issuer.jwks_url().as_str())
        .send()
        .await
        .expect_err("kept-alive connection is cut");
    assert!(!err.is_timeout(), "{err}");
    let fresh = client();
    for url in [issuer.discovery_url(), issuer.jwks_url()] {
        let err = fresh.get(url.as_str()).send().await.expect_err("down");
        assert!(!err.is_timeout(), "{err}");
    }
    let err = fresh
        .post(issuer.token_url().as_str())
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect_err("Down is listener-wide");
    assert!(!err.is_timeout(), "{err}");
    assert_eq!(issuer.counts().jwks, 1, "no request reached a handler");

    issuer.set_fault(Fault::None);
    assert_eq!(get_json(&pooled, issuer.jwks_url()).await.0, 200);
    assert_eq!(get_json(&fresh, issuer.discovery_url()).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_status_garbage_oversized_wrong_issuer() {
    let issuer = TestIssuer::start().await.expect("start");
    let http = client();

    issuer.set_fault(Fault::Status(503));
    for url in [issuer.discovery_url(), issuer.jwks_url()] {
        let resp = http.get(url.as_str()).send().await.expect("response");
        assert_eq!(resp.status(), 503);
    }
    // The token endpoint is not affected.
    let (status, ..) = post_token(
        &http,
        &issuer,
        &[("grant_type", "client_credentials")],
        Some((DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)),
    )
    .await;
    assert_eq!(status, 200);

    issuer.set_fault(Fault::Garbage);
    for url in [issuer.discovery_url(), issuer.jwks_url()] {
        let resp = http.get(url.as_str()).send().await.expect("response");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/json");
        let body = resp.bytes().await.expect("body");
        assert_eq!(body, GARBAGE_BODY.as_bytes());
        assert!(serde_json::from_slice::<Value>(&body).is_err());
    }

    issuer.set_fault(Fault::Oversized(2_000_000));
    let resp = http
        .get(issuer.jwks_url().as_str())
        .send()
        .await
        .expect("response");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.content_length(), Some(2_000_000));
    let body = resp.bytes().await.expect("body");
    assert_eq!(body.len(), 2_000_000);
    assert!(body.starts_with(b"{\"keys\":[]"));
    assert!(serde_json::from_slice::<Value>(&body).is_ok(), "JSON-ish");

    issuer.set_fault(Fault::OversizedChunked(1_000_001));
    let resp = http
        .get(issuer.jwks_url().as_str())
        .send()
        .await
        .expect("response");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.content_length(),
        None,
        "streamed without Content-Length"
    );
    assert_eq!(resp.bytes().await.expect("body").len(), 1_000_001);

    issuer.set_fault(Fault::WrongIssuer);
    let (status, doc) = get_json(&http, issuer.discovery_url()).await;
    assert_eq!(status, 200);
    assert_eq!(doc["issuer"], WRONG_ISSUER);
    assert_ne!(doc["issuer"], issuer.issuer());
    assert_eq!(doc["jwks_uri"], issuer.jwks_url().as_str());
    let (status, jwks) = get_json(&http, issuer.jwks_url()).await;
    assert_eq!(status, 200);
    assert_eq!(jwks["keys"].as_array().expect("keys").len(), 3);

    // One endpoint only.
    issuer.set_fault(Fault::None);
    issuer.set_fault_on(Endpoint::Jwks, Fault::Status(500));
    assert_eq!(get_json(&http, issuer.discovery_url()).await.0, 200);
    let resp = http
        .get(issuer.jwks_url().as_str())
        .send()
        .await
        .expect("response");
    assert_eq!(resp.status(), 500);

    assert_eq!(
        issuer.counts(),
        poolgate::testkit::Counts {
            discovery: 4,
            jwks: 6,
            token: 1
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_slow_delays_the_answer() {
    let issuer = TestIssuer::start().await.expect("start");
    let http = client();
    issuer.set_fault(Fault::Slow(Duration::from_millis(200)));
    let started = Instant::now();
    let (status, _) = get_json(&http, issuer.jwks_url()).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_hang_holds_until_release() {
    let issuer = TestIssuer::start().await.expect("start");
    let http = client();
    issuer.set_fault(Fault::Hang);

    let url = issuer.jwks_url();
    let request = tokio::spawn({
        let http = http.clone();
        async move { get_json(&http, url).await }
    });
    tokio::time::timeout(GUARD, issuer.wait_held(1))
        .await
        .expect("request arrives and is held");
    assert_eq!(issuer.counts().jwks, 1);
    assert_eq!(issuer.held(), 1);
    tokio::task::yield_now().await;
    assert!(!request.is_finished());
    let mut request = request;
    assert!((&mut request).now_or_never().is_none(), "still held");

    issuer.release();
    let (status, jwks) = tokio::time::timeout(GUARD, request)
        .await
        .expect("released")
        .expect("task");
    assert_eq!(status, 200);
    assert_eq!(jwks, issuer.jwks());

    // Still Hang: the next request is held again; clearing the fault frees it.
    let url = issuer.discovery_url();
    let request = tokio::spawn({
        let http = http.clone();
        async move { get_json(&http, url).await }
    });
    tokio::time::timeout(GUARD, issuer.wait_held(1))
        .await
        .expect("held again");
    issuer.set_fault(Fault::None);
    let (status, doc) = tokio::time::timeout(GUARD, request)
        .await
        .expect("freed")
        .expect("task");
    assert_eq!(status, 200);
    assert_eq!(doc["issuer"], issuer.issuer());
    assert_eq!(issuer.held(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_issuer_stops_it() {
    let issuer = TestIssuer::start().await.expect("start");
    let http = client();
    let url = issuer.jwks_url();
    assert_eq!(get_json(&http, url.clone()).await.0, 200);
    issuer.set_fault(Fault::Hang);
    let held = tokio::spawn({
        let http = http.clone();
        let url = url.clone();
        async move { http.get(url.as_str()).send().await.map(|r| r.status()) }
    });
    tokio::time::timeout(GUARD, issuer.wait_held(1))
        .await
        .expect("held");
    drop(issuer);
    // The held request is let go (503 or a closed connection), not left hanging.
    let outcome = tokio::time::timeout(GUARD, held)
        .await
        .expect("not left hanging")
        .expect("task");
    assert!(outcome.as_ref().map_or(true, |s| *s == 503), "{outcome:?}");
    // New connections are refused once the listener is gone.
    let fresh = client();
    let mut refused = false;
    for _ in 0..1000 {
        if fresh.get(url.as_str()).send().await.is_err() {
            refused = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(refused);
}

#[test]
fn empty_signing_config_is_rejected() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let err = rt
        .block_on(TestIssuer::start_with(IssuerConfig {
            signing: vec![],
            ..IssuerConfig::default()
        }))
        .expect_err("no algorithm");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn token_builder_without_issuer() {
    let key = Arc::new(SigningKey::generate(SigningAlg::ES256, "standalone"));
    let token =
        poolgate::testkit::TokenBuilder::new(Arc::clone(&key), "https://issuer.example").sign();
    let (header, claims, input, sig) = parse_jws(&token);
    assert_eq!(header["kid"], "standalone");
    assert_eq!(claims["iss"], "https://issuer.example");
    verify_with_jwk(&key.public_jwk(), input.as_bytes(), &sig).expect("verifies");

    let mut header = Map::new();
    header.insert("alg".into(), json!("ES256"));
    let mut claims = Map::new();
    claims.insert("sub".into(), json!("x"));
    let token = poolgate::testkit::encode_jws(&header, &claims, &key);
    let (_, _, input, sig) = parse_jws(&token);
    verify_with_jwk(&key.public_jwk(), input.as_bytes(), &sig).expect("verifies");
}
