//! The gateway's configuration: a TOML file, overridden by `OMNIGATE__*`
//! environment variables, read into typed structs. Unknown keys are errors.
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:50051"
//! default_timeout = "30s"
//!
//! [engines.cache]
//! kind = "memory"
//!
//! [engines.main]
//! kind = "sqlite"
//! path = "data/main.sqlite3"
//! ```
//!
//! Environment overrides name a key path with `__`:
//! `OMNIGATE__SERVER__LISTEN=0.0.0.0:50051`,
//! `OMNIGATE__ENGINES__MAIN__MAX_CONNECTIONS=8`. A value that reads as a TOML
//! integer, float or bool is taken as one; anything else is a string (quote
//! it, `'"123"'`, to force a string). This is how secrets stay out of files.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use omnigate_drivers::Dialect;

use crate::error::ConfigError;
use env::apply_env;
pub use env::{Env, ProcessEnv};

mod env;
mod frontends;
mod security;
mod transactions;

pub use crate::engines::{DriverConfig, EngineConfig, PropertyCodecConfig};
pub use frontends::{FrontendsConfig, PostgresFrontendConfig, RedisFrontendConfig};
pub use security::{
    ClientName, DenyRule, PrincipalConfig, PrincipalLimits, Reflection, SecurityConfig, TlsConfig,
    TokensFile,
};
pub use transactions::{DEFAULT_LOG_FILE, LogLocation, TransactionsConfig};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The gRPC server.
    #[serde(default)]
    pub server: ServerConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// The metadata cache.
    #[serde(default)]
    pub cache: CacheConfig,
    /// Transactions.
    #[serde(default)]
    pub transactions: TransactionsConfig,
    /// Who may call, TLS.
    #[serde(default)]
    pub security: SecurityConfig,
    /// The Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// OpenTelemetry trace export.
    #[serde(default)]
    pub tracing: TracingConfig,
    /// Listeners of other protocols (PostgreSQL wire), off unless set.
    #[serde(default)]
    pub frontends: FrontendsConfig,
    /// The principals (callers) and what each may do, by name; more may
    /// come from `security.tokens_file`.
    #[serde(default)]
    pub principals: BTreeMap<String, PrincipalConfig>,
    /// The engines, by name. Empty: the embedded default (`cache`: memory,
    /// `main`: in-memory SQLite).
    #[serde(default)]
    pub engines: BTreeMap<String, EngineConfig>,
}

/// The Prometheus endpoint: `GET /metrics` on its own HTTP listener.
///
/// ```toml
/// [metrics]
/// listen = "127.0.0.1:9464"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Where to serve it (unset: no endpoint).
    pub listen: Option<SocketAddr>,
}

/// OpenTelemetry export of the call spans over OTLP/gRPC (a build with
/// the `otlp` cargo feature).
///
/// ```toml
/// [tracing]
/// otlp_endpoint = "http://127.0.0.1:4317"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracingConfig {
    /// Where to send spans (unset: no export).
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of the exported spans.
    pub service_name: String,
}

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig {
            otlp_endpoint: None,
            service_name: "omnigate".into(),
        }
    }
}

/// The gRPC server's settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// A Unix socket to serve gRPC on as well (a sidecar's clients on the
    /// same host): made at startup (a stale socket left by a killed
    /// gateway is replaced; any other file there is an error) and removed
    /// at shutdown. TCP stays for probes and other hosts; bind it to
    /// loopback when only the socket should be reached.
    pub unix_socket: Option<std::path::PathBuf>,
    /// The socket's permission bits (default `0o660`: owner and group):
    /// who may connect, before any token is asked.
    pub unix_socket_mode: u32,
    /// The largest request message accepted, in bytes.
    pub max_request_bytes: usize,
    /// The largest response message sent, in bytes; larger results fail
    /// with RESOURCE_EXHAUSTED and a hint to use ExecuteStream.
    pub max_response_bytes: usize,
    /// The statement timeout when neither the request nor its deadline sets one.
    #[serde(with = "humantime_serde")]
    pub default_timeout: Duration,
    /// Rows an Execute may return when the request does not say.
    pub default_max_rows: u64,
    /// Rows an Execute may return at most, whatever the request says (a
    /// larger `max_rows` is cut to this).
    pub max_rows: u64,
    /// Rows per ExecuteStream message when the request does not say.
    pub stream_batch_rows: usize,
    /// Rows per ExecuteStream message at most, whatever the request says.
    pub max_batch_rows: usize,
    /// How long in-flight calls may run on after SIGINT/SIGTERM.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// How often engine health is checked for the gRPC health service.
    #[serde(with = "humantime_serde")]
    pub health_interval: Duration,
    /// How often `omnigate serve --config FILE` checks the file for
    /// changes and reloads it (SIGHUP reloads at once).
    #[serde(with = "humantime_serde")]
    pub reload_poll: Duration,
    /// The Tokio runtime `omnigate serve` runs on.
    pub runtime: RuntimeKind,
    /// Worker threads of the multi-thread runtime (0: one per core).
    pub worker_threads: usize,
}

/// The Tokio runtime `omnigate serve` runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeKind {
    /// Worker threads that steal each other's work.
    #[default]
    MultiThread,
    /// One thread for everything: no cross-thread wake-ups, one core.
    CurrentThread,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            unix_socket: None,
            unix_socket_mode: 0o660,
            max_request_bytes: 4 << 20,
            max_response_bytes: 16 << 20,
            default_timeout: Duration::from_secs(30),
            default_max_rows: 10_000,
            max_rows: 1_000_000,
            stream_batch_rows: 1_000,
            max_batch_rows: 10_000,
            shutdown_grace: Duration::from_secs(10),
            health_interval: Duration::from_secs(5),
            reload_poll: Duration::from_secs(2),
            runtime: RuntimeKind::default(),
            worker_threads: 0,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("no log format {other:?}: use text or json")),
        }
    }
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// The output format.
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `"info"` or `"omnigate=debug"`; `RUST_LOG` wins.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

/// Metadata cache settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// How long a described schema stays cached (DDL through the gateway
    /// drops it sooner).
    #[serde(with = "humantime_serde")]
    pub schema_ttl: Duration,
    /// Entries kept at most.
    pub max_entries: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            schema_ttl: Duration::from_secs(60),
            max_entries: 10_000,
        }
    }
}

impl Default for Config {
    /// The embedded default: `cache` (memory, `redis`) and `main`
    /// (in-memory SQLite, `sql`).
    fn default() -> Self {
        Config {
            server: ServerConfig::default(),
            log: LogConfig::default(),
            cache: CacheConfig::default(),
            transactions: TransactionsConfig::default(),
            security: SecurityConfig::default(),
            metrics: MetricsConfig::default(),
            tracing: TracingConfig::default(),
            frontends: FrontendsConfig::default(),
            principals: BTreeMap::new(),
            engines: BTreeMap::new(),
        }
        .with_default_engines()
    }
}

/// When a file was last changed, as far as polling can tell: its
/// modification time, length and (on Unix) inode. The inode tells a file
/// written whole and renamed over the old one (as operators' tools and
/// secret managers do) even when the two have the same length and the
/// clock's tick gave them the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp(std::time::SystemTime, u64, u64);

impl FileStamp {
    /// The stamp of `path` now (`None` when it cannot be read).
    pub fn of(path: &Path) -> Option<FileStamp> {
        let meta = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Some(FileStamp(meta.modified().ok()?, meta.len(), inode))
    }
}

impl Config {
    /// Reads a config file, applies the environment's overrides, and checks it.
    pub fn load(path: &Path, env: &dyn Env) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, env).map_err(|e| e.in_file(path))
    }

    /// The embedded default with the environment's overrides.
    pub fn from_env(env: &dyn Env) -> Result<Config, ConfigError> {
        Self::parse("", env)
    }

    /// Parses TOML text, applies the environment's overrides, and checks it.
    pub fn parse(text: &str, env: &dyn Env) -> Result<Config, ConfigError> {
        let mut table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Invalid {
                    file: None,
                    message: e.to_string(),
                })?;
        apply_env(&mut table, env)?;
        let config: Config = Config::deserialize(table).map_err(|e| {
            // Deserializing the text again gives the line and column when
            // the file itself is at fault; otherwise an override is.
            let message = match toml::from_str::<Config>(text) {
                Err(in_text) => in_text.to_string(),
                Ok(_) => format!(
                    "{} (set by an OMNIGATE__ environment variable)",
                    e.to_string().trim_end()
                ),
            };
            ConfigError::Invalid {
                file: None,
                message,
            }
        })?;
        let config = config.with_default_engines();
        config.validate()?;
        Ok(config)
    }

    fn with_default_engines(mut self) -> Self {
        if self.engines.is_empty() {
            self.engines.insert(
                "cache".into(),
                EngineConfig::new(DriverConfig::Memory(Default::default())),
            );
            self.engines.insert(
                "main".into(),
                EngineConfig::new(DriverConfig::Sqlite(Default::default())),
            );
        }
        self
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| {
            Err(ConfigError::Invalid {
                file: None,
                message,
            })
        };
        for name in self.engines.keys() {
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                return invalid(format!(
                    "engines.{name}: an engine name may hold only letters, digits, '-' and '_'"
                ));
            }
        }
        for (name, engine) in &self.engines {
            if let Err(problem) = engine.validate() {
                return invalid(format!("engines.{name}{problem}"));
            }
        }
        if let Err(problem) = self.transactions.location(&self.engines) {
            return invalid(problem);
        }
        if self.server.unix_socket_mode > 0o777 {
            return invalid(format!(
                "server.unix_socket_mode: {:#o} is not a permission mode; write it in octal, \
                 e.g. 0o660",
                self.server.unix_socket_mode
            ));
        }
        if let Some(postgres) = &self.frontends.postgres
            && let Err(problem) = postgres.validate()
        {
            return invalid(format!("frontends.postgres{problem}"));
        }
        if let Some(redis) = &self.frontends.redis {
            if let Err(problem) = redis.validate() {
                return invalid(format!("frontends.redis{problem}"));
            }
            if redis.tls && self.security.tls.is_none() {
                return invalid(
                    "frontends.redis.tls: set [security.tls] (cert and key): the Redis front \
                     end serves its certificate"
                        .into(),
                );
            }
            let target = &redis.target;
            match self.engines.get(target) {
                Some(engine) if engine.driver.dialects().contains(&Dialect::Redis) => {}
                Some(engine) => {
                    return invalid(format!(
                        "frontends.redis.target: engine {target} is a {} engine, which does not \
                         serve the redis dialect: name a redis or memory engine",
                        engine.driver.kind()
                    ));
                }
                None => {
                    let known: Vec<&str> = self
                        .engines
                        .iter()
                        .filter(|(_, e)| e.driver.dialects().contains(&Dialect::Redis))
                        .map(|(name, _)| name.as_str())
                        .collect();
                    return invalid(format!(
                        "frontends.redis.target: no engine {target} (engines of the redis \
                         dialect: {})",
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ));
                }
            }
        }
        for (name, principal) in &self.principals {
            for engine in principal.engines.iter().flatten() {
                if !self.engines.contains_key(engine) {
                    return invalid(format!("principals.{name}.engines: no engine {engine}"));
                }
            }
        }
        let server = &self.server;
        if server.stream_batch_rows == 0 || server.default_max_rows == 0 {
            return invalid(
                "server.stream_batch_rows and server.default_max_rows must be at least 1".into(),
            );
        }
        if server.default_max_rows > server.max_rows
            || server.stream_batch_rows > server.max_batch_rows
        {
            return invalid(
                "server.default_max_rows may not pass server.max_rows, nor \
                 server.stream_batch_rows server.max_batch_rows"
                    .into(),
            );
        }
        if server.max_request_bytes < 1024 || server.max_response_bytes < 1024 {
            return invalid(
                "server.max_request_bytes and server.max_response_bytes must be at least 1024"
                    .into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
