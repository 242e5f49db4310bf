//! The `falkordb` engine: Cypher over the Redis protocol (`GRAPH.QUERY`
//! with compact replies), on a bb8 pool of the `redis` crate's
//! multiplexed connections.
//!
//! Named parameters travel in FalkorDB's `CYPHER name=value` prefix as
//! escaped literals (see `params.rs`). Compact replies name labels,
//! relationship types and property keys by id; their tables come from
//! `db.labels()`, `db.relationshipTypes()` and `db.propertyKeys()`, are
//! cached per graph, and are fetched again when a reply holds an id they
//! do not know.

mod compose;
mod config;
mod describe;
mod error;
pub(crate) mod params;
pub(crate) mod reply;
mod transaction;

use std::sync::Arc;
use std::time::Duration;

use ::redis::Value as Resp;
use async_trait::async_trait;

pub use config::FalkorConfig;
use error::from_falkor;
use reply::{DecodeError, Tables};

use crate::cypher::choose_database;
use crate::deadline::within_margin;
use crate::resp::{Calls, RedisPool};
use crate::{
    BeginOptions, DescribeOptions, Dialect, DriverTransaction, EngineDescriptor, EngineError,
    Error, ExecuteOptions, Health, PoolStats, Result, ResultSet, SchemaObject, Statement,
    StorageDriver,
};

/// The engine kind's name.
pub const KIND: &str = "falkordb";

/// How much longer than the server-side `TIMEOUT` the client waits, so the
/// server's own timeout error (and its clean state) usually wins.
const CLIENT_MARGIN: Duration = Duration::from_millis(50);

/// The FalkorDB engine. A clone shares the pool and caches (a transaction
/// holds one).
#[derive(Debug, Clone)]
pub struct FalkorDriver {
    descriptor: EngineDescriptor,
    pool: Arc<RedisPool>,
    graph: String,
    graphs: Vec<String>,
    /// Label, relationship-type and property-key names by graph.
    tables: moka::future::Cache<String, Arc<Tables>>,
    schema: Arc<crate::SchemaEpoch>,
    /// Graphs whose transaction markers are known to be indexed.
    markers_indexed: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl FalkorDriver {
    /// Builds the pool and opens a connection; fails when the server cannot
    /// be reached or has no FalkorDB module.
    pub async fn connect(name: impl Into<String>, config: FalkorConfig) -> Result<Self> {
        let name = name.into();
        let connection = config.connection();
        let pool = RedisPool::connect(KIND, "FalkorDB", &name, &connection, Calls::OnPool).await?;
        let driver = FalkorDriver {
            descriptor: EngineDescriptor {
                name,
                kind: KIND,
                dialects: <Self as crate::EngineKind>::DIALECTS.to_vec(),
            },
            pool: Arc::new(pool),
            graph: config.graph,
            graphs: config.databases,
            schema: Arc::default(),
            markers_indexed: Arc::default(),
            tables: moka::future::Cache::builder()
                .max_capacity(1024)
                .time_to_live(config.schema_ttl)
                .build(),
        };
        // A server without the module answers GRAPH.* with an unknown command.
        driver.module_check().await?;
        driver.persistence_check().await;
        Ok(driver)
    }

    /// Warns when the server keeps an AOF in which FalkorDB mixes writes
    /// replicated as effects (the slow ones) with writes replicated as
    /// queries: the crash trials found FalkorDB 4.16.3 giving properties
    /// each other's names after a restart from such an AOF. Replicating
    /// every write as its query (`EFFECTS_THRESHOLD` above any write's
    /// time) avoids it. Servers that refuse `CONFIG GET` are not checked.
    async fn persistence_check(&self) {
        let Ok(mut conn) = self.pool.connection().await else {
            return;
        };
        let aof: ::redis::RedisResult<Vec<String>> = ::redis::cmd("CONFIG")
            .arg("GET")
            .arg("appendonly")
            .query_async(&mut conn.conn)
            .await;
        let threshold: ::redis::RedisResult<Vec<::redis::Value>> = ::redis::cmd("GRAPH.CONFIG")
            .arg("GET")
            .arg("EFFECTS_THRESHOLD")
            .query_async(&mut conn.conn)
            .await;
        let aof_on = aof.is_ok_and(|v| v.get(1).is_some_and(|on| on == "yes"));
        let threshold = threshold.ok().and_then(|v| match v.get(1) {
            Some(::redis::Value::Int(n)) => Some(*n),
            _ => None,
        });
        if aof_on && threshold.is_some_and(|t| t < 1_000_000) {
            tracing::warn!(
                engine = %self.descriptor.name,
                "FalkorDB keeps an AOF with writes replicated both as effects and as queries, from \
                 which FalkorDB 4.16.3 can restore properties under each other's names; load the \
                 module with EFFECTS_THRESHOLD 4294967295 (see the README)"
            );
        }
    }

    async fn module_check(&self) -> Result<()> {
        let mut conn = self.pool.connection().await?;
        let listed: Result<Resp> = ::redis::cmd("GRAPH.LIST")
            .query_async(&mut conn.conn)
            .await
            .map_err(from_falkor);
        match listed {
            Ok(_) => Ok(()),
            Err(e) => Err(Error::Unavailable(EngineError::new(
                KIND,
                None,
                format!(
                    "the server does not answer GRAPH.LIST; is the FalkorDB module loaded? ({e})"
                ),
            ))),
        }
    }

    /// Sends one query; `text` already carries the parameter prefix.
    async fn query(
        &self,
        graph: &str,
        text: &[u8],
        read_only: bool,
        timeout: Option<Duration>,
    ) -> Result<Resp> {
        let mut command = ::redis::cmd(if read_only {
            "GRAPH.RO_QUERY"
        } else {
            "GRAPH.QUERY"
        });
        command.arg(graph).arg(text).arg("--compact");
        if let Some(limit) = timeout {
            let millis = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX).max(1);
            command.arg("TIMEOUT").arg(millis);
        }
        let mut conn = self.pool.connection().await?;
        let result = within_margin(timeout, CLIENT_MARGIN, async {
            command
                .query_async::<Resp>(&mut conn.conn)
                .await
                .map_err(from_falkor)
        })
        .await;
        match result {
            Err(Error::Unavailable(e)) => {
                conn.mark_broken();
                Err(Error::Unavailable(e))
            }
            other => other,
        }
    }

    /// The graph's name tables: cached, or fetched when `fresh`.
    async fn tables(&self, graph: &str, fresh: bool) -> Result<Arc<Tables>> {
        if !fresh && let Some(tables) = self.tables.get(graph).await {
            return Ok(tables);
        }
        let mut lists = Vec::with_capacity(3);
        for procedure in [
            "CALL db.labels()",
            "CALL db.relationshipTypes()",
            "CALL db.propertyKeys()",
        ] {
            let reply = match self.query(graph, procedure.as_bytes(), true, None).await {
                Ok(reply) => reply,
                // A graph that does not exist yet has no names.
                Err(Error::NotFound(_)) => return Ok(Arc::new(Tables::default())),
                Err(e) => return Err(e),
            };
            lists.push(reply::first_column(&reply).map_err(malformed)?);
        }
        let mut lists = lists.into_iter();
        let tables = Tables {
            labels: lists.next().unwrap_or_default(),
            types: lists.next().unwrap_or_default(),
            keys: lists.next().unwrap_or_default(),
        };
        let tables = Arc::new(tables);
        self.tables
            .insert(graph.to_owned(), Arc::clone(&tables))
            .await;
        Ok(tables)
    }

    /// Reads a reply, fetching the name tables again once when it holds an
    /// id they do not know (a label or key made since, by anyone).
    async fn decode(&self, graph: &str, reply: &Resp) -> Result<ResultSet> {
        let tables = self.tables(graph, false).await?;
        match reply::result_set(reply, &tables) {
            Err(DecodeError::UnknownId) => {
                let tables = self.tables(graph, true).await?;
                reply::result_set(reply, &tables).map_err(malformed)
            }
            other => other.map_err(malformed),
        }
    }

    fn graph<'a>(&'a self, requested: Option<&'a str>) -> Result<&'a str> {
        choose_database(KIND, &self.graph, &self.graphs, requested)
    }
}

fn malformed(e: DecodeError) -> Error {
    let message = match e {
        DecodeError::UnknownId => {
            "the reply names a label, type or property key FalkorDB does not list".to_owned()
        }
        DecodeError::Malformed(message) => message,
    };
    Error::Internal(EngineError::new(KIND, None, message))
}

#[async_trait]
impl StorageDriver for FalkorDriver {
    fn descriptor(&self) -> &EngineDescriptor {
        &self.descriptor
    }

    async fn execute(
        &self,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<ResultSet> {
        self.descriptor.accept(dialect, statement)?;
        let graph = self.graph(options.database.as_deref())?;
        let mut text = params::prefix(&statement.named)?;
        text.extend_from_slice(statement.text.as_bytes());
        let reply = self
            .query(graph, &text, options.read_only, options.timeout)
            .await;
        self.schema.note(dialect, &statement.text);
        let reply = reply.map_err(|e| match e {
            Error::Precondition(report) if options.read_only => Error::ReadOnly(EngineError::new(
                KIND,
                report.code.as_deref(),
                "the statement writes, but the request is read_only",
            )),
            other => other,
        })?;
        let result = self.decode(graph, &reply).await?;
        crate::ResultLimits::new(options).check(result)
    }

    async fn begin(&self, options: &BeginOptions) -> Result<Box<dyn DriverTransaction>> {
        Ok(Box::new(transaction::FalkorTransaction::new(
            self.clone(),
            options.clone(),
        )))
    }

    async fn replay(&self, marker: &str, redo: &[crate::Redo]) -> Result<()> {
        self.replay_redo(marker, redo).await
    }

    fn gateway_state_named(&self, _dialect: Dialect, statement: &Statement) -> Option<String> {
        crate::reserved::cypher_names(&statement.text)
    }

    async fn forget_marker(&self, marker: &str, redo_head: Option<&crate::Redo>) -> Result<()> {
        let Some(graph) = redo_head.and_then(|r| r.first()) else {
            return Ok(());
        };
        self.forget_marker_in(&String::from_utf8_lossy(graph), marker)
            .await
    }

    async fn describe(&self, options: &DescribeOptions) -> Result<Vec<SchemaObject>> {
        describe::describe(self, options).await
    }

    async fn durability(&self) -> Option<String> {
        crate::resp::durability::warning(&self.pool, "FalkorDB").await
    }

    async fn health(&self) -> Health {
        // GRAPH.LIST also tells that the module is still loaded.
        self.pool.probe("GRAPH.LIST").await
    }

    fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }

    fn counters(&self) -> Vec<(String, u64)> {
        self.pool.counters()
    }

    fn schema_epoch(&self) -> u64 {
        self.schema.get()
    }
}

crate::kind::engine_kind!(FalkorDriver, FalkorConfig, [Cypher], FalkorDriver::connect);
