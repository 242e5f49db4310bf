//! The `[frontends.*]` sections: the listeners beside the gRPC server that
//! speak another protocol. Each is off unless its section is present.
//!
//! ```toml
//! [frontends.postgres]
//! listen = "127.0.0.1:6432"     # PostgreSQL clients connect here; database = an sql engine's name
//! idle_timeout = "15m"          # a client that sends nothing this long is closed
//! max_connections = 1024        # clients connected at once at most; more are refused (53300)
//!
//! [frontends.redis]
//! listen = "127.0.0.1:6380"     # Redis clients connect here (RESP2, RESP3 after HELLO 3)
//! target = "cache"              # the engine of the redis dialect every command runs on
//! idle_timeout = "15m"          # a client that sends nothing this long is closed
//! max_connections = 1024        # clients connected at once at most; more are refused
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// The listeners of other protocols.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FrontendsConfig {
    /// The PostgreSQL-wire listener.
    pub postgres: Option<PostgresFrontendConfig>,
    /// The Redis-protocol (RESP) listener.
    pub redis: Option<RedisFrontendConfig>,
}

/// The PostgreSQL-wire listener: any PostgreSQL client reaches the `sql`
/// engines through it, the startup `database` naming the engine and the
/// password being the principal's token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresFrontendConfig {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// A client that sends nothing this long is closed.
    #[serde(with = "humantime_serde", default = "default_idle_timeout")]
    pub idle_timeout: Duration,
    /// Clients connected at once at most; more are refused with SQLSTATE
    /// 53300 (too many connections).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_idle_timeout() -> Duration {
    Duration::from_secs(15 * 60)
}

fn default_max_connections() -> usize {
    1024
}

impl FrontendsConfig {
    /// The addresses of the listeners that are configured.
    pub fn listens(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.postgres
            .iter()
            .map(|p| p.listen)
            .chain(self.redis.iter().map(|r| r.listen))
    }
}

impl PostgresFrontendConfig {
    /// A listener on `listen` with the default settings.
    pub fn new(listen: SocketAddr) -> Self {
        PostgresFrontendConfig {
            listen,
            idle_timeout: default_idle_timeout(),
            max_connections: default_max_connections(),
        }
    }

    /// What is wrong with these settings, as `.key: why`.
    pub fn validate(&self) -> Result<(), String> {
        if self.idle_timeout.is_zero() {
            return Err(".idle_timeout: above zero".into());
        }
        if self.max_connections == 0 {
            return Err(".max_connections: at least 1".into());
        }
        Ok(())
    }
}

/// The Redis-protocol (RESP2/RESP3) listener: any Redis client reaches one
/// engine of the `redis` dialect through it, `AUTH` taking the principal's
/// token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisFrontendConfig {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The engine every command runs on: an engine of the `redis` dialect
    /// (`redis` or `memory`).
    pub target: String,
    /// A client that sends nothing this long is closed.
    #[serde(with = "humantime_serde", default = "default_idle_timeout")]
    pub idle_timeout: Duration,
    /// Clients connected at once at most; more are refused with
    /// `-ERR max number of clients reached`.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Serve TLS only (`redis-cli --tls`), with `[security.tls]`'s
    /// certificate and client CA.
    #[serde(default)]
    pub tls: bool,
}

impl RedisFrontendConfig {
    /// A listener on `listen` for engine `target`, with the default
    /// settings.
    pub fn new(listen: SocketAddr, target: impl Into<String>) -> Self {
        RedisFrontendConfig {
            listen,
            target: target.into(),
            idle_timeout: default_idle_timeout(),
            max_connections: default_max_connections(),
            tls: false,
        }
    }

    /// What is wrong with these settings, as `.key: why` (the target's
    /// engine is checked against the engines by the whole config).
    pub fn validate(&self) -> Result<(), String> {
        if self.target.is_empty() {
            return Err(".target: the name of an engine of the redis dialect".into());
        }
        if self.idle_timeout.is_zero() {
            return Err(".idle_timeout: above zero".into());
        }
        if self.max_connections == 0 {
            return Err(".max_connections: at least 1".into());
        }
        Ok(())
    }
}
