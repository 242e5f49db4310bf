//! Transactions on a real FalkorDB: writes checked when sent (FalkorDB
//! plans each) and kept, reads of committed state, one atomic query at
//! commit with the transaction's marker, and a replay that applies once.
#![allow(clippy::unwrap_used)]

use omnigate_drivers::falkordb::{FalkorConfig, FalkorDriver};
use omnigate_drivers::{
    BeginOptions, Dialect, Error, ExecuteOptions, Statement, StorageDriver, StorageDriverExt, Value,
};
use omnigate_tests::falkordb::FalkorServer;

async fn driver(server: &FalkorServer) -> FalkorDriver {
    let config = FalkorConfig {
        url: server.url(),
        graph: "g".into(),
        databases: vec!["other".into()],
        ..FalkorConfig::default()
    };
    FalkorDriver::connect("graph", config).await.unwrap()
}

async fn count(d: &FalkorDriver, label: &str) -> Value {
    d.query_scalar(
        Dialect::Cypher,
        Statement::new(format!("MATCH (n:{label}) RETURN count(n)")),
    )
    .await
    .unwrap()
}

fn cypher(text: &str) -> Statement {
    Statement::new(text)
}

#[tokio::test]
async fn writes_are_checked_kept_and_applied_as_one_query() {
    let server = FalkorServer::start();
    let d = driver(&server).await;
    d.run(Dialect::Cypher, cypher("CREATE (:Seen {v: 'before'})"))
        .await
        .unwrap();
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    let options = ExecuteOptions::default();
    let person = cypher("CREATE (p:Person {name: $name}) RETURN p").bind_named("name", "ann");
    tx.execute(Dialect::Cypher, &person, &options)
        .await
        .unwrap();
    // A later write sees the earlier one when applied (chained, not in
    // separate subqueries).
    let knows = cypher("MATCH (p:Person {name: 'ann'}) CREATE (p)-[:KNOWS]->(:Person {name: $n})")
        .bind_named("n", "bob");
    tx.execute(Dialect::Cypher, &knows, &options).await.unwrap();
    tx.execute(
        Dialect::Cypher,
        &cypher("MATCH (s:Seen) SET s.v = 'after'"),
        &options,
    )
    .await
    .unwrap();
    let inside = tx
        .execute(
            Dialect::Cypher,
            &cypher("MATCH (s:Seen) RETURN s.v"),
            &options,
        )
        .await
        .unwrap();
    assert_eq!(
        inside.into_scalar(),
        Value::from("before"),
        "reads see committed state"
    );
    assert_eq!(
        count(&d, "Person").await,
        Value::Int(0),
        "nothing applied yet"
    );

    // Refused when sent; the transaction goes on.
    let syntax = tx
        .execute(Dialect::Cypher, &cypher("CREATE (a:A"), &options)
        .await
        .unwrap_err();
    assert!(matches!(syntax, Error::InvalidStatement(_)), "{syntax:?}");
    let missing = tx
        .execute(Dialect::Cypher, &cypher("CREATE (:A {v: $v})"), &options)
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("not given"), "{missing}");
    let index = tx
        .execute(
            Dialect::Cypher,
            &cypher("CREATE INDEX FOR (p:Person) ON (p.name)"),
            &options,
        )
        .await
        .unwrap_err();
    assert!(index.to_string().contains("outside one"), "{index}");
    let union = tx
        .execute(
            Dialect::Cypher,
            &cypher("CREATE (a:A) RETURN 1 AS x UNION CREATE (b:B) RETURN 1 AS x"),
            &options,
        )
        .await
        .unwrap_err();
    assert!(union.to_string().contains("UNION"), "{union}");
    let elsewhere = ExecuteOptions {
        database: Some("other".into()),
        ..ExecuteOptions::default()
    };
    let other = tx
        .execute(Dialect::Cypher, &cypher("CREATE (:A)"), &elsewhere)
        .await
        .unwrap_err();
    assert!(other.to_string().contains("one graph"), "{other}");

    tx.commit().await.unwrap();
    assert_eq!(count(&d, "Person").await, Value::Int(2));
    let knows = d
        .query_scalar(
            Dialect::Cypher,
            cypher("MATCH (:Person {name: 'ann'})-[:KNOWS]->(b) RETURN b.name"),
        )
        .await
        .unwrap();
    assert_eq!(knows, Value::from("bob"));
    let seen = d
        .query_scalar(Dialect::Cypher, cypher("MATCH (s:Seen) RETURN s.v"))
        .await
        .unwrap();
    assert_eq!(seen, Value::from("after"));
    assert_eq!(
        count(&d, "OmnigateTxMarker").await,
        Value::Int(0),
        "no marker unprepared"
    );
    assert_eq!(
        count(&d, "A").await,
        Value::Int(0),
        "refused writes were not kept"
    );
}

#[tokio::test]
async fn rollback_applies_nothing_read_only_refuses_and_a_failing_write_applies_none() {
    let server = FalkorServer::start();
    let d = driver(&server).await;
    let options = ExecuteOptions::default();
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    tx.execute(Dialect::Cypher, &cypher("CREATE (:Gone)"), &options)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(count(&d, "Gone").await, Value::Int(0));

    let read_only = BeginOptions {
        read_only: true,
        ..BeginOptions::default()
    };
    let mut tx = d.begin(&read_only).await.unwrap();
    let refused = tx
        .execute(Dialect::Cypher, &cypher("CREATE (:No)"), &options)
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::ReadOnly(_)), "{refused:?}");
    tx.execute(
        Dialect::Cypher,
        &cypher("MATCH (n) RETURN count(n)"),
        &options,
    )
    .await
    .unwrap();

    // A write that fails only when run (a division by a stored zero)
    // fails the whole query: the write before it is not applied either.
    d.run(Dialect::Cypher, cypher("CREATE (:Zero {z: 0})"))
        .await
        .unwrap();
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    tx.execute(Dialect::Cypher, &cypher("CREATE (:Half)"), &options)
        .await
        .unwrap();
    tx.execute(
        Dialect::Cypher,
        &cypher("MATCH (z:Zero) CREATE (:Bad {v: 1 / z.z})"),
        &options,
    )
    .await
    .unwrap();
    let failed = tx.commit().await.unwrap_err();
    assert!(failed.to_string().contains("applied none"), "{failed}");
    assert_eq!(count(&d, "Half").await, Value::Int(0));
}

#[tokio::test]
async fn a_prepared_commit_writes_its_marker_and_a_replay_applies_once() {
    let server = FalkorServer::start();
    let d = driver(&server).await;
    let options = ExecuteOptions::default();
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    tx.execute(
        Dialect::Cypher,
        &cypher("MERGE (c:Counter {id: 1}) SET c.n = coalesce(c.n, 0) + 1"),
        &options,
    )
    .await
    .unwrap();
    tx.prepare("tx-1").await.unwrap();
    let redo = tx.redo();
    assert_eq!(redo.len(), 1);
    assert_eq!(redo[0][0], "g", "each redo entry names its graph");
    tx.commit().await.unwrap();
    let marker = d
        .query_scalar(
            Dialect::Cypher,
            cypher("MATCH (m:OmnigateTxMarker) RETURN m.tx_id"),
        )
        .await
        .unwrap();
    assert_eq!(marker, Value::from("tx-1"));

    let n = || {
        d.query_scalar(
            Dialect::Cypher,
            cypher("MATCH (c:Counter {id: 1}) RETURN c.n"),
        )
    };
    // Applied already: the replay finds the marker and does nothing.
    d.replay("tx-1", &redo).await.unwrap();
    assert_eq!(n().await.unwrap(), Value::Int(1));
    // Not applied yet (another id): applied once, then never again.
    d.replay("tx-2", &redo).await.unwrap();
    d.replay("tx-2", &redo).await.unwrap();
    assert_eq!(n().await.unwrap(), Value::Int(2));
    // Two replays at once (two gateways recovering): applied once.
    let (a, b) = tokio::join!(d.replay("tx-3", &redo), d.replay("tx-3", &redo));
    a.unwrap();
    b.unwrap();
    assert_eq!(n().await.unwrap(), Value::Int(3));
    assert_eq!(count(&d, "OmnigateTxMarker").await, Value::Int(3));
}
