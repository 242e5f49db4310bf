//! The FalkorDB engine's settings.

use std::time::Duration;

use crate::resp::RedisConfig;

/// How to reach FalkorDB, and which graphs requests may use.
#[derive(Debug, Clone)]
pub struct FalkorConfig {
    /// The connection and pool: FalkorDB speaks the Redis protocol (the
    /// `protocol` and `database` fields are not used).
    pub connection: RedisConfig,
    /// The graph (a FalkorDB key) statements run in by default.
    pub graph: String,
    /// Other graphs a request may choose with its `database` option
    /// (globs, e.g. `tenant_*`); empty: only the default.
    pub graphs: Vec<String>,
    /// How long the label, relationship-type and property-key tables are
    /// trusted before being fetched again (an unknown id fetches at once).
    pub schema_ttl: Duration,
}

impl Default for FalkorConfig {
    fn default() -> Self {
        FalkorConfig {
            connection: RedisConfig::default(),
            graph: "omnigate".into(),
            graphs: Vec::new(),
            schema_ttl: Duration::from_secs(300),
        }
    }
}
