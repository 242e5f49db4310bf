//! The postgres engine against a real PostgreSQL server: conformance,
//! SQLSTATE mapping, cancellation, pool behaviour and server restarts.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use omnigate_drivers::conformance::{error, sql, value};
use omnigate_drivers::postgres::{PostgresConfig, PostgresDriver};
use omnigate_drivers::{Dialect, Error, ExecuteOptions, Health, Statement, StorageDriver, Value};
use omnigate_tests::postgres::PgServer;

fn config(server: &PgServer) -> PostgresConfig {
    PostgresConfig {
        url: server.url("postgres"),
        ..PostgresConfig::default()
    }
}

async fn engine(server: &PgServer) -> PostgresDriver {
    PostgresDriver::connect("pg", config(server)).await.unwrap()
}

/// An engine with a pool of one connection, so every call reuses it.
async fn one_connection(server: &PgServer) -> PostgresDriver {
    let config = PostgresConfig {
        max_connections: 1,
        ..config(server)
    };
    PostgresDriver::connect("pg", config).await.unwrap()
}

#[tokio::test]
async fn passes_the_sql_conformance_suite() {
    let server = PgServer::start();
    sql::run_all(&engine(&server).await).await;
}

#[tokio::test]
async fn sqlstates_map_to_meaning_and_keep_the_code() {
    let server = PgServer::start();
    let d = &engine(&server).await;
    for setup in [
        "CREATE TABLE parent (id int PRIMARY KEY)",
        "CREATE TABLE child (id int PRIMARY KEY, parent int REFERENCES parent(id), qty int CONSTRAINT qty_positive CHECK (qty > 0))",
        "INSERT INTO parent VALUES (1)",
        "INSERT INTO child VALUES (1, 1, 1)",
    ] {
        value(d, Dialect::Sql, setup, &[]).await;
    }
    let raise = |code: &str| {
        format!("DO $$ BEGIN RAISE EXCEPTION 'raised' USING ERRCODE = '{code}'; END $$")
    };
    let cases: Vec<(String, &str, &str)> = vec![
        ("SELEC 1".into(), "42601", "INVALID_STATEMENT"),
        ("SELECT * FROM nope".into(), "42P01", "NOT_FOUND"),
        (
            "INSERT INTO parent VALUES (1)".into(),
            "23505",
            "CONSTRAINT_VIOLATION",
        ),
        (
            "INSERT INTO child VALUES (2, 99, 1)".into(),
            "23503",
            "CONSTRAINT_VIOLATION",
        ),
        (
            "INSERT INTO child VALUES (3, 1, -5)".into(),
            "23514",
            "CONSTRAINT_VIOLATION",
        ),
        (raise("40001"), "40001", "CONFLICT"),
        (raise("40P01"), "40P01", "CONFLICT"),
        ("SELECT 1 / 0".into(), "22012", "INVALID_STATEMENT"),
    ];
    for (statement, code, kind) in cases {
        let err = error(d, Dialect::Sql, &statement, &[]).await;
        assert_eq!(err.engine_code(), Some(code), "{statement}: {err}");
        assert_eq!(err.kind(), kind, "{statement}: {err}");
    }
    let unique = error(
        d,
        Dialect::Sql,
        "INSERT INTO parent VALUES ($1)",
        &[Value::Int(1)],
    )
    .await;
    assert!(
        unique.to_string().contains("parent_pkey"),
        "the constraint is named: {unique}"
    );
    assert!(
        !unique.to_string().contains("(id)=(1)"),
        "the DETAIL with values is left out: {unique}"
    );
    let check = error(d, Dialect::Sql, "INSERT INTO child VALUES (3, 1, -5)", &[]).await;
    assert!(check.to_string().contains("qty_positive"), "{check}");
    assert!(
        error(d, Dialect::Sql, raise("40001").as_str(), &[])
            .await
            .is_retryable()
    );
    let syntax = error(d, Dialect::Sql, "SELECT 1 FROM WHERE", &[]).await;
    assert!(syntax.to_string().contains("at character"), "{syntax}");
}

#[tokio::test]
async fn a_deadline_cancels_the_statement_on_the_server_and_the_pool_stays_healthy() {
    let server = PgServer::start();
    let d = one_connection(&server).await;
    let options = ExecuteOptions {
        timeout: Some(Duration::from_millis(200)),
        ..ExecuteOptions::default()
    };
    for _ in 0..3 {
        let err = d
            .execute(
                Dialect::Sql,
                &Statement::new("SELECT pg_sleep(30)"),
                &options,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Timeout { after } if after == Duration::from_millis(200)),
            "{err}"
        );
        // The cancelled connection was replaced at once.
        let active = value(
            &d,
            Dialect::Sql,
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'",
            &[],
        )
        .await;
        assert_eq!(
            active,
            Value::Int(0),
            "the sleeping query was cancelled on the server"
        );
    }
    let stats = d.pool_stats();
    // A connection a cancel was sent to never serves another call (a late
    // cancel must not hit someone else's query): each timeout replaced it.
    assert_eq!(
        stats.created, 4,
        "each cancelled connection was replaced: {stats:?}"
    );
    assert_eq!(d.health().await, Health::Serving);
}

#[tokio::test]
async fn many_tasks_share_a_small_pool_without_deadlock() {
    let server = PgServer::start();
    let d = Arc::new(
        PostgresDriver::connect(
            "pg",
            PostgresConfig {
                max_connections: 3,
                ..config(&server)
            },
        )
        .await
        .unwrap(),
    );
    value(
        d.as_ref(),
        Dialect::Sql,
        "CREATE TABLE hits (task int, n int)",
        &[],
    )
    .await;
    let tasks = (0..48).map(|task| {
        let d = Arc::clone(&d);
        tokio::spawn(async move {
            for n in 0..10 {
                let statement = Statement::new("INSERT INTO hits VALUES ($1, $2)")
                    .bind(task)
                    .bind(n);
                d.execute(Dialect::Sql, &statement, &ExecuteOptions::default())
                    .await
                    .unwrap();
            }
        })
    });
    for task in futures::future::join_all(tasks).await {
        task.unwrap();
    }
    assert_eq!(
        value(d.as_ref(), Dialect::Sql, "SELECT count(*) FROM hits", &[]).await,
        Value::Int(480)
    );
    let stats = d.pool_stats();
    assert!(stats.created <= 3, "{stats:?}");
    assert!(stats.acquired >= 481, "{stats:?}");
    let reuse = 1.0 - stats.created as f64 / stats.acquired as f64;
    assert!(reuse > 0.99, "connections are reused: {stats:?}");
}

#[tokio::test]
async fn a_restarted_server_fails_calls_fast_then_recovers_by_itself() {
    let mut server = PgServer::start();
    let d = engine(&server).await;
    server.kill();
    // The test server runs with fsync off, so what was written before the
    // kill may be gone; only the connection is checked.
    omnigate_tests::outage_then_recovery(&d, Dialect::Sql, "SELECT 1", || server.restart()).await;
}

#[tokio::test]
async fn a_server_that_is_down_at_startup_is_a_clear_error() {
    let config = PostgresConfig {
        url: format!(
            "postgres://omnigate@127.0.0.1:{}/postgres",
            omnigate_tests::free_port()
        ),
        connect_timeout: Duration::from_secs(2),
        ..PostgresConfig::default()
    };
    let err = PostgresDriver::connect("pg", config).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    assert!(
        err.to_string().contains("cannot connect to PostgreSQL"),
        "{err}"
    );
}

#[tokio::test]
async fn plans_made_stale_by_ddl_are_replaced_and_known_statements_check_params_early() {
    let server = PgServer::start();
    let d = Arc::new(
        PostgresDriver::connect(
            "pg",
            PostgresConfig {
                max_connections: 2,
                min_idle: 2,
                ..config(&server)
            },
        )
        .await
        .unwrap(),
    );
    value(d.as_ref(), Dialect::Sql, "CREATE TABLE t (v int)", &[]).await;
    value(d.as_ref(), Dialect::Sql, "INSERT INTO t VALUES (7)", &[]).await;
    let select_all = |d: Arc<PostgresDriver>| async move {
        let calls = (0..8).map(|_| {
            let d = Arc::clone(&d);
            tokio::spawn(async move {
                d.execute(
                    Dialect::Sql,
                    &Statement::new("SELECT * FROM t"),
                    &ExecuteOptions::default(),
                )
                .await
            })
        });
        futures::future::join_all(calls)
            .await
            .into_iter()
            .map(|r| r.unwrap().unwrap().rows[0][0].clone())
            .collect::<Vec<_>>()
    };
    assert!(
        select_all(Arc::clone(&d))
            .await
            .iter()
            .all(|v| *v == Value::Int(7))
    );
    // Both connections hold a plan returning int4; the ALTER runs on one.
    value(
        d.as_ref(),
        Dialect::Sql,
        "ALTER TABLE t ALTER COLUMN v TYPE text",
        &[],
    )
    .await;
    let after = select_all(Arc::clone(&d)).await;
    assert!(
        after.iter().all(|v| *v == Value::from("7")),
        "every connection sees the new type: {after:?}"
    );

    value(
        d.as_ref(),
        Dialect::Sql,
        "SELECT v FROM t WHERE v = $1",
        &[Value::from("7")],
    )
    .await;
    let acquired = d.pool_stats().acquired;
    let err = error(
        d.as_ref(),
        Dialect::Sql,
        "SELECT v FROM t WHERE v = $1",
        &[Value::from("7"), Value::Int(1)],
    )
    .await;
    assert!(
        matches!(err, Error::InvalidParameter { index: 2, .. }),
        "{err}"
    );
    assert_eq!(
        d.pool_stats().acquired,
        acquired,
        "a known statement's parameters are checked before taking a connection"
    );
    let known = d
        .counters()
        .into_iter()
        .find(|(k, _)| k == "statements_known")
        .unwrap()
        .1;
    assert!(known >= 1);
}

#[tokio::test]
async fn tls_to_the_server_is_verified_against_the_configured_ca() {
    let (server, ca) = PgServer::start_with_tls();
    let tls = omnigate_drivers::postgres::Tls::Require { ca_file: Some(ca) };
    let d = PostgresDriver::connect(
        "pg",
        PostgresConfig {
            tls,
            ..config(&server)
        },
    )
    .await
    .unwrap();
    let ssl = value(
        &d,
        Dialect::Sql,
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        &[],
    )
    .await;
    assert_eq!(ssl, Value::Bool(true), "the connection is encrypted");

    // A CA that did not sign the server's certificate is refused.
    let stranger = server.dir().join("stranger.pem");
    let status = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"])
        .arg(server.dir().join("stranger.key"))
        .arg("-out")
        .arg(&stranger)
        .args(["-days", "1", "-subj", "/CN=stranger"])
        .output()
        .unwrap();
    assert!(status.status.success());
    let tls = omnigate_drivers::postgres::Tls::Require {
        ca_file: Some(stranger),
    };
    let err = PostgresDriver::connect(
        "pg",
        PostgresConfig {
            tls,
            ..config(&server)
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    let missing = omnigate_drivers::postgres::Tls::Require {
        ca_file: Some("/nonexistent/ca.pem".into()),
    };
    let err = PostgresDriver::connect(
        "pg",
        PostgresConfig {
            tls: missing,
            ..config(&server)
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("cannot read the CA file"), "{err}");
}

#[tokio::test]
async fn the_pool_warms_up_verifies_and_retires_connections() {
    let server = PgServer::start();
    let verified = PostgresConfig {
        max_connections: 4,
        min_idle: 3,
        recycling: omnigate_drivers::postgres::Recycling::Verified,
        ..config(&server)
    };
    let d = PostgresDriver::connect("pg", verified).await.unwrap();
    let stats = d.pool_stats();
    assert_eq!(
        (stats.size, stats.idle, stats.created),
        (3, 3, 3),
        "min_idle connections are open at startup: {stats:?}"
    );

    // Connections the server dropped are replaced before a caller sees them.
    let killed = value(&d, Dialect::Sql, "SELECT count(pg_terminate_backend(pid))::int8 FROM pg_stat_activity WHERE application_name = 'omnigate' AND pid <> pg_backend_pid()", &[]).await;
    assert_eq!(killed, Value::Int(2));
    for _ in 0..6 {
        assert_eq!(
            value(&d, Dialect::Sql, "SELECT 1", &[]).await,
            Value::Int(1)
        );
    }

    // Connections past their max lifetime are replaced.
    let short = PostgresConfig {
        max_connections: 1,
        min_idle: 1,
        max_lifetime: Some(Duration::from_millis(200)),
        ..config(&server)
    };
    let d = PostgresDriver::connect("short", short).await.unwrap();
    let first = value(&d, Dialect::Sql, "SELECT pg_backend_pid()", &[]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = value(&d, Dialect::Sql, "SELECT pg_backend_pid()", &[]).await;
    assert_ne!(first, second, "an old connection was replaced");
    assert_eq!(d.pool_stats().created, 2);
}

#[tokio::test]
async fn a_connection_whose_call_was_abandoned_never_serves_another() {
    // PostgreSQL cancels whatever a backend runs when a cancel arrives, so a
    // connection that may still get one leaves the pool.
    let server = PgServer::start();
    let d = PostgresDriver::connect(
        "pg",
        PostgresConfig {
            max_connections: 1,
            min_idle: 1,
            ..config(&server)
        },
    )
    .await
    .unwrap();
    for _ in 0..3 {
        let sleep = Statement::new("SELECT pg_sleep(5)");
        let abandoned = tokio::time::timeout(
            Duration::from_millis(100),
            d.execute(Dialect::Sql, &sleep, &ExecuteOptions::default()),
        )
        .await;
        assert!(abandoned.is_err(), "the caller gave up while the query ran");
        let next = d
            .execute(
                Dialect::Sql,
                &Statement::new("SELECT pg_sleep(0.3), 7"),
                &ExecuteOptions::default(),
            )
            .await;
        assert_eq!(
            next.unwrap().rows[0][1],
            Value::Int(7),
            "the next call is untouched by the late cancel"
        );
    }
    assert_eq!(
        d.pool_stats().created,
        4,
        "each abandoned connection was replaced"
    );
    let sleeping = "SELECT count(*)::int8 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(5)' AND state = 'active'";
    let mut cancelled = false;
    for _ in 0..50 {
        if value(&d, Dialect::Sql, sleeping, &[]).await == Value::Int(0) {
            cancelled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        cancelled,
        "the abandoned queries were cancelled on the server"
    );
}

#[tokio::test]
async fn an_error_in_a_later_batch_ends_the_stream_and_the_engine_keeps_serving() {
    // Batches are asked for one ahead; an error in the second must still
    // reach the caller after the first batch, and leave no aborted
    // transaction on the pooled connection.
    use futures::TryStreamExt;
    use omnigate_drivers::StreamOptions;
    let server = PgServer::start();
    let d = one_connection(&server).await;
    let failing = Statement::new("SELECT 1 / (i - 150) FROM generate_series(1, 300) AS i");
    let options = StreamOptions {
        batch_size: 100,
        ..StreamOptions::default()
    };
    let mut stream = d
        .execute_stream(Dialect::Sql, failing, options)
        .await
        .expect("the stream starts");
    let first = stream.batches.try_next().await.expect("the first batch");
    assert_eq!(first.map(|b| b.len()), Some(100));
    let second = stream.batches.try_next().await;
    let err = second.expect_err("division by zero in the second batch");
    assert!(err.to_string().contains("division by zero"), "{err}");
    assert_eq!(
        value(&d, Dialect::Sql, "SELECT 2", &[]).await,
        Value::Int(2)
    );
}
