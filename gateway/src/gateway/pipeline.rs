//! The one path every call takes, each step written once: resolve the
//! caller → route (dialect and target to an engine entry) → encode codecs
//! → run under one deadline → decode → record the outcome. The statement
//! checks are the driver's own (they hold for a library user of a driver
//! alone, so the pipeline does not run them a second time), and schema
//! changes are noted by the driver that runs them (its schema epoch keys
//! the metadata cache).

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use omnigate_drivers::{Dialect, ExecuteOptions, ResultSet, RowStream, Statement, Value};

use super::{CallContext, Gateway};
use crate::codec;
use crate::engines::EngineEntry;
use crate::error::{Error, Result};

/// How long past its timeout a call is cut when its driver has not
/// stopped it: the drivers cancel on the engine at the timeout, so this
/// only bounds one that cannot.
const BACKSTOP: Duration = Duration::from_secs(1);

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
    pub(super) engine: Arc<EngineEntry>,
    pub(super) options: ExecuteOptions,
}

impl Routed {
    /// The engine's name.
    pub(super) fn engine_name(&self) -> String {
        self.engine.name().to_owned()
    }

    /// The call's one timeout (set by [`Gateway::route`]).
    fn timeout(&self) -> Duration {
        self.options.timeout.unwrap_or_default()
    }
}

impl Gateway {
    /// Resolves the caller, routes the call to its engine and completes its
    /// options with the server's defaults and limits.
    pub(super) fn route(
        &self,
        context: &CallContext,
        dialect: &str,
        target: Option<&str>,
        mut options: ExecuteOptions,
        shape: Shape,
    ) -> Result<Routed> {
        if context.tx_id.as_deref().is_some_and(|id| !id.is_empty()) {
            return Err(Error::TransactionsUnavailable);
        }
        let (dialect, engine) = self.inner.router.route(dialect, target)?;
        let limits = &self.inner.limits;
        options.timeout = Some(context.timeout(options.timeout, limits.default_timeout));
        match shape {
            Shape::Whole => {
                let rows = options.max_rows.unwrap_or(limits.default_max_rows);
                options.max_rows = Some(rows.min(limits.max_rows));
                options.max_bytes =
                    Some(options.max_bytes.map_or(limits.max_response_bytes, |b| {
                        b.min(limits.max_response_bytes)
                    }));
            }
            Shape::Stream => {
                let batch = options.batch_size.unwrap_or(limits.stream_batch_rows);
                options.batch_size = Some(batch.clamp(1, limits.max_batch_rows));
                options.max_rows = None;
                options.max_bytes = None;
            }
        }
        Ok(Routed {
            dialect,
            engine: Arc::clone(engine),
            options,
        })
    }

    /// Encodes a statement's structured parameters with the engine's codecs.
    pub(super) fn encode(routed: &Routed, statement: &mut Statement) -> Result<()> {
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
    /// records its outcome.
    pub(super) async fn run<T>(
        routed: &Routed,
        work: impl Future<Output = omnigate_drivers::Result<T>>,
    ) -> Result<T> {
        let outcome =
            omnigate_drivers::deadline::within_margin(Some(routed.timeout()), BACKSTOP, work)
                .await
                .map_err(Error::from);
        routed.engine.counters.record(&outcome);
        outcome
    }

    /// Decodes values stored through a codec (they carry its header).
    pub(super) fn decode(dialect: Dialect, result: &mut ResultSet) {
        if Self::stores_codecs(dialect) {
            for row in &mut result.rows {
                decode_row(row);
            }
        }
    }

    /// A stream whose batches are decoded as they come.
    pub(super) fn decode_stream(dialect: Dialect, mut stream: RowStream) -> RowStream {
        if Self::stores_codecs(dialect) {
            stream.batches = stream
                .batches
                .map_ok(|mut rows| {
                    rows.iter_mut().for_each(|row| decode_row(row));
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

fn decode_row(row: &mut [Value]) {
    for value in row.iter_mut() {
        *value = codec::decode_all(std::mem::replace(value, Value::Null));
    }
}
