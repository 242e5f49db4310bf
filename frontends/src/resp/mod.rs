//! The Redis-protocol front end (`[frontends.redis]`): redis-cli,
//! redis-benchmark, redis-py and every other Redis client reach one engine
//! of the `redis` dialect through it (a real Redis or the memory engine),
//! with the gateway's principals, grants, rules and cross-engine
//! transactions. The protocol is `redis-protocol`'s (RESP2, and RESP3
//! after `HELLO 3`); this module turns commands into core calls and
//! values and errors back into replies.
//!
//! - `codec.rs`: the wire (requests in, replies out in the session's
//!   protocol);
//! - `connection.rs`: one client's loop, pipelines as batches;
//! - `commands.rs`: the commands the front end answers or refuses itself;
//! - `tx.rs`: `MULTI`/`EXEC`/`DISCARD` and `OMNIGATE.TX`;
//! - `encode.rs`: values as replies, replies as RESP2/RESP3 frames;
//! - `errors.rs`: errors as Redis error replies;
//! - `session.rs`: one connection's state.

mod codec;
mod commands;
mod connection;
mod encode;
mod errors;
mod session;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod session_fuzz;
mod shape;
mod tx;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use omnigate::Gateway;
use omnigate::config::RedisFrontendConfig;
use omnigate::drivers::Dialect;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use connection::{Connection, Shared};
use session::Session;

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// `target` names no engine of the `redis` dialect.
    #[error("frontends.redis.target: {0}")]
    Target(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The front end's name in metrics.
const FRONTEND: &str = "redis";

/// The running listener.
#[derive(Debug)]
pub struct RedisFrontend {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl RedisFrontend {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections (open ones end with their clients).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for RedisFrontend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Checks that `target` is an engine of the `redis` dialect now.
fn check_target(gateway: &Gateway, target: &str) -> Result<(), StartError> {
    let router = gateway.router();
    match router.by_name(target) {
        Ok(engine)
            if engine
                .driver
                .descriptor()
                .dialects
                .contains(&Dialect::Redis) =>
        {
            Ok(())
        }
        Ok(engine) => Err(StartError::Target(format!(
            "engine {target} is a {} engine, which does not serve the redis dialect: name a \
             redis or memory engine",
            engine.driver.descriptor().kind
        ))),
        Err(e) => Err(StartError::Target(e.to_string())),
    }
}

/// How long a client may take over its TLS handshake.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// Listens on `config.listen` and serves every client on its own task,
/// each command on engine `config.target`; with `tls`, only over TLS.
pub async fn start(
    gateway: Gateway,
    config: &RedisFrontendConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
    connections: crate::connections::ConnectionMetrics,
) -> Result<RedisFrontend, StartError> {
    check_target(&gateway, &config.target)?;
    let bind = |source| StartError::Bind {
        addr: config.listen,
        source,
    };
    let listener = TcpListener::bind(config.listen).await.map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    if tls.is_none() && !gateway.security().is_open() && !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "the Redis front end has no TLS: AUTH tokens cross the network in the clear; \
             listen on loopback or terminate TLS in front"
        );
    }
    tracing::info!(%addr, engine = %config.target, "Redis clients at this address");
    let shared = Arc::new(Shared {
        gateway,
        target: config.target.clone(),
        idle_timeout: config.idle_timeout,
        counted: connections.statements(FRONTEND),
    });
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let ids = AtomicU64::new(1);
    let task = tokio::spawn(async move {
        loop {
            let (mut socket, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a Redis client failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = socket.set_nodelay(true);
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                connections.refused(FRONTEND);
                // Redis' words (in the clear only: a TLS client could not
                // read them before its handshake), then the connection
                // closes.
                let plain = tls.is_none();
                tokio::spawn(async move {
                    if plain {
                        let _ = socket
                            .write_all(b"-ERR max number of clients reached\r\n")
                            .await;
                    }
                    let _ = socket.shutdown().await;
                });
                continue;
            };
            let local = socket.local_addr().unwrap_or(addr);
            let id = ids.fetch_add(1, Ordering::Relaxed);
            let connection = Connection {
                shared: Arc::clone(&shared),
                session: Session::new(id, peer, local),
            };
            let open = connections.accepted(FRONTEND);
            let tls = tls.clone();
            tokio::spawn(async move {
                let _held = (slot, open);
                match tls {
                    Some(tls) => {
                        let handshake = tokio::time::timeout(HANDSHAKE_LIMIT, tls.accept(socket));
                        match handshake.await {
                            Ok(Ok(stream)) => connection.serve(stream).await,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "Redis client's TLS handshake failed");
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "Redis client's TLS handshake timed out")
                            }
                        }
                    }
                    None => connection.serve(socket).await,
                }
            });
        }
    });
    Ok(RedisFrontend { addr, task })
}

/// Fuzzing entry (cargo feature `fuzzing`): a client's bytes through the
/// request decoder, before and after AUTH, whole and split at a point the
/// bytes choose. The decoder is resumable: however the bytes arrive, it
/// must read the same commands and stop at the same error. Returns
/// normally for any input; a panic is a finding.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub fn fuzz(data: &[u8]) {
    use tokio_util::codec::Decoder;
    let read = |authenticated: bool, chunks: &[&[u8]]| {
        let mut codec = codec::RespCodec::default();
        codec.authenticated = authenticated;
        let mut buf = bytes::BytesMut::new();
        let mut commands = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(command)) => commands.push(command),
                    Ok(None) => break,
                    Err(e) => return (commands, Some(e.to_string())),
                }
            }
        }
        (commands, None)
    };
    let at = data
        .first()
        .map_or(0, |b| usize::from(*b) % (data.len() + 1));
    for authenticated in [false, true] {
        let whole = read(authenticated, &[data]);
        let split = read(authenticated, &[&data[..at], &data[at..]]);
        assert_eq!(
            whole, split,
            "split at {at}, authenticated: {authenticated}"
        );
        for command in &whole.0 {
            // What authorization reads of it.
            let _ = omnigate::drivers::redis_commands::full_name(command);
        }
    }
}
