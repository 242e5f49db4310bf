//! Omnigate's storage drivers: the [`StorageDriver`] trait every engine
//! implements, the [`Value`] model they share, the one [`Error`] type, and
//! one module per engine kind.
//!
//! ```
//! use omnigate_drivers::memory::{MemoryConfig, MemoryDriver};
//! use omnigate_drivers::{Dialect, Statement, StorageDriverExt, Value};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> omnigate_drivers::Result<()> {
//! let cache = MemoryDriver::new("cache", MemoryConfig::default());
//! cache.run(Dialect::Redis, Statement::new("SET greeting $1").bind("hello")).await?;
//! let value = cache.query_scalar(Dialect::Redis, Statement::new("GET greeting")).await?;
//! assert_eq!(value, Value::from("hello"));
//! # Ok(())
//! # }
//! ```
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod cypher;
mod date;
pub mod deadline;
pub mod decision;
mod driver;
mod engine;
mod error;
pub mod falkordb;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod glob;
mod kind;
mod limits;
pub mod memory;
pub mod neo4j;
mod nesting;
mod options;
pub mod pool;
pub mod postgres;
pub mod redis;
pub mod redis_commands;
pub mod redis_syntax;
mod redis_types;
pub mod reserved;
mod resp;
mod result;
mod rows;
mod secret;
pub mod sql;
pub mod sqlite;
mod statement;
mod tls;
mod transaction;
pub mod ts;
mod value;
pub mod victoria;
mod wire_rows;

#[cfg(feature = "testing")]
pub mod conformance;

pub use date::Date;
pub use decision::DecisionMarkers;
pub use driver::{StorageDriver, StorageDriverExt};
pub use engine::{
    ColumnInfo, DescribeOptions, EngineDescriptor, Health, PoolStats, SchemaEpoch, SchemaObject,
};
pub use error::{BoxError, EngineError, Error, Result, rounded};
pub use kind::EngineKind;
pub use limits::{ResultLimits, row_size};
pub use options::{Cells, DEFAULT_BATCH_SIZE, ExecuteOptions};
pub use pool::PoolSettings;
pub use result::{Column, QUEUED, ResultSet, RowStream, StatementShape};
pub use rows::{Row, Rows};
pub use secret::Secret;
pub use statement::{Dialect, Statement};
pub use transaction::{
    BeginOptions, DriverTransaction, MARKER_GRACE, Participation, Redo, Undecided, marker_key,
};
pub use value::{Interval, MAX_DEPTH, Node, Path, Relationship, Text, Timestamp, Value};
pub use wire_rows::{WireRows, WireWriter};
