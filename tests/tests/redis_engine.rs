//! The redis engine against a real redis-server: the shared conformance
//! suite (the memory engine runs the same), refused and blocking commands,
//! RESP replies, and restarts.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use omnigate_drivers::conformance::{error, redis, value};
use omnigate_drivers::redis::{RedisConfig, RedisDriver};
use omnigate_drivers::{
    Dialect, Error, ExecuteOptions, PoolSettings, Statement, StorageDriver, Value,
};
use omnigate_tests::redis::RedisServer;

fn config(server: &RedisServer) -> RedisConfig {
    RedisConfig {
        url: server.url(0),
        ..RedisConfig::default()
    }
}

async fn engine(server: &RedisServer) -> RedisDriver {
    RedisDriver::connect("cache", config(server)).await.unwrap()
}

#[tokio::test]
async fn passes_the_redis_conformance_suite() {
    let server = RedisServer::start();
    redis::run_all(&engine(&server).await).await;
}

#[tokio::test]
async fn commands_that_would_break_a_pooled_connection_are_refused() {
    let server = RedisServer::start();
    let d = engine(&server).await;
    for command in [
        "SELECT 1",
        "AUTH x",
        "HELLO 3",
        "MULTI",
        "EXEC",
        "WATCH k",
        "SUBSCRIBE news",
        "PSUBSCRIBE n*",
        "MONITOR",
        "CLIENT KILL ID 1",
        "CLIENT SETNAME x",
        "QUIT",
    ] {
        let err = error(&d, Dialect::Redis, command, &[]).await;
        assert!(
            matches!(err, Error::NotSupported { .. }),
            "{command}: {err}"
        );
    }
    let err = error(&d, Dialect::Redis, "SELECT 1", &[]).await;
    assert!(
        err.to_string()
            .contains("the database is set by the engine config"),
        "{err}"
    );
    // Allowed CLIENT subcommands and anything else pass through.
    assert!(matches!(
        value(&d, Dialect::Redis, "CLIENT ID", &[]).await,
        Value::Int(_)
    ));
    assert_eq!(
        value(&d, Dialect::Redis, "XADD s * f v", &[])
            .await
            .as_str()
            .map(|id| id.contains('-')),
        Some(true)
    );
    assert_eq!(
        value(&d, Dialect::Redis, "PING", &[]).await,
        Value::from("PONG")
    );
}

#[tokio::test]
async fn blocking_commands_are_cut_by_the_deadline_without_holding_up_others() {
    let server = RedisServer::start();
    let d = RedisDriver::connect(
        "cache",
        RedisConfig {
            pool: PoolSettings {
                max_connections: 1,
                ..PoolSettings::default()
            },
            ..config(&server)
        },
    )
    .await
    .unwrap();
    let options = ExecuteOptions {
        timeout: Some(Duration::from_millis(300)),
        ..ExecuteOptions::default()
    };
    let blpop = Statement::new("BLPOP nothing 0");
    let blocked = d.execute(Dialect::Redis, &blpop, &options);
    let other = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        value(&d, Dialect::Redis, "SET free yes", &[]).await
    };
    let (blocked, other) = tokio::join!(blocked, other);
    assert!(matches!(blocked, Err(Error::Timeout { .. })), "{blocked:?}");
    assert_eq!(
        other,
        Value::from("OK"),
        "the pooled connection was not blocked"
    );
    // A blocking command that gets its data in time returns it.
    value(&d, Dialect::Redis, "RPUSH q job", &[]).await;
    let got = d
        .execute(Dialect::Redis, &Statement::new("BLPOP q 1"), &options)
        .await
        .unwrap();
    assert_eq!(
        got.rows[0][0],
        Value::List(vec![Value::from("q"), Value::from("job")])
    );
}

/// `execute` says it ends by its deadline on its own (`bounds_execute`),
/// so the gateway sets no second timer: that must hold for every wait in
/// it, including the read-only check's first COMMAND INFO.
#[tokio::test]
async fn execute_ends_by_its_deadline_whatever_it_waits_on() {
    let server = RedisServer::start();
    let d = engine(&server).await;
    assert!(d.bounds_execute());
    server.pause();
    for read_only in [false, true] {
        let options = ExecuteOptions {
            timeout: Some(Duration::from_millis(200)),
            read_only,
            ..ExecuteOptions::default()
        };
        let started = std::time::Instant::now();
        let outcome = d
            .execute(Dialect::Redis, &Statement::new("GET k"), &options)
            .await;
        assert!(
            matches!(outcome, Err(Error::Timeout { after }) if after == Duration::from_millis(200)),
            "{outcome:?}"
        );
        // Not the gateway's backstop (a second past it): the driver's own.
        assert!(
            started.elapsed() < Duration::from_millis(900),
            "{:?}",
            started.elapsed()
        );
    }
    server.resume();
    assert_eq!(
        value(&d, Dialect::Redis, "SET k v", &[]).await,
        Value::from("OK")
    );
}

#[tokio::test]
async fn replies_of_every_shape_map_to_values() {
    let server = RedisServer::start();
    let d = engine(&server).await;
    value(&d, Dialect::Redis, "HSET h a 1", &[]).await;
    assert_eq!(
        value(&d, Dialect::Redis, "HGETALL h", &[]).await,
        Value::List(vec![Value::from("a"), Value::from("1")])
    );
    assert_eq!(
        value(&d, Dialect::Redis, "EVAL 'return 3.5' 0", &[]).await,
        Value::Int(3),
        "Lua numbers truncate in RESP2"
    );
    assert_eq!(
        value(&d, Dialect::Redis, "EVAL 'return {1, \"two\", {3}}' 0", &[]).await,
        Value::List(vec![
            Value::Int(1),
            Value::from("two"),
            Value::List(vec![Value::Int(3)])
        ])
    );
    let err = error(
        &d,
        Dialect::Redis,
        "EVALSHA 0000000000000000000000000000000000000000 0",
        &[],
    )
    .await;
    assert!(
        matches!(err, Error::NotFound(_)),
        "NOSCRIPT is not found: {err}"
    );
    assert_eq!(err.engine_code(), Some("NOSCRIPT"));
    let err = error(&d, Dialect::Redis, "NOSUCHCOMMAND x", &[]).await;
    assert!(matches!(err, Error::InvalidStatement(_)), "{err}");
    let ro = ExecuteOptions {
        read_only: true,
        ..ExecuteOptions::default()
    };
    let err = d
        .execute(Dialect::Redis, &Statement::new("DEL h"), &ro)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ReadOnly(_)) && err.to_string().contains("read_only"),
        "{err}"
    );
    assert!(
        d.execute(Dialect::Redis, &Statement::new("HGET h a"), &ro)
            .await
            .is_ok()
    );
    let described = d
        .describe(&omnigate_drivers::DescribeOptions::default())
        .await
        .unwrap();
    assert_eq!(described[0].name, "db0");
    assert!(
        described[0]
            .attributes
            .contains(&("keys".to_owned(), "1".to_owned())),
        "{described:?}"
    );
}

#[tokio::test]
async fn a_restarted_server_fails_calls_fast_then_recovers_by_itself() {
    let mut server = RedisServer::start();
    let d = engine(&server).await;
    value(&d, Dialect::Redis, "SET k v", &[]).await;
    server.kill();
    omnigate_tests::outage_then_recovery(&d, Dialect::Redis, "PING", || server.restart()).await;
}

#[tokio::test]
#[allow(clippy::approx_constant)] // 3.141 is what DEBUG PROTOCOL double sends
async fn every_resp3_reply_type_maps_to_a_value() {
    let server = RedisServer::start_with(&["--enable-debug-command", "yes"]);
    let resp3 = RedisConfig {
        protocol: omnigate_drivers::redis::Protocol::Resp3,
        ..config(&server)
    };
    let d = RedisDriver::connect("cache", resp3).await.unwrap();
    let debug = |kind: &str| format!("DEBUG PROTOCOL {kind}");
    assert_eq!(
        value(&d, Dialect::Redis, &debug("string"), &[]).await,
        Value::from("Hello World")
    );
    assert_eq!(
        value(&d, Dialect::Redis, &debug("integer"), &[]).await,
        Value::Int(12345)
    );
    assert_eq!(
        value(&d, Dialect::Redis, &debug("double"), &[]).await,
        Value::Float(3.141)
    );
    assert_eq!(
        value(&d, Dialect::Redis, &debug("bignum"), &[]).await,
        Value::Decimal("1234567999999999999999999999999999999".into())
    );
    assert_eq!(
        value(&d, Dialect::Redis, &debug("null"), &[]).await,
        Value::Null
    );
    assert_eq!(
        value(&d, Dialect::Redis, &debug("true"), &[]).await,
        Value::Bool(true)
    );
    assert_eq!(
        value(&d, Dialect::Redis, &debug("false"), &[]).await,
        Value::Bool(false)
    );
    assert_eq!(
        value(&d, Dialect::Redis, &debug("verbatim"), &[]).await,
        Value::from("This is a verbatim\nstring")
    );
    let Value::Map(entries) = value(&d, Dialect::Redis, &debug("map"), &[]).await else {
        panic!("a map")
    };
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0], ("0".into(), Value::Bool(false)));
    let Value::List(items) = value(&d, Dialect::Redis, &debug("set"), &[]).await else {
        panic!("a set as a list")
    };
    assert_eq!(items, vec![Value::Int(0), Value::Int(1), Value::Int(2)]);
    assert_eq!(
        value(&d, Dialect::Redis, &debug("attrib"), &[]).await,
        Value::from("Some real reply following the attribute")
    );
    value(&d, Dialect::Redis, "HSET h f v", &[]).await;
    assert_eq!(
        value(&d, Dialect::Redis, "HGETALL h", &[]).await,
        Value::Map(vec![("f".into(), Value::from("v"))]),
        "RESP3 HGETALL is a map"
    );
}

#[tokio::test]
async fn passwords_databases_and_unix_sockets() {
    let socket_server = RedisServer::start_with(&[
        "--requirepass",
        "s3cret",
        "--unixsocket",
        "redis.sock",
        "--unixsocketperm",
        "700",
    ]);
    let socket = socket_server.dir().join("redis.sock");
    let no_password = RedisDriver::connect("cache", config(&socket_server)).await;
    assert!(
        no_password.is_err(),
        "a server with a password refuses us without it"
    );
    let by_socket = RedisConfig {
        url: format!("unix://{}", socket.display()),
        password: Some("s3cret".into()),
        database: 3,
        ..RedisConfig::default()
    };
    let d = RedisDriver::connect("cache", by_socket).await.unwrap();
    value(&d, Dialect::Redis, "SET in-db-3 yes", &[]).await;
    let tcp = RedisConfig {
        password: Some("s3cret".into()),
        database: 0,
        ..config(&socket_server)
    };
    let db0 = RedisDriver::connect("cache0", tcp).await.unwrap();
    assert_eq!(
        value(&db0, Dialect::Redis, "EXISTS in-db-3", &[]).await,
        Value::Int(0),
        "the database index keeps them apart"
    );
    assert!(!format!("{:?}", config(&socket_server)).contains("s3cret"));
}

#[tokio::test]
async fn tls_to_the_server_is_verified_against_the_configured_ca() {
    let (server, url, ca) = RedisServer::start_with_tls();
    let tls = RedisConfig {
        url: url.clone(),
        ca_file: Some(ca),
        ..RedisConfig::default()
    };
    let d = RedisDriver::connect("cache", tls)
        .await
        .unwrap_or_else(|e| panic!("{e}: {}", server.log()));
    assert_eq!(
        value(&d, Dialect::Redis, "SET over tls", &[]).await,
        Value::from("OK")
    );
    let info = value(&d, Dialect::Redis, "CLIENT INFO", &[]).await;
    assert!(
        info.as_str()
            .is_some_and(|i| i.contains("laddr=127.0.0.1:")),
        "{info:?}"
    );
    // Without the test CA the server's certificate is not trusted.
    let untrusted = RedisConfig {
        url,
        pool: PoolSettings {
            connect_timeout: Duration::from_secs(2),
            ..RedisConfig::default().pool
        },
        ..RedisConfig::default()
    };
    assert!(RedisDriver::connect("cache", untrusted).await.is_err());
}

#[tokio::test]
async fn a_restart_under_load_fails_fast_and_every_task_recovers() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut server = RedisServer::start();
    let d = Arc::new(
        RedisDriver::connect(
            "cache",
            RedisConfig {
                pool: PoolSettings {
                    max_connections: 4,
                    ..PoolSettings::default()
                },
                ..config(&server)
            },
        )
        .await
        .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let restarted = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let (d, stop, restarted) = (Arc::clone(&d), Arc::clone(&stop), Arc::clone(&restarted));
            tokio::spawn(async move {
                let (mut ok_after_restart, mut slowest_error) = (0u32, Duration::ZERO);
                for n in 0..10_000u32 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let statement = Statement::new("SET $1 $2")
                        .bind(format!("k{task}"))
                        .bind(i64::from(n));
                    let started = std::time::Instant::now();
                    match d
                        .execute(Dialect::Redis, &statement, &ExecuteOptions::default())
                        .await
                    {
                        Ok(_) if restarted.load(Ordering::Relaxed) => ok_after_restart += 1,
                        Ok(_) => {}
                        Err(e) => {
                            assert!(matches!(e, Error::Unavailable(_)), "task {task}: {e}");
                            slowest_error = slowest_error.max(started.elapsed());
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                (ok_after_restart, slowest_error)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.restart();
    restarted.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let (ok_after_restart, slowest_error) = task.await.unwrap();
        assert!(
            ok_after_restart > 0,
            "every task works again after the restart"
        );
        assert!(
            slowest_error < Duration::from_secs(2),
            "errors came fast: {slowest_error:?}"
        );
    }
    let stats = d.pool_stats();
    assert!(stats.size <= 4, "no connection storm: {stats:?}");
}
