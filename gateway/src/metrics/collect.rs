//! What a scrape reads from the gateway: per-engine call metrics, pools,
//! caches and health, and the transactions' counters, all from memory.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::engines::EngineEntry;
use crate::gateway::Gateway;

/// The gateway's own metrics, read at each scrape.
#[derive(Debug)]
pub(super) struct GatewayCollector {
    gateway: Gateway,
}

impl GatewayCollector {
    pub(super) fn new(gateway: Gateway) -> Self {
        GatewayCollector { gateway }
    }
}

type Rows<'a> = Vec<(Vec<(&'static str, String)>, u64)>;

/// A per-engine metric: its name, help, and how to read it.
type PerEngine<'a> = (&'a str, &'a str, &'a dyn Fn(&EngineEntry) -> u64);

/// One family of constant values (a gauge, or a counter kept elsewhere).
fn family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    counter: bool,
    rows: Rows<'_>,
) -> Result<(), std::fmt::Error> {
    let kind = if counter {
        MetricType::Counter
    } else {
        MetricType::Gauge
    };
    let mut family = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in rows {
        let metric = family.encode_family(&labels)?;
        if counter {
            ConstCounter::new(value).encode(metric)?;
        } else {
            ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(metric)?;
        }
    }
    Ok(())
}

impl Collector for GatewayCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let router = self.gateway.router();
        let engines: Vec<_> = router.engines().collect();
        // Calls: latency and requests by engine and dialect, errors by kind.
        {
            let mut latency = encoder.encode_descriptor(
                "omnigate_statement_seconds",
                "Statement latency through the gateway, by engine and dialect",
                None,
                MetricType::Histogram,
            )?;
            for e in &engines {
                for dialect in &e.driver.descriptor().dialects {
                    let labels = [("engine", e.name()), ("dialect", dialect.as_str())];
                    e.counters
                        .calls
                        .of(*dialect)
                        .0
                        .encode(latency.encode_family(&labels)?)?;
                }
            }
        }
        let by_dialect = |e: &&std::sync::Arc<EngineEntry>| {
            e.driver
                .descriptor()
                .dialects
                .iter()
                .map(|d| {
                    let labels = vec![
                        ("engine", e.name().to_owned()),
                        ("dialect", d.as_str().to_owned()),
                    ];
                    (labels, e.counters.calls.of(*d).1)
                })
                .collect::<Vec<_>>()
        };
        let requests = engines.iter().flat_map(by_dialect).collect();
        family(
            &mut encoder,
            "omnigate_requests",
            "Statements run, by engine and dialect",
            true,
            requests,
        )?;
        let errors = engines
            .iter()
            .flat_map(|e| {
                e.counters
                    .calls
                    .errors()
                    .into_iter()
                    .map(|((dialect, kind), n)| {
                        let labels = vec![
                            ("engine", e.name().to_owned()),
                            ("dialect", dialect.to_owned()),
                            ("kind", kind.to_owned()),
                        ];
                        (labels, n)
                    })
            })
            .collect();
        family(
            &mut encoder,
            "omnigate_errors",
            "Statements that failed, by engine, dialect and error kind",
            true,
            errors,
        )?;
        let per_engine = |read: &dyn Fn(&EngineEntry) -> u64| -> Rows<'_> {
            engines
                .iter()
                .map(|e| (vec![("engine", e.name().to_owned())], read(e)))
                .collect()
        };
        let pool = |e: &EngineEntry| e.driver.pool_stats();
        let gauges: [PerEngine<'_>; 6] = [
            ("omnigate_pool_max", "The pool's largest size", &|e| {
                pool(e).max_size.into()
            }),
            ("omnigate_pool_size", "Connections open", &|e| {
                pool(e).size.into()
            }),
            ("omnigate_pool_idle", "Connections idle", &|e| {
                pool(e).idle.into()
            }),
            ("omnigate_pool_in_use", "Connections in use", &|e| {
                pool(e).in_use.into()
            }),
            (
                "omnigate_pool_waiters",
                "Calls waiting for a connection",
                &|e| pool(e).waiters.into(),
            ),
            (
                "omnigate_engine_up",
                "1 when the engine's last health check passed",
                &|e| {
                    u64::from(
                        e.counters
                            .calls
                            .up
                            .load(std::sync::atomic::Ordering::Relaxed),
                    )
                },
            ),
        ];
        for (name, help, read) in gauges {
            family(&mut encoder, name, help, false, per_engine(read))?;
        }
        let read = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        let counters: [PerEngine<'_>; 7] = [
            (
                "omnigate_pool_connections_created",
                "Connections opened",
                &|e| pool(e).created,
            ),
            (
                "omnigate_pool_acquired",
                "Connections handed to calls",
                &|e| pool(e).acquired,
            ),
            ("omnigate_pool_connect_failures", "Failed connects", &|e| {
                let counters = e.driver.counters();
                let found = counters.into_iter().find(|(k, _)| k == "connect_failures");
                found.map_or(0, |(_, v)| v)
            }),
            (
                "omnigate_schema_cache_hits",
                "Describe answered from the cache",
                &|e| read(&e.counters.schema_hits),
            ),
            (
                "omnigate_schema_cache_misses",
                "Describe read from the engine",
                &|e| read(&e.counters.schema_misses),
            ),
            (
                "omnigate_codec_binding_hits",
                "Keys that matched a codec binding",
                &|e| e.bindings.as_ref().map_or(0, |b| b.counts().0),
            ),
            (
                "omnigate_codec_binding_misses",
                "Keys that matched no codec binding",
                &|e| e.bindings.as_ref().map_or(0, |b| b.counts().1),
            ),
        ];
        for (name, help, read) in counters {
            family(&mut encoder, name, help, true, per_engine(read))?;
        }
        {
            let mut waited = encoder.encode_descriptor(
                "omnigate_pool_wait_seconds",
                "Time calls spent waiting for a connection",
                None,
                MetricType::Counter,
            )?;
            for e in &engines {
                let seconds = pool(e).waited_us as f64 / 1e6;
                let labels = [("engine", e.name())];
                ConstCounter::new(seconds).encode(waited.encode_family(&labels)?)?;
            }
        }
        let (counts, open) = self.gateway.transaction_counts_now();
        let outcomes = counts
            .iter()
            .map(|(outcome, n)| (vec![("outcome", outcome.clone())], *n))
            .collect();
        family(
            &mut encoder,
            "omnigate_transactions",
            "Transactions by outcome since start",
            true,
            outcomes,
        )?;
        family(
            &mut encoder,
            "omnigate_transactions_open",
            "Transactions open now",
            false,
            vec![(Vec::new(), open)],
        )?;
        Ok(())
    }
}
