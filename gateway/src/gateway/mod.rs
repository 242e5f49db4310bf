//! The gateway as a library: router, metadata cache and limits behind one
//! cheap-to-clone handle. The gRPC service is a thin layer over it. Every
//! call goes through the pipeline (`pipeline.rs`).

use std::sync::Arc;

use arc_swap::ArcSwap;
use futures::future::join_all;
use futures::{StreamExt, TryStreamExt};
use omnigate_drivers::{Dialect, SchemaObject};

use crate::cache::MetadataCache;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::router::Router;
use crate::security::{Credentials, Security};
use crate::tx::Transactions;

mod builder;
mod context;
mod drain;
mod handle;
mod pipeline;
mod reload;
mod transaction;
mod types;

pub use crate::engines::{InFlight, ServiceState};
pub use builder::GatewayBuilder;
pub use context::{CallContext, Caller};
pub use drain::Drained;
pub use handle::Transaction;
use pipeline::Shape;
pub use reload::{Reloaded, watch_config};
pub use types::{
    BatchRequest, BatchResponse, DescribeRequest, Description, EngineStatus, Limits, Request,
    Response, StreamResponse,
};

/// What a config reload swaps whole: a call takes the state current when
/// it starts and keeps it until it ends.
#[derive(Debug)]
struct Live {
    router: Arc<Router>,
    limits: Limits,
    cache: MetadataCache,
}

#[derive(Debug)]
struct Inner {
    live: ArcSwap<Live>,
    /// The config the live state was built from (a reload compares the
    /// new file with it); held by one reload at a time.
    config: tokio::sync::Mutex<Config>,
    transactions: Arc<Transactions>,
    security: Arc<Security>,
    /// Where the server serves `/metrics`.
    metrics_listen: Option<std::net::SocketAddr>,
    /// The listeners of other protocols (read at startup only).
    frontends: crate::config::FrontendsConfig,
}

/// The gateway: cheap to clone, shared by the gRPC service and library users.
///
/// ```
/// use omnigate::{Gateway, Request};
/// use omnigate_drivers::Value;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // No config: the embedded engines (`cache`: redis dialect, `main`: sql).
/// let gateway = Gateway::builder().build().await?;
/// gateway.execute(Request::new("redis", "SET greeting $1").param("hello")).await?;
/// let got = gateway.execute(Request::new("redis", "GET greeting")).await?;
/// assert_eq!(got.result.rows[0][0], Value::from("hello"));
///
/// gateway.execute(Request::new("sql", "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")).await?;
/// gateway.execute(Request::new("sql", "INSERT INTO t VALUES ($1, $2)").param(1).param("ada")).await?;
/// let rows = gateway.execute(Request::new("sql", "SELECT name FROM t WHERE id = $1").param(1)).await?;
/// assert_eq!(rows.result.rows, vec![vec![Value::from("ada")]]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

impl Gateway {
    /// A builder.
    pub fn builder() -> GatewayBuilder {
        GatewayBuilder::default()
    }

    /// The engines by name, as configured now (a reload swaps them).
    pub fn router(&self) -> Arc<Router> {
        Arc::clone(&self.inner.live.load().router)
    }

    /// The state current now: engines, limits, schema cache.
    fn live(&self) -> Arc<Live> {
        self.inner.live.load_full()
    }

    /// Who presented `credentials` (see [`Security::authenticate`]):
    /// the caller for a call's context.
    pub fn authenticate(&self, credentials: Credentials<'_>) -> Result<Caller> {
        Ok(match self.inner.security.authenticate(credentials)? {
            Some(principal) => Caller::Principal(principal),
            None => Caller::Anonymous,
        })
    }

    /// Where the server serves `/metrics` (`[metrics] listen`).
    pub fn metrics_listen(&self) -> Option<std::net::SocketAddr> {
        self.inner.metrics_listen
    }

    /// The listeners of other protocols the server starts beside gRPC
    /// (`[frontends.*]`, read at startup).
    pub fn frontends(&self) -> &crate::config::FrontendsConfig {
        &self.inner.frontends
    }

    /// The security state: principals, and whether the gateway is open.
    pub fn security(&self) -> &Arc<Security> {
        &self.inner.security
    }

    /// The limits applied to every request.
    pub fn limits(&self) -> Limits {
        self.inner.live.load().limits
    }

    /// Runs one statement and returns its whole result.
    pub async fn execute(&self, request: Request) -> Result<Response> {
        let (routed, statement) = self.prepare(request, Shape::Whole)?;
        let driver = &routed.engine.driver;
        let mut result = match &routed.tx_id {
            Some(id) => self.run_one_in_tx(&routed, id, statement).await?,
            None => {
                let work = driver.execute(routed.dialect, &statement, &routed.options);
                Self::run(&routed, work, driver.bounds_execute()).await?
            }
        };
        Self::decode(routed.dialect, &mut result);
        Ok(Response {
            engine: routed.engine_name(),
            result,
        })
    }

    /// What a statement takes and returns, as its engine prepares it,
    /// without running it: the route's checks and admissions apply as for
    /// a call (a front end answering a client's `Describe`).
    pub async fn describe_statement(
        &self,
        request: Request,
    ) -> Result<omnigate_drivers::StatementShape> {
        let (routed, statement) = self.prepare(request, Shape::Whole)?;
        // Inside a transaction, as its part sees it (what it created).
        if let Some(id) = &routed.tx_id
            && let Some(shape) = self.describe_in_tx(&routed, id, &statement).await?
        {
            return Ok(shape);
        }
        let driver = &routed.engine.driver;
        let work = driver.describe_statement(routed.dialect, &statement, &routed.options);
        Self::run(&routed, work, false).await
    }

    /// Runs one statement and returns its rows in batches.
    pub async fn execute_stream(&self, request: Request) -> Result<StreamResponse> {
        let (routed, statement) = self.prepare(request, Shape::Stream)?;
        let driver = &routed.engine.driver;
        let stream = match &routed.tx_id {
            // Inside a transaction the statement runs on its pinned part.
            Some(id) => Box::pin(self.run_stream_in_tx(&routed, id, statement))
                .await
                .map_err(|e| match e {
                    Error::Driver(e) => Error::Driver(routed.refuser()(e)),
                    other => other,
                })?,
            None => {
                let work = driver.execute_stream(routed.dialect, statement, routed.options.clone());
                Self::run(&routed, work, false).await?
            }
        };
        let engine = routed.engine_name();
        let mut stream = Self::decode_stream(routed.dialect, stream);
        // A write refused midway (PostgreSQL's once the columns went) is
        // said as the call's other refusals are.
        let refuser = routed.refuser();
        // The call holds its place under its principal's limit, and counts
        // as in flight on its engine, until the stream ends or is dropped.
        // The engine entry too: a reload that replaces it lets the stream
        // finish on it.
        let held = (routed.permit, routed.in_flight, routed.engine);
        stream.batches = stream
            .batches
            .inspect(move |_| {
                let _held = &held;
            })
            .map_err(refuser)
            .boxed();
        Ok(StreamResponse { engine, stream })
    }

    /// Runs several statements on one engine, each with its own outcome
    /// (one round trip for Redis).
    pub async fn execute_batch(&self, request: BatchRequest) -> Result<BatchResponse> {
        let BatchRequest {
            dialect,
            mut statements,
            target,
            options,
            context,
        } = request;
        let routed = self.route(&context, &dialect, target.as_deref(), options, Shape::Whole)?;
        for statement in &mut statements {
            Self::ready(&routed, statement)?;
        }
        let driver = &routed.engine.driver;
        let mut results = match &routed.tx_id {
            Some(id) => self.run_in_tx(&routed, id, &statements).await?,
            None => {
                let work = driver.execute_batch(routed.dialect, &statements, &routed.options);
                let refuser = routed.refuser();
                let results = Self::run(&routed, work, false).await?;
                results.into_iter().map(|r| r.map_err(&refuser)).collect()
            }
        };
        for result in results.iter_mut().flatten() {
            Self::decode(routed.dialect, result);
        }
        Ok(BatchResponse {
            engine: routed.engine_name(),
            results,
        })
    }

    /// Every engine with its health (checked now), pool and counters.
    /// A principal sees only the engines its grant names.
    pub async fn engines(&self, context: &CallContext) -> Result<Vec<EngineStatus>> {
        let principal = self.caller(context)?;
        Ok(self
            .statuses(|name| principal.is_none_or(|p| p.grant.may_use(name)))
            .await)
    }

    /// Every engine's status, whoever may see it: for a front end's own
    /// health reports, never for a caller.
    pub async fn all_engines(&self) -> Vec<EngineStatus> {
        self.statuses(|_| true).await
    }

    async fn statuses(&self, visible: impl Fn(&str) -> bool) -> Vec<EngineStatus> {
        let live = self.live();
        let shown = live.router.engines().filter(|e| visible(e.name()));
        let checks = shown.map(|engine| async move {
            let driver = &engine.driver;
            // Each driver's probe is bounded by the pool front's timeout.
            let health = driver.health().await;
            let descriptor = driver.descriptor();
            let mut counters = driver.counters();
            counters.extend(engine.counters.snapshot());
            counters.push((
                "schema_cache_invalidations".to_owned(),
                driver.schema_epoch(),
            ));
            if let Some(bindings) = &engine.bindings {
                let (hits, misses) = bindings.counts();
                counters.extend([
                    ("codec_binding_hits".to_owned(), hits),
                    ("codec_binding_misses".to_owned(), misses),
                ]);
            }
            counters.extend([
                (
                    "draining".to_owned(),
                    u64::from(engine.service.is_draining()),
                ),
                ("calls_in_flight".to_owned(), engine.service.in_flight()),
            ]);
            EngineStatus {
                name: descriptor.name.clone(),
                kind: descriptor.kind.to_owned(),
                dialects: descriptor
                    .dialects
                    .iter()
                    .map(|d| d.as_str().to_owned())
                    .collect(),
                health,
                pool: driver.pool_stats(),
                counters,
            }
        });
        join_all(checks).await
    }

    /// The schema objects of one engine (cached; DDL through the gateway
    /// makes the cached ones stale).
    pub async fn describe(&self, request: DescribeRequest) -> Result<Description> {
        let principal = self.caller(&request.context)?.cloned();
        let live = self.live();
        let engine = live
            .router
            .for_describe(request.target.as_deref(), request.dialect.as_deref())?;
        // Describing an engine is using it, in a dialect of its own.
        let asked = request.dialect.as_deref().and_then(Dialect::parse);
        let dialects = &engine.driver.descriptor().dialects;
        let dialect = asked
            .or_else(|| {
                let p = principal.as_ref()?;
                dialects.iter().copied().find(|d| p.grant.may_speak(*d))
            })
            .or_else(|| dialects.first().copied())
            .ok_or_else(|| Error::DialectNotServed {
                target: engine.name().to_owned(),
                dialect: "any".to_owned(),
                serves: Vec::new(),
            })?;
        // The one route's admissions: grant, drain, in-flight bound,
        // limiter, deadline and counters, as for any call.
        let routed = Self::admit(
            &request.context,
            principal,
            &live,
            dialect,
            Arc::clone(engine),
            omnigate_drivers::ExecuteOptions::default(),
            Shape::Whole,
        )?;
        let name = request.name;
        let work = live.cache.describe(&routed.engine, name.clone());
        let mut objects = Self::run(&routed, work, false).await?;
        let engine = &routed.engine;
        if let Some(bindings) = &engine.bindings {
            let mut all = objects.as_ref().clone();
            all.extend(
                bindings
                    .list()
                    .iter()
                    .filter(|b| name.as_deref().is_none_or(|n| n == b.pattern))
                    .map(|b| SchemaObject {
                        kind: "binding".into(),
                        name: b.pattern.clone(),
                        attributes: vec![
                            ("codec".into(), b.codec.name().into()),
                            ("compress_above".into(), b.compress_above.to_string()),
                        ],
                        ..SchemaObject::default()
                    }),
            );
            objects = Arc::new(all);
        }
        let descriptor = engine.driver.descriptor();
        Ok(Description {
            engine: descriptor.name.clone(),
            kind: descriptor.kind.to_owned(),
            objects,
            pool: engine.driver.pool_stats(),
        })
    }
}
