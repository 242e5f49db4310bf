//! The driver side of transactions on the embedded engines: SQLite live on
//! a pinned connection, the memory engine buffered as MULTI/EXEC, and
//! `NotSupported` from an engine without transactions.
#![allow(clippy::unwrap_used)]

use async_trait::async_trait;
use omnigate_drivers::memory::{MemoryConfig, MemoryDriver};
use omnigate_drivers::sqlite::{SqliteConfig, SqliteDriver};
use omnigate_drivers::{
    BeginOptions, DescribeOptions, Dialect, DriverTransaction, EngineDescriptor, Error,
    ExecuteOptions, Health, Participation, PoolSettings, Result, ResultSet, SchemaObject,
    Statement, StorageDriver, StorageDriverExt, Value,
};

async fn run(tx: &mut Box<dyn DriverTransaction>, dialect: Dialect, text: &str) -> Result<Value> {
    let result = tx
        .execute(dialect, &Statement::new(text), &ExecuteOptions::default())
        .await?;
    Ok(result.into_scalar())
}

async fn count(d: &dyn StorageDriver) -> Value {
    d.query_scalar(Dialect::Sql, Statement::new("SELECT count(*) FROM t"))
        .await
        .unwrap()
}

async fn sqlite_on_a_file(dir: &tempfile::TempDir) -> SqliteDriver {
    let config = SqliteConfig {
        path: dir.path().join("tx.sqlite3").to_string_lossy().into_owned(),
        ..SqliteConfig::default()
    };
    let d = SqliteDriver::open("main", config).await.unwrap();
    d.run(
        Dialect::Sql,
        Statement::new("CREATE TABLE t (id INTEGER PRIMARY KEY)"),
    )
    .await
    .unwrap();
    d
}

#[tokio::test]
async fn sqlite_commits_reads_its_own_writes_and_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = sqlite_on_a_file(&dir).await;
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    assert_eq!(
        tx.participation(),
        Participation::Live { preparable: false }
    );
    run(&mut tx, Dialect::Sql, "INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let inside = run(&mut tx, Dialect::Sql, "SELECT count(*) FROM t").await;
    assert_eq!(inside.unwrap(), Value::Int(1), "reads see the tx's writes");
    assert_eq!(count(&d).await, Value::Int(0), "others do not, yet");
    // A failed statement leaves a SQLite transaction usable.
    let dup = run(&mut tx, Dialect::Sql, "INSERT INTO t VALUES (1)").await;
    assert!(matches!(dup, Err(Error::ConstraintViolation(_))), "{dup:?}");
    let control = run(&mut tx, Dialect::Sql, "COMMIT").await;
    assert!(
        matches!(control, Err(Error::Precondition(_))),
        "{control:?}"
    );
    tx.commit().await.unwrap();
    assert_eq!(count(&d).await, Value::Int(1));

    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    run(&mut tx, Dialect::Sql, "INSERT INTO t VALUES (2)")
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(count(&d).await, Value::Int(1));
    let err = d
        .begin(&BeginOptions::default())
        .await
        .unwrap()
        .prepare("omnigate-1")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotSupported { .. }), "{err}");
}

#[tokio::test]
async fn a_dropped_sqlite_transaction_rolls_back_before_its_connection_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let config = SqliteConfig {
        path: dir.path().join("tx.sqlite3").to_string_lossy().into_owned(),
        pool: PoolSettings {
            max_connections: 1,
            ..PoolSettings::default()
        },
        ..SqliteConfig::default()
    };
    let d = SqliteDriver::open("main", config).await.unwrap();
    d.run(Dialect::Sql, Statement::new("CREATE TABLE t (id INTEGER)"))
        .await
        .unwrap();
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    run(&mut tx, Dialect::Sql, "INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    drop(tx);
    // The one connection comes back rolled back, not inside the old tx.
    assert_eq!(count(&d).await, Value::Int(0));
    d.run(Dialect::Sql, Statement::new("INSERT INTO t VALUES (2)"))
        .await
        .unwrap();
    assert_eq!(count(&d).await, Value::Int(1));
}

#[tokio::test]
async fn a_read_only_sqlite_transaction_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let d = sqlite_on_a_file(&dir).await;
    let read_only = BeginOptions {
        read_only: true,
        ..BeginOptions::default()
    };
    let mut tx = d.begin(&read_only).await.unwrap();
    let err = run(&mut tx, Dialect::Sql, "INSERT INTO t VALUES (1)").await;
    assert!(matches!(err, Err(Error::ReadOnly(_))), "{err:?}");
    assert_eq!(
        run(&mut tx, Dialect::Sql, "SELECT 1").await.unwrap(),
        Value::Int(1)
    );
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn memory_buffers_writes_until_commit_and_reads_committed_state() {
    let d = MemoryDriver::new("cache", MemoryConfig::default());
    d.run(Dialect::Redis, Statement::new("SET k before"))
        .await
        .unwrap();
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    assert_eq!(tx.participation(), Participation::Buffered);
    let queued = run(&mut tx, Dialect::Redis, "SET k after").await.unwrap();
    assert_eq!(queued, Value::from("QUEUED"));
    run(&mut tx, Dialect::Redis, "INCR n").await.unwrap();
    // Reads inside the transaction see committed state, as inside MULTI.
    assert_eq!(
        run(&mut tx, Dialect::Redis, "GET k").await.unwrap(),
        Value::from("before")
    );
    let get = |key: &'static str| {
        let d = &d;
        async move {
            d.query_scalar(Dialect::Redis, Statement::new(format!("GET {key}")))
                .await
                .unwrap()
        }
    };
    assert_eq!(get("k").await, Value::from("before"));
    tx.commit().await.unwrap();
    assert_eq!(get("k").await, Value::from("after"));
    assert_eq!(get("n").await, Value::from("1"));

    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    run(&mut tx, Dialect::Redis, "SET k rolled-back")
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let mut dropped = d.begin(&BeginOptions::default()).await.unwrap();
    run(&mut dropped, Dialect::Redis, "SET k dropped")
        .await
        .unwrap();
    drop(dropped);
    assert_eq!(get("k").await, Value::from("after"));
}

#[tokio::test]
async fn memory_refuses_bad_commands_when_sent_not_at_commit() {
    let d = MemoryDriver::new("cache", MemoryConfig::default());
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    let arity = run(&mut tx, Dialect::Redis, "SET k").await.unwrap_err();
    assert!(matches!(arity, Error::InvalidStatement(_)), "{arity}");
    let unknown = run(&mut tx, Dialect::Redis, "SUBSCRIBE news")
        .await
        .unwrap_err();
    assert!(matches!(unknown, Error::NotSupported { .. }), "{unknown}");
    let syntax = run(&mut tx, Dialect::Redis, "SET k \"unclosed")
        .await
        .unwrap_err();
    assert!(matches!(syntax, Error::InvalidStatement(_)), "{syntax}");
    // ts writes are buffered too, and a bad line is refused when sent.
    let ts = run(&mut tx, Dialect::Ts, "x v=oops").await.unwrap_err();
    assert!(matches!(ts, Error::InvalidStatement(_)), "{ts}");
    run(&mut tx, Dialect::Ts, "x v=1").await.unwrap();
    tx.commit().await.unwrap();
    let read_only = BeginOptions {
        read_only: true,
        ..BeginOptions::default()
    };
    let mut tx = d.begin(&read_only).await.unwrap();
    let write = run(&mut tx, Dialect::Redis, "SET k v").await.unwrap_err();
    assert!(matches!(write, Error::ReadOnly(_)), "{write}");
    // Like EXEC: a command that fails when applied leaves the others applied.
    d.run(Dialect::Redis, Statement::new("SET s text"))
        .await
        .unwrap();
    let mut tx = d.begin(&BeginOptions::default()).await.unwrap();
    run(&mut tx, Dialect::Redis, "LPUSH s x").await.unwrap();
    run(&mut tx, Dialect::Redis, "SET other v").await.unwrap();
    let failed = tx.commit().await.unwrap_err();
    // Applied in part, as Redis would: never to be read as "none applied".
    assert!(matches!(failed, Error::AppliedInPart(_)), "{failed}");
    let other = d
        .query_scalar(Dialect::Redis, Statement::new("GET other"))
        .await
        .unwrap();
    assert_eq!(other, Value::from("v"));
}

/// An engine with only the required methods.
#[derive(Debug)]
struct Plain(EngineDescriptor);

#[async_trait]
impl StorageDriver for Plain {
    fn descriptor(&self) -> &EngineDescriptor {
        &self.0
    }
    async fn execute(&self, _: Dialect, _: &Statement, _: &ExecuteOptions) -> Result<ResultSet> {
        Ok(ResultSet::default())
    }
    async fn describe(&self, _: &DescribeOptions) -> Result<Vec<SchemaObject>> {
        Ok(Vec::new())
    }
    async fn health(&self) -> Health {
        Health::Serving
    }
}

#[tokio::test]
async fn an_engine_without_transactions_says_not_supported() {
    let plain = Plain(EngineDescriptor {
        name: "plain".into(),
        kind: "plain",
        dialects: vec![Dialect::Sql],
    });
    let err = plain.begin(&BeginOptions::default()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "transactions is not supported by the plain engine"
    );
}
