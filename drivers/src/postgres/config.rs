//! Configuration of the `postgres` engine.

use std::time::Duration;

/// How a pooled connection is checked before it is handed out again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Recycling {
    /// Only check that the connection is open (no round trip).
    #[default]
    Fast,
    /// Also run an empty query, so a connection the server dropped is
    /// replaced before a caller sees it.
    Verified,
    /// Verified, and reset session state (`DISCARD ALL`-like) first.
    Clean,
}

/// TLS to the server (rustls).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Tls {
    /// Plain TCP.
    #[default]
    Disable,
    /// TLS required; the server's certificate is checked against `ca_file`
    /// (PEM) when given, else against the web PKI roots.
    Require {
        /// A PEM file of trusted CA certificates.
        ca_file: Option<std::path::PathBuf>,
    },
}

/// Configuration of a PostgreSQL engine. Its `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// `postgres://user@host:port/db?options`.
    pub url: String,
    /// The password, kept out of the URL (e.g. from an environment override).
    pub password: Option<String>,
    /// Connections in the pool at most.
    pub max_connections: usize,
    /// Connections opened at startup and kept ready.
    pub min_idle: usize,
    /// How long a call waits for a free connection.
    pub acquire_timeout: Duration,
    /// How long opening a connection may take.
    pub connect_timeout: Duration,
    /// How long checking a pooled connection may take.
    pub recycle_timeout: Duration,
    /// Connections older than this are replaced when returned to use.
    pub max_lifetime: Option<Duration>,
    /// How connections are checked before reuse.
    pub recycling: Recycling,
    /// After a failed connect, the first wait before connecting again
    /// (calls fail fast meanwhile); doubles up to `backoff_max`.
    pub backoff_base: Duration,
    /// The longest wait between connect attempts.
    pub backoff_max: Duration,
    /// Statements whose parameter types are remembered across connections.
    pub statement_cache_capacity: u64,
    /// TLS to the server.
    pub tls: Tls,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            url: "postgres://postgres@127.0.0.1:5432/postgres".into(),
            password: None,
            max_connections: 16,
            min_idle: 1,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            recycle_timeout: Duration::from_secs(5),
            max_lifetime: Some(Duration::from_secs(30 * 60)),
            recycling: Recycling::Fast,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            statement_cache_capacity: 10_000,
            tls: Tls::Disable,
        }
    }
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("max_connections", &self.max_connections)
            .field("min_idle", &self.min_idle)
            .field("recycling", &self.recycling)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}
