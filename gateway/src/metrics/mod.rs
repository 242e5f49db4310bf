//! The metrics registry: Omnigate's own metrics, prefixed `omnigate_`.
//! Front ends register their protocol's metrics in it (the gRPC server's
//! under the names the gRPC ecosystem uses) and serve it (the `/metrics`
//! listener); nothing here names a front end.
//!
//! Everything a scrape shows is kept as calls happen (per-engine call
//! histograms and error counts, the pools' and the transactions' atomic
//! counters, the last health check's outcome): a scrape reads memory and
//! never touches an engine. Labels come from bounded sets only: engine
//! names, dialects, error kinds, gRPC codes.

mod collect;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use omnigate_drivers::Dialect;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::gateway::Gateway;

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

/// The metrics registry of a gateway, and of the front ends that serve it.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// The registry over `gateway`'s engines and transactions.
    pub fn new(gateway: &Gateway) -> Metrics {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(collect::GatewayCollector::new(gateway.clone())));
        Metrics { registry }
    }

    /// The registry, for a front end to register its own metrics in.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The text exposition (OpenMetrics, which Prometheus reads).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
