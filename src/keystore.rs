//! Owns one provider's live key set: initial load, periodic refresh with jitter and backoff,
//! single-flight rate-limited refetch on unknown `kid`, stale-if-error, and stats.
//!
//! The async shell around [`KeySet`]. Readers take an immutable `Arc` snapshot and never wait
//! on a fetch; no lock is held across an `.await`.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, Weak};
use std::time::Duration;

use tokio::sync::watch;
use url::Url;

use crate::discovery::{Discovery, DiscoveryError};
use crate::error::ValidationError;
use crate::fetch::{FetchError, FetchOptions, Fetcher};
use crate::keys::{JwksError, KeySet, MAX_KID_LEN};
use crate::time::{Clock, UnixTime};

/// Where a provider's keys come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// An OpenID Connect discovery URL; its `issuer` must equal the provider's issuer.
    Discovery(Url),
    /// A JWKS URL.
    JwksUrl(Url),
    /// A JWKS file, for offline use; re-read on refresh and on unknown `kid`.
    JwksFile(PathBuf),
}

/// How a key store fetches and refreshes. Every default is the safe, documented one.
///
/// ```
/// use poolgate::KeyStoreConfig;
/// use std::time::Duration;
/// let cfg = KeyStoreConfig::default();
/// assert_eq!(cfg.refresh_interval, Duration::from_secs(3600));
/// assert_eq!(cfg.min_refresh_interval, Duration::from_secs(10));
/// assert_eq!(cfg.max_stale, Duration::from_secs(7 * 24 * 3600));
/// ```
#[derive(Clone, Debug)]
pub struct KeyStoreConfig {
    /// Periodic refresh interval when the server sends no `max-age` (default 1 h). A `max-age`
    /// is honoured but clamped to `min_refresh_interval..=refresh_interval`.
    pub refresh_interval: Duration,
    /// No unknown-`kid` refetch starts within this long of the previous one (default 10 s).
    pub min_refresh_interval: Duration,
    /// The last good key set is served at most this long after it was fetched (default 7 d).
    pub max_stale: Duration,
    /// How long a validation waits for an unknown-`kid` refetch (default 2 s).
    pub refetch_wait: Duration,
    /// A `kid` still unknown after a refetch is not refetched for again for this long
    /// (default 5 min), unless a scheduled refresh brings it.
    pub negative_ttl: Duration,
    /// How many unknown `kid`s are remembered (default 10 000).
    pub negative_capacity: u64,
    /// Start even when the first fetch fails, then retry in the background (default false:
    /// fail fast).
    pub start_empty: bool,
    /// HTTP options: timeouts, size cap, insecure loopback http.
    pub fetch: FetchOptions,
}

impl Default for KeyStoreConfig {
    fn default() -> Self {
        KeyStoreConfig {
            refresh_interval: Duration::from_secs(3600),
            min_refresh_interval: Duration::from_secs(10),
            max_stale: Duration::from_secs(7 * 24 * 3600),
            refetch_wait: Duration::from_secs(2),
            negative_ttl: Duration::from_secs(300),
            negative_capacity: 10_000,
            start_empty: false,
            fetch: FetchOptions::default(),
        }
    }
}

/// Why keys could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyStoreError {
    /// The document could not be fetched.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The discovery document is unusable.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The key set is unusable.
    #[error(transparent)]
    Jwks(#[from] JwksError),
    /// A fixed key set is never fetched.
    #[error("this key store holds a fixed key set and does not fetch")]
    Fixed,
}

/// One loaded key set and when it was loaded.
#[derive(Debug)]
pub struct Snapshot {
    keys: KeySet,
    fetched_at: UnixTime,
    generation: u64,
}

impl Snapshot {
    /// The keys.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// When they were fetched.
    pub fn fetched_at(&self) -> UnixTime {
        self.fetched_at
    }

    /// Increments when an installed key set differs from the one before (a key added,
    /// removed or replaced); a refresh that fetches the same keys keeps it, so verifications
    /// remembered against a generation stay valid across refreshes.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// Counters a gateway would graph.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyStoreStats {
    /// Successful fetches (discovery + key set counted once).
    pub fetches_ok: u64,
    /// Failed fetches.
    pub fetches_failed: u64,
    /// Fetches triggered by an unknown `kid`.
    pub unknown_kid_refetches: u64,
    /// Unknown-`kid` lookups answered without a fetch (rate limit, negative cache, absurd kid).
    pub unknown_kid_suppressed: u64,
    /// Usable keys in the current set.
    pub keys_loaded: u64,
    /// When the current set was fetched.
    pub last_success: Option<UnixTime>,
    /// The last failure, if the latest attempt failed.
    pub last_error: Option<String>,
}

/// A provider's live key set. Cheap to clone; clones share everything.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use poolgate::{KeySource, KeyStore, KeyStoreConfig, SystemClock};
/// use std::sync::Arc;
/// let store = KeyStore::start(
///     "https://idp.example.com",
///     KeySource::Discovery("https://idp.example.com/.well-known/openid-configuration".parse()?),
///     KeyStoreConfig::default(),
///     Arc::new(SystemClock),
/// ).await?;
/// println!("{} keys", store.current()?.keys().len());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct KeyStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    issuer: String,
    /// `None` for a fixed key set, which never fetches.
    source: Option<KeySource>,
    config: KeyStoreConfig,
    clock: Arc<dyn Clock>,
    fetcher: Option<Fetcher>,
    /// What readers take: written by an install, read by every validation. Kept apart from
    /// `state` so a validation never waits on fetch bookkeeping.
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    /// Everything a fetch outcome or an unknown-`kid` decision changes, changed together.
    state: Mutex<State>,
    /// Unknown-`kid` lookups answered without a fetch; counted on paths that take no lock.
    suppressed: AtomicU64,
    /// Bumped after every completed fetch attempt, success or not; waiters watch it.
    attempts: watch::Sender<u64>,
    negative: moka::sync::Cache<String, UnixTime>,
    /// Set once, when the refresh loop is spawned; aborted when the store is dropped.
    refresher: OnceLock<tokio::task::AbortHandle>,
}

/// The fetch bookkeeping: what the last attempt found, and the single-flight refetch.
#[derive(Debug, Default)]
struct State {
    /// The key set URL the last discovery document named.
    jwks_uri: Option<Url>,
    /// `Cache-Control: max-age` of the last successful key set response.
    max_age: Option<Duration>,
    /// The last failure, cleared by a success.
    last_error: Option<String>,
    fetches_ok: u64,
    fetches_failed: u64,
    unknown_kid_refetches: u64,
    /// An unknown-`kid` refetch is running.
    refetch_in_flight: bool,
    last_unknown_kid_fetch: Option<UnixTime>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    Start,
    Scheduled,
    UnknownKid,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(handle) = self.refresher.get() {
            handle.abort();
        }
    }
}

impl KeyStore {
    /// Loads the provider's keys and starts refreshing them in the background (on the current
    /// tokio runtime).
    ///
    /// # Errors
    /// The first load's error, unless `config.start_empty` is set.
    pub async fn start(
        issuer: impl Into<String>,
        source: KeySource,
        config: KeyStoreConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<KeyStore, KeyStoreError> {
        let fetcher = Fetcher::new(config.fetch.clone())?;
        match &source {
            KeySource::Discovery(url) | KeySource::JwksUrl(url) => fetcher.check_url(url)?,
            KeySource::JwksFile(_) => {}
        }
        let store = KeyStore::new(issuer.into(), Some(source), Some(fetcher), config, clock);
        let loaded = match store.inner.fetch_and_install(Trigger::Start).await {
            Ok(()) => true,
            Err(e) if store.inner.config.start_empty => {
                tracing::warn!(issuer = %store.inner.issuer, error = %e, "starting without keys; retrying in the background");
                false
            }
            Err(e) => return Err(e),
        };
        store.spawn_refresher(loaded);
        Ok(store)
    }

    /// A store over a fixed key set: no fetching, never stale. For tests, benchmarks and
    /// embedders that manage keys themselves.
    pub fn fixed(issuer: impl Into<String>, keys: KeySet, clock: Arc<dyn Clock>) -> KeyStore {
        let config = KeyStoreConfig {
            max_stale: Duration::MAX,
            ..KeyStoreConfig::default()
        };
        let store = KeyStore::new(issuer.into(), None, None, config, clock);
        store.inner.install(keys);
        store
    }

    fn new(
        issuer: String,
        source: Option<KeySource>,
        fetcher: Option<Fetcher>,
        config: KeyStoreConfig,
        clock: Arc<dyn Clock>,
    ) -> KeyStore {
        let negative = moka::sync::Cache::new(config.negative_capacity);
        KeyStore {
            inner: Arc::new(Inner {
                issuer,
                source,
                config,
                clock,
                fetcher,
                snapshot: RwLock::new(None),
                state: Mutex::new(State::default()),
                suppressed: AtomicU64::new(0),
                attempts: watch::Sender::new(0),
                negative,
                refresher: OnceLock::new(),
            }),
        }
    }

    /// The issuer this store serves.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The key source; `None` for a [fixed](KeyStore::fixed) key set.
    pub fn source(&self) -> Option<&KeySource> {
        self.inner.source.as_ref()
    }

    /// The current key set, if one is loaded and not older than `max_stale`. Never waits.
    ///
    /// # Errors
    /// [`ValidationError::JwksUnavailable`].
    pub fn current(&self) -> Result<Arc<Snapshot>, ValidationError> {
        self.inner.current()
    }

    /// Fetches the keys now, whatever the schedule; on failure the last good set stays.
    ///
    /// # Errors
    /// The fetch's error.
    pub async fn refresh(&self) -> Result<(), KeyStoreError> {
        self.inner.fetch_and_install(Trigger::Scheduled).await
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> KeyStoreStats {
        let snapshot = self.inner.snapshot();
        let state = self.inner.state();
        KeyStoreStats {
            fetches_ok: state.fetches_ok,
            fetches_failed: state.fetches_failed,
            unknown_kid_refetches: state.unknown_kid_refetches,
            unknown_kid_suppressed: self.inner.suppressed.load(Ordering::Relaxed),
            keys_loaded: snapshot.as_ref().map_or(0, |s| s.keys.len() as u64),
            last_success: snapshot.map(|s| s.fetched_at),
            last_error: state.last_error.clone(),
        }
    }

    /// Called when a token names a `kid` that snapshot `seen_generation` does not know.
    /// Starts (or joins) a single-flight refetch unless rate-limited, waits for it at most
    /// `refetch_wait`, and returns the snapshot to retry against; `None` when no newer
    /// snapshot can be had.
    pub(crate) async fn resolve_unknown_kid(
        &self,
        kid: &str,
        seen_generation: u64,
    ) -> Option<Arc<Snapshot>> {
        let inner = &self.inner;
        let now = inner.clock.now();
        if inner.source.is_none() || kid.len() > MAX_KID_LEN || inner.negatively_cached(kid, now) {
            inner.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let mut attempts = inner.attempts.subscribe();
        let started_at = *attempts.borrow_and_update();
        let before = inner.snapshot();
        {
            let mut state = inner.state();
            // A fetch may have installed new keys since the caller looked.
            if let Some(snap) = inner.snapshot()
                && snap.generation != seen_generation
            {
                return Some(snap);
            }
            if !state.refetch_in_flight {
                let limited = state.last_unknown_kid_fetch.is_some_and(|last| {
                    now.saturating_since(last) < inner.config.min_refresh_interval
                });
                if limited {
                    inner.suppressed.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                state.refetch_in_flight = true;
                state.last_unknown_kid_fetch = Some(now);
                state.unknown_kid_refetches += 1;
                let task_inner = Arc::clone(inner);
                // Spawned, so the fetch completes and is installed even if every waiter gives up.
                tokio::spawn(async move {
                    let _ = task_inner.fetch_and_install(Trigger::UnknownKid).await;
                });
            }
        }
        let waited = tokio::time::timeout(
            inner.config.refetch_wait,
            attempts.wait_for(|n| *n != started_at),
        )
        .await;
        if waited.is_err() {
            tracing::warn!(issuer = %inner.issuer, "unknown-kid refetch did not finish within refetch_wait");
        }
        let snap = inner.snapshot()?;
        // A fetch installed a set (maybe the same keys, so the same generation) without it.
        let installed = before.is_none_or(|b| !Arc::ptr_eq(&b, &snap));
        if installed && !snap.keys.knows_kid(kid) {
            inner.negative.insert(kid.to_owned(), now);
        }
        if snap.generation == seen_generation {
            return None;
        }
        Some(snap)
    }

    fn spawn_refresher(&self, loaded: bool) {
        let weak = Arc::downgrade(&self.inner);
        // The first deadline counts from the start-up fetch, not from whenever the task first
        // runs; a loaded set's `max-age` applies from the start.
        let first = if loaded {
            self.inner.next_interval(self.inner.last_max_age())
        } else {
            FIRST_RETRY
        };
        let handle = tokio::spawn(refresh_loop(weak, tokio::time::Instant::now() + first));
        // Spawned once per store, by `start`: the cell is always empty here.
        let _ = self.inner.refresher.set(handle.abort_handle());
    }
}

/// The first retry after a failed fetch; each further failure doubles it, up to
/// [`MAX_BACKOFF`] (or `refresh_interval`, when that is shorter).
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// The longest wait between retries of a failing fetch.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

async fn refresh_loop(inner: Weak<Inner>, first: tokio::time::Instant) {
    let mut next = first;
    let mut backoff = FIRST_RETRY;
    loop {
        tokio::time::sleep_until(next).await;
        let Some(inner) = inner.upgrade() else { return };
        let delay = match inner.fetch_and_install(Trigger::Scheduled).await {
            Ok(()) => {
                backoff = FIRST_RETRY;
                inner.next_interval(inner.last_max_age())
            }
            Err(_) => {
                let cap = inner.config.refresh_interval.min(MAX_BACKOFF);
                let delay = jitter(backoff.min(cap));
                backoff = (backoff * 2).min(cap);
                delay
            }
        };
        next = tokio::time::Instant::now() + delay;
    }
}

/// The periodic refresh interval: the server's `max-age` clamped to
/// `min_refresh_interval..=refresh_interval`, or `refresh_interval` without one.
fn scheduled_interval(cfg: &KeyStoreConfig, max_age: Option<Duration>) -> Duration {
    let ceiling = cfg.refresh_interval.max(cfg.min_refresh_interval);
    match max_age {
        Some(age) => age.clamp(cfg.min_refresh_interval, ceiling),
        None => cfg.refresh_interval,
    }
}

/// Up to 10% less than `d`, at random, so a fleet does not refresh in step.
fn jitter(d: Duration) -> Duration {
    let random = RandomState::new().hash_one(std::time::Instant::now());
    let fraction = (random % 1000) as f64 / 10_000.0;
    d.mul_f64(1.0 - fraction)
}

impl Inner {
    fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.snapshot.read().ok().and_then(|s| s.clone())
    }

    /// The bookkeeping; never held across an `.await`. Nothing panics while holding it, and
    /// every update leaves it consistent, so a poisoned lock is still good to use.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn current(&self) -> Result<Arc<Snapshot>, ValidationError> {
        let Some(snap) = self.snapshot() else {
            return Err(ValidationError::JwksUnavailable {
                issuer: self.issuer.clone(),
                reason: match self.state().last_error.clone() {
                    Some(e) => format!("never loaded ({e})"),
                    None => "never loaded".to_owned(),
                },
            });
        };
        let age = self.clock.now().saturating_since(snap.fetched_at);
        if age > self.config.max_stale {
            return Err(ValidationError::JwksUnavailable {
                issuer: self.issuer.clone(),
                reason: format!(
                    "the last good key set is {}s old, more than max_stale ({}s)",
                    age.as_secs(),
                    self.config.max_stale.as_secs()
                ),
            });
        }
        Ok(snap)
    }

    fn negatively_cached(&self, kid: &str, now: UnixTime) -> bool {
        match self.negative.get(kid) {
            Some(at) if now.saturating_since(at) < self.config.negative_ttl => true,
            Some(_) => {
                self.negative.invalidate(kid);
                false
            }
            None => false,
        }
    }

    /// Installs a loaded key set as a new snapshot (its `fetched_at` is what `max_stale`
    /// counts from). The generation changes only when the keys differ from the current ones.
    fn install(&self, keys: KeySet) {
        let mut slot = match self.snapshot.write() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        let generation = match slot.as_ref() {
            Some(s) if s.keys == keys => s.generation,
            Some(s) => s.generation + 1,
            None => 1,
        };
        *slot = Some(Arc::new(Snapshot {
            keys,
            fetched_at: self.clock.now(),
            generation,
        }));
    }

    fn last_max_age(&self) -> Option<Duration> {
        self.state().max_age
    }

    fn next_interval(&self, max_age: Option<Duration>) -> Duration {
        jitter(scheduled_interval(&self.config, max_age))
    }

    async fn fetch_and_install(&self, trigger: Trigger) -> Result<(), KeyStoreError> {
        let result = self.fetch_keys(trigger).await;
        match &result {
            Ok((keys, _)) => {
                for skipped in keys.skipped() {
                    tracing::warn!(issuer = %self.issuer, %skipped, "skipped a key");
                }
                tracing::info!(issuer = %self.issuer, keys = keys.len(), ?trigger, "key set loaded");
            }
            Err(e) => {
                tracing::warn!(issuer = %self.issuer, error = %e, ?trigger, "key set fetch failed; keeping the last good set");
            }
        }
        let outcome = {
            // One critical section: whoever sees the new keys also sees the counters and the
            // refetch settled, and no unknown-kid waiter slips in between the install and the
            // end of the refetch (same order as `resolve_unknown_kid`: state, then snapshot).
            let mut state = self.state();
            let outcome = match result {
                Ok((keys, max_age)) => {
                    state.fetches_ok += 1;
                    state.last_error = None;
                    state.max_age = max_age;
                    self.install(keys);
                    Ok(())
                }
                Err(e) => {
                    state.fetches_failed += 1;
                    state.last_error = Some(e.to_string());
                    Err(e)
                }
            };
            if trigger == Trigger::UnknownKid {
                state.refetch_in_flight = false;
            }
            outcome
        };
        self.attempts.send_modify(|n| *n += 1);
        outcome
    }

    async fn fetch_keys(
        &self,
        trigger: Trigger,
    ) -> Result<(KeySet, Option<Duration>), KeyStoreError> {
        let (Some(source), Some(fetcher)) = (&self.source, &self.fetcher) else {
            return Err(KeyStoreError::Fixed);
        };
        let url = match source {
            KeySource::JwksFile(path) => {
                let body = tokio::fs::read(path).await.map_err(|e| FetchError::File {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                return Ok((KeySet::from_jwks(&body)?, None));
            }
            KeySource::JwksUrl(url) => url.clone(),
            KeySource::Discovery(discovery_url) => {
                let cached = self.state().jwks_uri.clone();
                match (cached, trigger) {
                    // Unknown-kid refetches go straight to the key set.
                    (Some(uri), Trigger::UnknownKid) => uri,
                    (cached, _) => match self.discover(fetcher, discovery_url).await {
                        Ok(uri) => uri,
                        // Stale-if-error applies to discovery too.
                        Err(e @ KeyStoreError::Fetch(_)) => cached.ok_or(e)?,
                        Err(e) => return Err(e),
                    },
                }
            }
        };
        let fetched = fetcher.get(&url).await?;
        let keys = KeySet::from_jwks(&fetched.body)?;
        Ok((keys, fetched.max_age))
    }

    async fn discover(&self, fetcher: &Fetcher, url: &Url) -> Result<Url, KeyStoreError> {
        let fetched = fetcher.get(url).await?;
        let discovery = Discovery::parse(&fetched.body, &self.issuer)?;
        fetcher.check_url(&discovery.jwks_uri)?;
        self.state().jwks_uri = Some(discovery.jwks_uri.clone());
        Ok(discovery.jwks_uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_honoured_within_the_configured_range() {
        let cfg = KeyStoreConfig::default();
        let secs = Duration::from_secs;
        assert_eq!(scheduled_interval(&cfg, None), secs(3600));
        assert_eq!(scheduled_interval(&cfg, Some(secs(600))), secs(600));
        assert_eq!(scheduled_interval(&cfg, Some(secs(0))), secs(10));
        assert_eq!(scheduled_interval(&cfg, Some(secs(86_400))), secs(3600));
    }

    #[test]
    fn jitter_takes_off_at_most_a_tenth() {
        let d = Duration::from_secs(1000);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let j = jitter(d);
            assert!(j <= d && j >= d.mul_f64(0.9), "{j:?}");
            seen.insert(j);
        }
        assert!(seen.len() > 1, "jitter varies");
    }
}
