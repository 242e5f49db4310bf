//! The gateway as a library: router, metadata cache and limits behind one
//! cheap-to-clone handle. The gRPC service is a thin layer over it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use omnigate_drivers::falkordb::FalkorDriver;
use omnigate_drivers::memory::MemoryDriver;
use omnigate_drivers::neo4j::Neo4jDriver;
use omnigate_drivers::postgres::PostgresDriver;
use omnigate_drivers::redis::RedisDriver;
use omnigate_drivers::sqlite::SqliteDriver;
use omnigate_drivers::victoria::VictoriaDriver;
use omnigate_drivers::{
    Dialect, ExecuteOptions, Health, ResultSet, SchemaObject, Statement, StorageDriver,
    StreamOptions, Value,
};

use crate::cache::MetadataCache;
use crate::codec::{self, Bindings, Codec};
use crate::config::{Config, EngineConfig};
use crate::error::{ConfigError, Error, Result};
use crate::router::Router;

mod types;

pub use types::{
    BatchRequest, BatchResponse, Description, EngineStatus, Limits, Request, RequestOptions,
    Response, StreamResponse,
};

/// How long a health check may take before the engine counts as down.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// A request resolved to its engine (its statements travel beside it).
struct Routed<'a> {
    dialect: Dialect,
    driver: &'a Arc<dyn StorageDriver>,
    timeout: Duration,
    options: RequestOptions,
}

#[derive(Debug)]
struct Inner {
    router: Router,
    /// Codec bindings by engine name (engines of the redis dialect).
    bindings: HashMap<String, Arc<Bindings>>,
    /// The codec of nested graph properties, by engine name (cypher).
    property_codecs: HashMap<String, Codec>,
    cache: MetadataCache,
    limits: Limits,
}

/// The gateway: cheap to clone, shared by the gRPC service and library users.
///
/// ```
/// use omnigate::{Gateway, Request};
/// use omnigate_drivers::Value;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // No config: the embedded engines (`cache`: redis dialect, `main`: sql).
/// let gateway = Gateway::builder().build().await?;
/// gateway.execute(Request::new("redis", "SET greeting $1").param("hello")).await?;
/// let got = gateway.execute(Request::new("redis", "GET greeting")).await?;
/// assert_eq!(got.result.rows[0][0], Value::from("hello"));
///
/// gateway.execute(Request::new("sql", "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")).await?;
/// gateway.execute(Request::new("sql", "INSERT INTO t VALUES ($1, $2)").param(1).param("ada")).await?;
/// let rows = gateway.execute(Request::new("sql", "SELECT name FROM t WHERE id = $1").param(1)).await?;
/// assert_eq!(rows.result.rows, vec![vec![Value::from("ada")]]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

/// Builds a [`Gateway`] from a [`Config`] and/or drivers given directly.
#[derive(Debug, Default)]
pub struct GatewayBuilder {
    config: Option<Config>,
    drivers: Vec<Arc<dyn StorageDriver>>,
}

impl GatewayBuilder {
    /// Uses `config` (its engines are started by `build`).
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Adds an engine built elsewhere (it replaces a configured one of the same name).
    pub fn driver(mut self, driver: Arc<dyn StorageDriver>) -> Self {
        self.drivers.push(driver);
        self
    }

    /// Starts the configured engines. With neither a config nor drivers,
    /// runs the embedded default.
    pub async fn build(self) -> Result<Gateway, ConfigError> {
        let config = self.config.unwrap_or_else(|| {
            let mut config = Config::default();
            if !self.drivers.is_empty() {
                // Drivers given and no config: serve just those.
                config.engines.clear();
            }
            config
        });
        let mut router = Router::default();
        for (name, engine) in &config.engines {
            let started =
                start_engine(name, engine)
                    .await
                    .map_err(|source| ConfigError::Engine {
                        name: name.clone(),
                        source,
                    })?;
            router.insert(started);
        }
        for driver in self.drivers {
            router.insert(driver);
        }
        let bindings = config
            .engines
            .iter()
            .filter(|(_, engine)| !engine.bindings().is_empty())
            .map(|(name, engine)| (name.clone(), Bindings::new(engine.bindings().to_vec())))
            .collect();
        let property_codecs = config
            .engines
            .iter()
            .filter_map(|(name, engine)| Some((name.clone(), engine.property_codec()?)))
            .collect();
        let names = router.engines().map(|e| e.descriptor().name.clone());
        let cache = MetadataCache::new(&config.cache, names);
        Ok(Gateway {
            inner: Arc::new(Inner {
                router,
                bindings,
                property_codecs,
                cache,
                limits: Limits {
                    default_timeout: config.server.default_timeout,
                    default_max_rows: config.server.default_max_rows,
                    max_rows: config.server.max_rows,
                    stream_batch_rows: config.server.stream_batch_rows,
                    max_batch_rows: config.server.max_batch_rows,
                    max_response_bytes: config.server.max_response_bytes as u64,
                },
            }),
        })
    }
}

async fn start_engine(
    name: &str,
    engine: &EngineConfig,
) -> omnigate_drivers::Result<Arc<dyn StorageDriver>> {
    Ok(match engine {
        EngineConfig::Memory(memory) => Arc::new(MemoryDriver::new(
            name,
            omnigate_drivers::memory::MemoryConfig {
                eviction_interval: memory.eviction_interval,
            },
        )),
        EngineConfig::Sqlite(sqlite) => {
            Arc::new(SqliteDriver::open(name, sqlite.to_driver()).await?)
        }
        EngineConfig::Postgres(pg) => {
            Arc::new(PostgresDriver::connect(name, pg.to_driver()).await?)
        }
        EngineConfig::Redis(redis) => {
            Arc::new(RedisDriver::connect(name, redis.to_driver()).await?)
        }
        EngineConfig::Falkordb(falkor) => {
            Arc::new(FalkorDriver::connect(name, falkor.to_driver()).await?)
        }
        EngineConfig::Neo4j(neo4j) => {
            Arc::new(Neo4jDriver::connect(name, neo4j.to_driver()).await?)
        }
        EngineConfig::Victoriametrics(vm) => {
            Arc::new(VictoriaDriver::connect(name, vm.to_driver()).await?)
        }
    })
}

impl Gateway {
    /// A builder.
    pub fn builder() -> GatewayBuilder {
        GatewayBuilder::default()
    }

    /// The router (engines by name).
    pub fn router(&self) -> &Router {
        &self.inner.router
    }

    /// The limits applied to every request.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    fn timeout(&self, requested: Option<Duration>) -> Duration {
        let default = self.inner.limits.default_timeout;
        requested.map_or(default, |t| t.min(default))
    }

    /// Routes a request: its dialect and engine.
    fn route(
        &self,
        dialect: &str,
        target: Option<&str>,
        tx_id: Option<&str>,
        options: RequestOptions,
    ) -> Result<Routed<'_>> {
        if tx_id.is_some_and(|id| !id.is_empty()) {
            return Err(Error::TransactionsUnavailable);
        }
        let (dialect, driver) = self.inner.router.route(dialect, target)?;
        Ok(Routed {
            dialect,
            driver,
            timeout: self.timeout(options.timeout),
            options,
        })
    }

    /// Checks what every statement must satisfy, then encodes its
    /// structured parameters with the engine's codecs.
    fn prepare(&self, routed: &Routed<'_>, statement: &mut Statement) -> Result<()> {
        statement.check(routed.dialect)?;
        self.encode(routed.dialect, &routed.driver.descriptor().name, statement)
    }

    /// A request's statement, routed and prepared.
    fn route_statement(&self, request: Request) -> Result<(Routed<'_>, Statement)> {
        let routed = self.route(
            &request.dialect,
            request.target.as_deref(),
            request.tx_id.as_deref(),
            request.options,
        )?;
        let mut statement = Statement {
            text: request.statement,
            params: request.params,
            named: request.named,
        };
        self.prepare(&routed, &mut statement)?;
        Ok((routed, statement))
    }

    /// Encodes structured parameters of a Redis statement with the codec
    /// bound to its key.
    fn encode(&self, dialect: Dialect, engine: &str, statement: &mut Statement) -> Result<()> {
        match self.inner.bindings.get(engine) {
            Some(bindings) if dialect == Dialect::Redis => bindings.encode_params(statement),
            _ if dialect == Dialect::Cypher => {
                if let Some(codec) = self.inner.property_codecs.get(engine) {
                    codec::properties::encode_nested(*codec, &mut statement.named);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Decodes values stored through a codec (they carry its header).
    fn decode(dialect: Dialect, result: &mut ResultSet) {
        if matches!(dialect, Dialect::Redis | Dialect::Cypher) {
            for row in &mut result.rows {
                for value in row.iter_mut() {
                    *value = codec::decode_all(std::mem::replace(value, Value::Null));
                }
            }
        }
    }

    /// Drops cached metadata of the engine when the statement changes its schema.
    fn note_schema_change(&self, routed: &Routed<'_>, statement: &Statement) {
        if routed
            .driver
            .is_schema_change(routed.dialect, &statement.text)
        {
            self.inner
                .cache
                .invalidate_engine(&routed.driver.descriptor().name);
        }
    }

    /// The driver's options for a routed request, with the server's defaults.
    fn execute_options(&self, routed: &Routed<'_>) -> ExecuteOptions {
        let limits = &self.inner.limits;
        ExecuteOptions {
            max_rows: Some(
                routed
                    .options
                    .max_rows
                    .unwrap_or(limits.default_max_rows)
                    .min(limits.max_rows),
            ),
            max_bytes: Some(limits.max_response_bytes),
            timeout: Some(routed.timeout),
            read_only: routed.options.read_only,
            raw_bytes: routed.options.raw_bytes,
            database: routed.options.database.clone(),
            ts: routed.options.ts.clone(),
        }
    }

    /// Runs one statement and returns its whole result.
    pub async fn execute(&self, request: Request) -> Result<Response> {
        let (routed, statement) = self.route_statement(request)?;
        let options = self.execute_options(&routed);
        // The driver cancels on the engine at `timeout`; this is a backstop
        // for a driver that cannot.
        let run = routed.driver.execute(routed.dialect, &statement, &options);
        let outcome = tokio::time::timeout(routed.timeout + Duration::from_secs(1), run).await;
        self.note_schema_change(&routed, &statement);
        let mut result = outcome.map_err(|_| omnigate_drivers::Error::Timeout {
            after: routed.timeout,
        })??;
        Self::decode(routed.dialect, &mut result);
        Ok(Response {
            engine: routed.driver.descriptor().name.clone(),
            result,
        })
    }

    /// Runs one statement and returns its rows in batches.
    pub async fn execute_stream(&self, request: Request) -> Result<StreamResponse> {
        let (routed, statement) = self.route_statement(request)?;
        let options = StreamOptions {
            batch_size: routed
                .options
                .batch_size
                .unwrap_or(self.inner.limits.stream_batch_rows)
                .clamp(1, self.inner.limits.max_batch_rows),
            timeout: Some(routed.timeout),
            read_only: routed.options.read_only,
            raw_bytes: routed.options.raw_bytes,
            database: routed.options.database.clone(),
            ts: routed.options.ts.clone(),
        };
        self.note_schema_change(&routed, &statement);
        let engine = routed.driver.descriptor().name.clone();
        let mut stream = routed
            .driver
            .execute_stream(routed.dialect, statement, options)
            .await?;
        if matches!(routed.dialect, Dialect::Redis | Dialect::Cypher) {
            use futures::{StreamExt, TryStreamExt};
            stream.batches = stream
                .batches
                .map_ok(|rows| {
                    rows.into_iter()
                        .map(|row| row.into_iter().map(codec::decode_all).collect())
                        .collect()
                })
                .boxed();
        }
        Ok(StreamResponse { engine, stream })
    }

    /// Runs several statements on one engine, each with its own outcome
    /// (one round trip for Redis).
    pub async fn execute_batch(&self, request: BatchRequest) -> Result<BatchResponse> {
        let routed = self.route(
            &request.dialect,
            request.target.as_deref(),
            request.tx_id.as_deref(),
            request.options,
        )?;
        let engine = routed.driver.descriptor().name.clone();
        let mut statements = request.statements;
        for statement in &mut statements {
            self.prepare(&routed, statement)?;
        }
        let options = self.execute_options(&routed);
        let run = routed
            .driver
            .execute_batch(routed.dialect, &statements, &options);
        let outcome = tokio::time::timeout(routed.timeout + Duration::from_secs(1), run).await;
        if statements
            .iter()
            .any(|s| routed.driver.is_schema_change(routed.dialect, &s.text))
        {
            self.inner
                .cache
                .invalidate_engine(&routed.driver.descriptor().name);
        }
        let mut results = outcome.map_err(|_| omnigate_drivers::Error::Timeout {
            after: routed.timeout,
        })??;
        for result in results.iter_mut().flatten() {
            Self::decode(routed.dialect, result);
        }
        Ok(BatchResponse { engine, results })
    }

    /// Every engine with its health (checked now), pool and counters.
    pub async fn engines(&self) -> Vec<EngineStatus> {
        let checks = self.inner.router.engines().map(|driver| async move {
            let health = tokio::time::timeout(HEALTH_TIMEOUT, driver.health())
                .await
                .unwrap_or_else(|_| {
                    Health::NotServing(format!("no answer within {HEALTH_TIMEOUT:?}"))
                });
            let descriptor = driver.descriptor();
            let (hits, misses, invalidations) = self.inner.cache.counts(&descriptor.name);
            let mut counters = driver.counters();
            counters.extend([
                ("schema_cache_hits".to_owned(), hits),
                ("schema_cache_misses".to_owned(), misses),
                ("schema_cache_invalidations".to_owned(), invalidations),
            ]);
            if let Some(bindings) = self.inner.bindings.get(&descriptor.name) {
                let (hits, misses) = bindings.counts();
                counters.extend([
                    ("codec_binding_hits".to_owned(), hits),
                    ("codec_binding_misses".to_owned(), misses),
                ]);
            }
            EngineStatus {
                name: descriptor.name.clone(),
                kind: descriptor.kind.to_owned(),
                dialects: descriptor
                    .dialects
                    .iter()
                    .map(|d| d.as_str().to_owned())
                    .collect(),
                health,
                pool: driver.pool_stats(),
                counters,
            }
        });
        join_all(checks).await
    }

    /// The schema objects of one engine (cached; DDL through the gateway
    /// drops the cache).
    pub async fn describe(
        &self,
        target: Option<&str>,
        dialect: Option<&str>,
        name: Option<&str>,
    ) -> Result<Description> {
        let driver = self.inner.router.for_describe(target, dialect)?;
        let objects = self
            .inner
            .cache
            .describe(driver.as_ref(), name.map(str::to_owned))
            .await?;
        let descriptor = driver.descriptor();
        let objects = match self.inner.bindings.get(&descriptor.name) {
            Some(bindings) => {
                let mut all = objects.as_ref().clone();
                all.extend(
                    bindings
                        .list()
                        .iter()
                        .filter(|b| name.is_none_or(|n| n == b.pattern))
                        .map(|b| SchemaObject {
                            kind: "binding".into(),
                            name: b.pattern.clone(),
                            attributes: vec![
                                ("codec".into(), b.codec.name().into()),
                                ("compress_above".into(), b.compress_above.to_string()),
                            ],
                            ..SchemaObject::default()
                        }),
                );
                Arc::new(all)
            }
            None => objects,
        };
        Ok(Description {
            engine: descriptor.name.clone(),
            kind: descriptor.kind.to_owned(),
            objects,
            pool: driver.pool_stats(),
        })
    }
}
