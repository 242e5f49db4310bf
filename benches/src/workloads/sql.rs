//! PostgreSQL workloads: point read, insert, 100-row read, and a 10k-row
//! streamed read.

use std::sync::Arc;

use futures::{FutureExt, StreamExt, TryStreamExt};
use omnigate::Request;
use omnigate_proto::v1 as pb;
use rust_decimal::Decimal;
use tokio_postgres::Row;

use super::{err, grpc_paths, library_path};
use crate::measure::Op;
use crate::setup::{PG, Targets, Workload};

/// A SQL workload on every path: `sql` with one int8 parameter.
pub(super) fn sql_workload(
    t: &Arc<Targets>,
    name: &'static str,
    sql: &'static str,
    param: fn(u64) -> i64,
) -> Workload {
    let library = library_path(t, move |n| {
        Request::new("sql", sql).target(PG).param(param(n))
    });
    let [grpc, grpc_uds] = grpc_paths(t, move |n| pb::ExecuteRequest {
        dialect: "sql".into(),
        target: PG.into(),
        statement: sql.into(),
        params: vec![pb::Value {
            kind: Some(pb::value::Kind::Int(param(n))),
        }],
        ..Default::default()
    });
    let mut paths = vec![
        ("direct", driver_op(t.pg.clone(), sql, param, true)),
        ("library", library),
        grpc,
        grpc_uds,
        // The same client, pointed at the PostgreSQL-wire front end.
        ("pgwire", driver_op(t.pgwire.clone(), sql, param, true)),
    ];
    if let Some(pool) = t.bouncer.clone() {
        paths.push(("pgbouncer", driver_op(pool, sql, param, false)));
    }
    Workload { name, paths }
}

/// The direct driver's call through `pool`: with `named`, a statement
/// prepared once per connection (`prepare_cached`) then bound and run;
/// without, sent unnamed with its parameter types in one round trip
/// (`query_typed`), as PgBouncer in transaction mode needs (a named
/// statement may meet another server connection there).
fn driver_op(
    pool: deadpool_postgres::Pool,
    sql: &'static str,
    param: fn(u64) -> i64,
    named: bool,
) -> Op {
    Arc::new(move |n| {
        let pool = pool.clone();
        async move {
            let client = pool.get().await.map_err(err)?;
            let id = param(n);
            let rows = if named {
                let statement = client.prepare_cached(sql).await.map_err(err)?;
                client.query(&statement, &[&id]).await.map_err(err)?
            } else {
                client
                    .query_typed(sql, &[(&id, tokio_postgres::types::Type::INT8)])
                    .await
                    .map_err(err)?
            };
            read_accounts(&rows)
        }
        .boxed()
    })
}

/// Every row of the 10k-row table, streamed on every path.
pub(super) fn stream_10k(t: &Arc<Targets>) -> Workload {
    const SQL: &str = "SELECT id, name, balance FROM bench_accounts";
    let through = |pool: deadpool_postgres::Pool| -> Op {
        Arc::new(move |_| {
            let pool = pool.clone();
            async move {
                let client = pool.get().await.map_err(err)?;
                let statement = client.prepare_cached(SQL).await.map_err(err)?;
                let params: [i64; 0] = [];
                let rows = client.query_raw(&statement, params).await.map_err(err)?;
                let count = rows
                    .map_err(err)
                    .try_fold(0usize, |n, row| async move {
                        std::hint::black_box(read_account(&row)?);
                        Ok(n + 1)
                    })
                    .await?;
                expect_rows(count)
            }
            .boxed()
        })
    };
    let direct = through(t.pg.clone());
    let pgwire = through(t.pgwire.clone());
    let library: Op = {
        let t = Arc::clone(t);
        Arc::new(move |_| {
            let t = Arc::clone(&t);
            async move {
                let stream = t
                    .gateway
                    .execute_stream(Request::new("sql", SQL).target(PG))
                    .await
                    .map_err(err)?;
                let mut count = 0;
                let mut batches = stream.stream.batches;
                while let Some(batch) = batches.next().await {
                    count += batch.map_err(err)?.len();
                }
                expect_rows(count)
            }
            .boxed()
        })
    };
    let grpc: Op = {
        let t = Arc::clone(t);
        Arc::new(move |n| {
            let mut client = t.grpc(n);
            async move {
                let request = pb::ExecuteRequest {
                    dialect: "sql".into(),
                    target: PG.into(),
                    statement: SQL.into(),
                    ..Default::default()
                };
                let mut stream = client
                    .execute_stream(request)
                    .await
                    .map_err(err)?
                    .into_inner();
                let mut count = 0;
                while let Some(batch) = stream.next().await {
                    count += batch.map_err(err)?.rows.len();
                }
                expect_rows(count)
            }
            .boxed()
        })
    };
    Workload {
        name: "pg_stream_10k",
        paths: vec![
            ("direct", direct),
            ("library", library),
            ("grpc", grpc),
            ("pgwire", pgwire),
        ],
    }
}

/// A row of `bench_accounts` as a user of the driver reads it: every cell
/// into an owned value (id, name, balance), as the gateway returns them.
fn read_account(row: &Row) -> Result<(i64, String, Decimal), String> {
    Ok((
        row.try_get(0).map_err(err)?,
        row.try_get(1).map_err(err)?,
        row.try_get(2).map_err(err)?,
    ))
}

/// Reads every cell of a point or range read (an insert has no rows).
fn read_accounts(rows: &[Row]) -> Result<(), String> {
    for row in rows {
        std::hint::black_box(read_account(row)?);
    }
    Ok(())
}

fn expect_rows(count: usize) -> Result<(), String> {
    if count == 10_000 {
        Ok(())
    } else {
        Err(format!("streamed {count} rows, not 10000"))
    }
}
