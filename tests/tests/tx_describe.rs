//! Describing a statement inside a transaction (a PostgreSQL-wire client's
//! Parse): it runs on the transaction's own connection, so a Parse that
//! fails there aborts PostgreSQL's block, and the transaction must then
//! roll back everywhere, never commit on the other engines while
//! PostgreSQL's part is silently gone.
#![allow(clippy::unwrap_used)]

use omnigate::config::Config;
use omnigate::{CallContext, Error, Gateway, Request, TxOptions};
use omnigate_drivers::Value;
use omnigate_tests::library::first;
use omnigate_tests::postgres::PgServer;

#[tokio::test]
async fn a_failed_describe_in_a_block_rolls_the_transaction_back_everywhere() {
    let server = PgServer::start();
    // The embedded default (SQLite `main`, which decides) and PostgreSQL
    // `main-db`, which prepares.
    let mut config = Config::default();
    let pg = server.gateway_config().engines.remove("main-db").unwrap();
    config.engines.insert("main-db".into(), pg);
    let gateway = Gateway::builder().config(config).build().await.unwrap();
    for (table, target) in [("d_pg", "main-db"), ("d_lite", "main")] {
        let create = Request::new("sql", format!("CREATE TABLE {table} (id INTEGER)"));
        gateway.execute(create.target(target)).await.unwrap();
    }

    let tx = gateway.begin(TxOptions::default()).unwrap();
    let in_tx = |text: &str, target: &str| {
        let mut request = Request::new("sql", text).target(target);
        request.context = CallContext::anonymous().in_transaction(tx.id());
        request
    };
    gateway
        .execute(in_tx("INSERT INTO d_pg VALUES (1)", "main-db"))
        .await
        .unwrap();
    gateway
        .execute(in_tx("INSERT INTO d_lite VALUES (1)", "main"))
        .await
        .unwrap();
    // A Parse of a statement PostgreSQL refuses, in the block.
    let refused = gateway
        .describe_statement(in_tx("SELECT nope FROM d_pg", "main-db"))
        .await;
    assert!(refused.is_err(), "{refused:?}");
    let committed = tx.commit().await;
    assert!(
        matches!(committed, Err(Error::TxAborted { .. })),
        "the commit is refused: {committed:?}"
    );
    let count = |target: &'static str, table: &'static str| {
        let gateway = gateway.clone();
        async move {
            first(
                &gateway,
                "sql",
                &format!("SELECT count(*) FROM {table}"),
                Some(target),
            )
            .await
        }
    };
    assert_eq!(
        count("main", "d_lite").await,
        Value::Int(0),
        "nothing on SQLite"
    );
    assert_eq!(
        count("main-db", "d_pg").await,
        Value::Int(0),
        "nothing on PostgreSQL"
    );
}
