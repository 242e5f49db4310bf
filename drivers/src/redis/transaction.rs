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

use super::commands::{check_allowed, is_blocking};
use super::info::Commands;
use super::reply::{from_redis, to_value_with};
use super::{KIND, query};
use crate::redis_syntax::parse_command;
use crate::resp::RedisPool;
use crate::{
    BeginOptions, Column, Dialect, DriverTransaction, EngineDescriptor, EngineError, Error,
    ExecuteOptions, MARKER_TTL, Participation, Redo, Result, ResultSet, Statement, Value,
    marker_key,
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
        }
    }
}

fn reply(value: Value) -> ResultSet {
    ResultSet {
        columns: vec![Column::new("reply", "")],
        rows: vec![vec![value]],
        rows_affected: 0,
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
        let name = String::from_utf8_lossy(&args[0]).to_uppercase();
        if is_blocking(&args) {
            return Err(Error::precondition(
                KIND,
                format!("{name} blocks, which a transaction cannot wait for"),
            ));
        }
        let mut conn = self.pool.connection().await?;
        let info = self.commands.info(&mut conn.conn, &name).await?;
        info.check_call(&name, args.len())?;
        if !info.writes {
            // A read sees committed state, as inside MULTI.
            let mut command = ::redis::cmd(&name);
            for arg in &args[1..] {
                command.arg(arg.as_ref());
            }
            let value = query(&mut conn, &command, options.timeout).await?;
            return Ok(reply(to_value_with(value, options.raw_bytes)?));
        }
        if info.no_multi {
            return Err(Error::precondition(
                KIND,
                format!("{name} cannot run inside a transaction"),
            ));
        }
        if self.options.read_only || options.read_only {
            return Err(Error::precondition(
                KIND,
                format!("{name} writes, but the transaction is read_only"),
            ));
        }
        self.queued.push(args);
        Ok(reply(Value::String("QUEUED".into())))
    }

    /// The vote before a cross-engine commit is decided: the keys' types
    /// are read now and every queued write is checked against them (and
    /// against the types the transaction's own earlier writes give), so a
    /// write that would fail with WRONGTYPE inside EXEC rolls the whole
    /// transaction back instead. A concurrent change between this check
    /// and EXEC can still make one fail (the window the README documents).
    async fn prepare(&mut self, global_id: &str) -> Result<()> {
        self.marker = Some(global_id.to_owned());
        let mut keys: Vec<Bytes> = Vec::new();
        for args in &self.queued {
            let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
            keys.extend(super::types::keys_of(&name, args).into_iter().cloned());
        }
        keys.sort();
        keys.dedup();
        if keys.is_empty() {
            return Ok(());
        }
        let mut pipe = ::redis::pipe();
        for key in &keys {
            pipe.cmd("TYPE").arg(key.as_ref());
        }
        let mut conn = self.pool.connection().await?;
        let held: Vec<String> = pipe.query_async(&mut conn.conn).await.map_err(from_redis)?;
        let types = keys.into_iter().zip(held).collect();
        super::types::first_conflict(&self.queued, types).map_err(|(index, key, held, needed)| {
            Error::precondition(
                KIND,
                format!(
                    "write {} of the transaction would fail with WRONGTYPE: key {} holds a {held}, \
                 the command needs a {needed}",
                    index + 1,
                    String::from_utf8_lossy(&key)
                ),
            )
        })
    }

    fn redo(&self) -> Vec<Redo> {
        self.queued.clone()
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        apply(&self.pool, &self.queued, self.marker.as_deref()).await
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        Ok(())
    }

    fn engine(&self) -> &'static str {
        KIND
    }
}

/// Applies `writes` in one `MULTI`..`EXEC`, with `marker`'s key when given.
/// As in Redis, a write that fails when applied (`WRONGTYPE`) does not undo
/// the others: that is reported as a precondition failure.
pub(super) async fn apply(pool: &RedisPool, writes: &[Redo], marker: Option<&str>) -> Result<()> {
    if writes.is_empty() && marker.is_none() {
        return Ok(());
    }
    let mut conn = pool.connection().await?;
    apply_on(&mut conn.conn, writes, marker).await
}

/// [`apply`] on a connection (one a `WATCH` was sent on).
async fn apply_on(
    conn: &mut impl ::redis::aio::ConnectionLike,
    writes: &[Redo],
    marker: Option<&str>,
) -> Result<()> {
    let mut pipe = ::redis::pipe();
    pipe.atomic().ignore_errors();
    for args in writes {
        let command = pipe.cmd(&String::from_utf8_lossy(&args[0]));
        for arg in &args[1..] {
            command.arg(arg.as_ref());
        }
    }
    if let Some(tx) = marker {
        pipe.cmd("SET")
            .arg(marker_key(tx))
            .arg(1)
            .arg("EX")
            .arg(MARKER_TTL.as_secs())
            .ignore();
    }
    let replies: ::redis::Value = pipe.query_async(conn).await.map_err(from_redis)?;
    if replies == ::redis::Value::Nil {
        // EXEC aborted by a WATCH: nothing was applied.
        return Err(Error::Conflict(EngineError::new(
            KIND,
            None,
            "a watched key changed before EXEC: nothing was applied",
        )));
    }
    // EXEC applied every command; one that failed when applied did not
    // undo the others (Redis has no rollback).
    if let ::redis::Value::Array(items) = &replies
        && let Some((index, err)) = items.iter().enumerate().find_map(|(i, r)| match r {
            ::redis::Value::ServerError(e) => Some((i, e)),
            _ => None,
        })
    {
        return Err(Error::precondition(
            KIND,
            format!(
                "write {} of {} failed when applied ({}: {}); Redis applied the others",
                index + 1,
                writes.len(),
                err.code(),
                err.details().unwrap_or_default()
            ),
        ));
    }
    Ok(())
}

/// Applies a transaction's writes again with its marker, unless the marker
/// is there: they were applied. The marker is watched from the check to
/// `EXEC`, so two replays at once (two gateways recovering) apply once.
/// The `WATCH` is the connection's state, so the replay has a connection
/// of its own: on the shared one, another caller's `EXEC` would end the
/// watch, and the watch could abort that caller's `EXEC`.
pub(super) async fn replay(pool: &RedisPool, tx: &str, writes: &[Redo]) -> Result<()> {
    let key = marker_key(tx);
    let mut conn = pool.dedicated().await?;
    let applied: bool = ::redis::pipe()
        .cmd("WATCH")
        .arg(&key)
        .ignore()
        .cmd("EXISTS")
        .arg(&key)
        .query_async::<(bool,)>(&mut conn)
        .await
        .map(|(exists,)| exists)
        .map_err(from_redis)?;
    if applied {
        return Ok(());
    }
    // EXEC on the same connection, under the WATCH: if another replay set
    // the marker meanwhile, nothing is applied (it applied them).
    match apply_on(&mut conn, writes, Some(tx)).await {
        Err(Error::Conflict(_)) => Ok(()),
        done => done,
    }
}
