//! Connection settings of a server that speaks the Redis protocol: the
//! `redis` engine's configuration, and FalkorDB's connection.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::Secret;
use crate::pool::{PoolKey, PoolSettings, PooledConfig, pooled_config};

/// The protocol spoken to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// RESP2: replies as Redis has always sent them.
    #[default]
    Resp2,
    /// RESP3: typed replies (maps, sets, doubles, booleans).
    Resp3,
}

/// Configuration of a `redis` engine. Its `Debug` hides the password.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://host:port`, `rediss://host:port` (TLS) or
    /// `unix:///path/to/socket`.
    pub url: String,
    /// The database index (a statement cannot change it).
    pub database: i64,
    /// An ACL user name.
    pub username: Option<String>,
    /// The password; set it with `OMNIGATE__ENGINES__<NAME>__PASSWORD`.
    pub password: Option<Secret>,
    /// The pool: `max_connections`, `acquire_timeout`, `connect_timeout`,
    /// `backoff_base` and `backoff_max`, written as keys of the section
    /// (see [`PoolSettings`]).
    #[serde(skip)]
    pub pool: PoolSettings,
    /// Connections opened at startup and kept ready (at most
    /// `max_connections`).
    pub min_idle: usize,
    /// `resp2` or `resp3`.
    pub protocol: Protocol,
    /// With a `rediss://` url: a PEM file of CAs to trust.
    pub ca_file: Option<PathBuf>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379".into(),
            database: 0,
            username: None,
            password: None,
            pool: PoolSettings {
                max_connections: 8,
                acquire_timeout: Duration::from_secs(5),
                connect_timeout: Duration::from_secs(5),
                backoff_base: Duration::from_millis(100),
                backoff_max: Duration::from_secs(5),
            },
            min_idle: 1,
            protocol: Protocol::Resp2,
            ca_file: None,
        }
    }
}

pooled_config!(RedisConfig, PoolKey::ALL);

impl RedisConfig {
    /// What is wrong with these settings, as `.key: why`.
    pub fn validate(&self) -> Result<(), String> {
        self.pool.validate(Self::POOL_KEYS)?;
        if self.min_idle > self.pool.max_connections {
            return Err(".max_connections: must be at least min_idle".into());
        }
        if !["redis://", "rediss://", "unix://"]
            .iter()
            .any(|p| self.url.starts_with(p))
        {
            return Err(
                ".url: write redis://host:port, rediss://host:port (TLS) or unix:///path".into(),
            );
        }
        if self.ca_file.is_some() && !self.url.starts_with("rediss://") {
            return Err(".ca_file: it needs a rediss:// url".into());
        }
        if self.database < 0 {
            return Err(".database: must be 0 or more".into());
        }
        Ok(())
    }
}
