//! Building a [`Gateway`]: its engines started, its security, its
//! transaction coordinator and first recovery, and what it says once at
//! startup (durability, read-only without a role).

use std::sync::Arc;

use arc_swap::ArcSwap;
use omnigate_drivers::{Dialect, StorageDriver};

use super::{Gateway, Inner, Limits, Live};
use crate::cache::MetadataCache;
use crate::config::{Config, LogLocation};
use crate::engines::EngineEntry;
use crate::error::ConfigError;
use crate::router::Router;
use crate::security::Security;
use crate::tx::{LogSource, Transactions};

/// Builds a [`Gateway`] from a [`Config`] and/or drivers given directly.
#[derive(Debug, Default)]
pub struct GatewayBuilder {
    config: Option<Config>,
    drivers: Vec<Arc<dyn StorageDriver>>,
}

impl GatewayBuilder {
    /// Uses `config` (its engines are started by `build`).
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Adds an engine built elsewhere (it replaces a configured one of the same name).
    pub fn driver(mut self, driver: Arc<dyn StorageDriver>) -> Self {
        self.drivers.push(driver);
        self
    }

    /// Starts the configured engines. With neither a config nor drivers,
    /// runs the embedded default.
    pub async fn build(self) -> Result<Gateway, ConfigError> {
        let config = self.config.unwrap_or_else(|| {
            let mut config = Config::default();
            if !self.drivers.is_empty() {
                // Drivers given and no config: serve just those.
                config.engines.clear();
            }
            config
        });
        let security = Arc::new(Security::new(
            config.security.clone(),
            config.principals.clone(),
        )?);
        Security::watch(&security);
        let mut router = Router::default();
        for (name, engine) in &config.engines {
            let started =
                EngineEntry::start(name, engine)
                    .await
                    .map_err(|source| ConfigError::Engine {
                        name: name.clone(),
                        source,
                    })?;
            router.insert(started);
        }
        for driver in self.drivers {
            router.insert(EngineEntry::plain(driver));
        }
        let location = config
            .transactions
            .location(&config.engines)
            .map_err(|message| ConfigError::Invalid {
                file: None,
                message,
            })?;
        let log = match location {
            LogLocation::File(path) => LogSource::File(path),
            LogLocation::Table(engine) => LogSource::Table(Arc::clone(
                &router
                    .by_name(&engine)
                    .map_err(|e| ConfigError::Invalid {
                        file: None,
                        message: format!("transactions.log: {e}"),
                    })?
                    .driver,
            )),
        };
        let gateway = Gateway {
            inner: Arc::new(Inner {
                live: ArcSwap::from_pointee(Live {
                    router: Arc::new(router),
                    limits: Limits::from(&config),
                    cache: MetadataCache::new(&config.cache),
                }),
                transactions: Transactions::new(
                    config.transactions.idle_timeout,
                    crate::tx::Coordinator::new(
                        log,
                        config.transactions.instance_name(config.server.listen),
                        &config.transactions,
                    ),
                ),
                security,
                metrics_listen: config.metrics.listen,
                frontends: config.frontends.clone(),
                config: tokio::sync::Mutex::new(config.clone()),
            }),
        };
        // Recovery: at startup (with unrecorded prepared transactions), then
        // every recovery_interval, for as long as the gateway lives.
        gateway
            .inner
            .transactions
            .coordinator
            .recover(&gateway.router())
            .await;
        tokio::spawn(recover_every(
            Arc::downgrade(&gateway.inner),
            config.transactions.recovery_interval,
        ));
        tokio::spawn(warn_of_durability(gateway.router()));
        warn_of_read_only_without_a_role(&gateway.inner.security, &config);
        Ok(gateway)
    }
}

/// Says, at startup, which read-only principals reach a PostgreSQL engine
/// that has no `read_only_user`: their read-only rests on read-only
/// transactions and the gateway's refusals of what would lift them, not on
/// a role whose privileges the database enforces.
fn warn_of_read_only_without_a_role(security: &Security, config: &Config) {
    for (name, engine) in &config.engines {
        let crate::engines::DriverConfig::Postgres(pg) = &engine.driver else {
            continue;
        };
        if pg.read_only_user.is_some() {
            continue;
        }
        let readers = security.read_only_on(name, Dialect::Sql);
        if !readers.is_empty() {
            tracing::warn!(
                engine = %name,
                principals = ?readers,
                "read-only principals reach this PostgreSQL engine, which has no read_only_user: \
                 their read-only rests on read-only transactions and the gateway's refusals, not \
                 on a role the database enforces; set engines.{name}.read_only_user to a role \
                 with SELECT only (see the README, Security)"
            );
        }
    }
}

/// Says once, at startup, which engines' servers would lose what they
/// acknowledge (a committed transaction's parts among it), by their own
/// settings.
async fn warn_of_durability(router: Arc<Router>) {
    for engine in router.engines() {
        if let Some(warning) = engine.driver.durability().await {
            tracing::warn!(engine = %engine.name(), "{warning}");
        }
    }
}

/// Runs recovery every `interval` until the gateway is gone.
async fn recover_every(inner: std::sync::Weak<Inner>, interval: std::time::Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let router = Arc::clone(&inner.live.load().router);
        inner.transactions.coordinator.recover(&router).await;
    }
}
