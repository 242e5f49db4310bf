//! The `redis` engine: the `redis` crate's multiplexed connections pooled
//! by bb8, serving the `redis` dialect. Any command passes through, except
//! those that would break a pooled connection for its next user; blocking
//! commands run on a connection of their own, bounded by the deadline.

mod batch;
mod commands;
mod config;
mod manager;
mod reply;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ::redis::aio::MultiplexedConnection;
use ::redis::{Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo};
use async_trait::async_trait;
use bytes::Bytes;

use commands::is_blocking;
pub use commands::refusal;
pub use config::{Protocol, RedisConfig};
use manager::{Manager, Pooled};
use reply::{from_redis, to_value, to_value_with};

use crate::pool::{Backoff, PoolMetrics, PoolSize};
use crate::redis_syntax::parse_command;
use crate::{
    Column, DescribeOptions, Dialect, EngineDescriptor, EngineError, Error, ExecuteOptions, Health,
    PoolStats, Result, ResultSet, SchemaObject, Statement, StorageDriver,
};

/// The engine kind's name.
pub const KIND: &str = "redis";

/// The Redis engine.
#[derive(Debug)]
pub struct RedisDriver {
    descriptor: EngineDescriptor,
    pool: bb8::Pool<Manager>,
    manager: Manager,
    metrics: Arc<PoolMetrics>,
    backoff: Backoff,
    waiting: AtomicUsize,
    max_connections: u32,
    acquire_timeout: Duration,
    database: i64,
    /// Whether each command writes, from `COMMAND INFO`, for read-only requests.
    writes: moka::sync::Cache<String, bool>,
}

fn connection_info(config: &RedisConfig) -> Result<ConnectionInfo> {
    let bad = |why: String| Error::InvalidStatement(EngineError::new(KIND, None, why));
    let info = config
        .url
        .as_str()
        .into_connection_info()
        .map_err(|e| bad(format!("the redis url is malformed: {e}")))?;
    let protocol = match config.protocol {
        Protocol::Resp2 => ::redis::ProtocolVersion::RESP2,
        Protocol::Resp3 => ::redis::ProtocolVersion::RESP3,
    };
    let mut settings = info
        .redis_settings()
        .clone()
        .set_db(config.database)
        .set_protocol(protocol);
    if let Some(user) = &config.username {
        settings = settings.set_username(user);
    }
    if let Some(password) = &config.password {
        settings = settings.set_password(password);
    }
    Ok(info.set_redis_settings(settings))
}

impl RedisDriver {
    /// Builds the pool and opens `min_idle` connections; fails when the
    /// server cannot be reached.
    pub async fn connect(name: impl Into<String>, config: RedisConfig) -> Result<Self> {
        let info = connection_info(&config)?;
        let client = match (&config.ca_file, info.addr()) {
            (Some(ca_file), ConnectionAddr::TcpTls { .. }) => {
                let root_cert = std::fs::read(ca_file).map_err(|e| {
                    Error::InvalidStatement(EngineError::new(
                        KIND,
                        None,
                        format!("cannot read the CA file {}: {e}", ca_file.display()),
                    ))
                })?;
                let certificates = ::redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                };
                Client::build_with_tls(info, certificates).map_err(from_redis)?
            }
            (Some(_), _) => {
                return Err(Error::InvalidStatement(EngineError::new(
                    KIND,
                    None,
                    "ca_file needs a rediss:// url",
                )));
            }
            (None, _) => Client::open(info).map_err(from_redis)?,
        };
        let metrics = Arc::new(PoolMetrics::default());
        let manager = Manager {
            client,
            connect_timeout: config.connect_timeout,
            metrics: Arc::clone(&metrics),
        };
        let pool = bb8::Pool::builder()
            .max_size(config.max_connections.max(1))
            .min_idle(Some(config.min_idle.min(config.max_connections)))
            .connection_timeout(config.acquire_timeout)
            .retry_connection(false)
            .test_on_check_out(false)
            .build(manager.clone())
            .await
            .map_err(|e| unavailable(&e))?;
        let driver = RedisDriver {
            descriptor: EngineDescriptor {
                name: name.into(),
                kind: KIND,
                dialects: vec![Dialect::Redis],
            },
            pool,
            manager,
            metrics,
            backoff: Backoff::new(config.backoff_base, config.backoff_max),
            waiting: AtomicUsize::new(0),
            max_connections: config.max_connections.max(1),
            acquire_timeout: config.acquire_timeout,
            database: config.database,
            writes: moka::sync::Cache::new(1024),
        };
        // One connection now: a wrong address, password or database fails
        // at startup with the server's reason.
        drop(driver.acquire().await?);
        Ok(driver)
    }

    /// A pooled connection; fails fast while the server is known to be down.
    async fn connection(&self) -> Result<Pooled> {
        self.backoff.fail_fast(KIND, "Redis")?;
        self.acquire().await
    }

    /// A handle to a pooled connection; the pool slot is given back at once
    /// (a multiplexed connection serves many callers together).
    async fn acquire(&self) -> Result<Pooled> {
        let started = Instant::now();
        // Handles are shared, so a connection found broken after its slot went
        // back is only discarded at its next checkout: skip those (bb8 drops
        // them as they return, since they report broken).
        for _ in 0..=self.max_connections {
            if self.pool.state().connections == 0 {
                // An empty pool connects in the background and would only time
                // out while the server is down: connect here to learn why, fast.
                match self.pool.dedicated_connection().await {
                    Ok(conn) => {
                        let _ = self.pool.add(conn);
                    }
                    Err(e) => {
                        self.backoff.failed();
                        return Err(unavailable(&e));
                    }
                }
            }
            self.waiting.fetch_add(1, Ordering::Relaxed);
            let got = self.pool.get().await;
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            match got {
                Ok(conn) if conn.is_broken() => drop(conn),
                Ok(conn) => {
                    self.backoff.succeeded();
                    self.metrics.acquired(started.elapsed());
                    return Ok(conn.share());
                }
                Err(bb8::RunError::TimedOut) => {
                    return Err(Error::PoolExhausted {
                        engine: self.descriptor.name.clone(),
                        waited: self.acquire_timeout,
                    });
                }
                Err(bb8::RunError::User(e)) => {
                    self.backoff.failed();
                    return Err(unavailable(&e));
                }
            }
        }
        Err(Error::Unavailable(EngineError::new(
            KIND,
            None,
            "every pooled connection to Redis is broken",
        )))
    }

    /// Whether the command writes, by the server's own `COMMAND INFO`.
    async fn writes(&self, conn: &mut MultiplexedConnection, name: &str) -> Result<bool> {
        let key = name.to_ascii_lowercase();
        if let Some(known) = self.writes.get(&key) {
            return Ok(known);
        }
        let info: ::redis::Value = ::redis::cmd("COMMAND")
            .arg("INFO")
            .arg(&key)
            .query_async(conn)
            .await
            .map_err(from_redis)?;
        // Reply: [[name, arity, [flags...], ...]] (nil for unknown commands).
        let flags = match &info {
            ::redis::Value::Array(items) => match items.first() {
                Some(::redis::Value::Array(entry)) => entry.get(2).cloned(),
                _ => None,
            },
            _ => None,
        };
        let writes = match flags {
            Some(::redis::Value::Array(flags) | ::redis::Value::Set(flags)) => {
                flags.iter().any(|f| {
                    matches!(f, ::redis::Value::SimpleString(s) if s == "write")
                        || matches!(f, ::redis::Value::BulkString(b) if b == b"write")
                })
            }
            // Unknown to the server: let it answer with its own error.
            _ => false,
        };
        self.writes.insert(key, writes);
        Ok(writes)
    }

    async fn run(&self, args: Vec<Bytes>, options: &ExecuteOptions) -> Result<::redis::Value> {
        let mut command = ::redis::cmd(&String::from_utf8_lossy(&args[0]));
        for arg in &args[1..] {
            command.arg(arg.as_ref());
        }
        let limit = options.timeout;
        if is_blocking(&args) {
            // A connection of its own: a blocked shared connection would hold
            // up every other caller. Dropped (and so closed) at the deadline.
            let mut conn = self.manager.dedicated().await.map_err(from_redis)?;
            return bounded(limit, async move {
                command.query_async(&mut conn).await.map_err(from_redis)
            })
            .await;
        }
        let mut conn = self.connection().await?;
        if options.read_only
            && self
                .writes(&mut conn.conn, &String::from_utf8_lossy(&args[0]))
                .await?
        {
            return Err(Error::Precondition(EngineError::new(
                KIND,
                None,
                format!(
                    "{} writes, but the request is read_only",
                    String::from_utf8_lossy(&args[0]).to_uppercase()
                ),
            )));
        }
        let pooled: &mut Pooled = &mut conn;
        query(pooled, &command, limit).await
    }
}

/// Runs `command` on a pooled connection; a connection the server dropped
/// is marked broken so the pool replaces it.
async fn query(
    pooled: &mut Pooled,
    command: &::redis::Cmd,
    limit: Option<Duration>,
) -> Result<::redis::Value> {
    let result = bounded(limit, async {
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

/// `work`, cut at `limit` with `Timeout`.
async fn bounded<T>(
    limit: Option<Duration>,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, work)
            .await
            .map_err(|_| Error::Timeout { after: limit })?,
        None => work.await,
    }
}

fn unavailable(e: &::redis::RedisError) -> Error {
    Error::Unavailable(EngineError::new(
        KIND,
        None,
        format!("cannot connect to Redis: {e}"),
    ))
}

#[async_trait]
impl StorageDriver for RedisDriver {
    fn descriptor(&self) -> &EngineDescriptor {
        &self.descriptor
    }

    async fn execute(
        &self,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<ResultSet> {
        self.descriptor.ensure_serves(dialect)?;
        let args = parse_command(&statement.text, &statement.params, KIND)?;
        commands::check_allowed(&args)?;
        let reply = self.run(args, options).await?;
        Ok(ResultSet {
            columns: vec![Column::new("reply", "")],
            rows: vec![vec![to_value_with(reply, options.raw_bytes)?]],
            rows_affected: 0,
        })
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

    async fn describe(&self, options: &DescribeOptions) -> Result<Vec<SchemaObject>> {
        let mut conn = self.connection().await?;
        let info = query(&mut conn, ::redis::cmd("INFO").arg("keyspace"), None).await?;
        let info = match to_value(info)? {
            crate::Value::String(text) => text,
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

    async fn health(&self) -> Health {
        let probe = async {
            let mut conn = self.acquire().await?;
            // An error reply (NOAUTH, LOADING) is a failed probe too.
            query(&mut conn, &::redis::cmd("PING"), None)
                .await
                .and_then(to_value)
                .map(drop)
        };
        match probe.await {
            Ok(()) => Health::Serving,
            Err(e) => Health::NotServing(e.to_string()),
        }
    }

    fn pool_stats(&self) -> PoolStats {
        let state = self.pool.state();
        self.metrics.stats(PoolSize {
            max_size: self.max_connections as usize,
            size: state.connections as usize,
            idle: state.idle_connections as usize,
            waiting: self.waiting.load(Ordering::Relaxed),
        })
    }

    fn counters(&self) -> Vec<(String, u64)> {
        vec![(
            "connect_failures".into(),
            u64::from(self.backoff.failures()),
        )]
    }
}
