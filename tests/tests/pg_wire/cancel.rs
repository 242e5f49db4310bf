//! A client's CancelRequest (tokio-postgres' `cancel_token`, as psql's
//! Ctrl-C sends it) cuts the read or the in-transaction statement its
//! session runs: 57014, in both protocols; the session goes on, a block
//! whose statement was cancelled fails, as PostgreSQL's does, and a write
//! outside a transaction runs to its end.

use std::time::{Duration, Instant};

use tokio_postgres::NoTls;

use super::{connect, gateway, gateway_idle_after, rows, sqlstate};
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;

/// Runs `query` (simple protocol, or extended when `extended`) and cancels
/// it 300 ms later; its error and how long it took.
async fn cancelled(
    client: &tokio_postgres::Client,
    query: &str,
    extended: bool,
) -> (tokio_postgres::Error, Duration) {
    let token = client.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(NoTls).await
    });
    let started = Instant::now();
    let err = if extended {
        client.query(query, &[]).await.map(drop).unwrap_err()
    } else {
        client.simple_query(query).await.map(drop).unwrap_err()
    };
    canceller.await.unwrap().unwrap();
    (err, started.elapsed())
}

#[tokio::test]
async fn a_cancel_request_cuts_the_running_statement() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let (gw, addr) = gateway(&pg, &redis).await;
    let app = connect(addr, "app", "app-token", "main-db").await;
    // A flood of CancelRequests with keys no session has (a guesser):
    // they are slowed, while the session's own cancel below still cuts.
    let guesses: Vec<_> = (0..200)
        .map(|n: i32| {
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let mut request = Vec::new();
                request.extend_from_slice(&16i32.to_be_bytes());
                request.extend_from_slice(&80_877_102i32.to_be_bytes());
                request.extend_from_slice(&n.to_be_bytes());
                request.extend_from_slice(&(n ^ 0x5a5a).to_be_bytes());
                if let Ok(mut socket) = tokio::net::TcpStream::connect(addr).await {
                    let _ = socket.write_all(&request).await;
                    let _ = socket.shutdown().await;
                }
            })
        })
        .collect();
    for extended in [false, true] {
        let (err, took) = cancelled(&app, "SELECT pg_sleep(20)", extended).await;
        assert_eq!(sqlstate(&err), "57014", "{err}");
        assert!(took < Duration::from_secs(10), "{took:?}");
        assert_eq!(rows(&app, "SELECT 1").await, [[Some("1".to_owned())]]);
    }
    for guess in guesses {
        guess.await.unwrap();
    }
    // A write outside a transaction is not cut: its effect may already be
    // committed when the cancel lands, so it runs to its end and says so.
    app.simple_query("CREATE TABLE cancel_t (v int)")
        .await
        .unwrap();
    let token = app.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(NoTls).await
    });
    app.simple_query("INSERT INTO cancel_t SELECT 1 FROM pg_sleep(1)")
        .await
        .unwrap();
    canceller.await.unwrap().unwrap();
    assert_eq!(
        rows(&app, "SELECT count(*) FROM cancel_t").await,
        [[Some("1".to_owned())]]
    );
    // Inside a block: the block fails, and only ROLLBACK ends it.
    app.simple_query("BEGIN").await.unwrap();
    let (err, _) = cancelled(&app, "SELECT pg_sleep(20)", false).await;
    assert_eq!(sqlstate(&err), "57014", "{err}");
    let after = app.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(sqlstate(&after), "25P02", "{after}");
    app.simple_query("ROLLBACK").await.unwrap();
    assert_eq!(rows(&app, "SELECT 2").await, [[Some("2".to_owned())]]);

    // Each cancel came on a connection of its own: counted, and closed.
    let metrics = gw.handle.metrics_addr().expect("the metrics listener");
    let (scrape, _) = omnigate_tests::metrics::scrape_at(metrics).await;
    let count = |name: &str, labels: &[(&str, &str)]| {
        omnigate_tests::metrics::value(&scrape, name, labels).unwrap_or(-1.0)
    };
    let accepted = count(
        "omnigate_frontend_connections_total",
        &[("frontend", "postgres"), ("outcome", "accepted")],
    );
    assert!(accepted >= 4.0, "{accepted}");
    let open = count(
        "omnigate_frontend_connections_open",
        &[("frontend", "postgres")],
    );
    assert!((1.0..accepted).contains(&open), "{open} of {accepted}");
    // Statements, by outcome: the cancelled ones failed.
    let ok = count(
        "omnigate_frontend_statements_total",
        &[("frontend", "postgres"), ("outcome", "ok")],
    );
    let failed = count(
        "omnigate_frontend_statements_total",
        &[("frontend", "postgres"), ("outcome", "error")],
    );
    assert!(ok >= 3.0 && failed >= 2.0, "ok {ok}, error {failed}");
}

/// A client silent for `idle_timeout` is closed; one that keeps speaking,
/// or waits on a statement, is not, however long it stays.
#[tokio::test]
async fn a_silent_client_is_closed_at_idle_timeout() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let (_gw, addr) = gateway_idle_after(&pg, &redis, Some(Duration::from_secs(2))).await;
    let talking = connect(addr, "app", "app-token", "main-db").await;
    let silent = connect(addr, "app", "app-token", "main-db").await;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(rows(&talking, "SELECT 1").await, [[Some("1".to_owned())]]);
    }
    assert!(silent.is_closed() || silent.simple_query("SELECT 1").await.is_err());
    assert_eq!(rows(&talking, "SELECT 2").await, [[Some("2".to_owned())]]);
    // A statement running past idle_timeout is not idleness, in either
    // protocol.
    rows(&talking, "SELECT pg_sleep(3)").await;
    talking.query("SELECT pg_sleep(3)", &[]).await.unwrap();
    assert_eq!(rows(&talking, "SELECT 3").await, [[Some("3".to_owned())]]);
}
