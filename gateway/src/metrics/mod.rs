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

use prometheus_client::registry::Registry;

use crate::gateway::Gateway;

pub use crate::engines::{CallMetrics, latency_buckets};

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
