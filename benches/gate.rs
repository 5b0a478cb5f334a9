//! The login facade: `Gate::authenticate_at` on a SASL/OAUTHBEARER client message as librdkafka
//! sends it, with the verified-token cache warm (a reconnecting client) and cold (a first
//! login), and `Session::authorize` per request; all against the bare RS256 signature check of
//! the same token on the same key (aws-lc-rs `ParsedPublicKey::verify_sig`, key parsed once),
//! measured in the same run.
//!
//! Run: `cargo bench --features testkit --bench gate -- --warm-up-time 1 --measurement-time 3`. After
//! criterion's own report, prints the ratios (targets: a cache hit at least 20x cheaper than the
//! signature check) and a breakdown of a cache hit into its parts.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant, SystemTime};

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256,
    RsaPublicKeyComponents,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use criterion::Criterion;
use futures_util::FutureExt as _;
use poolgate::authz::{Decision, Operation, Permissions, Resource};
use poolgate::config::Config;
use poolgate::gate::{Gate, LoginRequest, Session};
use poolgate::sasl::ClientFirstMessage;
use poolgate::testkit::{SigningAlg, SigningKey, TokenBuilder};
use poolgate::{KeySet, ManualClock, Policy, UnixTime, verify};
use serde_json::json;

const ISSUER: &str = "https://idp.example.com/oauth2";
const NOW: u64 = 1_800_000_000;
const GROUP: &str = "gate";
/// The per-algorithm cold-login groups are `cold-<alg>`.
const COLD: &str = "cold";
/// Distinct tokens minted up front for the cache-miss measurement (see `bench_miss`).
const MISS_TOKENS: usize = 2_000;
static TOKEN_LEN: AtomicUsize = AtomicUsize::new(0);
static MESSAGE_LEN: AtomicUsize = AtomicUsize::new(0);

fn config_text(jwks: &Path) -> String {
    let mut text = format!(
        r#"
[cluster]
id = "lkc-1"

[[providers]]
id = "idp"
issuer = "{ISSUER}"
audiences = ["kafka"]
jwks_file = "{jwks}"
require_claims = ["sub"]

# The pool the client names; ten grants, allow and deny, literal, prefixed and wildcard.
[[pools]]
id = "pool-1"
provider = "idp"
filter = 'claims.iss == "{ISSUER}" && "analytics" in claims.groups'

[[pools.grants]]
role = "DeveloperRead"
resource = "Topic:analytics-*"

[[pools.grants]]
allow = ["Write", "Describe"]
resource = "Topic:tenant-{{claims.tenant}}-*"

[[pools.grants]]
deny = ["Read"]
resource = "Topic:analytics-secret"

[[pools.grants]]
deny = ["All"]
resource = "Topic:internal-*"

[[pools.grants]]
allow = ["Describe"]
resource = "Topic:*"

[[pools.grants]]
deny = ["Write"]
resource = "Topic:audit"

[[pools.grants]]
allow = ["Read"]
resource = "Group:analytics-*"

[[pools.grants]]
role = "DeveloperWrite"
resource = "TransactionalId:tx-{{claims.sub}}"

[[pools.grants]]
allow = ["IdempotentWrite"]
resource = "Cluster:kafka-cluster"

[[pools.grants]]
allow = ["Read", "Write"]
resource = "Topic:orders-final"

# Two more pools match the same token (automatic mapping takes all three).
[[pools]]
id = "pool-ops"
provider = "idp"
filter = 'has(claims.groups) && "ops" in claims.groups'

[[pools.grants]]
allow = ["Describe"]
resource = "Group:*"

[[pools]]
id = "pool-svc"
provider = "idp"
filter = 'claims.sub.startsWith("svc-")'

[[pools.grants]]
role = "DeveloperRead"
resource = "Topic:svc-*"
"#,
        jwks = jwks.display()
    );
    // Pools the index rules out without evaluating their filters.
    for i in 0..20 {
        text.push_str(&format!(
            "\n[[pools]]\nid = \"pool-other-{i}\"\nprovider = \"idp\"\nfilter = 'claims.iss == \"{ISSUER}\" && claims.sub == \"svc-other-{i}\"'\n"
        ));
    }
    text
}

struct Fixture {
    /// Kept alive: the key store's refresher task belongs to it.
    rt: tokio::runtime::Runtime,
    dir: PathBuf,
    key: Arc<SigningKey>,
    clock: ManualClock,
    gate: Gate,
    now: UnixTime,
}

impl Fixture {
    fn new() -> Fixture {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let key = Arc::new(SigningKey::generate(SigningAlg::RS256, "k1"));
        let dir = std::env::temp_dir().join(format!("poolgate-bench-gate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let jwks = dir.join("jwks.json");
        std::fs::write(&jwks, json!({"keys": [key.public_jwk()]}).to_string()).unwrap();
        let config = Config::parse(&config_text(&jwks), "bench-gate.toml", &dir).unwrap();
        let now = UnixTime::from_secs(NOW);
        let clock = ManualClock::new(now);
        let gate = rt
            .block_on(Gate::start_with_clock(config, Arc::new(clock.clone())))
            .unwrap();
        Fixture {
            rt,
            dir,
            key,
            clock,
            gate,
            now,
        }
    }

    /// A realistic client_credentials access token (same claims as `benches/validation.rs`),
    /// with a fresh random `jti`.
    fn token(&self) -> String {
        TokenBuilder::with_clock(Arc::clone(&self.key), ISSUER, &self.clock)
            .issued_at(UnixTime::from_secs(NOW - 60))
            .claim("sub", json!("svc-analytics-reader"))
            .claim("aud", json!(["kafka", "schema-registry"]))
            .claim("nbf", json!(NOW - 60))
            .claim("client_id", json!("svc-analytics-reader"))
            .claim("scope", json!("kafka.read kafka.write"))
            .claim("groups", json!(["analytics", "ops"]))
            .claim("tenant", json!("acme"))
            .sign()
    }

    /// A gate over the same configuration and key store, with an empty cache.
    fn fresh_gate(&self) -> Gate {
        Gate::new(self.gate.config().clone(), self.gate.validator().clone())
    }

    /// The RSA public key, parsed once, as the bare baseline uses it.
    fn bare_key(&self) -> ParsedPublicKey {
        let jwk = self.key.public_jwk();
        let field = |name: &str| B64.decode(jwk[name].as_str().unwrap()).unwrap();
        let (n, e) = (field("n"), field("e"));
        RsaPublicKeyComponents { n: &n, e: &e }
            .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
            .unwrap()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The exact bytes librdkafka sends, with or without `identityPoolId`.
fn librdkafka(token: &str, pool: Option<&str>) -> Vec<u8> {
    librdkafka_to("lkc-1", token, pool)
}

/// As [`librdkafka`], naming another logical cluster.
fn librdkafka_to(cluster: &str, token: &str, pool: Option<&str>) -> Vec<u8> {
    match pool {
        Some(pool) => format!(
            "n,,\x01auth=Bearer {token}\x01logicalCluster={cluster}\x01identityPoolId={pool}\x01\x01"
        ),
        None => format!("n,,\x01auth=Bearer {token}\x01logicalCluster={cluster}\x01\x01"),
    }
    .into_bytes()
}

/// One login that must complete without waiting (a cache hit, or a miss on a known `kid`).
fn login_now(gate: &Gate, bytes: &[u8], now: UnixTime) -> Session {
    match gate.authenticate_at(bytes, now).now_or_never() {
        Some(Ok(session)) => session,
        Some(Err(rejection)) => panic!("refused: {}", rejection.error()),
        None => panic!("the login waited"),
    }
}

fn bench_logins(c: &mut Criterion, fx: &Fixture) {
    let token = fx.token();
    let with_pool = librdkafka(&token, Some("pool-1"));
    let auto = librdkafka(&token, None);
    let bare_key = fx.bare_key();
    let (input, sig64) = token.rsplit_once('.').unwrap();
    let signature = B64.decode(sig64).unwrap();

    // Sanity, and warm the cache: one login of each shape before measuring.
    bare_key.verify_sig(input.as_bytes(), &signature).unwrap();
    let s = login_now(&fx.gate, &with_pool, fx.now);
    assert_eq!(s.principals(), ["User:pool-1"]);
    assert_eq!(s.permissions().len(), 10, "{:?}", s.diagnostics());
    let s = login_now(&fx.gate, &auto, fx.now);
    assert_eq!(
        s.principals(),
        ["User:pool-1", "User:pool-ops", "User:pool-svc"]
    );
    let before = fx.gate.cache_stats();
    assert_eq!((before.hits, before.misses), (1, 1));

    let mut g = c.benchmark_group(GROUP);
    g.bench_function("bare_signature", |b| {
        b.iter(|| {
            bare_key
                .verify_sig(black_box(input.as_bytes()), black_box(&signature))
                .unwrap()
        })
    });
    g.bench_function("hit_pool_id", |b| {
        b.iter(|| login_now(&fx.gate, black_box(&with_pool), fx.now))
    });
    g.bench_function("hit_auto", |b| {
        b.iter(|| login_now(&fx.gate, black_box(&auto), fx.now))
    });
    g.finish();
    let after = fx.gate.cache_stats();
    assert_eq!(
        after.misses, before.misses,
        "every measured login was a hit"
    );

    bench_miss(c, fx);
}

/// A first login: SASL parse, full validation (RS256), pool evaluation, cache insert.
///
/// How misses are forced, honestly: signing an RS256 token costs ~1 ms, far more than the
/// ~35 us being measured, so minting one per iteration (`iter_batched`) would make the run take
/// minutes, and building a whole `Gate` per iteration would measure the build. Instead
/// `MISS_TOKENS` distinct tokens (same claims, different `jti`, so the same size) are minted
/// up front and logged in one after the other on a gate with an empty cache; when all have been
/// used, a new gate over the same configuration and key store (`Gate::new`, empty cache) takes
/// over, outside the timed region. So every timed login is the first for its token on its gate,
/// the cache holds at most `MISS_TOKENS` entries, and the key set and pools are those of the hit
/// measurements.
fn bench_miss(c: &mut Criterion, fx: &Fixture) {
    let tokens: Vec<String> = (0..MISS_TOKENS).map(|_| fx.token()).collect();
    let messages: Vec<Vec<u8>> = tokens
        .iter()
        .map(|t| librdkafka(t, Some("pool-1")))
        .collect();
    let mut g = c.benchmark_group(GROUP);
    let mut firsts = FirstLogins::new(&messages, || fx.fresh_gate(), fx.now);
    g.bench_function("miss_pool_id", |b| {
        b.iter_custom(|iters| firsts.time(iters))
    });
    // For the breakdown of a miss: the same distinct tokens through the parts alone, so that
    // cold data weighs on them as it does on the misses.
    let bare_key = fx.bare_key();
    let signed: Vec<(&str, Vec<u8>)> = tokens
        .iter()
        .map(|t| {
            let (input, sig64) = t.rsplit_once('.').unwrap();
            (input, B64.decode(sig64).unwrap())
        })
        .collect();
    let mut i = 0;
    g.bench_function("part_bare_distinct", |b| {
        b.iter(|| {
            let (input, signature) = &signed[i % signed.len()];
            i += 1;
            bare_key
                .verify_sig(black_box(input.as_bytes()), black_box(signature))
                .unwrap()
        })
    });
    let validator = fx.gate.validator();
    let pools = fx.gate.config().pools();
    let mut i = 0;
    g.bench_function("part_validate_pools_distinct", |b| {
        b.iter(|| {
            let token = &tokens[i % tokens.len()];
            i += 1;
            let verified = validator
                .validate_at(black_box(token), fx.now)
                .now_or_never()
                .unwrap()
                .unwrap();
            pools.evaluate_candidates(0, &verified).len()
        })
    });
    g.finish();
    assert_eq!(firsts.hits(), 0, "no measured first login was a hit");
}

/// Times first logins, as `bench_miss` describes: the messages in turn on a gate, a fresh gate
/// (built outside the timed region) when all are used.
struct FirstLogins<'a, F: Fn() -> Gate> {
    messages: &'a [Vec<u8>],
    fresh: F,
    gate: Gate,
    next: usize,
    /// Cache hits of the gates already retired.
    hits: u64,
    now: UnixTime,
}

impl<'a, F: Fn() -> Gate> FirstLogins<'a, F> {
    fn new(messages: &'a [Vec<u8>], fresh: F, now: UnixTime) -> Self {
        let gate = fresh();
        FirstLogins {
            messages,
            fresh,
            gate,
            next: 0,
            hits: 0,
            now,
        }
    }

    fn time(&mut self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            if self.next == self.messages.len() {
                self.hits += self.gate.cache_stats().hits;
                self.gate = (self.fresh)();
                self.next = 0;
            }
            let run = left.min((self.messages.len() - self.next) as u64);
            let batch = &self.messages[self.next..self.next + run as usize];
            let start = Instant::now();
            for bytes in batch {
                black_box(login_now(&self.gate, black_box(bytes), self.now));
            }
            total += start.elapsed();
            self.next += batch.len();
            left -= run;
        }
        total
    }

    /// Cache hits over every gate used: zero when every timed login was a first.
    fn hits(&self) -> u64 {
        self.hits + self.gate.cache_stats().hits
    }
}

fn bench_authorize(c: &mut Criterion, fx: &Fixture) {
    let session = login_now(&fx.gate, &librdkafka(&fx.token(), Some("pool-1")), fx.now);
    assert_eq!(session.permissions().len(), 10);
    let last = Resource::topic("orders-final");
    let none = Resource::topic("payments");
    let a = session.authorize(Operation::Read, &last);
    assert_eq!(a.decision, Decision::Allow);
    assert_eq!(
        a.grant.unwrap().origin.index,
        9,
        "decided by the last grant"
    );
    let a = session.authorize(Operation::Alter, &none);
    assert_eq!((a.decision, a.grant), (Decision::Deny, None));

    let mut g = c.benchmark_group(GROUP);
    g.bench_function("authorize_last_grant", |b| {
        b.iter(|| session.authorize(black_box(Operation::Read), black_box(&last)))
    });
    g.bench_function("authorize_no_grant", |b| {
        b.iter(|| session.authorize(black_box(Operation::Alter), black_box(&none)))
    });
    g.finish();
}

/// Expires entries at a fixed TTL, as the gate's cache does at the token's `exp`.
struct Ttl(Duration);

impl moka::Expiry<Box<str>, Arc<String>> for Ttl {
    fn expire_after_create(
        &self,
        _key: &Box<str>,
        _value: &Arc<String>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(self.0)
    }
}

/// The parts of a cache hit, each alone: where the time of `hit_*` goes.
fn bench_breakdown(c: &mut Criterion, fx: &Fixture) {
    let token = fx.token();
    let with_pool = librdkafka(&token, Some("pool-1"));
    let session = login_now(&fx.gate, &with_pool, fx.now);
    TOKEN_LEN.store(token.len(), std::sync::atomic::Ordering::Relaxed);
    MESSAGE_LEN.store(with_pool.len(), std::sync::atomic::Ordering::Relaxed);

    // The same cache shape as the gate's: `Box<str>` keys (whole tokens), foldhash, per-entry
    // expiry, default capacity, with one entry.
    let cache: moka::sync::Cache<Box<str>, Arc<String>, foldhash::fast::RandomState> =
        moka::sync::Cache::builder()
            .max_capacity(poolgate::gate::DEFAULT_CACHE_CAPACITY)
            .expire_after(Ttl(Duration::from_secs(3540)))
            .build_with_hasher(foldhash::fast::RandomState::default());
    cache.insert(token.as_str().into(), Arc::new("value".to_owned()));
    let provider = &fx.gate.validator().providers()[0];
    let request = LoginRequest {
        pools: Some(vec!["pool-1".to_owned()]),
        logical_cluster: Some("lkc-1".to_owned()),
        authzid: None,
        extensions: vec![
            ("logicalCluster".to_owned(), "lkc-1".to_owned()),
            ("identityPoolId".to_owned(), "pool-1".to_owned()),
        ],
    };

    let mut g = c.benchmark_group(GROUP);
    g.bench_function("part_sasl_parse", |b| {
        b.iter(|| ClientFirstMessage::parse(black_box(&with_pool)).unwrap())
    });
    // Replicas of the SASL parser's steps (private code): the UTF-8 check of the whole
    // message, the byte scan of the token against `[-_.a-zA-Z0-9]`, the token's copy.
    g.bench_function("part_sasl_utf8_check", |b| {
        b.iter(|| std::str::from_utf8(black_box(&with_pool)).unwrap().len())
    });
    g.bench_function("part_sasl_token_scan", |b| {
        b.iter(|| {
            black_box(token.as_str())
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        })
    });
    // What-if, not the library's code: the same predicate without short-circuiting, which
    // the compiler can vectorise.
    g.bench_function("whatif_token_scan_branchless", |b| {
        b.iter(|| {
            black_box(token.as_str()).bytes().fold(true, |ok, c| {
                let lower = c | 0x20;
                ok & ((lower.wrapping_sub(b'a') < 26)
                    | (c.wrapping_sub(b'0') < 10)
                    | (c == b'-')
                    | (c == b'_')
                    | (c == b'.'))
            })
        })
    });
    g.bench_function("part_token_copy", |b| {
        b.iter(|| black_box(token.as_str()).to_owned())
    });
    g.bench_function("part_moka_get", |b| {
        b.iter(|| cache.get(black_box(token.as_str())).unwrap())
    });
    g.bench_function("part_foldhash_token", |b| {
        use std::hash::BuildHasher as _;
        let hasher = foldhash::fast::RandomState::default();
        b.iter(|| hasher.hash_one(black_box(token.as_str())))
    });
    g.bench_function("part_keystore_current", |b| {
        b.iter(|| provider.store().current().unwrap().generation())
    });
    g.bench_function("part_check_times", |b| {
        b.iter(|| {
            session
                .token()
                .check_times(provider.policy(), black_box(fx.now))
                .unwrap()
        })
    });
    // A named pool is re-selected on every hit: its grants are cloned and indexed anew.
    g.bench_function("part_permissions_rebuild", |b| {
        b.iter(|| Permissions::new(black_box(session.permissions().grants()).to_vec()))
    });
    g.bench_function("part_login_hit_pool_id", |b| {
        b.iter(|| {
            fx.gate
                .login(black_box(&token), request.clone(), fx.now)
                .now_or_never()
                .unwrap()
                .unwrap()
        })
    });
    // The two halves of a miss: validation (no cache), then pool evaluation.
    let validator = fx.gate.validator();
    g.bench_function("part_validate", |b| {
        b.iter(|| {
            validator
                .validate_at(black_box(&token), fx.now)
                .now_or_never()
                .unwrap()
                .unwrap()
        })
    });
    // Validation plus the full claims tree, which pool filters need (built on first use).
    g.bench_function("part_validate_claims", |b| {
        b.iter(|| {
            validator
                .validate_at(black_box(&token), fx.now)
                .now_or_never()
                .unwrap()
                .unwrap()
                .claims()
                .len()
        })
    });
    // Inserting distinct whole-token keys, as a miss does (fresh cache when all are used).
    let keys: Vec<String> = (0..MISS_TOKENS).map(|i| format!("{token}{i:05}")).collect();
    let fresh_cache =
        || -> moka::sync::Cache<Box<str>, Arc<String>, foldhash::fast::RandomState> {
            moka::sync::Cache::builder()
                .max_capacity(poolgate::gate::DEFAULT_CACHE_CAPACITY)
                .expire_after(Ttl(Duration::from_secs(3540)))
                .build_with_hasher(foldhash::fast::RandomState::default())
        };
    let value = Arc::new("value".to_owned());
    let mut insert_cache = fresh_cache();
    let mut next = 0;
    g.bench_function("part_moka_insert", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                if next == keys.len() {
                    insert_cache = fresh_cache();
                    next = 0;
                }
                let run = left.min(keys.len() - next);
                let start = Instant::now();
                for key in &keys[next..next + run] {
                    insert_cache.insert(key.as_str().into(), Arc::clone(&value));
                }
                total += start.elapsed();
                next += run;
                left -= run;
            }
            total
        })
    });
    let pools = fx.gate.config().pools();
    let token = session.token();
    assert_eq!(pools.evaluate_candidates(0, token).len(), 3);
    g.bench_function("part_pool_evaluation", |b| {
        b.iter(|| pools.evaluate_candidates(0, black_box(token)))
    });
    g.finish();
}

/// `testdata/demo.toml` as `poolgate demo` runs it, its key source a JWKS file instead of the
/// local issuer's discovery document: the pools, grants and claim templates are the file's.
fn demo_config(jwks: &Path, dir: &Path) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/demo.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let source = "discovery_url = \"{discovery_url}\"";
    assert!(text.contains(source), "demo.toml's key source changed");
    let text = text
        .replace("{issuer}", ISSUER)
        .replace(source, &format!("jwks_file = \"{}\"", jwks.display()));
    Config::parse(&text, "demo.toml", dir).unwrap()
}

/// One algorithm's cold-login fixture: the demo configuration over one key, distinct tokens,
/// and the bare baseline's pre-parsed key and pre-decoded signatures of the same tokens.
struct Cold {
    alg: SigningAlg,
    gate: Gate,
    keys: KeySet,
    policy: Policy,
    tokens: Vec<String>,
    /// `librdkafka(token, None)` of each token.
    messages: Vec<Vec<u8>>,
    /// Each token's signing input and decoded signature.
    signed: Vec<(String, Vec<u8>)>,
    bare_key: ParsedPublicKey,
}

impl Cold {
    fn new(rt: &tokio::runtime::Runtime, dir: &Path, alg: SigningAlg) -> Cold {
        let key = Arc::new(SigningKey::generate(alg, format!("{alg}-1")));
        let jwk = key.public_jwk();
        let jwks_text = json!({"keys": [jwk]}).to_string();
        let jwks = dir.join(format!("jwks-{alg}.json"));
        std::fs::write(&jwks, &jwks_text).unwrap();
        let config = demo_config(&jwks, dir);
        let policy = config.providers()[0].policy.clone();
        let clock = ManualClock::new(UnixTime::from_secs(NOW));
        let gate = rt
            .block_on(Gate::start_with_clock(config, Arc::new(clock.clone())))
            .unwrap();
        // The demo's `svc-analytics` client, also in the `ops` group: two pools match, one with
        // a claim template (`Topic:tenant-{claims.tenant}-*`); `orders` is ruled out by the
        // index.
        let tokens: Vec<String> = (0..MISS_TOKENS)
            .map(|_| {
                TokenBuilder::with_clock(Arc::clone(&key), ISSUER, &clock)
                    .issued_at(UnixTime::from_secs(NOW - 60))
                    .claim("sub", json!("svc-analytics"))
                    .claim("client_id", json!("svc-analytics"))
                    .claim("scope", json!("kafka.read kafka.write"))
                    .claim("groups", json!(["analytics", "ops"]))
                    .claim("tenant", json!("acme"))
                    .sign()
            })
            .collect();
        let messages = tokens
            .iter()
            .map(|t| librdkafka_to("lkc-demo", t, None))
            .collect();
        let signed = tokens
            .iter()
            .map(|t| {
                let (input, sig64) = t.rsplit_once('.').unwrap();
                (input.to_owned(), B64.decode(sig64).unwrap())
            })
            .collect();
        let field = |name: &str| B64.decode(jwk[name].as_str().unwrap()).unwrap();
        let bare_key = match alg {
            SigningAlg::RS256 => RsaPublicKeyComponents {
                n: &field("n"),
                e: &field("e"),
            }
            .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
            .unwrap(),
            SigningAlg::ES256 => {
                let mut point = vec![4];
                point.extend(field("x"));
                point.extend(field("y"));
                ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point).unwrap()
            }
            SigningAlg::EdDSA => ParsedPublicKey::new(&ED25519, field("x")).unwrap(),
        };
        Cold {
            alg,
            keys: KeySet::from_jwks(jwks_text.as_bytes()).unwrap(),
            gate,
            policy,
            tokens,
            messages,
            signed,
            bare_key,
        }
    }

    fn fresh_gate(&self) -> Gate {
        Gate::new(self.gate.config().clone(), self.gate.validator().clone())
    }
}

/// Per algorithm, against the bare signature check of the same tokens (aws-lc-rs
/// `ParsedPublicKey::verify_sig`, key parsed once, signature decoded beforehand):
/// `poolgate::verify`, a whole cold login (`Gate::authenticate_at` of a client message whose token
/// the gate has never seen, demo.toml's pools and templates), and cache hits with and without
/// `identityPoolId`.
///
/// `bare`, `verify` and `cold_login` cycle through the same `MISS_TOKENS` distinct tokens, so
/// that cold data weighs on each alike. Misses are forced as in `bench_miss`: each token is
/// logged in once per gate; when all are used, a fresh gate over the same configuration and key
/// store (empty cache) takes over outside the timed region.
fn bench_cold(c: &mut Criterion, rt: &tokio::runtime::Runtime, dir: &Path) {
    for alg in SigningAlg::ALL {
        let fx = Cold::new(rt, dir, alg);
        // Sanity: every path accepts the token, and the login is the demo's.
        let (input, signature) = &fx.signed[0];
        fx.bare_key.verify_sig(input.as_bytes(), signature).unwrap();
        let now = UnixTime::from_secs(NOW);
        verify(&fx.tokens[0], &fx.keys, &fx.policy, now).unwrap();
        let hit_token = &fx.tokens[0];
        let auto = librdkafka_to("lkc-demo", hit_token, None);
        let with_pool = librdkafka_to("lkc-demo", hit_token, Some("analytics"));
        let s = login_now(&fx.gate, &auto, now);
        assert_eq!(s.principals(), ["User:analytics", "User:ops"]);
        assert_eq!(s.permissions().len(), 6, "{:?}", s.diagnostics());
        assert!(s.diagnostics().is_empty(), "{:?}", s.diagnostics());
        let s = login_now(&fx.gate, &with_pool, now);
        assert_eq!(s.principals(), ["User:analytics"]);
        let before = fx.gate.cache_stats();
        assert_eq!((before.hits, before.misses), (1, 1));

        let mut g = c.benchmark_group(format!("{COLD}-{}", alg.as_str()));
        let mut i = 0;
        g.bench_function("bare", |b| {
            b.iter(|| {
                let (input, signature) = &fx.signed[i % fx.signed.len()];
                i += 1;
                fx.bare_key
                    .verify_sig(black_box(input.as_bytes()), black_box(signature))
                    .unwrap()
            })
        });
        let mut i = 0;
        g.bench_function("verify", |b| {
            b.iter(|| {
                let token = &fx.tokens[i % fx.tokens.len()];
                i += 1;
                verify(black_box(token), &fx.keys, &fx.policy, now).unwrap()
            })
        });
        let mut firsts = FirstLogins::new(&fx.messages, || fx.fresh_gate(), now);
        g.bench_function("cold_login", |b| b.iter_custom(|iters| firsts.time(iters)));
        assert_eq!(firsts.hits(), 0, "no cold login was a hit");
        g.bench_function("hit_auto", |b| {
            b.iter(|| login_now(&fx.gate, black_box(&auto), now))
        });
        g.bench_function("hit_pool_id", |b| {
            b.iter(|| login_now(&fx.gate, black_box(&with_pool), now))
        });
        g.finish();
        assert_eq!(
            fx.gate.cache_stats().misses,
            before.misses,
            "every measured {} hit was a hit",
            fx.alg.as_str()
        );
    }
}

/// The cold-login table: per algorithm, ratios to the bare check of the same run.
fn print_cold_ratios(mean: &dyn Fn(&str, &str) -> Option<f64>) {
    let group = |alg: &str| format!("{COLD}-{alg}");
    let Some(rs_bare) = mean(&group("RS256"), "bare") else {
        return;
    };
    println!("\ncold logins (mean, this run; ratios to the bare check of the same algorithm):");
    println!(
        "  {:6} {:>9} {:>9} {:>11} {:>9} {:>9} | {:>8} {:>11} | {:>14} {:>17}",
        "alg",
        "bare us",
        "verify us",
        "cold_login us",
        "hit_auto",
        "hit_pool",
        "verify/b",
        "cold_login/b",
        "RS256 b/hit_auto",
        "RS256 b/hit_pool_id"
    );
    for (alg, cold_target) in [("RS256", 1.25), ("ES256", 1.10), ("EdDSA", 1.10)] {
        let g = group(alg);
        let (Some(bare), Some(verify), Some(cold), Some(auto), Some(pool)) = (
            mean(&g, "bare"),
            mean(&g, "verify"),
            mean(&g, "cold_login"),
            mean(&g, "hit_auto"),
            mean(&g, "hit_pool_id"),
        ) else {
            println!("  {alg:6} (not all measured in this run)");
            continue;
        };
        let mark = |ok: bool| if ok { " " } else { "!" };
        println!(
            "  {alg:6} {:9.2} {:9.2} {:13.2} {:7.0}ns {:7.0}ns | {:7.3}x{} {:10.3}x{} | {:13.1}x{} {:16.1}x{}",
            bare / 1e3,
            verify / 1e3,
            cold / 1e3,
            auto,
            pool,
            verify / bare,
            mark(verify / bare <= 1.10),
            cold / bare,
            mark(cold / bare <= cold_target),
            rs_bare / auto,
            mark(rs_bare / auto >= 20.0),
            rs_bare / pool,
            mark(rs_bare / pool >= 20.0),
        );
    }
    println!(
        "  targets: verify <= 1.10x; cold_login <= 1.25x (RS256), <= 1.10x (ES256, EdDSA); hits >= 20x cheaper than RS256 bare; ! = missed"
    );
}

/// Reads criterion's estimates written by this run (older files are ignored).
fn print_ratios(started: SystemTime) {
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned());
    let mean_in = |group: &str, id: &str| -> Option<f64> {
        let path = format!("{dir}/criterion/{group}/{id}/new/estimates.json");
        let fresh = std::fs::metadata(&path).ok()?.modified().ok()? >= started;
        if !fresh {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        v["mean"]["point_estimate"].as_f64()
    };
    let mean = |id: &str| mean_in(GROUP, id);
    let ns = |id: &str| match mean(id) {
        Some(t) => format!("{t:10.1} ns"),
        None => "(not measured in this run)".to_owned(),
    };
    println!("\nmeans, this run:");
    for id in [
        "bare_signature",
        "hit_pool_id",
        "hit_auto",
        "miss_pool_id",
        "authorize_last_grant",
        "authorize_no_grant",
    ] {
        println!("  {id:26} {}", ns(id));
    }
    println!("\nratios (mean, this run):");
    if let Some(bare) = mean("bare_signature") {
        for id in ["hit_pool_id", "hit_auto"] {
            if let Some(hit) = mean(id) {
                let x = bare / hit;
                let verdict = if x >= 20.0 { "met" } else { "MISSED" };
                println!("  bare_signature / {id:12} = {x:7.1}x  (target >= 20x: {verdict})");
            }
        }
        if let Some(miss) = mean("miss_pool_id") {
            println!("  miss_pool_id / bare_signature = {:7.3}x", miss / bare);
        }
    }
    for id in ["authorize_last_grant", "authorize_no_grant"] {
        if let Some(t) = mean(id) {
            println!("  {id}: {t:.1} ns per call");
        }
    }
    println!("\nbreakdown of a cache hit (each part alone, mean):");
    println!(
        "  (token {} bytes, message {} bytes)",
        TOKEN_LEN.load(std::sync::atomic::Ordering::Relaxed),
        MESSAGE_LEN.load(std::sync::atomic::Ordering::Relaxed)
    );
    for id in [
        "part_sasl_parse",
        "part_sasl_utf8_check",
        "part_sasl_token_scan",
        "whatif_token_scan_branchless",
        "part_token_copy",
        "part_moka_get",
        "part_foldhash_token",
        "part_keystore_current",
        "part_check_times",
        "part_permissions_rebuild",
        "part_login_hit_pool_id",
        "part_validate",
        "part_validate_claims",
        "part_pool_evaluation",
        "part_moka_insert",
        "part_bare_distinct",
        "part_validate_pools_distinct",
    ] {
        println!("  {id:26} {}", ns(id));
    }
    print_cold_ratios(&mean_in);
}

fn main() {
    let started = SystemTime::now();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let fx = Fixture::new();
    // Nothing on the measured paths awaits, but a spawn would need a runtime context.
    let _guard = fx.rt.enter();
    bench_logins(&mut c, &fx);
    bench_authorize(&mut c, &fx);
    bench_breakdown(&mut c, &fx);
    bench_cold(&mut c, &fx.rt, &fx.dir);
    c.final_summary();
    print_ratios(started);
}
