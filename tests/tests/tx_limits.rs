//! What one transaction may buffer in the gateway until commit: statements
//! and bytes sent to engines that apply writes at commit (Redis, memory),
//! bounded by `[transactions]` and lowered by a principal's limits; a
//! statement past the bound is refused with RESOURCE_EXHAUSTED and the
//! transaction stays usable. Engines that hold the transaction themselves
//! (SQLite, PostgreSQL) are not counted. Against a real Redis.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use omnigate::config::{Config, DriverConfig, EngineConfig, PrincipalConfig, PrincipalLimits};
use omnigate_drivers::memory::MemoryConfig;
use omnigate_drivers::sqlite::SqliteConfig;
use omnigate_proto::v1 as pb;
use omnigate_tests::TestGateway;
use omnigate_tests::auth::{begin, in_tx, on, principal, run, signed};
use omnigate_tests::redis::RedisServer;
use tonic::Code;

fn config(redis: &RedisServer) -> Config {
    let mut config = Config::default();
    config.engines.clear();
    redis.add_to(&mut config);
    config.engines.insert(
        "mem".into(),
        EngineConfig::new(DriverConfig::Memory(MemoryConfig::default())),
    );
    config.engines.insert(
        "main".into(),
        EngineConfig::new(DriverConfig::Sqlite(SqliteConfig::default())),
    );
    config.transactions.max_buffered_statements = 6;
    config.transactions.max_buffered_bytes = 4096;
    let small = PrincipalConfig {
        limits: PrincipalLimits {
            tx_buffered_statements: Some(2),
            ..PrincipalLimits::default()
        },
        ..principal("small-token")
    };
    config.principals = BTreeMap::from([
        ("app".to_owned(), principal("app-token")),
        ("small".to_owned(), small),
    ]);
    config
}

#[track_caller]
fn full(status: &tonic::Status) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("max_buffered_statements"),
        "{status:?}"
    );
}

#[tokio::test]
async fn a_transaction_buffers_up_to_its_limit_and_stays_usable_past_it() {
    let redis = RedisServer::start();
    let mut gw = TestGateway::with_config(config(&redis)).await;
    let c = &mut gw.client;
    let tx = begin(c, "app-token").await;
    // Six statements across the buffering engines: the limit is the
    // transaction's, not one engine's.
    for n in 0..3 {
        for engine in ["cache", "mem"] {
            let set = format!("SET k{n} v");
            run(c, "app-token", in_tx(&tx, engine, "redis", &set))
                .await
                .unwrap();
        }
    }
    let seventh = run(c, "app-token", in_tx(&tx, "cache", "redis", "SET k9 v"))
        .await
        .unwrap_err();
    full(&seventh);
    // SQLite holds its own transaction: not counted.
    for n in 0..10 {
        let insert = if n == 0 {
            "CREATE TABLE t (id int)".to_owned()
        } else {
            format!("INSERT INTO t VALUES ({n})")
        };
        run(c, "app-token", in_tx(&tx, "main", "sql", &insert))
            .await
            .unwrap();
    }
    let engines = c
        .commit(signed("app-token", pb::CommitRequest { tx_id: tx }))
        .await
        .unwrap()
        .into_inner()
        .engines;
    assert_eq!(engines.len(), 3, "{engines:?}");
    let exists = run(c, "app-token", on("cache", "redis", "EXISTS k2 k9"))
        .await
        .unwrap();
    assert_eq!(
        omnigate_tests::scalar(&exists),
        Some(pb::value::Kind::Int(1)),
        "k2 was written, the refused SET k9 was not run"
    );

    // Bytes: one large value passes the bound on its own.
    let tx = begin(c, "app-token").await;
    let big = format!("SET big {}", "x".repeat(5000));
    let status = run(c, "app-token", in_tx(&tx, "cache", "redis", &big))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    run(c, "app-token", in_tx(&tx, "cache", "redis", "SET small v"))
        .await
        .unwrap();
    c.commit(signed("app-token", pb::CommitRequest { tx_id: tx }))
        .await
        .unwrap();

    // A batch is refused whole: none of it is kept, so a client that
    // commits and sends it again applies nothing twice.
    let tx = begin(c, "app-token").await;
    let batch = |keys: &[&str]| pb::ExecuteBatchRequest {
        dialect: "redis".into(),
        target: "cache".into(),
        tx_id: tx.clone(),
        statements: keys
            .iter()
            .map(|k| pb::BatchStatement {
                statement: format!("INCR {k}"),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    c.execute_batch(signed("app-token", batch(&["b1", "b2", "b3", "b4"])))
        .await
        .unwrap();
    let refused = c
        .execute_batch(signed("app-token", batch(&["b5", "b6", "b7"])))
        .await
        .unwrap_err();
    full(&refused);
    run(c, "app-token", in_tx(&tx, "cache", "redis", "INCR b5"))
        .await
        .unwrap();
    c.commit(signed("app-token", pb::CommitRequest { tx_id: tx.clone() }))
        .await
        .unwrap();
    let counted = run(c, "app-token", on("cache", "redis", "MGET b4 b5 b6 b7"))
        .await
        .unwrap();
    let Some(pb::value::Kind::List(list)) = counted.rows[0].values[0].kind.clone() else {
        panic!("{counted:?}");
    };
    let got: Vec<Option<String>> = list
        .values
        .into_iter()
        .map(|v| match v.kind {
            Some(pb::value::Kind::String(s)) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(
        got,
        [Some("1".into()), Some("1".into()), None, None],
        "b4 and b5 once, b6 and b7 never"
    );

    // A principal's own limit lowers the server's.
    let tx = begin(c, "small-token").await;
    for key in ["a", "b"] {
        run(
            c,
            "small-token",
            in_tx(&tx, "cache", "redis", &format!("SET {key} 1")),
        )
        .await
        .unwrap();
    }
    let third = run(c, "small-token", in_tx(&tx, "cache", "redis", "SET c 1"))
        .await
        .unwrap_err();
    full(&third);
}
