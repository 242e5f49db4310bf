//! What pooled engines share: their settings ([`PoolSettings`], one field
//! of each pooled kind's config, written as keys of its config section),
//! one front for getting a connection ([`PoolFront`]: fail-fast backoff,
//! acquire-time metrics, the errors of an exhausted pool or an unreachable
//! server, and the health-probe policy), connection counters and
//! acquire-time percentiles. Each engine keeps only how it connects,
//! checks and recycles a connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::PoolStats;

mod backoff;
mod front;
mod settings;

pub use backoff::Backoff;
pub use front::{AcquireError, FrontConfig, PROBE_TIMEOUT, PoolFront};
pub use settings::PoolSettings;
pub(crate) use settings::{PoolKey, PooledConfig, deserialize_pooled, pooled_config};

/// How many recent acquire times the percentiles are computed over.
const WINDOW: usize = 2048;

/// Counters of one pool. Recording is lock-free (it sits on every call's
/// path): acquire times go round a ring of atomic slots.
#[derive(Debug)]
pub struct PoolMetrics {
    created: AtomicU64,
    acquired: AtomicU64,
    waited_micros: AtomicU64,
    recent_acquire_micros: Box<[AtomicU64]>,
}

impl Default for PoolMetrics {
    fn default() -> Self {
        PoolMetrics {
            created: AtomicU64::new(0),
            acquired: AtomicU64::new(0),
            waited_micros: AtomicU64::new(0),
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
        self.waited_micros.fetch_add(micros - 1, Ordering::Relaxed);
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
            waited_us: self.waited_micros.load(Ordering::Relaxed),
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            stats.waited_us,
            (1..=100).sum::<u64>(),
            "every wait, summed"
        );
    }
}
