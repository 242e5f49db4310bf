//! The FalkorDB engine's settings, as the gateway's config file spells
//! them (`[engines.NAME] kind = "falkordb"`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::Secret;
use crate::pool::{PoolKey, PoolSettings, pooled_config};
use crate::resp::{Protocol, RedisConfig};

/// Configuration of a FalkorDB engine. Its `Debug` hides the password.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields, default)]
pub struct FalkorConfig {
    /// `redis://host:port` (FalkorDB speaks the Redis protocol),
    /// `rediss://` for TLS, or `unix:///path`.
    pub url: String,
    /// An ACL user name.
    pub username: Option<String>,
    /// The password; set it with `OMNIGATE__ENGINES__<NAME>__PASSWORD`.
    pub password: Option<Secret>,
    /// The graph (a FalkorDB key) statements run in.
    pub graph: String,
    /// Other graphs a request may choose with its `database` option, as
    /// globs (`tenant_*`); empty: only `graph`.
    pub databases: Vec<String>,
    /// The pool: `max_connections`, `acquire_timeout`, `connect_timeout`,
    /// `backoff_base` and `backoff_max`, written as keys of the section
    /// (see [`PoolSettings`]); the defaults are the `redis` kind's.
    #[serde(skip)]
    pub pool: PoolSettings,
    /// Connections opened at startup and kept ready (at most
    /// `max_connections`).
    pub min_idle: usize,
    /// How long the label / type / property-key tables are trusted.
    #[serde(with = "humantime_serde")]
    pub schema_ttl: Duration,
    /// With a `rediss://` url: a PEM file of CAs to trust.
    pub ca_file: Option<PathBuf>,
}

impl Default for FalkorConfig {
    fn default() -> Self {
        let connection = RedisConfig::default();
        FalkorConfig {
            url: connection.url,
            username: None,
            password: None,
            graph: "omnigate".into(),
            databases: Vec::new(),
            pool: connection.pool,
            min_idle: connection.min_idle,
            schema_ttl: Duration::from_secs(300),
            ca_file: None,
        }
    }
}

pooled_config!(FalkorConfig, PoolKey::ALL);

impl FalkorConfig {
    /// The Redis-protocol connection these settings describe (RESP2,
    /// database 0: what FalkorDB's replies are read as).
    pub fn connection(&self) -> RedisConfig {
        RedisConfig {
            url: self.url.clone(),
            database: 0,
            username: self.username.clone(),
            password: self.password.clone(),
            pool: self.pool,
            min_idle: self.min_idle,
            protocol: Protocol::Resp2,
            ca_file: self.ca_file.clone(),
        }
    }

    /// What is wrong with these settings, as `.key: why`.
    pub fn validate(&self) -> Result<(), String> {
        self.connection().validate()?;
        if self.graph.is_empty() {
            return Err(".graph: name the graph statements run in".into());
        }
        Ok(())
    }
}
