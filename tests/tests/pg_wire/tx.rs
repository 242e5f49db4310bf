//! Gateway transactions over the wire: one begun on the PostgreSQL front
//! end spans Redis over gRPC (joined by its id) and commits or rolls back
//! on both; a client gone mid-transaction has it rolled back.

use std::time::Duration;

use omnigate_tests::auth::{on, signed};
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;

use crate::{connect, gateway, rows, sqlstate};

#[tokio::test]
async fn a_transaction_spans_postgres_over_the_wire_and_redis_over_grpc() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let (mut gw, addr) = gateway(&pg, &redis).await;
    let app = connect(addr, "app", "app-token", "main-db").await;
    app.simple_query("CREATE TABLE orders (id INT PRIMARY KEY)")
        .await
        .unwrap();

    for (commit, id) in [(true, 1), (false, 2)] {
        app.simple_query("BEGIN").await.unwrap();
        app.simple_query(&format!("INSERT INTO orders VALUES ({id})"))
            .await
            .unwrap();
        let tx = rows(&app, "SHOW omnigate.tx_id").await[0][0]
            .clone()
            .unwrap();
        let mut set = on("cache", "redis", &format!("SET order:{id} placed"));
        set.tx_id = tx.clone();
        gw.client.execute(signed("app-token", set)).await.unwrap();
        let end = if commit { "COMMIT" } else { "ROLLBACK" };
        app.simple_query(end).await.unwrap();

        let count = rows(
            &app,
            &format!("SELECT count(*) FROM orders WHERE id = {id}"),
        )
        .await;
        let get = on("cache", "redis", &format!("GET order:{id}"));
        let reply = gw
            .client
            .execute(signed("app-token", get))
            .await
            .unwrap()
            .into_inner();
        let value = omnigate_tests::scalar(&reply);
        if commit {
            assert_eq!(count, [vec![Some("1".into())]]);
            assert!(value.is_some_and(|v| format!("{v:?}").contains("placed")));
        } else {
            assert_eq!(count, [vec![Some("0".into())]]);
            let shown = format!("{value:?}");
            assert!(!shown.contains("placed"), "{shown}");
        }
    }

    // A wire client joins a transaction begun over gRPC; gRPC commits it.
    let tx = begin_over_grpc(&gw).await;
    app.simple_query(&format!("SET omnigate.tx_id = '{tx}'"))
        .await
        .unwrap();
    app.simple_query("INSERT INTO orders VALUES (3)")
        .await
        .unwrap();
    let elsewhere = connect(addr, "app", "app-token", "main-db").await;
    assert_eq!(
        rows(&elsewhere, "SELECT count(*) FROM orders WHERE id = 3").await,
        [vec![Some("0".into())]],
        "not committed yet"
    );
    let commit = omnigate_proto::v1::CommitRequest { tx_id: tx.clone() };
    gw.client.commit(signed("app-token", commit)).await.unwrap();
    assert_eq!(
        rows(&elsewhere, "SELECT count(*) FROM orders WHERE id = 3").await,
        [vec![Some("1".into())]]
    );
    // The wire session learns its transaction ended when it next speaks.
    let err = app
        .simple_query("INSERT INTO orders VALUES (4)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "25P02", "{err}");
    app.simple_query("ROLLBACK").await.unwrap();
    assert_eq!(
        rows(&app, "SELECT count(*) FROM orders").await,
        [vec![Some("2".into())]]
    );

    // A joiner that goes away leaves the transaction to its owner.
    let tx = begin_over_grpc(&gw).await;
    let joiner = connect(addr, "app", "app-token", "main-db").await;
    joiner
        .simple_query(&format!("SET omnigate.tx_id = '{tx}'"))
        .await
        .unwrap();
    joiner
        .simple_query("INSERT INTO orders VALUES (5)")
        .await
        .unwrap();
    drop(joiner);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let commit = omnigate_proto::v1::CommitRequest { tx_id: tx };
    gw.client.commit(signed("app-token", commit)).await.unwrap();
    assert_eq!(
        rows(&app, "SELECT count(*) FROM orders WHERE id = 5").await,
        [vec![Some("1".into())]]
    );
}

#[tokio::test]
async fn a_client_gone_mid_transaction_rolls_it_back() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let (_gw, addr) = gateway(&pg, &redis).await;
    let app = connect(addr, "app", "app-token", "main-db").await;
    app.simple_query("CREATE TABLE gone (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let leaver = connect(addr, "app", "app-token", "main-db").await;
    leaver
        .simple_query("BEGIN; INSERT INTO gone VALUES (7)")
        .await
        .unwrap();
    drop(leaver);
    // Its row lock goes with it: the same key can be written, and is once.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match app.simple_query("INSERT INTO gone VALUES (7)").await {
            Ok(_) => break,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the gone client's transaction still holds its row: {e}"),
        }
    }
    assert_eq!(
        rows(&app, "SELECT count(*) FROM gone").await,
        [vec![Some("1".into())]]
    );
}

/// A transaction begun over gRPC as `app`: its id.
async fn begin_over_grpc(gw: &omnigate_tests::TestGateway) -> String {
    let begin = omnigate_proto::v1::BeginRequest::default();
    gw.client
        .clone()
        .begin(signed("app-token", begin))
        .await
        .unwrap()
        .into_inner()
        .tx_id
}
