//! ListEngines, Describe, health, reflection and graceful shutdown.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures::StreamExt;
use omnigate_proto::v1 as pb;
use omnigate_tests::{TestGateway, exec, request};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

#[tokio::test]
async fn list_engines_reports_kind_dialects_health_and_pool() {
    let mut gw = TestGateway::start().await;
    exec(&mut gw.client, request("sql", "SELECT 1", vec![])).await;
    let engines = gw
        .client
        .list_engines(pb::ListEnginesRequest {})
        .await
        .unwrap()
        .into_inner()
        .engines;
    let summary: Vec<(&str, &str, Vec<String>)> = engines
        .iter()
        .map(|e| (e.name.as_str(), e.kind.as_str(), e.dialects.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            ("cache", "memory", vec!["redis".to_owned(), "ts".to_owned()]),
            ("main", "sqlite", vec!["sql".to_owned()])
        ]
    );
    for engine in &engines {
        assert_eq!(
            engine.health.as_ref().unwrap().status(),
            pb::health::Status::Serving,
            "{}",
            engine.name
        );
    }
    let pool = engines[1].pool.unwrap();
    assert_eq!(pool.max_size, 4);
    assert!(
        pool.created >= 1 && pool.acquired > pool.created,
        "{pool:?}"
    );
    assert!(engines[0].counters.contains_key("keys"));
}

#[tokio::test]
async fn describe_lists_tables_and_ddl_refreshes_the_cache() {
    let mut gw = TestGateway::start().await;
    let c = &mut gw.client;
    exec(
        c,
        request(
            "sql",
            "CREATE TABLE a (id INTEGER PRIMARY KEY, note TEXT NOT NULL)",
            vec![],
        ),
    )
    .await;
    let describe = |name: &str| pb::DescribeRequest {
        target: "main".into(),
        name: name.into(),
        ..Default::default()
    };
    let first = c.describe(describe("")).await.unwrap().into_inner();
    assert_eq!(first.engine, "main");
    assert_eq!(first.kind, "sqlite");
    let names: Vec<&str> = first.objects.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["a"]);
    let table = &first.objects[0];
    assert_eq!(table.primary_key, ["id"]);
    assert_eq!(table.columns[1].name, "note");
    assert!(!table.columns[1].nullable);
    c.describe(describe("")).await.unwrap();

    exec(c, request("sql", "CREATE TABLE b (x TEXT)", vec![])).await;
    let after = c.describe(describe("")).await.unwrap().into_inner();
    let names: Vec<&str> = after.objects.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        names,
        ["a", "b"],
        "DDL through the gateway drops the cached schema"
    );
    let only_b = c.describe(describe("b")).await.unwrap().into_inner();
    assert_eq!(only_b.objects.len(), 1);

    let counters = omnigate_tests::engine(c, "main").await.counters;
    assert_eq!(counters["schema_cache_hits"], 1);
    assert_eq!(counters["schema_cache_misses"], 3);
    assert!(counters["schema_cache_invalidations"] >= 1);

    let by_dialect = c
        .describe(pb::DescribeRequest {
            dialect: "redis".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_dialect.into_inner().objects[0].kind, "keyspace");
    let status = c
        .describe(pb::DescribeRequest {
            target: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn standard_health_reports_the_gateway_and_each_engine() {
    let gw = TestGateway::start().await;
    let mut health = HealthClient::new(gw.channel().await);
    for service in [
        "",
        "omnigate.v1.Gateway",
        "omnigate.engine.cache",
        "omnigate.engine.main",
    ] {
        let reply = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.status(), ServingStatus::Serving, "{service:?}");
    }
    let status = health
        .check(HealthCheckRequest {
            service: "omnigate.engine.nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn reflection_lists_and_describes_the_api() {
    let gw = TestGateway::start().await;
    let mut reflection = ServerReflectionClient::new(gw.channel().await);
    let ask = |message| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message),
    };
    let requests = futures::stream::iter([
        ask(MessageRequest::ListServices(String::new())),
        ask(MessageRequest::FileContainingSymbol(
            "omnigate.v1.Gateway".into(),
        )),
    ]);
    let mut replies = reflection
        .server_reflection_info(requests)
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        replies.next().await.unwrap().unwrap().message_response
    else {
        panic!("a service list")
    };
    let services: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in ["omnigate.v1.Gateway", "grpc.health.v1.Health"] {
        assert!(
            services.iter().any(|s| s == expected),
            "{expected} in {services:?}"
        );
    }
    let Some(MessageResponse::FileDescriptorResponse(files)) =
        replies.next().await.unwrap().unwrap().message_response
    else {
        panic!("file descriptors")
    };
    assert!(!files.file_descriptor_proto.is_empty());
}

/// Waits until the SQLite engine has a connection in use (the call started).
async fn wait_until_running(gw: &TestGateway) {
    for _ in 0..500 {
        let engines = gw
            .gateway
            .engines(&omnigate::CallContext::anonymous())
            .await
            .unwrap();
        if engines
            .iter()
            .any(|e| e.name == "main" && e.pool.in_use > 0)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the call never started");
}

#[tokio::test]
async fn shutdown_lets_in_flight_calls_finish() {
    let gw = TestGateway::start().await;
    let mut client = gw.client.clone();
    let endless =
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT COUNT(*) FROM n";
    let mut req = request("sql", endless, vec![]);
    req.options = Some(pb::ExecuteOptions {
        timeout: Some(prost_types::Duration {
            seconds: 0,
            nanos: 400_000_000,
        }),
        ..Default::default()
    });
    let in_flight = tokio::spawn(async move { client.execute(req).await });
    wait_until_running(&gw).await;
    let clean = gw.handle.shutdown(Duration::from_secs(10)).await.unwrap();
    assert!(clean, "the in-flight call finished within the grace period");
    let status = in_flight.await.unwrap().unwrap_err();
    assert_eq!(
        status.code(),
        Code::DeadlineExceeded,
        "the call got its own result, not a cut connection: {status:?}"
    );
}

#[tokio::test]
async fn shutdown_cuts_calls_that_outlive_the_grace_period() {
    let gw = TestGateway::start().await;
    let mut client = gw.client.clone();
    let endless =
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT COUNT(*) FROM n";
    let in_flight =
        tokio::spawn(async move { client.execute(request("sql", endless, vec![])).await });
    wait_until_running(&gw).await;
    let clean = gw
        .handle
        .shutdown(Duration::from_millis(200))
        .await
        .unwrap();
    assert!(
        !clean,
        "the endless call was cut at the end of the grace period"
    );
    let status = in_flight.await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("shutting down"), "{status:?}");
}
