//! How to run a statement: the options of one execution and of a stream.

use std::time::Duration;

/// How to run one statement.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExecuteOptions {
    /// Fail with [`Error::TooManyRows`](crate::Error::TooManyRows) past this
    /// many rows (`None`: no limit).
    pub max_rows: Option<u64>,
    /// Fail with [`Error::ResultTooLarge`](crate::Error::ResultTooLarge)
    /// as soon as the rows read pass this many bytes (as
    /// [`row_size`](crate::row_size) estimates them; `None`: no limit).
    pub max_bytes: Option<u64>,
    /// Cancel the statement on the engine after this long.
    pub timeout: Option<Duration>,
    /// Refuse statements that would write.
    pub read_only: bool,
    /// Redis bulk strings always as bytes (by default they are text when
    /// they are valid UTF-8).
    pub raw_bytes: bool,
    /// The graph (FalkorDB) or database (Neo4j) to run in, when not the
    /// engine's default; engines without such a choice refuse it.
    pub database: Option<String>,
    /// Time-series options (the `ts` dialect).
    pub ts: crate::ts::TsOptions,
}

/// Options of a streamed execution.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamOptions {
    /// Rows per batch.
    pub batch_size: usize,
    /// Cancel the statement on the engine after this long.
    pub timeout: Option<Duration>,
    /// Refuse statements that would write.
    pub read_only: bool,
    /// Redis bulk strings always as bytes.
    pub raw_bytes: bool,
    /// The graph or database to run in (see [`ExecuteOptions::database`]).
    pub database: Option<String>,
    /// Time-series options (see [`ExecuteOptions::ts`]).
    pub ts: crate::ts::TsOptions,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            batch_size: 1000,
            timeout: None,
            read_only: false,
            raw_bytes: false,
            database: None,
            ts: crate::ts::TsOptions::default(),
        }
    }
}

impl StreamOptions {
    /// The options of one execution of the same request.
    pub fn to_execute(&self) -> ExecuteOptions {
        ExecuteOptions {
            max_rows: None,
            max_bytes: None,
            timeout: self.timeout,
            read_only: self.read_only,
            raw_bytes: self.raw_bytes,
            database: self.database.clone(),
            ts: self.ts.clone(),
        }
    }
}
