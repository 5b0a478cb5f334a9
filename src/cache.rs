//! Owns the verified-token cache's storage: a bounded, sharded map from a whole token to a
//! value, each entry kept until a given expiry time, safe to share across threads.
//!
//! Pure: no clock (the caller passes `now` and each entry's expiry), no I/O, no background
//! task. It must not decide whether a cached verification is still good for a login; the gate
//! does (key set generation, time checks).
//!
//! Written by hand rather than with moka: a moka insert costs a few microseconds (its
//! admission and expiry bookkeeping), which on a first login is as much as everything else
//! besides the signature. Here an insert is one token copy and one short critical section. The
//! eviction policy is simpler than moka's TinyLFU: expired entries go when met, and a full shard
//! drops its oldest insertion first (a token cache's oldest entries are the nearest to expiry).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::time::UnixTime;

/// How many independently locked shards at most (fewer for a capacity below it).
const SHARDS: usize = 64;

/// A bounded map from tokens to values, each expiring at its own time. Cheap operations under
/// one of up to [`SHARDS`] mutexes, chosen by the token's hash.
pub(crate) struct TokenCache<V> {
    shards: Box<[Mutex<Shard<V>>]>,
    hasher: foldhash::fast::RandomState,
}

struct Shard<V> {
    /// Entries at most; the shards' capacities add up to the cache's.
    capacity: usize,
    /// Keyed by the token's 64-bit hash; the entry holds the token itself, compared on every
    /// lookup. Two tokens with the same hash share a slot: the later insert replaces the
    /// earlier (a cache may forget), and a lookup never answers for another token.
    map: HashMap<u64, Entry<V>, BuildHasherDefault<PassThrough>>,
    /// Insertion order, `(hash, seq)`; an item whose slot now holds another insertion (or
    /// nothing) is stale and skipped.
    order: VecDeque<(u64, u64)>,
    next_seq: u64,
}

struct Entry<V> {
    token: Box<str>,
    value: Arc<V>,
    expires_at: UnixTime,
    seq: u64,
}

/// The map's keys are already foldhash outputs: hashing them again would only cost time. One
/// multiplication spreads them, since the top bits (which chose the shard) are the same for
/// every key of a shard and the map reads its control bytes there.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the keys are `u64`); fold anything else in anyway.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl<V> TokenCache<V> {
    /// A cache of at most `capacity` entries (none for 0), split over the shards.
    pub(crate) fn new(capacity: u64) -> TokenCache<V> {
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX);
        let count = capacity.clamp(1, SHARDS);
        let shards = (0..count)
            .map(|i| {
                Mutex::new(Shard {
                    capacity: capacity / count + usize::from(i < capacity % count),
                    map: HashMap::default(),
                    order: VecDeque::new(),
                    next_seq: 0,
                })
            })
            .collect();
        TokenCache {
            shards,
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    fn shard(&self, hash: u64) -> MutexGuard<'_, Shard<V>> {
        // The top bits pick the shard (`PassThrough` respreads the rest for the map).
        let i = (hash >> 32) as usize % self.shards.len();
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The value cached for `token`, unless it has expired at `now` (then it is removed).
    pub(crate) fn get(&self, token: &str, now: UnixTime) -> Option<Arc<V>> {
        let hash = self.hasher.hash_one(token);
        let mut shard = self.shard(hash);
        let entry = shard.map.get(&hash)?;
        if *entry.token != *token {
            return None;
        }
        if now >= entry.expires_at {
            shard.map.remove(&hash);
            return None;
        }
        Some(Arc::clone(&entry.value))
    }

    /// Caches `value` for `token` until `expires_at`, replacing any entry for it. When the
    /// shard is full, its oldest insertions leave first.
    pub(crate) fn insert(&self, token: &str, value: Arc<V>, expires_at: UnixTime) {
        let hash = self.hasher.hash_one(token);
        // The copy is made before taking the lock.
        let token: Box<str> = token.into();
        let mut guard = self.shard(hash);
        let shard = &mut *guard;
        if shard.capacity == 0 {
            return;
        }
        let seq = shard.next_seq;
        shard.next_seq += 1;
        let replaced = shard.map.insert(
            hash,
            Entry {
                token,
                value,
                expires_at,
                seq,
            },
        );
        if replaced.is_none() {
            while shard.map.len() > shard.capacity {
                let Some((old, old_seq)) = shard.order.pop_front() else {
                    break;
                };
                if shard.map.get(&old).is_some_and(|e| e.seq == old_seq) {
                    shard.map.remove(&old);
                }
            }
        }
        // Stale order items (slots replaced, removed or expired) are dropped when they
        // outnumber the live ones, so the queue stays within twice the shard's capacity.
        if shard.order.len() >= 2 * shard.capacity {
            let map = &shard.map;
            shard
                .order
                .retain(|(h, s)| map.get(h).is_some_and(|e| e.seq == *s));
        }
        shard.order.push_back((hash, seq));
        drop(guard);
        // Dropped outside the lock: the replaced value may be large.
        drop(replaced);
    }

    /// Removes the entry for `token`, if any.
    pub(crate) fn invalidate(&self, token: &str) {
        let hash = self.hasher.hash_one(token);
        let mut shard = self.shard(hash);
        if shard.map.get(&hash).is_some_and(|e| *e.token == *token) {
            let removed = shard.map.remove(&hash);
            drop(shard);
            drop(removed);
        }
    }

    /// How many entries are held, expired or not.
    pub(crate) fn len(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).map.len() as u64)
            .sum()
    }

    /// Removes every entry expired at `now`; returns how many are left.
    pub(crate) fn purge_expired(&self, now: UnixTime) -> u64 {
        self.shards
            .iter()
            .map(|s| {
                let mut shard = s.lock().unwrap_or_else(PoisonError::into_inner);
                shard.map.retain(|_, e| now < e.expires_at);
                shard.map.len() as u64
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> UnixTime {
        UnixTime::from_secs(secs)
    }

    /// A capacity no shard can reach in these tests, for those not about eviction (with a
    /// small one, two tokens hashed to a one-entry shard would evict each other).
    const ROOMY: u64 = SHARDS as u64 * 64;

    #[test]
    fn get_insert_expire_invalidate() {
        let cache = TokenCache::new(ROOMY);
        assert!(cache.get("a", t(0)).is_none());
        cache.insert("a", Arc::new(1), t(10));
        cache.insert("b", Arc::new(2), t(20));
        assert_eq!(cache.get("a", t(9)).as_deref(), Some(&1));
        assert_eq!(cache.get("b", t(9)).as_deref(), Some(&2));
        // Expired at its own time, and then gone.
        assert!(cache.get("a", t(10)).is_none());
        assert!(cache.get("a", t(0)).is_none());
        assert_eq!(cache.len(), 1);
        // Replaced, then invalidated; invalidating an absent token is a no-op.
        cache.insert("b", Arc::new(3), t(20));
        assert_eq!(cache.get("b", t(0)).as_deref(), Some(&3));
        assert_eq!(cache.len(), 1);
        cache.invalidate("b");
        cache.invalidate("zz");
        assert!(cache.get("b", t(0)).is_none());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn purge_drops_only_expired_entries() {
        let cache = TokenCache::new(ROOMY);
        for i in 0..10u64 {
            cache.insert(&format!("tok-{i}"), Arc::new(i), t(i));
        }
        // An entry is expired from its expiry time on.
        assert_eq!(cache.purge_expired(t(5)), 4);
        assert!(cache.get("tok-5", t(0)).is_none());
        assert_eq!(cache.get("tok-6", t(0)).as_deref(), Some(&6));
    }

    #[test]
    fn stays_bounded_and_evicts_oldest_first() {
        let capacity = SHARDS as u64 * 4;
        let cache = TokenCache::new(capacity);
        let tokens: Vec<String> = (0..10_000).map(|i| format!("token-{i}")).collect();
        for (i, token) in tokens.iter().enumerate() {
            cache.insert(token, Arc::new(i), t(1_000));
            // Churn: replacing and invalidating must not grow the order queues without bound.
            cache.insert(token, Arc::new(i), t(1_000));
            if i % 3 == 0 {
                cache.invalidate(token);
            }
        }
        assert!(cache.len() <= capacity, "{} > {capacity}", cache.len());
        for shard in cache.shards.iter() {
            let shard = shard.lock().unwrap();
            assert!(shard.map.len() <= shard.capacity);
            assert!(shard.order.len() <= 2 * shard.capacity);
        }
        // The newest insertions are there; the oldest are gone.
        assert_eq!(cache.get(&tokens[9_998], t(0)).as_deref(), Some(&9_998));
        assert!(cache.get(&tokens[1], t(0)).is_none());
    }

    #[test]
    fn the_bound_is_the_capacity_asked_for() {
        for capacity in [0u64, 1, 7, 50, 63, 64, 65, 100, 1_000] {
            let cache = TokenCache::new(capacity);
            let total: usize = cache
                .shards
                .iter()
                .map(|s| s.lock().unwrap().capacity)
                .sum();
            assert_eq!(total as u64, capacity);
            for i in 0..4 * capacity + 10 {
                cache.insert(&format!("tok-{i}"), Arc::new(i), t(10));
                assert!(cache.len() <= capacity, "{capacity}: {}", cache.len());
            }
        }
    }

    #[test]
    fn a_token_never_gets_another_tokens_value() {
        let cache = TokenCache::new(1_000);
        for i in 0..1_000u64 {
            cache.insert(&format!("k{i}"), Arc::new(i), t(10));
        }
        for i in 0..1_000u64 {
            if let Some(v) = cache.get(&format!("k{i}"), t(0)) {
                assert_eq!(*v, i);
            }
        }
    }

    #[test]
    fn shared_across_threads() {
        // Room for every entry in whichever shard it hashes to: this test is about sharing,
        // not eviction (a shard's share of 8,000 random tokens varies by tens).
        let cache = Arc::new(TokenCache::new(SHARDS as u64 * 8_000));
        let handles: Vec<_> = (0..4u64)
            .map(|n| {
                let cache = Arc::clone(&cache);
                std::thread::spawn(move || {
                    for i in 0..2_000u64 {
                        let token = format!("t{n}-{i}");
                        cache.insert(&token, Arc::new((n, i)), t(10));
                        assert_eq!(cache.get(&token, t(0)).as_deref(), Some(&(n, i)));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(cache.len(), 8_000);
    }
}
