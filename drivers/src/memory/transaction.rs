//! Transactions on the memory engine, buffered as Redis' MULTI/EXEC:
//! writes are checked when sent (the command exists, its arity, read-only)
//! and queued; reads run at once against committed state; commit applies
//! the queue under one hold of the keyspace, so no other command sees half
//! of it. As in Redis, a command that fails when applied (WRONGTYPE) does
//! not undo the others: the commit reports the first such failure.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;

use super::commands::{Command, Ctx};
use super::{KIND, Shared, check_redis, on_blocking_pool, reply_set};
use crate::deadline::Deadline;
use crate::{
    BeginOptions, Dialect, DriverTransaction, EngineDescriptor, Error, ExecuteOptions,
    Participation, Result, ResultSet, Statement, Value,
};

/// A memory-engine transaction (see the module docs).
#[derive(Debug)]
pub(super) struct MemoryTransaction {
    pub(super) shared: Arc<Shared>,
    pub(super) descriptor: EngineDescriptor,
    pub(super) options: BeginOptions,
    /// Checked writes, in the order sent.
    pub(super) queued: Vec<(&'static Command, Vec<Bytes>)>,
}

#[async_trait]
impl DriverTransaction for MemoryTransaction {
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
        if dialect != Dialect::Redis {
            return Err(Error::not_supported(
                format!("the {dialect} dialect in a transaction"),
                KIND,
            ));
        }
        let options = self.options.apply(options);
        let (command, args) = check_redis(statement, &options)?;
        if command.writes {
            self.queued.push((command, args));
            return Ok(reply_set(Value::String("QUEUED".into())));
        }
        // A read sees committed state, as inside MULTI.
        let shared = Arc::clone(&self.shared);
        let statement = statement.clone();
        on_blocking_pool(move || shared.run(dialect, &statement, &options)).await
    }

    fn redo(&self) -> Vec<Statement> {
        self.queued
            .iter()
            .map(|(_, args)| Statement::from_args(args))
            .collect()
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        let MemoryTransaction { shared, queued, .. } = *self;
        on_blocking_pool(move || {
            let mut keyspace = shared.lock();
            let deadline = Deadline::none();
            let mut ctx = Ctx {
                ks: &mut keyspace,
                now: Instant::now(),
                deadline: &deadline,
            };
            let mut first_failure = None;
            for (command, args) in &queued {
                if let Err(e) = command.run(&mut ctx, args) {
                    first_failure.get_or_insert(Error::from(e));
                }
            }
            first_failure.map_or(Ok(()), Err)
        })
        .await
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        Ok(()) // nothing was applied
    }

    fn engine(&self) -> &'static str {
        KIND
    }
}
