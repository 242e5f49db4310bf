//! What the gateway's calls take and return.

use std::sync::Arc;
use std::time::Duration;

use omnigate_drivers::{
    ExecuteOptions, Health, PoolStats, ResultSet, RowStream, SchemaObject, Statement, Value,
};

use super::CallContext;

/// One statement for one engine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// `"sql"`, `"redis"`, ...
    pub dialect: String,
    /// The statement text.
    pub statement: String,
    /// Parameters bound to `$1..$n`.
    pub params: Vec<Value>,
    /// Named parameters bound to `$name` (Cypher).
    pub named: Vec<(String, Value)>,
    /// The engine's name; `None` when one engine serves the dialect.
    pub target: Option<String>,
    /// Limits and flags; what is left `None` takes the server's default,
    /// and the server's limits cap what is asked.
    pub options: ExecuteOptions,
    /// The call's deadline, caller and transaction.
    pub context: CallContext,
}

impl Request {
    /// A statement in `dialect`.
    pub fn new(dialect: impl Into<String>, statement: impl Into<String>) -> Self {
        Request {
            dialect: dialect.into(),
            statement: statement.into(),
            ..Request::default()
        }
    }

    /// Adds the next positional parameter.
    pub fn param(mut self, value: impl Into<Value>) -> Self {
        self.params.push(value.into());
        self
    }

    /// Adds a named parameter (`$name`, Cypher).
    pub fn named(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.named.push((name.into(), value.into()));
        self
    }

    /// Names the engine to run on.
    pub fn target(mut self, name: impl Into<String>) -> Self {
        self.target = Some(name.into());
        self
    }

    /// Sets the statement timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(timeout);
        self
    }

    /// Refuses statements that would write.
    pub fn read_only(mut self) -> Self {
        self.options.read_only = true;
        self
    }

    /// Caps the rows `execute` may return.
    pub fn max_rows(mut self, rows: u64) -> Self {
        self.options.max_rows = Some(rows);
        self
    }
}

/// A statement's whole result and the engine that ran it.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The engine's name.
    pub engine: Arc<str>,
    /// The result.
    pub result: ResultSet,
}

/// Several statements for one engine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchRequest {
    /// `"redis"`, `"sql"`, ...
    pub dialect: String,
    /// The statements, in order.
    pub statements: Vec<Statement>,
    /// The engine's name; `None` when one engine serves the dialect.
    pub target: Option<String>,
    /// Limits and flags for every statement.
    pub options: ExecuteOptions,
    /// The call's deadline, caller and transaction.
    pub context: CallContext,
}

/// Which engine's schema to describe.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DescribeRequest {
    /// The engine's name.
    pub target: Option<String>,
    /// A dialect, to pick the one engine that serves it.
    pub dialect: Option<String>,
    /// Only objects of this name.
    pub name: Option<String>,
    /// The call's deadline and caller.
    pub context: CallContext,
}

/// One outcome per statement of a batch.
#[derive(Debug)]
pub struct BatchResponse {
    /// The engine's name.
    pub engine: Arc<str>,
    /// The outcomes, in order.
    pub results: Vec<omnigate_drivers::Result<ResultSet>>,
}

/// A streamed result and the engine that runs it.
#[derive(Debug)]
pub struct StreamResponse {
    /// The engine's name.
    pub engine: Arc<str>,
    /// The rows in batches.
    pub stream: RowStream,
}

/// An engine's state, as `ListEngines` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineStatus {
    /// The configured name.
    pub name: String,
    /// The kind.
    pub kind: String,
    /// The dialects it serves.
    pub dialects: Vec<String>,
    /// Its health, checked now.
    pub health: Health,
    /// Its pool.
    pub pool: PoolStats,
    /// Engine counters and metadata-cache counts.
    pub counters: Vec<(String, u64)>,
}

/// An engine's schema, as `Describe` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    /// The engine's name.
    pub engine: String,
    /// Its kind.
    pub kind: String,
    /// The schema objects.
    pub objects: Arc<Vec<SchemaObject>>,
    /// Its pool.
    pub pool: PoolStats,
}

/// Server-wide limits applied to every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Statement timeout when the request sets none, and the longest allowed.
    pub default_timeout: Duration,
    /// Rows `execute` returns when the request does not say.
    pub default_max_rows: u64,
    /// Rows `execute` returns at most, whatever the request says.
    pub max_rows: u64,
    /// Rows per streamed batch when the request does not say.
    pub stream_batch_rows: usize,
    /// Rows per streamed batch at most, whatever the request says.
    pub max_batch_rows: usize,
    /// Bytes a result may take: a driver stops reading past it, so the
    /// gateway's memory per call is bounded by it whatever the request says.
    pub max_response_bytes: u64,
    /// What one transaction may buffer (`[transactions]`).
    pub tx_buffered: crate::tx::BufferLimit,
}

impl From<&crate::config::Config> for Limits {
    fn from(config: &crate::config::Config) -> Self {
        let server = &config.server;
        Limits {
            tx_buffered: crate::tx::BufferLimit {
                statements: config.transactions.max_buffered_statements,
                bytes: config.transactions.max_buffered_bytes,
            },
            default_timeout: server.default_timeout,
            default_max_rows: server.default_max_rows,
            max_rows: server.max_rows,
            stream_batch_rows: server.stream_batch_rows,
            max_batch_rows: server.max_batch_rows,
            max_response_bytes: server.max_response_bytes as u64,
        }
    }
}
