//! Connection settings of a server that speaks the Redis protocol (the
//! `redis` engine, and FalkorDB's connection).

use std::time::Duration;

/// The protocol spoken to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// RESP2: replies as Redis has always sent them (HGETALL as a flat list).
    #[default]
    Resp2,
    /// RESP3: typed replies (maps, sets, doubles, booleans, big numbers).
    Resp3,
}

/// Configuration of a Redis engine. Its `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://host:port`, `rediss://host:port` (TLS) or `unix:///path`.
    pub url: String,
    /// The database index; the gateway never lets a statement change it.
    pub database: i64,
    /// An ACL user name.
    pub username: Option<String>,
    /// The password (e.g. from an environment override).
    pub password: Option<String>,
    /// Connections in the pool at most.
    pub max_connections: u32,
    /// Connections opened at startup and kept ready.
    pub min_idle: u32,
    /// How long a call waits for a free connection.
    pub acquire_timeout: Duration,
    /// How long opening a connection may take.
    pub connect_timeout: Duration,
    /// After a failed connect, the first wait before connecting again
    /// (calls fail fast meanwhile); doubles up to `backoff_max`.
    pub backoff_base: Duration,
    /// The longest wait between connect attempts.
    pub backoff_max: Duration,
    /// RESP2 or RESP3.
    pub protocol: Protocol,
    /// With a `rediss://` URL: a PEM file of CAs to trust (default: the
    /// system's trust store).
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379".into(),
            database: 0,
            username: None,
            password: None,
            max_connections: 8,
            min_idle: 1,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            protocol: Protocol::Resp2,
            ca_file: None,
        }
    }
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}
