//! Running statements on a pooled SQLite connection (blocking work inside
//! `interact`), with timeouts that interrupt the statement.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_sqlite::rusqlite::{self, Connection, InterruptHandle};
use deadpool_sqlite::{InteractError, Object};
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::{KIND, convert};
use crate::{
    Column, ColumnInfo, EngineError, Error, ExecuteOptions, Result, ResultSet, RowStream, Rows,
    SchemaObject, Statement, Value,
};

fn interact_error(e: InteractError) -> Error {
    Error::Internal(EngineError::new(
        KIND,
        None,
        format!("the SQLite worker failed: {e}"),
    ))
}

fn interrupt_handle(conn: &Object) -> Result<InterruptHandle> {
    let guard = conn.lock().map_err(|_| {
        Error::Internal(EngineError::new(
            KIND,
            None,
            "the connection's lock is poisoned",
        ))
    })?;
    Ok(guard.get_interrupt_handle())
}

/// Interrupts the running statement when dropped, unless disarmed: a
/// caller that gives up (a cancelled gRPC call) stops the statement too.
struct InterruptOnDrop(Option<InterruptHandle>);

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.interrupt();
        }
    }
}

/// Awaits `work`; past `timeout` interrupts the statement, waits for it to
/// stop (so the connection goes back to the pool clean) and fails with
/// `Timeout` unless it had finished anyway.
async fn with_timeout<T>(
    work: impl Future<Output = Result<Result<T>, InteractError>>,
    timeout: Option<Duration>,
    interrupt: InterruptHandle,
) -> Result<T> {
    let mut guard = InterruptOnDrop(Some(interrupt));
    let Some(limit) = timeout else {
        let done = work.await;
        guard.0 = None;
        return done.map_err(interact_error)?;
    };
    tokio::pin!(work);
    let result = tokio::select! {
        done = &mut work => done,
        () = tokio::time::sleep(limit) => {
            if let Some(handle) = &guard.0 {
                handle.interrupt();
            }
            match work.await {
                Ok(Ok(value)) => Ok(Ok(value)),
                _ => {
                    guard.0 = None;
                    return Err(Error::Timeout { after: limit });
                }
            }
        }
    };
    guard.0 = None;
    match result.map_err(interact_error)? {
        Err(Error::Timeout { .. }) => Err(Error::Timeout { after: limit }),
        other => other,
    }
}

/// Runs one statement and returns its whole result.
pub(super) async fn execute(
    conn: &Object,
    statement: Statement,
    options: ExecuteOptions,
) -> Result<ResultSet> {
    let interrupt = interrupt_handle(conn)?;
    let timeout = options.timeout;
    with_timeout(
        conn.interact(move |c| run_statement(c, &statement, &options)),
        timeout,
        interrupt,
    )
    .await
}

fn prepare<'c>(
    c: &'c Connection,
    statement: &Statement,
    read_only: bool,
) -> Result<rusqlite::CachedStatement<'c>> {
    let mut prepared = c.prepare_cached(&statement.text).map_err(convert::error)?;
    bind(&mut prepared, &statement.params)?;
    if read_only && !prepared.readonly() {
        return Err(Error::read_only(
            KIND,
            "the statement writes, but the request is read_only",
        ));
    }
    Ok(prepared)
}

/// Binds `$1..$n`: every placeholder must name a given parameter and every
/// parameter must be used.
fn bind(prepared: &mut rusqlite::Statement<'_>, params: &[Value]) -> Result<()> {
    let mut used = vec![false; params.len()];
    for slot in 1..=prepared.parameter_count() {
        let name = prepared.parameter_name(slot).unwrap_or("?");
        let index: usize = name
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                Error::InvalidStatement(EngineError::new(
                    KIND,
                    None,
                    format!("placeholder {name} is not supported: write $1..$n"),
                ))
            })?;
        let value = params.get(index - 1).ok_or_else(|| {
            Error::param(
                index,
                format!(
                    "the statement uses ${index} but {} parameter(s) were given",
                    params.len()
                ),
            )
        })?;
        used[index - 1] = true;
        prepared
            .raw_bind_parameter(slot, convert::to_sql(index, value)?)
            .map_err(convert::error)?;
    }
    match used.iter().position(|u| !u) {
        Some(unused) => Err(Error::param(
            unused + 1,
            format!("given but not used: the statement has no ${}", unused + 1),
        )),
        None => Ok(()),
    }
}

fn columns(prepared: &rusqlite::Statement<'_>) -> (Vec<Column>, Vec<Option<String>>) {
    prepared
        .columns()
        .into_iter()
        .map(|c| {
            let decl = c.decl_type().map(str::to_owned);
            (
                Column::new(c.name(), decl.clone().unwrap_or_default()),
                decl,
            )
        })
        .unzip()
}

/// Adds a row's values to `rows`; the row added. The loop carries
/// rusqlite's error and makes the driver's only when a cell fails, as
/// PostgreSQL's `decode::push` does (the driver's error is wider than a
/// value, and each cell's `Result` is moved through the stack).
fn push_row<'a>(
    rows: &'a mut Rows,
    row: &rusqlite::Row<'_>,
    decls: &[Option<String>],
) -> Result<&'a [Value]> {
    rows.try_push(decls.iter().enumerate().map(|(i, decl)| {
        row.get_ref(i)
            .map(|v| convert::from_sql(v, decl.as_deref()))
    }))
    .map_err(convert::error)?;
    Ok(rows.last().unwrap_or_default())
}

fn run_statement(
    c: &Connection,
    statement: &Statement,
    options: &ExecuteOptions,
) -> Result<ResultSet> {
    let mut prepared = prepare(c, statement, options.read_only)?;
    let (columns, decls) = columns(&prepared);
    if columns.is_empty() {
        let changed = prepared.raw_execute().map_err(convert::error)?;
        return Ok(ResultSet {
            columns,
            rows: Rows::new(),
            rows_affected: changed as u64,
            wire_rows: None,
        });
    }
    let mut rows = prepared.raw_query();
    let mut out = Rows::new();
    let mut limits = crate::ResultLimits::new(options);
    while let Some(row) = rows.next().map_err(convert::error)? {
        limits.admit(push_row(&mut out, row, &decls)?)?;
    }
    Ok(ResultSet {
        columns,
        rows: out,
        rows_affected: 0,
        wire_rows: None,
    })
}

/// Runs one statement and delivers its rows in batches through a bounded
/// channel: memory stays bounded by the batch size, and dropping the stream
/// stops the statement.
pub(super) async fn stream(
    conn: Object,
    statement: Statement,
    options: ExecuteOptions,
) -> Result<RowStream> {
    let (batches_tx, mut batches_rx) = mpsc::channel::<Result<Rows>>(2);
    let (columns_tx, columns_rx) = oneshot::channel::<Result<Vec<Column>>>();
    let rows_affected = Arc::new(AtomicU64::new(0));
    let affected = Arc::clone(&rows_affected);
    let interrupt = interrupt_handle(&conn)?;
    let timeout = options.timeout;
    let errors_tx = batches_tx.clone();
    tokio::spawn(async move {
        let work = conn.interact(move |c| {
            stream_statement(c, &statement, &options, columns_tx, &batches_tx, &affected);
            Ok(())
        });
        if let Err(e) = with_timeout(work, timeout, interrupt).await {
            // The receiver may be gone already; then nobody needs the error.
            let _ = errors_tx.send(Err(e)).await;
        }
    });
    let columns = columns_rx.await.map_err(|_| {
        Error::Internal(EngineError::new(
            KIND,
            None,
            "the SQLite worker stopped before the columns",
        ))
    })??;
    let batches = futures::stream::poll_fn(move |cx| batches_rx.poll_recv(cx));
    Ok(RowStream {
        columns,
        batches: batches.boxed(),
        rows_affected,
    })
}

fn stream_statement(
    c: &Connection,
    statement: &Statement,
    options: &ExecuteOptions,
    columns_tx: oneshot::Sender<Result<Vec<Column>>>,
    batches: &mpsc::Sender<Result<Rows>>,
    affected: &AtomicU64,
) {
    let mut prepared = match prepare(c, statement, options.read_only) {
        Ok(p) => p,
        Err(e) => {
            let _ = columns_tx.send(Err(e));
            return;
        }
    };
    let (columns, decls) = columns(&prepared);
    let no_rows = columns.is_empty();
    if columns_tx.send(Ok(columns)).is_err() {
        return;
    }
    if no_rows {
        match prepared.raw_execute() {
            Ok(n) => affected.store(n as u64, Ordering::Relaxed),
            Err(e) => {
                let _ = batches.blocking_send(Err(convert::error(e)));
            }
        }
        return;
    }
    let batch_size = options.batch_size();
    let mut rows = prepared.raw_query();
    let mut room = crate::options::BatchRoom::new(batch_size, decls.len());
    let mut batch = room.batch();
    loop {
        let next = rows
            .next()
            .map_err(convert::error)
            .and_then(|r| r.map(|row| push_row(&mut batch, row, &decls)).transpose());
        match next {
            Ok(Some(_)) => {
                if batch.len() == batch_size
                    && batches.blocking_send(Ok(room.take(&mut batch))).is_err()
                {
                    return; // the client went away: stop reading
                }
            }
            Ok(None) => {
                if !batch.is_empty() {
                    let _ = batches.blocking_send(Ok(batch));
                }
                return;
            }
            Err(e) => {
                let _ = batches.blocking_send(Err(e));
                return;
            }
        }
    }
}

/// What a statement takes and returns, as SQLite prepares it: its
/// columns and declared types, and as many parameters as it has (untyped
/// in SQLite: their type names are empty).
pub(super) async fn describe_statement(
    conn: &Object,
    text: String,
) -> Result<crate::StatementShape> {
    conn.interact(move |c| {
        let prepared = c.prepare_cached(&text).map_err(convert::error)?;
        Ok(crate::StatementShape {
            params: vec![String::new(); prepared.parameter_count()],
            columns: prepared
                .columns()
                .iter()
                .map(|col| crate::Column::new(col.name(), col.decl_type().unwrap_or_default()))
                .collect(),
        })
    })
    .await
    .map_err(interact_error)?
}

/// Tables and views with their columns and primary keys.
pub(super) async fn describe(conn: &Object, name: Option<String>) -> Result<Vec<SchemaObject>> {
    conn.interact(move |c| describe_blocking(c, name.as_deref()).map_err(convert::error))
        .await
        .map_err(interact_error)?
}

fn describe_blocking(c: &Connection, name: Option<&str>) -> rusqlite::Result<Vec<SchemaObject>> {
    let mut list = c.prepare_cached(
        "SELECT type, name FROM sqlite_schema \
         WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
         AND name NOT LIKE 'omnigate\\_tx\\_%' ESCAPE '\\' \
         AND (?1 IS NULL OR name = ?1) ORDER BY name",
    )?;
    let objects: Vec<(String, String)> = list
        .query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut info = c.prepare_cached(
        "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1) ORDER BY cid",
    )?;
    objects
        .into_iter()
        .map(|(kind, name)| {
            let cols: Vec<(String, String, bool, i64)> = info
                .query_map([&name], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut pk: Vec<(i64, String)> = cols
                .iter()
                .filter(|c| c.3 > 0)
                .map(|c| (c.3, c.0.clone()))
                .collect();
            pk.sort();
            // Only a single INTEGER PRIMARY KEY (the rowid) refuses NULL by itself.
            let rowid_alias = pk.len() == 1;
            let columns = cols
                .into_iter()
                .map(|(col, type_name, not_null, pk_pos)| {
                    let is_rowid =
                        rowid_alias && pk_pos == 1 && type_name.eq_ignore_ascii_case("INTEGER");
                    ColumnInfo {
                        name: col,
                        type_name,
                        nullable: !not_null && !is_rowid,
                    }
                })
                .collect();
            Ok(SchemaObject {
                kind,
                schema: "main".into(),
                name,
                columns,
                primary_key: pk.into_iter().map(|(_, n)| n).collect(),
                attributes: Vec::new(),
            })
        })
        .collect()
}
