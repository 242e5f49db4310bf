//! Configuration of the `sqlite` engine.

use std::time::Duration;

/// Where the SQLite database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteLocation {
    /// A private in-memory database shared by the engine's pooled
    /// connections; gone when the engine stops.
    Memory,
    /// A database file (created when missing).
    File(std::path::PathBuf),
}

/// Configuration of a SQLite engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteConfig {
    /// Where the database lives.
    pub location: SqliteLocation,
    /// Connections in the pool at most.
    pub max_connections: usize,
    /// How long a call waits for a free connection before failing.
    pub acquire_timeout: Duration,
    /// How long a statement waits for a lock held by another connection.
    pub busy_timeout: Duration,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            location: SqliteLocation::Memory,
            max_connections: 4,
            acquire_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

impl SqliteConfig {
    /// The name SQLite opens: a file path, or a `memdb` URI private to
    /// this engine (so every pooled connection sees the same database).
    pub(crate) fn open_name(&self) -> std::path::PathBuf {
        match &self.location {
            SqliteLocation::File(path) => path.clone(),
            SqliteLocation::Memory => format!("file:/omnigate-{}?vfs=memdb", uuid_like()).into(),
        }
    }
}

/// A name unique within this process and unlikely to repeat across runs.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
