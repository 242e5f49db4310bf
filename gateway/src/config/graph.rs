//! The graph engines' configuration (`cypher` dialect).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::engines::Secret;
use crate::codec::{Codec, Format};

fn default_codec() -> Format {
    Format::Msgpack
}

fn default_compress_above() -> usize {
    1024
}

/// How graph properties the engine cannot store natively (nested maps,
/// lists of maps) are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertyCodecConfig {
    /// The codec's format.
    #[serde(default = "default_codec")]
    pub codec: Format,
    /// Payloads over this many bytes are snappy-compressed.
    #[serde(default = "default_compress_above")]
    pub compress_above: usize,
}

impl Default for PropertyCodecConfig {
    fn default() -> Self {
        PropertyCodecConfig {
            codec: default_codec(),
            compress_above: default_compress_above(),
        }
    }
}

impl PropertyCodecConfig {
    /// The codec.
    pub fn codec(&self) -> Codec {
        Codec {
            format: self.codec,
            compress_above: self.compress_above,
        }
    }
}

/// A `falkordb` engine.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FalkorEngineConfig {
    /// `redis://host:port` (FalkorDB speaks the Redis protocol), `rediss://`
    /// for TLS, or `unix:///path`.
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
    /// How long the label / type / property-key tables are trusted.
    #[serde(with = "humantime_serde")]
    pub schema_ttl: Duration,
    /// With a `rediss://` url: a PEM file of CAs to trust.
    pub ca_file: Option<PathBuf>,
    /// Nested property values.
    pub properties: PropertyCodecConfig,
}

impl Default for FalkorEngineConfig {
    fn default() -> Self {
        let driver = omnigate_drivers::falkordb::FalkorConfig::default();
        FalkorEngineConfig {
            url: driver.connection.url,
            username: None,
            password: None,
            graph: driver.graph,
            databases: Vec::new(),
            max_connections: driver.connection.max_connections,
            min_idle: driver.connection.min_idle,
            acquire_timeout: driver.connection.acquire_timeout,
            connect_timeout: driver.connection.connect_timeout,
            backoff_max: driver.connection.backoff_max,
            schema_ttl: driver.schema_ttl,
            ca_file: None,
            properties: PropertyCodecConfig::default(),
        }
    }
}

impl FalkorEngineConfig {
    /// The driver's configuration.
    pub fn to_driver(&self) -> omnigate_drivers::falkordb::FalkorConfig {
        let defaults = omnigate_drivers::falkordb::FalkorConfig::default();
        omnigate_drivers::falkordb::FalkorConfig {
            connection: omnigate_drivers::redis::RedisConfig {
                url: self.url.clone(),
                username: self.username.clone(),
                password: self.password.as_ref().map(|p| p.0.clone()),
                max_connections: self.max_connections,
                min_idle: self.min_idle,
                acquire_timeout: self.acquire_timeout,
                connect_timeout: self.connect_timeout,
                backoff_max: self.backoff_max,
                ca_file: self.ca_file.clone(),
                ..defaults.connection
            },
            graph: self.graph.clone(),
            graphs: self.databases.clone(),
            schema_ttl: self.schema_ttl,
        }
    }

    pub(super) fn validate(&self) -> Result<(), String> {
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
        if self.graph.is_empty() {
            return Err(".graph: name the graph statements run in".into());
        }
        Ok(())
    }
}

/// A `neo4j` engine.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Neo4jEngineConfig {
    /// `bolt://host:7687`, `neo4j://host:7687`, or with `+s` for TLS.
    pub url: String,
    /// The user.
    pub user: String,
    /// The password; set it with `OMNIGATE__ENGINES__<NAME>__PASSWORD`.
    pub password: Option<Secret>,
    /// The database statements run in (default: the server's default).
    pub database: Option<String>,
    /// Other databases a request may choose with its `database` option,
    /// as globs; empty: only `database`.
    pub databases: Vec<String>,
    /// Pooled connections at most (per database in use).
    pub max_connections: usize,
    /// Rows fetched per round trip.
    pub fetch_size: usize,
    /// How long opening a connection may take.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// The longest wait between connect attempts while the server is down.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Nested property values.
    pub properties: PropertyCodecConfig,
}

impl Default for Neo4jEngineConfig {
    fn default() -> Self {
        let driver = omnigate_drivers::neo4j::Neo4jConfig::default();
        Neo4jEngineConfig {
            url: driver.url,
            user: driver.user,
            password: None,
            database: None,
            databases: Vec::new(),
            max_connections: driver.max_connections,
            fetch_size: driver.fetch_size,
            connect_timeout: driver.connect_timeout,
            backoff_max: driver.backoff_max,
            properties: PropertyCodecConfig::default(),
        }
    }
}

impl Neo4jEngineConfig {
    /// The driver's configuration.
    pub fn to_driver(&self) -> omnigate_drivers::neo4j::Neo4jConfig {
        omnigate_drivers::neo4j::Neo4jConfig {
            url: self.url.clone(),
            user: self.user.clone(),
            password: self
                .password
                .as_ref()
                .map(|p| p.0.clone())
                .unwrap_or_default(),
            database: self.database.clone(),
            databases: self.databases.clone(),
            max_connections: self.max_connections,
            fetch_size: self.fetch_size,
            connect_timeout: self.connect_timeout,
            backoff_max: self.backoff_max,
            ..omnigate_drivers::neo4j::Neo4jConfig::default()
        }
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        if self.max_connections == 0 {
            return Err(".max_connections: must be at least 1".into());
        }
        if ![
            "bolt://",
            "bolt+s://",
            "bolt+ssc://",
            "neo4j://",
            "neo4j+s://",
            "neo4j+ssc://",
        ]
        .iter()
        .any(|p| self.url.starts_with(p))
        {
            return Err(".url: write bolt://host:7687 or neo4j://host:7687 (+s for TLS)".into());
        }
        Ok(())
    }
}
