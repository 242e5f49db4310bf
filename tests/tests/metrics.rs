//! `/metrics` scraped over HTTP during calls on real PostgreSQL and Redis,
//! parsed with a Prometheus text-format parser: the gRPC ecosystem's names
//! and labels, Omnigate's own, and counts that match the calls made.
#![allow(clippy::unwrap_used)]

use omnigate_proto::v1 as pb;
use omnigate_tests::metrics::{scrape_at, value};
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;
use omnigate_tests::{TestGateway, request, s};
use tonic_types::StatusExt;

#[tokio::test]
async fn a_scrape_counts_the_calls_made_with_bounded_labels() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let mut config = pg.gateway_config_with(&redis);
    config.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
    let mut gw = TestGateway::with_config(config).await;
    let addr = gw.handle.metrics_addr().expect("the metrics endpoint");
    let secret = "param-value-9c2e";
    for _ in 0..5 {
        gw.client
            .execute(request("sql", "SELECT $1::text", vec![s(secret)]))
            .await
            .unwrap();
    }
    for _ in 0..3 {
        gw.client
            .execute(request("redis", "GET $1", vec![s(secret)]))
            .await
            .unwrap();
    }
    let mut kind = String::new();
    for _ in 0..2 {
        let failed = gw
            .client
            .execute(request("sql", "SELEKT 1", vec![]))
            .await
            .unwrap_err();
        kind = failed.get_details_error_info().unwrap().reason;
    }
    let unknown = gw.client.execute(request("mongo", "find", vec![])).await;
    assert!(unknown.is_err());
    let mut stream = gw
        .client
        .execute_stream(request("sql", "SELECT generate_series(1, 10)", vec![]))
        .await
        .unwrap()
        .into_inner();
    while stream.message().await.unwrap().is_some() {}
    gw.client
        .list_engines(pb::ListEnginesRequest {})
        .await
        .unwrap();

    let (scrape, text) = scrape_at(addr).await;
    let gateway = [("grpc_service", "omnigate.v1.Gateway")];
    let execute = [
        gateway[0],
        ("grpc_method", "Execute"),
        ("grpc_type", "unary"),
    ];
    let with = |extra: (&'static str, &'static str)| {
        let mut labels = execute.to_vec();
        labels.push(extra);
        labels
    };
    assert_eq!(
        value(&scrape, "grpc_server_started_total", &execute),
        Some(11.0)
    );
    assert_eq!(
        value(
            &scrape,
            "grpc_server_handled_total",
            &with(("grpc_code", "OK"))
        ),
        Some(8.0)
    );
    assert_eq!(
        value(
            &scrape,
            "grpc_server_handled_total",
            &with(("grpc_code", "InvalidArgument"))
        ),
        Some(3.0),
        "two bad statements and an unknown dialect"
    );
    assert_eq!(
        value(&scrape, "grpc_server_handling_seconds_count", &execute),
        Some(11.0)
    );
    let streamed = [
        gateway[0],
        ("grpc_method", "ExecuteStream"),
        ("grpc_type", "server_stream"),
        ("grpc_code", "OK"),
    ];
    assert_eq!(
        value(&scrape, "grpc_server_handled_total", &streamed),
        Some(1.0)
    );
    // Omnigate's own: by engine and dialect, errors by kind.
    let sql = [("engine", "main-db"), ("dialect", "sql")];
    assert_eq!(value(&scrape, "omnigate_requests_total", &sql), Some(8.0));
    assert_eq!(
        value(&scrape, "omnigate_statement_seconds_count", &sql),
        Some(8.0)
    );
    let errors = [sql[0], sql[1], ("kind", kind.as_str())];
    assert_eq!(value(&scrape, "omnigate_errors_total", &errors), Some(2.0));
    let redis_calls = [("engine", "cache"), ("dialect", "redis")];
    assert_eq!(
        value(&scrape, "omnigate_requests_total", &redis_calls),
        Some(3.0)
    );
    for engine in ["main-db", "cache"] {
        let of = [("engine", engine)];
        assert_eq!(
            value(&scrape, "omnigate_engine_up", &of),
            Some(1.0),
            "{engine}"
        );
        assert!(
            value(&scrape, "omnigate_pool_max", &of).unwrap() >= 1.0,
            "{engine}"
        );
        assert!(
            value(&scrape, "omnigate_pool_size", &of).is_some(),
            "{engine}"
        );
        assert!(value(&scrape, "omnigate_pool_acquired_total", &of).is_some());
        assert!(value(&scrape, "omnigate_pool_wait_seconds_total", &of).unwrap() >= 0.0);
    }
    assert!(
        value(
            &scrape,
            "omnigate_transactions_total",
            &[("outcome", "begun")]
        )
        .is_some()
    );
    // Bounded labels only: no statement text, key or parameter.
    for leak in [secret, "SELECT", "SELEKT", "mongo"] {
        assert!(!text.contains(leak), "the scrape shows {leak}");
    }
    // The Grafana dashboard asks only for metrics the gateway exports.
    let dashboard =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/grafana/omnigate.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dashboard).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let mut asked = 0;
    for target in panels.iter().flat_map(|p| p["targets"].as_array().unwrap()) {
        let expr = target["expr"].as_str().unwrap();
        for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("omnigate_") || word.starts_with("grpc_server_") {
                assert!(
                    text.contains(word),
                    "the dashboard asks for {word}, not exported"
                );
                asked += 1;
            }
        }
    }
    assert!(asked >= 8, "the dashboard's panels use the metrics");
    // A scrape touches no engine: the engines' call counts are unchanged.
    let (again, _) = scrape_at(addr).await;
    assert_eq!(value(&again, "omnigate_requests_total", &sql), Some(8.0));
}

/// Paths that name no method of the server count under one `unknown`
/// series: a client cannot grow the label sets (each path was a new
/// series before).
#[tokio::test]
async fn unknown_paths_do_not_grow_the_label_sets() {
    let mut config = omnigate::Config::default();
    config.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
    let gw = TestGateway::with_config(config).await;
    let addr = gw.handle.metrics_addr().expect("the metrics endpoint");
    let mut grpc = tonic::client::Grpc::new(gw.channel().await);
    for i in 0..20 {
        grpc.ready().await.unwrap();
        let path = format!("/evil.Service{i}/Method{i}").parse().unwrap();
        let codec =
            tonic_prost::ProstCodec::<pb::ListEnginesRequest, pb::ListEnginesResponse>::default();
        let status = grpc
            .unary(tonic::Request::new(pb::ListEnginesRequest {}), path, codec)
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unimplemented);
    }
    let (scrape, text) = scrape_at(addr).await;
    assert!(!text.contains("evil"), "a client's path became a label");
    assert_eq!(
        value(
            &scrape,
            "grpc_server_started_total",
            &[("grpc_service", "unknown"), ("grpc_method", "unknown")]
        ),
        Some(20.0)
    );
    assert_eq!(
        value(
            &scrape,
            "grpc_server_handled_total",
            &[("grpc_service", "unknown"), ("grpc_code", "Unimplemented")]
        ),
        Some(20.0)
    );
}
