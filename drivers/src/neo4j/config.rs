//! The Neo4j engine's settings.

use std::time::Duration;

/// How to reach Neo4j, and which databases requests may use.
#[derive(Clone)]
pub struct Neo4jConfig {
    /// `bolt://host:7687` (or `neo4j://`, `bolt+s://`, `neo4j+s://`).
    pub url: String,
    /// The user.
    pub user: String,
    /// The password.
    pub password: String,
    /// The database statements run in; `None`: the server's default.
    pub database: Option<String>,
    /// Other databases a request may choose with its `database` option
    /// (globs); empty: only the default.
    pub databases: Vec<String>,
    /// Pooled connections at most (per database).
    pub max_connections: usize,
    /// Rows fetched per round trip.
    pub fetch_size: usize,
    /// How long opening a connection may take.
    pub connect_timeout: Duration,
    /// The first wait between connect attempts while the server is down.
    pub backoff_base: Duration,
    /// The longest wait between connect attempts while the server is down.
    pub backoff_max: Duration,
}

impl Default for Neo4jConfig {
    fn default() -> Self {
        Neo4jConfig {
            url: "bolt://127.0.0.1:7687".into(),
            user: "neo4j".into(),
            password: String::new(),
            database: None,
            databases: Vec::new(),
            max_connections: 16,
            fetch_size: 1000,
            connect_timeout: Duration::from_secs(5),
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        }
    }
}

impl std::fmt::Debug for Neo4jConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Neo4jConfig")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &"***")
            .field("database", &self.database)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}
