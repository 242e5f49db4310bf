//! A pool of multiplexed connections to a server that speaks the Redis
//! protocol: Redis itself, and FalkorDB, and for the redis engine the link
//! its calls share (`link.rs`). It fails fast while the server is known to
//! be down and recovers by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::{Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo};

use super::config::{Protocol, RedisConfig};
use super::connect::Target;
use super::link::Link;
use super::manager::{Manager, Pooled};
use super::slot::LinkSlot;
use crate::pool::{AcquireError, FrontConfig, PoolFront, PoolSize};
use crate::{EngineError, Error, PoolStats, Result};

/// The pool, named for the engine kind and server it talks to (in errors).
#[derive(Debug)]
pub(crate) struct RedisPool {
    kind: &'static str,
    server: &'static str,
    pool: bb8::Pool<Manager>,
    manager: Manager,
    front: PoolFront,
    waiting: AtomicUsize,
    max_connections: u32,
    /// The pooled connection shared while it is healthy (FalkorDB's calls;
    /// the redis engine's metadata and transactions' reads): one
    /// multiplexed connection batches the commands of concurrent callers
    /// into fewer writes; the pool replaces it when it breaks.
    current: std::sync::Mutex<Option<Pooled>>,
    /// Connections of their own for `WATCH` (a transaction's guarded
    /// apply), kept between uses: opening one per commit cost a connect.
    watchers: std::sync::Mutex<Vec<MultiplexedConnection>>,
    /// The calls' shared connection ([`Link`]), for an engine that uses
    /// one (the redis engine; FalkorDB's calls share `current`).
    link: Option<Arc<LinkSlot>>,
}

/// Whether an engine's calls go over a [`Link`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Calls {
    /// Over a link of the engine's own, beside the pool.
    OnLink,
    /// Over the pool's shared connection.
    OnPool,
}

/// How many idle `WATCH` connections are kept.
const KEEP_WATCHERS: usize = 64;

fn connection_info(kind: &'static str, config: &RedisConfig) -> Result<ConnectionInfo> {
    let bad = |why: String| Error::InvalidStatement(EngineError::new(kind, None, why));
    let info = config
        .url
        .as_str()
        .into_connection_info()
        .map_err(|e| bad(format!("the {kind} url is malformed: {e}")))?;
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
        settings = settings.set_password(password.expose());
    }
    Ok(info.set_redis_settings(settings))
}

fn client(kind: &'static str, config: &RedisConfig) -> Result<Client> {
    let bad = |why: String| Error::InvalidStatement(EngineError::new(kind, None, why));
    let info = connection_info(kind, config)?;
    let opened = match (&config.ca_file, info.addr()) {
        (Some(ca_file), ConnectionAddr::TcpTls { .. }) => {
            let root_cert = std::fs::read(ca_file).map_err(|e| {
                bad(format!(
                    "cannot read the CA file {}: {e}",
                    ca_file.display()
                ))
            })?;
            let certificates = ::redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root_cert),
            };
            Client::build_with_tls(info, certificates)
        }
        (Some(_), _) => return Err(bad("ca_file needs a rediss:// url".into())),
        (None, _) => Client::open(info),
    };
    opened.map_err(|e| bad(format!("cannot use the {kind} url: {e}")))
}

impl RedisPool {
    /// Builds the pool and opens one connection (and the link, when calls
    /// go over one); fails when the server cannot be reached or refuses
    /// the credentials.
    pub(crate) async fn connect(
        kind: &'static str,
        server: &'static str,
        engine: &str,
        config: &RedisConfig,
        calls: Calls,
    ) -> Result<Self> {
        let front = PoolFront::new(FrontConfig {
            engine: engine.to_owned(),
            kind,
            server,
            settings: config.pool,
        });
        let manager = Manager {
            client: client(kind, config)?,
            connect_timeout: config.pool.connect_timeout,
            metrics: Arc::clone(front.metrics()),
        };
        // bb8 counts connections in u32. A link is one of
        // `max_connections`; the pool keeps at least one for the rest
        // (transactions' reads, metadata, probes).
        let pooled = match calls {
            Calls::OnLink => config.pool.max_connections.max(2) - 1,
            Calls::OnPool => config.pool.max_connections.max(1),
        };
        let max_connections = u32::try_from(pooled).unwrap_or(u32::MAX);
        let min_idle = u32::try_from(config.min_idle).unwrap_or(u32::MAX);
        let pool = bb8::Pool::builder()
            .max_size(max_connections)
            .min_idle(Some(min_idle.min(max_connections)))
            .connection_timeout(config.pool.acquire_timeout)
            .retry_connection(false)
            .test_on_check_out(false)
            .build(manager.clone())
            .await
            .map_err(|e| unavailable(kind, server, &e))?;
        let link = match calls {
            Calls::OnLink => Some(LinkSlot::new(
                link_target(kind, server, config)?,
                Arc::clone(front.metrics()),
            )),
            Calls::OnPool => None,
        };
        let pool = RedisPool {
            kind,
            server,
            pool,
            manager,
            front,
            waiting: AtomicUsize::new(0),
            max_connections,
            current: std::sync::Mutex::new(None),
            watchers: std::sync::Mutex::new(Vec::new()),
            link,
        };
        // One connection now: a wrong address, password or database fails
        // at startup with the server's reason.
        drop(pool.connection().await?);
        if calls == Calls::OnLink {
            drop(pool.link().await?);
        }
        Ok(pool)
    }

    /// A pooled connection; fails fast while the server is known to be down.
    pub(crate) async fn connection(&self) -> Result<Pooled> {
        self.front.gate()?;
        // Nearly every call shares the current connection: no wait, no
        // clock read, and a small future for the caller to hold.
        if let Some(conn) = self.shared() {
            self.front.acquired(Duration::ZERO);
            return Ok(conn);
        }
        // The first call and the one after a break go to the pool (boxed,
        // so that its large future is not part of every call's).
        Box::pin(self.front.checkout(self.get())).await
    }

    /// The calls' shared connection ([`Link`]); fails fast while the
    /// server is known to be down, and opens a new one after a break.
    pub(crate) async fn link(&self) -> Result<Link> {
        self.front.gate()?;
        let slot = self.slot()?;
        if let Some(link) = slot.live() {
            self.front.acquired(Duration::ZERO);
            return Ok(link);
        }
        Box::pin(self.front.checkout(slot.open())).await
    }

    fn slot(&self) -> Result<&Arc<LinkSlot>> {
        self.link.as_ref().ok_or_else(|| {
            Error::Internal(EngineError::new(
                self.kind,
                None,
                "this engine's calls do not go over a link",
            ))
        })
    }

    /// A connection of its own for a `WATCH` (no other caller's commands
    /// on it), one kept from an earlier use when there is one. Give it
    /// back with [`RedisPool::give_back_watcher`] once nothing is watched.
    pub(crate) async fn watcher(&self) -> Result<MultiplexedConnection> {
        let kept = self
            .watchers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        match kept {
            Some(conn) => Ok(conn),
            None => self.dedicated().await,
        }
    }

    /// Keeps `conn` (nothing watched on it) for the next [`RedisPool::watcher`].
    pub(crate) fn give_back_watcher(&self, conn: MultiplexedConnection) {
        let mut kept = self
            .watchers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.len() < KEEP_WATCHERS {
            kept.push(conn);
        }
    }

    /// A connection outside the pool, closed when dropped.
    pub(crate) async fn dedicated(&self) -> Result<MultiplexedConnection> {
        self.manager
            .dedicated()
            .await
            .map_err(|e| unavailable(self.kind, self.server, &e))
    }

    /// A handle to the shared connection, or to a fresh one from the pool
    /// when it broke.
    async fn get(&self) -> std::result::Result<Pooled, AcquireError<::redis::RedisError>> {
        if let Some(conn) = self.shared() {
            return Ok(conn);
        }
        let conn = self.checkout().await?;
        *self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(conn.share());
        Ok(conn)
    }

    /// A handle to the shared connection, unless there is none or it broke.
    fn shared(&self) -> Option<Pooled> {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .filter(|conn| !conn.is_broken())
            .map(Pooled::share)
    }

    /// A handle to a pooled connection; the pool slot is given back at once
    /// (a multiplexed connection serves many callers together).
    async fn checkout(&self) -> std::result::Result<Pooled, AcquireError<::redis::RedisError>> {
        // Handles are shared, so a connection found broken after its slot went
        // back is only discarded at its next checkout: skip those (bb8 drops
        // them as they return, since they report broken).
        for _ in 0..=self.max_connections {
            if self.pool.state().connections == 0 {
                // An empty pool connects in the background and would only time
                // out while the server is down: connect here to learn why, fast.
                let conn = self
                    .pool
                    .dedicated_connection()
                    .await
                    .map_err(AcquireError::Connect)?;
                let _ = self.pool.add(conn);
            }
            self.waiting.fetch_add(1, Ordering::Relaxed);
            let got = self.pool.get().await;
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            match got {
                Ok(conn) if conn.is_broken() => drop(conn),
                Ok(conn) => return Ok(conn.share()),
                Err(bb8::RunError::TimedOut) => return Err(AcquireError::Exhausted),
                Err(bb8::RunError::User(e)) => return Err(AcquireError::Connect(e)),
            }
        }
        Err(AcquireError::Other(Error::Unavailable(EngineError::new(
            self.kind,
            None,
            format!("every pooled connection to {} is broken", self.server),
        ))))
    }

    /// The engine's health: whether the server answers `command` on a
    /// pooled connection (an error reply, such as NOAUTH or LOADING, is a
    /// failed probe too).
    pub(crate) async fn probe(&self, command: &str) -> crate::Health {
        let unanswered = |why: String| Error::Unavailable(EngineError::new(self.kind, None, why));
        self.front
            .probe(async {
                let mut conn = self.front.checkout(self.get()).await?;
                match ::redis::cmd(command)
                    .query_async::<::redis::Value>(&mut conn.conn)
                    .await
                {
                    Ok(::redis::Value::ServerError(e)) => Err(unanswered(format!(
                        "{} answered {command} with an error: {e}",
                        self.server
                    ))),
                    Ok(_) => Ok(()),
                    Err(e) => {
                        if e.is_io_error() || e.is_connection_dropped() {
                            conn.mark_broken();
                        }
                        Err(unanswered(format!(
                            "{} did not answer {command}: {e}",
                            self.server
                        )))
                    }
                }
            })
            .await
    }

    /// The engine's health as its calls see it: whether the server
    /// answers `PING` on the link (past the fail-fast gate: a probe is how
    /// the engine learns the server is back), then on the pool's shared
    /// connection (which a failed probe replaces).
    pub(crate) async fn probe_link(&self) -> crate::Health {
        let unanswered = |why: String| Error::Unavailable(EngineError::new(self.kind, None, why));
        let on_link = self
            .front
            .probe(async {
                let link = self.front.checkout(self.slot()?.open()).await?;
                let ping = [bytes::Bytes::from_static(b"PING")];
                match link.call(&[&ping]).await?.pop() {
                    // An error reply (NOAUTH, LOADING) is a failed probe.
                    Some(reply) => reply.into_value(self.kind, false).map(drop).map_err(|e| {
                        unanswered(format!("{} answered PING with an error: {e}", self.server))
                    }),
                    None => Ok(()),
                }
            })
            .await;
        if on_link == crate::Health::Serving {
            self.refresh_shared().await;
        }
        on_link
    }

    /// `PING`s the pool's shared connection, which calls no longer keep
    /// busy, and marks it broken if the server dropped it (an idle
    /// timeout, a restart), so that the next use gets a fresh one instead
    /// of failing. What it finds is not the engine's health: the link is.
    async fn refresh_shared(&self) {
        let Some(mut conn) = self.shared() else {
            return;
        };
        let ping = ::redis::cmd("PING");
        let answer = ping.query_async::<::redis::Value>(&mut conn.conn);
        // (A slow answer is not a dropped connection: a transaction's long
        // read may be ahead of the PING on it.)
        if let Ok(Err(e)) = tokio::time::timeout(crate::pool::PROBE_TIMEOUT, answer).await
            && (e.is_io_error() || e.is_connection_dropped())
        {
            conn.mark_broken();
        }
    }

    /// The pool's statistics.
    pub(crate) fn stats(&self) -> PoolStats {
        let state = self.pool.state();
        // A link is one more connection, beside the pool's, and idle as
        // the pool's shared one is: no caller holds it.
        let has_link = usize::from(self.link.is_some());
        let link = usize::from(self.link.as_ref().is_some_and(|slot| slot.live().is_some()));
        self.front.metrics().stats(PoolSize {
            max_size: self.max_connections as usize + has_link,
            size: state.connections as usize + link,
            idle: state.idle_connections as usize + link,
            waiting: self.waiting.load(Ordering::Relaxed),
        })
    }

    /// The driver's counters: failed connects so far.
    pub(crate) fn counters(&self) -> Vec<(String, u64)> {
        vec![(
            "connect_failures".into(),
            u64::from(self.front.connect_failures()),
        )]
    }
}

/// Where a link connects: the pool's url, credentials and database, and
/// for a `rediss://` url the TLS settings the redis crate's connections
/// use (the `ca_file`, or the system's CAs).
fn link_target(kind: &'static str, server: &'static str, config: &RedisConfig) -> Result<Target> {
    let info = connection_info(kind, config)?;
    let tls = match info.addr() {
        ConnectionAddr::TcpTls { .. } => Some(Arc::new(crate::tls::client_config(
            kind,
            config.ca_file.as_deref(),
            crate::tls::DefaultRoots::System,
        )?)),
        _ => None,
    };
    Ok(Target {
        info,
        tls,
        connect_timeout: config.pool.connect_timeout,
        protocol: config.protocol,
        kind,
        server,
    })
}

fn unavailable(kind: &'static str, server: &str, e: &::redis::RedisError) -> Error {
    Error::Unavailable(EngineError::new(
        kind,
        None,
        format!("cannot connect to {server}: {e}"),
    ))
}
