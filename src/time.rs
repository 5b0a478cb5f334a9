//! Owns the notion of "now": a unix timestamp type and the clocks that produce it.
//!
//! The pure core never reads a clock; it takes a [`UnixTime`] argument. Only the async shell
//! asks a [`Clock`], and tests inject a [`ManualClock`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time as whole seconds since the unix epoch (UTC).
///
/// ```
/// use poolgate::UnixTime;
/// let t = UnixTime::from_secs(1_700_000_000);
/// assert_eq!(t.as_secs(), 1_700_000_000);
/// assert_eq!((t + std::time::Duration::from_secs(60)).as_secs(), 1_700_000_060);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixTime(u64);

impl UnixTime {
    /// The unix epoch itself.
    pub const EPOCH: UnixTime = UnixTime(0);

    /// A time `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        UnixTime(secs)
    }

    /// Seconds since the epoch.
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// The system's wall clock, now. Used only by the async shell's [`SystemClock`].
    pub fn now() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        UnixTime(secs)
    }

    /// `self - earlier`, or zero when `earlier` is later.
    pub fn saturating_since(self, earlier: UnixTime) -> Duration {
        Duration::from_secs(self.0.saturating_sub(earlier.0))
    }
}

impl std::ops::Add<Duration> for UnixTime {
    type Output = UnixTime;
    fn add(self, rhs: Duration) -> UnixTime {
        UnixTime(self.0.saturating_add(rhs.as_secs()))
    }
}

impl std::ops::Sub<Duration> for UnixTime {
    type Output = UnixTime;
    fn sub(self, rhs: Duration) -> UnixTime {
        UnixTime(self.0.saturating_sub(rhs.as_secs()))
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A source of the current time for the async shell (key store, validator).
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> UnixTime;
}

/// The system wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        UnixTime::now()
    }
}

/// A clock that only moves when told to; for tests and for `--at` style "what if" checks.
///
/// ```
/// use poolgate::{Clock, ManualClock, UnixTime};
/// use std::time::Duration;
/// let clock = ManualClock::new(UnixTime::from_secs(100));
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.now(), UnixTime::from_secs(105));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: UnixTime) -> Self {
        ManualClock(Arc::new(AtomicU64::new(start.as_secs())))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_secs(), Ordering::SeqCst);
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: UnixTime) {
        self.0.store(to.as_secs(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.0.load(Ordering::SeqCst))
    }
}
