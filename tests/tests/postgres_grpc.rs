//! The gateway over gRPC with a real PostgreSQL engine: large streams in
//! bounded memory, cancellation on the server, deadlines, Describe.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures::StreamExt;
use omnigate_proto::v1 as pb;
use omnigate_tests::postgres::PgServer;
use omnigate_tests::{TestGateway, exec, i, request, scalar};
use pb::value::Kind;
use tonic::Code;

async fn gateway(server: &PgServer) -> TestGateway {
    TestGateway::with_config(server.gateway_config()).await
}

/// This process's resident memory, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_million_row_stream_flows_in_bounded_memory() {
    let server = PgServer::start();
    let mut gw = gateway(&server).await;
    // ~230 MB of rows if held at once.
    let mut req = request(
        "sql",
        "SELECT i, repeat('x', 200) AS pad FROM generate_series(1, 1000000) AS i",
        vec![],
    );
    req.options = Some(pb::ExecuteOptions {
        batch_size: 1000,
        timeout: Some(prost_types::Duration {
            seconds: 600,
            nanos: 0,
        }),
        ..Default::default()
    });
    let before = rss_kib();
    let mut peak = before;
    let mut stream = gw.client.execute_stream(req).await.unwrap().into_inner();
    let (mut rows, mut last) = (0usize, 0i64);
    while let Some(message) = stream.next().await {
        let message = message.unwrap();
        rows += message.rows.len();
        if let Some(Kind::Int(n)) = message.rows.last().and_then(|r| r.values[0].kind.clone()) {
            last = n;
        }
        peak = peak.max(rss_kib());
    }
    assert_eq!(rows, 1_000_000);
    assert_eq!(last, 1_000_000, "rows arrive in order");
    let growth_mib = (peak.saturating_sub(before)) / 1024;
    eprintln!("streamed {rows} rows; resident memory grew by {growth_mib} MiB");
    assert!(
        growth_mib < 96,
        "memory grew by {growth_mib} MiB while streaming ~230 MB of rows"
    );
}

#[tokio::test]
async fn a_cancelled_stream_stops_the_query_on_the_server() {
    let server = PgServer::start();
    let mut gw = gateway(&server).await;
    let endless = "SELECT i, pg_sleep(0.001) FROM generate_series(1, 100000000) AS i";
    let mut req = request("sql", endless, vec![]);
    req.options = Some(pb::ExecuteOptions {
        batch_size: 10,
        ..Default::default()
    });
    let mut stream = gw.client.execute_stream(req).await.unwrap().into_inner();
    assert_eq!(stream.next().await.unwrap().unwrap().rows.len(), 10);
    drop(stream);
    let probe = "SELECT count(*)::int8 FROM pg_stat_activity WHERE query LIKE '%generate_series(1, 100000000)%' AND pid <> pg_backend_pid() AND state = 'active'";
    let mut stopped = false;
    for _ in 0..50 {
        let active = exec(&mut gw.client, request("sql", probe, vec![])).await;
        if scalar(&active) == Some(Kind::Int(0)) {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        stopped,
        "the server stopped the query once the client went away"
    );
}

#[tokio::test]
async fn a_grpc_deadline_cancels_pg_sleep_and_the_engine_keeps_serving() {
    let server = PgServer::start();
    let mut gw = gateway(&server).await;
    for _ in 0..3 {
        let mut call = tonic::Request::new(request("sql", "SELECT pg_sleep(30)", vec![]));
        call.set_timeout(Duration::from_millis(300));
        let status = gw.client.execute(call).await.unwrap_err();
        assert!(omnigate_tests::is_deadline_status(&status), "{status:?}");
    }
    // Without a client deadline the gateway's own answer is deterministic.
    let mut req = request("sql", "SELECT pg_sleep(30)", vec![]);
    req.options = Some(pb::ExecuteOptions {
        timeout: Some(prost_types::Duration {
            seconds: 0,
            nanos: 300_000_000,
        }),
        ..Default::default()
    });
    let status = gw.client.execute(req).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let sleeping = "SELECT count(*)::int8 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'";
    let mut cancelled = false;
    for _ in 0..50 {
        if scalar(&exec(&mut gw.client, request("sql", sleeping, vec![])).await)
            == Some(Kind::Int(0))
        {
            cancelled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(cancelled, "every pg_sleep was cancelled on the server");
    let ok = exec(
        &mut gw.client,
        request("sql", "SELECT $1::int8 + 1", vec![i(41)]),
    )
    .await;
    assert_eq!(scalar(&ok), Some(Kind::Int(42)));
    let engine = omnigate_tests::engine(&mut gw.client, "main-db").await;
    let pool = engine.pool.unwrap();
    // Every connection a cancel was sent to leaves the pool (a late cancel
    // must never hit another caller's query): one per cancelled call, plus
    // the one that serves the rest.
    assert!(pool.created <= 1 + 4, "{pool:?}");
    assert_eq!(engine.kind, "postgres");
}

#[tokio::test]
async fn describe_and_ddl_through_the_gateway() {
    let server = PgServer::start();
    let mut gw = gateway(&server).await;
    exec(
        &mut gw.client,
        request(
            "sql",
            "CREATE TABLE orders (id bigint PRIMARY KEY, note text, total numeric(10,2) NOT NULL)",
            vec![],
        ),
    )
    .await;
    let described = gw
        .client
        .describe(pb::DescribeRequest {
            dialect: "sql".into(),
            name: "orders".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(described.kind, "postgres");
    let table = &described.objects[0];
    assert_eq!(
        (
            table.schema.as_str(),
            table.name.as_str(),
            table.kind.as_str()
        ),
        ("public", "orders", "table")
    );
    assert_eq!(table.primary_key, ["id"]);
    let columns: Vec<(&str, &str, bool)> = table
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.type_name.as_str(), c.nullable))
        .collect();
    assert_eq!(
        columns,
        [
            ("id", "bigint", false),
            ("note", "text", true),
            ("total", "numeric(10,2)", false)
        ]
    );
    exec(
        &mut gw.client,
        request(
            "sql",
            "ALTER TABLE orders ADD COLUMN placed timestamptz",
            vec![],
        ),
    )
    .await;
    let again = gw
        .client
        .describe(pb::DescribeRequest {
            dialect: "sql".into(),
            name: "orders".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again.objects[0].columns.len(),
        4,
        "DDL through the gateway refreshed the cached schema"
    );
}
