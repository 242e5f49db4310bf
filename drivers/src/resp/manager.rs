//! The bb8 glue: multiplexed connections without a response timeout (the
//! request's deadline bounds each call instead), counted as they are made.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::{AsyncConnectionConfig, Client, RedisError};

use crate::pool::PoolMetrics;

/// A pooled connection, marked broken when the server dropped it so bb8
/// discards it instead of handing it out again. A multiplexed connection
/// serves many callers at once, so callers work on a shared handle
/// (`share`) and give the pool slot back at once.
#[derive(Debug)]
pub(crate) struct Pooled {
    pub(crate) conn: MultiplexedConnection,
    pub(crate) broken: Arc<AtomicBool>,
}

impl Pooled {
    /// Another handle to the same connection and broken flag.
    pub(crate) fn share(&self) -> Pooled {
        Pooled {
            conn: self.conn.clone(),
            broken: Arc::clone(&self.broken),
        }
    }

    /// Whether the connection was found broken.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }

    /// Marks the connection broken: the pool drops it when it comes back.
    pub(crate) fn mark_broken(&self) {
        self.broken.store(true, Ordering::Relaxed);
    }

    /// `result` of a call on this connection, marking the connection
    /// broken when the call found it gone: unavailable with no reply from
    /// the server (a reply such as `LOADING` or `BUSY` is unavailable too,
    /// but came over a connection that works).
    pub(crate) fn noting<T>(&self, result: crate::Result<T>) -> crate::Result<T> {
        if let Err(crate::Error::Unavailable(report)) = &result
            && report.code.is_none()
        {
            self.mark_broken();
        }
        result
    }
}

/// Opens and checks connections for bb8.
#[derive(Debug, Clone)]
pub(crate) struct Manager {
    pub(crate) client: Client,
    pub(crate) connect_timeout: Duration,
    pub(crate) metrics: Arc<PoolMetrics>,
}

impl Manager {
    /// A connection outside the pool (for blocking commands, which would
    /// hold up every other caller of a shared connection).
    pub(crate) async fn dedicated(&self) -> Result<MultiplexedConnection, RedisError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(None);
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }
}

impl bb8::ManageConnection for Manager {
    type Connection = Pooled;
    type Error = RedisError;

    async fn connect(&self) -> Result<Self::Connection, Self::Error> {
        let mut conn = self.dedicated().await?;
        // A round trip now, so a wrong password or database fails here,
        // at startup, rather than on the first statement. (`()` would
        // accept an error reply; a String does not.)
        ::redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await?;
        self.metrics.created();
        Ok(Pooled {
            conn,
            broken: Arc::new(AtomicBool::new(false)),
        })
    }

    async fn is_valid(&self, pooled: &mut Self::Connection) -> Result<(), Self::Error> {
        ::redis::cmd("PING")
            .query_async::<String>(&mut pooled.conn)
            .await
            .map(drop)
    }

    fn has_broken(&self, pooled: &mut Self::Connection) -> bool {
        pooled.is_broken()
    }
}
