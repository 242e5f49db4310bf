//! The engine's pools (its own login, and `read_only_user`'s): deadpool's
//! manager over tokio-postgres with the config's TLS, recycling, lifetime
//! and bounds, behind the shared pool front.

use deadpool_postgres::{
    Hook, HookError, Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio_postgres::NoTls;

use super::{KIND, PostgresConfig, Recycling, Tls, config_error, error, tls};
use crate::pool::{AcquireError, FrontConfig, PoolFront};
use crate::{BoxError, Result};

/// `pool`'s answer, sorted for its front.
pub(super) async fn get(pool: &Pool) -> std::result::Result<Object, AcquireError<BoxError>> {
    pool.get().await.map_err(|e| match e {
        PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => AcquireError::Exhausted,
        PoolError::Backend(pg) => AcquireError::Connect(pg.into()),
        PoolError::Timeout(_) => AcquireError::Connect("the connect timed out".into()),
        other => AcquireError::Connect(other.into()),
    })
}

/// A pool of connections logging in with `pg`, and its front.
pub(super) fn build_pool(
    name: &str,
    mut pg: tokio_postgres::Config,
    config: &PostgresConfig,
) -> Result<(Pool, PoolFront)> {
    let recycling = match config.recycling {
        Recycling::Fast => RecyclingMethod::Fast,
        Recycling::Verified => RecyclingMethod::Verified,
        Recycling::Clean => RecyclingMethod::Clean,
    };
    let manager_config = ManagerConfig {
        recycling_method: recycling,
    };
    let manager = match config.tls {
        Tls::Disable => Manager::from_config(pg, NoTls, manager_config),
        Tls::Require => {
            pg.ssl_mode(tokio_postgres::config::SslMode::Require);
            let connector = tls::connector(config.ca_file.as_deref())?;
            Manager::from_config(pg, connector, manager_config)
        }
    };
    let front = PoolFront::new(FrontConfig {
        engine: name.to_owned(),
        kind: KIND,
        server: "PostgreSQL",
        settings: config.pool,
    });
    let created = std::sync::Arc::clone(front.metrics());
    let max_lifetime = config.max_lifetime;
    let pool = Pool::builder(manager)
        .max_size(config.pool.max_connections.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(config.pool.acquire_timeout))
        .create_timeout(Some(config.pool.connect_timeout))
        .recycle_timeout(Some(config.recycle_timeout))
        .post_create(Hook::sync_fn(move |_, _| {
            created.created();
            Ok(())
        }))
        .pre_recycle(Hook::sync_fn(move |_, metrics| match max_lifetime {
            Some(limit) if metrics.age() > limit => Err(HookError::message(
                "the connection reached its max lifetime",
            )),
            _ => Ok(()),
        }))
        .build()
        .map_err(|e| config_error(format!("cannot build the pool: {e}")))?;
    Ok((pool, front))
}

/// The server's `max_prepared_transactions`.
pub(super) async fn max_prepared_transactions(client: &Object) -> Result<u64> {
    let row = client
        .query_one(
            "SELECT current_setting('max_prepared_transactions')::bigint",
            &[],
        )
        .await
        .map_err(|e| error::from_pg(e, None))?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
}

/// Whether the connection writes dates in ISO and intervals in the
/// `postgres` style, PostgreSQL's defaults and what the PostgreSQL-wire
/// front end tells its clients: only then are its text cells forwarded
/// ([`Cells::Text`](crate::Cells::Text)). These two are left to the
/// server, unlike [`OUTPUT_FORMATS`](super::OUTPUT_FORMATS): `DateStyle`
/// also says how date input is read (its field order), `IntervalStyle`
/// how some interval input is.
pub(super) async fn writes_reported_formats(client: &Object) -> Result<bool> {
    let row = client
        .query_one(
            "SELECT current_setting('DateStyle'), current_setting('IntervalStyle')",
            &[],
        )
        .await
        .map_err(|e| error::from_pg(e, None))?;
    let (date, interval): (String, String) = (row.get(0), row.get(1));
    Ok(date.starts_with("ISO") && interval == "postgres")
}
