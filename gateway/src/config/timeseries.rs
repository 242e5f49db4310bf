//! The time-series engine's configuration (`ts` dialect).

use std::time::Duration;

use serde::Deserialize;

/// A `victoriametrics` engine.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VictoriaEngineConfig {
    /// `http://host:8428`.
    pub url: String,
    /// Requests in flight at most; more wait for a slot.
    pub max_connections: usize,
    /// How long a call waits for a slot.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// How long opening a connection may take.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Idle keep-alive connections are closed after this long.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Writes over this many bytes are sent gzip-compressed.
    pub gzip_above: usize,
    /// Make each write searchable at once (`/internal/force_flush`, a cost
    /// per write); otherwise writes show up in queries within about a second.
    pub read_your_writes: bool,
    /// ExecuteStream runs range queries in slices of this many steps.
    pub stream_points: i64,
    /// The longest wait between connect attempts while the server is down.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
}

impl Default for VictoriaEngineConfig {
    fn default() -> Self {
        let driver = omnigate_drivers::victoria::VictoriaConfig::default();
        VictoriaEngineConfig {
            url: driver.url,
            max_connections: driver.max_connections,
            acquire_timeout: driver.acquire_timeout,
            connect_timeout: driver.connect_timeout,
            idle_timeout: driver.idle_timeout,
            gzip_above: driver.gzip_above,
            read_your_writes: driver.read_your_writes,
            stream_points: driver.stream_points,
            backoff_max: driver.backoff_max,
        }
    }
}

impl VictoriaEngineConfig {
    /// The driver's configuration.
    pub fn to_driver(&self) -> omnigate_drivers::victoria::VictoriaConfig {
        omnigate_drivers::victoria::VictoriaConfig {
            url: self.url.clone(),
            max_connections: self.max_connections,
            acquire_timeout: self.acquire_timeout,
            connect_timeout: self.connect_timeout,
            idle_timeout: self.idle_timeout,
            gzip_above: self.gzip_above,
            read_your_writes: self.read_your_writes,
            stream_points: self.stream_points,
            backoff_max: self.backoff_max,
            ..omnigate_drivers::victoria::VictoriaConfig::default()
        }
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        if self.max_connections == 0 {
            return Err(".max_connections: must be at least 1".into());
        }
        if !self.url.starts_with("http://") {
            return Err(".url: write http://host:8428".into());
        }
        if self.stream_points < 1 {
            return Err(".stream_points: must be at least 1".into());
        }
        Ok(())
    }
}
