//! Owns the login facade: a SASL/OAUTHBEARER client message in, a [`Session`] (principals,
//! identity, permissions, expiry) or a [`Rejection`] (reason code and challenge bytes) out, with
//! a cache of verified tokens for clients that reconnect with the same token.
//!
//! The async shell that ties the pure parts together: SASL parsing, token validation (through
//! the [`Validator`]), pool evaluation and selection, authorization.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::authz::Operation;
use crate::authz::{Authorization, Permissions, Resource};
use crate::cache::TokenCache;
use crate::config::Config;
use crate::error::{ValidationError, clip};
use crate::keystore::KeyStoreError;
use crate::pool::{PoolOutcome, PoolSet};
use crate::sasl::{ClientFirstMessage, ErrorChallenge, SaslError};
use crate::time::{Clock, SystemClock, UnixTime};
use crate::validator::{Provider, Validator, ValidatorError};
use crate::verify::VerifiedToken;

/// The default bound on cached verified tokens.
pub const DEFAULT_CACHE_CAPACITY: u64 = 100_000;

/// Why a login was refused. [`LoginError::code`] is the stable reason code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// The SASL client message is malformed (`malformed_sasl`).
    #[error(transparent)]
    Sasl(#[from] SaslError),
    /// The token did not validate (its own code: `expired`, `bad_signature`, ...).
    #[error(transparent)]
    Token(#[from] ValidationError),
    /// `logicalCluster` names another cluster, or is missing while required (`wrong_cluster`).
    #[error("logical cluster {} is not this cluster `{expected}`", found.as_deref().map_or("(absent)".to_owned(), |f| format!("`{}`", clip(f))))]
    WrongCluster {
        /// This cluster's id.
        expected: String,
        /// The id the client sent, if any.
        found: Option<String>,
    },
    /// `identityPoolId` names a pool that does not exist or belongs to another provider
    /// (`unknown_pool`).
    #[error("identity pool `{id}` is not a pool of this token's provider")]
    UnknownPool {
        /// The pool id as sent (clipped).
        id: String,
    },
    /// No pool accepts the token (`no_pool_matched`).
    #[error("no identity pool matched the token")]
    NoPoolMatched,
    /// The SASL authorization identity differs from the token's identity (`authzid_mismatch`).
    #[error("the authorization identity is not the token's identity")]
    AuthzidMismatch,
}

impl LoginError {
    /// The stable snake_case reason code.
    pub fn code(&self) -> &'static str {
        match self {
            LoginError::Sasl(e) => e.code(),
            LoginError::Token(e) => e.code().as_str(),
            LoginError::WrongCluster { .. } => "wrong_cluster",
            LoginError::UnknownPool { .. } => "unknown_pool",
            LoginError::NoPoolMatched => "no_pool_matched",
            LoginError::AuthzidMismatch => "authzid_mismatch",
        }
    }
}

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

/// What a login asks for besides the token: the SASL extensions and authorization identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoginRequest {
    /// `identityPoolId`: the pools to consider, or `None` for automatic pool mapping.
    pub pools: Option<Vec<String>>,
    /// `logicalCluster`.
    pub logical_cluster: Option<String>,
    /// The GS2 authorization identity.
    pub authzid: Option<String>,
    /// Every extension, as sent.
    pub extensions: Vec<(String, String)>,
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
        &self.selection.principals
    }

    /// The identity: the identity claim's value in the first matched pool.
    pub fn identity(&self) -> &str {
        &self.selection.identity
    }

    /// The ids of the matched pools.
    pub fn pools(&self) -> &[String] {
        &self.selection.pool_ids
    }

    /// The provider that issued the token.
    pub fn provider_id(&self) -> &str {
        &self.login.provider_id
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

    /// The union of the matched pools' grants.
    pub fn permissions(&self) -> &Permissions {
        &self.selection.permissions
    }

    /// Grants dropped at expansion and filters that errored, for the matched and evaluated
    /// pools; they do not fail the login.
    pub fn diagnostics(&self) -> &[String] {
        &self.selection.diagnostics
    }

    /// May this session do `op` on `resource`? The decision comes with the grant that decided.
    pub fn authorize(&self, op: Operation, resource: &Resource<'_>) -> Authorization<'_> {
        self.selection.permissions.authorize(op, resource)
    }
}

/// A token's verification and pool outcomes, independent of a login's extensions: what the
/// cache keeps.
#[derive(Debug)]
pub(crate) struct CachedLogin {
    pub(crate) token: VerifiedToken,
    provider: usize,
    pub(crate) provider_id: String,
    /// The key set generation the signature was checked against.
    generation: u64,
    /// Candidate pools and their outcomes, in pool order.
    outcomes: Vec<(usize, PoolOutcome)>,
    /// The selection without `identityPoolId`: every matched pool. `None` when none matched.
    auto: Option<Arc<Selection>>,
    /// Positions of the matched pools (those of `auto`), ascending.
    matched: Vec<usize>,
    /// Selections built for `identityPoolId` subsets, kept so a cache hit does not rebuild
    /// them (a handful at most: clients of one token name the same pools).
    named: std::sync::Mutex<Vec<(Vec<usize>, Arc<Selection>)>>,
}

impl CachedLogin {
    /// The selection of these matched pools (ascending positions): `auto` when they are all
    /// the matched pools, else a memoised one.
    fn selection_of(
        &self,
        pools: &PoolSet,
        chosen: Vec<usize>,
    ) -> Result<Arc<Selection>, LoginError> {
        if chosen.is_empty() {
            return Err(LoginError::NoPoolMatched);
        }
        if chosen == self.matched
            && let Some(auto) = &self.auto
        {
            return Ok(Arc::clone(auto));
        }
        let mut named = self
            .named
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, s)) = named.iter().find(|(c, _)| *c == chosen) {
            return Ok(Arc::clone(s));
        }
        let selection =
            Arc::new(select(pools, &self.outcomes, &chosen).ok_or(LoginError::NoPoolMatched)?);
        if named.len() < MAX_NAMED_SELECTIONS {
            named.push((chosen, Arc::clone(&selection)));
        }
        Ok(selection)
    }
}

/// How many `identityPoolId` selections one cached token remembers.
const MAX_NAMED_SELECTIONS: usize = 4;

#[derive(Debug)]
struct Selection {
    pool_ids: Vec<String>,
    principals: Vec<String>,
    identity: String,
    permissions: Permissions,
    diagnostics: Vec<String>,
}

/// Builds the selection of these matched pools, with the diagnostics of every evaluated pool.
fn select(
    pools: &PoolSet,
    outcomes: &[(usize, PoolOutcome)],
    chosen: &[usize],
) -> Option<Selection> {
    let mut pool_ids = Vec::new();
    let mut principals = Vec::new();
    let mut identity = None;
    let mut grants = Vec::new();
    let mut diagnostics = Vec::new();
    for (position, outcome) in outcomes {
        let Some(pool) = pools.pools().get(*position) else {
            continue;
        };
        match outcome {
            PoolOutcome::Matched {
                identity: id,
                grants: g,
                dropped,
            } => {
                for d in dropped {
                    diagnostics.push(format!(
                        "pool `{}`: grant {} dropped: {}",
                        pool.id(),
                        d.origin.index + 1,
                        d.reason
                    ));
                }
                if chosen.contains(position) {
                    pool_ids.push(pool.id().to_owned());
                    principals.push(pool.principal());
                    identity.get_or_insert_with(|| id.clone());
                    grants.extend(g.iter().cloned());
                }
            }
            PoolOutcome::NotMatched(crate::pool::NoMatch::FilterError(e)) => {
                diagnostics.push(format!("pool `{}`: filter error: {e}", pool.id()));
            }
            PoolOutcome::NotMatched(_) => {}
        }
    }
    Some(Selection {
        pool_ids,
        principals,
        identity: identity?,
        permissions: Permissions::new(grants),
        diagnostics,
    })
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
    /// to the configuration's by issuer).
    pub fn new(config: Config, validator: Validator) -> Gate {
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
        let cache = TokenCache::new(DEFAULT_CACHE_CAPACITY);
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
        self.check_cluster(&request)?;
        let login = self.verified(token, now).await?;
        self.session(login, request)
    }

    /// The `logicalCluster` rule of `[cluster]`.
    pub(crate) fn check_cluster(&self, request: &LoginRequest) -> Result<(), LoginError> {
        let cluster = self.inner.config.cluster();
        if let Some(expected) = &cluster.id {
            match &request.logical_cluster {
                Some(found) if found == expected => {}
                None if !cluster.require_logical_cluster => {}
                found => {
                    return Err(LoginError::WrongCluster {
                        expected: expected.clone(),
                        found: found.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Chooses the pools for this login and builds its session.
    pub(crate) fn session(
        &self,
        login: Arc<CachedLogin>,
        request: LoginRequest,
    ) -> Result<Session, LoginError> {
        let pools = self.inner.config.pools();
        let selection = match &request.pools {
            None => login.auto.clone().ok_or(LoginError::NoPoolMatched)?,
            Some(ids) => {
                let mut chosen = Vec::with_capacity(ids.len());
                for id in ids {
                    let position = pools
                        .position(id)
                        .filter(|p| pools.pools()[*p].provider_id() == login.provider_id)
                        .ok_or_else(|| LoginError::UnknownPool { id: clip(id) })?;
                    if login.matched.binary_search(&position).is_ok() {
                        chosen.push(position);
                    }
                }
                chosen.sort_unstable();
                chosen.dedup();
                login.selection_of(pools, chosen)?
            }
        };
        if let Some(authzid) = &request.authzid
            && *authzid != selection.identity
        {
            return Err(LoginError::AuthzidMismatch);
        }
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
            if snapshot.generation() == hit.generation {
                hit.token.check_times(provider.policy(), now)?;
                inner.cache_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(hit);
            }
            // The key set changed: the signing key may have left it. Verify afresh.
            inner.cache.invalidate(token);
        }
        inner.cache_misses.fetch_add(1, Ordering::Relaxed);
        let token_v = inner.validator.validate_at(token, now).await?;
        let provider = inner
            .validator
            .provider_index(token_v.issuer())
            .ok_or_else(|| ValidationError::UnknownIssuer {
                issuer: clip(token_v.issuer()),
            })?;
        let generation = inner.validator.providers()[provider]
            .store()
            .current()?
            .generation();
        let pools = inner.config.pools();
        let config_provider = inner
            .config
            .providers()
            .iter()
            .position(|p| p.id == inner.provider_ids[provider])
            .unwrap_or(usize::MAX);
        let outcomes = pools.evaluate_candidates(config_provider, token_v.claims());
        let matched: Vec<usize> = outcomes
            .iter()
            .filter(|(_, o)| o.is_match())
            .map(|(p, _)| *p)
            .collect();
        let auto = select(pools, &outcomes, &matched).map(Arc::new);
        let expires_at = token_v.expires_at();
        let login = Arc::new(CachedLogin {
            token: token_v,
            provider,
            provider_id: inner.provider_ids[provider].clone(),
            generation,
            outcomes,
            auto,
            matched,
            named: std::sync::Mutex::new(Vec::new()),
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
