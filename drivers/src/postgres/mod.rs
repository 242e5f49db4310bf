//! The `postgres` engine: tokio-postgres pooled by deadpool-postgres,
//! serving the `sql` dialect.
//!
//! Statements are prepared once per connection (deadpool's statement
//! cache) and parameters are typed from the prepared statement, so a client
//! may send a string for a uuid, timestamptz, numeric or jsonb parameter.
//! Numerics travel as exact decimal text. A statement's deadline cancels it
//! on the server. While the server is down, calls fail fast with
//! `Unavailable` and connects back off; the engine recovers by itself.

mod config;
pub(crate) mod decode;
mod describe;
pub(crate) mod encode;
mod error;
mod lease;
mod numeric;
mod pool;
mod prepared;
mod run;
mod session;
mod stale;
mod text_cells;
mod tls;
mod transaction;
mod tx_stream;
mod types_cache;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;

use async_trait::async_trait;
use deadpool_postgres::{Object, Pool};
use pool::{build_pool, get, max_prepared_transactions};
use prepared::Cached;

pub use config::{PostgresConfig, Recycling, Tls};
pub use session::changes_session;

/// PostgreSQL's binary format of the value model, as this driver encodes
/// parameters and decodes results: for a front end that speaks the
/// PostgreSQL wire, so one codec serves both directions.
pub mod binary {
    use bytes::BytesMut;
    use tokio_postgres::types::Type;

    use crate::{Result, Value};

    /// `value` in `ty`'s binary format (`None`: NULL); `index` (1-based)
    /// names the parameter or column in an error.
    pub fn encode(index: usize, value: &Value, ty: &Type) -> Result<Option<BytesMut>> {
        super::encode::encode(index, value, ty).map(|e| e.0)
    }

    /// [`encode`] onto the end of `out` (a row being built): whether the
    /// value is NULL, nothing written. On an error, `out` may hold part of
    /// the value.
    pub fn encode_into(index: usize, value: &Value, ty: &Type, out: &mut BytesMut) -> Result<bool> {
        super::encode::encode_into(index, value, ty, out)
    }

    /// A value of type `ty` from its binary format.
    pub fn decode(index: usize, ty: &Type, raw: &[u8]) -> Result<Value> {
        super::decode::decode_one(ty, raw).map_err(|e| {
            crate::Error::param(
                index,
                format!("malformed {} in binary format: {e}", ty.name()),
            )
        })
    }
}

use crate::pool::PoolFront;
use crate::{
    BeginOptions, DescribeOptions, Dialect, DriverTransaction, EngineDescriptor, EngineError,
    Error, ExecuteOptions, Health, PoolStats, Result, ResultSet, RowStream, SchemaObject,
    Statement, StorageDriver,
};

/// The engine kind's name.
pub const KIND: &str = "postgres";

/// The PostgreSQL engine.
#[derive(Debug)]
pub struct PostgresDriver {
    descriptor: EngineDescriptor,
    pool: Pool,
    front: PoolFront,
    /// The pool of `read_only_user`, for restricted calls.
    reader: Option<(Pool, PoolFront)>,
    schema: Arc<crate::SchemaEpoch>,
    /// The server's `max_prepared_transactions` (0: no two-phase commit).
    max_prepared: u64,
    types: types_cache::StatementTypes,
    /// Its markers as a deciding engine.
    markers: crate::sql::SqlMarkers,
    /// The schema of the gateway's own tables.
    gateway_schema: String,
    /// Every connection opened so far (both logins) writes text as the
    /// wire front end's clients read it, so [`Cells::Text`](crate::Cells::Text) is served as
    /// asked; else, for good, such calls get values (set by the pools'
    /// `post_create`, `pool::writes_reported_formats`).
    text_cells: Arc<AtomicBool>,
}

fn config_error(message: impl Into<String>) -> Error {
    Error::InvalidStatement(EngineError::new(KIND, None, message))
}

impl PostgresDriver {
    /// Builds the pool and opens `min_idle` connections. Fails when the
    /// server cannot be reached, with the reason.
    pub async fn connect(name: impl Into<String>, config: PostgresConfig) -> Result<Self> {
        let base = || -> Result<tokio_postgres::Config> {
            let mut pg = tokio_postgres::Config::from_str(&config.url())
                .map_err(|e| config_error(format!("the postgres url is malformed: {e}")))?;
            pg.connect_timeout(config.pool.connect_timeout);
            pg.application_name("omnigate");
            Ok(pg)
        };
        let mut pg = base()?;
        if let Some(password) = &config.password {
            pg.password(password.expose());
        }
        let name = name.into();
        let text_cells = Arc::new(AtomicBool::new(true));
        let (pool, front) = build_pool(&name, pg, &config, &text_cells)?;
        let reader = match &config.read_only_user {
            Some(user) => {
                let mut login = base()?;
                login.user(user);
                if let Some(password) = &config.read_only_password {
                    login.password(password.expose());
                }
                Some(build_pool(&name, login, &config, &text_cells)?)
            }
            None => None,
        };
        let driver = PostgresDriver {
            descriptor: EngineDescriptor {
                name,
                kind: KIND,
                dialects: <Self as crate::EngineKind>::DIALECTS.to_vec(),
            },
            pool,
            front,
            reader,
            schema: Arc::default(),
            max_prepared: 0,
            markers: crate::sql::SqlMarkers::postgres(&config.gateway_schema),
            gateway_schema: config.gateway_schema.clone(),
            types: types_cache::StatementTypes::new(config.statement_cache_capacity),
            text_cells,
        };
        // Warm the pool: these connections are returned idle.
        let warm: Vec<Object> =
            futures::future::try_join_all((0..config.min_idle.max(1)).map(|_| driver.connection()))
                .await?;
        let mut driver = driver;
        driver.max_prepared = max_prepared_transactions(&warm[0]).await?;
        if driver.max_prepared == 0 {
            tracing::warn!(
                engine = %driver.descriptor.name,
                "PostgreSQL runs with max_prepared_transactions = 0: a cross-engine transaction \
                 in which this engine must prepare (beside SQLite, or another PostgreSQL engine) \
                 cannot commit; set max_prepared_transactions (e.g. to max_connections) in \
                 postgresql.conf and restart PostgreSQL. Transactions on this engine alone, or \
                 with Redis, work as they are"
            );
        }
        drop(warm);
        if let Some((pool, front)) = &driver.reader {
            // A wrong read_only_user fails the start, not a reader's call.
            let login = front.acquire(get(pool)).await?;
            drop(login);
        }
        Ok(driver)
    }

    /// Runs a statement on `client`, read-only in a transaction when asked.
    async fn run_on(
        &self,
        client: &mut Object,
        statement: &Statement,
        options: &ExecuteOptions,
        early: Option<types_cache::Early>,
    ) -> Result<ResultSet> {
        let pg = |e| error::from_pg(e, options.timeout);
        if options.read_only {
            let transaction = client.transaction().await.map_err(pg)?;
            transaction
                .batch_execute("SET TRANSACTION READ ONLY")
                .await
                .map_err(pg)?;
            let result = run::execute(&transaction, statement, options, early, &self.types).await?;
            transaction.commit().await.map_err(pg)?;
            return Ok(result);
        }
        run::execute(&*client, statement, options, early, &self.types).await
    }

    /// A pooled connection; fails fast while the server is known to be down.
    async fn connection(&self) -> Result<Object> {
        self.front.acquire(get(&self.pool)).await
    }

    /// A connection for a call: `read_only_user`'s when the caller is
    /// restricted to reading and the engine has one.
    async fn connection_for(&self, restricted: bool) -> Result<Object> {
        match &self.reader {
            Some((pool, front)) if restricted => front.acquire(get(pool)).await,
            _ => self.connection().await,
        }
    }
}

/// What PostgreSQL cannot take, refused before anything is sent:
///
/// - transaction control on a pooled connection (see
///   [`crate::sql::refuse_control_outside`]);
/// - `COPY` switches the connection into a sub-protocol that a statement
///   call cannot speak (the server's reply read as "unexpected message"
///   once made a healthy engine look down);
/// - more than 65,535 parameters: the protocol counts them in 16 bits, so
///   the server's description of them cannot be read (found by
///   `tests/tests/large.rs`: an INTERNAL error before).
fn refuse_unsendable(statement: &Statement) -> Result<()> {
    let keyword = crate::sql::first_keyword(&statement.text);
    crate::sql::refuse_control_outside(KIND, keyword)?;
    if keyword.eq_ignore_ascii_case("COPY") {
        return Err(Error::not_supported(
            "COPY (for bulk loads send INSERT statements with parameters in one \
             ExecuteBatch, or INSERT .. SELECT * FROM unnest($1, $2) with arrays; for large \
             reads use ExecuteStream)",
            KIND,
        ));
    }
    if statement.params.len() > usize::from(u16::MAX) {
        return Err(Error::InvalidStatement(EngineError::new(
            KIND,
            None,
            format!(
                "{} parameters: PostgreSQL takes at most 65535 per statement; pass \
                 many values as one array parameter (= ANY($1), unnest($1)), or split the statement",
                statement.params.len()
            ),
        )));
    }
    Ok(())
}

#[async_trait]
impl StorageDriver for PostgresDriver {
    fn descriptor(&self) -> &EngineDescriptor {
        &self.descriptor
    }

    /// `execute` ends by its deadline on its own: one timer from the call's
    /// start bounds the wait for a connection and the query, then cancels
    /// the query on the server and waits at most `deadline::STOP_MARGIN` (the
    /// gateway's backstop margin, one second) more for it to stop.
    fn bounds_execute(&self) -> bool {
        true
    }

    async fn describe_statement(
        &self,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<crate::StatementShape> {
        self.descriptor.accept(dialect, statement)?;
        refuse_unsendable(statement)?;
        let get = self.connection_for(options.restricted);
        lease::leased(options.timeout, get, false, async |client: &mut Object| {
            let prepared = client
                .prepare_bounded(&statement.text)
                .await
                .map_err(|e| error::from_pg(e, options.timeout))?;
            Ok(prepared::shape(&prepared))
        })
        .await
    }

    async fn execute(
        &self,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<ResultSet> {
        self.descriptor.accept(dialect, statement)?;
        // A read-only caller's lift is refused as such first (its grant
        // names it), before what no caller may send.
        if options.read_only {
            session::refuse_lifting_read_only(&statement.text)?;
        }
        refuse_unsendable(statement)?;
        // Parameters of a known statement are checked before a connection is taken.
        let early = self.types.encode_early(statement)?;
        let reset = session::changes_session(&statement.text);
        // A statement that may change the session (set_config) may change
        // how its own cells are written: the gateway writes them.
        let options = &*text_cells::served(options, self.text_cells.load(Relaxed) && !reset);
        // One timer for the whole call, from its start: the connection, the
        // query, its cancel and the reset (see `bounds_execute`).
        let get = self.connection_for(options.restricted);
        lease::leased(options.timeout, get, reset, async |client: &mut Object| {
            let result = match self.run_on(client, statement, options, early).await {
                // A table changed under this connection's cached plan, or
                // under the parameter types it was prepared with (refused
                // as planned: nothing ran): forget the plans (and others'
                // descriptions) and run once more.
                Err(e)
                    if stale::is_stale_plan(&e)
                        || (stale::may_be_stale(&e)
                            && stale::params_changed(client, &self.types, &statement.text)
                                .await) =>
                {
                    client.statement_cache.clear();
                    self.schema.bump();
                    self.run_on(client, statement, options, None).await
                }
                other => other,
            };
            // A schema change that failed changed nothing.
            if result.is_ok() && self.schema.note(dialect, &statement.text) {
                stale::forget_all(Some(client), &self.types);
            }
            result
        })
        .await
    }

    async fn execute_stream(
        &self,
        dialect: Dialect,
        statement: Statement,
        options: ExecuteOptions,
    ) -> Result<RowStream> {
        self.descriptor.accept(dialect, &statement)?;
        if options.read_only {
            session::refuse_lifting_read_only(&statement.text)?;
        }
        refuse_unsendable(&statement)?;
        // The stream's lease arms its own timer once the connection is had.
        let get = self.connection_for(options.restricted);
        let client = crate::deadline::within(options.timeout, get).await?;
        let changes = crate::SchemaEpoch::changes(dialect, &statement.text);
        let stream = run::stream(client, statement, options).await;
        if changes {
            self.schema.bump();
        }
        stream
    }

    async fn begin(&self, options: &BeginOptions) -> Result<Box<dyn DriverTransaction>> {
        let client = self.connection_for(options.restricted).await?;
        let tx = transaction::PostgresTransaction::begin(
            self.descriptor.clone(),
            options.clone(),
            self.types.clone(),
            Arc::clone(&self.schema),
            self.text_cells.load(Relaxed),
            client,
        )
        .await?;
        Ok(Box::new(tx))
    }

    async fn prepared_ids(
        &self,
        prefix: &str,
        older_than: std::time::Duration,
    ) -> Result<Vec<String>> {
        let client = self.connection().await?;
        let rows = client
            .query(
                "SELECT gid FROM pg_prepared_xacts \
                 WHERE database = current_database() AND starts_with(gid, $1) \
                 AND prepared <= now() - make_interval(secs => $2) ORDER BY prepared",
                &[&prefix, &older_than.as_secs_f64()],
            )
            .await
            .map_err(|e| error::from_pg(e, None))?;
        Ok(rows.iter().map(|row| row.get::<_, String>(0)).collect())
    }

    async fn finish_prepared(&self, global_id: &str, commit: bool) -> Result<bool> {
        let client = self.connection().await?;
        let found = client
            .query_opt(
                "SELECT 1 FROM pg_prepared_xacts WHERE gid = $1 AND database = current_database()",
                &[&global_id],
            )
            .await
            .map_err(|e| error::from_pg(e, None))?;
        if found.is_none() {
            return Ok(false);
        }
        let verb = if commit { "COMMIT" } else { "ROLLBACK" };
        let command = format!("{verb} PREPARED '{}'", global_id.replace('\'', "''"));
        match client.batch_execute(&command).await {
            Ok(()) => {
                // It may have changed the schema (its transaction's object,
                // which would have said so, is gone).
                self.schema.bump();
                Ok(true)
            }
            // Finished by someone else meanwhile.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_OBJECT) => {
                Ok(false)
            }
            Err(e) => Err(error::from_pg(e, None)),
        }
    }

    async fn describe(&self, options: &DescribeOptions) -> Result<Vec<SchemaObject>> {
        let client = self.connection().await?;
        describe::describe(&client, options.name.as_deref(), &self.gateway_schema).await
    }

    async fn durability(&self) -> Option<String> {
        let client = self.connection().await.ok()?;
        let row = client
            .query_one(
                "SELECT current_setting('synchronous_commit'), current_setting('fsync')",
                &[],
            )
            .await
            .ok()?;
        let (synchronous_commit, fsync): (String, String) = (row.get(0), row.get(1));
        if synchronous_commit == "off" {
            return Some(
                "PostgreSQL runs with synchronous_commit = off: a crash loses the last commits \
                 it acknowledged, a cross-engine transaction's deciding commit among them; set \
                 synchronous_commit = on for the gateway's role or database"
                    .into(),
            );
        }
        (fsync == "off").then(|| {
            "PostgreSQL runs with fsync = off: a crash of the machine can lose or corrupt what \
             it acknowledged; turn fsync on"
                .into()
        })
    }

    async fn health(&self) -> Health {
        self.front
            .probe(async {
                let client = self.front.checkout(get(&self.pool)).await?;
                client
                    .simple_query("SELECT 1")
                    .await
                    .map_err(|e| error::from_pg(e, None))?;
                Ok(())
            })
            .await
    }

    fn pool_stats(&self) -> PoolStats {
        self.front.metrics().stats(self.pool.status())
    }

    fn counters(&self) -> Vec<(String, u64)> {
        vec![
            (
                "connect_failures".into(),
                u64::from(self.front.connect_failures()),
            ),
            ("statements_known".into(), self.types.len()),
            ("max_prepared_transactions".into(), self.max_prepared),
        ]
    }

    fn schema_epoch(&self) -> u64 {
        self.schema.get()
    }

    fn decision_markers(&self) -> Option<&dyn crate::DecisionMarkers> {
        Some(&self.markers)
    }

    fn gateway_schema(&self) -> Option<&str> {
        Some(&self.gateway_schema)
    }

    fn gateway_state_named(&self, dialect: Dialect, statement: &Statement) -> Option<String> {
        debug_assert_eq!(dialect, Dialect::Sql);
        crate::reserved::sql_names(&statement.text, Some(&self.gateway_schema))
    }
}

crate::kind::engine_kind!(
    PostgresDriver,
    PostgresConfig,
    [Sql],
    PostgresDriver::connect
);
