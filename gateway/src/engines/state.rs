//! An engine's runtime state, kept across a reload that rebuilds it:
//! drained or not, calls in flight, and what its calls and the schema
//! cache's lookups counted (what metrics read).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use omnigate_drivers::Dialect;
use prometheus_client::metrics::histogram::Histogram;

/// An engine's service state: drained or not, and calls in flight.
#[derive(Debug, Default)]
pub struct ServiceState {
    draining: AtomicBool,
    in_flight: Arc<AtomicU64>,
}

/// A call in flight on an engine, counted until dropped.
#[derive(Debug)]
pub struct InFlight(Arc<AtomicU64>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ServiceState {
    /// Whether the engine is drained.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Drains the engine (`true`) or puts it back in service; returns
    /// what it was.
    pub(crate) fn set_draining(&self, draining: bool) -> bool {
        self.draining.swap(draining, Ordering::Relaxed)
    }

    /// Counts a call in flight, unless `limit` calls already are.
    pub fn enter(&self, limit: usize) -> Option<InFlight> {
        let admitted = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit as u64).then_some(n + 1)
            })
            .is_ok();
        admitted.then(|| InFlight(Arc::clone(&self.in_flight)))
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// Latency buckets for calls from tens of microseconds to tens of seconds.
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    [
        0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
        0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ]
    .into_iter()
}

/// One engine's calls, as the pipeline ends them: latency per dialect and
/// errors by kind.
#[derive(Debug)]
pub struct CallMetrics {
    latency: [Histogram; SLOTS],
    requests: [AtomicU64; SLOTS],
    /// Failed calls by (dialect, error kind).
    errors: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// The last health check's outcome.
    pub(crate) up: AtomicBool,
}

impl Default for CallMetrics {
    fn default() -> Self {
        CallMetrics {
            latency: std::array::from_fn(|_| Histogram::new(latency_buckets())),
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            errors: Mutex::new(BTreeMap::new()),
            up: AtomicBool::new(true),
        }
    }
}

/// One slot per dialect, and one for a dialect added later.
const SLOTS: usize = 5;

fn slot(dialect: Dialect) -> usize {
    match dialect {
        Dialect::Sql => 0,
        Dialect::Redis => 1,
        Dialect::Cypher => 2,
        Dialect::Ts => 3,
        _ => 4,
    }
}

impl CallMetrics {
    /// Records one call: how long it took, and its error's kind.
    pub fn observe(&self, dialect: Dialect, took: Duration, error: Option<&'static str>) {
        self.latency[slot(dialect)].observe(took.as_secs_f64());
        self.requests[slot(dialect)].fetch_add(1, Ordering::Relaxed);
        if let Some(kind) = error {
            let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
            *errors.entry((dialect.as_str(), kind)).or_default() += 1;
        }
    }

    /// The latency histogram and request count of `dialect`.
    pub(crate) fn of(&self, dialect: Dialect) -> (&Histogram, u64) {
        let at = slot(dialect);
        (&self.latency[at], self.requests[at].load(Ordering::Relaxed))
    }

    /// Calls and failed calls, over every dialect.
    pub(crate) fn totals(&self) -> (u64, u64) {
        let calls = self
            .requests
            .iter()
            .map(|r| r.load(Ordering::Relaxed))
            .sum();
        let failures = self.errors().iter().map(|(_, n)| n).sum();
        (calls, failures)
    }

    /// Failed calls by dialect and error kind.
    pub(crate) fn errors(&self) -> Vec<((&'static str, &'static str), u64)> {
        let errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        errors.iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// Notes the outcome of a health check.
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Relaxed);
    }
}

/// What the pipeline counts per engine as calls end (the hook metrics
/// read), and the schema cache's lookups.
#[derive(Debug, Default)]
pub struct EngineCounters {
    /// Calls by dialect: latency, counts, errors by kind.
    pub calls: CallMetrics,
    pub(crate) schema_hits: AtomicU64,
    pub(crate) schema_misses: AtomicU64,
}

impl EngineCounters {
    /// Records a call's outcome: in `dialect`, begun at `started`.
    pub fn record<T>(
        &self,
        dialect: omnigate_drivers::Dialect,
        started: std::time::Instant,
        outcome: &crate::error::Result<T>,
    ) {
        let kind = outcome.as_ref().err().map(crate::error::Error::kind);
        self.calls.observe(dialect, started.elapsed(), kind);
    }

    /// The counters as `ListEngines` reports them.
    pub fn snapshot(&self) -> Vec<(String, u64)> {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (calls, failures) = self.calls.totals();
        vec![
            ("calls".into(), calls),
            ("call_failures".into(), failures),
            ("schema_cache_hits".into(), read(&self.schema_hits)),
            ("schema_cache_misses".into(), read(&self.schema_misses)),
        ]
    }
}
