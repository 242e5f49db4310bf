//! Transactions: the commit of a PostgreSQL transaction (one engine, a
//! native commit through the gateway), of a PostgreSQL + Redis one (the
//! cross-engine commit with PostgreSQL deciding: the log, its commit with
//! the marker, MULTI/EXEC), and of PostgreSQL + SQLite + Redis (SQLite
//! decides and PostgreSQL prepares: the whole protocol), against the
//! participants' native commits alone in the same run, one after the
//! other (BEGIN/INSERT/COMMIT on tokio-postgres; the same through the
//! SQLite driver on an in-memory database like the gateway's;
//! MULTI/SET/EXEC on the redis crate). Each operation is a whole
//! transaction.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use omnigate::Request;
use omnigate::drivers::{Dialect, Statement, StorageDriver};
use omnigate::tx::TxOptions;

use super::err;
use crate::measure::Op;
use crate::setup::{PG, SQLITE, Targets, Workload};

const INSERT: &str = "INSERT INTO bench_events (account, note) VALUES ($1, 'tx')";
const SQLITE_INSERT: &str = "INSERT INTO bench_tx (v) VALUES ($1)";

/// The native PostgreSQL transaction: BEGIN, one INSERT, COMMIT.
async fn pg_native(t: &Targets, n: u64) -> Result<(), String> {
    let mut client = t.pg.get().await.map_err(err)?;
    let tx = client.transaction().await.map_err(err)?;
    let statement = tx.prepare_cached(INSERT).await.map_err(err)?;
    tx.execute(&statement, &[&((n % 10_000) as i64 + 1)])
        .await
        .map_err(err)?;
    tx.commit().await.map_err(err)
}

/// The native SQLite transaction, through the driver alone.
async fn sqlite_native(t: &Targets, n: u64) -> Result<(), String> {
    let mut tx = t.sqlite.begin(&Default::default()).await.map_err(err)?;
    let insert = Statement::new(SQLITE_INSERT).bind((n % 10_000) as i64);
    tx.execute(Dialect::Sql, &insert, &Default::default())
        .await
        .map_err(err)?;
    tx.commit().await.map_err(err)
}

/// The native Redis transaction: MULTI, one SET, EXEC.
async fn redis_native(t: &Targets, n: u64) -> Result<(), String> {
    let mut conn = t.redis.clone();
    redis::pipe()
        .atomic()
        .set(format!("bench:tx:{}", n % 1000), "v")
        .query_async::<redis::Value>(&mut conn)
        .await
        .map_err(err)
        .map(drop)
}

/// The same writes in one gateway transaction: PostgreSQL, then SQLite
/// (with `sqlite`), then Redis (with `redis`).
async fn library(t: &Targets, n: u64, sqlite: bool, redis: bool) -> Result<(), String> {
    let tx = t
        .gateway
        .begin(TxOptions::default())
        .map_err(|e| e.to_string())?;
    let pg = Request::new("sql", INSERT)
        .target(PG)
        .param((n % 10_000) as i64 + 1);
    tx.execute(pg).await.map_err(err)?;
    if sqlite {
        let side = Request::new("sql", SQLITE_INSERT)
            .target(SQLITE)
            .param((n % 10_000) as i64);
        tx.execute(side).await.map_err(err)?;
    }
    if redis {
        let set = Request::new("redis", "SET $1 v").param(format!("bench:tx:{}", n % 1000));
        tx.execute(set).await.map_err(err)?;
    }
    tx.commit().await.map_err(err).map(drop)
}

type Run = fn(Arc<Targets>, u64) -> BoxFuture<'static, Result<(), String>>;

/// `tx_commit_1`, `tx_commit_2` and `tx_commit_3`.
pub(super) fn workloads(t: &Arc<Targets>) -> Vec<Workload> {
    let op = |run: Run| -> Op {
        let t = Arc::clone(t);
        Arc::new(move |n| run(Arc::clone(&t), n))
    };
    let cell = |name, direct: Run, library: Run| Workload {
        name,
        paths: vec![("direct", op(direct)), ("library", op(library))],
    };
    vec![
        cell(
            "tx_commit_1",
            |t, n| async move { pg_native(&t, n).await }.boxed(),
            |t, n| async move { library(&t, n, false, false).await }.boxed(),
        ),
        cell(
            "tx_commit_2",
            |t, n| {
                async move {
                    pg_native(&t, n).await?;
                    redis_native(&t, n).await
                }
                .boxed()
            },
            |t, n| async move { library(&t, n, false, true).await }.boxed(),
        ),
        cell(
            "tx_commit_3",
            |t, n| {
                async move {
                    pg_native(&t, n).await?;
                    sqlite_native(&t, n).await?;
                    redis_native(&t, n).await
                }
                .boxed()
            },
            |t, n| async move { library(&t, n, true, true).await }.boxed(),
        ),
    ]
}
