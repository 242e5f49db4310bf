//! The engine kinds the gateway can start, one line each (this file), and
//! what the gateway keeps per engine: its driver and codecs (`entry.rs`),
//! and its runtime state: drained or not, calls in flight, call counters
//! (`state.rs`).
//!
//! An engine's settings are written once, beside its driver
//! (`drivers/src/<kind>/config.rs`); the config file's `[engines.NAME]`
//! section is that struct, tagged with `kind`, plus the codec settings the
//! gateway applies in front of it (`bindings` for engines of the `redis`
//! dialect, `properties` for the `cypher` dialect).

mod entry;
mod state;

use std::sync::Arc;

pub use entry::EngineEntry;
pub use state::{CallMetrics, EngineCounters, InFlight, ServiceState, latency_buckets};

use omnigate_drivers::falkordb::FalkorDriver;
use omnigate_drivers::memory::MemoryDriver;
use omnigate_drivers::neo4j::Neo4jDriver;
use omnigate_drivers::postgres::PostgresDriver;
use omnigate_drivers::redis::RedisDriver;
use omnigate_drivers::sqlite::SqliteDriver;
use omnigate_drivers::victoria::VictoriaDriver;
use omnigate_drivers::{Dialect, EngineKind, StorageDriver};
use serde::{Deserialize, Deserializer};

use crate::codec::{Binding, Codec, Format};

/// Declares the engine kinds: the tagged enum of their settings, and how
/// each is checked and started. One line per kind.
macro_rules! kinds {
    ($($variant:ident => $driver:ty,)+) => {
        /// One engine's driver settings, by kind (`kind = "postgres"`).
        #[derive(Debug, Clone, PartialEq, Deserialize)]
        #[serde(tag = "kind", rename_all = "lowercase")]
        pub enum DriverConfig {
            $(
                #[doc = concat!("`", stringify!($driver), "`'s settings.")]
                $variant(<$driver as EngineKind>::Config),
            )+
        }

        impl DriverConfig {
            /// The kind's name, as config files write it.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(DriverConfig::$variant(_) => <$driver as EngineKind>::KIND,)+
                }
            }

            /// The dialects engines of this kind serve.
            pub fn dialects(&self) -> &'static [Dialect] {
                match self {
                    $(DriverConfig::$variant(_) => <$driver as EngineKind>::DIALECTS,)+
                }
            }

            /// What is wrong with these settings, as `.key: why`.
            pub fn validate(&self) -> Result<(), String> {
                match self {
                    $(DriverConfig::$variant(c) => <$driver as EngineKind>::validate(c),)+
                }
            }

            /// Starts an engine named `name` with these settings.
            pub async fn start(
                &self,
                name: &str,
            ) -> omnigate_drivers::Result<Arc<dyn StorageDriver>> {
                Ok(match self {
                    $(DriverConfig::$variant(c) => {
                        Arc::new(<$driver as EngineKind>::start(name, c.clone()).await?)
                    })+
                })
            }
        }

    };
}

kinds! {
    Memory => MemoryDriver,
    Sqlite => SqliteDriver,
    Postgres => PostgresDriver,
    Redis => RedisDriver,
    Falkordb => FalkorDriver,
    Neo4j => Neo4jDriver,
    Victoriametrics => VictoriaDriver,
}

fn default_codec() -> Format {
    Format::Msgpack
}

fn default_compress_above() -> usize {
    1024
}

/// How graph properties the engine cannot store natively (nested maps,
/// lists of maps) are encoded (engines of the `cypher` dialect).
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

/// One `[engines.NAME]` section: the driver's settings and the codecs the
/// gateway applies in front of it.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// The driver's settings, by kind.
    pub driver: DriverConfig,
    /// Key patterns whose structured values go through a codec (engines of
    /// the `redis` dialect).
    pub bindings: Vec<Binding>,
    /// How nested graph properties are encoded (engines of the `cypher`
    /// dialect).
    pub properties: PropertyCodecConfig,
    /// Calls in flight on the engine at most, running or waiting for a
    /// connection; past it new calls fail at once (RESOURCE_EXHAUSTED,
    /// `ENGINE_BUSY`).
    pub max_in_flight: usize,
}

/// `max_in_flight` when a section does not set it.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;

impl EngineConfig {
    /// An engine with these driver settings and no codec bindings.
    pub fn new(driver: DriverConfig) -> Self {
        EngineConfig {
            driver,
            bindings: Vec::new(),
            properties: PropertyCodecConfig::default(),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }

    /// What is wrong with this section, as `.key: why`.
    pub fn validate(&self) -> Result<(), String> {
        let serves = |d| self.driver.dialects().contains(&d);
        if !self.bindings.is_empty() && !serves(Dialect::Redis) {
            return Err(format!(
                ".bindings: only engines of the redis dialect store values through \
                 codec bindings (a {} engine does not)",
                self.driver.kind()
            ));
        }
        if self.max_in_flight == 0 {
            return Err(".max_in_flight: at least 1 (calls in flight on the engine)".into());
        }
        if self.bindings.iter().any(|b| b.pattern.is_empty()) {
            return Err(".bindings: a binding needs a pattern such as \"session:*\"".into());
        }
        self.driver.validate()
    }
}

impl From<DriverConfig> for EngineConfig {
    fn from(driver: DriverConfig) -> Self {
        EngineConfig::new(driver)
    }
}

impl<'de> Deserialize<'de> for EngineConfig {
    /// The section's codec keys and `max_in_flight` are the gateway's;
    /// every other key is the driver's, whose settings refuse keys they do
    /// not know. The pool keys (`max_connections`, `acquire_timeout`, ...)
    /// are the driver's too: its config reads them into its
    /// `omnigate_drivers::PoolSettings` (see `drivers/src/pool/settings.rs`).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut table = toml::Table::deserialize(deserializer)?;
        let bindings = match table.remove("bindings") {
            Some(value) => value
                .try_into()
                .map_err(|e| D::Error::custom(format!("bindings: {e}")))?,
            None => Vec::new(),
        };
        let properties = table.remove("properties");
        let max_in_flight = match table.remove("max_in_flight") {
            Some(value) => value
                .try_into()
                .map_err(|e| D::Error::custom(format!("max_in_flight: {e}")))?,
            None => DEFAULT_MAX_IN_FLIGHT,
        };
        let driver = DriverConfig::deserialize(toml::Value::Table(table))
            .map_err(|e| D::Error::custom(e.to_string().trim_end()))?;
        let properties = match properties {
            Some(_) if !driver.dialects().contains(&Dialect::Cypher) => {
                return Err(D::Error::custom(format!(
                    "properties: only engines of the cypher dialect encode graph \
                     properties (a {} engine does not)",
                    driver.kind()
                )));
            }
            Some(value) => value
                .try_into()
                .map_err(|e| D::Error::custom(format!("properties: {e}")))?,
            None => PropertyCodecConfig::default(),
        };
        Ok(EngineConfig {
            driver,
            bindings,
            properties,
            max_in_flight,
        })
    }
}
