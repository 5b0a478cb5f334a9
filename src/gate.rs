//! Owns the login facade: a SASL/OAUTHBEARER client message in, a [`Session`] (principals,
//! identity, permissions, expiry) or a [`Rejection`] (reason code and challenge bytes) out, with
//! a cache of verified tokens for clients that reconnect with the same token.
//!
//! The async shell and nothing more: SASL parsing, token validation (through the
//! [`Validator`]), the cache, and the wiring to the pure login step
//! ([`login`](crate::login): pool evaluation and selection, the cluster rule).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::authz::Operation;
use crate::authz::{Authorization, Permissions, Resource};
use crate::cache::TokenCache;
use crate::config::Config;
use crate::error::{ValidationError, clip};
use crate::keystore::{KeyStoreError, Snapshot};
use crate::login::{Diagnostic, PoolEvaluation, Selection, check_cluster};
use crate::sasl::{ClientFirstMessage, ErrorChallenge};
use crate::time::{Clock, SystemClock, UnixTime};
use crate::validator::{Provider, Validator, ValidatorError};
use crate::verify::VerifiedToken;

pub use crate::login::{LoginError, LoginRequest};

/// The default bound on cached verified tokens.
pub const DEFAULT_CACHE_CAPACITY: u64 = 100_000;

/// A refused login: the reason (for logs and metrics) and the RFC 7628 error challenge to send
/// to the client, which reveals nothing but `invalid_token`.
#[derive(Clone, Debug)]
pub struct Rejection {
    error: LoginError,
    challenge: Vec<u8>,
}

impl Rejection {
    /// Why.
    pub fn error(&self) -> &LoginError {
        &self.error
    }

    /// The stable reason code.
    pub fn code(&self) -> &'static str {
        self.error.code()
    }

    /// The server's error challenge, to send before failing the exchange.
    pub fn challenge(&self) -> &[u8] {
        &self.challenge
    }
}

/// An authenticated session: who, through which pools, with which permissions, until when.
#[derive(Clone, Debug)]
pub struct Session {
    login: Arc<CachedLogin>,
    selection: Arc<Selection>,
    extensions: Vec<(String, String)>,
}

impl Session {
    /// The principals, `User:<pool-id>` for each matched pool, in pool order.
    pub fn principals(&self) -> &[String] {
        self.selection.principals()
    }

    /// The identity: the identity claim's value in the first matched pool.
    pub fn identity(&self) -> &str {
        self.selection.identity()
    }

    /// The ids of the matched pools.
    pub fn pools(&self) -> &[String] {
        self.selection.pools()
    }

    /// The provider that issued the token.
    pub fn provider_id(&self) -> &str {
        self.login.evaluation.provider_id()
    }

    /// The verified token.
    pub fn token(&self) -> &VerifiedToken {
        &self.login.token
    }

    /// The token's claims.
    pub fn claims(&self) -> &Map<String, Value> {
        self.login.token.claims()
    }

    /// When the token expires: the session must re-authenticate before then.
    pub fn expires_at(&self) -> UnixTime {
        self.login.token.expires_at()
    }

    /// KIP-368 `session_lifetime_ms`: time left until the token expires, at `now`.
    pub fn lifetime_at(&self, now: UnixTime) -> Duration {
        self.expires_at().saturating_since(now)
    }

    /// The SASL extensions the client sent.
    pub fn extensions(&self) -> &[(String, String)] {
        &self.extensions
    }

    /// The pools this session took, as the login step chose them.
    pub fn selection(&self) -> &Selection {
        &self.selection
    }

    /// The union of the matched pools' grants.
    pub fn permissions(&self) -> &Permissions {
        self.selection.permissions()
    }

    /// Grants dropped at expansion and filters that errored, for the matched and evaluated
    /// pools; they do not fail the login.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        self.selection.diagnostics()
    }

    /// May this session do `op` on `resource`? The decision comes with the grant that decided.
    pub fn authorize(&self, op: Operation, resource: &Resource<'_>) -> Authorization<'_> {
        self.selection.authorize(op, resource)
    }
}

/// A token's verification and pool evaluation, independent of a login's extensions: what the
/// cache keeps.
#[derive(Debug)]
pub(crate) struct CachedLogin {
    pub(crate) token: VerifiedToken,
    /// The provider's position in the validator.
    provider: usize,
    pub(crate) evaluation: PoolEvaluation,
    /// The key set whose key verified the token.
    keys: Arc<Snapshot>,
    /// The latest key set generation known to hold that key.
    generation: AtomicU64,
}

impl CachedLogin {
    /// Whether the key that verified the token is still in `current`, with the same `kid` and
    /// the same material: then a fresh verification would pick it again and the signature
    /// still holds. A key set that changed elsewhere (a key added, another removed) keeps the
    /// hit; a key removed or replaced under its `kid` does not.
    fn still_verifies(&self, current: &Snapshot) -> bool {
        if current.generation() == self.generation.load(Ordering::Relaxed) {
            return true;
        }
        let (kid, alg) = (self.token.kid(), self.token.algorithm());
        let same = match (
            self.keys.keys().select(kid, alg),
            current.keys().select(kid, alg),
        ) {
            (Ok(then), Ok(now)) => then == now,
            _ => false,
        };
        if same {
            self.generation
                .fetch_max(current.generation(), Ordering::Relaxed);
        }
        same
    }
}

/// Whether a start-up failure is the IdP's (retry later) rather than the configuration's.
/// Whether two provider configurations are the same in every setting (compared as written out,
/// since policies hold compiled parts).
fn same_provider(a: &crate::config::ProviderConfig, b: &crate::config::ProviderConfig) -> bool {
    a.id == b.id
        && a.source == b.source
        && format!("{:?}", a.policy) == format!("{:?}", b.policy)
        && format!("{:?}", a.store) == format!("{:?}", b.store)
}

/// Starts one provider; when its keys cannot be fetched now for a reason that may pass, it
/// starts empty and retries in the background, and the failure is returned beside it.
async fn start_provider_lenient(
    p: &crate::config::ProviderConfig,
    clock: &Arc<dyn Clock>,
) -> Result<(Provider, Option<GateError>), GateError> {
    let start = |store: crate::keystore::KeyStoreConfig| {
        Provider::start(p.policy.clone(), p.source.clone(), store, clock.clone())
    };
    match start(p.store.clone()).await {
        Ok(provider) => Ok((provider, None)),
        Err(source) if tolerable(&source) => {
            let failure = GateError::KeyStore {
                provider: p.id.clone(),
                source,
            };
            let empty = crate::keystore::KeyStoreConfig {
                start_empty: true,
                ..p.store.clone()
            };
            let provider = start(empty).await.map_err(|source| GateError::KeyStore {
                provider: p.id.clone(),
                source,
            })?;
            Ok((provider, Some(failure)))
        }
        Err(source) => Err(GateError::KeyStore {
            provider: p.id.clone(),
            source,
        }),
    }
}

fn tolerable(e: &KeyStoreError) -> bool {
    use crate::discovery::DiscoveryError;
    use crate::fetch::FetchError;
    match e {
        KeyStoreError::Fetch(FetchError::InsecureUrl(_)) => false,
        KeyStoreError::Discovery(DiscoveryError::WrongIssuer { .. }) => false,
        KeyStoreError::Fetch(_) | KeyStoreError::Discovery(_) | KeyStoreError::Jwks(_) => true,
        _ => false,
    }
}

fn challenge_bytes(config: &Config) -> Vec<u8> {
    let mut challenge = ErrorChallenge::invalid_token();
    challenge.scope = config.sasl().challenge_scope.clone();
    challenge.openid_configuration = config.sasl().challenge_openid_configuration.clone();
    challenge.to_bytes()
}

/// Starting a gate failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GateError {
    /// A provider's keys could not be loaded.
    #[error("provider `{provider}`: {source}")]
    KeyStore {
        /// The provider's id.
        provider: String,
        /// Why.
        source: KeyStoreError,
    },
    /// The providers cannot be used together.
    #[error(transparent)]
    Validator(#[from] ValidatorError),
}

/// The login facade over one configuration. Cheap to clone; share it across connections. A
/// new configuration means a new `Gate` (and so an empty cache).
///
/// ```no_run
/// # async fn demo(bytes: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
/// use poolgate::config::Config;
/// use poolgate::gate::Gate;
/// let gate = Gate::start(Config::load("poolgate.toml".as_ref())?).await?;
/// match gate.authenticate(bytes).await {
///     Ok(session) => println!("{} as {:?}", session.identity(), session.principals()),
///     Err(rejection) => println!("refused: {}", rejection.code()),
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Gate {
    inner: Arc<GateInner>,
}

struct GateInner {
    config: Config,
    validator: Validator,
    /// Provider position in the validator → position in the configuration.
    provider_ids: Vec<String>,
    /// Verified tokens, each kept until its `exp`.
    cache: TokenCache<CachedLogin>,
    challenge: Vec<u8>,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
}

/// Counters of a gate's verified-token cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Logins whose token verification came from the cache.
    pub hits: u64,
    /// Logins that verified their token.
    pub misses: u64,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("config", &self.inner.config.file())
            .field("cached", &self.inner.cache.len())
            .finish_non_exhaustive()
    }
}

impl Gate {
    /// Starts every provider's key store (failing fast unless a provider starts empty) and
    /// builds the gate, reading the system clock.
    ///
    /// # Errors
    /// [`GateError`].
    pub async fn start(config: Config) -> Result<Gate, GateError> {
        Gate::start_with_clock(config, Arc::new(SystemClock)).await
    }

    /// As [`Gate::start`], with a clock.
    ///
    /// # Errors
    /// [`GateError`].
    pub async fn start_with_clock(
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Gate, GateError> {
        let mut providers = Vec::new();
        for p in config.providers() {
            let provider = Provider::start(
                p.policy.clone(),
                p.source.clone(),
                p.store.clone(),
                clock.clone(),
            )
            .await
            .map_err(|source| GateError::KeyStore {
                provider: p.id.clone(),
                source,
            })?;
            providers.push(provider);
        }
        let validator = Validator::with_clock(providers, clock)?;
        Ok(Gate::new(config, validator))
    }

    /// As [`Gate::start_with_clock`], but a provider whose keys cannot be fetched now (IdP
    /// down, an error status, garbage, oversized, no usable key) starts empty and retries in
    /// the background: its tokens are rejected with `jwks_unavailable` while the other
    /// providers work. Those failures are returned beside the gate. A configuration that
    /// cannot work (a discovery document naming another issuer, a plain-http URL) still fails.
    ///
    /// # Errors
    /// [`GateError`] for a configuration that cannot work.
    pub async fn start_lenient(
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<(Gate, Vec<GateError>), GateError> {
        let mut providers = Vec::new();
        let mut degraded = Vec::new();
        for p in config.providers() {
            let (provider, failure) = start_provider_lenient(p, &clock).await?;
            providers.push(provider);
            degraded.extend(failure);
        }
        let validator = Validator::with_clock(providers, clock)?;
        Ok((Gate::new(config, validator), degraded))
    }

    /// A gate for a new `config` (a configuration reload): a provider configured exactly as
    /// before (same id, policy, key source and fetch settings) keeps its key store and keys, so
    /// a reload causes no refetch; the others start as in [`Gate::start_lenient`]. The token
    /// cache starts empty, since pools and grants may have changed. This gate is untouched.
    ///
    /// # Errors
    /// [`GateError`] for a configuration that cannot work.
    pub async fn reload(&self, config: Config) -> Result<(Gate, Vec<GateError>), GateError> {
        let clock = Arc::clone(self.inner.validator.clock());
        let mut providers = Vec::new();
        let mut degraded = Vec::new();
        for p in config.providers() {
            let kept = self
                .inner
                .config
                .providers()
                .iter()
                .find(|old| same_provider(old, p))
                .and_then(|old| self.inner.provider_ids.iter().position(|id| *id == old.id))
                .and_then(|i| self.inner.validator.providers().get(i).cloned());
            match kept {
                Some(provider) => providers.push(provider),
                None => {
                    let (provider, failure) = start_provider_lenient(p, &clock).await?;
                    providers.push(provider);
                    degraded.extend(failure);
                }
            }
        }
        let validator = Validator::with_clock(providers, clock)?;
        Ok((Gate::new(config, validator), degraded))
    }

    /// A gate over a configuration and a validator built elsewhere (its providers are matched
    /// to the configuration's by issuer), caching up to [`DEFAULT_CACHE_CAPACITY`] verified
    /// tokens.
    pub fn new(config: Config, validator: Validator) -> Gate {
        Gate::with_cache_capacity(config, validator, DEFAULT_CACHE_CAPACITY)
    }

    /// As [`Gate::new`], caching up to `capacity` verified tokens (split over up to 64 shards;
    /// a full shard drops its oldest entry; 0 caches nothing).
    pub fn with_cache_capacity(config: Config, validator: Validator, capacity: u64) -> Gate {
        let provider_ids = validator
            .providers()
            .iter()
            .map(|p| {
                config
                    .providers()
                    .iter()
                    .find(|c| c.policy.issuer() == p.policy().issuer())
                    .map(|c| c.id.clone())
                    .unwrap_or_default()
            })
            .collect();
        let challenge = challenge_bytes(&config);
        let cache = TokenCache::new(capacity);
        Gate {
            inner: Arc::new(GateInner {
                config,
                validator,
                provider_ids,
                cache,
                challenge,
                cache_hits: AtomicU64::new(0),
                cache_misses: AtomicU64::new(0),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The validator.
    pub fn validator(&self) -> &Validator {
        &self.inner.validator
    }

    /// Authenticates a SASL/OAUTHBEARER client first message, now.
    ///
    /// # Errors
    /// A [`Rejection`] with its reason and challenge.
    pub async fn authenticate(&self, client_first_message: &[u8]) -> Result<Session, Rejection> {
        let now = self.inner.validator.clock().now();
        self.authenticate_at(client_first_message, now).await
    }

    /// Authenticates a SASL/OAUTHBEARER client first message as of `now`.
    ///
    /// # Errors
    /// A [`Rejection`] with its reason and challenge.
    pub async fn authenticate_at(
        &self,
        client_first_message: &[u8],
        now: UnixTime,
    ) -> Result<Session, Rejection> {
        let msg =
            ClientFirstMessage::parse(client_first_message).map_err(|e| self.reject(e.into()))?;
        let pools = msg
            .identity_pool_ids()
            .map(|ids| ids.into_iter().map(str::to_owned).collect());
        let logical_cluster = msg.logical_cluster().map(str::to_owned);
        let (token, authzid, extensions) = msg.into_parts();
        let request = LoginRequest {
            pools,
            logical_cluster,
            authzid,
            extensions,
        };
        self.login(&token, request, now).await
    }

    /// Authenticates a bare token with the given extensions (what the CLI's `check` does).
    ///
    /// # Errors
    /// A [`Rejection`] with its reason and challenge.
    pub async fn login(
        &self,
        token: &str,
        request: LoginRequest,
        now: UnixTime,
    ) -> Result<Session, Rejection> {
        self.login_inner(token, request, now)
            .await
            .map_err(|e| self.reject(e))
    }

    pub(crate) fn reject(&self, error: LoginError) -> Rejection {
        Rejection {
            error,
            challenge: self.inner.challenge.clone(),
        }
    }

    pub(crate) async fn login_inner(
        &self,
        token: &str,
        request: LoginRequest,
        now: UnixTime,
    ) -> Result<Session, LoginError> {
        check_cluster(self.inner.config.cluster(), &request)?;
        let login = self.verified(token, now).await?;
        self.session(login, request)
    }

    /// This login's session over a (cached) verified token: the login step's selection for
    /// this request.
    pub(crate) fn session(
        &self,
        login: Arc<CachedLogin>,
        request: LoginRequest,
    ) -> Result<Session, LoginError> {
        let selection = login
            .evaluation
            .select(self.inner.config.pools(), &request)?;
        Ok(Session {
            login,
            selection,
            extensions: request.extensions,
        })
    }

    /// The cached verification of `token`, or a fresh one (then cached).
    pub(crate) async fn verified(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<Arc<CachedLogin>, LoginError> {
        let inner = &self.inner;
        if let Some(hit) = inner.cache.get(token, now) {
            let provider = &inner.validator.providers()[hit.provider];
            let snapshot = provider.store().current()?;
            if hit.still_verifies(&snapshot) {
                hit.token.check_times(provider.policy(), now)?;
                inner.cache_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(hit);
            }
            // The key that verified it left the set or was replaced: verify afresh.
            inner.cache.invalidate(token);
        }
        inner.cache_misses.fetch_add(1, Ordering::Relaxed);
        let (token_v, keys) = inner.validator.validate_keyed(token, now).await?;
        let provider = inner
            .validator
            .provider_index(token_v.issuer())
            .ok_or_else(|| ValidationError::UnknownIssuer {
                issuer: clip(token_v.issuer()),
            })?;
        let evaluation = PoolEvaluation::new(
            inner.config.pools(),
            &inner.provider_ids[provider],
            &token_v,
        );
        let expires_at = token_v.expires_at();
        let login = Arc::new(CachedLogin {
            token: token_v,
            provider,
            evaluation,
            generation: AtomicU64::new(keys.generation()),
            keys,
        });
        if now < expires_at {
            inner.cache.insert(token, Arc::clone(&login), expires_at);
        }
        Ok(login)
    }

    /// The cache's hit and miss counters.
    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            hits: self.inner.cache_hits.load(Ordering::Relaxed),
            misses: self.inner.cache_misses.load(Ordering::Relaxed),
        }
    }

    /// How many verified tokens are cached and not expired by the gate's clock (expired ones
    /// are dropped first).
    pub fn cached_tokens_sync(&self) -> u64 {
        let now = self.inner.validator.clock().now();
        self.inner.cache.purge_expired(now)
    }
}
