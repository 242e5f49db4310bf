//! Draining an engine with a call and a transaction in flight on it: new
//! calls get UNAVAILABLE saying it is drained, what was in flight
//! finishes, the gateway says when the engine is idle, health follows, and
//! resuming brings it back. Other engines are untouched.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use omnigate_proto::v1 as pb;
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;
use omnigate_tests::{TestGateway, begin_tx, commit_tx, exec, i, in_tx, request, s};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

fn drain(name: &str) -> pb::DrainEngineRequest {
    pb::DrainEngineRequest {
        engine: name.into(),
    }
}

#[tokio::test]
async fn a_drained_engine_lets_work_in_flight_finish_and_takes_no_new_calls() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let mut config = pg.gateway_config_with(&redis);
    config.server.health_interval = Duration::from_millis(50);
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
    let mut client = gw.client.clone();
    let slow = tokio::spawn(async move {
        client
            .execute(request("sql", "SELECT pg_sleep(1)", vec![]))
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let left = gw
        .client
        .drain_engine(drain("main-db"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(left.calls_in_flight, 1, "{left:?}");
    assert_eq!(left.transactions_in_flight, 1, "{left:?}");
    assert!(!left.idle);
    // New work: refused, saying why and what to do.
    let refused = gw
        .client
        .execute(request("sql", "SELECT 1", vec![]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable);
    assert!(refused.message().contains("drained"), "{refused:?}");
    assert!(
        refused.message().contains("omnigate engine resume main-db"),
        "{refused:?}"
    );
    let other = begin_tx(&mut gw.client, None).await;
    let joined = gw
        .client
        .execute(in_tx(&other, "sql", "INSERT INTO t VALUES (2)", vec![]))
        .await
        .unwrap_err();
    assert_eq!(
        joined.code(),
        Code::Unavailable,
        "a new transaction part is new work"
    );
    // Health says it is out, for balancers and probes.
    let mut health = HealthClient::new(gw.channel().await);
    let service = "omnigate.engine.main-db".to_owned();
    let mut out = false;
    for _ in 0..100 {
        let status = health
            .check(HealthCheckRequest {
                service: service.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        if status == ServingStatus::NotServing as i32 {
            out = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(out, "health still says serving");
    // Another engine is untouched.
    exec(&mut gw.client, request("redis", "SET $1 v", vec![s("k")])).await;

    // What was in flight finishes: the call, then the transaction.
    slow.await.unwrap().unwrap();
    exec(
        &mut gw.client,
        in_tx(&tx, "sql", "INSERT INTO t VALUES ($1)", vec![i(3)]),
    )
    .await;
    commit_tx(&mut gw.client, &tx).await.unwrap();
    let rollback = pb::RollbackRequest { tx_id: other };
    gw.client.rollback(rollback).await.unwrap();
    let left = gw
        .client
        .drain_engine(drain("main-db"))
        .await
        .unwrap()
        .into_inner();
    assert!(left.idle, "{left:?}");

    gw.client
        .resume_engine(pb::ResumeEngineRequest {
            engine: "main-db".into(),
        })
        .await
        .unwrap();
    let rows = exec(
        &mut gw.client,
        request("sql", "SELECT count(*) FROM t", vec![]),
    )
    .await;
    assert_eq!(omnigate_tests::scalar(&rows), Some(pb::value::Kind::Int(2)));
    let unknown = gw.client.drain_engine(drain("nope")).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}
