//! A read without parameters in one round trip. Prepared first, a
//! statement costs two (Parse and Describe, then Bind and Execute), and a
//! statement whose values are written into its text (`SELECT .. WHERE id
//! = 42`: pgbench `-M simple`, psql, many ORMs) is a new text each time,
//! so the cache never saves the first. Sent unnamed instead (Parse, Bind,
//! Describe, Execute, Sync at once), its columns come with its first row;
//! an empty result is described afterwards (a Parse and Describe: it does
//! not run again). A column of a type the value model does not map cannot
//! be read from the binary rows: the read then runs again, prepared, with
//! that column cast to text (see `run::prepare`), which only a read may.

use super::decode::is_mapped;
use super::error::from_pg;
use super::prepared::Cached;
use super::run::row_values;
use crate::{Column, ExecuteOptions, Result, ResultSet, Statement};
use futures::TryStreamExt;

/// Whether `statement` may run unprepared: it has no parameters, and it
/// is a `SELECT` (a read, so that running it again, prepared, is safe).
pub(super) fn may_run_unprepared(statement: &Statement) -> bool {
    statement.params.is_empty()
        && crate::sql::first_keyword(&statement.text).eq_ignore_ascii_case("select")
}

/// Runs `statement` (see [`may_run_unprepared`]) in one round trip; `None`
/// when a column has a type the value model does not map (nothing read:
/// run it prepared).
pub(super) async fn execute(
    client: &impl Cached,
    statement: &Statement,
    options: &ExecuteOptions,
) -> Result<Option<ResultSet>> {
    let timeout = options.timeout;
    let stream = client
        .query_unprepared(&statement.text)
        .await
        .map_err(|e| from_pg(e, timeout))?;
    futures::pin_mut!(stream);
    let mut columns: Option<Vec<Column>> = None;
    let mut rows = Vec::new();
    let mut limits = crate::ResultLimits::new(options);
    while let Some(row) = stream.try_next().await.map_err(|e| from_pg(e, timeout))? {
        if columns.is_none() {
            if !row.columns().iter().all(|c| is_mapped(c.type_())) {
                return Ok(None);
            }
            columns = Some(
                row.columns()
                    .iter()
                    .map(|c| Column::new(c.name(), c.type_().name()))
                    .collect(),
            );
        }
        let row = row_values(&row)?;
        limits.admit(&row)?;
        rows.push(row);
    }
    let columns = match columns {
        Some(columns) => columns,
        None => {
            let described = client
                .prepare(&statement.text)
                .await
                .map_err(|e| from_pg(e, timeout))?;
            described
                .columns()
                .iter()
                .map(|c| Column::new(c.name(), c.type_().name()))
                .collect()
        }
    };
    let rows_affected = if columns.is_empty() {
        stream.rows_affected().unwrap_or(0)
    } else {
        0
    };
    Ok(Some(ResultSet {
        columns,
        rows,
        rows_affected,
    }))
}
