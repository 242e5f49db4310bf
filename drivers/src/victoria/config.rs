//! The VictoriaMetrics engine's settings, as the gateway's config file
//! spells them (`[engines.NAME] kind = "victoriametrics"`).

use std::time::Duration;

use serde::Deserialize;

use crate::pool::{PoolKey, PoolSettings, PooledConfig, pooled_config};

/// Configuration of a VictoriaMetrics engine.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields, default)]
pub struct VictoriaConfig {
    /// `http://host:8428`.
    pub url: String,
    /// The pool: `max_connections` (requests in flight at most; more wait
    /// for a slot), `acquire_timeout` (how long a call waits for a slot),
    /// `connect_timeout`, `backoff_base` and `backoff_max` (after a failed
    /// request), written as keys of the section (see [`PoolSettings`]).
    #[serde(skip)]
    pub pool: PoolSettings,
    /// Idle keep-alive connections are closed after this long.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Writes larger than this many bytes are sent gzip-compressed.
    pub gzip_above: usize,
    /// After each write, ask the server to make it searchable at once
    /// (`/internal/force_flush`); otherwise a write shows up in queries
    /// within about a second. Best effort: the server's own periodic flush
    /// may be building a part from the last samples at that moment, and
    /// the forced flush does not wait for it (they show up milliseconds
    /// later).
    pub read_your_writes: bool,
    /// Range queries streamed with ExecuteStream run in slices of this many
    /// steps.
    pub stream_points: i64,
}

impl Default for VictoriaConfig {
    fn default() -> Self {
        VictoriaConfig {
            url: "http://127.0.0.1:8428".into(),
            pool: PoolSettings {
                max_connections: 16,
                acquire_timeout: Duration::from_secs(5),
                connect_timeout: Duration::from_secs(5),
                backoff_base: Duration::from_millis(100),
                backoff_max: Duration::from_secs(5),
            },
            idle_timeout: Duration::from_secs(90),
            gzip_above: 64 * 1024,
            read_your_writes: false,
            stream_points: 1000,
        }
    }
}

pooled_config!(VictoriaConfig, PoolKey::ALL);

impl VictoriaConfig {
    /// What is wrong with these settings, as `.key: why`.
    pub fn validate(&self) -> Result<(), String> {
        self.pool.validate(Self::POOL_KEYS)?;
        if !self.url.starts_with("http://") {
            return Err(".url: write http://host:8428".into());
        }
        if self.stream_points < 1 {
            return Err(".stream_points: must be at least 1".into());
        }
        Ok(())
    }
}
