//! Configuration of the `postgres` engine, as the gateway's config file
//! spells it (`[engines.NAME] kind = "postgres"`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::Secret;
use crate::pool::{PoolKey, PoolSettings, PooledConfig, pooled_config};

/// How a pooled connection is checked before it is handed out again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Recycling {
    /// Only check that the connection is open (no round trip).
    #[default]
    Fast,
    /// Also run an empty query, so a connection the server dropped is
    /// replaced before a caller sees it.
    Verified,
    /// Verified, and reset session state (`DISCARD ALL`-like) first.
    Clean,
}

/// Whether to use TLS to the server (rustls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// Plain TCP.
    #[default]
    Disable,
    /// TLS required; the server's certificate is checked against
    /// `ca_file` when given, else against the web PKI roots.
    Require,
}

/// Configuration of a PostgreSQL engine. Its `Debug` hides the password.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields, default)]
pub struct PostgresConfig {
    /// `postgres://user@host:port/db?options`; keep the password out of
    /// it. Or leave it out and give `host`, `port`, `user`, `database`.
    pub url: Option<String>,
    /// The server's host name, address, or Unix socket directory.
    pub host: Option<String>,
    /// The server's port.
    pub port: Option<u16>,
    /// The user to connect as.
    pub user: Option<String>,
    /// The database.
    pub database: Option<String>,
    /// The password; set it with `OMNIGATE__ENGINES__<NAME>__PASSWORD`.
    pub password: Option<Secret>,
    /// The pool: `max_connections`, `acquire_timeout`, `connect_timeout`,
    /// `backoff_base` and `backoff_max`, written as keys of the section
    /// (see [`PoolSettings`]).
    #[serde(skip)]
    pub pool: PoolSettings,
    /// Connections opened at startup and kept ready (at most
    /// `max_connections`).
    pub min_idle: usize,
    /// How long checking a pooled connection may take.
    #[serde(with = "humantime_serde")]
    pub recycle_timeout: Duration,
    /// Connections older than this are replaced when returned to use.
    #[serde(with = "humantime_serde")]
    pub max_lifetime: Option<Duration>,
    /// How connections are checked before reuse.
    pub recycling: Recycling,
    /// Statements whose parameter types are remembered across connections.
    pub statement_cache_capacity: u64,
    /// TLS to the server: `disable` or `require`.
    pub tls: Tls,
    /// With `tls = "require"`: a PEM file of CAs to trust (default: the
    /// web PKI roots).
    pub ca_file: Option<PathBuf>,
    /// A PostgreSQL role with read privileges only: the calls and
    /// transactions of principals with `read_only = true` log in as it,
    /// in a pool of their own, so the database itself refuses their
    /// writes whatever a statement says (`SET TRANSACTION READ WRITE`,
    /// `SET ROLE`, `set_config` cannot give a role privileges it lacks).
    /// Without it they run read-only transactions as `user`.
    pub read_only_user: Option<String>,
    /// `read_only_user`'s password; set it with
    /// `OMNIGATE__ENGINES__<NAME>__READ_ONLY_PASSWORD`.
    pub read_only_password: Option<Secret>,
    /// The schema the gateway keeps its own tables in on this engine
    /// (transaction markers, and the transaction log when this engine
    /// holds it); made when missing. Callers' statements that name it are
    /// refused. A lowercase SQL name, not `public` or `pg_*`.
    pub gateway_schema: String,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            url: None,
            host: None,
            port: None,
            user: None,
            database: None,
            password: None,
            pool: PoolSettings {
                max_connections: 16,
                acquire_timeout: Duration::from_secs(5),
                connect_timeout: Duration::from_secs(5),
                backoff_base: Duration::from_millis(100),
                backoff_max: Duration::from_secs(5),
            },
            min_idle: 1,
            recycle_timeout: Duration::from_secs(5),
            max_lifetime: Some(Duration::from_secs(30 * 60)),
            recycling: Recycling::Fast,
            statement_cache_capacity: 10_000,
            tls: Tls::Disable,
            ca_file: None,
            read_only_user: None,
            read_only_password: None,
            gateway_schema: crate::reserved::DEFAULT_SCHEMA.to_owned(),
        }
    }
}

pooled_config!(PostgresConfig, PoolKey::ALL);

impl PostgresConfig {
    /// The connection URL: `url`, or one made of the fields.
    pub fn url(&self) -> String {
        if let Some(url) = &self.url {
            return url.clone();
        }
        let host = self.host.as_deref().unwrap_or("127.0.0.1");
        // A socket directory goes percent-encoded in the host part.
        let host = if host.starts_with('/') {
            host.replace('/', "%2F")
        } else {
            host.to_owned()
        };
        format!(
            "postgres://{}@{host}:{}/{}",
            self.user.as_deref().unwrap_or("postgres"),
            self.port.unwrap_or(5432),
            self.database.as_deref().unwrap_or("postgres")
        )
    }

    /// What is wrong with these settings, as `.key: why`.
    pub fn validate(&self) -> Result<(), String> {
        self.pool.validate(Self::POOL_KEYS)?;
        if self.min_idle > self.pool.max_connections {
            return Err(".max_connections: must be at least min_idle".into());
        }
        let fields = self.host.is_some()
            || self.port.is_some()
            || self.user.is_some()
            || self.database.is_some();
        if self.url.is_some() && fields {
            return Err(": give url, or host/port/user/database, not both".into());
        }
        let url = self.url();
        if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(".url: write postgres://user@host:port/database".into());
        }
        if self.ca_file.is_some() && self.tls == Tls::Disable {
            return Err(".ca_file: set tls = \"require\" to use it".into());
        }
        if self.read_only_password.is_some() && self.read_only_user.is_none() {
            return Err(".read_only_password: set read_only_user too".into());
        }
        if self.read_only_user.as_deref().is_some_and(str::is_empty) {
            return Err(".read_only_user: name a role, or leave the key out".into());
        }
        let schema = &self.gateway_schema;
        let lowercase_name = schema.len() <= 63
            && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !lowercase_name
            || schema == "public"
            || schema == "information_schema"
            || schema.starts_with("pg_")
        {
            return Err(
                ".gateway_schema: name a schema of the gateway's own: lowercase \
                        letters, digits and _, at most 63, not public or pg_*"
                    .into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_schema_is_a_plain_name_of_its_own() {
        let with = |schema: &str| PostgresConfig {
            gateway_schema: schema.into(),
            ..PostgresConfig::default()
        };
        assert_eq!(PostgresConfig::default().gateway_schema, "_omnigate");
        for good in ["_omnigate", "ops", "gw_2"] {
            assert!(with(good).validate().is_ok(), "{good}");
        }
        for bad in [
            "",
            "public",
            "pg_gw",
            "Omnigate",
            "gw;drop",
            "a b",
            "2gw",
            "information_schema",
        ] {
            let err = with(bad).validate().unwrap_err();
            assert!(err.starts_with(".gateway_schema:"), "{bad}: {err}");
        }
        assert!(with(&"g".repeat(64)).validate().is_err());
    }
}
