//! The `StorageDriver` trait: one small object-safe async trait every
//! engine implements, and the convenience calls written once over it.
//! The types it speaks live beside it (`statement.rs`, `options.rs`,
//! `result.rs`, `engine.rs`, `transaction.rs`).

use std::fmt;

use std::time::Duration;

use async_trait::async_trait;

use crate::{
    BeginOptions, DescribeOptions, Dialect, DriverTransaction, EngineDescriptor, ExecuteOptions,
    Health, PoolStats, Result, ResultSet, RowStream, SchemaObject, Statement, Value,
};

/// One storage engine behind one small object-safe trait.
///
/// Required: [`execute`](StorageDriver::execute), [`describe`](StorageDriver::describe),
/// [`health`](StorageDriver::health). [`execute_stream`](StorageDriver::execute_stream)
/// has a default that batches a whole result; engines that can stream from
/// the server override it. Anything an engine cannot do returns
/// [`Error::NotSupported`](crate::Error::NotSupported).
#[async_trait]
pub trait StorageDriver: Send + Sync + fmt::Debug + 'static {
    /// The engine's name, kind and dialects.
    fn descriptor(&self) -> &EngineDescriptor;

    /// Runs one statement in `dialect` and returns its whole result.
    async fn execute(
        &self,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<ResultSet>;

    /// Whether [`execute`](Self::execute) ends by `options.timeout` on its
    /// own, whatever it waits on (a connection, the engine, metadata), so
    /// that a caller need not bound it a second time (the gateway then
    /// sets one timer per call instead of two). A driver may take up to
    /// the gateway's backstop margin (one second) past the timeout to stop
    /// the engine's work (PostgreSQL waits that long for a cancelled query
    /// to stop). `false` unless the driver guarantees it.
    fn bounds_execute(&self) -> bool {
        false
    }

    /// Runs one statement and returns its rows in batches.
    async fn execute_stream(
        &self,
        dialect: Dialect,
        statement: Statement,
        options: ExecuteOptions,
    ) -> Result<RowStream> {
        let execute = options.without_limits();
        let result = self.execute(dialect, &statement, &execute).await?;
        Ok(RowStream::from_result(result, options.batch_size()))
    }

    /// Runs several statements, each with its own result or error: one that
    /// fails does not stop the others. Engines that can (Redis) send them
    /// in one round trip; the default runs them one by one. The outer error
    /// is for the batch as a whole (e.g. the engine is down).
    async fn execute_batch(
        &self,
        dialect: Dialect,
        statements: &[Statement],
        options: &ExecuteOptions,
    ) -> Result<Vec<Result<ResultSet>>> {
        let mut results = Vec::with_capacity(statements.len());
        for statement in statements {
            results.push(self.execute(dialect, statement, options).await);
        }
        Ok(results)
    }

    /// Begins a transaction on this engine: a session that runs statements,
    /// then commits or rolls back (see [`DriverTransaction`]). Engines
    /// without transactions say `NotSupported`.
    async fn begin(&self, options: &BeginOptions) -> Result<Box<dyn DriverTransaction>> {
        let _ = options;
        Err(crate::Error::not_supported(
            "transactions",
            self.descriptor().kind,
        ))
    }

    /// The global ids of this engine's prepared transactions that start
    /// with `prefix` and were prepared at least `older_than` ago (what a
    /// crashed coordinator may have left), for recovery. Engines without a
    /// prepare step have none.
    async fn prepared_ids(&self, prefix: &str, older_than: Duration) -> Result<Vec<String>> {
        let _ = (prefix, older_than);
        Ok(Vec::new())
    }

    /// Commits (`commit`) or rolls back a prepared transaction by its
    /// global id, from any session; `false` when there is none of that id.
    async fn finish_prepared(&self, global_id: &str, commit: bool) -> Result<bool> {
        let _ = (global_id, commit);
        Err(crate::Error::not_supported(
            "prepared transactions",
            self.descriptor().kind,
        ))
    }

    /// How this engine keeps the markers of the cross-engine transactions
    /// it decides (see [`DecisionMarkers`]), or `None` (the default) when
    /// it cannot be a deciding engine.
    ///
    /// [`DecisionMarkers`]: crate::DecisionMarkers
    fn decision_markers(&self) -> Option<&dyn crate::DecisionMarkers> {
        None
    }

    /// The schema the gateway keeps its own tables in on this engine (a
    /// PostgreSQL engine's `gateway_schema`), or `None` (the default).
    fn gateway_schema(&self) -> Option<&str> {
        None
    }

    /// What of the gateway's own state on this engine (markers, the
    /// transaction log; see [`crate::reserved`]) a caller's `statement` in
    /// `dialect` names, said for an error message, or `None` (the
    /// default). The pipeline refuses such a statement before it runs;
    /// the gateway's own statements never pass through that check.
    fn gateway_state_named(&self, _dialect: Dialect, _statement: &Statement) -> Option<String> {
        None
    }

    /// Lets go of transaction `marker`'s marker: the transaction has
    /// finished on every engine. It is kept for [`MARKER_GRACE`] more (a
    /// replica's replay begun before the finish still finds it), then
    /// removed. `redo_head` is the transaction's first redo entry on this
    /// engine (FalkorDB: it names the graph). Engines without markers do
    /// nothing.
    ///
    /// [`MARKER_GRACE`]: crate::MARKER_GRACE
    async fn forget_marker(&self, marker: &str, redo_head: Option<&crate::Redo>) -> Result<()> {
        let _ = (marker, redo_head);
        Ok(())
    }

    /// [`forget_marker`](Self::forget_marker) of several markers, each with
    /// its redo head: one round trip where the engine can. The first
    /// failure is returned; the others are still tried.
    async fn forget_markers(&self, markers: &[(String, Option<crate::Redo>)]) -> Result<()> {
        let mut outcome = Ok(());
        for (marker, head) in markers {
            if let Err(e) = self.forget_marker(marker, head.as_ref()).await
                && outcome.is_ok()
            {
                outcome = Err(e);
            }
        }
        outcome
    }

    /// What `statement` takes and returns, as the engine prepares it,
    /// without running it. Engines that cannot say `NotSupported`.
    async fn describe_statement(
        &self,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<crate::StatementShape> {
        let _ = (dialect, statement, options);
        Err(crate::Error::not_supported(
            "describing statements",
            self.descriptor().kind,
        ))
    }

    /// Applies a buffered transaction's writes (its [`redo`]) again after a
    /// crash, together with its marker in one atomic step, unless the
    /// marker shows they were applied already. Engines that do not buffer
    /// say `NotSupported`.
    ///
    /// [`redo`]: crate::DriverTransaction::redo
    async fn replay(&self, marker: &str, redo: &[crate::Redo]) -> Result<()> {
        let _ = (marker, redo);
        Err(crate::Error::not_supported(
            "replaying transactions",
            self.descriptor().kind,
        ))
    }

    /// Describes the engine's schema objects.
    async fn describe(&self, options: &DescribeOptions) -> Result<Vec<SchemaObject>>;

    /// What the engine's server would lose of what it acknowledged, by its
    /// own settings (Redis without an append-only file, PostgreSQL with
    /// `synchronous_commit = off`): a warning for operators, said once at
    /// startup, or `None` when its settings keep what it acknowledges (or
    /// cannot be read).
    async fn durability(&self) -> Option<String> {
        None
    }

    /// Checks that the engine answers now.
    async fn health(&self) -> Health;

    /// The pool's statistics now.
    fn pool_stats(&self) -> PoolStats {
        PoolStats::default()
    }

    /// Engine-specific counters, e.g. `("keys", 12)`.
    fn counters(&self) -> Vec<(String, u64)> {
        Vec::new()
    }

    /// Statements that changed the schema so far (see [`SchemaEpoch`]):
    /// cached schema metadata of an older epoch is stale. Engines without
    /// a schema stay at 0.
    ///
    /// [`SchemaEpoch`]: crate::SchemaEpoch
    fn schema_epoch(&self) -> u64 {
        0
    }
}

/// Convenience calls on every driver, written once.
#[async_trait]
pub trait StorageDriverExt: StorageDriver {
    /// Runs a statement with default options.
    async fn run(&self, dialect: Dialect, statement: Statement) -> Result<ResultSet> {
        self.execute(dialect, &statement, &ExecuteOptions::default())
            .await
    }

    /// Runs a statement and returns the first column of the first row
    /// (`Value::Null` when there is none).
    async fn query_scalar(&self, dialect: Dialect, statement: Statement) -> Result<Value> {
        Ok(self.run(dialect, statement).await?.into_scalar())
    }
}

impl<T: StorageDriver + ?Sized> StorageDriverExt for T {}
