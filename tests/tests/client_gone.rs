//! A client that goes away mid-batch or mid-transaction: the work on the
//! engine is cancelled, the connection comes back clean, and an abandoned
//! transaction is rolled back at its idle timeout. (Mid-stream:
//! `postgres_grpc.rs`, `a_cancelled_stream_stops_the_query_on_the_server`.)
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use omnigate_proto::v1 as pb;
use omnigate_tests::postgres::PgServer;
use omnigate_tests::{TestGateway, begin_tx, exec, i, in_tx, request, scalar};
use pb::value::Kind;

type Client = pb::gateway_client::GatewayClient<tonic::transport::Channel>;

/// Waits until `probe` (a count) is 0; false after five seconds.
async fn reaches_zero(client: &mut Client, probe: &str) -> bool {
    for _ in 0..50 {
        let count = exec(client, request("sql", probe, vec![])).await;
        if scalar(&count) == Some(Kind::Int(0)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn a_batch_the_client_abandons_stops_on_the_server() {
    let pg = PgServer::start();
    let mut gw = TestGateway::with_config(pg.gateway_config_with_pool(4)).await;
    let mut client = gw.client.clone();
    let batch = tokio::spawn(async move {
        client
            .execute_batch(pb::ExecuteBatchRequest {
                dialect: "sql".into(),
                statements: ["SELECT 1", "SELECT pg_sleep(30)", "SELECT 2"]
                    .map(|s| pb::BatchStatement {
                        statement: s.into(),
                        ..Default::default()
                    })
                    .into(),
                ..Default::default()
            })
            .await
    });
    let sleeping = "SELECT count(*)::int8 FROM pg_stat_activity \
                    WHERE query LIKE '%pg_sleep(30)%' AND state = 'active' \
                    AND pid <> pg_backend_pid()";
    let mut started = false;
    for _ in 0..50 {
        let count = exec(&mut gw.client, request("sql", sleeping, vec![])).await;
        if scalar(&count) == Some(Kind::Int(1)) {
            started = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(started, "the batch reached its slow statement");
    batch.abort();
    assert!(
        reaches_zero(&mut gw.client, sleeping).await,
        "the server stopped the batch once the client went away"
    );
    let engine = omnigate_tests::engine(&mut gw.client, "main-db").await;
    assert_eq!(engine.pool.unwrap_or_default().in_use, 0);
    exec(&mut gw.client, request("sql", "SELECT 1", vec![])).await;
}

#[tokio::test]
async fn a_transaction_the_client_abandons_is_rolled_back_at_its_idle_timeout() {
    let pg = PgServer::start();
    let mut config = pg.gateway_config_with_pool(4);
    config.transactions.idle_timeout = Duration::from_millis(500);
    let mut gw = TestGateway::with_config(config).await;
    exec(
        &mut gw.client,
        request("sql", "CREATE TABLE gone (id int PRIMARY KEY)", vec![]),
    )
    .await;
    // Another client begins and writes, then goes away without a word.
    let mut other = pb::gateway_client::GatewayClient::new(gw.channel().await);
    let tx = begin_tx(&mut other, None).await;
    exec(
        &mut other,
        in_tx(&tx, "sql", "INSERT INTO gone VALUES ($1)", vec![i(1)]),
    )
    .await;
    drop(other);
    let idle_in_tx = "SELECT count(*)::int8 FROM pg_stat_activity \
                      WHERE state LIKE 'idle in transaction%'";
    assert!(
        reaches_zero(&mut gw.client, idle_in_tx).await,
        "the abandoned transaction was rolled back on the server"
    );
    let rows = exec(
        &mut gw.client,
        request("sql", "SELECT count(*)::int8 FROM gone", vec![]),
    )
    .await;
    assert_eq!(scalar(&rows), Some(Kind::Int(0)), "its row is gone");
    assert_eq!(gw.gateway.open_transactions(), 0);
    let counters = gw.gateway.transaction_counters().await;
    let expired = counters
        .iter()
        .find(|(k, _)| k == "expired")
        .map(|(_, v)| *v);
    assert_eq!(expired, Some(1), "{counters:?}");
    let engine = omnigate_tests::engine(&mut gw.client, "main-db").await;
    assert_eq!(engine.pool.unwrap_or_default().in_use, 0);
}
