//! The Redis-protocol (RESP) front end against a real Redis and the
//! embedded memory engine: the `redis` crate's client, redis-cli and
//! redis-benchmark connect to the listener and run commands (binary values,
//! pipelines in order and as one batch, RESP3 after HELLO 3); AUTH, grants,
//! read-only and statement rules hold; MULTI/EXEC is a gateway
//! transaction, joined across engines with the PostgreSQL front end; a
//! client gone mid-MULTI discards it; what the front end refuses it says.
//!
//! - `commands.rs`: commands, errors, pipelines, RESP3, the wire's limits;
//! - `auth.rs`: AUTH, read-only and statement rules;
//! - `tx.rs`: MULTI/EXEC, joining, a transaction across PostgreSQL and
//!   Redis, a client gone mid-MULTI;
//! - `clients.rs`: redis-cli and redis-benchmark;
//! - `attacks.rs`: what a hostile client tried.

#![allow(clippy::unwrap_used)]

mod attacks;
mod auth;
mod clients;
mod commands;
mod tx;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use omnigate::config::{Config, DenyRule, RedisFrontendConfig};
use omnigate_tests::TestGateway;
use omnigate_tests::auth::principal;
use omnigate_tests::redis::RedisServer;
use redis::Value as V;
use redis::aio::MultiplexedConnection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where the commands run.
enum Backend {
    /// A real Redis.
    Redis(RedisServer),
    /// The embedded memory engine.
    Memory,
}

impl Backend {
    fn both() -> Vec<Backend> {
        vec![Backend::Redis(RedisServer::start()), Backend::Memory]
    }

    /// The embedded default, with `cache` on this backend.
    fn config(&self) -> Config {
        match self {
            Backend::Redis(server) => server.gateway_config(),
            Backend::Memory => Config::default(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Backend::Redis(_) => "redis",
            Backend::Memory => "memory",
        }
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// `config` served over gRPC and RESP (engine `cache`, unless the config
/// sets the section); the RESP listener's address.
async fn gateway(mut config: Config) -> (TestGateway, SocketAddr) {
    if config.frontends.redis.is_none() {
        config.frontends.redis = Some(RedisFrontendConfig::new(loopback(), "cache"));
    }
    let gw = TestGateway::with_config(config).await;
    let addr = gw.handle.redis_addr().expect("the RESP front end listens");
    (gw, addr)
}

/// A `redis` crate connection; `auth` is `(user, token)` (user "" for
/// `AUTH token`), RESP3 when `resp3` (HELLO 3 at connect).
async fn try_connect(
    addr: SocketAddr,
    auth: Option<(&str, &str)>,
    resp3: bool,
) -> redis::RedisResult<MultiplexedConnection> {
    let userinfo = auth.map_or(String::new(), |(user, token)| format!("{user}:{token}@"));
    let query = if resp3 { "?protocol=resp3" } else { "" };
    let url = format!("redis://{userinfo}{}:{}/{query}", addr.ip(), addr.port());
    redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await
}

async fn connect(
    addr: SocketAddr,
    auth: Option<(&str, &str)>,
    resp3: bool,
) -> MultiplexedConnection {
    try_connect(addr, auth, resp3)
        .await
        .unwrap_or_else(|e| panic!("the client connects: {e}"))
}

/// Runs a command; its reply or the error.
async fn run(c: &mut MultiplexedConnection, args: &[&[u8]]) -> redis::RedisResult<V> {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async(c).await
}

/// Runs a command that must succeed.
async fn ok(c: &mut MultiplexedConnection, args: &[&[u8]]) -> V {
    run(c, args)
        .await
        .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(args[0])))
}

/// Runs a command that must fail: its error's code and the whole line.
async fn err(c: &mut MultiplexedConnection, args: &[&[u8]]) -> (String, String) {
    match run(c, args).await {
        Ok(v) => panic!(
            "{:?} should fail, answered {v:?}",
            String::from_utf8_lossy(args[0])
        ),
        Err(e) => (
            e.code().unwrap_or_default().to_owned(),
            format!(
                "{} {}",
                e.code().unwrap_or_default(),
                e.detail().unwrap_or_default()
            ),
        ),
    }
}

fn bulk(b: &[u8]) -> V {
    V::BulkString(b.to_vec())
}

fn status(s: &str) -> V {
    V::SimpleString(s.to_owned())
}

/// A request as a client writes it: an array of bulk strings.
fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A bare socket, for what a client library hides: exact error lines,
/// protocol errors, and hanging up mid-transaction.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next `n` replies, each of one line (status, error, integer).
    async fn lines(&mut self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut lines = Vec::new();
        while lines.len() < n {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..end + 2).collect();
                lines.push(String::from_utf8_lossy(&line[..end]).into_owned());
                continue;
            }
            let mut chunk = [0u8; 4096];
            let left = deadline.saturating_duration_since(Instant::now());
            let read = tokio::time::timeout(left, self.stream.read(&mut chunk))
                .await
                .unwrap_or_else(|_| panic!("no reply in time; have {lines:?}"))
                .unwrap();
            assert!(read > 0, "closed before {n} replies: {lines:?}");
            self.buf.extend_from_slice(&chunk[..read]);
        }
        lines
    }

    /// Whether the server closes the connection within 5 s.
    async fn closed(&mut self) -> bool {
        let mut chunk = [0u8; 256];
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// The engine calls `cache` has served so far.
async fn engine_calls(gw: &TestGateway) -> u64 {
    let engines = gw.gateway.all_engines().await;
    let cache = engines.iter().find(|e| e.name == "cache").unwrap();
    cache
        .counters
        .iter()
        .find(|(name, _)| name == "calls")
        .map(|(_, n)| *n)
        .unwrap()
}

/// Principals `app`, `reader` (read-only) and `guarded` (a deny rule).
fn principals() -> BTreeMap<String, omnigate::config::PrincipalConfig> {
    let guarded = omnigate::config::PrincipalConfig {
        deny: vec![DenyRule {
            name: Some("no-secrets".into()),
            engine: None,
            kind: None,
            dialect: None,
            pattern: "^SET secret:".into(),
        }],
        ..principal("guarded-token")
    };
    BTreeMap::from([
        ("app".to_owned(), principal("app-token")),
        (
            "reader".to_owned(),
            omnigate::config::PrincipalConfig {
                read_only: true,
                ..principal("reader-token")
            },
        ),
        ("guarded".to_owned(), guarded),
        (
            "elsewhere".to_owned(),
            omnigate::config::PrincipalConfig {
                engines: Some(vec!["main".into()]),
                ..principal("elsewhere-token")
            },
        ),
    ])
}
