//! What pooled engines share: connection counters, acquire-time
//! percentiles, and a backoff gate that fails calls fast while a backend is
//! known to be down.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::PoolStats;

/// How many recent acquire times the percentiles are computed over.
const WINDOW: usize = 2048;

/// Counters of one pool. Recording is lock-free (it sits on every call's
/// path): acquire times go round a ring of atomic slots.
#[derive(Debug)]
pub struct PoolMetrics {
    created: AtomicU64,
    acquired: AtomicU64,
    recent_acquire_micros: Box<[AtomicU64]>,
}

impl Default for PoolMetrics {
    fn default() -> Self {
        PoolMetrics {
            created: AtomicU64::new(0),
            acquired: AtomicU64::new(0),
            recent_acquire_micros: (0..WINDOW).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl PoolMetrics {
    /// Counts a newly created connection.
    pub fn created(&self) {
        self.created.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection handed out after waiting `waited`.
    pub fn acquired(&self, waited: Duration) {
        let n = self.acquired.fetch_add(1, Ordering::Relaxed);
        // Stored as µs + 1 so an empty slot (0) is told apart from 0 µs.
        let micros = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX - 1) + 1;
        self.recent_acquire_micros[usize::try_from(n).unwrap_or(0) % WINDOW]
            .store(micros, Ordering::Relaxed);
    }

    /// The pool's statistics, with the pool's view of its size.
    pub fn stats(&self, status: impl Into<PoolSize>) -> PoolStats {
        let status = status.into();
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let mut recent: Vec<u64> = self
            .recent_acquire_micros
            .iter()
            .map(|slot| slot.load(Ordering::Relaxed))
            .filter(|micros| *micros > 0)
            .map(|micros| micros - 1)
            .collect();
        recent.sort_unstable();
        let percentile = |p: f64| -> u64 {
            if recent.is_empty() {
                return 0;
            }
            let rank = ((recent.len() as f64 - 1.0) * p).round() as usize;
            recent[rank.min(recent.len() - 1)]
        };
        PoolStats {
            max_size: clamp(status.max_size),
            size: clamp(status.size),
            idle: clamp(status.idle),
            in_use: clamp(status.size.saturating_sub(status.idle)),
            waiters: clamp(status.waiting),
            created: self.created.load(Ordering::Relaxed),
            acquired: self.acquired.load(Ordering::Relaxed),
            acquire_p50_us: percentile(0.50),
            acquire_p99_us: percentile(0.99),
        }
    }
}

/// A pool's size as its crate reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolSize {
    /// Connections it may hold at most.
    pub max_size: usize,
    /// Connections open.
    pub size: usize,
    /// Open connections not in use.
    pub idle: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}

impl From<deadpool_sqlite::Status> for PoolSize {
    fn from(status: deadpool_sqlite::Status) -> Self {
        PoolSize {
            max_size: status.max_size,
            size: status.size,
            idle: status.available,
            waiting: status.waiting,
        }
    }
}

/// Fails calls fast while a backend is down: after a failed connect, new
/// connects wait a backoff (doubling up to a bound) instead of piling up.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    state: Mutex<BackoffState>,
}

#[derive(Debug, Default)]
struct BackoffState {
    failures: u32,
    retry_at: Option<Instant>,
}

impl Backoff {
    /// A gate waiting `base` after the first failure, doubling up to `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max,
            state: Mutex::new(BackoffState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BackoffState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `Err(remaining)` while connects should not be tried.
    pub fn check(&self) -> Result<(), Duration> {
        match self.lock().retry_at {
            Some(at) if at > Instant::now() => Err(at - Instant::now()),
            _ => Ok(()),
        }
    }

    /// `Err(Unavailable)` naming `server` while connects should not be tried.
    pub fn fail_fast(&self, engine: &'static str, server: &str) -> crate::Result<()> {
        self.check().map_err(|remaining| {
            crate::Error::Unavailable(crate::EngineError::new(
                engine,
                None,
                format!(
                    "{server} is unreachable; the next connect attempt is in {} ms",
                    remaining.as_millis()
                ),
            ))
        })
    }

    /// Records a failed connect. Callers that fail together, inside one
    /// wait, count once: only an attempt made after the wait doubles it.
    pub fn failed(&self) {
        let mut state = self.lock();
        let now = Instant::now();
        if state.retry_at.is_some_and(|at| at > now) {
            return;
        }
        state.failures = state.failures.saturating_add(1);
        let factor = 2u32.saturating_pow(state.failures.saturating_sub(1).min(16));
        let wait = self.base.saturating_mul(factor).min(self.max);
        state.retry_at = Some(now + wait);
    }

    /// Records a working connection.
    pub fn succeeded(&self) {
        let mut state = self.lock();
        if state.failures > 0 || state.retry_at.is_some() {
            *state = BackoffState::default();
        }
    }

    /// Consecutive failed connects.
    pub fn failures(&self) -> u32 {
        self.lock().failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_bound_and_resets() {
        let gate = Backoff::new(Duration::from_millis(40), Duration::from_millis(120));
        assert!(gate.check().is_ok());
        gate.failed();
        gate.failed(); // a caller failing in the same wait does not double it
        let first = gate.check().unwrap_err();
        assert!(
            first <= Duration::from_millis(40) && first > Duration::from_millis(20),
            "{first:?}"
        );
        assert_eq!(gate.failures(), 1);
        std::thread::sleep(Duration::from_millis(45));
        gate.failed();
        let second = gate.check().unwrap_err();
        assert!(
            second <= Duration::from_millis(80) && second > Duration::from_millis(60),
            "{second:?}"
        );
        std::thread::sleep(Duration::from_millis(85));
        gate.failed();
        let capped = gate.check().unwrap_err();
        assert!(
            capped <= Duration::from_millis(120) && capped > Duration::from_millis(100),
            "{capped:?}"
        );
        assert_eq!(gate.failures(), 3);
        gate.succeeded();
        assert!(gate.check().is_ok());
        assert_eq!(gate.failures(), 0);
    }

    #[test]
    fn percentiles_come_from_recent_acquires() {
        let metrics = PoolMetrics::default();
        for micros in 1..=100 {
            metrics.acquired(Duration::from_micros(micros));
        }
        metrics.created();
        let status = deadpool_sqlite::Status {
            max_size: 4,
            size: 2,
            available: 1,
            waiting: 0,
        };
        let stats = metrics.stats(status);
        assert_eq!((stats.created, stats.acquired, stats.in_use), (1, 100, 1));
        assert_eq!(stats.acquire_p50_us, 51);
        assert_eq!(stats.acquire_p99_us, 99);
    }
}
