//! The Neo4j engine's settings, as the gateway's config file spells them
//! (`[engines.NAME] kind = "neo4j"`).

use std::time::Duration;

use serde::Deserialize;

use crate::Secret;

/// Configuration of a Neo4j engine. Its `Debug` hides the password.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Neo4jConfig {
    /// `bolt://host:7687` or `neo4j://host:7687` (`+s` for TLS).
    pub url: String,
    /// The user to connect as.
    pub user: String,
    /// The password; set it with `OMNIGATE__ENGINES__<NAME>__PASSWORD`.
    pub password: Option<Secret>,
    /// The database statements run in (default: the server's default).
    pub database: Option<String>,
    /// Other databases a request may choose with its `database` option, as
    /// globs; empty: only `database`.
    pub databases: Vec<String>,
    /// Connections per database at most.
    pub max_connections: usize,
    /// Rows fetched per round trip.
    pub fetch_size: usize,
    /// How long opening a connection may take.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// After a failed connect, the first wait before connecting again.
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    /// The longest wait between connect attempts while the server is down.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
}

impl Default for Neo4jConfig {
    fn default() -> Self {
        Neo4jConfig {
            url: "bolt://127.0.0.1:7687".into(),
            user: "neo4j".into(),
            password: None,
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

impl Neo4jConfig {
    /// What is wrong with these settings, as `.key: why`.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_connections == 0 {
            return Err(".max_connections: must be at least 1".into());
        }
        let schemes = [
            "bolt://",
            "bolt+s://",
            "bolt+ssc://",
            "neo4j://",
            "neo4j+s://",
            "neo4j+ssc://",
        ];
        if !schemes.iter().any(|p| self.url.starts_with(p)) {
            return Err(".url: write bolt://host:7687 or neo4j://host:7687 (+s for TLS)".into());
        }
        Ok(())
    }
}
