//! What the gateway keeps per engine: its driver, its codecs and its
//! runtime state. The router holds one per engine name.

use std::sync::Arc;

use omnigate_drivers::{Dialect, StorageDriver};

use super::{
    DEFAULT_MAX_IN_FLIGHT, EngineConfig, EngineCounters, PropertyCodecConfig, ServiceState,
};
use crate::codec::{Bindings, Codec};
use crate::error::{Error, Result};

/// What the gateway keeps per engine: its driver, its codecs and its
/// counters. The router holds one per engine name.
#[derive(Debug)]
pub struct EngineEntry {
    /// The driver.
    pub driver: Arc<dyn StorageDriver>,
    /// Codec bindings by key pattern (engines of the `redis` dialect).
    pub bindings: Option<Arc<Bindings>>,
    /// The codec of nested graph properties (engines of the `cypher`
    /// dialect).
    pub properties: Option<Codec>,
    /// Calls and failures, as the pipeline records them (kept across a
    /// reload that rebuilds the engine).
    pub counters: Arc<EngineCounters>,
    /// Drained or not, and the calls in flight (kept across a reload).
    pub service: Arc<ServiceState>,
    /// Calls in flight at most (`engines.NAME.max_in_flight`).
    pub max_in_flight: usize,
    /// The engine's name, shared with every response that names it.
    shared_name: Arc<str>,
}

impl EngineEntry {
    /// An entry for a driver built elsewhere: no codec bindings, and the
    /// default property codec for a graph engine.
    pub fn plain(driver: Arc<dyn StorageDriver>) -> Self {
        let graph = driver.descriptor().dialects.contains(&Dialect::Cypher);
        EngineEntry {
            shared_name: driver.descriptor().name.as_str().into(),
            driver,
            bindings: None,
            properties: graph.then(|| PropertyCodecConfig::default().codec()),
            counters: Arc::default(),
            service: Arc::default(),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }

    /// Starts the engine `name` of `config`.
    pub async fn start(name: &str, config: &EngineConfig) -> omnigate_drivers::Result<Self> {
        let driver = config.driver.start(name).await?;
        Ok(Self::with_driver(driver, config))
    }

    /// An entry for `driver` (started from `config.driver`) with the
    /// codecs of `config`.
    fn with_driver(driver: Arc<dyn StorageDriver>, config: &EngineConfig) -> Self {
        let graph = config.driver.dialects().contains(&Dialect::Cypher);
        EngineEntry {
            shared_name: driver.descriptor().name.as_str().into(),
            driver,
            bindings: (!config.bindings.is_empty()).then(|| Bindings::new(config.bindings.clone())),
            properties: graph.then(|| config.properties.codec()),
            counters: Arc::default(),
            service: Arc::default(),
            max_in_flight: config.max_in_flight,
        }
    }

    /// The entry that takes over from `self` when its config becomes
    /// `config` (was `was`): the same driver when only the codecs changed,
    /// else a driver started anew. Counters and drain state carry over.
    pub async fn succeed(
        &self,
        was: &EngineConfig,
        config: &EngineConfig,
    ) -> omnigate_drivers::Result<Self> {
        let mut next = if was.driver == config.driver {
            Self::with_driver(Arc::clone(&self.driver), config)
        } else {
            Self::start(self.name(), config).await?
        };
        next.counters = Arc::clone(&self.counters);
        next.service = Arc::clone(&self.service);
        Ok(next)
    }

    /// The engine's name.
    pub fn name(&self) -> &str {
        &self.shared_name
    }

    /// The engine's name, shared (no copy).
    pub fn shared_name(&self) -> Arc<str> {
        Arc::clone(&self.shared_name)
    }
}

impl EngineEntry {
    /// `Err(EngineDrained)` for new work on a drained engine (a call, or
    /// a transaction's first statement on it).
    pub(crate) fn refuse_if_drained(&self) -> Result<()> {
        if self.service.is_draining() {
            return Err(Error::EngineDrained {
                engine: self.name().to_owned(),
            });
        }
        Ok(())
    }
}
