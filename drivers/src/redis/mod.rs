//! The `redis` engine, serving the `redis` dialect: calls share the
//! engine's link (`resp/link.rs`); transactions, recovery and metadata use
//! the `redis` crate's multiplexed connections pooled by bb8. Any command
//! passes through, except those that would break a shared connection for
//! its next user; blocking commands run on a connection of their own,
//! bounded by the deadline.

mod apply;
mod batch;
pub(crate) mod commands;
mod info;
mod reply;
mod transaction;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub use commands::{is_blocking, refusal};
use reply::{from_redis, to_value, to_value_with};

use crate::deadline::within;
use crate::redis_syntax::parse_command;
use crate::resp::{Calls, Pooled, RedisPool};
pub use crate::resp::{Protocol, RedisConfig};
use crate::{
    BeginOptions, DescribeOptions, Dialect, DriverTransaction, EngineDescriptor, Error,
    ExecuteOptions, Health, PoolStats, Result, ResultSet, SchemaObject, Statement, StorageDriver,
};

/// The engine kind's name.
pub const KIND: &str = "redis";

/// The Redis engine.
#[derive(Debug)]
pub struct RedisDriver {
    descriptor: EngineDescriptor,
    pool: Arc<RedisPool>,
    database: i64,
    /// What the server says of each command (`COMMAND INFO`): whether it
    /// writes, for read-only requests; arity and flags, for transactions.
    commands: info::Commands,
}

impl RedisDriver {
    /// Builds the pool and opens `min_idle` connections; fails when the
    /// server cannot be reached.
    pub async fn connect(name: impl Into<String>, config: RedisConfig) -> Result<Self> {
        let name = name.into();
        let pool = RedisPool::connect(KIND, "Redis", &name, &config, Calls::OnLink).await?;
        Ok(RedisDriver {
            descriptor: EngineDescriptor {
                name,
                kind: KIND,
                dialects: <Self as crate::EngineKind>::DIALECTS.to_vec(),
            },
            pool: Arc::new(pool),
            database: config.database,
            commands: info::Commands::new(),
        })
    }

    /// A pooled connection; fails fast while the server is known to be down.
    async fn connection(&self) -> Result<Pooled> {
        self.pool.connection().await
    }

    /// `Err(ReadOnly)` unless the command is one Redis flags read-only,
    /// by the server's own `COMMAND INFO` (asked on the pool's shared
    /// connection, marked broken if it failed), for a read-only request.
    async fn refuse_writes(&self, args: &[Bytes]) -> Result<()> {
        let mut shared = self.connection().await?;
        let refused = self
            .commands
            .refuse_unless_read_only(&mut shared.conn, args, "request")
            .await;
        shared.noting(refused)
    }

    async fn run(&self, args: Vec<Bytes>, options: &ExecuteOptions) -> Result<crate::Value> {
        // (The caller, `execute`, bounds the whole call by its timeout.)
        // The rare paths are boxed: a future holds room for its largest
        // step, and every call's future would otherwise carry theirs.
        if options.read_only {
            Box::pin(self.refuse_writes(&args)).await?;
        }
        if is_blocking(&args) {
            // A connection of its own: a blocked shared connection would hold
            // up every other caller. Dropped (and so closed) at the deadline.
            return Box::pin(async move {
                let mut conn = self.pool.dedicated().await?;
                let reply = to_cmd(&args).query_async(&mut conn).await;
                to_value_with(reply.map_err(from_redis)?, options.raw_bytes)
            })
            .await;
        }
        let link = self.pool.link().await?;
        let mut replies = link.call(&[&args]).await?;
        match replies.pop() {
            Some(reply) => reply.into_value(KIND, options.raw_bytes),
            None => Err(Error::Internal(crate::EngineError::new(
                KIND,
                None,
                "no reply for the command",
            ))),
        }
    }
}

/// The command as the `redis` crate sends it, sized once.
fn to_cmd(args: &[Bytes]) -> ::redis::Cmd {
    let size = args.iter().map(Bytes::len).sum();
    let mut command = ::redis::Cmd::with_capacity(args.len(), size);
    for arg in args {
        command.arg(arg.as_ref());
    }
    command
}

/// Runs `command` on a pooled connection; a connection the server dropped
/// is marked broken so the pool replaces it.
async fn query(
    pooled: &mut Pooled,
    command: &::redis::Cmd,
    limit: Option<Duration>,
) -> Result<::redis::Value> {
    let result = within(limit, async {
        command
            .query_async(&mut pooled.conn)
            .await
            .map_err(from_redis)
    })
    .await;
    if matches!(result, Err(Error::Unavailable(_))) {
        pooled.mark_broken();
    }
    result
}

#[async_trait]
impl StorageDriver for RedisDriver {
    fn descriptor(&self) -> &EngineDescriptor {
        &self.descriptor
    }

    /// `execute` runs under one deadline from its start.
    fn bounds_execute(&self) -> bool {
        true
    }

    async fn execute(
        &self,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<ResultSet> {
        self.descriptor.accept(dialect, statement)?;
        let args = parse_command(&statement.text, &statement.params, KIND)?;
        commands::check_allowed(&args)?;
        // One deadline over the whole call: the connection, the command's
        // metadata and the command itself.
        let reply = within(options.timeout, self.run(args, options)).await?;
        crate::ResultLimits::new(options).check(ResultSet::reply(reply))
    }

    /// One pipeline, one round trip (see `batch.rs`).
    async fn execute_batch(
        &self,
        dialect: Dialect,
        statements: &[Statement],
        options: &ExecuteOptions,
    ) -> Result<Vec<Result<ResultSet>>> {
        self.descriptor.ensure_serves(dialect)?;
        batch::run(self, statements, options).await
    }

    async fn begin(&self, options: &BeginOptions) -> Result<Box<dyn DriverTransaction>> {
        Ok(Box::new(transaction::RedisTransaction::new(
            self.descriptor.clone(),
            options.clone(),
            Arc::clone(&self.pool),
            self.commands.clone(),
        )))
    }

    async fn replay(&self, marker: &str, redo: &[crate::Redo]) -> Result<()> {
        apply::replay(&self.pool, marker, redo).await.map(drop)
    }

    fn gateway_state_named(&self, _dialect: Dialect, statement: &Statement) -> Option<String> {
        crate::reserved::redis_names(statement)
    }

    async fn forget_marker(&self, marker: &str, _redo_head: Option<&crate::Redo>) -> Result<()> {
        let mut conn = self.pool.connection().await?;
        let expired = ::redis::cmd("EXPIRE")
            .arg(crate::marker_key(marker))
            .arg(crate::MARKER_GRACE.as_secs())
            .query_async::<()>(&mut conn.conn)
            .await
            .map_err(reply::from_redis);
        conn.noting(expired)
    }

    /// The markers' `EXPIRE`s pipelined: one round trip.
    async fn forget_markers(&self, markers: &[(String, Option<crate::Redo>)]) -> Result<()> {
        let mut pipe = ::redis::pipe();
        for (marker, _) in markers {
            pipe.cmd("EXPIRE")
                .arg(crate::marker_key(marker))
                .arg(crate::MARKER_GRACE.as_secs())
                .ignore();
        }
        let mut conn = self.pool.connection().await?;
        let expired = pipe
            .query_async::<()>(&mut conn.conn)
            .await
            .map_err(reply::from_redis);
        conn.noting(expired)
    }

    async fn describe(&self, options: &DescribeOptions) -> Result<Vec<SchemaObject>> {
        let mut conn = self.connection().await?;
        let info = query(&mut conn, ::redis::cmd("INFO").arg("keyspace"), None).await?;
        let info = match to_value(info)? {
            crate::Value::String(text) => text.into(),
            other => other.to_string(),
        };
        let name = format!("db{}", self.database);
        let attributes = info
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}:")))
            .map(|fields| {
                fields
                    .split(',')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            })
            .unwrap_or_else(|| vec![("keys".into(), "0".into())]);
        let object = SchemaObject {
            kind: "keyspace".into(),
            name,
            attributes,
            ..SchemaObject::default()
        };
        Ok(options
            .wants(&object.name)
            .then_some(object)
            .into_iter()
            .collect())
    }

    async fn durability(&self) -> Option<String> {
        crate::resp::durability::warning(&self.pool, "Redis").await
    }

    async fn health(&self) -> Health {
        self.pool.probe_link().await
    }

    fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }

    fn counters(&self) -> Vec<(String, u64)> {
        self.pool.counters()
    }
}

crate::kind::engine_kind!(RedisDriver, RedisConfig, [Redis], RedisDriver::connect);
