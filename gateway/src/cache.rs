//! The metadata cache: described schemas per engine, kept in moka with a
//! TTL and dropped when DDL passes through the gateway.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use moka::future::Cache;
use omnigate_drivers::{DescribeOptions, Result, SchemaObject, StorageDriver};

use crate::config::CacheConfig;

type Key = (String, Option<String>);

#[derive(Debug, Default)]
struct Counts {
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
}

/// Cached schema descriptions, with hit and miss counts per engine.
#[derive(Debug, Clone)]
pub struct MetadataCache {
    schemas: Cache<Key, Arc<Vec<SchemaObject>>>,
    counts: Arc<HashMap<String, Counts>>,
}

impl MetadataCache {
    /// A cache for the engines named `engines`.
    pub fn new(config: &CacheConfig, engines: impl IntoIterator<Item = String>) -> Self {
        MetadataCache {
            schemas: Cache::builder()
                .max_capacity(config.max_entries)
                .time_to_live(config.schema_ttl)
                .support_invalidation_closures()
                .build(),
            counts: Arc::new(
                engines
                    .into_iter()
                    .map(|n| (n, Counts::default()))
                    .collect(),
            ),
        }
    }

    /// The schema objects of `driver` named `name` (all when `None`),
    /// described once per TTL.
    pub async fn describe(
        &self,
        driver: &dyn StorageDriver,
        name: Option<String>,
    ) -> Result<Arc<Vec<SchemaObject>>> {
        let engine = driver.descriptor().name.clone();
        let options = DescribeOptions { name: name.clone() };
        let entry = self
            .schemas
            .entry((engine.clone(), name))
            .or_try_insert_with(async { driver.describe(&options).await.map(Arc::new) })
            .await
            .map_err(|e| Arc::try_unwrap(e).unwrap_or_else(|shared| shared_error(&shared)))?;
        if let Some(counts) = self.counts.get(&engine) {
            let counter = if entry.is_fresh() {
                &counts.misses
            } else {
                &counts.hits
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Ok(entry.into_value())
    }

    /// Drops every cached description of `engine`.
    pub fn invalidate_engine(&self, engine: &str) {
        let owned = engine.to_owned();
        // Only fails when closures are unsupported, which `new` enables.
        let _ = self
            .schemas
            .invalidate_entries_if(move |key, _| key.0 == owned);
        if let Some(counts) = self.counts.get(engine) {
            counts.invalidations.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// (hits, misses, invalidations) of `engine`'s schema lookups.
    pub fn counts(&self, engine: &str) -> (u64, u64, u64) {
        self.counts.get(engine).map_or((0, 0, 0), |c| {
            (
                c.hits.load(Ordering::Relaxed),
                c.misses.load(Ordering::Relaxed),
                c.invalidations.load(Ordering::Relaxed),
            )
        })
    }
}

/// When several callers waited on one failed lookup, each gets an error of
/// the same meaning.
fn shared_error(shared: &omnigate_drivers::Error) -> omnigate_drivers::Error {
    use omnigate_drivers::{EngineError, Error};
    let copy = |e: &EngineError| EngineError::new(e.engine, e.code.as_deref(), e.message.clone());
    match shared {
        Error::NotFound(e) => Error::NotFound(copy(e)),
        Error::Unavailable(e) => Error::Unavailable(copy(e)),
        Error::PermissionDenied(e) => Error::PermissionDenied(copy(e)),
        Error::Timeout { after } => Error::Timeout { after: *after },
        Error::PoolExhausted { engine, waited } => Error::PoolExhausted {
            engine: engine.clone(),
            waited: *waited,
        },
        other => Error::Internal(EngineError::new("gateway", None, other.to_string())),
    }
}
