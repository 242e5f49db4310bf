//! Transactions on a real PostgreSQL: live on a pinned connection, reads
//! see the transaction's own writes and others see nothing until commit;
//! a failed statement aborts it (as in PostgreSQL) and Commit says
//! ABORTED; row conflicts wait; the driver's two-phase step.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use omnigate::config::DriverConfig;
use omnigate_drivers::{BeginOptions, Dialect, Statement, StorageDriver, StorageDriverExt, Value};
use omnigate_proto::v1 as pb;
use omnigate_tests::postgres::PgServer;
use omnigate_tests::{
    TestGateway, assert_status, begin_tx, commit_tx, exec, fail, i, in_tx, request, scalar,
};
use pb::value::Kind;
use tonic::Code;

/// A gateway on `server` with room for two pinned transactions and calls
/// beside them.
async fn gateway(server: &PgServer) -> TestGateway {
    let mut config = server.gateway_config();
    if let Some(DriverConfig::Postgres(pg)) =
        config.engines.get_mut("main-db").map(|e| &mut e.driver)
    {
        pg.pool.max_connections = 6;
    }
    let mut gw = TestGateway::with_config(config).await;
    exec(
        &mut gw.client,
        request(
            "sql",
            "CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY, v int)",
            vec![],
        ),
    )
    .await;
    exec(&mut gw.client, request("sql", "TRUNCATE t", vec![])).await;
    gw
}

async fn value_of(gw: &mut TestGateway, id: i64) -> Option<Kind> {
    let rows = exec(
        &mut gw.client,
        request("sql", "SELECT v FROM t WHERE id = $1", vec![i(id)]),
    )
    .await;
    scalar(&rows)
}

#[tokio::test]
async fn commit_and_rollback_with_reads_of_its_own_writes() {
    let server = PgServer::start();
    let mut gw = gateway(&server).await;
    let tx = begin_tx(&mut gw.client, None).await;
    exec(
        &mut gw.client,
        in_tx(&tx, "sql", "INSERT INTO t VALUES (1, 10)", vec![]),
    )
    .await;
    let own = exec(
        &mut gw.client,
        in_tx(&tx, "sql", "SELECT v FROM t WHERE id = 1", vec![]),
    )
    .await;
    assert_eq!(
        scalar(&own),
        Some(Kind::Int(10)),
        "the transaction reads its write"
    );
    assert_eq!(
        value_of(&mut gw, 1).await,
        None,
        "nobody else sees it before commit"
    );
    assert_eq!(
        commit_tx(&mut gw.client, &tx).await.unwrap(),
        vec!["main-db".to_owned()]
    );
    assert_eq!(value_of(&mut gw, 1).await, Some(Kind::Int(10)));

    let tx = begin_tx(&mut gw.client, None).await;
    exec(
        &mut gw.client,
        in_tx(&tx, "sql", "UPDATE t SET v = 11 WHERE id = 1", vec![]),
    )
    .await;
    gw.client
        .rollback(pb::RollbackRequest { tx_id: tx })
        .await
        .unwrap();
    assert_eq!(value_of(&mut gw, 1).await, Some(Kind::Int(10)));
}

#[tokio::test]
async fn a_failed_statement_aborts_the_transaction_and_commit_says_aborted() {
    let server = PgServer::start();
    let mut gw = gateway(&server).await;
    let tx = begin_tx(&mut gw.client, None).await;
    exec(
        &mut gw.client,
        in_tx(&tx, "sql", "INSERT INTO t VALUES (2, 20)", vec![]),
    )
    .await;
    let status = fail(
        &mut gw.client,
        in_tx(&tx, "sql", "INSERT INTO t VALUES (2, 21)", vec![]),
    )
    .await;
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let status = commit_tx(&mut gw.client, &tx).await.unwrap_err();
    assert_status(&status, Code::Aborted, "rolled back on every engine");
    assert_eq!(value_of(&mut gw, 2).await, None, "nothing of it committed");
    let status = fail(&mut gw.client, in_tx(&tx, "sql", "SELECT 1", vec![])).await;
    assert_status(&status, Code::FailedPrecondition, "was rolled back");
}

#[tokio::test]
async fn a_row_two_transactions_update_waits_for_the_first() {
    let server = PgServer::start();
    let mut gw = gateway(&server).await;
    exec(
        &mut gw.client,
        request("sql", "INSERT INTO t VALUES (3, 30)", vec![]),
    )
    .await;
    let first = begin_tx(&mut gw.client, None).await;
    let second = begin_tx(&mut gw.client, None).await;
    exec(
        &mut gw.client,
        in_tx(&first, "sql", "UPDATE t SET v = 31 WHERE id = 3", vec![]),
    )
    .await;
    let mut waits = in_tx(&second, "sql", "UPDATE t SET v = 32 WHERE id = 3", vec![]);
    waits.options = Some(pb::ExecuteOptions {
        timeout: Some(prost_types::Duration {
            seconds: 0,
            nanos: 300_000_000,
        }),
        ..Default::default()
    });
    let status = fail(&mut gw.client, waits).await;
    assert_eq!(
        status.code(),
        Code::DeadlineExceeded,
        "it waited on the row lock: {status:?}"
    );
    commit_tx(&mut gw.client, &first).await.unwrap();
    let status = commit_tx(&mut gw.client, &second).await.unwrap_err();
    assert_eq!(status.code(), Code::Aborted, "retryable: {status:?}");
    assert_eq!(value_of(&mut gw, 3).await, Some(Kind::Int(31)));
    // The connection a cancel went to is not reused; the engine serves on.
    assert_eq!(value_of(&mut gw, 3).await, Some(Kind::Int(31)));
}

#[tokio::test]
async fn an_idle_transaction_is_rolled_back_on_the_server() {
    let server = PgServer::start();
    let mut gw = gateway(&server).await;
    let tx = begin_tx(&mut gw.client, Some(Duration::from_millis(200))).await;
    exec(
        &mut gw.client,
        in_tx(&tx, "sql", "INSERT INTO t VALUES (4, 40)", vec![]),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let status = fail(&mut gw.client, in_tx(&tx, "sql", "SELECT 1", vec![])).await;
    assert_status(&status, Code::FailedPrecondition, "expired");
    assert_eq!(value_of(&mut gw, 4).await, None);
    let open = exec(
        &mut gw.client,
        request(
            "sql",
            "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'",
            vec![],
        ),
    )
    .await;
    assert_eq!(
        scalar(&open),
        Some(Kind::Int(0)),
        "no transaction left open on the server"
    );
}

#[tokio::test]
async fn the_driver_prepares_commits_and_rolls_back_prepared_transactions() {
    let server = PgServer::start();
    let d = server.engine().await;
    d.run(Dialect::Sql, Statement::new("CREATE TABLE p (id int)"))
        .await
        .unwrap();
    let prepared = |gid: &str| {
        Statement::new("SELECT count(*) FROM pg_prepared_xacts WHERE gid = $1").bind(gid)
    };
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    let insert = Statement::new("INSERT INTO p VALUES (1)");
    tx.execute(Dialect::Sql, &insert, &Default::default())
        .await
        .unwrap();
    tx.prepare("omnigate-test-'1'").await.unwrap();
    let found = d
        .query_scalar(Dialect::Sql, prepared("omnigate-test-'1'"))
        .await
        .unwrap();
    assert_eq!(found, Value::Int(1), "found by the global id as sent");
    tx.commit().await.unwrap();
    let rows = d
        .query_scalar(Dialect::Sql, Statement::new("SELECT count(*) FROM p"))
        .await
        .unwrap();
    assert_eq!(rows, Value::Int(1));

    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    tx.execute(Dialect::Sql, &insert, &Default::default())
        .await
        .unwrap();
    tx.prepare("omnigate-test-2").await.unwrap();
    tx.rollback().await.unwrap();
    let gone = d
        .query_scalar(Dialect::Sql, prepared("omnigate-test-2"))
        .await
        .unwrap();
    assert_eq!(gone, Value::Int(0));

    // Dropped uncommitted: the server rolls back, and the pool serves on.
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    tx.execute(Dialect::Sql, &insert, &Default::default())
        .await
        .unwrap();
    drop(tx);
    let rows = d
        .query_scalar(Dialect::Sql, Statement::new("SELECT count(*) FROM p"))
        .await
        .unwrap();
    assert_eq!(rows, Value::Int(1));

    // A read-only transaction refuses writes on the server.
    let read_only = BeginOptions {
        read_only: true,
        ..BeginOptions::default()
    };
    let mut tx = d.begin(&read_only).await.unwrap();
    let err = tx
        .execute(Dialect::Sql, &insert, &Default::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    // Control statements would end it behind the session's back.
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    let err = tx
        .execute(Dialect::Sql, &Statement::new("COMMIT"), &Default::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("inside a transaction"), "{err}");
}

#[tokio::test]
async fn the_engine_reports_whether_the_server_can_prepare() {
    let ready = PgServer::start();
    let gw = gateway(&ready).await;
    let engine = omnigate_tests::engine(&mut gw.client.clone(), "main-db").await;
    assert_eq!(engine.counters["max_prepared_transactions"], 64);

    // A default install: the engine starts (single-engine transactions
    // work) and says what is missing.
    let plain = PgServer::start_without_prepared_transactions();
    let mut gw = gateway(&plain).await;
    let engine = omnigate_tests::engine(&mut gw.client, "main-db").await;
    assert_eq!(engine.counters["max_prepared_transactions"], 0);
    let tx = begin_tx(&mut gw.client, None).await;
    exec(
        &mut gw.client,
        in_tx(&tx, "sql", "INSERT INTO t VALUES (5, 50)", vec![]),
    )
    .await;
    commit_tx(&mut gw.client, &tx).await.unwrap();
    assert_eq!(value_of(&mut gw, 5).await, Some(Kind::Int(50)));
    let d = plain.engine().await;
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    let err = tx.prepare("omnigate-test-3").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("prepared transactions are disabled"),
        "{err}"
    );
}
