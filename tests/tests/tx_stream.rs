//! A stream inside a transaction streams, as outside one: on real
//! PostgreSQL the rows come in batches as the server sends them, with the
//! same memory bound (before, the whole result was built first: a 5M-row
//! stream grew the gateway by 1.7 GB), and the transaction goes on after
//! the stream ends or is dropped. Alone in its binary: it reads the
//! process's peak memory.
#![allow(clippy::unwrap_used)]

use futures::StreamExt;
use omnigate::tx::TxOptions;
use omnigate::{Gateway, Request};
use omnigate_drivers::Value;
use omnigate_tests::postgres::PgServer;

/// The process's peak resident memory so far, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_inside_a_postgres_transaction_streams_with_bounded_memory() {
    let pg = PgServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = pg.gateway_config();
    config.transactions.log = Some(dir.path().join("tx.log").display().to_string());
    let gateway = Gateway::builder().config(config).build().await.unwrap();
    gateway
        .execute(Request::new("sql", "CREATE TABLE s (n int)"))
        .await
        .unwrap();
    let tx = gateway.begin(TxOptions::default()).unwrap();
    tx.execute(Request::new("sql", "INSERT INTO s VALUES (1)"))
        .await
        .unwrap();
    // About 300 MB as values if built whole.
    let rows = 1_000_000;
    let text = format!("SELECT g, repeat('x', 200) FROM generate_series(1, {rows}) g");
    let before = peak_rss();
    let mut request = Request::new("sql", text.clone());
    request.context = request.context.in_transaction(tx.id());
    let mut stream = gateway.execute_stream(request).await.unwrap().stream;
    let mut seen = 0u64;
    while let Some(batch) = stream.batches.next().await {
        seen += batch.unwrap().len() as u64;
    }
    let grown = peak_rss().saturating_sub(before);
    assert_eq!(seen, rows);
    assert!(
        grown < 100 << 20,
        "the stream held {} MB at its peak",
        grown >> 20
    );
    // The transaction goes on: its own write is seen, and a stream dropped
    // after its first batch gives the connection back.
    let mut request = Request::new("sql", text);
    request.context = request.context.in_transaction(tx.id());
    let mut stream = gateway.execute_stream(request).await.unwrap().stream;
    assert!(stream.batches.next().await.unwrap().is_ok());
    drop(stream);
    let own = tx
        .execute(Request::new("sql", "SELECT count(*) FROM s"))
        .await
        .unwrap()
        .result;
    assert_eq!(own.rows[0][0], Value::Int(1));
    tx.commit().await.unwrap();
    let after = gateway
        .execute(Request::new("sql", "SELECT count(*) FROM s"))
        .await
        .unwrap()
        .result;
    assert_eq!(after.rows[0][0], Value::Int(1));
}
