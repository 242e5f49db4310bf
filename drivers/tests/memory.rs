//! The memory engine against the `redis` conformance suite, plus what only
//! it has (periodic eviction, NotSupported commands).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use omnigate_drivers::conformance::{self, redis};
use omnigate_drivers::memory::{MemoryConfig, MemoryDriver};
use omnigate_drivers::{Dialect, Error, ExecuteOptions, Health, Statement, StorageDriver, Value};

fn engine() -> MemoryDriver {
    MemoryDriver::new(
        "cache",
        MemoryConfig {
            eviction_interval: Duration::from_millis(20),
        },
    )
}

#[tokio::test]
async fn passes_the_redis_conformance_suite() {
    redis::run_all(&engine()).await;
}

#[tokio::test]
async fn evicts_expired_keys_without_access() {
    let d = engine();
    for n in 0..50 {
        conformance::value(&d, Dialect::Redis, &format!("SET e:{n} v PX 1000"), &[]).await;
    }
    let keys = |d: &MemoryDriver| {
        d.counters()
            .into_iter()
            .find(|(k, _)| k == "keys")
            .unwrap()
            .1
    };
    assert_eq!(keys(&d), 50);
    // The keys expire after 1 s and the periodic task runs every 100 ms:
    // 2 s leaves it ten passes even on a busy machine. (Counters are not
    // read meanwhile: reading them evicts expired keys lazily.)
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let evicted = d
        .counters()
        .into_iter()
        .find(|(k, _)| k == "evicted")
        .unwrap()
        .1;
    assert_eq!(evicted, 50, "the periodic task evicted every expired key");
    assert_eq!(d.health().await, Health::Serving);
}

#[tokio::test]
async fn unknown_commands_and_dialects_are_not_supported() {
    let d = engine();
    let err = conformance::error(&d, Dialect::Redis, "SUBSCRIBE news", &[]).await;
    assert!(matches!(err, Error::NotSupported { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "command SUBSCRIBE is not supported by the memory engine"
    );
    let err = conformance::error(&d, Dialect::Redis, "ZRANGE z 0 1 BYLEX", &[]).await;
    assert!(matches!(err, Error::NotSupported { .. }), "{err}");
    let err = d
        .execute(
            Dialect::Sql,
            &Statement::new("SELECT 1"),
            &ExecuteOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotSupported { .. }), "{err}");
}

#[tokio::test]
async fn read_only_requests_refuse_writes() {
    let d = engine();
    let ro = ExecuteOptions {
        read_only: true,
        ..ExecuteOptions::default()
    };
    let err = d
        .execute(Dialect::Redis, &Statement::new("SET a b"), &ro)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ReadOnly(_)), "{err}");
    assert!(
        err.to_string()
            .contains("SET writes, but the request is read_only"),
        "{err}"
    );
    let got = d
        .execute(Dialect::Redis, &Statement::new("GET a"), &ro)
        .await
        .unwrap();
    assert_eq!(got.rows, vec![vec![Value::Null]]);
}

#[test]
fn command_table_covers_the_documented_commands() {
    let names: Vec<&str> = omnigate_drivers::memory::command_names().collect();
    for expected in [
        "get",
        "set",
        "hincrby",
        "zrangebyscore",
        "scan",
        "flushdb",
        "ping",
        "persist",
    ] {
        assert!(names.contains(&expected), "{expected} missing");
    }
}
