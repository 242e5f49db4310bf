//! The settings every pooled engine's config shares: how many connections,
//! how long a call waits for one, how long opening one may take, and how
//! connects back off while the server is down. Written once here, checked
//! once ([`PoolSettings::validate`]), and read by [`PoolFront`] as they are.
//!
//! A config file writes them among the kind's other keys, as it always
//! has:
//!
//! ```toml
//! [engines.db]
//! kind = "postgres"
//! max_connections = 8
//! acquire_timeout = "2s"
//! ```
//!
//! In Rust they are one field, `pool`, of each pooled kind's config.
//! serde's `flatten` would read them so, but it does not work with
//! `deny_unknown_fields` (the outer struct cannot tell which keys the
//! flattened one took, so it would refuse them all or accept anything).
//! Instead [`pooled_config!`] gives each config a `Deserialize` that takes
//! the kind's pool keys out of the section as they stream past and hands
//! every other key to the config's own derived deserializer (derived with
//! `#[serde(remote = "Self")]`, so it is an inherent function, with `pool`
//! skipped), which still refuses a key it does not know; its message then
//! also lists the pool keys. No intermediate table, no second copy of the
//! config's fields.
//!
//! [`PoolFront`]: super::PoolFront

use std::fmt;
use std::time::Duration;

use serde::Deserializer;
use serde::de::{DeserializeSeed, Error as _, IntoDeserializer, MapAccess, Visitor};

/// A pooled engine's connection settings. Each kind's config holds one as
/// `pool`, with the kind's own defaults (its config's `Default`); a config
/// file writes them as keys of the engine's section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Connections in the pool at most (`max_connections`, at least 1).
    pub max_connections: usize,
    /// How long a call waits for a free connection before it fails with
    /// `POOL_EXHAUSTED` (`acquire_timeout`, a humantime duration such as
    /// `"5s"`; more than zero).
    pub acquire_timeout: Duration,
    /// How long opening a connection may take (`connect_timeout`; more
    /// than zero).
    pub connect_timeout: Duration,
    /// After a failed connect, the first wait before connecting again; calls
    /// fail fast meanwhile, and the wait doubles up to `backoff_max`
    /// (`backoff_base`).
    pub backoff_base: Duration,
    /// The longest wait between connect attempts while the server is down
    /// (`backoff_max`).
    pub backoff_max: Duration,
}

impl Default for PoolSettings {
    /// 16 connections, 5 s to wait for one or to connect, connects backing
    /// off from 100 ms to 5 s: what every pooled kind uses but for its
    /// pool size (see each config's `Default`).
    fn default() -> Self {
        PoolSettings {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        }
    }
}

/// One pool setting, as config files name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolKey {
    MaxConnections,
    AcquireTimeout,
    ConnectTimeout,
    BackoffBase,
    BackoffMax,
}

impl PoolKey {
    /// Every pool setting: what a kind with a server and a pool takes.
    pub(crate) const ALL: &'static [PoolKey] = &[
        PoolKey::MaxConnections,
        PoolKey::AcquireTimeout,
        PoolKey::ConnectTimeout,
        PoolKey::BackoffBase,
        PoolKey::BackoffMax,
    ];

    /// The key in a config file.
    pub(crate) fn name(self) -> &'static str {
        match self {
            PoolKey::MaxConnections => "max_connections",
            PoolKey::AcquireTimeout => "acquire_timeout",
            PoolKey::ConnectTimeout => "connect_timeout",
            PoolKey::BackoffBase => "backoff_base",
            PoolKey::BackoffMax => "backoff_max",
        }
    }
}

impl PoolSettings {
    /// What is wrong with the settings a kind takes (`keys`), as
    /// `.key: why`. The others are not the kind's and are not looked at.
    pub(crate) fn validate(&self, keys: &[PoolKey]) -> Result<(), String> {
        for key in keys {
            let wrong = match key {
                PoolKey::MaxConnections => self.max_connections == 0,
                PoolKey::AcquireTimeout => self.acquire_timeout.is_zero(),
                PoolKey::ConnectTimeout => self.connect_timeout.is_zero(),
                PoolKey::BackoffBase | PoolKey::BackoffMax => false,
            };
            if wrong {
                let why = match key {
                    PoolKey::MaxConnections => "must be at least 1",
                    _ => "must be more than 0s",
                };
                return Err(format!(".{}: {why}", key.name()));
            }
        }
        Ok(())
    }
}

/// A kind's config that holds [`PoolSettings`] in a `pool` field its
/// derived deserializer skips. Implemented by [`pooled_config!`].
pub(crate) trait PooledConfig: Sized {
    /// The pool keys the kind's section takes; any other pool key is
    /// refused like every key the config does not know.
    const POOL_KEYS: &'static [PoolKey];

    /// The settings, to be overwritten with what the section says.
    fn pool_mut(&mut self) -> &mut PoolSettings;

    /// The config's derived deserializer, which reads every key but the
    /// pool's (`pool` keeps the kind's default).
    fn deserialize_others<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;
}

/// Gives a kind's config a `Deserialize` that reads the pool keys `$keys`
/// into its `pool` field and every other key through its derived
/// deserializer. The config must derive `Deserialize` with
/// `#[serde(remote = "Self", deny_unknown_fields, default)]` and mark
/// `pool` `#[serde(skip)]`.
macro_rules! pooled_config {
    ($config:ty, $keys:expr) => {
        impl $crate::pool::PooledConfig for $config {
            const POOL_KEYS: &'static [$crate::pool::PoolKey] = $keys;

            fn pool_mut(&mut self) -> &mut $crate::pool::PoolSettings {
                &mut self.pool
            }

            fn deserialize_others<'de, D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> ::std::result::Result<Self, D::Error> {
                // The derived one: `remote = "Self"` makes it inherent, and
                // an inherent function comes before the trait's.
                <$config>::deserialize(deserializer)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $config {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> ::std::result::Result<Self, D::Error> {
                $crate::pool::deserialize_pooled(deserializer)
            }
        }
    };
}
pub(crate) use pooled_config;

/// Reads a pooled config: its pool keys into `pool`, the rest through its
/// derived deserializer.
pub(crate) fn deserialize_pooled<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: PooledConfig,
{
    deserializer.deserialize_map(PooledVisitor(std::marker::PhantomData))
}

struct PooledVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: PooledConfig> Visitor<'de> for PooledVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table of engine settings")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        let mut given = Given::default();
        let others = WithoutPoolKeys {
            map,
            keys: T::POOL_KEYS,
            given: &mut given,
        };
        let mut config =
            T::deserialize_others(serde::de::value::MapAccessDeserializer::new(others))?;
        given.apply(config.pool_mut());
        Ok(config)
    }
}

/// The pool settings a section gave.
#[derive(Default)]
struct Given {
    max_connections: Option<usize>,
    acquire_timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    backoff_base: Option<Duration>,
    backoff_max: Option<Duration>,
}

impl Given {
    /// Reads `key`'s value from `map`; an error names the key.
    fn read<'de, A: MapAccess<'de>>(&mut self, key: PoolKey, map: &mut A) -> Result<(), A::Error> {
        fn set<T, E: serde::de::Error>(
            slot: &mut Option<T>,
            key: PoolKey,
            value: T,
        ) -> Result<(), E> {
            match slot.replace(value) {
                Some(_) => Err(E::duplicate_field(key.name())),
                None => Ok(()),
            }
        }
        let named = |e: A::Error| {
            A::Error::custom(format_args!("{}: {}", key.name(), e.to_string().trim_end()))
        };
        let duration = |map: &mut A| {
            map.next_value::<humantime_serde::Serde<Duration>>()
                .map(humantime_serde::Serde::into_inner)
                .map_err(named)
        };
        match key {
            PoolKey::MaxConnections => {
                let value = map.next_value::<usize>().map_err(named)?;
                set(&mut self.max_connections, key, value)
            }
            PoolKey::AcquireTimeout => set(&mut self.acquire_timeout, key, duration(map)?),
            PoolKey::ConnectTimeout => set(&mut self.connect_timeout, key, duration(map)?),
            PoolKey::BackoffBase => set(&mut self.backoff_base, key, duration(map)?),
            PoolKey::BackoffMax => set(&mut self.backoff_max, key, duration(map)?),
        }
    }

    /// Overwrites `pool`'s defaults with what was given.
    fn apply(self, pool: &mut PoolSettings) {
        let Given {
            max_connections,
            acquire_timeout,
            connect_timeout,
            backoff_base,
            backoff_max,
        } = self;
        pool.max_connections = max_connections.unwrap_or(pool.max_connections);
        pool.acquire_timeout = acquire_timeout.unwrap_or(pool.acquire_timeout);
        pool.connect_timeout = connect_timeout.unwrap_or(pool.connect_timeout);
        pool.backoff_base = backoff_base.unwrap_or(pool.backoff_base);
        pool.backoff_max = backoff_max.unwrap_or(pool.backoff_max);
    }
}

/// A section's keys without the pool's: those are read into `given` as
/// they pass.
struct WithoutPoolKeys<'a, A> {
    map: A,
    keys: &'static [PoolKey],
    given: &'a mut Given,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for WithoutPoolKeys<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        while let Some(key) = self.map.next_key::<String>()? {
            match self.keys.iter().find(|k| k.name() == key) {
                Some(&pool_key) => self.given.read(pool_key, &mut self.map)?,
                // The derived field visitor fails only on a key it does
                // not know: say the pool keys it does not list.
                None => {
                    let key: serde::de::value::StringDeserializer<A::Error> =
                        key.into_deserializer();
                    return seed.deserialize(key).map(Some).map_err(|e| {
                        let pool: Vec<String> = self
                            .keys
                            .iter()
                            .map(|k| format!("`{}`", k.name()))
                            .collect();
                        A::Error::custom(format_args!(
                            "{}, or a pool setting: {}",
                            e.to_string().trim_end(),
                            pool.join(", ")
                        ))
                    });
                }
            }
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neo4j::Neo4jConfig;
    use crate::postgres::PostgresConfig;
    use crate::sqlite::SqliteConfig;

    fn read<T: serde::de::DeserializeOwned>(json: serde_json::Value) -> Result<T, String> {
        serde_json::from_value(json).map_err(|e| e.to_string())
    }

    #[test]
    fn pool_keys_sit_among_the_kinds_keys_and_keep_its_defaults() {
        let pg: PostgresConfig = read(serde_json::json!({
            "url": "postgres://app@db/shop",
            "max_connections": 8,
            "min_idle": 2,
            "acquire_timeout": "2s",
            "backoff_max": "1m",
        }))
        .unwrap();
        assert_eq!(
            pg.pool,
            PoolSettings {
                max_connections: 8,
                acquire_timeout: Duration::from_secs(2),
                backoff_max: Duration::from_secs(60),
                ..PostgresConfig::default().pool
            }
        );
        assert_eq!(
            (pg.min_idle, pg.url.as_deref()),
            (2, Some("postgres://app@db/shop"))
        );
        let sqlite: SqliteConfig = read(serde_json::json!({ "path": "x.db" })).unwrap();
        assert_eq!(sqlite.pool, SqliteConfig::default().pool);
        assert_eq!(sqlite.pool.max_connections, 4, "the kind's own default");
    }

    #[test]
    fn unknown_keys_are_still_refused_and_told_the_pool_keys() {
        let err = read::<PostgresConfig>(serde_json::json!({
            "max_connections": 2,
            "max_conections": 3,
        }))
        .unwrap_err();
        assert!(err.contains("unknown field `max_conections`"), "{err}");
        assert!(err.contains("`min_idle`"), "the kind's keys: {err}");
        assert!(err.contains("`max_connections`"), "the pool's keys: {err}");
        // A pool key the kind does not take is unknown to it.
        let err = read::<SqliteConfig>(serde_json::json!({ "connect_timeout": "1s" })).unwrap_err();
        assert!(err.contains("unknown field `connect_timeout`"), "{err}");
        assert!(!err.contains("`backoff_max`"), "{err}");
        let err = read::<Neo4jConfig>(serde_json::json!({ "acquire_timeout": "1s" })).unwrap_err();
        assert!(err.contains("unknown field `acquire_timeout`"), "{err}");
    }

    #[test]
    fn a_bad_pool_value_names_its_key() {
        let err =
            read::<PostgresConfig>(serde_json::json!({ "acquire_timeout": "soon" })).unwrap_err();
        assert!(err.starts_with("acquire_timeout: "), "{err}");
        let err = read::<SqliteConfig>(serde_json::json!({ "max_connections": -1 })).unwrap_err();
        assert!(err.starts_with("max_connections: "), "{err}");
    }

    #[test]
    fn validation_names_the_key_and_skips_keys_the_kind_does_not_take() {
        let ok = PoolSettings::default();
        assert_eq!(ok.validate(PoolKey::ALL), Ok(()));
        let none = PoolSettings {
            max_connections: 0,
            ..ok
        };
        assert_eq!(
            none.validate(PoolKey::ALL),
            Err(".max_connections: must be at least 1".into())
        );
        let no_wait = PoolSettings {
            acquire_timeout: Duration::ZERO,
            ..ok
        };
        assert_eq!(
            no_wait.validate(PoolKey::ALL),
            Err(".acquire_timeout: must be more than 0s".into())
        );
        assert_eq!(no_wait.validate(&[PoolKey::MaxConnections]), Ok(()));
        let no_connect = PoolSettings {
            connect_timeout: Duration::ZERO,
            ..ok
        };
        assert_eq!(
            no_connect.validate(PoolKey::ALL),
            Err(".connect_timeout: must be more than 0s".into())
        );
    }
}
