//! The `StorageDriver` trait and the types it speaks.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};

use crate::{Result, Value};

/// The query languages statements are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Dialect {
    /// SQL (PostgreSQL's, or the subset SQLite shares).
    Sql,
    /// Redis commands in redis-cli syntax.
    Redis,
    /// Cypher.
    Cypher,
    /// Time series: line protocol writes, PromQL reads.
    Ts,
}

impl Dialect {
    /// Every dialect, in a stable order.
    pub const ALL: [Dialect; 4] = [Dialect::Sql, Dialect::Redis, Dialect::Cypher, Dialect::Ts];

    /// The dialect's name as clients spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Sql => "sql",
            Dialect::Redis => "redis",
            Dialect::Cypher => "cypher",
            Dialect::Ts => "ts",
        }
    }

    /// Parses a dialect name (case-insensitive).
    pub fn parse(name: &str) -> Option<Dialect> {
        Dialect::ALL
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A statement and its parameters: positional (`$1..$n`, every dialect
/// but Cypher) or named (`$name`, Cypher).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Statement {
    /// The statement text.
    pub text: String,
    /// The parameters, bound to `$1..$n`.
    pub params: Vec<Value>,
    /// Named parameters, bound to `$name` (Cypher).
    pub named: Vec<(String, Value)>,
}

impl Statement {
    /// A statement without parameters.
    pub fn new(text: impl Into<String>) -> Self {
        Statement {
            text: text.into(),
            params: Vec::new(),
            named: Vec::new(),
        }
    }

    /// Adds the next positional parameter.
    pub fn bind(mut self, value: impl Into<Value>) -> Self {
        self.params.push(value.into());
        self
    }

    /// Adds a named parameter (`$name` in Cypher).
    pub fn bind_named(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.named.push((name.into(), value.into()));
        self
    }

    /// Checks what every statement must satisfy on every engine, before
    /// anything is sent: the parameters are of the kind `dialect` uses, no
    /// parameter nests deeper than [`MAX_DEPTH`](crate::MAX_DEPTH), and the
    /// text is not empty and holds no NUL byte. PostgreSQL's protocol and
    /// SQLite's and FalkorDB's parsers end a statement at a NUL, so what
    /// follows it would be silently dropped (`DELETE FROM t\0 WHERE ..`
    /// would delete every row); binary data belongs in a parameter.
    pub fn check(&self, dialect: Dialect) -> Result<()> {
        self.check_param_style(dialect)?;
        if let Some(offset) = self.text.find('\0') {
            return Err(crate::Error::InvalidStatement(crate::EngineError::new(
                "gateway",
                None,
                format!(
                    "the statement holds a NUL byte at byte {offset}: statement text may not \
                     (send binary data as a $n parameter)"
                ),
            )));
        }
        if self.text.trim().is_empty() {
            return Err(crate::Error::InvalidStatement(crate::EngineError::new(
                "gateway",
                None,
                format!("the statement is empty: send one {dialect} statement"),
            )));
        }
        for (i, value) in self.params.iter().enumerate() {
            value
                .check_depth()
                .map_err(|message| crate::Error::param(i + 1, message))?;
        }
        for (name, value) in &self.named {
            value
                .check_depth()
                .map_err(|message| crate::Error::named_param(name, message))?;
        }
        Ok(())
    }

    /// Checks that the parameters are of the kind `dialect` uses: named
    /// for Cypher, positional for the others.
    pub fn check_param_style(&self, dialect: Dialect) -> Result<()> {
        match (dialect, self.named.first()) {
            (Dialect::Cypher, _) if !self.params.is_empty() => Err(crate::Error::param(
                1,
                "cypher takes named parameters ($name, given in named_params), not positional ones",
            )),
            (Dialect::Cypher, _) | (_, None) => Ok(()),
            (_, Some((name, _))) => Err(crate::Error::named_param(
                name,
                format!(
                    "named parameters are for cypher; {dialect} binds positional params to $1..$n"
                ),
            )),
        }
    }
}

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

/// A result column.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Column {
    /// The column's name.
    pub name: String,
    /// The engine's type name; empty when unknown.
    pub type_name: String,
}

impl Column {
    /// A column with a name and a type name.
    pub fn new(name: impl Into<String>, type_name: impl Into<String>) -> Self {
        Column {
            name: name.into(),
            type_name: type_name.into(),
        }
    }
}

/// One result row: a value per column.
pub type Row = Vec<Value>;

/// A whole result.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultSet {
    /// The columns.
    pub columns: Vec<Column>,
    /// The rows.
    pub rows: Vec<Row>,
    /// Rows written, for statements that write.
    pub rows_affected: u64,
}

/// A result delivered in batches, so memory stays bounded by the batch size.
pub struct RowStream {
    /// The columns, known before the first row.
    pub columns: Vec<Column>,
    /// Batches of rows; dropping the stream cancels the statement.
    pub batches: BoxStream<'static, Result<Vec<Row>>>,
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
    pub fn from_result(result: ResultSet, batch_size: usize) -> Self {
        let batch_size = batch_size.max(1);
        let mut rows = result.rows.into_iter();
        let batches = stream::iter(std::iter::from_fn(move || {
            let batch: Vec<Row> = rows.by_ref().take(batch_size).collect();
            (!batch.is_empty()).then_some(Ok(batch))
        }));
        RowStream {
            columns: result.columns,
            batches: batches.boxed(),
            rows_affected: Arc::new(result.rows_affected.into()),
        }
    }
}

/// Which schema objects to describe.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribeOptions {
    /// Only objects of this name (`None`: all).
    pub name: Option<String>,
}

impl DescribeOptions {
    /// Whether an object called `name` is asked for.
    pub fn wants(&self, name: &str) -> bool {
        self.name.as_deref().is_none_or(|n| n == name)
    }
}

/// A schema object: a table, a view, a keyspace, a label, ...
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SchemaObject {
    /// `"table"`, `"view"`, `"keyspace"`, ...
    pub kind: String,
    /// The schema or namespace; empty when the engine has none.
    pub schema: String,
    /// The object's name.
    pub name: String,
    /// Its columns, for tables and views.
    pub columns: Vec<ColumnInfo>,
    /// The primary key's column names, in order.
    pub primary_key: Vec<String>,
    /// Other facts, e.g. `("keys", "12")`.
    pub attributes: Vec<(String, String)>,
}

/// A column of a table or view.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ColumnInfo {
    /// The column's name.
    pub name: String,
    /// The declared type.
    pub type_name: String,
    /// Whether it may hold NULL.
    pub nullable: bool,
}

/// An engine's health, as checked now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// The engine answers.
    Serving,
    /// The engine does not answer; why.
    NotServing(String),
}

/// Connection pool statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Connections the pool may hold at most (0: no pool).
    pub max_size: u32,
    /// Connections open now.
    pub size: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// Connections handed out now.
    pub in_use: u32,
    /// Callers waiting for a connection now.
    pub waiters: u32,
    /// Connections created since start.
    pub created: u64,
    /// Connections handed out since start.
    pub acquired: u64,
    /// Median time to get a connection, over recent acquisitions (µs).
    pub acquire_p50_us: u64,
    /// 99th percentile time to get a connection (µs).
    pub acquire_p99_us: u64,
}

/// What an engine is: its configured name, its kind and the dialects it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineDescriptor {
    /// The configured name, e.g. `"main-db"`.
    pub name: String,
    /// The kind, e.g. `"sqlite"`.
    pub kind: &'static str,
    /// The dialects it serves.
    pub dialects: Vec<Dialect>,
}

impl EngineDescriptor {
    /// `Ok` when the engine serves `dialect` and `statement` passes
    /// [`Statement::check`]: what every driver checks first.
    pub fn accept(&self, dialect: Dialect, statement: &Statement) -> Result<()> {
        self.ensure_serves(dialect)?;
        statement.check(dialect)
    }

    /// `Ok` when the engine serves `dialect`, else `NotSupported` naming it.
    pub fn ensure_serves(&self, dialect: Dialect) -> Result<()> {
        if self.dialects.contains(&dialect) {
            Ok(())
        } else {
            Err(crate::Error::not_supported(
                format!("the {dialect} dialect"),
                self.kind,
            ))
        }
    }
}

/// One storage engine behind one small object-safe trait.
///
/// Required: [`execute`](StorageDriver::execute), [`describe`](StorageDriver::describe),
/// [`health`](StorageDriver::health). [`execute_stream`](StorageDriver::execute_stream)
/// has a default that batches a whole result; engines that can stream from
/// the server override it. Anything an engine cannot do returns
/// [`Error::NotSupported`](crate::Error::NotSupported).
#[async_trait]
pub trait StorageDriver: Send + Sync + fmt::Debug + 'static {
    /// The engine's name, kind and dialects.
    fn descriptor(&self) -> &EngineDescriptor;

    /// Runs one statement in `dialect` and returns its whole result.
    async fn execute(
        &self,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<ResultSet>;

    /// Runs one statement and returns its rows in batches.
    async fn execute_stream(
        &self,
        dialect: Dialect,
        statement: Statement,
        options: StreamOptions,
    ) -> Result<RowStream> {
        let execute = options.to_execute();
        let result = self.execute(dialect, &statement, &execute).await?;
        Ok(RowStream::from_result(result, options.batch_size))
    }

    /// Runs several statements, each with its own result or error: one that
    /// fails does not stop the others. Engines that can (Redis) send them
    /// in one round trip; the default runs them one by one. The outer error
    /// is for the batch as a whole (e.g. the engine is down).
    async fn execute_batch(
        &self,
        dialect: Dialect,
        statements: &[Statement],
        options: &ExecuteOptions,
    ) -> Result<Vec<Result<ResultSet>>> {
        let mut results = Vec::with_capacity(statements.len());
        for statement in statements {
            results.push(self.execute(dialect, statement, options).await);
        }
        Ok(results)
    }

    /// Describes the engine's schema objects.
    async fn describe(&self, options: &DescribeOptions) -> Result<Vec<SchemaObject>>;

    /// Checks that the engine answers now.
    async fn health(&self) -> Health;

    /// The pool's statistics now.
    fn pool_stats(&self) -> PoolStats {
        PoolStats::default()
    }

    /// Engine-specific counters, e.g. `("keys", 12)`.
    fn counters(&self) -> Vec<(String, u64)> {
        Vec::new()
    }

    /// Whether a statement changes the schema, so cached metadata must go.
    fn is_schema_change(&self, _dialect: Dialect, _statement: &str) -> bool {
        false
    }
}

/// Convenience calls on every driver, written once.
#[async_trait]
pub trait StorageDriverExt: StorageDriver {
    /// Runs a statement with default options.
    async fn run(&self, dialect: Dialect, statement: Statement) -> Result<ResultSet> {
        self.execute(dialect, &statement, &ExecuteOptions::default())
            .await
    }

    /// Runs a statement and returns the first column of the first row
    /// (`Value::Null` when there is none).
    async fn query_scalar(&self, dialect: Dialect, statement: Statement) -> Result<Value> {
        let result = self.run(dialect, statement).await?;
        Ok(result
            .rows
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .unwrap_or(Value::Null))
    }
}

impl<T: StorageDriver + ?Sized> StorageDriverExt for T {}
