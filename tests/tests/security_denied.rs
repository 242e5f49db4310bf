//! A write by a principal whose grant is read-only, on every engine, in
//! and out of transactions, in batches and streams: PERMISSION_DENIED
//! naming `principals.NAME.read_only`, against real PostgreSQL, Redis and
//! FalkorDB (and SQLite and the memory engine).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use omnigate::config::{DriverConfig, EngineConfig, PrincipalConfig};
use omnigate_drivers::falkordb::FalkorConfig;
use omnigate_proto::v1 as pb;
use omnigate_tests::auth::{begin, config, denied, in_tx, on, principal, run, signed};
use omnigate_tests::falkordb::FalkorServer;
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;
use omnigate_tests::{TestGateway, scalar};
use tonic::Code;

fn reader() -> PrincipalConfig {
    PrincipalConfig {
        read_only: true,
        ..principal("reader-token")
    }
}

#[tokio::test]
async fn a_denied_write_is_permission_denied_on_every_engine() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let graph = FalkorServer::start();
    let principals = BTreeMap::from([
        ("owner".to_owned(), principal("owner-token")),
        ("reader".to_owned(), reader()),
    ]);
    let mut config = config(&pg, &redis, principals);
    let falkor = FalkorConfig {
        url: graph.url(),
        graph: "g".into(),
        ..FalkorConfig::default()
    };
    config.engines.insert(
        "graph".into(),
        EngineConfig::new(DriverConfig::Falkordb(falkor)),
    );
    config.engines.insert(
        "mem".into(),
        EngineConfig::new(DriverConfig::Memory(Default::default())),
    );
    let mut gw = TestGateway::with_config(config).await;
    let c = &mut gw.client;
    for (target, text) in [
        ("main-db", "CREATE TABLE t (v int)"),
        ("main", "CREATE TABLE t (v int)"),
    ] {
        run(c, "owner-token", on(target, "sql", text))
            .await
            .unwrap();
    }
    run(
        c,
        "owner-token",
        on("graph", "cypher", "CREATE (:N {v: 0})"),
    )
    .await
    .unwrap();
    let writes = [
        ("main-db", "sql", "INSERT INTO t VALUES (1)"),
        ("main", "sql", "INSERT INTO t VALUES (1)"),
        ("cache", "redis", "SET k v"),
        ("mem", "redis", "SET k v"),
        ("graph", "cypher", "CREATE (:N {v: 1})"),
    ];
    for (target, dialect, text) in writes {
        let status = run(c, "reader-token", on(target, dialect, text))
            .await
            .unwrap_err();
        denied(&status, "principals.reader.read_only");
        let tx = begin(c, "reader-token").await;
        let status = run(c, "reader-token", in_tx(&tx, target, dialect, text))
            .await
            .unwrap_err();
        denied(&status, "principals.reader.read_only");
        let _ = c
            .rollback(signed("reader-token", pb::RollbackRequest { tx_id: tx }))
            .await;
    }
    // A batch's statements and a stream say it the same way.
    let batch = pb::ExecuteBatchRequest {
        dialect: "sql".into(),
        target: "main-db".into(),
        statements: vec![pb::BatchStatement {
            statement: "INSERT INTO t VALUES (1)".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let results = c
        .execute_batch(signed("reader-token", batch))
        .await
        .unwrap()
        .into_inner()
        .results;
    match &results[0].outcome {
        Some(pb::batch_result::Outcome::Error(e)) => {
            assert_eq!(e.code, Code::PermissionDenied as u32, "{e:?}");
            assert!(e.message.contains("principals.reader.read_only"), "{e:?}");
        }
        other => panic!("{other:?}"),
    }
    let stream = c
        .execute_stream(signed(
            "reader-token",
            on("main-db", "sql", "INSERT INTO t VALUES (1)"),
        ))
        .await;
    let status = match stream {
        Err(status) => status,
        Ok(stream) => {
            let mut stream = stream.into_inner();
            loop {
                match stream.message().await {
                    Err(status) => break status,
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("the stream ended without an error"),
                }
            }
        }
    };
    denied(&status, "principals.reader.read_only");
    let tx = begin(c, "reader-token").await;
    let insert = in_tx(&tx, "main-db", "sql", "INSERT INTO t VALUES (1)");
    let status = match c.execute_stream(signed("reader-token", insert)).await {
        Err(status) => status,
        Ok(stream) => stream.into_inner().message().await.unwrap_err(),
    };
    denied(&status, "principals.reader.read_only");
    // FalkorDB reads go through GRAPH.RO_QUERY: the server refuses the
    // write, whatever the text looks like.
    let status = run(
        c,
        "reader-token",
        on("graph", "cypher", "MATCH (n) SET n.v = 2"),
    )
    .await
    .unwrap_err();
    denied(&status, "principals.reader.read_only");
    let count = run(
        c,
        "reader-token",
        on("graph", "cypher", "MATCH (n) WHERE n.v = 0 RETURN count(n)"),
    );
    assert_eq!(scalar(&count.await.unwrap()), Some(pb::value::Kind::Int(1)));
}
