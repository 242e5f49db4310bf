//! The engines' configuration, by kind.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::graph::{FalkorEngineConfig, Neo4jEngineConfig};
use super::timeseries::VictoriaEngineConfig;
use crate::codec::{Binding, Codec};

/// One engine, by kind.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum EngineConfig {
    /// The in-process Redis and time-series store (`redis` and `ts` dialects).
    Memory(MemoryEngineConfig),
    /// SQLite (`sql` dialect).
    Sqlite(SqliteEngineConfig),
    /// PostgreSQL (`sql` dialect).
    Postgres(PostgresEngineConfig),
    /// Redis (`redis` dialect).
    Redis(RedisEngineConfig),
    /// FalkorDB (`cypher` dialect).
    Falkordb(FalkorEngineConfig),
    /// Neo4j (`cypher` dialect).
    Neo4j(Neo4jEngineConfig),
    /// VictoriaMetrics (`ts` dialect).
    Victoriametrics(VictoriaEngineConfig),
}

/// A `redis` engine.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisEngineConfig {
    /// `redis://host:port` or `unix:///path/to/socket`.
    pub url: String,
    /// The database index (a statement cannot change it).
    pub database: i64,
    /// An ACL user name.
    pub username: Option<String>,
    /// The password; set it with `OMNIGATE__ENGINES__<NAME>__PASSWORD`.
    pub password: Option<Secret>,
    /// Pooled connections at most.
    pub max_connections: u32,
    /// Connections opened at startup and kept ready.
    pub min_idle: u32,
    /// How long a call waits for a free connection.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// How long opening a connection may take.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// The longest wait between connect attempts while the server is down.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Key patterns whose structured values go through a codec.
    pub bindings: Vec<Binding>,
    /// `resp2` (replies as Redis has always sent them) or `resp3` (typed
    /// replies: maps, sets, doubles, booleans).
    pub protocol: RedisProtocolConfig,
    /// With a `rediss://` url: a PEM file of CAs to trust.
    pub ca_file: Option<PathBuf>,
}

/// The protocol spoken to Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisProtocolConfig {
    /// RESP2.
    #[default]
    Resp2,
    /// RESP3.
    Resp3,
}

impl Default for RedisEngineConfig {
    fn default() -> Self {
        let driver = omnigate_drivers::redis::RedisConfig::default();
        RedisEngineConfig {
            url: driver.url,
            database: driver.database,
            username: None,
            password: None,
            max_connections: driver.max_connections,
            min_idle: driver.min_idle,
            acquire_timeout: driver.acquire_timeout,
            connect_timeout: driver.connect_timeout,
            backoff_max: driver.backoff_max,
            bindings: Vec::new(),
            protocol: RedisProtocolConfig::Resp2,
            ca_file: None,
        }
    }
}

impl RedisEngineConfig {
    /// The driver's configuration.
    pub fn to_driver(&self) -> omnigate_drivers::redis::RedisConfig {
        omnigate_drivers::redis::RedisConfig {
            url: self.url.clone(),
            database: self.database,
            username: self.username.clone(),
            password: self.password.as_ref().map(|p| p.0.clone()),
            max_connections: self.max_connections,
            min_idle: self.min_idle,
            acquire_timeout: self.acquire_timeout,
            connect_timeout: self.connect_timeout,
            backoff_max: self.backoff_max,
            protocol: match self.protocol {
                RedisProtocolConfig::Resp2 => omnigate_drivers::redis::Protocol::Resp2,
                RedisProtocolConfig::Resp3 => omnigate_drivers::redis::Protocol::Resp3,
            },
            ca_file: self.ca_file.clone(),
            ..omnigate_drivers::redis::RedisConfig::default()
        }
    }

    fn validate(&self) -> Result<(), String> {
        if self.max_connections == 0 || self.min_idle > self.max_connections {
            return Err(".max_connections: must be at least 1 and at least min_idle".into());
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

impl EngineConfig {
    /// The codec bindings of an engine that stores bytes.
    pub fn bindings(&self) -> &[Binding] {
        match self {
            EngineConfig::Memory(memory) => &memory.bindings,
            EngineConfig::Redis(redis) => &redis.bindings,
            _ => &[],
        }
    }

    /// The codec of nested graph properties, for engines of the cypher dialect.
    pub fn property_codec(&self) -> Option<Codec> {
        match self {
            EngineConfig::Falkordb(falkor) => Some(falkor.properties.codec()),
            EngineConfig::Neo4j(neo4j) => Some(neo4j.properties.codec()),
            _ => None,
        }
    }

    /// What is wrong with this engine's settings, as `.key: why`.
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.bindings().iter().any(|b| b.pattern.is_empty()) {
            return Err(".bindings: a binding needs a pattern such as \"session:*\"".into());
        }
        match self {
            EngineConfig::Memory(_) => Ok(()),
            EngineConfig::Sqlite(sqlite) if sqlite.max_connections == 0 => {
                Err(".max_connections: must be at least 1".into())
            }
            EngineConfig::Sqlite(sqlite) if sqlite.path.is_empty() => {
                Err(".path: give a file path or \":memory:\"".into())
            }
            EngineConfig::Sqlite(_) => Ok(()),
            EngineConfig::Postgres(pg) => pg.validate(),
            EngineConfig::Redis(redis) => redis.validate(),
            EngineConfig::Falkordb(falkor) => falkor.validate(),
            EngineConfig::Neo4j(neo4j) => neo4j.validate(),
            EngineConfig::Victoriametrics(vm) => vm.validate(),
        }
    }
}

/// How pooled PostgreSQL connections are checked before reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecyclingConfig {
    /// Check that the connection is open (no round trip).
    #[default]
    Fast,
    /// Also run an empty query.
    Verified,
    /// Verified, and reset session state.
    Clean,
}

/// A `postgres` engine.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresEngineConfig {
    /// `postgres://user@host:port/db`; keep the password out of it. Or
    /// leave it out and give `host`, `port`, `user`, `database`.
    pub url: Option<String>,
    /// The server's host name, address, or Unix socket directory.
    pub host: Option<String>,
    /// The server's port.
    pub port: Option<u16>,
    /// The user to connect as.
    pub user: Option<String>,
    /// The database.
    pub database: Option<String>,
    /// The password; set it with `OMNIGATE__ENGINES__<NAME>__PASSWORD`.
    pub password: Option<Secret>,
    /// Pooled connections at most.
    pub max_connections: usize,
    /// Connections opened at startup and kept ready.
    pub min_idle: usize,
    /// How long a call waits for a free connection.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// How long opening a connection may take.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long checking a pooled connection may take.
    #[serde(with = "humantime_serde")]
    pub recycle_timeout: Duration,
    /// Connections older than this are replaced.
    #[serde(with = "humantime_serde")]
    pub max_lifetime: Option<Duration>,
    /// How connections are checked before reuse.
    pub recycling: RecyclingConfig,
    /// The longest wait between connect attempts while the server is down.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// TLS to the server: `disable` or `require`.
    pub tls: TlsModeConfig,
    /// With `tls = "require"`: a PEM file of CAs to trust (default: the web PKI roots).
    pub ca_file: Option<PathBuf>,
}

/// Whether to use TLS to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsModeConfig {
    /// Plain TCP.
    #[default]
    Disable,
    /// TLS, with the server's certificate verified.
    Require,
}

impl Default for PostgresEngineConfig {
    fn default() -> Self {
        let driver = omnigate_drivers::postgres::PostgresConfig::default();
        PostgresEngineConfig {
            url: None,
            host: None,
            port: None,
            user: None,
            database: None,
            password: None,
            max_connections: driver.max_connections,
            min_idle: driver.min_idle,
            acquire_timeout: driver.acquire_timeout,
            connect_timeout: driver.connect_timeout,
            recycle_timeout: driver.recycle_timeout,
            max_lifetime: driver.max_lifetime,
            recycling: RecyclingConfig::Fast,
            backoff_max: driver.backoff_max,
            tls: TlsModeConfig::Disable,
            ca_file: None,
        }
    }
}

impl PostgresEngineConfig {
    /// The driver's configuration.
    pub fn to_driver(&self) -> omnigate_drivers::postgres::PostgresConfig {
        use omnigate_drivers::postgres::{PostgresConfig, Recycling, Tls};
        PostgresConfig {
            url: self.url(),
            password: self.password.as_ref().map(|p| p.0.clone()),
            max_connections: self.max_connections,
            min_idle: self.min_idle,
            acquire_timeout: self.acquire_timeout,
            connect_timeout: self.connect_timeout,
            recycle_timeout: self.recycle_timeout,
            max_lifetime: self.max_lifetime,
            recycling: match self.recycling {
                RecyclingConfig::Fast => Recycling::Fast,
                RecyclingConfig::Verified => Recycling::Verified,
                RecyclingConfig::Clean => Recycling::Clean,
            },
            backoff_max: self.backoff_max,
            tls: match self.tls {
                TlsModeConfig::Disable => Tls::Disable,
                TlsModeConfig::Require => Tls::Require {
                    ca_file: self.ca_file.clone(),
                },
            },
            ..PostgresConfig::default()
        }
    }

    /// The connection URL: `url`, or one made of the fields.
    pub fn url(&self) -> String {
        if let Some(url) = &self.url {
            return url.clone();
        }
        let host = self.host.as_deref().unwrap_or("127.0.0.1");
        // A socket directory goes percent-encoded in the host part.
        let host = if host.starts_with('/') {
            host.replace('/', "%2F")
        } else {
            host.to_owned()
        };
        format!(
            "postgres://{}@{host}:{}/{}",
            self.user.as_deref().unwrap_or("postgres"),
            self.port.unwrap_or(5432),
            self.database.as_deref().unwrap_or("postgres")
        )
    }

    fn validate(&self) -> Result<(), String> {
        if self.max_connections == 0 || self.min_idle > self.max_connections {
            return Err(".max_connections: must be at least 1 and at least min_idle".into());
        }
        if self.url.is_some() && self.has_fields() {
            return Err(": give url, or host/port/user/database, not both".into());
        }
        let url = self.url();
        if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(".url: write postgres://user@host:port/database".into());
        }
        if self.ca_file.is_some() && self.tls == TlsModeConfig::Disable {
            return Err(".ca_file: set tls = \"require\" to use it".into());
        }
        Ok(())
    }

    fn has_fields(&self) -> bool {
        self.host.is_some() || self.port.is_some() || self.user.is_some() || self.database.is_some()
    }
}

/// A `memory` engine.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryEngineConfig {
    /// How often expired keys are evicted in the background.
    #[serde(with = "humantime_serde")]
    pub eviction_interval: Duration,
    /// Key patterns whose structured values go through a codec.
    pub bindings: Vec<Binding>,
}

impl Default for MemoryEngineConfig {
    fn default() -> Self {
        MemoryEngineConfig {
            eviction_interval: Duration::from_millis(100),
            bindings: Vec::new(),
        }
    }
}

/// A `sqlite` engine.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqliteEngineConfig {
    /// The database file, or `":memory:"` for a private in-memory database.
    pub path: String,
    /// Pooled connections at most.
    pub max_connections: usize,
    /// How long a call waits for a free connection.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// How long a statement waits for another connection's lock.
    #[serde(with = "humantime_serde")]
    pub busy_timeout: Duration,
}

impl Default for SqliteEngineConfig {
    fn default() -> Self {
        SqliteEngineConfig {
            path: ":memory:".into(),
            max_connections: 4,
            acquire_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// A secret from the configuration; its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl SqliteEngineConfig {
    /// The driver's configuration.
    pub fn to_driver(&self) -> omnigate_drivers::sqlite::SqliteConfig {
        use omnigate_drivers::sqlite::{SqliteConfig, SqliteLocation};
        SqliteConfig {
            location: if self.path == ":memory:" {
                SqliteLocation::Memory
            } else {
                SqliteLocation::File(PathBuf::from(&self.path))
            },
            max_connections: self.max_connections,
            acquire_timeout: self.acquire_timeout,
            busy_timeout: self.busy_timeout,
        }
    }
}
