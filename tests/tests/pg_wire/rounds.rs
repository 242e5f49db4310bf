//! Replies leave at the end of each round of messages, as PostgreSQL
//! sends them, even when the client has already sent the next statement.

use std::pin::pin;
use std::time::Duration;

use futures::FutureExt;
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;

use crate::{connect, gateway};

#[tokio::test]
async fn a_result_is_sent_before_the_next_pipelined_statement_finishes() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let (_gw, addr) = gateway(&pg, &redis).await;
    let setup = connect(addr, "app", "app-token", "main-db").await;
    setup
        .simple_query(
            "CREATE TABLE rounds_t (id INT PRIMARY KEY, v INT); INSERT INTO rounds_t VALUES (1, 0)",
        )
        .await
        .unwrap();
    // Another session holds the row.
    let holder = connect(addr, "app", "app-token", "main-db").await;
    holder
        .simple_query("BEGIN; UPDATE rounds_t SET v = 1 WHERE id = 1")
        .await
        .unwrap();
    // A client sends a quick query and, before reading its result, one
    // that waits for the row; it releases the row only once it has the
    // first result (as an application whose other connection waits on
    // it would). Held until the session next read, the first result
    // would wait for the second statement: a deadlock.
    let client = connect(addr, "app", "app-token", "main-db").await;
    let mut quick = pin!(client.simple_query("SELECT 1"));
    let mut waiting = pin!(client.simple_query("UPDATE rounds_t SET v = 2 WHERE id = 1"));
    assert!(futures::poll!(&mut quick).is_pending());
    assert!(futures::poll!(&mut waiting).is_pending());
    let first = tokio::time::timeout(Duration::from_secs(20), &mut quick)
        .await
        .expect("the first result arrives while the second statement waits");
    assert!(first.is_ok(), "{first:?}");
    assert!(
        waiting.as_mut().now_or_never().is_none(),
        "still waiting for the row"
    );
    holder.simple_query("COMMIT").await.unwrap();
    waiting.await.unwrap();
}
