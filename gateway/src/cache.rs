//! The metadata cache: described schemas per engine, kept in moka with a
//! TTL. An entry is keyed by the engine's schema epoch (the count of
//! schema changes its driver has run), so DDL through the gateway makes
//! older descriptions unreachable without a second look at the statement.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use moka::future::Cache;
use omnigate_drivers::{DescribeOptions, Result, SchemaObject};

use crate::config::CacheConfig;
use crate::engines::EngineEntry;

/// (engine, epoch, object name).
type Key = (String, u64, Option<String>);

/// Cached schema descriptions; hits and misses are counted in each
/// engine's entry.
#[derive(Debug, Clone)]
pub struct MetadataCache {
    schemas: Cache<Key, Arc<Vec<SchemaObject>>>,
}

impl MetadataCache {
    /// An empty cache.
    pub fn new(config: &CacheConfig) -> Self {
        MetadataCache {
            schemas: Cache::builder()
                .max_capacity(config.max_entries)
                .time_to_live(config.schema_ttl)
                .build(),
        }
    }

    /// The schema objects of `engine` named `name` (all when `None`),
    /// described once per TTL and schema epoch.
    pub async fn describe(
        &self,
        engine: &EngineEntry,
        name: Option<String>,
    ) -> Result<Arc<Vec<SchemaObject>>> {
        let driver = engine.driver.as_ref();
        let options = DescribeOptions { name: name.clone() };
        let key = (engine.name().to_owned(), driver.schema_epoch(), name);
        let entry = self
            .schemas
            .entry(key)
            .or_try_insert_with(async { driver.describe(&options).await.map(Arc::new) })
            .await
            .map_err(|e| Arc::try_unwrap(e).unwrap_or_else(|shared| shared_error(&shared)))?;
        let counter = if entry.is_fresh() {
            &engine.counters.schema_misses
        } else {
            &engine.counters.schema_hits
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(entry.into_value())
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
