//! The redis engine's shared connection (its link) against a real
//! redis-server: replies stay matched to their callers whatever callers
//! give up, a reply the decoder cannot read fails its caller alone, and a
//! connection the server closes is replaced.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use omnigate_drivers::redis::{Protocol, RedisConfig, RedisDriver};
use omnigate_drivers::{Dialect, Error, ExecuteOptions, Statement, StorageDriver, Value};
use omnigate_tests::redis::RedisServer;

async fn engine(server: &RedisServer, protocol: Protocol) -> Arc<RedisDriver> {
    let config = RedisConfig {
        url: server.url(0),
        protocol,
        ..RedisConfig::default()
    };
    Arc::new(RedisDriver::connect("cache", config).await.unwrap())
}

async fn run(d: &RedisDriver, text: &str, timeout: Option<Duration>) -> Result<Value, Error> {
    let options = ExecuteOptions {
        timeout,
        ..ExecuteOptions::default()
    };
    let result = d
        .execute(Dialect::Redis, &Statement::new(text), &options)
        .await?;
    Ok(result.rows.first().unwrap()[0].clone())
}

/// Callers cut by deadlines of a few microseconds, among callers that
/// wait: every reply that arrives is the one its caller asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_stay_matched_to_their_callers_when_callers_go_away() {
    let server = RedisServer::start();
    let d = engine(&server, Protocol::Resp2).await;
    for i in 0..200 {
        run(&d, &format!("SET key:{i} value:{i}"), None)
            .await
            .unwrap();
    }
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let d = Arc::clone(&d);
            tokio::spawn(async move {
                let mut cut = 0;
                for round in 0..50 {
                    let key = (i + round) % 200;
                    // Every other call gives up after a few microseconds,
                    // mostly after its command went out.
                    let timeout = (round % 2 == 0).then(|| Duration::from_micros(1 + round % 40));
                    match run(&d, &format!("GET key:{key}"), timeout).await {
                        Ok(got) => assert_eq!(got, Value::from(format!("value:{key}"))),
                        Err(Error::Timeout { .. }) => cut += 1,
                        Err(e) => panic!("GET key:{key}: {e}"),
                    }
                }
                cut
            })
        })
        .collect();
    let mut cut = 0;
    for task in tasks {
        cut += task.await.unwrap();
    }
    println!("{cut} of 10000 calls cut by their deadline");
    assert!(cut > 0, "some calls were cut: the test tests something");
    assert_eq!(
        run(&d, "GET key:7", None).await.unwrap(),
        Value::from("value:7")
    );
}

/// A script can return a RESP3 map keyed by an array, which the protocol
/// decoder refuses: its caller gets an error; the connection, and every
/// other caller on it, go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_the_decoder_refuses_fails_its_caller_alone() {
    let server = RedisServer::start();
    let d = engine(&server, Protocol::Resp3).await;
    run(&d, "SET k v", None).await.unwrap();
    // (bb8 fills its pool to min_idle in the background after startup.)
    tokio::time::sleep(Duration::from_millis(500)).await;
    let created = d.pool_stats().created;
    let others: Vec<_> = (0..8)
        .map(|_| {
            let d = Arc::clone(&d);
            tokio::spawn(async move {
                for _ in 0..200 {
                    assert_eq!(run(&d, "GET k", None).await.unwrap(), Value::from("v"));
                }
            })
        })
        .collect();
    for _ in 0..20 {
        let err = run(&d, "EVAL \"return {map={[{1}]='v'}}\" 0", None)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Internal(_)) && err.to_string().contains("could not be read"),
            "{err}"
        );
        // The message is fixed text: nothing of the bytes read (other
        // callers' replies follow the refused one in the buffer).
        assert!(err.to_string().len() < 300, "{err}");
        assert!(!err.to_string().contains("13, 10"), "{err}");
    }
    for task in others {
        task.await.unwrap();
    }
    // The link that served it all is the one from before: no reconnect.
    let stats = d.pool_stats();
    assert_eq!(stats.created, created, "{stats:?}");
}

/// The server closes every client connection: calls on the link fail as
/// unavailable, never with another caller's reply, and the next calls
/// open a new link by themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_the_server_closes_is_replaced() {
    let server = RedisServer::start();
    let d = engine(&server, Protocol::Resp2).await;
    run(&d, "SET k v", None).await.unwrap();
    let killer = engine(&server, Protocol::Resp2).await;
    let killed = run(&killer, "CLIENT KILL TYPE normal SKIPME yes", None).await;
    // (CLIENT KILL is refused on a shared connection: the killer's own.)
    assert!(
        matches!(killed, Err(Error::NotSupported { .. })),
        "{killed:?}"
    );
    let mut admin = std::process::Command::new("redis-cli");
    admin.args([
        "-p",
        &server.port().to_string(),
        "CLIENT",
        "KILL",
        "TYPE",
        "normal",
    ]);
    let out = admin
        .output()
        .expect("redis-cli (apt-get install redis-tools)");
    assert!(out.status.success(), "{out:?}");
    let mut recovered = false;
    for _ in 0..50 {
        match run(&d, "GET k", None).await {
            Ok(got) => {
                assert_eq!(got, Value::from("v"));
                recovered = true;
                break;
            }
            Err(Error::Unavailable(_)) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => panic!("only unavailable while the link is replaced: {e}"),
        }
    }
    assert!(recovered, "a new link was opened");
}

/// A script's reply nested thousands of levels deep (Redis stops at its
/// Lua stack limit, about 8,000): an error for its caller, not a stack
/// overflow, and the connection goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_nested_past_the_value_models_depth_is_refused() {
    let server = RedisServer::start();
    let d = engine(&server, Protocol::Resp2).await;
    let err = run(
        &d,
        "EVAL \"local t = 1 for i=1,100000 do t = {t} end return t\" 0",
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Internal(_)), "{err}");
    run(&d, "SET k v", None).await.unwrap();
    assert_eq!(run(&d, "GET k", None).await.unwrap(), Value::from("v"));
}

/// Values larger than one write's lot (256 KiB), from many callers at
/// once: each is written in a lot of its own, whole, and read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_larger_than_a_write_go_whole_and_in_order() {
    let server = RedisServer::start();
    let d = engine(&server, Protocol::Resp2).await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let d = Arc::clone(&d);
            tokio::spawn(async move {
                let value = format!("{i}").repeat(300 * 1024);
                let set = Statement {
                    params: vec![Value::from(format!("big:{i}")), Value::from(value.clone())],
                    ..Statement::new("SET $1 $2")
                };
                d.execute(Dialect::Redis, &set, &ExecuteOptions::default())
                    .await
                    .unwrap();
                assert_eq!(
                    run(&d, &format!("GET big:{i}"), None).await.unwrap(),
                    Value::from(value)
                );
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}
