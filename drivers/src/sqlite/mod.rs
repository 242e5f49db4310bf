//! The `sqlite` engine: SQLite (bundled) through rusqlite, pooled by
//! deadpool-sqlite, serving the `sql` dialect; the embedded default.
//!
//! Placeholders are `$1..$n` (SQLite reads them as named parameters).
//! Values are read by storage class (NULL, INTEGER, REAL, TEXT, BLOB);
//! columns declared BOOLEAN read as bools.

mod builder;
pub(crate) mod convert;
mod pragma;
mod run;
mod scratch;
mod transaction;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_sqlite::{Hook, HookError, Pool, PoolError, Runtime};

pub use builder::{SqliteConfig, SqliteLocation};

use crate::pool::{AcquireError, FrontConfig, PoolFront, PoolSettings};
use crate::{
    BeginOptions, DescribeOptions, Dialect, DriverTransaction, EngineDescriptor, EngineError,
    Error, ExecuteOptions, Health, PoolStats, Result, ResultSet, RowStream, SchemaObject,
    Statement, StorageDriver,
};

/// The engine kind's name.
pub const KIND: &str = "sqlite";

/// The SQLite engine.
#[derive(Debug)]
pub struct SqliteDriver {
    descriptor: EngineDescriptor,
    config: SqliteConfig,
    pool: Pool,
    front: PoolFront,
    schema: crate::SchemaEpoch,
    /// Its markers as a deciding engine.
    markers: crate::sql::SqlMarkers,
    /// The temporary directory of a `":memory:"` engine's database,
    /// removed when the engine is dropped.
    _scratch: Option<tempfile::TempDir>,
}

impl SqliteDriver {
    /// Opens the engine named `name`, and one connection to check that the
    /// database can be opened. Must run inside a Tokio runtime.
    pub async fn open(name: impl Into<String>, config: SqliteConfig) -> Result<Self> {
        let name = name.into();
        let front = PoolFront::new(FrontConfig {
            engine: name.clone(),
            kind: KIND,
            server: "SQLite",
            settings: PoolSettings {
                // Opening a file fails for reasons a wait does not mend
                // (they are said as they are, not as an outage), so this
                // gate only closes on a failure the pool itself reports.
                backoff_base: Duration::from_millis(100),
                backoff_max: Duration::from_secs(1),
                ..config.pool
            },
        });
        let created = Arc::clone(front.metrics());
        let busy_timeout = config.busy_timeout;
        scratch::sweep();
        let scratch = match config.location() {
            SqliteLocation::Memory => Some(
                tempfile::Builder::new()
                    .prefix(&scratch::prefix())
                    .tempdir()
                    .map_err(|e| {
                        Error::Unavailable(
                            EngineError::new(KIND, None, "cannot make a scratch directory")
                                .with_source(e),
                        )
                    })?,
            ),
            SqliteLocation::File(_) => None,
        };
        // A scratch database is gone with the engine: nothing to sync.
        let ephemeral = scratch.is_some();
        let open_name = config.open_name(scratch.as_ref().map(tempfile::TempDir::path));
        let Ok(builder) = deadpool_sqlite::Config::new(open_name).builder(Runtime::Tokio1);
        let pool = builder
            .max_size(config.pool.max_connections.max(1))
            .wait_timeout(Some(config.pool.acquire_timeout))
            .create_timeout(Some(config.pool.acquire_timeout))
            .post_create(Hook::async_fn(move |conn, _| {
                created.created();
                Box::pin(async move {
                    conn.interact(move |c| {
                        c.busy_timeout(busy_timeout)?;
                        c.pragma_update(None, "foreign_keys", true)?;
                        c.pragma_update(None, "journal_mode", "WAL")?;
                        if ephemeral {
                            c.pragma_update(None, "synchronous", "OFF")?;
                        }
                        Ok::<_, deadpool_sqlite::rusqlite::Error>(())
                    })
                    .await
                    .map_err(|e| HookError::message(e.to_string()))?
                    .map_err(HookError::Backend)
                })
            }))
            .build()
            .map_err(|e| {
                Error::Internal(
                    EngineError::new(KIND, None, "could not build the pool").with_source(e),
                )
            })?;
        let driver = SqliteDriver {
            descriptor: EngineDescriptor {
                name,
                kind: KIND,
                dialects: <Self as crate::EngineKind>::DIALECTS.to_vec(),
            },
            config,
            pool,
            front,
            schema: crate::SchemaEpoch::default(),
            markers: crate::sql::SqlMarkers::sqlite(),
            _scratch: scratch,
        };
        // Open one connection now: a bad path fails at startup, and an
        // in-memory database lives as long as one connection holds it.
        drop(driver.connection().await?);
        Ok(driver)
    }

    /// The engine's configuration.
    pub fn config(&self) -> &SqliteConfig {
        &self.config
    }

    async fn connection(&self) -> Result<deadpool_sqlite::Object> {
        self.front.acquire(self.get()).await
    }

    /// The pool's answer, sorted for the front.
    async fn get(&self) -> std::result::Result<deadpool_sqlite::Object, AcquireError<PoolError>> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Timeout(deadpool_sqlite::TimeoutType::Wait) => AcquireError::Exhausted,
            PoolError::Backend(e) => AcquireError::Other(convert::error(e)),
            other => AcquireError::Connect(other),
        })
    }
}

impl SqliteDriver {
    /// Whether a statement outside a transaction may run here: its
    /// dialect, no transaction control, no PRAGMA that sets a pooled
    /// connection's state.
    fn admit(&self, dialect: Dialect, statement: &Statement) -> Result<()> {
        self.descriptor.accept(dialect, statement)?;
        crate::sql::refuse_control_outside(KIND, crate::sql::first_keyword(&statement.text))?;
        pragma::refuse_setting(&statement.text)
    }
}

#[async_trait]
impl StorageDriver for SqliteDriver {
    fn descriptor(&self) -> &EngineDescriptor {
        &self.descriptor
    }

    async fn execute(
        &self,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<ResultSet> {
        self.admit(dialect, statement)?;
        let conn = self.connection().await?;
        let result = run::execute(&conn, statement.clone(), options.clone()).await;
        self.schema.note(dialect, &statement.text);
        result
    }

    async fn describe_statement(
        &self,
        dialect: Dialect,
        statement: &Statement,
        _options: &ExecuteOptions,
    ) -> Result<crate::StatementShape> {
        self.admit(dialect, statement)?;
        let conn = self.connection().await?;
        run::describe_statement(&conn, statement.text.clone()).await
    }

    async fn execute_stream(
        &self,
        dialect: Dialect,
        statement: Statement,
        options: ExecuteOptions,
    ) -> Result<RowStream> {
        self.admit(dialect, &statement)?;
        let conn = self.connection().await?;
        let changes = crate::SchemaEpoch::changes(dialect, &statement.text);
        let stream = run::stream(conn, statement, options).await;
        if changes {
            self.schema.bump();
        }
        stream
    }

    async fn begin(&self, options: &BeginOptions) -> Result<Box<dyn DriverTransaction>> {
        let conn = self.connection().await?;
        let tx =
            transaction::SqliteTransaction::begin(self.descriptor.clone(), options.clone(), conn)
                .await?;
        Ok(Box::new(tx))
    }

    async fn describe(&self, options: &DescribeOptions) -> Result<Vec<SchemaObject>> {
        let conn = self.connection().await?;
        run::describe(&conn, options.name.clone()).await
    }

    async fn health(&self) -> Health {
        self.front
            .probe(async {
                let conn = self.front.checkout(self.get()).await?;
                run::execute(&conn, Statement::new("SELECT 1"), ExecuteOptions::default())
                    .await
                    .map(drop)
            })
            .await
    }

    fn pool_stats(&self) -> PoolStats {
        self.front.metrics().stats(self.pool.status())
    }

    fn schema_epoch(&self) -> u64 {
        self.schema.get()
    }

    fn gateway_state_named(&self, _dialect: Dialect, statement: &Statement) -> Option<String> {
        crate::reserved::sql_names(&statement.text, None)
    }

    fn decision_markers(&self) -> Option<&dyn crate::DecisionMarkers> {
        Some(&self.markers)
    }
}

crate::kind::engine_kind!(SqliteDriver, SqliteConfig, [Sql], SqliteDriver::open);
