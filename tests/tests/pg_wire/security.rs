//! Logins over TLS, and what an attacker tried.

use std::collections::BTreeMap;

use omnigate_tests::auth::{on, principal, signed};
use omnigate_tests::postgres::{PgServer, client_bin};
use omnigate_tests::redis::RedisServer;

use crate::{connect, gateway, rows, sqlstate, try_connect};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_without_a_verifier_logs_in_over_tls_only() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let dir = tempfile::tempdir().unwrap();
    let principals = BTreeMap::from([("plain".to_owned(), principal("plain-token"))]);
    let (_gw, addr, certs) = crate::tls_gateway(&pg, &redis, principals, dir.path()).await;
    let ca = certs.ca.clone();
    let psql = move |sslmode: &str| {
        std::process::Command::new(client_bin("psql"))
            .args(["-X", "-At", "-c", "SELECT 40 + 2"])
            .arg(format!(
                "host=localhost port={} user=plain dbname=main-db sslmode={sslmode} sslrootcert={}",
                addr.port(),
                ca.display()
            ))
            .env("PGPASSWORD", "plain-token")
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .expect("psql runs")
    };
    let psql_plain = psql.clone();
    let over_tls = tokio::task::spawn_blocking(move || psql("verify-full"))
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&over_tls.stderr).into_owned();
    assert!(over_tls.status.success(), "{said}");
    assert_eq!(String::from_utf8_lossy(&over_tls.stdout).trim(), "42");
    // Without TLS the token would cross in the clear: refused, as a wrong
    // password is (nothing tells a stranger which principals exist).
    let plain = tokio::task::spawn_blocking(move || psql_plain("disable"))
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&plain.stderr).into_owned();
    assert!(!plain.status.success());
    assert!(
        said.to_lowercase()
            .contains("password authentication failed"),
        "{said}"
    );
}

/// Found by reading the front end as an attacker would: each of these got
/// past a check before the lexer followed PostgreSQL's (a carriage return
/// ends a line comment, comments nest, empty statements vanish), before
/// transaction control was refused on pooled connections, before a live
/// session re-checked its credentials, and before the extended protocol
/// kept PostgreSQL's failed-block rule.
#[tokio::test]
async fn what_an_attacker_tried_is_refused() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let (mut gw, addr) = gateway(&pg, &redis).await;
    let app = connect(addr, "app", "app-token", "main-db").await;
    app.simple_query("CREATE TABLE atk (id INT)").await.unwrap();

    // A read-only principal cannot lift its block's access mode behind a
    // comment the old lexer read to the end of the text.
    let reader = connect(addr, "reader", "reader-token", "main-db").await;
    reader.simple_query("BEGIN").await.unwrap();
    let lift = reader
        .simple_query("-- x\rSET TRANSACTION READ WRITE")
        .await
        .unwrap_err();
    assert!(
        matches!(sqlstate(&lift).as_str(), "25006" | "42501"),
        "{lift}"
    );
    reader.simple_query("ROLLBACK").await.unwrap();
    let write = reader
        .simple_query("-- x\rINSERT INTO atk VALUES (1)")
        .await
        .unwrap_err();
    assert!(
        matches!(sqlstate(&write).as_str(), "25006" | "42501"),
        "{write}"
    );

    // Transaction control never reaches a pooled connection outside a
    // transaction, however it is dressed (nor over gRPC).
    for hidden in ["/* /* */ */ BEGIN", "-- x\rBEGIN", ";BEGIN"] {
        let err = app.simple_query(hidden).await;
        // The session answers BEGIN itself (a gateway transaction) or the
        // engine's driver refuses it: never an engine-side block.
        if err.is_ok() {
            app.simple_query("ROLLBACK").await.unwrap();
        }
        let grpc = gw
            .client
            .execute(signed("app-token", on("main-db", "sql", hidden)))
            .await
            .unwrap_err();
        assert_eq!(
            grpc.code(),
            tonic::Code::FailedPrecondition,
            "{hidden}: {grpc:?}"
        );
    }
    // Settings changed through pg_settings do not outlive the statement.
    app.simple_query("UPDATE pg_settings SET setting = 'evil, public' WHERE name = 'search_path'")
        .await
        .unwrap();
    for _ in 0..8 {
        let path = rows(&app, "SHOW search_path").await;
        assert!(!format!("{path:?}").contains("evil"), "{path:?}");
    }

    // Only the plain forms end a block.
    app.simple_query("BEGIN").await.unwrap();
    let chain = app.simple_query("COMMIT AND CHAIN").await.unwrap_err();
    assert_eq!(sqlstate(&chain), "0A000", "{chain}");
    app.simple_query("ROLLBACK").await.unwrap();

    // The extended protocol keeps the failed-block rule.
    app.simple_query("BEGIN").await.unwrap();
    assert!(app.query("SELECT nope FROM atk", &[]).await.is_err());
    let after = app
        .query("SELECT count(*) FROM atk", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&after), "25P02", "{after}");
    app.simple_query("ROLLBACK").await.unwrap();

    // An unknown user and a wrong password look alike.
    let unknown = try_connect(addr, "nobody", "x", "main-db")
        .await
        .unwrap_err();
    let wrong = try_connect(addr, "app", "x", "main-db").await.unwrap_err();
    assert_eq!(sqlstate(&unknown), "28P01");
    assert_eq!(sqlstate(&wrong), "28P01");
    assert_eq!(
        unknown.to_string().replace("nobody", "USER"),
        wrong.to_string().replace("app", "USER")
    );

    // A token taken away ends the sessions that logged in with it.
    let mut config = gw.gateway.current_config().await;
    config.principals.remove("app");
    gw.gateway.reload(config).await.unwrap();
    let revoked = app.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(sqlstate(&revoked), "28000", "{revoked}");
    assert!(app.is_closed() || app.simple_query("SELECT 1").await.is_err());
}

#[tokio::test]
async fn a_message_past_max_request_bytes_is_refused_after_login() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let (_gw, addr) = gateway(&pg, &redis).await;
    let app = connect(addr, "app", "app-token", "main-db").await;
    // Under the cap (4 MiB by default): the engine runs it.
    let fits = format!("SELECT length('{}')", "x".repeat(1 << 20));
    let rows = app.simple_query(&fits).await.unwrap();
    let length = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
        _ => None,
    });
    assert_eq!(length.as_deref(), Some("1048576"));
    // Past it: refused by its header, before its body is taken in, and
    // the connection ends (pgwire alone takes up to 1 GB after login).
    let past = format!("SELECT length('{}')", "x".repeat(5 << 20));
    let refused = app.simple_query(&past).await.unwrap_err();
    assert_eq!(sqlstate(&refused), "54000", "{refused}");
    let said = refused.as_db_error().map(|e| e.message().to_owned());
    assert!(
        said.as_deref()
            .is_some_and(|m| m.contains("max_request_bytes")),
        "{said:?}"
    );
    assert!(
        app.simple_query("SELECT 1").await.is_err(),
        "the connection ended"
    );
    // Other sessions are served as before.
    let other = connect(addr, "app", "app-token", "main-db").await;
    other.simple_query("SELECT 1").await.unwrap();
}
