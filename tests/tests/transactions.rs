//! Transactions over gRPC and in the library, on the embedded default
//! (SQLite live on a pinned connection, the memory engine buffered).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use omnigate::Request;
use omnigate::tx::TxOptions;
use omnigate_proto::v1 as pb;
use omnigate_tests::{
    TestGateway, assert_status, begin_read_only_tx, begin_tx, commit_tx, exec, fail, i, in_tx,
    request, s, scalar, tx_counts,
};
use pb::value::Kind;
use tonic::Code;

async fn begin(gw: &mut TestGateway, idle: Option<Duration>) -> String {
    begin_tx(&mut gw.client, idle).await
}

async fn count(gw: &mut TestGateway) -> Option<Kind> {
    let rows = exec(
        &mut gw.client,
        request("sql", "SELECT count(*) FROM t", vec![]),
    )
    .await;
    scalar(&rows)
}

#[tokio::test]
async fn sql_commits_and_rolls_back_reading_its_own_writes() {
    let mut gw = TestGateway::start().await;
    exec(
        &mut gw.client,
        request("sql", "CREATE TABLE t (v INTEGER)", vec![]),
    )
    .await;

    let tx = begin(&mut gw, None).await;
    exec(
        &mut gw.client,
        in_tx(&tx, "sql", "INSERT INTO t VALUES ($1)", vec![i(1)]),
    )
    .await;
    let own = exec(
        &mut gw.client,
        in_tx(&tx, "sql", "SELECT count(*) FROM t", vec![]),
    )
    .await;
    assert_eq!(
        scalar(&own),
        Some(Kind::Int(1)),
        "reads see the transaction's writes"
    );
    let engines = commit_tx(&mut gw.client, &tx).await.unwrap();
    assert_eq!(engines, vec!["main".to_owned()]);
    assert_eq!(count(&mut gw).await, Some(Kind::Int(1)));

    let tx2 = begin(&mut gw, None).await;
    exec(
        &mut gw.client,
        in_tx(&tx2, "sql", "INSERT INTO t VALUES (2)", vec![]),
    )
    .await;
    gw.client
        .rollback(pb::RollbackRequest { tx_id: tx2.clone() })
        .await
        .unwrap();
    assert_eq!(
        count(&mut gw).await,
        Some(Kind::Int(1)),
        "the rolled-back row is gone"
    );

    // An ended transaction says how it ended; an unknown one is not found.
    let status = fail(&mut gw.client, in_tx(&tx, "sql", "SELECT 1", vec![])).await;
    assert_status(&status, Code::FailedPrecondition, "was committed");
    let status = commit_tx(&mut gw.client, &tx2).await.unwrap_err();
    assert_status(&status, Code::FailedPrecondition, "was rolled back");
    let status = fail(
        &mut gw.client,
        in_tx("no-such-tx", "sql", "SELECT 1", vec![]),
    )
    .await;
    assert_status(&status, Code::NotFound, "unknown transaction");
}

#[tokio::test]
async fn an_idle_transaction_expires_and_is_rolled_back() {
    let mut gw = TestGateway::start().await;
    exec(
        &mut gw.client,
        request("sql", "CREATE TABLE t (v INTEGER)", vec![]),
    )
    .await;
    let tx = begin(&mut gw, Some(Duration::from_millis(200))).await;
    exec(
        &mut gw.client,
        in_tx(&tx, "sql", "INSERT INTO t VALUES (1)", vec![]),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        gw.gateway.open_transactions(),
        0,
        "the reaper rolled it back"
    );
    let status = fail(&mut gw.client, in_tx(&tx, "sql", "SELECT 1", vec![])).await;
    assert_status(&status, Code::FailedPrecondition, "expired");
    assert_eq!(count(&mut gw).await, Some(Kind::Int(0)));
}

#[tokio::test]
async fn redis_writes_are_queued_and_applied_at_commit() {
    let mut gw = TestGateway::start().await;
    let tx = begin(&mut gw, None).await;
    let queued = exec(
        &mut gw.client,
        in_tx(&tx, "redis", "SET k $1", vec![s("v")]),
    )
    .await;
    assert_eq!(scalar(&queued), Some(Kind::String("QUEUED".into())));
    let inside = exec(&mut gw.client, in_tx(&tx, "redis", "GET k", vec![])).await;
    assert!(
        matches!(scalar(&inside), Some(Kind::Null(_))),
        "reads inside see committed state, as with MULTI"
    );
    // A command the engine refuses is refused when sent, not at commit.
    let status = fail(&mut gw.client, in_tx(&tx, "redis", "SET k", vec![])).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    commit_tx(&mut gw.client, &tx).await.unwrap();
    let after = exec(&mut gw.client, request("redis", "GET k", vec![])).await;
    assert_eq!(scalar(&after), Some(Kind::String("v".into())));
}

#[tokio::test]
async fn sql_and_redis_commit_together_on_the_embedded_default() {
    let mut gw = TestGateway::start().await;
    exec(
        &mut gw.client,
        request("sql", "CREATE TABLE t (v INTEGER)", vec![]),
    )
    .await;
    let tx = begin(&mut gw, None).await;
    exec(
        &mut gw.client,
        in_tx(&tx, "sql", "INSERT INTO t VALUES (1)", vec![]),
    )
    .await;
    exec(
        &mut gw.client,
        in_tx(&tx, "redis", "SET k $1", vec![s("v")]),
    )
    .await;
    // The memory engine's ts writes are buffered too: unseen until commit.
    exec(
        &mut gw.client,
        in_tx(&tx, "ts", "temp,room=a c=21.5", vec![]),
    )
    .await;
    let sum = |gw: &mut TestGateway| {
        let req = request("ts", "sum(temp_c)", vec![]);
        let mut client = gw.client.clone();
        async move { exec(&mut client, req).await.rows.len() }
    };
    assert_eq!(sum(&mut gw).await, 0, "no sample before commit");
    let mut engines = commit_tx(&mut gw.client, &tx).await.unwrap();
    engines.sort();
    assert_eq!(engines, vec!["cache".to_owned(), "main".to_owned()]);
    assert_eq!(count(&mut gw).await, Some(Kind::Int(1)));
    let got = exec(&mut gw.client, request("redis", "GET k", vec![])).await;
    assert_eq!(scalar(&got), Some(Kind::String("v".into())));
    assert_eq!(sum(&mut gw).await, 1, "the sample, committed");

    let tx = begin(&mut gw, None).await;
    exec(
        &mut gw.client,
        in_tx(&tx, "sql", "INSERT INTO t VALUES (2)", vec![]),
    )
    .await;
    exec(&mut gw.client, in_tx(&tx, "redis", "SET k2 x", vec![])).await;
    exec(&mut gw.client, in_tx(&tx, "ts", "gone,room=a c=1", vec![])).await;
    let delete = fail(&mut gw.client, in_tx(&tx, "ts", "DELETE temp_c", vec![])).await;
    assert_eq!(delete.code(), Code::FailedPrecondition, "{delete:?}");
    gw.client
        .rollback(pb::RollbackRequest { tx_id: tx })
        .await
        .unwrap();
    let gone = exec(&mut gw.client, request("ts", "gone_c", vec![])).await;
    assert!(gone.rows.is_empty(), "the rolled-back sample is not there");
    assert_eq!(
        count(&mut gw).await,
        Some(Kind::Int(1)),
        "neither engine kept anything"
    );
    let none = exec(&mut gw.client, request("redis", "GET k2", vec![])).await;
    assert!(matches!(scalar(&none), Some(Kind::Null(_))));
    let counts = tx_counts(&mut gw.client).await;
    assert_eq!(
        (counts["begun"], counts["committed"], counts["rolled_back"]),
        (2, 1, 1),
        "{counts:?}"
    );
    assert_eq!((counts["open"], counts["in_doubt"]), (0, 0), "{counts:?}");
    // SQLite decided: its marker carried the record, so the gateway's
    // log holds nothing of the transaction.
    let log = std::fs::read_to_string(gw.dir.path().join("tx.log")).unwrap_or_default();
    assert!(!log.contains("prepared"), "{log}");
}

#[tokio::test]
async fn two_engines_without_a_prepare_step_are_refused_in_one_transaction() {
    let mut config = omnigate::Config::default();
    config.engines.insert(
        "other".into(),
        omnigate::config::EngineConfig::new(omnigate::config::DriverConfig::Sqlite(
            Default::default(),
        )),
    );
    let mut gw = TestGateway::with_config(config).await;
    let tx = begin(&mut gw, None).await;
    let mut first = in_tx(&tx, "sql", "SELECT 1", vec![]);
    first.target = "main".into();
    exec(&mut gw.client, first).await;
    let mut second = in_tx(&tx, "sql", "SELECT 1", vec![]);
    second.target = "other".into();
    let status = fail(&mut gw.client, second).await;
    assert_status(&status, Code::FailedPrecondition, "engines main and other");
    commit_tx(&mut gw.client, &tx).await.unwrap();
}

#[tokio::test]
async fn a_dropped_library_transaction_rolls_back() {
    let gw = TestGateway::start().await;
    let gateway = &gw.gateway;
    gateway
        .execute(Request::new("sql", "CREATE TABLE t (v INTEGER)"))
        .await
        .unwrap();
    let tx = gateway.begin(TxOptions::default()).unwrap();
    tx.execute(Request::new("sql", "INSERT INTO t VALUES (1)"))
        .await
        .unwrap();
    drop(tx);
    for _ in 0..50 {
        if gateway.open_transactions() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(gateway.open_transactions(), 0);
    let rows = gateway
        .execute(Request::new("sql", "SELECT count(*) FROM t"))
        .await
        .unwrap();
    assert_eq!(rows.result.rows[0][0], omnigate_drivers::Value::Int(0));

    let tx = gateway.begin(TxOptions::default()).unwrap();
    tx.execute(Request::new("sql", "INSERT INTO t VALUES (2)"))
        .await
        .unwrap();
    assert_eq!(tx.commit().await.unwrap(), vec!["main".to_owned()]);
}

#[tokio::test]
async fn a_read_only_transaction_refuses_writes_on_every_engine() {
    let mut gw = TestGateway::start().await;
    exec(
        &mut gw.client,
        request("sql", "CREATE TABLE t (v INTEGER)", vec![]),
    )
    .await;
    let tx = begin_read_only_tx(&mut gw.client).await;
    let sql = fail(
        &mut gw.client,
        in_tx(&tx, "sql", "INSERT INTO t VALUES (1)", vec![]),
    )
    .await;
    assert_eq!(sql.code(), Code::FailedPrecondition, "{sql:?}");
    let redis = fail(&mut gw.client, in_tx(&tx, "redis", "SET k 1", vec![])).await;
    assert_eq!(redis.code(), Code::FailedPrecondition, "{redis:?}");
    exec(
        &mut gw.client,
        in_tx(&tx, "sql", "SELECT count(*) FROM t", vec![]),
    )
    .await;
    commit_tx(&mut gw.client, &tx).await.unwrap();
    assert_eq!(count(&mut gw).await, Some(Kind::Int(0)));
}
