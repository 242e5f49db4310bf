//! Running statements on a pooled connection: typed parameters, rows to
//! values, timeouts that cancel on the server, and streams through a
//! portal so memory stays bounded by the batch size.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::{GenericClient, Object};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::mpsc;
use tokio_postgres::types::Format;

use super::decode::{self, is_mapped};
use super::encode::{Encoded, encode};
use super::error::from_pg;
use super::lease::leased;
use super::prepared::Cached;
use super::types_cache::{Early, StatementTypes};
use crate::{
    Cells, Column, Error, ExecuteOptions, Result, ResultSet, RowStream, Rows, Statement, WireWriter,
};

/// Prepares a statement's text; when a result column has a type the
/// engine does not map, prepares it again wrapped so that column arrives
/// as text (its column keeps its name and type name), unless its cells
/// are wanted as PostgreSQL sends them (`native`: a whole result read as
/// [`Cells::Binary`] or [`Cells::Text`]; a stream's cells are always
/// decoded).
pub(super) async fn prepare(
    client: &impl Cached,
    text: &str,
    timeout: Option<Duration>,
    native: bool,
) -> Result<(tokio_postgres::Statement, Vec<Column>)> {
    let prepared = client
        .prepare_for_call(text)
        .await
        .map_err(|e| from_pg(e, timeout))?;
    let columns = super::prepared::columns(&prepared);
    if native || prepared.columns().iter().all(|c| is_mapped(c.type_())) {
        return Ok((prepared, columns));
    }
    let wrapped = text_fallback(text, &prepared);
    let prepared = client
        .prepare_for_call(&wrapped)
        .await
        .map_err(|e| from_pg(e, timeout))?;
    Ok((prepared, columns))
}

/// `WITH omnigate_q(c1, .., cn) AS (<statement>) SELECT c1, c2::text, ..`
/// with `::text` on the columns of unmapped types.
fn text_fallback(text: &str, prepared: &tokio_postgres::Statement) -> String {
    let names: Vec<String> = (1..=prepared.columns().len())
        .map(|i| format!("c{i}"))
        .collect();
    let select: Vec<String> = prepared
        .columns()
        .iter()
        .zip(&names)
        .map(|(c, name)| {
            if is_mapped(c.type_()) {
                name.clone()
            } else {
                format!("{name}::text")
            }
        })
        .collect();
    format!(
        "WITH omnigate_q({}) AS ({}) SELECT {} FROM omnigate_q",
        names.join(", "),
        text.trim().trim_end_matches(';'),
        select.join(", ")
    )
}

/// The parameters encoded for a statement's parameter types, checking
/// their number first.
pub(crate) fn encode_params(
    types: &[tokio_postgres::types::Type],
    values: &[crate::Value],
) -> Result<Vec<Encoded>> {
    if values.len() < types.len() {
        let index = values.len() + 1;
        return Err(Error::param(
            index,
            format!(
                "the statement uses ${} but {} parameter(s) were given",
                types.len(),
                values.len()
            ),
        ));
    }
    if values.len() > types.len() {
        let index = types.len() + 1;
        return Err(Error::param(
            index,
            format!("given but not used: the statement has no ${index}"),
        ));
    }
    values
        .iter()
        .zip(types)
        .enumerate()
        .map(|(i, (value, ty))| encode(i + 1, value, ty))
        .collect()
}

/// The statement's parameters: those encoded early when they were encoded
/// for the same types, else encoded now (and the types remembered).
pub(super) fn bind_params(
    prepared: &tokio_postgres::Statement,
    statement: &Statement,
    early: Option<Early>,
    types: &StatementTypes,
) -> Result<Vec<Encoded>> {
    match early {
        Some((known, encoded)) if *known == *prepared.params() => Ok(encoded),
        _ => {
            types.remember(&statement.text, prepared.params());
            encode_params(prepared.params(), &statement.params)
        }
    }
}

/// Prepares (cached per connection), binds and runs one statement; or,
/// for [`Cells::Text`] without parameters, runs it unnamed in one round
/// trip.
pub(crate) async fn execute(
    client: &impl Cached,
    statement: &Statement,
    options: &ExecuteOptions,
    early: Option<Early>,
    types: &StatementTypes,
) -> Result<ResultSet> {
    if options.cells == Cells::Text && statement.params.is_empty() {
        return super::text_cells::execute(client, statement, options).await;
    }
    let timeout = options.timeout;
    let native = options.cells != Cells::Values;
    let (prepared, columns) = prepare(client, &statement.text, timeout, native).await?;
    let params = bind_params(&prepared, statement, early, types)?;
    if columns.is_empty() {
        let affected = client
            .execute_raw(&prepared, params.iter())
            .await
            .map_err(|e| from_pg(e, timeout))?;
        return Ok(ResultSet {
            columns,
            rows: Rows::new(),
            rows_affected: affected,
            wire_rows: None,
        });
    }
    let results = if options.cells == Cells::Text {
        Format::Text
    } else {
        Format::Binary
    };
    let stream = client
        .query_formatted(&prepared, &params, results)
        .await
        .map_err(|e| from_pg(e, timeout))?;
    if native {
        return wire_result(columns, stream, options).await;
    }
    futures::pin_mut!(stream);
    let mut limits = crate::ResultLimits::new(options);
    let mut rows = Rows::new();
    while let Some(row) = stream.try_next().await.map_err(|e| from_pg(e, timeout))? {
        limits.admit(decode::push(&mut rows, &row)?)?;
    }
    Ok(ResultSet {
        columns,
        rows,
        rows_affected: 0,
        wire_rows: None,
    })
}

/// A whole result's rows read from `stream` as the engine sent their
/// cells ([`Cells::Binary`], [`Cells::Text`]), within `options`' limits.
pub(super) async fn wire_result(
    columns: Vec<Column>,
    stream: tokio_postgres::RowStream,
    options: &ExecuteOptions,
) -> Result<ResultSet> {
    futures::pin_mut!(stream);
    let mut limits = crate::ResultLimits::new(options);
    let mut rows = WireWriter::new(columns.len());
    while let Some(row) = stream
        .try_next()
        .await
        .map_err(|e| from_pg(e, options.timeout))?
    {
        limits.admit_encoded(decode::push_wire(&mut rows, &row)?)?;
    }
    Ok(ResultSet {
        columns,
        rows: Rows::new(),
        rows_affected: 0,
        wire_rows: Some(rows.finish()),
    })
}

/// Runs one statement in a transaction through a portal, sending batches
/// of `batch_size` rows down a small channel. Dropping the stream stops
/// reading: the portal is closed and the transaction rolled back.
pub(crate) async fn stream(
    client: Object,
    statement: Statement,
    options: ExecuteOptions,
) -> Result<RowStream> {
    let timeout = options.timeout;
    let reset = super::session::changes_session(&statement.text);
    let (columns_tx, columns_rx) = tokio::sync::oneshot::channel::<Result<Vec<Column>>>();
    let (batches_tx, batches_rx) = mpsc::channel::<Result<Rows>>(2);
    let rows_affected = Arc::new(AtomicU64::new(0));
    let affected = Arc::clone(&rows_affected);
    tokio::spawn(async move {
        let mut columns_tx = Some(columns_tx);
        let work = async |client: &mut Object| {
            portal(
                client,
                &statement,
                &options,
                &mut columns_tx,
                &batches_tx,
                &affected,
            )
            .await
        };
        if let Err(e) = leased(timeout, async { Ok(client) }, reset, work).await {
            // Before the columns went out the caller waits for them; after,
            // for the next batch.
            match columns_tx.take() {
                Some(tx) => {
                    let _ = tx.send(Err(e));
                }
                None => {
                    let _ = batches_tx.send(Err(e)).await;
                }
            }
        }
    });
    row_stream(columns_rx, batches_rx, rows_affected).await
}

/// The stream a task feeding `columns` then `batches` makes: its columns
/// once they come (or the error that came instead), then its batches.
pub(super) async fn row_stream(
    columns: tokio::sync::oneshot::Receiver<Result<Vec<Column>>>,
    mut batches: mpsc::Receiver<Result<Rows>>,
    rows_affected: Arc<AtomicU64>,
) -> Result<RowStream> {
    let columns = columns.await.map_err(|_| {
        Error::Internal(crate::EngineError::new(
            super::KIND,
            None,
            "the stream stopped before its columns",
        ))
    })??;
    let batches = futures::stream::poll_fn(move |cx| batches.poll_recv(cx));
    Ok(RowStream {
        columns,
        batches: batches.boxed(),
        rows_affected,
    })
}

async fn portal(
    client: &mut Object,
    statement: &Statement,
    options: &ExecuteOptions,
    columns_tx: &mut Option<tokio::sync::oneshot::Sender<Result<Vec<Column>>>>,
    batches: &mpsc::Sender<Result<Rows>>,
    affected: &AtomicU64,
) -> Result<()> {
    let timeout = options.timeout;
    let pg = |e| from_pg(e, timeout);
    let transaction = client.transaction().await.map_err(pg)?;
    if options.read_only {
        transaction
            .batch_execute("SET TRANSACTION READ ONLY")
            .await
            .map_err(pg)?;
    }
    let (prepared, columns) = prepare(&transaction, &statement.text, timeout, false).await?;
    let params = encode_params(prepared.params(), &statement.params)?;
    let no_rows = columns.is_empty();
    if let Some(tx) = columns_tx.take()
        && tx.send(Ok(columns)).is_err()
    {
        return Ok(());
    }
    if no_rows {
        let n = transaction
            .execute_raw(&prepared, params.iter())
            .await
            .map_err(pg)?;
        affected.store(n, Ordering::Relaxed);
        transaction.commit().await.map_err(pg)?;
        return Ok(());
    }
    let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        params.iter().map(|p| p as _).collect();
    let portal = transaction.bind(&prepared, &refs).await.map_err(pg)?;
    let batch_size = options.batch_size();
    let max_rows = i32::try_from(batch_size).unwrap_or(i32::MAX);
    let mut next = Some(
        transaction
            .query_portal_raw(&portal, max_rows)
            .await
            .map_err(pg)?,
    );
    let mut room = crate::options::BatchRoom::new(batch_size, prepared.columns().len());
    while let Some(rows) = next.take() {
        // The next batch is asked for before this one is read, so the
        // server produces it while this one is converted and sent (an
        // Execute past the end returns no rows).
        let following = transaction
            .query_portal_raw(&portal, max_rows)
            .await
            .map_err(pg)?;
        futures::pin_mut!(rows);
        let mut batch = room.batch();
        while let Some(row) = rows.try_next().await.map_err(pg)? {
            decode::push(&mut batch, &row)?;
        }
        let done = batch.len() < batch_size;
        if !batch.is_empty() && batches.send(Ok(batch)).await.is_err() {
            return Ok(()); // the client went away: the transaction rolls back on drop
        }
        if !done {
            room.filled();
            next = Some(following);
        }
    }
    transaction.commit().await.map_err(pg)?;
    Ok(())
}
