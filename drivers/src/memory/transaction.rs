//! Transactions on the memory engine, buffered as Redis' MULTI/EXEC:
//! writes are checked when sent (the command exists, its arity, read-only)
//! and queued; reads run at once against committed state; commit applies
//! the queue under one hold of the keyspace, so no other command sees half
//! of it. As in Redis, a command that fails when applied (WRONGTYPE) does
//! not undo the others: the commit reports the first such failure.
//!
//! `ts` writes are buffered too: parsed when sent, each sample given its
//! time then, and written to the series store at commit.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;

use super::commands::{Ctx, lookup};
use super::reply::Reply;
use super::store::Data;
use super::{KIND, Shared, check_redis, on_blocking_pool};
use crate::deadline::Deadline;
use crate::redis_types::{Held, first_conflict, keys_of};
use crate::ts::{Reader, Sample, TsStatement, classify, now_millis};
use crate::{
    BeginOptions, Dialect, DriverTransaction, EngineDescriptor, Error, ExecuteOptions,
    Participation, Redo, Result, ResultSet, Statement, Value, marker_key,
};

/// A memory-engine transaction (see the module docs).
#[derive(Debug)]
pub(super) struct MemoryTransaction {
    pub(super) shared: Arc<Shared>,
    pub(super) descriptor: EngineDescriptor,
    pub(super) options: BeginOptions,
    /// Checked writes, in the order sent.
    pub(super) queued: Vec<Redo>,
    /// The marker applied with the writes, once prepared.
    pub(super) marker: Option<String>,
}

#[async_trait]
impl DriverTransaction for MemoryTransaction {
    fn participation(&self) -> Participation {
        Participation::Buffered
    }

    async fn execute(
        &mut self,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<ResultSet> {
        self.descriptor.accept(dialect, statement)?;
        let options = self.options.apply(options);
        if dialect == Dialect::Ts {
            return self.execute_ts(statement, &options).await;
        }
        let (command, args) = check_redis(statement, &options)?;
        if command.writes {
            self.queued.push(args);
            return Ok(ResultSet::queued());
        }
        // A read sees committed state, as inside MULTI.
        let shared = Arc::clone(&self.shared);
        let statement = statement.clone();
        on_blocking_pool(move || shared.run(dialect, &statement, &options)).await
    }

    /// The vote before a cross-engine commit is decided: as on Redis, every
    /// queued write is checked against what its key holds now (its type,
    /// and for `INCR`-family writes whether its string is an integer) and
    /// what the transaction's earlier writes leave, so a write that would
    /// fail when applied rolls the whole transaction back instead.
    async fn prepare(&mut self, global_id: &str) -> Result<()> {
        self.marker = Some(global_id.to_owned());
        let commands: Vec<Redo> = self
            .queued
            .iter()
            .filter(|args| args[0] != SAMPLE)
            .cloned()
            .collect();
        let mut held = std::collections::HashMap::new();
        {
            let mut keyspace = self.shared.lock();
            let now = Instant::now();
            for args in &commands {
                let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
                for key in keys_of(&name, args) {
                    let found = match keyspace.get(key, now) {
                        None => Held::of("none"),
                        Some(Data::Str(value)) => Held::string(value),
                        Some(other) => Held::of(other.type_name()),
                    };
                    held.entry(key.clone()).or_insert(found);
                }
            }
        }
        first_conflict(&commands, held).map_err(|c| Error::precondition(KIND, c.to_string()))
    }

    fn redo(&self) -> Vec<Redo> {
        self.queued.clone()
    }

    fn has_redo(&self) -> bool {
        !self.queued.is_empty()
    }

    fn redo_head(&self) -> Option<Redo> {
        self.queued.first().cloned()
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.commit_replies().await.map(drop)
    }

    async fn commit_replies(self: Box<Self>) -> Result<Vec<Value>> {
        let MemoryTransaction {
            shared,
            queued,
            marker,
            ..
        } = *self;
        // With a marker, as guarded as a replay: applied once.
        let guarded = marker.is_some();
        on_blocking_pool(move || apply(&shared, &queued, marker.as_deref(), guarded)).await
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        Ok(()) // nothing was applied
    }

    fn engine(&self) -> &'static str {
        KIND
    }
}

impl MemoryTransaction {
    /// A `ts` statement: a write is parsed now, its samples given their
    /// time, and kept; `DELETE` is refused; a query sees committed state.
    async fn execute_ts(
        &mut self,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<ResultSet> {
        let now = now_millis();
        match classify(KIND, statement, options, now, Reader::InProcess)? {
            TsStatement::Write { samples, count } => {
                for sample in samples.unwrap_or_default() {
                    self.queued.push(sample_redo(sample, now));
                }
                Ok(ResultSet {
                    rows_affected: count,
                    ..ResultSet::default()
                })
            }
            TsStatement::Delete { .. } => Err(Error::precondition(
                KIND,
                "DELETE cannot run inside a transaction; send it outside one",
            )),
            TsStatement::Query { .. } => {
                let shared = Arc::clone(&self.shared);
                let (statement, options) = (statement.clone(), options.clone());
                on_blocking_pool(move || shared.run(Dialect::Ts, &statement, &options)).await
            }
        }
    }
}

/// Marks a redo entry that is a time-series sample, not a Redis command
/// (no command starts with a NUL).
const SAMPLE: &[u8] = b"\0ts";

/// A sample as a redo entry: the mark, name, time, value, then labels.
fn sample_redo(sample: Sample, now: i64) -> Redo {
    let mut redo = vec![
        Bytes::from_static(SAMPLE),
        Bytes::from(sample.name),
        Bytes::from(sample.millis.unwrap_or(now).to_string()),
        Bytes::from(sample.value.to_string()),
    ];
    for (name, value) in sample.labels {
        redo.push(Bytes::from(name));
        redo.push(Bytes::from(value));
    }
    redo
}

/// The sample of a redo entry made by [`sample_redo`].
fn redo_sample(redo: &[Bytes]) -> Option<Sample> {
    let text = |b: &Bytes| String::from_utf8(b.to_vec()).ok();
    let [_, name, millis, value, labels @ ..] = redo else {
        return None;
    };
    Some(Sample {
        name: text(name)?,
        millis: Some(text(millis)?.parse().ok()?),
        value: text(value)?.parse().ok()?,
        labels: labels
            .chunks(2)
            .map(|pair| Some((text(pair.first()?)?, text(pair.get(1)?)?)))
            .collect::<Option<_>>()?,
    })
}

/// Applies `writes` under one hold of the keyspace, so no other command
/// sees half of them, with `marker`'s key when given; the Redis writes'
/// replies (bulk strings as bytes). When `replay`, nothing is applied if
/// the marker is there already (and no reply is known). As in Redis, a
/// write that fails when applied (WRONGTYPE) does not undo the others: the
/// first such failure is returned.
pub(super) fn apply(
    shared: &Shared,
    writes: &[Redo],
    marker: Option<&str>,
    replay: bool,
) -> Result<Vec<Value>> {
    // No expiry until the transaction has finished everywhere.
    let marker_write = marker.map(|tx| {
        ["SET".to_owned(), marker_key(tx), "1".to_owned()]
            .map(Bytes::from)
            .to_vec()
    });
    let mut keyspace = shared.lock();
    let deadline = Deadline::none();
    let mut ctx = Ctx {
        ks: &mut keyspace,
        now: Instant::now(),
        deadline: &deadline,
    };
    let command = |args: &[Bytes]| {
        lookup(&args[0]).ok_or_else(|| {
            Error::not_supported(
                format!("command {}", String::from_utf8_lossy(&args[0])),
                KIND,
            )
        })
    };
    if replay && let Some(tx) = marker {
        let probe = [Bytes::from_static(b"EXISTS"), Bytes::from(marker_key(tx))];
        if command(&probe)?
            .run(&mut ctx, &probe)
            .map_err(Error::from)?
            == Reply::Int(1)
        {
            return Ok(Vec::new());
        }
    }
    let mut first_failure = None;
    let mut samples = Vec::new();
    let mut replies = Vec::with_capacity(writes.len());
    for args in writes {
        if args[0] == SAMPLE {
            samples.push(redo_sample(args).ok_or_else(|| {
                Error::Internal(crate::EngineError::new(KIND, None, "an unreadable sample"))
            })?);
            continue;
        }
        match command(args)?.run(&mut ctx, args) {
            Ok(reply) => replies.push(reply.into_value(true)),
            Err(e) => {
                first_failure.get_or_insert(Error::from(e));
            }
        }
    }
    if let Some(args) = &marker_write
        && let Err(e) = command(args)?.run(&mut ctx, args)
    {
        first_failure.get_or_insert(Error::from(e));
    }
    if !samples.is_empty() {
        let now = now_millis();
        shared.series_lock().write(samples, now);
    }
    // The others stay applied, as in Redis.
    first_failure.map_or(Ok(replies), |e: Error| {
        let (code, message) = match e.engine_error() {
            Some(report) => (report.code.clone(), report.message.clone()),
            None => (None, e.to_string()),
        };
        Err(Error::AppliedInPart(crate::EngineError::new(
            KIND,
            code.as_deref(),
            format!("{message}; the others were applied"),
        )))
    })
}
