//! The engine's pools (its own login, and `read_only_user`'s): deadpool's
//! manager over tokio-postgres with the config's TLS, recycling, lifetime
//! and bounds, behind the shared pool front.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;

use deadpool_postgres::{
    ClientWrapper, Hook, HookError, Manager, ManagerConfig, Object, Pool, PoolError,
    RecyclingMethod, Runtime,
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

/// A pool of connections logging in with `pg`, and its front. Each new
/// connection is asked how it writes values as text; one that does not
/// write them as the wire front end's clients read them turns `text_cells`
/// off ([`writes_reported_formats`]).
pub(super) fn build_pool(
    name: &str,
    mut pg: tokio_postgres::Config,
    config: &PostgresConfig,
    text_cells: &Arc<AtomicBool>,
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
    let created = Arc::clone(front.metrics());
    let text_cells = Arc::clone(text_cells);
    let engine = name.to_owned();
    let max_lifetime = config.max_lifetime;
    let pool = Pool::builder(manager)
        .max_size(config.pool.max_connections.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(config.pool.acquire_timeout))
        .create_timeout(Some(config.pool.connect_timeout))
        .recycle_timeout(Some(config.recycle_timeout))
        .post_create(Hook::async_fn(move |client, _| {
            created.created();
            let (text_cells, engine) = (Arc::clone(&text_cells), engine.clone());
            Box::pin(async move {
                if !writes_reported_formats(client).await && text_cells.swap(false, Relaxed) {
                    tracing::warn!(
                        engine = %engine,
                        "PostgreSQL writes dates, intervals, bytea or floats otherwise than its \
                         defaults (DateStyle ISO, IntervalStyle postgres, bytea_output hex, \
                         extra_float_digits >= 1 on PostgreSQL 12 or later): the wire front \
                         end formats text results itself from now on, as it does for SQLite"
                    );
                }
                Ok(())
            })
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

/// Whether the connection writes values as text the way the
/// PostgreSQL-wire front end's clients read them: dates in ISO and
/// intervals in the `postgres` style (what the front end tells them at
/// login), bytea in hex and floats exactly (shortest exact digits:
/// `extra_float_digits` of 1 or more, PostgreSQL 12 or later). These are
/// PostgreSQL's defaults; only then are its text cells forwarded
/// ([`Cells::Text`](crate::Cells::Text)). The gateway does not set them:
/// `DateStyle` also says how date input is read, and a pooler in front of
/// the server may refuse startup options. A connection that cannot be
/// asked counts as writing otherwise.
async fn writes_reported_formats(client: &ClientWrapper) -> bool {
    let row = client
        .query_one(
            "SELECT current_setting('DateStyle') LIKE 'ISO%' \
             AND current_setting('IntervalStyle') = 'postgres' \
             AND current_setting('bytea_output') = 'hex' \
             AND current_setting('extra_float_digits')::int >= 1 \
             AND current_setting('server_version_num')::int >= 120000",
            &[],
        )
        .await;
    matches!(row.map(|row| row.try_get::<_, bool>(0)), Ok(Ok(true)))
}
