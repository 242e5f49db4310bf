//! The one path every call takes, each step written once: resolve the
//! caller → route (dialect and target to an engine entry) → authorize
//! (the caller's grant, statement rules and limits) → encode codecs
//! → run under one deadline → decode → record the outcome. The statement
//! checks are the driver's own (they hold for a library user of a driver
//! alone, so the pipeline does not run them a second time), and schema
//! changes are noted by the driver that runs them (its schema epoch keys
//! the metadata cache).

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use omnigate_drivers::{
    Dialect, Error as DriverError, ExecuteOptions, ResultSet, RowStream, Statement, Value,
};

use super::{CallContext, Caller, Gateway, Request};
use crate::codec;
use crate::engines::EngineEntry;
use crate::error::{Error, Result};
use crate::security::{Permit, Principal};

/// How long past its timeout a call is cut when its driver has not
/// stopped it: the drivers cancel on the engine at the timeout, so this
/// only bounds one that cannot.
pub(super) const BACKSTOP: Duration = omnigate_drivers::deadline::STOP_MARGIN;

/// How a call returns its rows: the limits that apply differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// Whole results (Execute, ExecuteBatch): capped in rows and bytes.
    Whole,
    /// Batches (ExecuteStream): each batch capped in rows.
    Stream,
}

/// A call resolved to its engine, with its options complete.
pub(super) struct Routed {
    pub(super) dialect: Dialect,
    /// Held for the call: a reload that replaces the engine lets the
    /// call finish on this one.
    pub(super) engine: Arc<EngineEntry>,
    pub(super) options: ExecuteOptions,
    /// The transaction the call runs in.
    pub(super) tx_id: Option<String>,
    /// The caller, when the gateway has principals.
    pub(super) principal: Option<Arc<Principal>>,
    /// The request itself asked to be read-only (a principal's grant may
    /// make it so without being asked).
    pub(super) asked_read_only: bool,
    /// The call's place under its principal's concurrency limit.
    pub(super) permit: Permit,
    /// The call, counted in flight on its engine.
    pub(super) in_flight: super::InFlight,
}

impl Routed {
    /// `Err(GatewayState)` when `statement` names the gateway's own state
    /// on the engine, `Err(PermissionDenied)` when a statement rule of the
    /// caller denies it here (run after its parameters are encoded: a
    /// Redis command is checked as it will be sent).
    pub(super) fn check_statement(&self, statement: &Statement) -> Result<()> {
        if let Some(what) = self
            .engine
            .driver
            .gateway_state_named(self.dialect, statement)
        {
            return Err(Error::GatewayState {
                engine: self.engine.name().to_owned(),
                what,
            });
        }
        match &self.principal {
            Some(p) => p.grant.check_statement(
                &p.name,
                self.engine.name(),
                self.engine.driver.descriptor().kind,
                self.dialect,
                statement,
            ),
            None => Ok(()),
        }
    }

    /// A driver's error as the caller is told it: a write refused only by
    /// the caller's read-only grant is PERMISSION_DENIED naming the grant.
    pub(super) fn refuser(&self) -> impl Fn(DriverError) -> DriverError + Send + 'static {
        let principal = self.principal.clone().filter(|_| !self.asked_read_only);
        move |e| match &principal {
            Some(p) => p.grant.read_only_denial(&p.name, e),
            None => e,
        }
    }

    /// The engine's name, shared (no copy).
    pub(super) fn engine_name(&self) -> Arc<str> {
        self.engine.shared_name()
    }

    /// The call's one timeout (set by [`Gateway::route`]).
    pub(super) fn timeout(&self) -> Duration {
        self.options.timeout.unwrap_or_default()
    }
}

impl Gateway {
    /// The caller's principal; `Err(Unauthenticated)` for an anonymous
    /// caller of a gateway that has principals.
    pub(super) fn caller<'c>(
        &self,
        context: &'c CallContext,
    ) -> Result<Option<&'c Arc<Principal>>> {
        match &context.caller {
            Caller::Principal(p) => Ok(Some(p)),
            Caller::Anonymous if self.inner.security.is_open() => Ok(None),
            Caller::Anonymous => Err(crate::security::no_credentials()),
        }
    }

    /// Resolves the caller, routes the call to its engine, checks the
    /// caller may use it, and completes its options with the server's
    /// defaults and limits and the caller's.
    pub(super) fn route(
        &self,
        context: &CallContext,
        dialect: &str,
        target: Option<&str>,
        options: ExecuteOptions,
        shape: Shape,
    ) -> Result<Routed> {
        let principal = self.caller(context)?.cloned();
        let live = self.inner.live.load();
        let (dialect, engine) = live.router.route(dialect, target)?;
        let engine = Arc::clone(engine);
        Self::admit(context, principal, &live, dialect, engine, options, shape)
    }

    /// The route's checks and admissions once the engine is known: the
    /// caller's grant, the options completed, the drain and in-flight
    /// bounds, the caller's limiter. Every call takes them, whatever found
    /// its engine.
    pub(super) fn admit(
        context: &CallContext,
        principal: Option<Arc<Principal>>,
        live: &super::Live,
        dialect: Dialect,
        engine: Arc<EngineEntry>,
        mut options: ExecuteOptions,
        shape: Shape,
    ) -> Result<Routed> {
        let asked_read_only = options.read_only;
        if let Some(p) = &principal {
            p.grant.check_engine(&p.name, engine.name(), dialect)?;
            p.grant
                .restrict(&mut options.read_only, &mut options.restricted);
        }
        let limits = &live.limits;
        options.timeout = Some(context.timeout(options.timeout, limits.default_timeout));
        match shape {
            Shape::Whole => {
                let own = principal.as_ref().map(|p| &p.limiter);
                let max_rows = own
                    .and_then(|l| l.max_rows)
                    .map_or(limits.max_rows, |r| r.min(limits.max_rows));
                let max_bytes = own
                    .and_then(|l| l.max_bytes)
                    .map_or(limits.max_response_bytes, |b| {
                        b.min(limits.max_response_bytes)
                    });
                let rows = options.max_rows.unwrap_or(limits.default_max_rows);
                options.max_rows = Some(rows.min(max_rows));
                options.max_bytes = Some(options.max_bytes.map_or(max_bytes, |b| b.min(max_bytes)));
            }
            Shape::Stream => {
                let batch = options.batch_size.unwrap_or(limits.stream_batch_rows);
                options.batch_size = Some(batch.clamp(1, limits.max_batch_rows));
                options.max_rows = None;
                options.max_bytes = None;
            }
        }
        let tx_id = context.tx_id.clone().filter(|id| !id.is_empty());
        // A drained engine takes no new call; a transaction's part on it
        // finishes (the transaction refuses a new part, see `Tx::execute`).
        if tx_id.is_none() {
            engine.refuse_if_drained()?;
        }
        // Calls past the engine's bound fail now: queued calls hold memory
        // and only wait for the pool's acquire timeout.
        let in_flight =
            engine
                .service
                .enter(engine.max_in_flight)
                .ok_or_else(|| Error::EngineBusy {
                    engine: engine.name().to_owned(),
                    limit: engine.max_in_flight,
                })?;
        let permit = match &principal {
            Some(p) => p.limiter.admit(&p.name)?,
            None => Permit::none(),
        };
        Ok(Routed {
            dialect,
            engine,
            options,
            tx_id,
            principal,
            asked_read_only,
            permit,
            in_flight,
        })
    }

    /// A request routed, its statement encoded.
    pub(super) fn prepare(&self, request: Request, shape: Shape) -> Result<(Routed, Statement)> {
        let Request {
            dialect,
            statement,
            params,
            named,
            target,
            options,
            context,
        } = request;
        let routed = self.route(&context, &dialect, target.as_deref(), options, shape)?;
        let mut statement = Statement {
            text: statement,
            params,
            named,
        };
        Self::ready(&routed, &mut statement)?;
        Ok((routed, statement))
    }

    /// A routed call's statement as it will be sent: its parameters
    /// encoded with the engine's codecs, then checked against the
    /// caller's statement rules (a Redis command is checked as sent).
    pub(super) fn ready(routed: &Routed, statement: &mut Statement) -> Result<()> {
        Self::encode(routed, statement)?;
        routed.check_statement(statement)
    }

    /// Encodes a statement's structured parameters with the engine's codecs.
    fn encode(routed: &Routed, statement: &mut Statement) -> Result<()> {
        match routed.dialect {
            Dialect::Redis => match &routed.engine.bindings {
                Some(bindings) => bindings.encode_params(statement),
                None => Ok(()),
            },
            Dialect::Cypher => {
                if let Some(codec) = routed.engine.properties {
                    codec::properties::encode_nested(codec, &mut statement.named);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Runs `work` on the routed engine under the call's one deadline, and
    /// records its outcome. `bounded`: the driver ends `work` by the
    /// deadline itself ([`StorageDriver::bounds_execute`]), so no backstop
    /// timer is set.
    ///
    /// [`StorageDriver::bounds_execute`]: omnigate_drivers::StorageDriver::bounds_execute
    pub(super) async fn run<T>(
        routed: &Routed,
        work: impl Future<Output = omnigate_drivers::Result<T>>,
        bounded: bool,
    ) -> Result<T> {
        let started = std::time::Instant::now();
        let outcome = if bounded {
            work.await
        } else {
            omnigate_drivers::deadline::within_margin(Some(routed.timeout()), BACKSTOP, work).await
        }
        .map_err(|e| Error::from(routed.refuser()(e)));
        routed
            .engine
            .counters
            .record(routed.dialect, started, &outcome);
        outcome
    }

    /// Runs statements in the call's transaction, one after the other, under
    /// the call's one deadline. A statement cut by the deadline may still
    /// be running on its engine: the transaction can then only roll back.
    pub(super) async fn run_in_tx(
        &self,
        routed: &Routed,
        tx_id: &str,
        statements: &[Statement],
    ) -> Result<Vec<omnigate_drivers::Result<ResultSet>>> {
        let started = std::time::Instant::now();
        let transactions = &self.inner.transactions;
        let (key, mut slot) = self.locked_tx(routed, tx_id).await?;
        let tx = transactions.usable(&key, &mut slot).await?;
        let work = async {
            // A batch fits whole in what the transaction may buffer, or
            // none of it runs.
            if statements.len() > 1
                && let Err(e) = tx
                    .reserve(&transactions.coordinator, &routed.engine, statements)
                    .await
            {
                return Ok(Err(e));
            }
            let mut results = Vec::with_capacity(statements.len());
            for statement in statements {
                let outcome = tx
                    .execute(
                        &transactions.coordinator,
                        &routed.engine,
                        routed.dialect,
                        statement,
                        &routed.options,
                    )
                    .await;
                match outcome {
                    Ok(result) => results.push(Ok(result)),
                    Err(Error::Driver(e)) => results.push(Err(routed.refuser()(e))),
                    Err(other) => return Ok(Err(other)),
                }
            }
            Ok(Ok(results))
        };
        let outcome =
            omnigate_drivers::deadline::within_margin(Some(routed.timeout()), BACKSTOP, work).await;
        let outcome = doomed_if_cut(&mut slot, outcome);
        routed
            .engine
            .counters
            .record(routed.dialect, started, &outcome);
        outcome
    }

    /// Decodes values stored through a codec (they carry its header).
    pub(super) fn decode(dialect: Dialect, result: &mut ResultSet) {
        if Self::stores_codecs(dialect) {
            decode_values(result.rows.values_mut());
        }
    }

    /// A stream whose batches are decoded as they come.
    pub(super) fn decode_stream(dialect: Dialect, mut stream: RowStream) -> RowStream {
        if Self::stores_codecs(dialect) {
            stream.batches = stream
                .batches
                .map_ok(|mut rows| {
                    decode_values(rows.values_mut());
                    rows
                })
                .boxed();
        }
        stream
    }

    fn stores_codecs(dialect: Dialect) -> bool {
        matches!(dialect, Dialect::Redis | Dialect::Cypher)
    }
}

fn decode_values(values: &mut [Value]) {
    for value in values.iter_mut() {
        *value = codec::decode_all(std::mem::replace(value, Value::Null));
    }
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;

/// A call's outcome in a transaction, under its deadline: when the
/// deadline cut it, the statement may still run on its engine, so the
/// transaction is doomed (it can only roll back).
pub(super) fn doomed_if_cut<T>(
    slot: &mut Option<crate::tx::Tx>,
    outcome: std::result::Result<Result<T>, omnigate_drivers::Error>,
) -> Result<T> {
    match outcome {
        Ok(inner) => inner,
        Err(e) => {
            if let Some(tx) = slot.as_mut() {
                tx.doom(format!("a statement was cut by its deadline: {e}"));
            }
            Err(Error::from(e))
        }
    }
}
