//! The Neo4j engine's settings, as the gateway's config file spells them
//! (`[engines.NAME] kind = "neo4j"`).

use std::time::Duration;

use serde::Deserialize;

use crate::Secret;
use crate::pool::{PoolKey, PoolSettings, PooledConfig, pooled_config};

/// Configuration of a Neo4j engine. Its `Debug` hides the password.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields, default)]
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
    /// The pool of each database in use: `max_connections`,
    /// `connect_timeout`, `backoff_base` and `backoff_max`, written as keys
    /// of the section (see [`PoolSettings`]). neo4rs's pool takes no
    /// acquire timeout (a call's wait for a connection is bounded by its
    /// deadline), so the section refuses `acquire_timeout` and
    /// `pool.acquire_timeout` is not read.
    #[serde(skip)]
    pub pool: PoolSettings,
    /// Rows fetched per round trip.
    pub fetch_size: usize,
}

impl Default for Neo4jConfig {
    fn default() -> Self {
        Neo4jConfig {
            url: "bolt://127.0.0.1:7687".into(),
            user: "neo4j".into(),
            password: None,
            database: None,
            databases: Vec::new(),
            pool: PoolSettings {
                max_connections: 16,
                acquire_timeout: Duration::from_secs(5),
                connect_timeout: Duration::from_secs(5),
                backoff_base: Duration::from_millis(100),
                backoff_max: Duration::from_secs(5),
            },
            fetch_size: 1000,
        }
    }
}

pooled_config!(
    Neo4jConfig,
    &[
        PoolKey::MaxConnections,
        PoolKey::ConnectTimeout,
        PoolKey::BackoffBase,
        PoolKey::BackoffMax,
    ]
);

impl Neo4jConfig {
    /// What is wrong with these settings, as `.key: why`.
    pub fn validate(&self) -> Result<(), String> {
        self.pool.validate(Self::POOL_KEYS)?;
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
