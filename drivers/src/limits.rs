//! The caller's limits on a result, counted as rows are read, so a driver
//! stops reading as soon as a result passes them and the gateway's memory
//! is bounded by its limits whatever the statement returns.

use crate::{Error, ExecuteOptions, Result, ResultSet, Value, WireRows};

/// Rows and (estimated, encoded) bytes of a result so far, against the
/// limits of [`ExecuteOptions::max_rows`] and [`ExecuteOptions::max_bytes`].
#[derive(Debug, Clone)]
pub struct ResultLimits {
    max_rows: Option<u64>,
    max_bytes: Option<u64>,
    rows: u64,
    bytes: u64,
}

impl ResultLimits {
    /// The limits of `options`, with nothing counted yet.
    pub fn new(options: &ExecuteOptions) -> Self {
        ResultLimits {
            max_rows: options.max_rows,
            max_bytes: options.max_bytes,
            rows: 0,
            bytes: 0,
        }
    }

    /// No limits (for the engine's own queries).
    pub fn none() -> Self {
        ResultLimits::new(&ExecuteOptions::default())
    }

    /// Counts one more row; `Err` once the result passes a limit (call it
    /// once per row read; on `Err`, the call fails and its rows go).
    pub fn admit(&mut self, row: &[Value]) -> Result<()> {
        self.admit_sized(|| row_size(row))
    }

    /// [`admit`](Self::admit) for a row already encoded as a message of
    /// `size` bytes (a PostgreSQL `DataRow`, [`WireRows`]).
    pub fn admit_encoded(&mut self, size: usize) -> Result<()> {
        self.admit_sized(|| size as u64)
    }

    fn admit_sized(&mut self, size: impl FnOnce() -> u64) -> Result<()> {
        self.rows += 1;
        if let Some(limit) = self.max_rows.filter(|limit| self.rows > *limit) {
            return Err(Error::TooManyRows { limit });
        }
        if let Some(limit) = self.max_bytes {
            self.bytes += size();
            if self.bytes > limit {
                return Err(Error::ResultTooLarge { limit });
            }
        }
        Ok(())
    }

    /// Checks a result read whole (engines whose protocol delivers it at once).
    pub fn check(mut self, result: ResultSet) -> Result<ResultSet> {
        for row in &result.rows {
            self.admit(row)?;
        }
        for size in result.wire_rows.iter().flat_map(WireRows::message_sizes) {
            self.admit_encoded(size)?;
        }
        Ok(result)
    }
}

/// About what a row costs in a response message (a few bytes of framing
/// per value, plus its data).
pub fn row_size(row: &[Value]) -> u64 {
    row.iter().map(Value::size_estimate).sum::<u64>() + 4
}
