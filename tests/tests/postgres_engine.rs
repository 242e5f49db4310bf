//! The postgres engine against a real PostgreSQL server: conformance,
//! SQLSTATE mapping, plans made stale by DDL, TLS and streams (the pool's
//! behaviour is in `postgres_pool.rs`).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use omnigate_drivers::conformance::{error, sql, value};
use omnigate_drivers::postgres::{PostgresConfig, PostgresDriver};
use omnigate_drivers::{
    Dialect, Error, ExecuteOptions, PoolSettings, Statement, StorageDriver, Value,
};
use omnigate_tests::postgres::PgServer;

#[tokio::test]
async fn passes_the_sql_conformance_suite() {
    let server = PgServer::start();
    sql::run_all(&server.engine().await).await;
}

#[tokio::test]
async fn keeps_a_deciding_engines_markers() {
    let server = PgServer::start();
    omnigate_drivers::conformance::decision::run_all(&server.engine().await).await;
}

#[tokio::test]
async fn sqlstates_map_to_meaning_and_keep_the_code() {
    let server = PgServer::start();
    let d = &server.engine().await;
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
async fn plans_made_stale_by_ddl_are_replaced_and_known_statements_check_params_early() {
    let server = PgServer::start();
    let d = Arc::new(
        PostgresDriver::connect(
            "pg",
            PostgresConfig {
                pool: PoolSettings {
                    max_connections: 2,
                    ..PoolSettings::default()
                },
                min_idle: 2,
                ..server.engine_config()
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
    let tls = omnigate_drivers::postgres::Tls::Require;
    let d = PostgresDriver::connect(
        "pg",
        PostgresConfig {
            tls,
            ca_file: Some(ca),
            ..server.engine_config()
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
    let tls = omnigate_drivers::postgres::Tls::Require;
    let err = PostgresDriver::connect(
        "pg",
        PostgresConfig {
            tls,
            ca_file: Some(stranger),
            ..server.engine_config()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    let missing = omnigate_drivers::postgres::Tls::Require;
    let err = PostgresDriver::connect(
        "pg",
        PostgresConfig {
            tls: missing,
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..server.engine_config()
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("cannot read the CA file"), "{err}");
}

#[tokio::test]
async fn an_error_in_a_later_batch_ends_the_stream_and_the_engine_keeps_serving() {
    // Batches are asked for one ahead; an error in the second must still
    // reach the caller after the first batch, and leave no aborted
    // transaction on the pooled connection.
    use futures::TryStreamExt;
    use omnigate_drivers::ExecuteOptions;
    let server = PgServer::start();
    let config = PostgresConfig {
        pool: PoolSettings {
            max_connections: 1,
            ..PoolSettings::default()
        },
        ..server.engine_config()
    };
    let d = PostgresDriver::connect("pg", config).await.unwrap();
    let failing = Statement::new("SELECT 1 / (i - 150) FROM generate_series(1, 300) AS i");
    let options = ExecuteOptions {
        batch_size: Some(100),
        ..ExecuteOptions::default()
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

#[tokio::test]
async fn native_cells_come_as_wire_rows_within_the_limits_and_streams_decode() {
    use futures::TryStreamExt;
    let server = PgServer::start();
    let d = server.engine().await;
    let query = Statement::new(
        "SELECT i::int4, CASE WHEN i % 2 = 0 THEN NULL ELSE 'x' || i END \
         FROM generate_series(1, 3) AS i",
    );
    let native = ExecuteOptions {
        cells: omnigate_drivers::Cells::Binary,
        ..ExecuteOptions::default()
    };
    let result = d.execute(Dialect::Sql, &query, &native).await.unwrap();
    assert!(result.rows.is_empty(), "the rows are the wire rows");
    let wire = result.wire_rows.expect("wire rows");
    assert_eq!((wire.len(), wire.width()), (3, 2));
    let rows: Vec<&[u8]> = wire.iter().collect();
    // int4 1 in binary, then text "x1"; int4 2, then NULL.
    assert_eq!(rows[0], b"\0\0\0\x04\0\0\0\x01\0\0\0\x02x1");
    assert_eq!(rows[1], b"\0\0\0\x04\0\0\0\x02\xff\xff\xff\xff");
    // The caller's limits hold for wire rows, each counted as its
    // DataRow message.
    let rows = ExecuteOptions {
        max_rows: Some(2),
        ..native.clone()
    };
    let err = d.execute(Dialect::Sql, &query, &rows).await.unwrap_err();
    assert!(matches!(err, Error::TooManyRows { limit: 2 }), "{err}");
    let bytes = ExecuteOptions {
        max_bytes: Some(20),
        ..native.clone()
    };
    let err = d.execute(Dialect::Sql, &query, &bytes).await.unwrap_err();
    assert!(matches!(err, Error::ResultTooLarge { limit: 20 }), "{err}");
    // A stream decodes its cells whatever was asked.
    let stream = d
        .execute_stream(Dialect::Sql, query.clone(), native.clone())
        .await
        .unwrap();
    let batches: Vec<_> = stream.batches.try_collect().await.unwrap();
    assert_eq!(batches[0][0], vec![Value::Int(1), Value::from("x1")]);
}

#[tokio::test]
async fn text_cells_come_as_postgresql_writes_them() {
    let server = PgServer::start();
    let d = server.engine().await;
    let text = ExecuteOptions {
        cells: omnigate_drivers::Cells::Text,
        ..ExecuteOptions::default()
    };
    for setup in [
        "CREATE TYPE text_mood AS ENUM ('ok', 'sad')",
        "CREATE TABLE text_bumps (n int)",
        "CREATE FUNCTION text_bump() RETURNS void LANGUAGE sql \
         AS 'INSERT INTO text_bumps VALUES (1)'",
    ] {
        let setup = Statement::new(setup);
        d.execute(Dialect::Sql, &setup, &ExecuteOptions::default())
            .await
            .unwrap();
    }
    // Each cell PostgreSQL's own text, NULL as NULL; a type the value
    // model does not map (void, point) is text like any other, so the
    // statement is not run again to read it.
    let query = Statement::new(
        "SELECT 1.50::numeric AS n, NULL::int4 AS z, point(1, 2) AS p, 'sad'::text_mood AS m, \
         text_bump() AS v",
    );
    let result = d.execute(Dialect::Sql, &query, &text).await.unwrap();
    let names: Vec<(&str, &str)> = result
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.type_name.as_str()))
        .collect();
    // The enum's type is not looked up: its name is unknown (empty).
    assert_eq!(
        names,
        [
            ("n", "numeric"),
            ("z", "int4"),
            ("p", "point"),
            ("m", ""),
            ("v", "void")
        ]
    );
    // (A void's cell is NULL, as PostgreSQL sends it.)
    let wire = result.wire_rows.expect("text cells come as wire rows");
    let row: Vec<&[u8]> = wire.iter().collect();
    assert_eq!(
        row,
        [&b"\0\0\0\x041.50\xff\xff\xff\xff\0\0\0\x05(1,2)\0\0\0\x03sad\xff\xff\xff\xff"[..]]
    );
    let count = d
        .execute(
            Dialect::Sql,
            &Statement::new("SELECT count(*)::int4 FROM text_bumps"),
            &ExecuteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(count.rows[0], vec![Value::Int(1)], "the function ran once");
    // A statement without columns says how many rows it wrote.
    let insert = Statement::new("INSERT INTO text_bumps SELECT generate_series(1, 3)");
    let result = d.execute(Dialect::Sql, &insert, &text).await.unwrap();
    assert_eq!((result.rows_affected, result.wire_rows), (3, None));
    // Limits hold; an error is the engine's.
    let many = Statement::new("SELECT g FROM generate_series(1, 10) g");
    let limited = ExecuteOptions {
        max_rows: Some(4),
        ..text.clone()
    };
    let err = d.execute(Dialect::Sql, &many, &limited).await.unwrap_err();
    assert!(matches!(err, Error::TooManyRows { limit: 4 }), "{err}");
    let err = d
        .execute(Dialect::Sql, &Statement::new("SELECT 1/0"), &text)
        .await
        .unwrap_err();
    assert_eq!(err.engine_code(), Some("22012"), "{err}");
    // Two statements in one text are refused, as a prepared one is.
    let err = d
        .execute(Dialect::Sql, &Statement::new("SELECT 1; SELECT 2"), &text)
        .await
        .unwrap_err();
    assert_eq!(err.engine_code(), Some("42601"), "{err}");
    // With parameters, the statement is prepared, its cells text too.
    let with_params = Statement::new("SELECT $1::int4 + 1, point(1, 2)").bind(Value::Int(41));
    let result = d.execute(Dialect::Sql, &with_params, &text).await.unwrap();
    let wire = result.wire_rows.expect("text cells come as wire rows");
    let row: Vec<&[u8]> = wire.iter().collect();
    assert_eq!(row, [&b"\0\0\0\x0242\0\0\0\x05(1,2)"[..]]);
    assert_eq!(result.columns[1].type_name, "point");
}
