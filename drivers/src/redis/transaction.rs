//! Transactions on Redis, buffered as `MULTI`/`EXEC`: a write is checked
//! when sent — the command exists, its arity, it may run inside MULTI, it
//! is allowed on a shared connection, the transaction is not read-only —
//! by the server's own `COMMAND INFO`, and kept; a read runs at once and
//! sees committed state, as inside MULTI. Commit sends the writes as one
//! `MULTI`..`EXEC` pipeline. As in Redis, a command that fails when applied
//! (`WRONGTYPE`) does not undo the others: commit then reports it.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::apply::{Applied, Checked, apply, apply_on, check_on, replay, unwatch};
use super::commands::{check_allowed, is_blocking};
use super::info::Commands;
use super::reply::to_value_with;
use super::{KIND, query};
use crate::redis_syntax::parse_command;
use crate::resp::RedisPool;
use crate::{
    BeginOptions, Dialect, DriverTransaction, EngineDescriptor, Error, ExecuteOptions,
    Participation, Redo, Result, ResultSet, Statement, Value,
};

/// A Redis transaction (see the module docs).
#[derive(Debug)]
pub(super) struct RedisTransaction {
    descriptor: EngineDescriptor,
    options: BeginOptions,
    pool: Arc<RedisPool>,
    commands: Commands,
    /// Checked writes, in the order sent.
    queued: Vec<Vec<Bytes>>,
    /// The marker applied with the writes, once prepared.
    marker: Option<String>,
    /// From the check at prepare to `EXEC`: a connection of its own on
    /// which the marker and the checked keys are watched.
    watching: Option<::redis::aio::MultiplexedConnection>,
}

impl RedisTransaction {
    pub(super) fn new(
        descriptor: EngineDescriptor,
        options: BeginOptions,
        pool: Arc<RedisPool>,
        commands: Commands,
    ) -> Self {
        RedisTransaction {
            descriptor,
            options,
            pool,
            commands,
            queued: Vec::new(),
            marker: None,
            watching: None,
        }
    }
}

#[async_trait]
impl DriverTransaction for RedisTransaction {
    fn participation(&self) -> Participation {
        Participation::Buffered
    }

    async fn execute(
        &mut self,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<ResultSet> {
        self.descriptor.accept(dialect, statement)?;
        let args = parse_command(&statement.text, &statement.params, KIND)?;
        check_allowed(&args)?;
        let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
        if is_blocking(&args) {
            return Err(Error::precondition(
                KIND,
                format!("{name} blocks, which a transaction cannot wait for"),
            ));
        }
        let mut conn = self.pool.connection().await?;
        if self.options.read_only || options.read_only {
            // Only what Redis flags read-only (a script's flags say nothing
            // of what it does), before anything runs.
            let refused = self
                .commands
                .refuse_unless_read_only(&mut conn.conn, &args, "transaction")
                .await;
            conn.noting(refused)?;
        }
        let info = self.commands.info(&mut conn.conn, &name).await;
        let info = conn.noting(info)?;
        info.check_call(&name, args.len())?;
        // Only what Redis flags `readonly` (a container's subcommand by its
        // own entry: `XGROUP CREATE` is not, though `XGROUP` carries no
        // `write` flag) runs at once, seeing committed state as inside
        // MULTI. Everything else is kept and applied at commit with the
        // writes: a script (EVAL has no `write` flag whatever it does),
        // `PUBLISH`, `FUNCTION LOAD`, never run at once outside the
        // transaction.
        let full = crate::redis_commands::full_name(&args).unwrap_or_default();
        let reads_only = matches!(full.as_str(), "ping" | "echo")
            || if full.contains('|') {
                let info = self.commands.info(&mut conn.conn, &full).await;
                conn.noting(info)?.readonly
            } else {
                info.readonly
            };
        if reads_only {
            // A read sees committed state, as inside MULTI.
            let command = super::to_cmd(&args);
            let value = query(&mut conn, &command, options.timeout).await?;
            return crate::ResultLimits::new(options)
                .check(ResultSet::reply(to_value_with(value, options.raw_bytes)?));
        }
        if info.no_multi {
            return Err(Error::precondition(
                KIND,
                format!("{name} cannot run inside a transaction"),
            ));
        }
        if self.options.read_only || options.read_only {
            return Err(Error::read_only(
                KIND,
                format!("{name} writes, but the transaction is read_only"),
            ));
        }
        self.queued.push(args);
        Ok(ResultSet::queued())
    }

    /// The vote before a cross-engine commit is decided: the keys' types
    /// (and, for `INCR`-family writes, whether their strings are integers)
    /// are read now and every queued write is checked against them and
    /// against what the transaction's own earlier writes leave, so a write
    /// that would fail inside EXEC rolls the whole transaction back instead.
    /// The keys read and the marker stay watched until `EXEC`, on a
    /// connection of the transaction's own: a concurrent change between
    /// this check and `EXEC` aborts the `EXEC` whole, and commit checks and
    /// applies again (see [`replay`]), so no write fails half-applied.
    async fn prepare(&mut self, global_id: &str) -> Result<()> {
        self.marker = Some(global_id.to_owned());
        let mut conn = self.pool.watcher().await?;
        let mut checked = check_on(&mut conn, global_id, &self.queued, true).await;
        if let Err(Error::Unavailable(_)) = checked {
            // A kept connection the server closed (a restart, its idle
            // timeout): once more on a fresh one.
            conn = self.pool.dedicated().await?;
            checked = check_on(&mut conn, global_id, &self.queued, true).await;
        }
        match checked? {
            Checked::Clean => {
                self.watching = Some(conn);
                Ok(())
            }
            Checked::Conflict(why) => {
                unwatch(&self.pool, conn).await;
                Err(Error::precondition(KIND, why))
            }
            // Not decided yet, so nothing applied it: held only by a marker
            // left from an earlier attempt with this id. Applying again is
            // what the marker exists to stop: refuse.
            Checked::Applied => {
                unwatch(&self.pool, conn).await;
                Err(Error::precondition(
                    KIND,
                    format!("transaction {global_id} is already applied on this engine"),
                ))
            }
        }
    }

    fn redo(&self) -> Vec<Redo> {
        self.queued.clone()
    }

    fn has_redo(&self) -> bool {
        !self.queued.is_empty()
    }

    fn redo_head(&self) -> Option<Redo> {
        self.queued.first().cloned()
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.commit_replies().await.map(drop)
    }

    /// Applies the writes in one `MULTI`..`EXEC`. Prepared for a
    /// cross-engine commit, the apply is guarded as a replay is (the marker
    /// watched from its check to `EXEC`), so a replica's recovery replaying
    /// the same transaction at the same moment cannot apply it twice.
    async fn commit_replies(self: Box<Self>) -> Result<Vec<Value>> {
        let RedisTransaction {
            pool,
            queued,
            marker,
            watching,
            ..
        } = *self;
        match (marker.as_deref(), watching) {
            (Some(tx), Some(mut conn)) => match apply_on(&mut conn, &queued, Some(tx)).await? {
                Applied::Yes(replies) => {
                    pool.give_back_watcher(conn);
                    Ok(replies)
                }
                // A watched key changed since the check (or a replay set
                // the marker): nothing was applied; check and apply again.
                Applied::WatchLost => {
                    pool.give_back_watcher(conn);
                    replay(&pool, tx, &queued).await
                }
            },
            (Some(tx), None) => replay(&pool, tx, &queued).await,
            (None, _) => apply(&pool, &queued, None).await,
        }
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        if let Some(conn) = self.watching {
            unwatch(&self.pool, conn).await;
        }
        Ok(())
    }

    fn engine(&self) -> &'static str {
        KIND
    }
}
