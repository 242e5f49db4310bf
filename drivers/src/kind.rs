//! An engine kind as a config file names it: what the gateway needs to
//! start one. Registering a kind in the gateway is one line naming its
//! driver (see the README's contributor section).

use std::fmt;

use async_trait::async_trait;

use crate::{Dialect, Result, StorageDriver};

/// An engine kind the gateway can start from its configuration.
#[async_trait]
pub trait EngineKind: StorageDriver + Sized {
    /// The kind's name in config files (`kind = "postgres"`).
    const KIND: &'static str;
    /// The dialects its engines serve.
    const DIALECTS: &'static [Dialect];
    /// Its settings, as config files spell them (serde, unknown keys are
    /// errors, defaults for what is left out).
    type Config: serde::de::DeserializeOwned
        + Default
        + Clone
        + PartialEq
        + fmt::Debug
        + Send
        + Sync
        + 'static;

    /// What is wrong with `config`, as `.key: why`.
    fn validate(config: &Self::Config) -> std::result::Result<(), String>;

    /// Starts an engine named `name`: fails when its server cannot be
    /// reached, with the reason.
    async fn start(name: &str, config: Self::Config) -> Result<Self>;
}

/// Implements [`EngineKind`] for a driver whose constructor is
/// `$start(name, config)` and whose config has a `validate` method.
macro_rules! engine_kind {
    ($driver:ty, $config:ty, [$($dialect:ident),+], $start:expr) => {
        #[async_trait::async_trait]
        impl $crate::EngineKind for $driver {
            const KIND: &'static str = KIND;
            const DIALECTS: &'static [$crate::Dialect] = &[$($crate::Dialect::$dialect),+];
            type Config = $config;

            fn validate(config: &$config) -> std::result::Result<(), String> {
                config.validate()
            }

            async fn start(name: &str, config: $config) -> $crate::Result<Self> {
                ($start)(name, config).await
            }
        }
    };
}
pub(crate) use engine_kind;
