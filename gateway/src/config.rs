//! The gateway's configuration: a TOML file, overridden by `OMNIGATE__*`
//! environment variables, read into typed structs. Unknown keys are errors.
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:50051"
//! default_timeout = "30s"
//!
//! [engines.cache]
//! kind = "memory"
//!
//! [engines.main]
//! kind = "sqlite"
//! path = "data/main.sqlite3"
//! ```
//!
//! Environment overrides name a key path with `__`:
//! `OMNIGATE__SERVER__LISTEN=0.0.0.0:50051`,
//! `OMNIGATE__ENGINES__MAIN__MAX_CONNECTIONS=8`. A value that reads as a TOML
//! integer, float or bool is taken as one; anything else is a string (quote
//! it, `'"123"'`, to force a string). This is how secrets stay out of files.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::codec::Binding;
use crate::error::ConfigError;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The gRPC server.
    #[serde(default)]
    pub server: ServerConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// The metadata cache.
    #[serde(default)]
    pub cache: CacheConfig,
    /// The engines, by name. Empty: the embedded default (`cache`: memory,
    /// `main`: in-memory SQLite).
    #[serde(default)]
    pub engines: BTreeMap<String, EngineConfig>,
}

/// The gRPC server's settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The largest request message accepted, in bytes.
    pub max_request_bytes: usize,
    /// The largest response message sent, in bytes; larger results fail
    /// with RESOURCE_EXHAUSTED and a hint to use ExecuteStream.
    pub max_response_bytes: usize,
    /// The statement timeout when neither the request nor its deadline sets one.
    #[serde(with = "humantime_serde")]
    pub default_timeout: Duration,
    /// Rows an Execute may return when the request does not say.
    pub default_max_rows: u64,
    /// Rows per ExecuteStream message when the request does not say.
    pub stream_batch_rows: usize,
    /// How long in-flight calls may run on after SIGINT/SIGTERM.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// How often engine health is checked for the gRPC health service.
    #[serde(with = "humantime_serde")]
    pub health_interval: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            max_request_bytes: 4 << 20,
            max_response_bytes: 16 << 20,
            default_timeout: Duration::from_secs(30),
            default_max_rows: 10_000,
            stream_batch_rows: 1_000,
            shutdown_grace: Duration::from_secs(10),
            health_interval: Duration::from_secs(5),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// The output format.
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `"info"` or `"omnigate=debug"`; `RUST_LOG` wins.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

/// Metadata cache settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// How long a described schema stays cached (DDL through the gateway
    /// drops it sooner).
    #[serde(with = "humantime_serde")]
    pub schema_ttl: Duration,
    /// Entries kept at most.
    pub max_entries: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            schema_ttl: Duration::from_secs(60),
            max_entries: 10_000,
        }
    }
}

/// One engine, by kind.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum EngineConfig {
    /// The in-process Redis (`redis` dialect).
    Memory(MemoryEngineConfig),
    /// SQLite (`sql` dialect).
    Sqlite(SqliteEngineConfig),
    /// PostgreSQL (`sql` dialect).
    Postgres(PostgresEngineConfig),
    /// Redis (`redis` dialect).
    Redis(RedisEngineConfig),
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
            EngineConfig::Sqlite(_) | EngineConfig::Postgres(_) => &[],
        }
    }

    /// What is wrong with this engine's settings, as `.key: why`.
    fn validate(&self) -> Result<(), String> {
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

impl Default for Config {
    /// The embedded default: `cache` (memory, `redis`) and `main`
    /// (in-memory SQLite, `sql`).
    fn default() -> Self {
        Config {
            server: ServerConfig::default(),
            log: LogConfig::default(),
            cache: CacheConfig::default(),
            engines: BTreeMap::new(),
        }
        .with_default_engines()
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

/// Where configuration reads environment variables from; tests pass a map.
pub trait Env {
    /// Every variable, as (name, value).
    fn vars(&self) -> Vec<(String, String)>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn vars(&self) -> Vec<(String, String)> {
        std::env::vars().collect()
    }
}

impl Env for BTreeMap<String, String> {
    fn vars(&self) -> Vec<(String, String)> {
        self.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

const ENV_PREFIX: &str = "OMNIGATE__";

impl Config {
    /// Reads a config file, applies the environment's overrides, and checks it.
    pub fn load(path: &Path, env: &dyn Env) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, env).map_err(|e| e.in_file(path))
    }

    /// The embedded default with the environment's overrides.
    pub fn from_env(env: &dyn Env) -> Result<Config, ConfigError> {
        Self::parse("", env)
    }

    /// Parses TOML text, applies the environment's overrides, and checks it.
    pub fn parse(text: &str, env: &dyn Env) -> Result<Config, ConfigError> {
        let mut table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Invalid {
                    file: None,
                    message: e.to_string(),
                })?;
        apply_env(&mut table, env)?;
        let config: Config = Config::deserialize(table).map_err(|e| {
            // Deserializing the text again gives the line and column when
            // the file itself is at fault; otherwise an override is.
            let message = match toml::from_str::<Config>(text) {
                Err(in_text) => in_text.to_string(),
                Ok(_) => format!(
                    "{} (set by an OMNIGATE__ environment variable)",
                    e.to_string().trim_end()
                ),
            };
            ConfigError::Invalid {
                file: None,
                message,
            }
        })?;
        let config = config.with_default_engines();
        config.validate()?;
        Ok(config)
    }

    fn with_default_engines(mut self) -> Self {
        if self.engines.is_empty() {
            self.engines.insert(
                "cache".into(),
                EngineConfig::Memory(MemoryEngineConfig::default()),
            );
            self.engines.insert(
                "main".into(),
                EngineConfig::Sqlite(SqliteEngineConfig::default()),
            );
        }
        self
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| {
            Err(ConfigError::Invalid {
                file: None,
                message,
            })
        };
        for name in self.engines.keys() {
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                return invalid(format!(
                    "engines.{name}: an engine name may hold only letters, digits, '-' and '_'"
                ));
            }
        }
        for (name, engine) in &self.engines {
            if let Err(problem) = engine.validate() {
                return invalid(format!("engines.{name}{problem}"));
            }
        }
        let server = &self.server;
        if server.stream_batch_rows == 0 || server.default_max_rows == 0 {
            return invalid(
                "server.stream_batch_rows and server.default_max_rows must be at least 1".into(),
            );
        }
        if server.max_request_bytes < 1024 || server.max_response_bytes < 1024 {
            return invalid(
                "server.max_request_bytes and server.max_response_bytes must be at least 1024"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Applies `OMNIGATE__A__B=value` overrides onto the parsed table.
fn apply_env(table: &mut toml::Table, env: &dyn Env) -> Result<(), ConfigError> {
    let mut overrides: Vec<(String, String)> = env
        .vars()
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    overrides.sort();
    for (name, raw) in overrides {
        let path: Vec<&str> = name[ENV_PREFIX.len()..].split("__").collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(ConfigError::Invalid {
                file: None,
                message: format!("environment variable {name}: write OMNIGATE__SECTION__KEY"),
            });
        }
        let mut node = &mut *table;
        for (depth, segment) in path.iter().enumerate() {
            let key = existing_key(node, segment);
            if depth + 1 == path.len() {
                node.insert(key, scalar(&raw));
                break;
            }
            let child = node
                .entry(key)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            node = child.as_table_mut().ok_or_else(|| ConfigError::Invalid {
                file: None,
                message: format!("environment variable {name}: {segment} is not a table"),
            })?;
        }
    }
    Ok(())
}

/// The key of `table` that an environment segment names (case-insensitive,
/// `_` also matching `-`), or the segment in lower case.
fn existing_key(table: &toml::Table, segment: &str) -> String {
    let wanted = segment.to_ascii_lowercase();
    table
        .keys()
        .find(|k| k.to_ascii_lowercase().replace('-', "_") == wanted)
        .cloned()
        .unwrap_or(wanted)
}

fn scalar(raw: &str) -> toml::Value {
    let parsed = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"));
    match parsed {
        Some(
            v @ (toml::Value::Integer(_)
            | toml::Value::Float(_)
            | toml::Value::Boolean(_)
            | toml::Value::String(_)),
        ) => v,
        _ => toml::Value::String(raw.to_owned()),
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

#[cfg(test)]
mod tests;
