//! Transactions on a real Redis: writes checked when sent (by the server's
//! COMMAND INFO) and queued, reads of committed state, MULTI/EXEC at
//! commit, and the window Redis leaves (no rollback of a command that
//! fails when applied).
#![allow(clippy::unwrap_used)]

use omnigate_proto::v1 as pb;
use omnigate_tests::redis::RedisServer;
use omnigate_tests::{
    TestGateway, assert_status, begin_read_only_tx, begin_tx, commit_tx, exec, fail, in_tx,
    request, s, scalar,
};
use pb::value::Kind;
use tonic::Code;

async fn gateway(server: &RedisServer) -> TestGateway {
    TestGateway::with_config(server.gateway_config()).await
}

async fn get(gw: &mut TestGateway, key: &str) -> Option<Kind> {
    scalar(&exec(&mut gw.client, request("redis", "GET $1", vec![s(key)])).await)
}

#[tokio::test]
async fn writes_are_queued_checked_and_applied_at_commit() {
    let server = RedisServer::start();
    let mut gw = gateway(&server).await;
    exec(&mut gw.client, request("redis", "SET seen before", vec![])).await;
    let tx = begin_tx(&mut gw.client, None).await;
    let queued = exec(
        &mut gw.client,
        in_tx(&tx, "redis", "SET k $1", vec![s("v")]),
    )
    .await;
    assert_eq!(scalar(&queued), Some(Kind::String("QUEUED".into())));
    exec(
        &mut gw.client,
        in_tx(&tx, "redis", "SET seen after", vec![]),
    )
    .await;
    let inside = exec(&mut gw.client, in_tx(&tx, "redis", "GET seen", vec![])).await;
    assert_eq!(
        scalar(&inside),
        Some(Kind::String("before".into())),
        "reads see committed state, as inside MULTI"
    );
    assert!(
        matches!(get(&mut gw, "k").await, Some(Kind::Null(_))),
        "nothing applied yet"
    );

    // Refused when sent, by the server's own rules; the transaction goes on.
    let arity = fail(&mut gw.client, in_tx(&tx, "redis", "SET k", vec![])).await;
    assert_status(&arity, Code::InvalidArgument, "wrong number of arguments");
    let unknown = fail(&mut gw.client, in_tx(&tx, "redis", "NOSUCHCMD x", vec![])).await;
    assert_status(&unknown, Code::InvalidArgument, "unknown command");
    let watch = fail(&mut gw.client, in_tx(&tx, "redis", "WATCH k", vec![])).await;
    assert_eq!(watch.code(), Code::Unimplemented, "{watch:?}");
    let blocking = fail(&mut gw.client, in_tx(&tx, "redis", "BLPOP q 1", vec![])).await;
    assert_status(&blocking, Code::FailedPrecondition, "blocks");

    assert_eq!(
        commit_tx(&mut gw.client, &tx).await.unwrap(),
        vec!["cache".to_owned()]
    );
    assert_eq!(get(&mut gw, "k").await, Some(Kind::String("v".into())));
    assert_eq!(
        get(&mut gw, "seen").await,
        Some(Kind::String("after".into()))
    );
}

#[tokio::test]
async fn rollback_applies_nothing_and_read_only_refuses_writes() {
    let server = RedisServer::start();
    let mut gw = gateway(&server).await;
    let tx = begin_tx(&mut gw.client, None).await;
    exec(&mut gw.client, in_tx(&tx, "redis", "SET gone 1", vec![])).await;
    gw.client
        .rollback(pb::RollbackRequest { tx_id: tx })
        .await
        .unwrap();
    assert!(matches!(get(&mut gw, "gone").await, Some(Kind::Null(_))));

    let read_only = begin_read_only_tx(&mut gw.client).await;
    let status = fail(
        &mut gw.client,
        in_tx(&read_only, "redis", "SET x 1", vec![]),
    )
    .await;
    assert_status(&status, Code::FailedPrecondition, "read_only");
    exec(&mut gw.client, in_tx(&read_only, "redis", "GET x", vec![])).await;
}

#[tokio::test]
async fn a_command_that_fails_when_applied_leaves_the_others_applied_and_says_so() {
    let server = RedisServer::start();
    let mut gw = gateway(&server).await;
    exec(&mut gw.client, request("redis", "RPUSH list a", vec![])).await;
    let tx = begin_tx(&mut gw.client, None).await;
    exec(&mut gw.client, in_tx(&tx, "redis", "SET a 1", vec![])).await;
    exec(&mut gw.client, in_tx(&tx, "redis", "INCR list", vec![])).await;
    let status = commit_tx(&mut gw.client, &tx).await.unwrap_err();
    assert_status(
        &status,
        Code::FailedPrecondition,
        "Redis applied the others",
    );
    assert!(status.message().contains("WRONGTYPE"), "{status:?}");
    assert_eq!(get(&mut gw, "a").await, Some(Kind::String("1".into())));
    // Committed in part, and a retry hears so: before, it was remembered
    // as rolled back, and a client told so ran the writes again.
    let retried = commit_tx(&mut gw.client, &tx).await.unwrap_err();
    assert_eq!(retried.message(), status.message());
}

#[tokio::test]
async fn the_same_key_in_two_transactions_last_commit_wins() {
    let server = RedisServer::start();
    let mut gw = gateway(&server).await;
    let first = begin_tx(&mut gw.client, None).await;
    let second = begin_tx(&mut gw.client, None).await;
    exec(
        &mut gw.client,
        in_tx(&first, "redis", "SET k first", vec![]),
    )
    .await;
    exec(
        &mut gw.client,
        in_tx(&second, "redis", "SET k second", vec![]),
    )
    .await;
    commit_tx(&mut gw.client, &second).await.unwrap();
    commit_tx(&mut gw.client, &first).await.unwrap();
    assert_eq!(get(&mut gw, "k").await, Some(Kind::String("first".into())));
}

/// Recovery's replay of a transaction's writes applies them once, however
/// many replays race (two gateways recovering), and leaves the connection
/// other callers share alone: its `WATCH` is on a connection of its own.
#[tokio::test]
async fn racing_replays_apply_once_beside_other_callers() {
    use omnigate_drivers::redis::{RedisConfig, RedisDriver};
    use omnigate_drivers::{Dialect, ExecuteOptions, Statement, StorageDriver, Value};

    let server = RedisServer::start();
    let config = RedisConfig {
        url: server.url(0),
        ..RedisConfig::default()
    };
    let d = RedisDriver::connect("cache", config).await.unwrap();
    let redo = vec![vec![
        bytes::Bytes::from_static(b"INCR"),
        bytes::Bytes::from_static(b"n"),
    ]];
    let options = &ExecuteOptions::default();
    let d = &d;
    let get = |key: &'static str| async move {
        let got = d
            .execute(
                Dialect::Redis,
                &Statement::new(format!("GET {key}")),
                options,
            )
            .await
            .unwrap();
        got.rows[0][0].clone()
    };
    let incr_other = [Statement::new("INCR other")];
    for round in 0..20 {
        let tx = format!("tx-{round}");
        // Two replays and a caller's own MULTI..EXEC on the shared
        // connection, all at once.
        let other = d.execute_batch(Dialect::Redis, &incr_other, options);
        let (a, b, c) = tokio::join!(d.replay(&tx, &redo), d.replay(&tx, &redo), other);
        a.unwrap();
        b.unwrap();
        c.unwrap().into_iter().for_each(|r| drop(r.unwrap()));
        let n = get("n").await;
        assert_eq!(n, Value::from((round + 1).to_string()), "round {round}");
    }
    assert_eq!(get("other").await, Value::from("20"));
}
