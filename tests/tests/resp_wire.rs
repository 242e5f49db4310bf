//! The Redis-protocol (RESP) front end against a real Redis and the
//! embedded memory engine: the `redis` crate's client, redis-cli and
//! redis-benchmark connect to the listener and run commands (binary values,
//! pipelines in order and as one batch, RESP3 after HELLO 3); AUTH, grants,
//! read-only and statement rules hold; MULTI/EXEC is a gateway
//! transaction, joined across engines with the PostgreSQL front end; a
//! client gone mid-MULTI discards it; what the front end refuses it says.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use omnigate::config::{
    Config, DenyRule, DriverConfig, PostgresFrontendConfig, RedisFrontendConfig,
};
use omnigate::security::tokens;
use omnigate_tests::TestGateway;
use omnigate_tests::auth::principal;
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::{RedisServer, tool};
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

#[tokio::test]
async fn commands_binary_values_and_errors_on_redis_and_memory() {
    for backend in Backend::both() {
        let on = backend.name();
        let (_gw, addr) = gateway(backend.config()).await;
        let mut c = connect(addr, None, false).await;
        assert_eq!(
            ok(&mut c, &[b"SET", b"greeting", b"hello"]).await,
            V::Okay,
            "{on}"
        );
        assert_eq!(
            ok(&mut c, &[b"GET", b"greeting"]).await,
            bulk(b"hello"),
            "{on}"
        );
        assert_eq!(ok(&mut c, &[b"GET", b"missing"]).await, V::Nil, "{on}");
        assert_eq!(ok(&mut c, &[b"INCR", b"n"]).await, V::Int(1), "{on}");
        assert_eq!(ok(&mut c, &[b"INCR", b"n"]).await, V::Int(2), "{on}");
        assert_eq!(
            ok(&mut c, &[b"HSET", b"h", b"f1", b"v1", b"f2", b"v2"]).await,
            V::Int(2),
            "{on}"
        );
        let hash: HashMap<String, String> = redis::cmd("HGETALL")
            .arg("h")
            .query_async(&mut c)
            .await
            .unwrap();
        assert_eq!(
            hash,
            HashMap::from([("f1".into(), "v1".into()), ("f2".into(), "v2".into())]),
            "{on}"
        );
        // Any bytes, in keys and values: nothing is parsed as text.
        let blob: Vec<u8> = (0..=255u8).chain(*b"\r\n$1 \"q\" 'x'").collect();
        let key = b"bin\0\xff $1";
        assert_eq!(ok(&mut c, &[b"SET", key, &blob]).await, V::Okay, "{on}");
        assert_eq!(ok(&mut c, &[b"GET", key]).await, bulk(&blob), "{on}");
        assert_eq!(
            ok(&mut c, &[b"STRLEN", key]).await,
            V::Int(blob.len() as i64)
        );
        // The engine's errors as the engine said them.
        let (code, line) = err(&mut c, &[b"INCR", b"h"]).await;
        assert_eq!(code, "WRONGTYPE", "{on}: {line}");
        assert!(line.contains("wrong kind of value"), "{on}: {line}");
        let (code, line) = err(&mut c, &[b"INCR", b"greeting"]).await;
        assert_eq!(code, "ERR", "{on}: {line}");
        assert!(line.contains("not an integer"), "{on}: {line}");
        // The connection's own commands.
        assert_eq!(ok(&mut c, &[b"PING"]).await, status("PONG"), "{on}");
        assert_eq!(ok(&mut c, &[b"PING", b"hi"]).await, bulk(b"hi"), "{on}");
        assert_eq!(
            ok(&mut c, &[b"ECHO", b"a\r\nb"]).await,
            bulk(b"a\r\nb"),
            "{on}"
        );
        assert_eq!(
            ok(&mut c, &[b"CLIENT", b"SETNAME", b"app-1"]).await,
            V::Okay
        );
        assert_eq!(ok(&mut c, &[b"CLIENT", b"GETNAME"]).await, bulk(b"app-1"));
        assert!(matches!(ok(&mut c, &[b"CLIENT", b"ID"]).await, V::Int(id) if id > 0));
        assert_eq!(ok(&mut c, &[b"SELECT", b"0"]).await, V::Okay, "{on}");
        let (_, line) = err(&mut c, &[b"SELECT", b"1"]).await;
        assert!(line.contains("SELECT 0"), "{on}: {line}");
        // Refused, saying why.
        let (code, line) = err(&mut c, &[b"BLPOP", b"queue", b"0"]).await;
        assert!(code == "ERR" && line.contains("blocks"), "{on}: {line}");
        let (_, line) = err(&mut c, &[b"WATCH", b"greeting"]).await;
        assert!(line.contains("WATCH is not served"), "{on}: {line}");
        let (_, line) = err(&mut c, &[b"CLIENT", b"KILL", b"ID", b"1"]).await;
        assert!(line.contains("pooled connections"), "{on}: {line}");
        // Pub/sub and MONITOR would make the connection a stream.
        let mut raw = Raw::connect(addr).await;
        raw.send(&resp(&[b"SUBSCRIBE", b"news"])).await;
        raw.send(&resp(&[b"MONITOR"])).await;
        raw.send(&resp(&[b"PUBLISH", b"news", b"x"])).await;
        let lines = raw.lines(3).await;
        assert!(
            lines[0].starts_with("-ERR SUBSCRIBE is not served"),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("-ERR MONITOR is not served"),
            "{lines:?}"
        );
        // PUBLISH goes to the engine, which answers it (the memory
        // engine has no pub/sub).
        match backend {
            Backend::Redis(_) => assert_eq!(lines[2], ":0"),
            Backend::Memory => assert!(lines[2].contains("memory engine"), "{lines:?}"),
        }
    }
}

#[tokio::test]
async fn pipelines_answer_in_order_and_go_to_the_engine_as_one_batch() {
    for backend in Backend::both() {
        let on = backend.name();
        let (gw, addr) = gateway(backend.config()).await;
        let mut c = connect(addr, None, false).await;
        let mut pipe = redis::pipe();
        for i in 0..200 {
            pipe.cmd("SET")
                .arg(format!("p{i}"))
                .arg(format!("v{i}"))
                .ignore();
            pipe.cmd("INCR").arg("ctr");
            pipe.cmd("GET").arg(format!("p{i}"));
        }
        let replies: Vec<V> = pipe.query_async(&mut c).await.unwrap();
        assert_eq!(replies.len(), 400, "{on}");
        for (i, pair) in replies.chunks(2).enumerate() {
            let expected = [V::Int(i as i64 + 1), bulk(format!("v{i}").as_bytes())];
            assert_eq!(pair, expected, "{on}");
        }
        // One write of 100 commands: answered in order, in far fewer
        // engine calls than commands.
        let before = engine_calls(&gw).await;
        let mut raw = Raw::connect(addr).await;
        let mut lot = Vec::new();
        for _ in 0..100 {
            lot.extend(resp(&[b"INCR", b"lot"]));
        }
        raw.send(&lot).await;
        let lines = raw.lines(100).await;
        let expected: Vec<String> = (1..=100).map(|n| format!(":{n}")).collect();
        assert_eq!(lines, expected, "{on}");
        let calls = engine_calls(&gw).await - before;
        assert!(
            calls <= 10,
            "{on}: 100 pipelined commands took {calls} engine calls"
        );
    }
}

#[tokio::test]
async fn resp3_after_hello_3_with_the_engine_s_types() {
    // Memory: HELLO 3 switches the session; nil is RESP3's null.
    let (_gw, addr) = gateway(Config::default()).await;
    let mut c = connect(addr, None, true).await;
    let V::Map(hello) = ok(&mut c, &[b"HELLO", b"3"]).await else {
        panic!("HELLO 3 answers a map");
    };
    assert!(hello.contains(&(bulk(b"proto"), V::Int(3))), "{hello:?}");
    assert_eq!(ok(&mut c, &[b"GET", b"nothing"]).await, V::Nil);
    assert_eq!(ok(&mut c, &[b"SET", b"k", b"v"]).await, V::Okay);
    // HELLO 3's own reply is in RESP3 already: a map of seven fields.
    let mut raw = Raw::connect(addr).await;
    raw.send(&resp(&[b"HELLO", b"3"])).await;
    assert_eq!(raw.lines(1).await, ["%7"]);

    // A Redis engine spoken to in RESP3: its maps and doubles reach a
    // RESP3 client as such, and a RESP2 client as Redis sends them.
    let server = RedisServer::start();
    let mut config = server.gateway_config();
    if let Some(DriverConfig::Redis(redis)) = config.engines.get_mut("cache").map(|e| &mut e.driver)
    {
        redis.protocol = omnigate::drivers::redis::Protocol::Resp3;
    }
    let (_gw, addr) = gateway(config).await;
    let mut three = connect(addr, None, true).await;
    ok(&mut three, &[b"HSET", b"h", b"f", b"v"]).await;
    ok(&mut three, &[b"ZADD", b"z", b"1.5", b"m"]).await;
    assert_eq!(
        ok(&mut three, &[b"HGETALL", b"h"]).await,
        V::Map(vec![(bulk(b"f"), bulk(b"v"))])
    );
    assert_eq!(
        ok(&mut three, &[b"ZSCORE", b"z", b"m"]).await,
        V::Double(1.5)
    );
    let mut two = connect(addr, None, false).await;
    assert_eq!(
        ok(&mut two, &[b"HGETALL", b"h"]).await,
        V::Array(vec![bulk(b"f"), bulk(b"v")])
    );
    assert_eq!(ok(&mut two, &[b"ZSCORE", b"z", b"m"]).await, bulk(b"1.5"));
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
    ])
}

#[tokio::test]
async fn auth_read_only_and_deny_rules_hold_over_resp() {
    for backend in Backend::both() {
        let on = backend.name();
        let mut config = backend.config();
        config.principals = principals();
        let (_gw, addr) = gateway(config).await;

        let mut raw = Raw::connect(addr).await;
        raw.send(&resp(&[b"GET", b"k"])).await;
        raw.send(&resp(&[b"PING"])).await;
        raw.send(&resp(&[b"AUTH", b"not-a-token"])).await;
        raw.send(&resp(&[b"AUTH", b"reader", b"app-token"])).await;
        raw.send(&resp(&[b"AUTH", b"app-token"])).await;
        raw.send(&resp(&[b"SET", b"k", b"1"])).await;
        raw.send(&resp(&[b"RESET"])).await;
        raw.send(&resp(&[b"GET", b"k"])).await;
        let lines = raw.lines(8).await;
        assert_eq!(lines[0], "-NOAUTH Authentication required.", "{on}");
        assert_eq!(lines[1], "-NOAUTH Authentication required.", "{on}");
        let wrong = "-WRONGPASS invalid username-password pair or user is disabled.";
        assert_eq!([&lines[2], &lines[3]], [wrong, wrong], "{on}");
        assert_eq!(
            [&lines[4], &lines[5], &lines[6]],
            ["+OK", "+OK", "+RESET"],
            "{on}"
        );
        assert_eq!(
            lines[7], "-NOAUTH Authentication required.",
            "{on}: RESET forgets AUTH"
        );

        // The token alone, the principal and its token, HELLO 3 AUTH.
        let mut app = connect(addr, Some(("", "app-token")), false).await;
        assert_eq!(ok(&mut app, &[b"GET", b"k"]).await, bulk(b"1"), "{on}");
        let mut named = connect(addr, Some(("app", "app-token")), false).await;
        assert_eq!(ok(&mut named, &[b"GET", b"k"]).await, bulk(b"1"), "{on}");
        let mut three = connect(addr, Some(("app", "app-token")), true).await;
        assert_eq!(ok(&mut three, &[b"GET", b"k"]).await, bulk(b"1"), "{on}");
        assert!(
            try_connect(addr, Some(("app", "reader-token")), false)
                .await
                .is_err()
        );

        // A read-only principal reads and may not write.
        let mut reader = connect(addr, Some(("reader", "reader-token")), false).await;
        assert_eq!(ok(&mut reader, &[b"GET", b"k"]).await, bulk(b"1"), "{on}");
        let (code, line) = err(&mut reader, &[b"SET", b"k", b"2"]).await;
        assert_eq!(code, "NOPERM", "{on}: {line}");
        assert!(line.contains("principals.reader.read_only"), "{on}: {line}");
        // In a pipeline too: each command its own reply.
        let replies: Vec<V> = redis::pipe()
            .cmd("GET")
            .arg("k")
            .cmd("INCR")
            .arg("k")
            .cmd("GET")
            .arg("k")
            .ignore_errors()
            .query_async(&mut reader)
            .await
            .unwrap();
        assert_eq!(replies[0], bulk(b"1"), "{on}");
        assert!(
            matches!(&replies[1], V::ServerError(e) if e.code() == "NOPERM"),
            "{on}: {replies:?}"
        );
        assert_eq!(replies[2], bulk(b"1"), "{on}");
        // Nor in a transaction: refused when queued, and EXEC applies
        // nothing.
        assert_eq!(ok(&mut reader, &[b"MULTI"]).await, V::Okay);
        let (code, _) = err(&mut reader, &[b"SET", b"k", b"3"]).await;
        assert_eq!(code, "NOPERM", "{on}");
        let (code, _) = err(&mut reader, &[b"EXEC"]).await;
        assert_eq!(code, "EXECABORT", "{on}");
        assert_eq!(ok(&mut app, &[b"GET", b"k"]).await, bulk(b"1"), "{on}");

        // A statement rule, matched on the command, names itself.
        let mut guarded = connect(addr, Some(("guarded", "guarded-token")), false).await;
        let (code, line) = err(&mut guarded, &[b"SET", b"secret:x", b"1"]).await;
        assert_eq!(code, "NOPERM", "{on}: {line}");
        assert!(line.contains("no-secrets"), "{on}: {line}");
        assert_eq!(
            ok(&mut guarded, &[b"SET", b"public:x", b"1"]).await,
            V::Okay
        );
        assert_eq!(ok(&mut app, &[b"GET", b"secret:x"]).await, V::Nil, "{on}");
        // An admin command is refused for a principal without the grant.
        let (code, _) = err(&mut app, &[b"FLUSHALL"]).await;
        assert_eq!(code, "NOPERM", "{on}");
    }
}

#[tokio::test]
async fn multi_exec_commits_and_discard_discards() {
    for backend in Backend::both() {
        let on = backend.name();
        let (_gw, addr) = gateway(backend.config()).await;
        let mut c = connect(addr, None, false).await;
        ok(&mut c, &[b"SET", b"seen", b"before"]).await;
        // EXEC answers, in order, the replies queued: a write's is the
        // QUEUED its transaction gave; a read's is what it read then
        // (committed state).
        let replies: Vec<V> = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg("m1")
            .arg("v1")
            .cmd("INCRBY")
            .arg("m2")
            .arg(5)
            .cmd("GET")
            .arg("seen")
            .cmd("GET")
            .arg("m1")
            .query_async(&mut c)
            .await
            .unwrap();
        assert_eq!(
            replies,
            [status("QUEUED"), status("QUEUED"), bulk(b"before"), V::Nil],
            "{on}"
        );
        assert_eq!(ok(&mut c, &[b"GET", b"m1"]).await, bulk(b"v1"), "{on}");
        assert_eq!(ok(&mut c, &[b"GET", b"m2"]).await, bulk(b"5"), "{on}");

        assert_eq!(ok(&mut c, &[b"MULTI"]).await, V::Okay);
        let V::BulkString(id) = ok(&mut c, &[b"OMNIGATE.TX", b"ID"]).await else {
            panic!("{on}: the transaction has an id");
        };
        assert!(!id.is_empty());
        assert_eq!(ok(&mut c, &[b"SET", b"d1", b"x"]).await, status("QUEUED"));
        let (_, line) = err(&mut c, &[b"MULTI"]).await;
        assert!(line.contains("can not be nested"), "{on}: {line}");
        assert_eq!(ok(&mut c, &[b"DISCARD"]).await, V::Okay);
        assert_eq!(
            ok(&mut c, &[b"GET", b"d1"]).await,
            V::Nil,
            "{on}: discarded"
        );
        assert_eq!(ok(&mut c, &[b"OMNIGATE.TX", b"ID"]).await, V::Nil);

        // A command refused while queuing: EXEC applies nothing.
        assert_eq!(ok(&mut c, &[b"MULTI"]).await, V::Okay);
        assert_eq!(ok(&mut c, &[b"SET", b"e1", b"x"]).await, status("QUEUED"));
        err(&mut c, &[b"INCR"]).await;
        let (code, _) = err(&mut c, &[b"EXEC"]).await;
        assert_eq!(code, "EXECABORT", "{on}");
        assert_eq!(ok(&mut c, &[b"GET", b"e1"]).await, V::Nil, "{on}");

        let (_, line) = err(&mut c, &[b"EXEC"]).await;
        assert!(line.contains("EXEC without MULTI"), "{on}: {line}");
        let (_, line) = err(&mut c, &[b"DISCARD"]).await;
        assert!(line.contains("DISCARD without MULTI"), "{on}: {line}");
    }
}

/// A principal whose token also logs in over the PostgreSQL wire.
fn wire_principal(token: &str) -> omnigate::config::PrincipalConfig {
    omnigate::config::PrincipalConfig {
        scram_sha256: Some(tokens::scram_verifier(token)),
        ..principal(token)
    }
}

async fn pg_connect(addr: SocketAddr) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(
        &format!(
            "host={} port={} user=app password=app-token dbname=main-db connect_timeout=5",
            addr.ip(),
            addr.port()
        ),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    client
}

async fn pg_count(pg: &tokio_postgres::Client, id: i32) -> String {
    let rows = pg
        .simple_query(&format!("SELECT count(*) FROM orders WHERE id = {id}"))
        .await
        .unwrap();
    rows.into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
        .unwrap()
}

async fn pg_tx_id(pg: &tokio_postgres::Client) -> String {
    let rows = pg.simple_query("SHOW omnigate.tx_id").await.unwrap();
    rows.into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
        .unwrap()
}

#[tokio::test]
async fn a_transaction_spans_postgres_over_its_wire_and_redis_over_resp() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let mut config = omnigate_tests::auth::config(
        &pg,
        &redis,
        BTreeMap::from([("app".to_owned(), wire_principal("app-token"))]),
    );
    config.frontends.postgres = Some(PostgresFrontendConfig::new(loopback()));
    let (gw, addr) = gateway(config).await;
    let pg_addr = gw.handle.postgres_addr().unwrap();
    let sql = pg_connect(pg_addr).await;
    let reader = pg_connect(pg_addr).await;
    sql.simple_query("CREATE TABLE orders (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let mut c = connect(addr, Some(("", "app-token")), false).await;

    // Begun over the PostgreSQL wire, joined over RESP; PostgreSQL's
    // COMMIT or ROLLBACK ends both parts.
    for (commit, id) in [(true, 1), (false, 2)] {
        sql.simple_query(&format!("BEGIN; INSERT INTO orders VALUES ({id})"))
            .await
            .unwrap();
        let tx = pg_tx_id(&sql).await;
        ok(&mut c, &[b"OMNIGATE.TX", b"JOIN", tx.as_bytes()]).await;
        let key = format!("order:{id}");
        assert_eq!(
            ok(&mut c, &[b"SET", key.as_bytes(), b"placed"]).await,
            status("QUEUED"),
            "a write in the transaction waits for its commit"
        );
        assert_eq!(ok(&mut c, &[b"GET", key.as_bytes()]).await, V::Nil);
        sql.simple_query(if commit { "COMMIT" } else { "ROLLBACK" })
            .await
            .unwrap();
        assert_eq!(ok(&mut c, &[b"OMNIGATE.TX", b"LEAVE"]).await, V::Okay);
        let value = ok(&mut c, &[b"GET", key.as_bytes()]).await;
        let rows = pg_count(&reader, id).await;
        if commit {
            assert_eq!((value, rows.as_str()), (bulk(b"placed"), "1"));
        } else {
            assert_eq!((value, rows.as_str()), (V::Nil, "0"));
        }
    }

    // Begun over RESP by MULTI, joined over the wire; RESP's EXEC or
    // DISCARD ends both parts.
    for (commit, id) in [(true, 3), (false, 4)] {
        ok(&mut c, &[b"MULTI"]).await;
        let V::BulkString(tx) = ok(&mut c, &[b"OMNIGATE.TX", b"ID"]).await else {
            panic!("an id");
        };
        let tx = String::from_utf8(tx).unwrap();
        sql.simple_query(&format!(
            "SET omnigate.tx_id = '{tx}'; INSERT INTO orders VALUES ({id})"
        ))
        .await
        .unwrap();
        let key = format!("order:{id}");
        ok(&mut c, &[b"SET", key.as_bytes(), b"placed"]).await;
        assert_eq!(pg_count(&reader, id).await, "0", "not committed yet");
        let end: &[u8] = if commit { b"EXEC" } else { b"DISCARD" };
        let ended = ok(&mut c, &[end]).await;
        if commit {
            assert_eq!(ended, V::Array(vec![status("QUEUED")]));
        }
        // The wire session learns its transaction ended when it next speaks.
        sql.simple_query("ROLLBACK").await.unwrap();
        let value = ok(&mut c, &[b"GET", key.as_bytes()]).await;
        let rows = pg_count(&reader, id).await;
        if commit {
            assert_eq!((value, rows.as_str()), (bulk(b"placed"), "1"));
        } else {
            assert_eq!((value, rows.as_str()), (V::Nil, "0"));
        }
    }
    assert_eq!(gw.gateway.open_transactions(), 0);
}

#[tokio::test]
async fn a_client_gone_mid_multi_discards_and_a_joined_transaction_stays_its_owners() {
    for backend in Backend::both() {
        let on = backend.name();
        let (mut gw, addr) = gateway(backend.config()).await;
        let mut leaver = Raw::connect(addr).await;
        leaver.send(&resp(&[b"MULTI"])).await;
        leaver.send(&resp(&[b"SET", b"gone", b"1"])).await;
        assert_eq!(leaver.lines(2).await, ["+OK", "+QUEUED"], "{on}");
        assert_eq!(gw.gateway.open_transactions(), 1, "{on}");
        drop(leaver);
        let deadline = Instant::now() + Duration::from_secs(10);
        while gw.gateway.open_transactions() > 0 {
            assert!(
                Instant::now() < deadline,
                "{on}: the gone client's MULTI is still open"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut c = connect(addr, None, false).await;
        assert_eq!(ok(&mut c, &[b"GET", b"gone"]).await, V::Nil, "{on}");

        // A transaction joined without MULTI is its owner's to end.
        let tx = omnigate_tests::begin_tx(&mut gw.client, None).await;
        let mut joiner = Raw::connect(addr).await;
        joiner
            .send(&resp(&[b"OMNIGATE.TX", b"JOIN", tx.as_bytes()]))
            .await;
        joiner.send(&resp(&[b"SET", b"joined", b"1"])).await;
        assert_eq!(joiner.lines(2).await, ["+OK", "+QUEUED"], "{on}");
        drop(joiner);
        tokio::time::sleep(Duration::from_millis(300)).await;
        omnigate_tests::commit_tx(&mut gw.client, &tx)
            .await
            .unwrap();
        assert_eq!(ok(&mut c, &[b"GET", b"joined"]).await, bulk(b"1"), "{on}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_and_redis_benchmark_work_through_the_front_end() {
    for backend in Backend::both() {
        let on = backend.name();
        let mut config = backend.config();
        config.principals = principals();
        let (_gw, addr) = gateway(config).await;
        let port = addr.port().to_string();
        // The clients block: they run beside the runtime that serves them.
        let cli = {
            let port = port.clone();
            move |args: &[&str]| {
                let out = std::process::Command::new(tool("redis-cli"))
                    .args(["-h", "127.0.0.1", "-p", &port, "--no-auth-warning"])
                    .args(args)
                    .output()
                    .expect("redis-cli runs");
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
            }
        };
        let said = tokio::task::spawn_blocking(move || {
            [
                cli(&["-a", "app-token", "SET", "cli:k", "a b"]),
                cli(&["--user", "app", "--pass", "app-token", "GET", "cli:k"]),
                cli(&["GET", "cli:k"]),
                cli(&["-3", "-a", "app-token", "HELLO", "3"]),
                cli(&["-a", "reader-token", "SET", "cli:k", "c"]),
            ]
        })
        .await
        .unwrap();
        assert_eq!(said[0].trim(), "OK", "{on}: {said:?}");
        assert_eq!(said[1].trim(), "a b", "{on}: {said:?}");
        assert!(said[2].contains("NOAUTH"), "{on}: {said:?}");
        assert!(
            said[3].contains("proto") && said[3].contains('3'),
            "{on}: {said:?}"
        );
        assert!(said[4].contains("NOPERM"), "{on}: {said:?}");

        let bench = tokio::task::spawn_blocking(move || {
            std::process::Command::new(tool("redis-benchmark"))
                .args(["-h", "127.0.0.1", "-p", &port, "-a", "app-token"])
                .args(["-t", "get,set", "-n", "2000", "-c", "4", "-q"])
                .output()
                .expect("redis-benchmark runs")
        })
        .await
        .unwrap();
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&bench.stdout),
            String::from_utf8_lossy(&bench.stderr)
        );
        assert!(bench.status.success(), "{on}: {out}");
        for test in ["SET: ", "GET: "] {
            assert!(
                out.lines()
                    .any(|l| l.contains(test) && l.contains("requests per second")),
                "{on}: {out}"
            );
        }
        assert!(!out.contains("Error"), "{on}: {out}");
        // Its SETs went through: the key it writes holds its 3-byte value.
        let mut c = connect(addr, Some(("", "app-token")), false).await;
        assert_eq!(
            ok(&mut c, &[b"STRLEN", b"key:__rand_int__"]).await,
            V::Int(3),
            "{on}"
        );
    }
}

#[tokio::test]
async fn protocol_errors_limits_and_a_wrong_target() {
    let mut config = Config::default();
    let mut section = RedisFrontendConfig::new(loopback(), "cache");
    section.max_connections = 1;
    section.idle_timeout = Duration::from_secs(2);
    config.frontends.redis = Some(section);
    let (_gw, addr) = gateway(config).await;

    // Inline commands, as typed into telnet; then a malformed request is
    // answered and the connection closed.
    let mut raw = Raw::connect(addr).await;
    raw.send(b"PING\r\nSET k \"a b\"\r\nSTRLEN k\r\n").await;
    assert_eq!(raw.lines(3).await, ["+PONG", "+OK", ":3"]);
    // One client at most: the next is told and closed.
    let mut second = Raw::connect(addr).await;
    let refused = second.lines(1).await;
    assert_eq!(refused, ["-ERR max number of clients reached"]);
    assert!(second.closed().await);
    raw.send(b"*1\r\n$x\r\n").await;
    let lines = raw.lines(1).await;
    assert!(lines[0].starts_with("-ERR Protocol error"), "{lines:?}");
    assert!(raw.closed().await);
    // Its slot is free again (once its task has ended); a silent client
    // is closed at idle_timeout.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut idle = loop {
        let mut next = Raw::connect(addr).await;
        // (A refused connection may be closed before the PING is written.)
        let _ = next.stream.write_all(&resp(&[b"PING"])).await;
        if next.lines(1).await == ["+PONG"] {
            break next;
        }
        assert!(Instant::now() < deadline, "the slot was not freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(idle.closed().await, "closed after idle_timeout");

    // A target that is not an engine of the redis dialect stops startup.
    let mut config = Config::default();
    config.server.listen = loopback();
    config.frontends.redis = Some(RedisFrontendConfig::new(loopback(), "main"));
    let gateway = omnigate::Gateway::builder()
        .config(config.clone())
        .build()
        .await
        .unwrap();
    let err = omnigate_frontends::grpc::server::start(gateway, &config.server)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("frontends.redis.target") && err.contains("sqlite"),
        "{err}"
    );
}
