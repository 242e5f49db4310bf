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

/// Plain calls on a stalled Redis (and FalkorDB, a Redis server too): each
/// ends by its deadline (the bound below is the deadline plus a second's
/// margin, only to catch a call that waits on), health turns NOT_SERVING,
/// and once the server goes on health comes back and the pool serves.
#[tokio::test]
async fn calls_on_a_stalled_server_end_by_their_deadline_and_health_follows() {
    use omnigate_tests::auth::on;
    use omnigate_tests::falkordb::FalkorServer;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let (redis, mut graph) = (RedisServer::start(), FalkorServer::start());
    let mut config = redis.gateway_config();
    config.engines.insert(
        "graph".into(),
        omnigate::config::EngineConfig::new(omnigate::config::DriverConfig::Falkordb(
            omnigate_drivers::falkordb::FalkorConfig {
                url: graph.url(),
                ..Default::default()
            },
        )),
    );
    config.server.health_interval = Duration::from_millis(100);
    let mut gw = TestGateway::with_config(config).await;
    let health = HealthClient::new(gw.channel().await);
    let status = |name: &str| HealthCheckRequest {
        service: omnigate_frontends::grpc::server::engine_health_name(name),
    };
    for (target, dialect, statement) in [
        ("cache", "redis", "INCR stall"),
        ("graph", "cypher", "RETURN 1"),
    ] {
        let server = match target {
            "cache" => &redis,
            _ => &*graph.server(),
        };
        exec(&mut gw.client, on(target, dialect, statement)).await;
        server.pause();
        let deadline = Duration::from_millis(500);
        let calls: Vec<_> = (0..4)
            .map(|_| {
                let mut client = gw.client.clone();
                tokio::spawn(async move {
                    let started = std::time::Instant::now();
                    let mut request = tonic::Request::new(on(target, dialect, statement));
                    request.set_timeout(deadline);
                    (client.execute(request).await, started.elapsed())
                })
            })
            .collect();
        for call in calls {
            let (outcome, took) = call.await.unwrap();
            let status = outcome.unwrap_err();
            assert!(
                omnigate_tests::is_deadline_status(&status),
                "{target}: {status:?}"
            );
            assert!(
                took < deadline + Duration::from_secs(1),
                "{target}: a call with a {deadline:?} deadline took {took:?}"
            );
        }
        let wait_for = |want: ServingStatus| {
            let (mut health, request) = (health.clone(), status(target));
            async move {
                for _ in 0..100 {
                    let now = health.check(request.clone()).await.unwrap().into_inner();
                    if now.status == want as i32 {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                panic!("{target}: health never became {want:?}");
            }
        };
        wait_for(ServingStatus::NotServing).await;
        server.resume();
        wait_for(ServingStatus::Serving).await;
        for _ in 0..10 {
            exec(&mut gw.client, on(target, dialect, statement)).await;
        }
        let engine = omnigate_tests::engine(&mut gw.client, target).await;
        assert_eq!(engine.pool.unwrap_or_default().in_use, 0, "{target}");
    }
}
