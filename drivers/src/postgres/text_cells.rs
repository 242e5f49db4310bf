//! PostgreSQL's own text cells for a caller that forwards them
//! ([`Cells::Text`]): a statement without parameters run as the unnamed
//! statement in one round trip, and the rule that turns text cells back
//! into values where the engine writes text otherwise than its clients
//! read it.

use std::borrow::Cow;

use futures::TryStreamExt;

use super::error::from_pg;
use super::prepared::Cached;
use crate::{Cells, Column, Error, ExecuteOptions, Result, ResultSet, Rows, Statement};

/// `options`, or, when the engine's connections do not write text in the
/// formats the wire front end reports (`text_cells` false: see
/// `pool::writes_reported_formats`), the same asking for values instead
/// of [`Cells::Text`].
pub(crate) fn served(options: &ExecuteOptions, text_cells: bool) -> Cow<'_, ExecuteOptions> {
    if options.cells == Cells::Text && !text_cells {
        Cow::Owned(ExecuteOptions {
            cells: Cells::Values,
            ..options.clone()
        })
    } else {
        Cow::Borrowed(options)
    }
}

/// Runs a statement without parameters as the unnamed statement in one
/// round trip, its cells PostgreSQL's own text, as wire rows
/// ([`Cells::Text`]).
pub(super) async fn execute(
    client: &impl Cached,
    statement: &Statement,
    options: &ExecuteOptions,
) -> Result<ResultSet> {
    let timeout = options.timeout;
    let pg = |e| from_pg(e, timeout);
    let (described, stream) = client
        .run_unnamed(&statement.text)
        .await
        .map_err(|e| missing_params(&e).unwrap_or_else(|| pg(e)))?;
    if described.is_empty() {
        futures::pin_mut!(stream);
        while stream.try_next().await.map_err(pg)?.is_some() {}
        return Ok(ResultSet {
            columns: Vec::new(),
            rows: Rows::new(),
            rows_affected: stream.rows_affected().unwrap_or(0),
            wire_rows: None,
        });
    }
    let columns = described
        .iter()
        .map(|c| Column::new(c.name(), super::prepared::unnamed_type_name(c.type_())))
        .collect();
    super::run::wire_result(columns, stream, options).await
}

/// PostgreSQL's refusal of an unnamed statement's `Bind` without the
/// parameters its text uses (a protocol violation, `08P01`, which would
/// read as a broken connection; "bind message supplies 0 parameters, but
/// prepared statement \"\" requires 2" in English), said as the prepared
/// path says it before sending anything. Known by the server routine that
/// raised it, which is not translated; the only `Bind` this path sends is
/// that one.
fn missing_params(e: &tokio_postgres::Error) -> Option<Error> {
    let db = e.as_db_error()?;
    if *db.code() != tokio_postgres::error::SqlState::PROTOCOL_VIOLATION
        || db.routine() != Some("exec_bind_message")
    {
        return None;
    }
    let wanted = db
        .message()
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse::<usize>().ok());
    Some(Error::param(
        1,
        match wanted {
            Some(n) => format!("the statement uses ${n} but 0 parameter(s) were given"),
            None => "the statement uses parameters ($1, ...) but none were given".to_owned(),
        },
    ))
}
