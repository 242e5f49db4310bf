//! The `memory` engine, the embedded default: an in-process Redis for the
//! `redis` dialect, following Redis' replies and errors for the commands it
//! has (see [`command_names`]; others are `NotSupported`), and an
//! in-process time-series store for the `ts` dialect (line-protocol
//! writes, a PromQL subset; see `timeseries/eval.rs`).

mod commands;
mod reply;
mod store;
pub(crate) mod timeseries;
mod transaction;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use commands::Ctx;
pub use commands::command_names;
use store::Keyspace;

use crate::deadline::Deadline;
use crate::redis_syntax::parse_command;
use crate::{
    BeginOptions, DescribeOptions, Dialect, DriverTransaction, EngineDescriptor, EngineError,
    Error, ExecuteOptions, Health, Result, ResultSet, SchemaObject, Statement, StorageDriver,
};

/// The engine kind's name.
pub const KIND: &str = "memory";

/// Configuration of a memory engine, as the gateway's config file spells
/// it (`[engines.NAME] kind = "memory"`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    /// How often expired keys are evicted in the background (they are also
    /// evicted lazily, when touched).
    #[serde(with = "humantime_serde")]
    pub eviction_interval: Duration,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            eviction_interval: Duration::from_millis(100),
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    keyspace: Mutex<Keyspace>,
    evicted: AtomicU64,
    /// The key and expiry counts when last read, for counters asked for
    /// while a command holds the keyspace.
    keys: AtomicU64,
    expires: AtomicU64,
    series: Mutex<timeseries::TsStore>,
}

impl Shared {
    /// Keys and keys with an expiry: now when the keyspace is free, else
    /// as last read. Never waits, because counters are read on the async
    /// workers (ListEngines) and a slow command may hold the keyspace.
    fn counts(&self) -> (u64, u64) {
        use std::sync::TryLockError;
        let mut keyspace = match self.keyspace.try_lock() {
            Ok(keyspace) => keyspace,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => {
                return (
                    self.keys.load(Ordering::Relaxed),
                    self.expires.load(Ordering::Relaxed),
                );
            }
        };
        let keys = keyspace.len(Instant::now()) as u64;
        let expires = keyspace.volatile_len() as u64;
        self.keys.store(keys, Ordering::Relaxed);
        self.expires.store(expires, Ordering::Relaxed);
        (keys, expires)
    }

    fn series_lock(&self) -> MutexGuard<'_, timeseries::TsStore> {
        self.series.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock(&self) -> MutexGuard<'_, Keyspace> {
        // A panic while holding the lock cannot leave the keyspace half
        // changed in a way later commands cannot read, so keep serving.
        self.keyspace.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs one statement, on the calling (blocking) thread.
    fn run(
        &self,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<ResultSet> {
        let deadline = Deadline::after(options.timeout);
        let result = match dialect {
            Dialect::Ts => timeseries::run(&self.series, statement, options, &deadline),
            _ => self.run_redis(statement, options, &deadline),
        }?;
        crate::ResultLimits::new(options).check(result)
    }

    fn run_redis(
        &self,
        statement: &Statement,
        options: &ExecuteOptions,
        deadline: &Deadline,
    ) -> Result<ResultSet> {
        let (command, args) = check_redis(statement, options)?;
        let reply = {
            let mut keyspace = self.lock();
            let mut ctx = Ctx {
                ks: &mut keyspace,
                now: Instant::now(),
                deadline,
            };
            command.run(&mut ctx, &args)?
        };
        Ok(ResultSet::reply(reply.into_value(options.raw_bytes)))
    }
}

/// The in-process Redis engine.
#[derive(Debug)]
pub struct MemoryDriver {
    descriptor: EngineDescriptor,
    shared: Arc<Shared>,
    evictor: Option<tokio::task::JoinHandle<()>>,
}

impl MemoryDriver {
    /// A new, empty engine named `name`. Inside a Tokio runtime it starts
    /// the periodic eviction of expired keys.
    pub fn new(name: impl Into<String>, config: MemoryConfig) -> Self {
        let shared = Arc::new(Shared::default());
        let evictor = tokio::runtime::Handle::try_current().ok().map(|rt| {
            rt.spawn(evict_periodically(
                Arc::downgrade(&shared),
                config.eviction_interval,
            ))
        });
        MemoryDriver {
            descriptor: EngineDescriptor {
                name: name.into(),
                kind: KIND,
                dialects: <Self as crate::EngineKind>::DIALECTS.to_vec(),
            },
            shared,
            evictor,
        }
    }
}

/// Runs `work` on Tokio's blocking pool (see `execute`).
async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        Error::Internal(EngineError::new(
            KIND,
            None,
            format!("the command stopped without an answer: {e}"),
        ))
    })?
}

/// A result of one reply.
/// A Redis statement parsed and checked against the command table: the
/// command exists, its arity fits, and it may run under `options`.
fn check_redis(
    statement: &Statement,
    options: &ExecuteOptions,
) -> Result<(&'static commands::Command, Vec<bytes::Bytes>)> {
    let args = parse_command(&statement.text, &statement.params, KIND)?;
    let name = &args[0];
    let command = commands::lookup(name).ok_or_else(|| {
        Error::not_supported(
            format!("command {}", String::from_utf8_lossy(name).to_uppercase()),
            KIND,
        )
    })?;
    if command.writes && options.read_only {
        return Err(Error::read_only(
            KIND,
            format!(
                "{} writes, but the request is read_only",
                command.name.to_uppercase()
            ),
        ));
    }
    command.check_arity(&args)?;
    Ok((command, args))
}

impl Drop for MemoryDriver {
    fn drop(&mut self) {
        if let Some(evictor) = &self.evictor {
            evictor.abort();
        }
    }
}

async fn evict_periodically(shared: Weak<Shared>, every: Duration) {
    let mut ticker = tokio::time::interval(every.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        // Off the async workers, as commands are.
        let _ = tokio::task::spawn_blocking(move || {
            let evicted = shared.lock().evict_expired(Instant::now());
            shared.evicted.fetch_add(evicted as u64, Ordering::Relaxed);
        })
        .await;
    }
}

#[async_trait]
impl StorageDriver for MemoryDriver {
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
        // Commands run on the blocking pool, never on the async workers: a
        // slow one (KEYS over long keys, a long PromQL range) would stall
        // every other call there, health checks included. Each stops at
        // the call's deadline. Like Redis, the keyspace takes one command
        // at a time, so a slow command delays the others on this engine
        // for at most its deadline.
        let shared = Arc::clone(&self.shared);
        let (statement, options) = (statement.clone(), options.clone());
        on_blocking_pool(move || shared.run(dialect, &statement, &options)).await
    }

    async fn begin(&self, options: &BeginOptions) -> Result<Box<dyn DriverTransaction>> {
        Ok(Box::new(transaction::MemoryTransaction {
            shared: Arc::clone(&self.shared),
            descriptor: self.descriptor.clone(),
            options: options.clone(),
            queued: Vec::new(),
            marker: None,
        }))
    }

    fn gateway_state_named(&self, dialect: Dialect, statement: &Statement) -> Option<String> {
        (dialect == Dialect::Redis)
            .then(|| crate::reserved::redis_names(statement))
            .flatten()
    }

    async fn forget_marker(&self, marker: &str, _redo_head: Option<&crate::Redo>) -> Result<()> {
        let expire = Statement::new("EXPIRE $1 $2")
            .bind(crate::marker_key(marker))
            .bind(crate::MARKER_GRACE.as_secs() as i64);
        self.execute(Dialect::Redis, &expire, &ExecuteOptions::default())
            .await
            .map(drop)
    }

    async fn replay(&self, marker: &str, redo: &[crate::Redo]) -> Result<()> {
        let shared = Arc::clone(&self.shared);
        let (marker, redo) = (marker.to_owned(), redo.to_vec());
        on_blocking_pool(move || transaction::apply(&shared, &redo, Some(&marker), true))
            .await
            .map(drop)
    }

    async fn describe(&self, options: &DescribeOptions) -> Result<Vec<SchemaObject>> {
        let shared = Arc::clone(&self.shared);
        let options = options.clone();
        // Waits for the keyspace, so off the async workers as commands are.
        on_blocking_pool(move || {
            let (keys, expires) = {
                let mut keyspace = shared.lock();
                (keyspace.len(Instant::now()), keyspace.volatile_len())
            };
            let object = SchemaObject {
                kind: "keyspace".into(),
                name: "db0".into(),
                attributes: vec![
                    ("keys".into(), keys.to_string()),
                    ("expires".into(), expires.to_string()),
                ],
                ..SchemaObject::default()
            };
            let mut objects = vec![object];
            objects.extend(timeseries::describe(&shared.series));
            objects.retain(|o| options.wants(&o.name));
            Ok(objects)
        })
        .await
    }

    async fn health(&self) -> Health {
        match &self.evictor {
            Some(task) if task.is_finished() => {
                Health::NotServing("the expiry task has stopped".into())
            }
            _ if self.shared.keyspace.is_poisoned() => {
                Health::NotServing("a command panicked while holding the keyspace".into())
            }
            _ => Health::Serving,
        }
    }

    fn counters(&self) -> Vec<(String, u64)> {
        let (keys, expires) = self.shared.counts();
        vec![
            ("keys".into(), keys),
            ("expires".into(), expires),
            (
                "evicted".into(),
                self.shared.evicted.load(Ordering::Relaxed),
            ),
        ]
    }
}

impl MemoryConfig {
    /// What is wrong with these settings, as `.key: why`.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.eviction_interval.is_zero() {
            return Err(".eviction_interval: must be more than 0".into());
        }
        Ok(())
    }
}

async fn start(name: &str, config: MemoryConfig) -> Result<MemoryDriver> {
    Ok(MemoryDriver::new(name, config))
}

crate::kind::engine_kind!(MemoryDriver, MemoryConfig, [Redis, Ts], start);
