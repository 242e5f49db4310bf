//! One front for every engine's pool: how a call gets a connection, what
//! it is told when it cannot, what is counted, and how health is probed.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Backoff, PoolMetrics, PoolSettings};
use crate::{BoxError, EngineError, Error, Health, Result};

/// How long a health probe may take before the engine counts as down.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why an engine's pool gave no connection, as the front sorts it.
#[derive(Debug)]
pub enum AcquireError<E> {
    /// No connection came free within the acquire timeout.
    Exhausted,
    /// Connecting to the server failed: it counts as down (backoff).
    Connect(E),
    /// Anything else, already said as an [`Error`].
    Other(Error),
}

/// The front of one engine's pool: fail-fast backoff while the server is
/// known to be down, acquire-time metrics, and one health-probe policy.
#[derive(Debug)]
pub struct PoolFront {
    engine: String,
    kind: &'static str,
    server: &'static str,
    acquire_timeout: Duration,
    backoff: Backoff,
    metrics: Arc<PoolMetrics>,
}

/// What a [`PoolFront`] is made of.
#[derive(Debug, Clone)]
pub struct FrontConfig {
    /// The engine's configured name.
    pub engine: String,
    /// The engine's kind.
    pub kind: &'static str,
    /// The server's product name, as errors say it (`"PostgreSQL"`).
    pub server: &'static str,
    /// The pool's settings; the front reads `acquire_timeout` (what an
    /// exhausted pool's error says was waited) and the backoff bounds.
    pub settings: PoolSettings,
}

impl PoolFront {
    /// A front with fresh counters.
    pub fn new(config: FrontConfig) -> Self {
        PoolFront {
            engine: config.engine,
            kind: config.kind,
            server: config.server,
            acquire_timeout: config.settings.acquire_timeout,
            backoff: Backoff::new(config.settings.backoff_base, config.settings.backoff_max),
            metrics: Arc::new(PoolMetrics::default()),
        }
    }

    /// The counters (shared with the engine's connection manager, which
    /// counts connections created).
    pub fn metrics(&self) -> &Arc<PoolMetrics> {
        &self.metrics
    }

    /// Consecutive failed connects.
    pub fn connect_failures(&self) -> u32 {
        self.backoff.failures()
    }

    /// `Err(Unavailable)` while the server is known to be down and the
    /// next connect attempt is not due.
    pub fn gate(&self) -> Result<()> {
        self.backoff.fail_fast(self.kind, self.server)
    }

    /// A connection for a call: fails fast while the server is known to be
    /// down, else waits on `get` (the engine's pool).
    pub async fn acquire<C, E>(
        &self,
        get: impl Future<Output = std::result::Result<C, AcquireError<E>>>,
    ) -> Result<C>
    where
        E: std::fmt::Display + Into<BoxError>,
    {
        self.gate()?;
        self.checkout(get).await
    }

    /// A connection without the fail-fast gate (health probes: a probe is
    /// how the engine learns the server is back).
    pub async fn checkout<C, E>(
        &self,
        get: impl Future<Output = std::result::Result<C, AcquireError<E>>>,
    ) -> Result<C>
    where
        E: std::fmt::Display + Into<BoxError>,
    {
        let started = Instant::now();
        match get.await {
            Ok(conn) => {
                self.acquired(started.elapsed());
                Ok(conn)
            }
            Err(AcquireError::Exhausted) => Err(Error::PoolExhausted {
                engine: self.engine.clone(),
                waited: self.acquire_timeout,
            }),
            Err(AcquireError::Connect(e)) => {
                self.backoff.failed();
                Err(Error::Unavailable(
                    EngineError::new(
                        self.kind,
                        None,
                        format!("cannot connect to {}: {e}", self.server),
                    )
                    .with_source(e),
                ))
            }
            Err(AcquireError::Other(e)) => Err(e),
        }
    }

    /// Counts a connection given after `waited` (zero for one the engine
    /// had at hand, such as a shared multiplexed connection): the server
    /// answered, so the backoff ends.
    pub fn acquired(&self, waited: Duration) {
        self.backoff.succeeded();
        self.metrics.acquired(waited);
    }

    /// Records what a call learnt of the server after it had a connection
    /// (engines whose client connects lazily): unreachable starts the
    /// backoff, an answer ends it.
    pub fn observe<T>(&self, result: &Result<T>) {
        match result {
            Err(Error::Unavailable(_)) => self.backoff.failed(),
            Err(_) => {}
            Ok(_) => self.backoff.succeeded(),
        }
    }

    /// The one health-probe policy: `probe` runs past the fail-fast gate
    /// (it is how the engine learns the server is back), within
    /// [`PROBE_TIMEOUT`], and its outcome feeds the backoff.
    pub async fn probe(&self, probe: impl Future<Output = Result<()>>) -> Health {
        let outcome = crate::deadline::within(Some(PROBE_TIMEOUT), probe).await;
        self.observe(&outcome);
        match outcome {
            Ok(()) => Health::Serving,
            Err(e) => Health::NotServing(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn front() -> PoolFront {
        PoolFront::new(FrontConfig {
            engine: "main".into(),
            kind: "test",
            server: "TestDB",
            settings: PoolSettings {
                acquire_timeout: Duration::from_millis(50),
                backoff_base: Duration::from_secs(60),
                backoff_max: Duration::from_secs(60),
                ..PoolSettings::default()
            },
        })
    }

    #[derive(Debug, thiserror::Error)]
    #[error("connection refused")]
    struct Refused;

    #[tokio::test]
    async fn a_failed_connect_fails_the_next_calls_fast_but_not_a_probe() {
        let front = front();
        let err = front
            .acquire(async { Err::<(), _>(AcquireError::Connect(Refused)) })
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "engine unavailable: cannot connect to TestDB: connection refused"
        );
        assert_eq!(front.connect_failures(), 1);
        // The next call does not reach the pool.
        let fast = front
            .acquire(async { Ok::<_, AcquireError<Refused>>(()) })
            .await
            .unwrap_err();
        assert!(fast.to_string().contains("next connect attempt"), "{fast}");
        // A probe does, and its success opens the gate.
        assert_eq!(front.probe(async { Ok(()) }).await, Health::Serving);
        assert!(front.gate().is_ok());
        assert_eq!(
            front
                .metrics()
                .stats(super::super::PoolSize::default())
                .acquired,
            0
        );
    }

    #[tokio::test]
    async fn an_exhausted_pool_names_the_engine_and_the_wait() {
        let front = front();
        let err = front
            .acquire(async { Err::<(), _>(AcquireError::<Refused>::Exhausted) })
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::PoolExhausted { engine, waited } if engine == "main" && *waited == Duration::from_millis(50)),
            "{err:?}"
        );
        assert_eq!(front.connect_failures(), 0, "exhaustion is not an outage");
        front
            .acquire(async { Ok::<_, AcquireError<Refused>>(()) })
            .await
            .unwrap();
        assert_eq!(
            front
                .metrics()
                .stats(super::super::PoolSize::default())
                .acquired,
            1
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_that_hangs_is_not_serving_after_its_timeout() {
        let front = front();
        let health = front.probe(std::future::pending()).await;
        assert!(matches!(health, Health::NotServing(_)), "{health:?}");
    }
}
