//! What a statement returns: columns and rows, whole or in batches.

use std::fmt;
use std::sync::Arc;

use futures::stream::{self, BoxStream, StreamExt};

use crate::{Result, Rows, Text, Value, WireRows};

/// A result column. Its names are [`Text`]: borrowed when they are fixed (a
/// Redis reply's), inline when short, so a call that returns one usually
/// makes no allocation for them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Column {
    /// The column's name.
    pub name: Text,
    /// The engine's type name; empty when unknown.
    pub type_name: Text,
}

/// What an engine says a statement takes and returns, without running it
/// (a PostgreSQL-wire client's `Describe`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatementShape {
    /// Each parameter's type, as the engine names it; an empty name when
    /// the engine does not type parameters (SQLite).
    pub params: Vec<String>,
    /// The columns it returns (none for a statement that returns no rows).
    pub columns: Vec<Column>,
}

impl Column {
    /// A column with a name and a type name.
    pub fn new(name: impl Into<Text>, type_name: impl Into<Text>) -> Self {
        Column {
            name: name.into(),
            type_name: type_name.into(),
        }
    }

    /// A column whose names are fixed: no copy is made of them.
    pub const fn fixed(name: &'static str, type_name: &'static str) -> Self {
        Column {
            name: Text::const_new(name),
            type_name: Text::const_new(type_name),
        }
    }
}

/// The status a buffered write answers ([`ResultSet::queued`]).
pub const QUEUED: &str = "QUEUED";

/// A whole result.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultSet {
    /// The columns.
    pub columns: Vec<Column>,
    /// The rows.
    pub rows: Rows,
    /// Rows written, for statements that write.
    pub rows_affected: u64,
    /// The rows as PostgreSQL sent them, instead of in `rows` (then
    /// empty): only for a caller that asked for
    /// [`Cells::Binary`](crate::Cells::Binary) or
    /// [`Cells::Text`](crate::Cells::Text), from a PostgreSQL engine.
    pub wire_rows: Option<WireRows>,
}

impl ResultSet {
    /// A Redis-style reply: one column `reply`, one row holding `value`.
    pub fn reply(value: Value) -> Self {
        ResultSet {
            columns: vec![Column::fixed("reply", "")],
            rows: Rows::one(vec![value]),
            rows_affected: 0,
            wire_rows: None,
        }
    }

    /// What a buffered engine answers for a write it keeps for the commit:
    /// the status `QUEUED`, as Redis answers inside `MULTI`. Its own reply
    /// comes with the commit ([`DriverTransaction::commit_replies`]).
    ///
    /// [`DriverTransaction::commit_replies`]: crate::DriverTransaction::commit_replies
    pub fn queued() -> Self {
        ResultSet {
            columns: vec![Column::fixed("reply", QUEUED)],
            ..ResultSet::reply(Value::String(crate::Text::const_new(QUEUED)))
        }
    }

    /// Whether this is a buffered write's [`ResultSet::queued`] (its column
    /// is typed `QUEUED`; a read that answers the status `QUEUED` is not).
    pub fn is_queued(&self) -> bool {
        matches!(self.columns.as_slice(), [c] if c.type_name == QUEUED)
    }

    /// The rows as values, [`wire_rows`](Self::wire_rows) included (their
    /// cells as [`Value::Bytes`] of their bytes as PostgreSQL sent them:
    /// binary or text, as the caller asked).
    pub fn into_values(self) -> Result<Rows> {
        match self.wire_rows {
            Some(wire) => wire.into_values(),
            None => Ok(self.rows),
        }
    }

    /// The first column of the first row (`Value::Null` when there is none).
    pub fn into_scalar(self) -> Value {
        let mut rows = self.into_values().unwrap_or_default();
        match rows.get_mut(0) {
            Some([first, ..]) => std::mem::replace(first, Value::Null),
            _ => Value::Null,
        }
    }
}

/// A result delivered in batches, so memory stays bounded by the batch size.
pub struct RowStream {
    /// The columns, known before the first row.
    pub columns: Vec<Column>,
    /// Batches of rows; dropping the stream cancels the statement.
    pub batches: BoxStream<'static, Result<Rows>>,
    /// Rows written, known once the stream has ended (0 until then).
    pub rows_affected: Arc<std::sync::atomic::AtomicU64>,
}

impl fmt::Debug for RowStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RowStream")
            .field("columns", &self.columns)
            .finish_non_exhaustive()
    }
}

impl RowStream {
    /// A stream over a result already in memory.
    pub fn from_result(mut result: ResultSet, batch_size: usize) -> Self {
        let columns = std::mem::take(&mut result.columns);
        let rows_affected = result.rows_affected;
        let batches = match result.into_values() {
            Ok(rows) => stream::iter(rows.into_batches(batch_size).map(Ok)).boxed(),
            Err(e) => stream::iter([Err(e)]).boxed(),
        };
        RowStream {
            columns,
            batches,
            rows_affected: Arc::new(rows_affected.into()),
        }
    }
}
