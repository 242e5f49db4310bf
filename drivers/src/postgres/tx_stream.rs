//! A statement streamed inside a PostgreSQL transaction: the transaction's
//! pinned connection is lent to a task that sends the rows in batches as
//! the server sends them (the same memory bound as a stream outside a
//! transaction), and comes back when the stream ends or is dropped; the
//! transaction's next step waits for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use deadpool_postgres::Object;
use futures::TryStreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::NoTls;

use super::decode;
use super::error::from_pg;
use super::run::{bind_params, prepare};
use super::types_cache::StatementTypes;
use crate::{Column, Error, ExecuteOptions, Result, RowStream, Rows, Statement};

/// The connection coming back from a stream: it, whether the statement
/// failed (PostgreSQL then aborted the transaction), and whether a cancel
/// was sent on it.
pub(super) type Returned = (Object, bool, bool);

/// Streams `statement` on `client` (a transaction's connection): its rows,
/// and the connection back on `back` once the stream has ended or been
/// dropped. A connection nobody takes back (its transaction was dropped
/// meanwhile) is closed, never returned to the pool mid-transaction.
pub(super) async fn stream(
    client: Object,
    statement: Statement,
    options: ExecuteOptions,
    types: StatementTypes,
    back: oneshot::Sender<Returned>,
) -> Result<RowStream> {
    let (columns_tx, columns_rx) = oneshot::channel::<Result<Vec<Column>>>();
    let (batches_tx, batches_rx) = mpsc::channel::<Result<Rows>>(2);
    let rows_affected = Arc::new(AtomicU64::new(0));
    let affected = Arc::clone(&rows_affected);
    tokio::spawn(async move {
        let mut columns_tx = Some(columns_tx);
        let token = client.cancel_token();
        let work = rows(
            &client,
            &statement,
            &options,
            &types,
            &mut columns_tx,
            &batches_tx,
            &affected,
        );
        let (outcome, tainted) = cancelled_at(options.timeout, &token, work).await;
        let failed = outcome.is_err();
        if let Err(e) = outcome {
            match columns_tx.take() {
                Some(tx) => {
                    let _ = tx.send(Err(e));
                }
                None => {
                    let _ = batches_tx.send(Err(e)).await;
                }
            }
        }
        if let Err((client, ..)) = back.send((client, failed, tainted)) {
            drop(Object::take(client));
        }
    });
    super::run::row_stream(columns_rx, batches_rx, rows_affected).await
}

/// `work` on a transaction's connection, cut at `timeout` by a cancel sent
/// to the server (which aborts the transaction); whether a cancel was sent
/// (the connection must then leave the pool when the transaction ends).
///
/// A call dropped before `work` answered (its client cancelled it, went
/// away, or its deadline cut it above) sends the cancel too, on its own
/// task: the statement stops on the server instead of running on while
/// the transaction waits to roll back.
pub(super) async fn cancelled_at<T>(
    timeout: Option<std::time::Duration>,
    token: &tokio_postgres::CancelToken,
    work: impl std::future::Future<Output = Result<T>>,
) -> (Result<T>, bool) {
    let mut guard = CancelOnDrop { token, armed: true };
    let outcome = match timeout {
        None => (work.await, false),
        Some(limit) => match tokio::time::timeout(limit, work).await {
            Ok(outcome) => (outcome, false),
            Err(_) => {
                let _ = token.cancel_query(NoTls).await;
                (Err(Error::Timeout { after: limit }), true)
            }
        },
    };
    guard.armed = false;
    outcome
}

/// Sends a cancel for the connection's running statement when dropped
/// armed (see [`cancelled_at`]).
struct CancelOnDrop<'a> {
    token: &'a tokio_postgres::CancelToken,
    armed: bool,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let token = self.token.clone();
            runtime.spawn(async move {
                let _ = token.cancel_query(NoTls).await;
            });
        }
    }
}

/// Sends the statement's columns, then its rows in batches.
async fn rows(
    client: &Object,
    statement: &Statement,
    options: &ExecuteOptions,
    types: &StatementTypes,
    columns_tx: &mut Option<oneshot::Sender<Result<Vec<Column>>>>,
    batches: &mpsc::Sender<Result<Rows>>,
    affected: &AtomicU64,
) -> Result<()> {
    let timeout = options.timeout;
    let pg = |e| from_pg(e, timeout);
    let (prepared, columns) = prepare(client, &statement.text, timeout, false).await?;
    let params = bind_params(&prepared, statement, None, types)?;
    let no_rows = columns.is_empty();
    if let Some(tx) = columns_tx.take()
        && tx.send(Ok(columns)).is_err()
    {
        return Ok(()); // the caller went away before the first row
    }
    if no_rows {
        let n = client
            .execute_raw(&prepared, params.iter())
            .await
            .map_err(pg)?;
        affected.store(n, Ordering::Relaxed);
        return Ok(());
    }
    let stream = client
        .query_raw(&prepared, params.iter())
        .await
        .map_err(pg)?;
    futures::pin_mut!(stream);
    let batch_size = options.batch_size();
    let mut room = crate::options::BatchRoom::new(batch_size, prepared.columns().len());
    let mut batch = room.batch();
    while let Some(row) = stream.try_next().await.map_err(pg)? {
        decode::push(&mut batch, &row)?;
        if batch.len() >= batch_size {
            let full = room.take(&mut batch);
            if batches.send(Ok(full)).await.is_err() {
                // The reader went away: the rest is read off and dropped
                // as the stream is (the connection stays in step).
                return Ok(());
            }
        }
    }
    if !batch.is_empty() {
        let _ = batches.send(Ok(batch)).await;
    }
    Ok(())
}
