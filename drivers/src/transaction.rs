//! The driver side of transactions: [`StorageDriver::begin`](crate::StorageDriver::begin)
//! returns a session, in the manner of object_store's `MultipartUpload`,
//! so the main trait stays small. The cross-engine coordinator (log,
//! commit protocol, recovery) sits above this in the gateway.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Dialect, Error, ExecuteOptions, Result, ResultSet, Statement, Value};

/// One buffered write as its engine's own arguments, for a coordinator's
/// log and a replay after a crash (Redis: the command and its arguments;
/// FalkorDB: the graph and the query, parameters inlined;
/// VictoriaMetrics: samples with their times).
pub type Redo = Vec<Bytes>;

/// How long a buffered engine keeps the marker of a transaction once it
/// has finished on every engine (see [`StorageDriver::forget_marker`]):
/// long past any replay a replica's recovery could still have under way.
/// Until then a marker has no expiry, so `volatile-*` eviction never takes
/// it while a replay may still need it.
///
/// [`StorageDriver::forget_marker`]: crate::StorageDriver::forget_marker
pub const MARKER_GRACE: Duration = Duration::from_secs(3600);

/// The key (Redis, memory) or node id (FalkorDB) of the marker a buffered
/// engine writes with a transaction's writes.
pub fn marker_key(tx: &str) -> String {
    format!("{}{tx}", crate::reserved::MARKER_KEY_PREFIX)
}

/// How a transaction is begun on one engine.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BeginOptions {
    /// Refuse writes for the whole transaction.
    pub read_only: bool,
    /// The caller may never write (see [`ExecuteOptions::restricted`]):
    /// the transaction runs under the engine's read-only login, if it has
    /// one. Set with `read_only`.
    pub restricted: bool,
    /// How long the engine may keep the transaction open (`None`: its
    /// default).
    pub timeout: Option<Duration>,
}

impl BeginOptions {
    /// A statement's options inside the transaction: read-only when either
    /// the transaction or the statement is.
    pub fn apply(&self, options: &ExecuteOptions) -> ExecuteOptions {
        ExecuteOptions {
            read_only: options.read_only || self.read_only,
            restricted: options.restricted || self.restricted,
            ..options.clone()
        }
    }
}

/// How an engine takes part in a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Participation {
    /// Statements run now on a connection pinned to the transaction, and
    /// reads see its own writes. `preparable` engines can
    /// [`prepare`](DriverTransaction::prepare) (PostgreSQL's `PREPARE
    /// TRANSACTION`); others commit in one step (SQLite, Neo4j).
    Live {
        /// Whether the engine has a prepare step.
        preparable: bool,
    },
    /// Writes are checked when sent and kept, then applied at commit in
    /// one atomic step; reads see committed state (as with Redis' MULTI).
    Buffered,
}

/// One engine's part of a transaction. Dropping it uncommitted rolls it
/// back.
#[async_trait]
pub trait DriverTransaction: Send + fmt::Debug {
    /// How this engine takes part.
    fn participation(&self) -> Participation;

    /// Runs (live) or checks and keeps (buffered) one statement.
    async fn execute(
        &mut self,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<ResultSet>;

    /// Runs one statement and returns its rows in batches as they come,
    /// with the memory bound a stream outside a transaction has. The
    /// default runs it whole (engines whose results are small, or that
    /// buffer).
    async fn execute_stream(
        &mut self,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<crate::RowStream> {
        let result = self.execute(dialect, statement, options).await?;
        Ok(crate::RowStream::from_result(result, options.batch_size()))
    }

    /// What `statement` takes and returns, as the transaction sees it (a
    /// table it created is there), without running it. Engines that
    /// cannot say so on the transaction's own connection answer
    /// `NotSupported`; the caller then asks the engine outside it.
    async fn describe_statement(
        &mut self,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<crate::StatementShape> {
        let _ = (dialect, statement, options);
        Err(Error::not_supported(
            "describing a statement inside a transaction",
            self.engine(),
        ))
    }

    /// The first phase of a two-phase commit. Preparable live engines
    /// prepare under `global_id` (PostgreSQL's `PREPARE TRANSACTION`).
    /// Buffered engines vote (check what would fail when applied) and from
    /// then on apply their writes together with a marker named by
    /// `global_id`, so that [`StorageDriver::replay`] can tell they were
    /// applied. Others say `NotSupported`.
    ///
    /// [`StorageDriver::replay`]: crate::StorageDriver::replay
    async fn prepare(&mut self, global_id: &str) -> Result<()> {
        let _ = global_id;
        Err(Error::not_supported("PREPARE TRANSACTION", self.engine()))
    }

    /// A buffered session's writes, for a coordinator to log before it
    /// commits; live sessions have none.
    fn redo(&self) -> Vec<Redo> {
        Vec::new()
    }

    /// Whether it keeps writes for the commit ([`redo`] is not empty),
    /// without copying them.
    ///
    /// [`redo`]: DriverTransaction::redo
    fn has_redo(&self) -> bool {
        !self.redo().is_empty()
    }

    /// The first of [`redo`], without copying the others.
    ///
    /// [`redo`]: DriverTransaction::redo
    fn redo_head(&self) -> Option<Redo> {
        self.redo().into_iter().next()
    }

    /// Makes the transaction's writes durable and visible.
    async fn commit(self: Box<Self>) -> Result<()>;

    /// [`commit`], returning a buffered engine's replies to its writes as
    /// it applied them, in the order they were sent (an `INCR`'s new
    /// value, a `SET`'s `OK`; bulk strings as bytes), where
    /// [`ResultSet::queued`] stood in for each. Empty for a live engine,
    /// and where the replies are not known: the writes were applied
    /// already (a replay found the marker).
    ///
    /// [`commit`]: DriverTransaction::commit
    /// [`ResultSet::queued`]: crate::ResultSet::queued
    async fn commit_replies(self: Box<Self>) -> Result<Vec<Value>> {
        self.commit().await.map(|()| Vec::new())
    }

    /// Runs `statement` in the transaction and commits it, in as few round
    /// trips as the engine allows: a cross-engine commit's decision (its
    /// marker, then COMMIT). Here: the statement, then [`commit`]; an
    /// engine that can pipeline them sends both at once.
    ///
    /// [`commit`]: DriverTransaction::commit
    async fn commit_with(
        mut self: Box<Self>,
        dialect: Dialect,
        statement: &Statement,
    ) -> std::result::Result<(), Undecided> {
        if let Err(e) = self
            .execute(dialect, statement, &ExecuteOptions::default())
            .await
        {
            // COMMIT was not sent: nothing is decided.
            let _ = self.rollback().await;
            return Err(Undecided::No(e));
        }
        self.commit().await.map_err(Undecided::of_commit)
    }

    /// Discards the transaction's writes.
    async fn rollback(self: Box<Self>) -> Result<()>;

    /// The engine kind, for errors.
    fn engine(&self) -> &'static str;
}

/// How [`DriverTransaction::commit_with`] failed.
#[derive(Debug)]
pub enum Undecided {
    /// It did not commit: the statement or the commit was refused, and
    /// the transaction is rolled back.
    No(Error),
    /// It may have committed: the link broke around the commit, and only
    /// the engine knows.
    Unknown(Error),
}

impl Undecided {
    /// A failed COMMIT: refused (it did not happen), or unknown.
    pub fn of_commit(e: Error) -> Undecided {
        match e {
            Error::Conflict(_) | Error::Precondition(_) | Error::ConstraintViolation(_) => {
                Undecided::No(e)
            }
            other => Undecided::Unknown(other),
        }
    }
}
