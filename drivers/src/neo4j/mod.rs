//! The `neo4j` engine: Cypher over Bolt with neo4rs and its connection
//! pool (one per database in use).
//!
//! Named parameters travel as Bolt values; read-only requests run in READ
//! access mode, so the server refuses writes; the request's timeout is
//! sent as the transaction timeout (`tx_timeout`) and also bounds the call
//! here. neo4rs does not expose its pool's state: the pool statistics
//! count this driver's calls.

mod config;
pub(crate) mod convert;
mod error;
mod markers;
mod transaction;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use neo4rs::{BoltType, ConfigBuilder, Graph, Query};

pub use config::Neo4jConfig;
use error::from_neo4j;

use crate::cypher::choose_database;
use crate::deadline::within_margin;
use crate::pool::{FrontConfig, PoolFront, PoolSettings, PoolSize};
use crate::{
    BeginOptions, Column, DescribeOptions, Dialect, DriverTransaction, EngineDescriptor,
    EngineError, Error, ExecuteOptions, Health, PoolStats, Result, ResultLimits, ResultSet,
    SchemaObject, Secret, Statement, StorageDriver,
};

/// The engine kind's name.
pub const KIND: &str = "neo4j";

/// The key of the default database among the graphs.
const DEFAULT: &str = "";

/// The Neo4j engine.
pub struct Neo4jDriver {
    descriptor: EngineDescriptor,
    config: Neo4jConfig,
    /// A neo4rs graph (and pool) per database in use.
    graphs: moka::sync::Cache<String, Graph>,
    front: PoolFront,
    schema: crate::SchemaEpoch,
    in_flight: AtomicUsize,
}

impl std::fmt::Debug for Neo4jDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Neo4jDriver")
            .field("descriptor", &self.descriptor)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Neo4jDriver {
    /// Connects and runs `RETURN 1`; fails when the server cannot be
    /// reached or refuses the credentials.
    pub async fn connect(name: impl Into<String>, config: Neo4jConfig) -> Result<Self> {
        let name = name.into();
        let driver = Neo4jDriver {
            front: PoolFront::new(FrontConfig {
                engine: name.clone(),
                kind: KIND,
                server: "Neo4j",
                settings: PoolSettings {
                    // neo4rs has no acquire timeout: a connect is the wait.
                    acquire_timeout: config.pool.connect_timeout,
                    ..config.pool
                },
            }),
            descriptor: EngineDescriptor {
                name,
                kind: KIND,
                dialects: <Self as crate::EngineKind>::DIALECTS.to_vec(),
            },
            config,
            graphs: moka::sync::Cache::new(64),
            schema: crate::SchemaEpoch::default(),
            in_flight: AtomicUsize::new(0),
        };
        driver
            .run(
                DEFAULT,
                Query::new("RETURN 1".into()),
                true,
                None,
                ResultLimits::none(),
            )
            .await?;
        Ok(driver)
    }

    /// The graph of `database` (`DEFAULT`: the configured one).
    fn graph(&self, database: &str) -> Result<Graph> {
        if let Some(graph) = self.graphs.get(database) {
            return Ok(graph);
        }
        let mut builder = ConfigBuilder::default()
            .uri(&self.config.url)
            .user(&self.config.user)
            .password(self.config.password.as_ref().map_or("", Secret::expose))
            .max_connections(self.config.pool.max_connections.max(1))
            .fetch_size(self.config.fetch_size.max(1))
            .connection_timeout(self.config.pool.connect_timeout);
        let chosen = if database == DEFAULT {
            self.config.database.as_deref()
        } else {
            Some(database)
        };
        if let Some(db) = chosen {
            builder = builder.db(db);
        }
        let graph = builder
            .build()
            .and_then(Graph::connect)
            .map_err(from_neo4j)?;
        self.front.metrics().created();
        self.graphs.insert(database.to_owned(), graph.clone());
        Ok(graph)
    }

    /// Runs a query and collects its rows; fails fast while the server is
    /// known to be down.
    async fn run(
        &self,
        database: &str,
        query: Query,
        read_only: bool,
        timeout: Option<Duration>,
        limits: ResultLimits,
    ) -> Result<ResultSet> {
        self.front.gate()?;
        self.run_now(database, query, read_only, timeout, limits)
            .await
    }

    /// Runs a query and collects its rows, past the fail-fast gate.
    async fn run_now(
        &self,
        database: &str,
        query: Query,
        read_only: bool,
        timeout: Option<Duration>,
        mut limits: ResultLimits,
    ) -> Result<ResultSet> {
        let graph = self.graph(database)?;
        let query = match timeout {
            Some(limit) => query.extra(
                "tx_timeout",
                i64::try_from(limit.as_millis()).unwrap_or(i64::MAX).max(1),
            ),
            None => query,
        };
        let started = Instant::now();
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let work = async {
            let mut stream = if read_only {
                graph.execute_read(query).await
            } else {
                graph.execute(query).await
            }
            .map_err(from_neo4j)?;
            self.front.metrics().acquired(started.elapsed());
            let mut result = ResultSet::default();
            while let Some(row) = stream.next().await.map_err(from_neo4j)? {
                add_row(&mut result, &row, &mut limits)?;
            }
            Ok(result)
        };
        // A little past the server's own timeout, so its error wins.
        let outcome = within_margin(timeout, Duration::from_millis(100), work).await;
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.front.observe(&outcome);
        outcome
    }
}

/// Adds one Bolt row to `result` (its first row names the columns).
fn add_row(result: &mut ResultSet, row: &neo4rs::Row, limits: &mut ResultLimits) -> Result<()> {
    if result.columns.is_empty() {
        result.columns = row
            .keys()
            .iter()
            .map(|k| Column::new(k.value.clone(), ""))
            .collect();
    }
    let ResultSet { columns, rows, .. } = result;
    rows.try_push(columns.iter().map(|c| {
        row.get::<BoltType>(&c.name)
            .map(convert::from_bolt)
            .map_err(|e| Error::Internal(EngineError::new(KIND, None, e.to_string())))
    }))?;
    limits.admit(rows.last().unwrap_or_default())
}

/// A statement's text and named parameters as a Bolt query.
fn query_of(statement: &Statement) -> Result<Query> {
    let mut query = Query::new(statement.text.clone());
    for (name, value) in &statement.named {
        crate::cypher::check_param_name(name)?;
        let bolt = convert::to_bolt(value).map_err(|why| Error::named_param(name, why))?;
        query = query.param(name, bolt);
    }
    Ok(query)
}

#[async_trait]
impl StorageDriver for Neo4jDriver {
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
        let default = self.config.database.as_deref().unwrap_or(DEFAULT);
        let database = choose_database(
            KIND,
            default,
            &self.config.databases,
            options.database.as_deref(),
        )?;
        let database = if database == default {
            DEFAULT
        } else {
            database
        };
        let query = query_of(statement)?;
        let result = self
            .run(
                database,
                query,
                options.read_only,
                options.timeout,
                ResultLimits::new(options),
            )
            .await;
        self.schema.note(dialect, &statement.text);
        result
    }

    async fn begin(&self, options: &BeginOptions) -> Result<Box<dyn DriverTransaction>> {
        self.front.gate()?;
        let txn = self.graph(DEFAULT)?.start_txn().await.map_err(from_neo4j)?;
        Ok(Box::new(transaction::Neo4jTransaction::new(
            self.descriptor.clone(),
            options.clone(),
            txn,
        )))
    }

    async fn describe(&self, options: &DescribeOptions) -> Result<Vec<SchemaObject>> {
        let mut objects = Vec::new();
        for (kind, procedure) in [
            ("label", "CALL db.labels() YIELD label RETURN label"),
            (
                "relationship_type",
                "CALL db.relationshipTypes() YIELD relationshipType RETURN relationshipType",
            ),
            (
                "property_key",
                "CALL db.propertyKeys() YIELD propertyKey RETURN propertyKey",
            ),
            (
                "index",
                "SHOW INDEXES YIELD name, type, labelsOrTypes, properties, state RETURN name, type, labelsOrTypes, properties, state",
            ),
            (
                "constraint",
                "SHOW CONSTRAINTS YIELD name, type, labelsOrTypes, properties RETURN name, type, labelsOrTypes, properties",
            ),
        ] {
            let set = self
                .run(
                    DEFAULT,
                    Query::new(procedure.into()),
                    true,
                    None,
                    ResultLimits::none(),
                )
                .await?;
            for row in set.rows {
                let mut values = row.into_iter();
                let name = match values.next() {
                    Some(crate::Value::String(s)) => s.into(),
                    Some(other) => other.to_string(),
                    None => continue,
                };
                let attributes = set.columns[1..]
                    .iter()
                    .zip(values)
                    .map(|(c, v)| (c.name.as_str().to_owned(), v.to_string()))
                    .collect();
                objects.push(SchemaObject {
                    kind: kind.into(),
                    schema: self.config.database.clone().unwrap_or_default(),
                    name,
                    attributes,
                    ..SchemaObject::default()
                });
            }
        }
        objects.retain(|o| options.wants(&o.name));
        Ok(objects)
    }

    async fn health(&self) -> Health {
        self.front
            .probe(async {
                self.run_now(
                    DEFAULT,
                    Query::new("RETURN 1".into()),
                    true,
                    Some(crate::pool::PROBE_TIMEOUT),
                    ResultLimits::none(),
                )
                .await
                .map(drop)
            })
            .await
    }

    fn pool_stats(&self) -> PoolStats {
        let in_flight = self.in_flight.load(Ordering::Relaxed);
        self.front.metrics().stats(PoolSize {
            max_size: self.config.pool.max_connections,
            size: in_flight,
            idle: 0,
            waiting: 0,
        })
    }

    fn counters(&self) -> Vec<(String, u64)> {
        vec![(
            "connect_failures".into(),
            u64::from(self.front.connect_failures()),
        )]
    }

    fn schema_epoch(&self) -> u64 {
        self.schema.get()
    }

    fn gateway_state_named(&self, _dialect: Dialect, statement: &Statement) -> Option<String> {
        crate::reserved::cypher_names(&statement.text)
    }

    fn decision_markers(&self) -> Option<&dyn crate::DecisionMarkers> {
        Some(&markers::Neo4jMarkers)
    }
}

crate::kind::engine_kind!(Neo4jDriver, Neo4jConfig, [Cypher], Neo4jDriver::connect);
