//! Transactions: the commit of a PostgreSQL transaction (one engine, a
//! native commit through the gateway) and of a PostgreSQL + Redis one (the
//! cross-engine commit: prepare, the log, the decision, COMMIT PREPARED,
//! MULTI/EXEC), against the participants' native commits alone in the
//! same run (BEGIN/INSERT/COMMIT on tokio-postgres, MULTI/SET/EXEC on the
//! redis crate). Each operation is a whole transaction.

use std::sync::Arc;

use futures::FutureExt;
use omnigate::Request;
use omnigate::tx::TxOptions;

use super::err;
use crate::measure::Op;
use crate::setup::{Targets, Workload};

const INSERT: &str = "INSERT INTO bench_events (account, note) VALUES ($1, 'tx')";

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

/// The same writes in one gateway transaction.
async fn library(t: &Targets, n: u64, redis: bool) -> Result<(), String> {
    let tx = t.gateway.begin(TxOptions::default());
    tx.execute(Request::new("sql", INSERT).param((n % 10_000) as i64 + 1))
        .await
        .map_err(err)?;
    if redis {
        tx.execute(Request::new("redis", "SET $1 v").param(format!("bench:tx:{}", n % 1000)))
            .await
            .map_err(err)?;
    }
    tx.commit().await.map_err(err).map(drop)
}

/// `tx_commit_1`: PostgreSQL alone; `tx_commit_2`: PostgreSQL and Redis.
pub(super) fn workloads(t: &Arc<Targets>) -> Vec<Workload> {
    let op = |f: fn(
        Arc<Targets>,
        u64,
    ) -> futures::future::BoxFuture<'static, Result<(), String>>|
     -> Op {
        let t = Arc::clone(t);
        Arc::new(move |n| f(Arc::clone(&t), n))
    };
    vec![
        Workload {
            name: "tx_commit_1",
            paths: vec![
                (
                    "direct",
                    op(|t, n| async move { pg_native(&t, n).await }.boxed()),
                ),
                (
                    "library",
                    op(|t, n| async move { library(&t, n, false).await }.boxed()),
                ),
            ],
        },
        Workload {
            name: "tx_commit_2",
            paths: vec![
                (
                    "direct",
                    op(|t, n| {
                        async move {
                            pg_native(&t, n).await?;
                            redis_native(&t, n).await
                        }
                        .boxed()
                    }),
                ),
                (
                    "library",
                    op(|t, n| async move { library(&t, n, true).await }.boxed()),
                ),
            ],
        },
    ]
}
