//! Configuration of the `sqlite` engine.

use std::time::Duration;

use serde::Deserialize;

use crate::pool::{PoolKey, PoolSettings, PooledConfig, pooled_config};

/// Where the SQLite database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteLocation {
    /// A private scratch database shared by the engine's pooled
    /// connections; gone when the engine stops. It lives in a file of a
    /// temporary directory, in WAL mode, so that readers see the last
    /// committed state while a transaction writes (SQLite's in-memory
    /// databases lock readers out of a database a writer holds).
    Memory,
    /// A database file (created when missing).
    File(std::path::PathBuf),
}

/// Configuration of a SQLite engine, as the gateway's config file spells
/// it (`[engines.NAME] kind = "sqlite"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields, default)]
pub struct SqliteConfig {
    /// The database file, or `":memory:"` for a private in-memory database.
    pub path: String,
    /// The pool: `max_connections` and `acquire_timeout`, written as keys
    /// of the section (see [`PoolSettings`]). SQLite opens a file: there is
    /// no server to connect to or to back off from, so the section refuses
    /// `connect_timeout`, `backoff_base` and `backoff_max`, and the engine
    /// does not read them here (opening a connection is bounded by
    /// `acquire_timeout`; a failed open backs off from 100 ms to 1 s).
    #[serde(skip)]
    pub pool: PoolSettings,
    /// How long a statement waits for a lock held by another connection.
    #[serde(with = "humantime_serde")]
    pub busy_timeout: Duration,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            path: MEMORY.into(),
            pool: PoolSettings {
                max_connections: 4,
                acquire_timeout: Duration::from_secs(5),
                ..PoolSettings::default()
            },
            busy_timeout: Duration::from_secs(5),
        }
    }
}

pooled_config!(
    SqliteConfig,
    &[PoolKey::MaxConnections, PoolKey::AcquireTimeout]
);

/// The `path` of a private in-memory database.
const MEMORY: &str = ":memory:";

impl SqliteConfig {
    /// A database file at `path`.
    pub fn file(path: impl Into<std::path::PathBuf>) -> Self {
        SqliteConfig {
            path: path.into().to_string_lossy().into_owned(),
            ..SqliteConfig::default()
        }
    }

    /// Where the database lives.
    pub fn location(&self) -> SqliteLocation {
        if self.path == MEMORY {
            SqliteLocation::Memory
        } else {
            SqliteLocation::File(self.path.clone().into())
        }
    }

    /// What is wrong with these settings, as `.key: why`.
    pub fn validate(&self) -> Result<(), String> {
        self.pool.validate(Self::POOL_KEYS)?;
        if self.path.is_empty() {
            return Err(".path: give a file path or \":memory:\"".into());
        }
        Ok(())
    }

    /// The file SQLite opens: the configured one, or for `":memory:"` a
    /// file in `scratch`, a temporary directory the engine holds.
    pub(crate) fn open_name(&self, scratch: Option<&std::path::Path>) -> std::path::PathBuf {
        match (self.location(), scratch) {
            (SqliteLocation::File(path), _) => path,
            (SqliteLocation::Memory, Some(dir)) => dir.join("scratch.sqlite3"),
            (SqliteLocation::Memory, None) => MEMORY.into(),
        }
    }
}
