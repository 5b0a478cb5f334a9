//! The login facade end to end: a real local issuer, a TOML configuration, SASL client
//! messages as librdkafka sends them, pools, permissions and the verified-token cache.
#![cfg(feature = "testkit")]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use poolgate::authz::{Decision, Operation, Resource};
use poolgate::config::Config;
use poolgate::gate::Gate;
use poolgate::sasl::ClientFirstMessage;
use poolgate::testkit::{IssuerConfig, SigningAlg, TestIssuer, TestKeys, login_config};
use poolgate::{ManualClock, UnixTime};
use serde_json::json;

const START: u64 = 1_800_000_000;

struct Env {
    issuer: TestIssuer,
    clock: ManualClock,
    gate: Gate,
}

async fn env() -> Env {
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let issuer = TestIssuer::start_with(IssuerConfig {
        clock: Arc::new(clock.clone()),
        ..IssuerConfig::default()
    })
    .await
    .unwrap();
    let text = login_config(TestKeys::Issuer(&issuer));
    let config = Config::parse(&text, "login.toml", Path::new(".")).unwrap();
    let gate = Gate::start_with_clock(config, Arc::new(clock.clone()))
        .await
        .unwrap();
    Env {
        issuer,
        clock,
        gate,
    }
}

fn sasl(token: &str, pools: Option<&str>) -> Vec<u8> {
    let mut b = ClientFirstMessage::new(token).extension("logicalCluster", "lkc-1");
    if let Some(p) = pools {
        b = b.extension("identityPoolId", p);
    }
    b.build().unwrap().to_bytes()
}

fn analytics_token(env: &Env) -> String {
    env.issuer
        .mint()
        .claim("groups", json!(["analytics"]))
        .claim("tenant", json!("acme"))
        .sign()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_bytes_log_in_and_get_their_pools_permissions() {
    let env = env().await;
    let token = analytics_token(&env);
    let raw = format!(
        "n,,\x01auth=Bearer {token}\x01logicalCluster=lkc-1\x01identityPoolId=pool-analytics\x01\x01"
    );
    let session = env.gate.authenticate(raw.as_bytes()).await.unwrap();
    assert_eq!(session.principals(), ["User:pool-analytics"]);
    assert_eq!(session.identity(), "svc-test");
    assert_eq!(session.provider_id(), "op-main");
    assert_eq!(
        session.lifetime_at(UnixTime::from_secs(START + 600)),
        Duration::from_secs(3000)
    );
    assert!(
        session.diagnostics().is_empty(),
        "{:?}",
        session.diagnostics()
    );

    let allow = |op, r: &str| session.authorize(op, &Resource::parse(r).unwrap()).decision;
    assert_eq!(
        allow(Operation::Read, "Topic:analytics-clicks"),
        Decision::Allow
    );
    assert_eq!(
        allow(Operation::Write, "Topic:analytics-clicks"),
        Decision::Deny
    );
    assert_eq!(
        allow(Operation::Write, "Topic:tenant-acme-events"),
        Decision::Allow
    );
    assert_eq!(
        allow(Operation::Write, "Topic:tenant-other-events"),
        Decision::Deny
    );
    assert_eq!(
        allow(Operation::Read, "Topic:analytics-secret"),
        Decision::Deny
    );
    assert_eq!(
        allow(Operation::Describe, "Topic:analytics-secret"),
        Decision::Allow
    );
    assert_eq!(
        allow(Operation::IdempotentWrite, "Cluster:kafka-cluster"),
        Decision::Allow
    );
    let decided = session.authorize(
        Operation::Read,
        &Resource::parse("Topic:analytics-x").unwrap(),
    );
    assert_eq!(decided.grant.unwrap().origin.pool, "pool-analytics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_mapping_takes_every_matching_pool() {
    let env = env().await;
    let token = env
        .issuer
        .mint()
        .claim("groups", json!(["analytics", "ops"]))
        .claim("client_id", json!("ops-bot"))
        .claim("tenant", json!("acme"))
        .sign();
    let session = env.gate.authenticate(&sasl(&token, None)).await.unwrap();
    assert_eq!(
        session.principals(),
        ["User:pool-analytics", "User:pool-ops"]
    );
    assert_eq!(
        session.identity(),
        "svc-test",
        "the first matched pool's identity"
    );
    // The union of both pools' grants, with the analytics deny still winning.
    let r = |name| Resource::parse(name).unwrap();
    assert_eq!(
        session
            .authorize(Operation::Delete, &r("Topic:anything"))
            .decision,
        Decision::Allow
    );
    assert_eq!(
        session
            .authorize(Operation::Read, &r("Topic:analytics-secret"))
            .decision,
        Decision::Deny
    );

    // Naming one pool restricts the session to it.
    let only_ops = env
        .gate
        .authenticate(&sasl(&token, Some("pool-ops")))
        .await
        .unwrap();
    assert_eq!(only_ops.principals(), ["User:pool-ops"]);
    assert_eq!(only_ops.identity(), "ops-bot");
    assert_eq!(
        only_ops
            .authorize(Operation::Read, &r("Topic:analytics-secret"))
            .decision,
        Decision::Allow
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_carry_their_code_and_an_opaque_challenge() {
    let env = env().await;
    let good = analytics_token(&env);
    let plain = env.issuer.mint().sign();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"garbage".to_vec(), "malformed_sasl"),
        (sasl(&plain, None), "no_pool_matched"),
        (sasl(&good, Some("pool-nope")), "unknown_pool"),
        (sasl(&good, Some("pool-svc")), "no_pool_matched"),
        (
            ClientFirstMessage::new(good.as_str())
                .extension("logicalCluster", "lkc-2")
                .build()
                .unwrap()
                .to_bytes(),
            "wrong_cluster",
        ),
        (
            ClientFirstMessage::new(good.as_str())
                .authzid("someone-else")
                .extension("logicalCluster", "lkc-1")
                .build()
                .unwrap()
                .to_bytes(),
            "authzid_mismatch",
        ),
        (
            sasl(
                &env.issuer.mint().claim("exp", json!(START - 100)).sign(),
                None,
            ),
            "expired",
        ),
        (
            sasl(&env.issuer.mint().without_claim("sub").sign(), None),
            "missing_claim",
        ),
    ];
    for (bytes, code) in cases {
        let rejection = env.gate.authenticate(&bytes).await.unwrap_err();
        assert_eq!(rejection.code(), code, "{}", rejection.error());
        assert_eq!(rejection.challenge(), br#"{"status":"invalid_token"}"#);
    }
    // Without logicalCluster the login passes (require_logical_cluster is false).
    let no_cluster = ClientFirstMessage::new(good.as_str())
        .build()
        .unwrap()
        .to_bytes();
    assert!(env.gate.authenticate(&no_cluster).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_token_still_passes_the_time_checks_and_this_logins_extensions() {
    let env = env().await;
    let token = analytics_token(&env);
    env.gate.authenticate(&sasl(&token, None)).await.unwrap();
    let fetches = env.issuer.counts().jwks;
    for _ in 0..10 {
        env.gate.authenticate(&sasl(&token, None)).await.unwrap();
    }
    assert_eq!(env.gate.cached_tokens_sync(), 1);
    let stats = env.gate.cache_stats();
    assert_eq!((stats.hits, stats.misses), (10, 1));
    // Extensions are honoured on a hit.
    let wrong = env
        .gate
        .authenticate(&sasl(&token, Some("pool-svc")))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), "no_pool_matched");
    // Time moves on: a cache hit past exp + skew is expired.
    env.clock.advance(Duration::from_secs(3600 + 31));
    let expired = env
        .gate
        .authenticate(&sasl(&token, None))
        .await
        .unwrap_err();
    assert_eq!(expired.code(), "expired");
    assert_eq!(env.issuer.counts().jwks, fetches);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_token_whose_key_left_the_jwks_is_refused() {
    let env = env().await;
    let token = analytics_token(&env);
    env.gate.authenticate(&sasl(&token, None)).await.unwrap();
    let old_kid = env.issuer.active_key(SigningAlg::RS256).kid().to_owned();
    env.issuer.rotate(SigningAlg::RS256);
    env.issuer.retire(&old_kid);
    let provider = &env.gate.validator().providers()[0];
    provider.store().refresh().await.unwrap();
    let refused = env
        .gate
        .authenticate(&sasl(&token, None))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "unknown_key");
    // A token of the new key logs in.
    assert!(
        env.gate
            .authenticate(&sasl(&analytics_token(&env), None))
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_grants_are_diagnostics_not_failures() {
    let env = env().await;
    // No `tenant` claim: the templated grant is dropped, the login still succeeds.
    let token = env
        .issuer
        .mint()
        .claim("groups", json!(["analytics"]))
        .sign();
    let session = env.gate.authenticate(&sasl(&token, None)).await.unwrap();
    assert_eq!(
        session.diagnostics().len(),
        1,
        "{:?}",
        session.diagnostics()
    );
    assert!(
        session.diagnostics()[0]
            .to_string()
            .starts_with("pool `pool-analytics`: grant 2 dropped: ")
    );
    assert_eq!(session.permissions().len(), 2);
    // A wildcard in the claim cannot widen access.
    let sneaky = env
        .issuer
        .mint()
        .claim("groups", json!(["analytics"]))
        .claim("tenant", json!("*"))
        .sign();
    let session = env.gate.authenticate(&sasl(&sneaky, None)).await.unwrap();
    let r = Resource::parse("Topic:tenant-other-x").unwrap();
    assert_eq!(
        session.authorize(Operation::Write, &r).decision,
        Decision::Deny
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_every_pool_with_its_reason() {
    use poolgate::gate::LoginRequest;
    let env = env().await;
    let now = UnixTime::from_secs(START);
    let token = analytics_token(&env);
    let request = LoginRequest {
        logical_cluster: Some("lkc-1".into()),
        ..LoginRequest::default()
    };
    let report = env.gate.check(3, &token, request.clone(), now).await;
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["index"], 3);
    assert_eq!(json["authenticated"], true);
    assert_eq!(json["error"], serde_json::Value::Null);
    assert_eq!(json["issuer"], env.issuer.issuer());
    assert_eq!(json["subject"], "svc-test");
    assert_eq!(json["expires_at"], "2027-01-15T09:00:00Z");
    assert_eq!(json["principals"], json!(["User:pool-analytics"]));
    assert_eq!(
        json["pools"][0],
        json!({"id": "pool-analytics", "matched": true, "identity": "svc-test", "principal": "User:pool-analytics", "reason": null})
    );
    assert_eq!(json["pools"][1]["matched"], false);
    assert_eq!(json["pools"][1]["reason"], "filter is false");
    assert_eq!(json["pools"][2]["reason"], "filter is false");
    assert_eq!(
        json["permissions"][1],
        json!({"effect": "allow", "operations": ["Write", "Describe"], "resource_type": "Topic", "pattern": "prefixed", "name": "tenant-acme-"})
    );

    let forged = env
        .issuer
        .mint()
        .claim("groups", json!(["analytics"]))
        .sign_with_signature(b"nope");
    let report = env.gate.check(0, &forged, request, now).await;
    assert!(!report.authenticated);
    assert_eq!(report.error.unwrap().code, "bad_signature");
    assert_eq!(report.issuer, None);
    assert_eq!(report.pools.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lenient_start_keeps_the_working_providers() {
    use poolgate::testkit::Fault;
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let cfg = || IssuerConfig {
        clock: Arc::new(clock.clone()),
        ..IssuerConfig::default()
    };
    let up = TestIssuer::start_with(cfg()).await.unwrap();
    let down = TestIssuer::start_with(cfg()).await.unwrap();
    down.set_fault(Fault::Down);
    let provider = |id: &str, i: &TestIssuer| {
        format!(
            "[[providers]]\nid = \"{id}\"\nissuer = \"{}\"\ndiscovery_url = \"{}\"\naudiences = [\"kafka\"]\ninsecure_allow_http = true\n\n[[pools]]\nid = \"pool-{id}\"\nprovider = \"{id}\"\n\n",
            i.issuer(),
            i.discovery_url()
        )
    };
    let text = format!("{}{}", provider("up", &up), provider("down", &down));
    let config = Config::parse(&text, "two.toml", Path::new(".")).unwrap();
    let (gate, degraded) = Gate::start_lenient(config.clone(), Arc::new(clock.clone()))
        .await
        .unwrap();
    assert_eq!(degraded.len(), 1);
    assert!(
        degraded[0].to_string().starts_with("provider `down`"),
        "{}",
        degraded[0]
    );
    let ok = gate.authenticate(&sasl_plain(&up.mint().sign())).await;
    assert!(ok.is_ok());
    let refused = gate
        .authenticate(&sasl_plain(&down.mint().sign()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "jwks_unavailable");
    // A strict start fails on the same configuration.
    assert!(
        Gate::start_with_clock(config, Arc::new(clock.clone()))
            .await
            .is_err()
    );

    // A discovery document naming another issuer is the configuration's fault: no lenience.
    down.set_fault(Fault::WrongIssuer);
    let config = Config::parse(&text, "two.toml", Path::new(".")).unwrap();
    assert!(
        Gate::start_lenient(config, Arc::new(clock.clone()))
            .await
            .is_err()
    );
}

fn sasl_plain(token: &str) -> Vec<u8> {
    ClientFirstMessage::new(token).build().unwrap().to_bytes()
}

/// A token of the issuer's active key for `alg`, in the analytics pool (distinct each time:
/// a fresh `jti`).
fn analytics_token_by(env: &Env, alg: SigningAlg) -> String {
    env.issuer
        .mint()
        .alg(alg)
        .claim("groups", json!(["analytics"]))
        .claim("tenant", json!("acme"))
        .sign()
}

/// `n` distinct EdDSA tokens in the analytics pool.
fn ed_tokens(env: &Env, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| analytics_token_by(env, SigningAlg::EdDSA))
        .collect()
}

/// The provider's current key set generation.
fn generation(gate: &Gate) -> u64 {
    gate.validator().providers()[0]
        .store()
        .current()
        .unwrap()
        .generation()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_tokens_survive_random_kid_floods_and_refreshes() {
    const CACHED: usize = 1_000;
    const WAVES: usize = 5;
    let env = env().await;
    let store = env.gate.validator().providers()[0].store().clone();
    let tokens = ed_tokens(&env, CACHED);
    for t in &tokens {
        env.gate.authenticate(&sasl(t, None)).await.unwrap();
    }
    // Signed by the ES256 key that is rotated out below.
    let doomed = analytics_token_by(&env, SigningAlg::ES256);
    env.gate.authenticate(&sasl(&doomed, None)).await.unwrap();
    assert_eq!(env.gate.cached_tokens_sync(), CACHED as u64 + 1);
    let warm = env.gate.cache_stats();
    assert_eq!((warm.hits, warm.misses), (0, CACHED as u64 + 1));

    // The flood: tokens naming kids nobody published, each wave past the refetch rate limit,
    // and a scheduled-style refresh per wave. Every fetch brings the same keys.
    let first_generation = generation(&env.gate);
    let jwks_before = env.issuer.counts().jwks;
    let refetches_before = store.stats().unknown_kid_refetches;
    for wave in 0..WAVES {
        env.clock.advance(Duration::from_secs(11));
        for i in 0..4 {
            let forged = env
                .issuer
                .mint()
                .header("kid", json!(format!("flood-{wave}-{i}")))
                .sign();
            let refused = env
                .gate
                .authenticate(&sasl(&forged, None))
                .await
                .unwrap_err();
            assert_eq!(refused.code(), "unknown_key");
        }
        store.refresh().await.unwrap();
    }
    assert_eq!(
        store.stats().unknown_kid_refetches - refetches_before,
        WAVES as u64,
        "one refetch per wave, the others rate-limited"
    );
    assert!(env.issuer.counts().jwks - jwks_before >= 2 * WAVES as u64);
    assert_eq!(
        generation(&env.gate),
        first_generation,
        "the same keys fetched again are not a new key set"
    );
    assert_eq!(
        store.stats().last_success,
        Some(poolgate::Clock::now(&env.clock))
    );
    let flooded = env.gate.cache_stats();
    for t in &tokens {
        env.gate.authenticate(&sasl(t, None)).await.unwrap();
    }
    let after_flood = env.gate.cache_stats();
    assert_eq!(after_flood.hits - flooded.hits, CACHED as u64);
    assert_eq!(
        after_flood.misses, flooded.misses,
        "no cached token was verified again"
    );

    // Rotating ES256 out changes the key set: the EdDSA tokens' key is still there (hits),
    // the ES256 token's key is gone (verified again, refused).
    let es_kid = env.issuer.active_key(SigningAlg::ES256).kid().to_owned();
    env.issuer.rotate(SigningAlg::ES256);
    env.issuer.retire(&es_kid);
    store.refresh().await.unwrap();
    assert_eq!(generation(&env.gate), first_generation + 1);
    for t in &tokens {
        env.gate.authenticate(&sasl(t, None)).await.unwrap();
    }
    let rotated = env.gate.cache_stats();
    assert_eq!(rotated.hits - after_flood.hits, CACHED as u64);
    assert_eq!(rotated.misses, after_flood.misses);
    let refused = env
        .gate
        .authenticate(&sasl(&doomed, None))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "unknown_key");
    assert_eq!(env.gate.cache_stats().misses, rotated.misses + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_token_whose_key_was_replaced_under_its_kid_is_refused() {
    let env = env().await;
    let token = analytics_token_by(&env, SigningAlg::ES256);
    env.gate.authenticate(&sasl(&token, None)).await.unwrap();
    let kid = env.issuer.active_key(SigningAlg::ES256).kid().to_owned();
    env.issuer.retire(&kid);
    env.issuer.publish(poolgate::testkit::SigningKey::generate(
        SigningAlg::ES256,
        kid.as_str(),
    ));
    let before = generation(&env.gate);
    env.gate.validator().providers()[0]
        .store()
        .refresh()
        .await
        .unwrap();
    assert_eq!(generation(&env.gate), before + 1);
    let refused = env
        .gate
        .authenticate(&sasl(&token, None))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "bad_signature");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_holds_at_most_its_capacity() {
    const CAPACITY: u64 = 50;
    let env = env().await;
    let validator = poolgate::Validator::with_clock(
        env.gate.validator().providers().to_vec(),
        Arc::new(env.clock.clone()),
    )
    .unwrap();
    let gate = Gate::with_cache_capacity(env.gate.config().clone(), validator, CAPACITY);
    let tokens = ed_tokens(&env, 4 * CAPACITY as usize);
    for t in &tokens {
        gate.authenticate(&sasl(t, None)).await.unwrap();
        assert!(gate.cached_tokens_sync() <= CAPACITY);
    }
    // Each of the cache's shards holds its share and drops its oldest first, so the cache
    // ends nearly full (200 random tokens leave a shard of one entry empty with p = 2%).
    assert!(gate.cached_tokens_sync() >= CAPACITY * 4 / 5);
    assert_eq!(gate.cache_stats().misses, 4 * CAPACITY);
    // The default gate kept them all.
    for t in &tokens {
        env.gate.authenticate(&sasl(t, None)).await.unwrap();
    }
    assert_eq!(env.gate.cached_tokens_sync(), 4 * CAPACITY);
}
