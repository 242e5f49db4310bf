//! A cross-engine commit whose engine stalls (the server stopped with
//! SIGSTOP: connections open, nothing answered): the commit ends at
//! `[transactions] step_timeout` instead of hanging, and the transaction
//! is on no engine once the server goes on.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use omnigate_proto::v1 as pb;
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;
use omnigate_tests::{TestGateway, begin_tx, commit_tx, exec, i, in_tx, request, s, scalar};
use pb::value::Kind;

#[tokio::test]
async fn a_stalled_engine_rolls_the_commit_back_at_the_step_timeout() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let mut config = pg.gateway_config_with(&redis);
    config.transactions.step_timeout = Duration::from_millis(500);
    let mut gw = TestGateway::with_config(config).await;
    exec(
        &mut gw.client,
        request("sql", "CREATE TABLE t (id int PRIMARY KEY)", vec![]),
    )
    .await;
    let tx = begin_tx(&mut gw.client, None).await;
    exec(
        &mut gw.client,
        in_tx(&tx, "sql", "INSERT INTO t VALUES ($1)", vec![i(1)]),
    )
    .await;
    exec(
        &mut gw.client,
        in_tx(&tx, "redis", "SET $1 one", vec![s("stalled")]),
    )
    .await;
    redis.pause();
    // Redis's vote (its keys' types read at prepare) never comes: the
    // commit gives up on it and rolls back. (The bound here only keeps a
    // regression from hanging the suite.)
    let commit = tokio::time::timeout(Duration::from_secs(60), commit_tx(&mut gw.client, &tx))
        .await
        .expect("the commit returns instead of waiting on the stalled engine");
    redis.resume();
    let status = commit.unwrap_err();
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    let rows = exec(
        &mut gw.client,
        request("sql", "SELECT count(*) FROM t", vec![]),
    )
    .await;
    assert_eq!(scalar(&rows), Some(Kind::Int(0)), "the row was rolled back");
    let key = exec(
        &mut gw.client,
        request("redis", "GET $1", vec![s("stalled")]),
    )
    .await;
    assert_eq!(scalar(&key), Some(Kind::Null(0)), "no write reached Redis");
    // The engine serves again once the server goes on.
    let tx = begin_tx(&mut gw.client, None).await;
    exec(
        &mut gw.client,
        in_tx(&tx, "redis", "SET $1 two", vec![s("stalled")]),
    )
    .await;
    commit_tx(&mut gw.client, &tx).await.unwrap();
    let key = exec(
        &mut gw.client,
        request("redis", "GET $1", vec![s("stalled")]),
    )
    .await;
    assert_eq!(scalar(&key), Some(Kind::String("two".into())));
}
