//! The sqlite engine against the `sql` conformance suite, plus its own
//! types, timeouts, pool and file databases.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use omnigate_drivers::conformance::{self, sql};
use omnigate_drivers::sqlite::{SqliteConfig, SqliteDriver};
use omnigate_drivers::{
    Dialect, Error, ExecuteOptions, Health, PoolSettings, Statement, StorageDriver, Value,
};

async fn engine() -> SqliteDriver {
    SqliteDriver::open("main", SqliteConfig::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn passes_the_sql_conformance_suite_in_memory() {
    sql::run_all(&engine().await).await;
}

#[tokio::test]
async fn keeps_a_deciding_engines_markers() {
    conformance::decision::run_all(&engine().await).await;
}

#[tokio::test]
async fn passes_the_sql_conformance_suite_on_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = SqliteConfig {
        path: dir.path().join("db.sqlite3").to_string_lossy().into_owned(),
        ..SqliteConfig::default()
    };
    sql::run_all(&SqliteDriver::open("file", config).await.unwrap()).await;
}

#[tokio::test]
async fn pooled_connections_share_one_in_memory_database() {
    let d = engine().await;
    conformance::value(&d, Dialect::Sql, "CREATE TABLE shared (v INTEGER)", &[]).await;
    let writes = (0..16).map(|n| {
        let d = &d;
        async move {
            conformance::value(
                d,
                Dialect::Sql,
                "INSERT INTO shared VALUES ($1)",
                &[Value::Int(n)],
            )
            .await
        }
    });
    futures::future::join_all(writes).await;
    assert_eq!(
        conformance::value(&d, Dialect::Sql, "SELECT COUNT(*) FROM shared", &[]).await,
        Value::Int(16)
    );
    let stats = d.pool_stats();
    assert!(stats.created >= 1 && stats.created <= 4, "{stats:?}");
    assert!(stats.acquired >= 18, "{stats:?}");
    // Another engine has its own database.
    let other = engine().await;
    let err = conformance::error(&other, Dialect::Sql, "SELECT * FROM shared", &[]).await;
    assert!(matches!(err, Error::NotFound(_)), "{err}");
}

#[tokio::test]
async fn maps_every_sqlite_type() {
    let d = engine().await;
    conformance::value(
        &d,
        Dialect::Sql,
        "CREATE TABLE types (i INTEGER, r REAL, t TEXT, b BLOB, n, flag BOOLEAN)",
        &[],
    )
    .await;
    let blob = Value::Bytes(bytes::Bytes::from_static(b"\x00\xffbin"));
    conformance::value(
        &d,
        Dialect::Sql,
        "INSERT INTO types VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            Value::Int(-7),
            Value::Float(2.5),
            "té✓".into(),
            blob.clone(),
            Value::Null,
            Value::Bool(true),
        ],
    )
    .await;
    let result = d
        .execute(
            Dialect::Sql,
            &Statement::new("SELECT * FROM types"),
            &ExecuteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        result.rows,
        vec![vec![
            Value::Int(-7),
            Value::Float(2.5),
            "té✓".into(),
            blob,
            Value::Null,
            Value::Bool(true)
        ]]
    );
    let types: Vec<&str> = result.columns.iter().map(|c| &*c.type_name).collect();
    assert_eq!(types, ["INTEGER", "REAL", "TEXT", "BLOB", "", "BOOLEAN"]);
    let uuid = uuid::Uuid::from_u128(0x1234);
    let echoed = conformance::value(&d, Dialect::Sql, "SELECT $1", &[Value::Uuid(uuid)]).await;
    assert_eq!(echoed, Value::String(uuid.to_string().into()));
    let date = chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
    let next = conformance::value(
        &d,
        Dialect::Sql,
        "SELECT date($1, '+1 day')",
        &[Value::Date(date.into())],
    )
    .await;
    assert_eq!(next, Value::from("2024-03-01"));
}

#[tokio::test]
async fn a_timeout_interrupts_the_statement_and_the_connection_stays_usable() {
    let config = SqliteConfig {
        pool: PoolSettings {
            max_connections: 1,
            ..PoolSettings::default()
        },
        ..SqliteConfig::default()
    };
    let d = SqliteDriver::open("slow", config).await.unwrap();
    let endless = Statement::new(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT COUNT(*) FROM n",
    );
    let options = ExecuteOptions {
        timeout: Some(Duration::from_millis(100)),
        ..ExecuteOptions::default()
    };
    let err = d
        .execute(Dialect::Sql, &endless, &options)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Timeout { after } if after == Duration::from_millis(100)),
        "{err}"
    );
    assert_eq!(
        conformance::value(&d, Dialect::Sql, "SELECT 2", &[]).await,
        Value::Int(2)
    );
    assert_eq!(d.pool_stats().created, 1, "the same connection was reused");
}

#[tokio::test]
async fn multiple_statements_and_positional_placeholders_are_refused() {
    let d = engine().await;
    let err = conformance::error(&d, Dialect::Sql, "SELECT 1; SELECT 2", &[]).await;
    assert!(matches!(err, Error::InvalidStatement(_)), "{err}");
    let err = conformance::error(&d, Dialect::Sql, "SELECT ?", &[Value::Int(1)]).await;
    assert!(matches!(err, Error::InvalidStatement(_)), "{err}");
    assert!(err.to_string().contains("write $1..$n"), "{err}");
    let err = conformance::error(&d, Dialect::Sql, "SELECT $1", &[Value::List(vec![])]).await;
    assert!(
        matches!(err, Error::InvalidParameter { index: 1, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_directory_fails_at_open_and_health_reports_serving() {
    let config = SqliteConfig {
        path: std::path::Path::new("/nonexistent/dir/db.sqlite3")
            .to_string_lossy()
            .into_owned(),
        ..SqliteConfig::default()
    };
    let err = SqliteDriver::open("bad", config).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    assert_eq!(engine().await.health().await, Health::Serving);
}
