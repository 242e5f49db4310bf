//! How to run a statement: one options type for every way of running it
//! (whole, streamed, batched, inside a transaction), with the `ts`
//! dialect's options beside it.

use std::time::Duration;

use crate::{Rows, Timestamp};

/// Rows per streamed batch when the caller does not say.
pub const DEFAULT_BATCH_SIZE: usize = 1000;

/// How many rows a stream's first batch has room for before its first
/// row: a small result does not reserve a whole batch (it grows as rows
/// come).
pub(crate) const BATCH_ROOM: usize = 64;

/// Where a stream's batches come from: the first with room for
/// [`BATCH_ROOM`] rows, every one after a full batch with room for a
/// whole batch. A result that filled a batch is a large one, and a batch
/// that grew from a few rows would move its values at each doubling
/// (3-4 % of the gateway's CPU on a 10k-row stream).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchRoom {
    size: usize,
    room: usize,
    width: usize,
}

impl BatchRoom {
    /// Batches of `size` rows of `width` values.
    pub(crate) fn new(size: usize, width: usize) -> Self {
        BatchRoom {
            size,
            room: size.min(BATCH_ROOM),
            width,
        }
    }

    /// An empty batch.
    pub(crate) fn batch(&self) -> Rows {
        Rows::with_capacity(self.room, self.width)
    }

    /// A batch came full: the next ones get room for a whole batch.
    pub(crate) fn filled(&mut self) {
        self.room = self.size;
    }

    /// Hands over the full `batch`, leaving an empty one in its place.
    pub(crate) fn take(&mut self, batch: &mut Rows) -> Rows {
        self.filled();
        std::mem::replace(batch, self.batch())
    }
}

/// How to run one statement.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExecuteOptions {
    /// Fail with [`Error::TooManyRows`](crate::Error::TooManyRows) past this
    /// many rows (`None`: no limit). A stream is not limited by it.
    pub max_rows: Option<u64>,
    /// Fail with [`Error::ResultTooLarge`](crate::Error::ResultTooLarge)
    /// as soon as the rows read pass this many bytes (as
    /// [`row_size`](crate::row_size) estimates them; `None`: no limit).
    /// A stream is not limited by it.
    pub max_bytes: Option<u64>,
    /// Cancel the statement on the engine after this long.
    pub timeout: Option<Duration>,
    /// Refuse statements that would write.
    pub read_only: bool,
    /// The caller may never write (its grant says so, whatever the
    /// request asks): engines with a read-only login run the call under
    /// it (PostgreSQL's `read_only_user`), and every engine refuses the
    /// statements that would lift read-only. Set with `read_only`.
    pub restricted: bool,
    /// Redis bulk strings always as bytes (by default they are text when
    /// they are valid UTF-8).
    pub raw_bytes: bool,
    /// How a whole result's cells come back: decoded into values (the
    /// default), or PostgreSQL's own bytes for a caller that forwards them
    /// (see [`Cells`]).
    pub cells: Cells,
    /// The graph (FalkorDB) or database (Neo4j) to run in, when not the
    /// engine's default; engines without such a choice refuse it.
    pub database: Option<String>,
    /// Time-series options (the `ts` dialect).
    pub ts: TsOptions,
    /// Rows per batch of a streamed execution (only streams read it;
    /// `None`: [`DEFAULT_BATCH_SIZE`]).
    pub batch_size: Option<usize>,
}

/// How a whole result's cells come back. Streams, and engines other than
/// PostgreSQL, always decode them into values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cells {
    /// Decoded into the value model.
    #[default]
    Values,
    /// PostgreSQL: in [`ResultSet::wire_rows`](crate::ResultSet::wire_rows),
    /// each cell in PostgreSQL's binary format of its column's type as the
    /// engine sent it, not decoded (for a caller that forwards cells in
    /// that format, as the PostgreSQL-wire front end does).
    Binary,
    /// PostgreSQL: in [`ResultSet::wire_rows`](crate::ResultSet::wire_rows),
    /// each cell PostgreSQL's own text of it. A statement without
    /// parameters runs unnamed in one round trip (`Parse`, `Bind`,
    /// `Describe`, `Execute`, `Sync` sent at once), where preparing it
    /// first takes two; its columns of types that are not built in (enums,
    /// composites, arrays of them) have an empty type name, as their types
    /// are not looked up (so a statement without parameters is planned
    /// on each run, even when the caller prepared it: one round trip
    /// either way). One with parameters is prepared (cached per
    /// connection) as for the other kinds. Cells are decoded as with
    /// [`Values`](Cells::Values) instead for a statement that may change
    /// the session (`set_config`; in a transaction, its later statements
    /// too), and on an engine one of whose connections was found, when it
    /// opened, to write dates, intervals, bytea or floats otherwise than
    /// PostgreSQL's defaults (from then on).
    Text,
}

impl ExecuteOptions {
    /// Rows per streamed batch, at least 1.
    pub fn batch_size(&self) -> usize {
        self.batch_size.unwrap_or(DEFAULT_BATCH_SIZE).max(1)
    }

    /// The same options without the row and byte limits: a stream's rows
    /// are not bounded by them (each batch is).
    pub fn without_limits(&self) -> ExecuteOptions {
        ExecuteOptions {
            max_rows: None,
            max_bytes: None,
            ..self.clone()
        }
    }
}

/// The unit of line-protocol timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Nanoseconds (line protocol's default).
    #[default]
    Nanoseconds,
    /// Microseconds.
    Microseconds,
    /// Milliseconds.
    Milliseconds,
    /// Seconds.
    Seconds,
}

impl Precision {
    /// The name VictoriaMetrics' `/write?precision=` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Nanoseconds => "ns",
            Precision::Microseconds => "us",
            Precision::Milliseconds => "ms",
            Precision::Seconds => "s",
        }
    }

    /// A timestamp in this unit as milliseconds.
    pub fn to_millis(self, t: i64) -> std::result::Result<i64, String> {
        match self {
            Precision::Nanoseconds => Ok(t.div_euclid(1_000_000)),
            Precision::Microseconds => Ok(t.div_euclid(1_000)),
            Precision::Milliseconds => Ok(t),
            Precision::Seconds => t
                .checked_mul(1000)
                .ok_or_else(|| "the timestamp is out of range for seconds".to_owned()),
        }
    }
}

/// The time-series options of a request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TsOptions {
    /// An instant query's time (default: now).
    pub time: Option<Timestamp>,
    /// A range query's start; setting it makes the query a range query.
    pub start: Option<Timestamp>,
    /// A range query's end (default: now).
    pub end: Option<Timestamp>,
    /// A range query's step (default: one minute).
    pub step: Option<Duration>,
    /// The unit of line-protocol timestamps.
    pub precision: Precision,
    /// Lets a `DELETE <selector>` statement delete series.
    pub allow_delete: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;

    #[test]
    fn batches_get_room_for_a_whole_batch_once_one_came_full() {
        let mut room = BatchRoom::new(1000, 3);
        assert_eq!(
            room.room, BATCH_ROOM,
            "a small result does not reserve a batch"
        );
        let mut batch = room.batch();
        batch.push([Value::Int(1), Value::Null, Value::Null]);
        let full = room.take(&mut batch);
        assert_eq!(full.len(), 1);
        assert!(batch.is_empty());
        assert_eq!(room.room, 1000);
        // Batches smaller than the first room take their own size.
        assert_eq!(BatchRoom::new(10, 3).room, 10);
    }
}
