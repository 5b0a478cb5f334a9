//! The key store and validator against a real local issuer over HTTP on 127.0.0.1: rotation,
//! single-flight refetch, rate limiting, faults, staleness, start-up rules.
#![cfg(feature = "testkit")]

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use poolgate::client::{ClientCredentials, TokenClient};
use poolgate::proxy::{ProxyEnv, ProxySource};
use poolgate::testkit::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Fault, HostileProxy, IssuerConfig, SigningAlg,
    SigningKey, TestIssuer,
};
use poolgate::{
    ErrorCode, FetchError, FetchOptions, KeySource, KeyStore, KeyStoreConfig, KeyStoreError,
    ManualClock, Policy, Provider, UnixTime, Validator,
};
use serde_json::json;

const START: u64 = 1_800_000_000;
/// Guards against a broken test hanging forever; never reached when the code works.
const GUARD: Duration = Duration::from_secs(30);

struct Env {
    issuer: TestIssuer,
    clock: ManualClock,
}

async fn env() -> Env {
    let clock = ManualClock::new(UnixTime::from_secs(START));
    let issuer = TestIssuer::start_with(IssuerConfig {
        clock: Arc::new(clock.clone()),
        ..IssuerConfig::default()
    })
    .await
    .unwrap();
    Env { issuer, clock }
}

fn config() -> KeyStoreConfig {
    KeyStoreConfig {
        fetch: FetchOptions {
            insecure_allow_http: true,
            ..FetchOptions::default()
        },
        ..KeyStoreConfig::default()
    }
}

fn policy(env: &Env) -> Policy {
    Policy::builder(env.issuer.issuer())
        .audience("kafka")
        .build()
        .unwrap()
}

impl Env {
    async fn store_with(&self, cfg: KeyStoreConfig) -> Result<KeyStore, KeyStoreError> {
        KeyStore::start(
            self.issuer.issuer(),
            KeySource::Discovery(self.issuer.discovery_url()),
            cfg,
            Arc::new(self.clock.clone()),
        )
        .await
    }

    async fn validator_with(&self, cfg: KeyStoreConfig) -> (Validator, KeyStore) {
        let store = self.store_with(cfg).await.unwrap();
        let provider = Provider::new(policy(self), store.clone()).unwrap();
        let v = Validator::with_clock(vec![provider], Arc::new(self.clock.clone())).unwrap();
        (v, store)
    }

    async fn validator(&self) -> (Validator, KeyStore) {
        self.validator_with(config()).await
    }
}

async fn code(v: &Validator, token: &str) -> Result<(), ErrorCode> {
    tokio::time::timeout(GUARD, v.validate(token))
        .await
        .unwrap()
        .map(|_| ())
        .map_err(|e| e.code())
}

/// Every proxy variable pointed at `proxy`, as on a laptop behind a corporate proxy.
fn proxied(proxy: &HostileProxy) -> FetchOptions {
    let vars = [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
    ];
    FetchOptions {
        insecure_allow_http: true,
        proxy: ProxySource::Given(ProxyEnv::from_vars(vars.map(|v| (v, proxy.url())))),
        ..FetchOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_fetches_never_go_through_a_proxy() {
    let env = env().await;
    let genuine = env.issuer.active_key(SigningAlg::ES256);
    // The proxy answers every request with its own key under the issuer's kid.
    let forged = Arc::new(SigningKey::generate(SigningAlg::ES256, genuine.kid()));
    let proxy = HostileProxy::start(Arc::clone(&forged)).await.unwrap();
    let (v, _store) = env
        .validator_with(KeyStoreConfig {
            fetch: proxied(&proxy),
            ..config()
        })
        .await;
    let good = env.issuer.mint().alg(SigningAlg::ES256).sign();
    let bad = env.issuer.mint().alg(SigningAlg::ES256).key(forged).sign();
    assert_eq!(code(&v, &good).await, Ok(()));
    assert_eq!(code(&v, &bad).await, Err(ErrorCode::BadSignature));

    // The token endpoint too: the client secret never goes to the proxy.
    let client = TokenClient::new(proxied(&proxy)).unwrap();
    let credentials = ClientCredentials {
        client_id: DEFAULT_CLIENT_ID.to_owned(),
        client_secret: DEFAULT_CLIENT_SECRET.to_owned(),
        scope: None,
    };
    let token = client
        .fetch_for_issuer(env.issuer.issuer(), &credentials)
        .await
        .unwrap();
    assert_eq!(code(&v, &token.access_token).await, Ok(()));
    assert_eq!(proxy.requests(), 0);
    assert_eq!(env.issuer.counts().token, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validates_tokens_of_every_algorithm() {
    let env = env().await;
    let (v, store) = env.validator().await;
    for alg in SigningAlg::ALL {
        let token = env.issuer.mint().alg(alg).sign();
        let verified = v.validate(&token).await.unwrap();
        assert_eq!(verified.algorithm(), alg.algorithm());
        assert_eq!(verified.issuer(), env.issuer.issuer());
        assert_eq!(verified.subject(), Some("svc-test"));
        assert_eq!(verified.audiences(), vec!["kafka"]);
        assert_eq!(verified.expires_at(), UnixTime::from_secs(START + 3600));
    }
    let stats = store.stats();
    assert_eq!(stats.keys_loaded, 3);
    assert_eq!(stats.fetches_ok, 1);
    assert_eq!(stats.last_success, Some(UnixTime::from_secs(START)));
    assert_eq!(env.issuer.counts().discovery, 1);
    assert_eq!(env.issuer.counts().jwks, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_from_the_issuers_token_endpoint_validates() {
    let env = env().await;
    let (v, _) = env.validator().await;
    let body = reqwest::Client::new()
        .post(env.issuer.token_url())
        .basic_auth("svc-test", Some("svc-test-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let response: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let token = response["access_token"].as_str().unwrap();
    let verified = v.validate(token).await.unwrap();
    assert_eq!(verified.claim("client_id"), Some(&json!("svc-test")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freshly_rotated_key_is_accepted_on_first_presentation() {
    let env = env().await;
    let (v, store) = env.validator().await;
    let old = env.issuer.mint().sign();
    let new_kid = env.issuer.rotate(SigningAlg::RS256);
    let new = env.issuer.mint().sign();
    assert!(new.len() > 10 && new_kid.starts_with("rs256"));
    assert_eq!(code(&v, &new).await, Ok(()));
    assert_eq!(code(&v, &old).await, Ok(()), "old key still published");
    assert_eq!(env.issuer.counts().jwks, 2);
    assert_eq!(store.stats().unknown_kid_refetches, 1);

    // Retire the old key: after the next refresh its tokens have no key.
    let old_kid = poolgate::UnverifiedToken::parse(&old, 1 << 14)
        .unwrap()
        .header()
        .kid()
        .unwrap()
        .to_owned();
    env.issuer.retire(&old_kid);
    store.refresh().await.unwrap();
    env.clock.advance(Duration::from_secs(11));
    assert_eq!(code(&v, &old).await, Err(ErrorCode::UnknownKey));
    assert_eq!(code(&v, &new).await, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_unknown_kid_validations_cause_one_fetch() {
    let env = env().await;
    let (v, store) = env.validator().await;
    env.issuer.rotate(SigningAlg::ES256);
    let token = env.issuer.mint().alg(SigningAlg::ES256).sign();
    let before = env.issuer.counts().jwks;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let v = v.clone();
        let token = token.clone();
        tasks.spawn(async move { v.validate(&token).await.map(|_| ()).map_err(|e| e.code()) });
    }
    let mut ok = 0;
    while let Some(result) = tokio::time::timeout(GUARD, tasks.join_next())
        .await
        .unwrap()
    {
        assert_eq!(result.unwrap(), Ok(()));
        ok += 1;
    }
    assert_eq!(ok, 1000);
    assert_eq!(env.issuer.counts().jwks - before, 1);
    assert_eq!(store.stats().unknown_kid_refetches, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_random_kids_fetches_no_more_than_the_rate_limit() {
    let env = env().await;
    let (v, store) = env.validator().await;
    let before = env.issuer.counts().jwks;
    let forged = |kid: String| env.issuer.mint().header("kid", json!(kid)).sign();

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..500 {
        let v = v.clone();
        let token = forged(format!("random-{i}"));
        tasks.spawn(async move { v.validate(&token).await.map(|_| ()).map_err(|e| e.code()) });
    }
    while let Some(result) = tokio::time::timeout(GUARD, tasks.join_next())
        .await
        .unwrap()
    {
        assert_eq!(result.unwrap(), Err(ErrorCode::UnknownKey));
    }
    assert_eq!(
        env.issuer.counts().jwks - before,
        1,
        "one fetch per min_refresh_interval"
    );

    // Within the interval: still nothing.
    env.clock.advance(Duration::from_secs(9));
    assert_eq!(
        code(&v, &forged("another".into())).await,
        Err(ErrorCode::UnknownKey)
    );
    assert_eq!(env.issuer.counts().jwks - before, 1);

    // After it: one more fetch for a new kid ...
    env.clock.advance(Duration::from_secs(2));
    assert_eq!(
        code(&v, &forged("yet-another".into())).await,
        Err(ErrorCode::UnknownKey)
    );
    assert_eq!(env.issuer.counts().jwks - before, 2);

    // ... but a kid that stayed unknown after a refetch is remembered (negative cache),
    env.clock.advance(Duration::from_secs(11));
    assert_eq!(
        code(&v, &forged("yet-another".into())).await,
        Err(ErrorCode::UnknownKey)
    );
    assert_eq!(env.issuer.counts().jwks - before, 2);

    // and an absurd kid never triggers a fetch.
    assert_eq!(
        code(&v, &forged("k".repeat(300))).await,
        Err(ErrorCode::UnknownKey)
    );
    assert_eq!(env.issuer.counts().jwks - before, 2);
    assert!(store.stats().unknown_kid_suppressed >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idp_down_after_start_keeps_validating_with_cached_keys() {
    let env = env().await;
    let (v, store) = env.validator().await;
    env.issuer.set_fault(Fault::Down);
    env.clock.advance(Duration::from_secs(2 * 24 * 3600));
    let err = store.refresh().await.unwrap_err();
    assert!(matches!(err, KeyStoreError::Fetch(_)), "{err}");
    let token = env.issuer.mint().sign();
    assert_eq!(code(&v, &token).await, Ok(()));
    let stats = store.stats();
    assert_eq!(stats.fetches_failed, 1);
    assert!(stats.last_error.is_some());
    assert_eq!(stats.last_success, Some(UnixTime::from_secs(START)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_idp_failure_keeps_the_last_good_set() {
    let env = env().await;
    let (v, store) = env.validator().await;
    let faults = [
        Fault::Status(503),
        Fault::Status(404),
        Fault::Garbage,
        Fault::Oversized(2_000_000),
        Fault::OversizedChunked(2_000_000),
        Fault::WrongIssuer,
    ];
    for fault in faults {
        env.issuer.set_fault(fault.clone());
        assert!(store.refresh().await.is_err(), "{fault:?} must fail");
        assert_eq!(
            code(&v, &env.issuer.mint().sign()).await,
            Ok(()),
            "{fault:?}"
        );
    }
    env.issuer.set_fault(Fault::None);
    let mut jwks = env.issuer.jwks();
    // A JWKS with no usable key does not replace the last good set ...
    env.issuer.set_jwks_override(Some(
        json!({"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}),
    ));
    let err = store.refresh().await.unwrap_err();
    assert!(err.to_string().contains("no usable key"), "{err}");
    assert_eq!(code(&v, &env.issuer.mint().sign()).await, Ok(()));
    // ... while one with some usable keys does, and says which it skipped.
    jwks["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kty":"RSA","kid":"enc-key","use":"enc","n":"AQAB","e":"AQAB"}));
    env.issuer.set_jwks_override(Some(jwks));
    store.refresh().await.unwrap();
    let snapshot = store.current().unwrap();
    assert_eq!(snapshot.keys().len(), 3);
    assert_eq!(snapshot.keys().skipped()[0].kid(), Some("enc-key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idp_down_past_max_staleness_rejects_with_jwks_unavailable() {
    let env = env().await;
    let (v, store) = env.validator().await;
    env.issuer.set_fault(Fault::Down);
    env.clock.advance(Duration::from_secs(7 * 24 * 3600));
    let token = env.issuer.mint().sign();
    assert_eq!(
        code(&v, &token).await,
        Ok(()),
        "exactly max_stale is still served"
    );
    env.clock.advance(Duration::from_secs(1));
    let token = env.issuer.mint().sign();
    assert_eq!(code(&v, &token).await, Err(ErrorCode::JwksUnavailable));
    // The IdP comes back: one refresh and all is well.
    env.issuer.set_fault(Fault::None);
    store.refresh().await.unwrap();
    assert_eq!(code(&v, &token).await, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_idp_never_delays_validations_of_known_kids() {
    let env = env().await;
    let (v, store) = env.validator().await;
    env.issuer.set_fault(Fault::Hang);
    // A scheduled refresh and an unknown-kid refetch are both stuck at the IdP ...
    let refresh = tokio::spawn({
        let store = store.clone();
        async move { store.refresh().await }
    });
    env.issuer.rotate(SigningAlg::EdDSA);
    let rotated = env.issuer.mint().alg(SigningAlg::EdDSA).sign();
    let waiting = tokio::spawn({
        let v = v.clone();
        async move { v.validate(&rotated).await.map(|_| ()).map_err(|e| e.code()) }
    });
    tokio::time::timeout(GUARD, env.issuer.wait_held(2))
        .await
        .unwrap();
    // ... while known kids complete on the first poll, without waiting on anything.
    for alg in [SigningAlg::RS256, SigningAlg::ES256] {
        let token = env.issuer.mint().alg(alg).sign();
        let result = v.validate(&token).now_or_never();
        assert!(matches!(result, Some(Ok(_))), "{alg}: {result:?}");
    }
    env.issuer.set_fault(Fault::None);
    env.issuer.release();
    assert!(
        tokio::time::timeout(GUARD, refresh)
            .await
            .unwrap()
            .unwrap()
            .is_ok()
    );
    assert_eq!(
        tokio::time::timeout(GUARD, waiting).await.unwrap().unwrap(),
        Ok(())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unknown_kid_wait_is_bounded_and_the_fetch_still_lands() {
    let env = env().await;
    let (v, store) = env
        .validator_with(KeyStoreConfig {
            refetch_wait: Duration::from_millis(100),
            ..config()
        })
        .await;
    let before = store.stats();
    env.issuer.set_fault(Fault::Hang);
    env.issuer.rotate(SigningAlg::RS256);
    let token = env.issuer.mint().sign();
    // The IdP hangs: the validation gives up while the fetch is still held by the IdP, so it
    // waited neither for an answer nor for the HTTP timeout (which would count a failed
    // fetch); GUARD only stops a broken test.
    let answer = tokio::time::timeout(GUARD, code(&v, &token)).await.unwrap();
    assert_eq!(answer, Err(ErrorCode::UnknownKey));
    let during = store.stats();
    assert_eq!(
        during.fetches_failed, before.fetches_failed,
        "no fetch ended"
    );
    assert_eq!(during.fetches_ok, before.fetches_ok, "no fetch ended");
    // The refetch is (or soon is) held by the IdP, unanswered.
    tokio::time::timeout(GUARD, env.issuer.wait_held(1))
        .await
        .unwrap();
    assert_eq!(store.stats().fetches_failed, before.fetches_failed);
    // The fetch itself carries on; once the IdP answers, the new key is there. Each
    // validation joins the fetch in flight for at most refetch_wait, so this waits for the
    // fetch to land however slow it is (GUARD stops a fetch that lands without the key).
    env.issuer.set_fault(Fault::None);
    env.issuer.release();
    tokio::time::timeout(GUARD, async { while code(&v, &token).await != Ok(()) {} })
        .await
        .unwrap();
    // The one refetch, the one that was held, brought it (the clock stands still, so
    // min_refresh_interval allows no second one).
    let after = store.stats();
    assert_eq!(after.fetches_ok, before.fetches_ok + 1);
    assert_eq!(after.fetches_failed, before.fetches_failed);
    assert_eq!(
        after.unknown_kid_refetches,
        before.unknown_kid_refetches + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_fails_fast_on_a_broken_idp() {
    let env = env().await;
    type Expect = fn(&KeyStoreError) -> bool;
    let cases: Vec<(Fault, Expect)> = vec![
        (Fault::Down, |e| {
            matches!(e, KeyStoreError::Fetch(FetchError::Request { .. }))
        }),
        (Fault::Status(500), |e| {
            matches!(
                e,
                KeyStoreError::Fetch(FetchError::Status { status: 500, .. })
            )
        }),
        (Fault::Garbage, |e| matches!(e, KeyStoreError::Discovery(_))),
        (Fault::Oversized(2_000_000), |e| {
            matches!(e, KeyStoreError::Fetch(FetchError::TooLarge { .. }))
        }),
        (Fault::OversizedChunked(2_000_000), |e| {
            matches!(e, KeyStoreError::Fetch(FetchError::TooLarge { .. }))
        }),
        (Fault::WrongIssuer, |e| {
            matches!(
                e,
                KeyStoreError::Discovery(poolgate::DiscoveryError::WrongIssuer { .. })
            )
        }),
    ];
    for (fault, expected) in cases {
        env.issuer.set_fault(fault.clone());
        let err = env.store_with(config()).await.unwrap_err();
        assert!(expected(&err), "{fault:?}: {err}");
        assert!(!err.to_string().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_needs_the_insecure_option() {
    let env = env().await;
    let err = env.store_with(KeyStoreConfig::default()).await.unwrap_err();
    assert!(
        matches!(err, KeyStoreError::Fetch(FetchError::InsecureUrl(_))),
        "{err}"
    );
    assert_eq!(env.issuer.counts().discovery, 0, "nothing was fetched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_empty_then_recover() {
    let env = env().await;
    env.issuer.set_fault(Fault::Down);
    let (v, store) = env
        .validator_with(KeyStoreConfig {
            start_empty: true,
            ..config()
        })
        .await;
    let token = env.issuer.mint().sign();
    assert_eq!(code(&v, &token).await, Err(ErrorCode::JwksUnavailable));
    env.issuer.set_fault(Fault::None);
    store.refresh().await.unwrap();
    assert_eq!(code(&v, &token).await, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_file_source_is_reread_for_an_unknown_kid() {
    let env = env().await;
    let dir = std::env::temp_dir().join(format!("poolgate-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jwks.json");
    std::fs::write(&path, env.issuer.jwks().to_string()).unwrap();
    let store = KeyStore::start(
        env.issuer.issuer(),
        KeySource::JwksFile(path.clone()),
        config(),
        Arc::new(env.clock.clone()),
    )
    .await
    .unwrap();
    let v = Validator::with_clock(
        vec![Provider::new(policy(&env), store).unwrap()],
        Arc::new(env.clock.clone()),
    )
    .unwrap();
    assert_eq!(code(&v, &env.issuer.mint().sign()).await, Ok(()));
    env.issuer.rotate(SigningAlg::RS256);
    std::fs::write(&path, env.issuer.jwks().to_string()).unwrap();
    assert_eq!(code(&v, &env.issuer.mint().sign()).await, Ok(()));
    assert_eq!(
        env.issuer.counts().jwks,
        0,
        "a file source never touches the network"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_routed_to_their_issuers_provider() {
    let a = env().await;
    let b = env().await;
    let (va, _) = a.validator().await;
    let (vb, _) = b.validator().await;
    let both = Validator::with_clock(
        va.providers()
            .iter()
            .chain(vb.providers())
            .cloned()
            .collect(),
        Arc::new(a.clock.clone()),
    )
    .unwrap();
    assert_eq!(code(&both, &a.issuer.mint().sign()).await, Ok(()));
    assert_eq!(code(&both, &b.issuer.mint().sign()).await, Ok(()));
    // B's key signing a token that claims A's issuer: routed to A, whose keys reject it.
    let forged = b
        .issuer
        .mint()
        .claim("iss", json!(a.issuer.issuer()))
        .sign();
    let err = code(&both, &forged).await.unwrap_err();
    assert!(
        matches!(err, ErrorCode::UnknownKey | ErrorCode::BadSignature),
        "{err}"
    );
    let stranger = a
        .issuer
        .mint()
        .claim("iss", json!("https://elsewhere"))
        .sign();
    assert_eq!(code(&both, &stranger).await, Err(ErrorCode::UnknownIssuer));
    let no_iss = a.issuer.mint().without_claim("iss").sign();
    assert_eq!(code(&both, &no_iss).await, Err(ErrorCode::MissingClaim));
    let dup = Validator::new(
        va.providers()
            .iter()
            .chain(va.providers())
            .cloned()
            .collect(),
    );
    assert!(dup.is_err());
}

// The running refresh loop, in paused tokio time.
//
// Tokio auto-advances a paused clock to the next timer whenever the runtime has nothing to run.
// These tests share one runtime thread with the issuer's real loopback sockets, and an HTTP
// exchange can leave that thread idle for a moment while the kernel delivers a segment: the
// clock would then jump to the fetch's own timeout. So every wait here keeps the thread busy
// (`busy`, `spin_until`: a future polled between `yield_now`s, which lets the runtime poll its
// sockets without ever idling), and the clock moves only when a test calls `advance_to`.

/// Drives `fut` to completion without letting the paused clock auto-advance.
async fn busy<F: std::future::Future>(fut: F) -> F::Output {
    let deadline = std::time::Instant::now() + GUARD;
    tokio::select! {
        biased;
        out = fut => out,
        () = async {
            while std::time::Instant::now() < deadline {
                tokio::task::yield_now().await;
            }
        } => panic!("not done within {GUARD:?} of real time"),
    }
}

/// Waits, busily, until `done` holds.
async fn spin_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + GUARD;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::task::yield_now().await;
    }
}

/// Gives a fetch the loop may have started every chance to reach the issuer and finish: many
/// more runtime turns than a loopback fetch takes (measured: it is done within the first one).
/// Only a check that nothing happened uses it.
async fn settle() {
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
}

async fn advance_to(at: tokio::time::Instant) {
    tokio::time::advance(at.saturating_duration_since(tokio::time::Instant::now())).await;
}

/// Fetch attempts the store has finished, successful or not.
fn attempts(store: &KeyStore) -> u64 {
    let stats = store.stats();
    stats.fetches_ok + stats.fetches_failed
}

impl Env {
    /// A store on the issuer's JWKS URL: one request per attempt.
    async fn jwks_store(&self, cfg: KeyStoreConfig) -> KeyStore {
        busy(KeyStore::start(
            self.issuer.issuer(),
            KeySource::JwksUrl(self.issuer.jwks_url()),
            cfg,
            Arc::new(self.clock.clone()),
        ))
        .await
        .unwrap()
    }

    /// The loop's next fetch after `from`, which it must make after `from + interval * 0.9`
    /// (the jitter takes off less than a tenth) and by `from + interval`: checks that nothing
    /// is fetched before, then that exactly one fetch is made by then. Returns its time.
    async fn next_scheduled_fetch(
        &self,
        store: &KeyStore,
        from: tokio::time::Instant,
        interval: Duration,
    ) -> tokio::time::Instant {
        let (requests, done) = (self.issuer.counts().jwks, attempts(store));
        let earliest = interval.mul_f64(0.9) - Duration::from_millis(1);
        advance_to(from + earliest).await;
        settle().await;
        assert_eq!(
            (self.issuer.counts().jwks, attempts(store)),
            (requests, done),
            "fetched within {earliest:?} of the previous fetch; expected {interval:?} less jitter"
        );
        advance_to(from + interval).await;
        settle().await;
        eprintln!(
            "DEBUG after advance {:?}: counts {:?} stats {:?}",
            interval,
            self.issuer.counts(),
            store.stats()
        );
        let what = format!("the fetch due {interval:?} after the previous one");
        spin_until(&what, || attempts(store) > done).await;
        settle().await;
        assert_eq!(
            (self.issuer.counts().jwks, attempts(store)),
            (requests + 1, done + 1),
            "one fetch per interval of {interval:?}"
        );
        tokio::time::Instant::now()
    }
}

#[tokio::test(start_paused = true)]
async fn the_refresh_loop_backs_off_from_one_second_doubling_to_a_cap() {
    let secs = Duration::from_secs;
    // The cap is 5 min, or the refresh interval when that is shorter.
    let cases: [(Duration, &[u64]); 2] = [
        (secs(3600), &[1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]),
        (secs(20), &[1, 2, 4, 8, 16, 20, 20]),
    ];
    for (refresh_interval, backoff) in cases {
        let env = busy(env()).await;
        let store = env
            .jwks_store(KeyStoreConfig {
                refresh_interval,
                ..config()
            })
            .await;
        let mut at = tokio::time::Instant::now();
        // The IdP fails from the first scheduled refresh on; every retry comes later.
        env.issuer.set_fault(Fault::Status(503));
        at = env.next_scheduled_fetch(&store, at, refresh_interval).await;
        for &delay in backoff {
            at = env.next_scheduled_fetch(&store, at, secs(delay)).await;
        }
        let failed = 1 + backoff.len() as u64;
        assert_eq!(store.stats().fetches_failed, failed, "{refresh_interval:?}");
        assert!(store.stats().last_error.unwrap().contains("HTTP 503"));
        // The IdP recovers: the retry succeeds, the schedule is back to the refresh interval,
        // and the backoff starts again from one second.
        env.issuer.set_fault(Fault::None);
        at = env
            .next_scheduled_fetch(&store, at, secs(300).min(refresh_interval))
            .await;
        assert_eq!(store.stats().fetches_ok, 2);
        assert_eq!(store.stats().last_error, None);
        env.issuer.set_fault(Fault::Status(503));
        at = env.next_scheduled_fetch(&store, at, refresh_interval).await;
        env.next_scheduled_fetch(&store, at, secs(1)).await;
        assert_eq!(
            store.stats().fetches_failed,
            failed + 2,
            "{refresh_interval:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_refresh_loop_follows_max_age_clamped_to_the_configured_range() {
    let secs = Duration::from_secs;
    // Defaults: min_refresh_interval 10 s, refresh_interval 1 h.
    let cases = [
        (Some(1), secs(10)),
        (Some(600), secs(600)),
        (Some(86_400), secs(3600)),
        (None, secs(3600)),
    ];
    for (max_age, interval) in cases {
        let env = busy(env()).await;
        env.issuer.set_max_age(max_age);
        let store = env.jwks_store(config()).await;
        // From the first fetch on, and again for the next one.
        let mut at = tokio::time::Instant::now();
        for _ in 0..2 {
            at = env.next_scheduled_fetch(&store, at, interval).await;
        }
        assert_eq!(store.stats().fetches_ok, 3, "max-age {max_age:?}");
        assert_eq!(env.issuer.counts().discovery, 0);
    }
}
