//! Connection admission and failed-login throttling, per peer address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Failures older than this are forgotten.
const FAILURE_MEMORY: Duration = Duration::from_secs(60);
/// Peers remembered at most; beyond it, idle entries are purged.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Default)]
struct Peer {
    open: usize,
    failures: u32,
    last_failure: Option<Instant>,
}

#[derive(Debug, Default)]
struct Table {
    peers: HashMap<IpAddr, Peer>,
    open: usize,
}

/// Open connections and recent failed logins, per peer IP address.
#[derive(Debug, Clone)]
pub struct Peers {
    table: Arc<Mutex<Table>>,
    max_open: usize,
    max_per_peer: usize,
    base_delay: Duration,
    max_delay: Duration,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The gateway is at `max_connections`.
    Total,
    /// The peer is at `max_connections_per_peer`.
    PerPeer,
}

/// A connection slot; released on drop.
#[derive(Debug)]
pub struct Slot {
    peers: Peers,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.peers.lock();
        t.open = t.open.saturating_sub(1);
        if let Some(p) = t.peers.get_mut(&self.ip) {
            p.open = p.open.saturating_sub(1);
            if p.open == 0 && p.failures == 0 {
                t.peers.remove(&self.ip);
            }
        }
    }
}

impl Peers {
    /// Limits and the failure-delay curve.
    pub fn new(
        max_open: usize,
        max_per_peer: usize,
        base_delay: Duration,
        max_delay: Duration,
    ) -> Peers {
        Peers {
            table: Arc::default(),
            max_open,
            max_per_peer,
            base_delay,
            max_delay,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // The table holds counters only; a panic elsewhere cannot leave it inconsistent.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a connection from `ip`, or says why not.
    pub fn admit(&self, ip: IpAddr) -> Result<Slot, Refused> {
        let mut t = self.lock();
        if t.open >= self.max_open {
            return Err(Refused::Total);
        }
        if t.peers.len() >= MAX_TRACKED && !t.peers.contains_key(&ip) {
            let now = Instant::now();
            t.peers.retain(|_, p| {
                p.open > 0 || p.last_failure.is_some_and(|f| now - f < FAILURE_MEMORY)
            });
        }
        let p = t.peers.entry(ip).or_default();
        if p.open >= self.max_per_peer {
            return Err(Refused::PerPeer);
        }
        p.open += 1;
        t.open += 1;
        Ok(Slot {
            peers: self.clone(),
            ip,
        })
    }

    /// Records a failed login from `ip` and returns how long to wait before answering it:
    /// the base delay, doubled for each further failure within a minute, up to the maximum.
    pub fn failed(&self, ip: IpAddr) -> Duration {
        let now = Instant::now();
        let mut t = self.lock();
        let p = t.peers.entry(ip).or_default();
        if p.last_failure.is_some_and(|f| now - f >= FAILURE_MEMORY) {
            p.failures = 0;
        }
        p.failures = p.failures.saturating_add(1);
        p.last_failure = Some(now);
        let doublings = (p.failures - 1).min(20);
        self.base_delay
            .saturating_mul(1 << doublings)
            .min(self.max_delay)
    }

    /// Forgets `ip`'s failures after a successful login.
    pub fn succeeded(&self, ip: IpAddr) {
        if let Some(p) = self.lock().peers.get_mut(&ip) {
            p.failures = 0;
            p.last_failure = None;
        }
    }

    /// Open connections in all.
    #[cfg(test)]
    pub fn open(&self) -> usize {
        self.lock().open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn limits_total_and_per_peer_and_releases_on_drop() {
        let peers = Peers::new(3, 2, Duration::from_millis(100), Duration::from_secs(5));
        let a1 = peers.admit(ip(1)).unwrap();
        let _a2 = peers.admit(ip(1)).unwrap();
        assert_eq!(peers.admit(ip(1)).unwrap_err(), Refused::PerPeer);
        let _b1 = peers.admit(ip(2)).unwrap();
        assert_eq!(peers.admit(ip(3)).unwrap_err(), Refused::Total);
        drop(a1);
        assert_eq!(peers.open(), 2);
        assert!(peers.admit(ip(1)).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn failure_delay_doubles_caps_and_is_forgotten() {
        let peers = Peers::new(
            10,
            10,
            Duration::from_millis(100),
            Duration::from_millis(700),
        );
        let delays: Vec<_> = (0..5).map(|_| peers.failed(ip(1)).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 700, 700]);
        assert_eq!(
            peers.failed(ip(2)).as_millis(),
            100,
            "other peers unaffected"
        );
        tokio::time::advance(FAILURE_MEMORY).await;
        assert_eq!(peers.failed(ip(1)).as_millis(), 100);
        peers.failed(ip(1));
        peers.succeeded(ip(1));
        assert_eq!(peers.failed(ip(1)).as_millis(), 100);
    }
}
