//! What an engine is and reports: its descriptor, health, pool statistics
//! and schema objects.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Dialect, Result, Statement};

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
    /// Time callers spent waiting for a connection since start (µs).
    pub waited_us: u64,
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

/// How many statements that change the schema an engine has run: each
/// statement is looked at once, by the driver that runs it, and whoever
/// caches schema metadata compares epochs instead of asking again.
#[derive(Debug, Default)]
pub struct SchemaEpoch(AtomicU64);

impl SchemaEpoch {
    /// Notes `statement` of `dialect`: `true` (and a new epoch) when it
    /// changes the schema.
    pub fn note(&self, dialect: Dialect, statement: &str) -> bool {
        let changes = Self::changes(dialect, statement);
        if changes {
            self.bump();
        }
        changes
    }

    /// Whether `statement` of `dialect` changes the schema (CREATE, ALTER,
    /// DROP in SQL; index and constraint changes in Cypher).
    pub fn changes(dialect: Dialect, statement: &str) -> bool {
        match dialect {
            Dialect::Sql => crate::sql::is_schema_change(statement),
            Dialect::Cypher => crate::cypher::is_schema_change(statement),
            Dialect::Redis | Dialect::Ts => false,
        }
    }

    /// A new epoch: the schema changed.
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The epoch now: schema changes run so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}
