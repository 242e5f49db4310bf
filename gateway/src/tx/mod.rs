//! Transactions: the open ones by id, each with its part on every engine it
//! touched (a [`DriverTransaction`] session per engine), idle expiry, and
//! the memory of how the recently ended ones ended, so a late caller hears
//! "committed" or "expired" rather than "unknown".
//!
//! A transaction on one engine commits natively; one on several commits
//! through the coordinator (`coordinator.rs`: prepare, the log, the
//! decision, recovery in `recover.rs`).

mod after;
mod commit;
mod coordinator;
mod counters;
pub mod failpoint;
mod file_log;
mod forgetter;
pub mod log;
mod markers;
mod operators;
mod orphans;
mod recover;
mod registry;
mod table_log;

use std::sync::Arc;
use std::time::{Duration, Instant};

use omnigate_drivers::{
    BeginOptions, Dialect, DriverTransaction, ExecuteOptions, Participation, ResultSet, Statement,
};

use crate::engines::EngineEntry;
pub use crate::error::Ended;
use crate::error::{Error, Result};

pub use coordinator::{Coordinator, LogSource};
pub use counters::TxCounters;
pub use operators::{TxInfo, TxState};
pub use recover::Recovered;
pub(crate) use registry::Taken;
pub use registry::{Committed, Outcome, Transactions};

/// How a transaction is begun.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxOptions {
    /// Rolled back when idle this long (`None`: the server's default).
    pub idle_timeout: Option<Duration>,
    /// Refuse writes on every engine.
    pub read_only: bool,
    /// The caller may never write (its grant): engines with a read-only
    /// login run the transaction under it. Set with `read_only`.
    pub restricted: bool,
}

/// What one transaction may send to the engines that keep its writes in
/// the gateway until commit ([`Participation::Buffered`]: Redis, memory,
/// FalkorDB, VictoriaMetrics): statements and their bytes (text and
/// parameters), reads among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferLimit {
    /// Statements at most.
    pub statements: u64,
    /// Bytes at most.
    pub bytes: u64,
}

impl BufferLimit {
    /// This limit, lowered by a principal's own (`None`: not lowered).
    pub fn lowered(self, statements: Option<u64>, bytes: Option<u64>) -> BufferLimit {
        BufferLimit {
            statements: statements.map_or(self.statements, |s| s.min(self.statements)),
            bytes: bytes.map_or(self.bytes, |b| b.min(self.bytes)),
        }
    }
}

/// What `statement` counts for in what a transaction buffers: its text,
/// its positional and named parameters.
fn buffered_size(statement: &Statement) -> u64 {
    let named: u64 = statement
        .named
        .iter()
        .map(|(name, value)| name.len() as u64 + value.size_estimate())
        .sum();
    statement.text.len() as u64 + omnigate_drivers::row_size(&statement.params) + named
}

/// Why a transaction can no longer commit.
#[derive(Debug, Clone)]
enum Doom {
    /// A statement on this part has not answered yet: held while it runs
    /// (see [`Tx::hold_doomed`]), said in full only when read.
    Cut(usize),
    /// Said in full.
    Why(String),
}

/// One engine's part of a transaction.
#[derive(Debug)]
struct Part {
    engine: String,
    /// The engine, for what follows its commit (the deciding engine's
    /// marker is marked done once every part has finished).
    driver: Arc<dyn omnigate_drivers::StorageDriver>,
    session: Box<dyn DriverTransaction>,
}

/// An open transaction.
#[derive(Debug)]
pub(crate) struct Tx {
    options: BeginOptions,
    /// When it began.
    begun: Instant,
    idle_timeout: Duration,
    last_used: Instant,
    parts: Vec<Part>,
    /// Why the transaction can no longer commit: a statement failed on an
    /// engine that aborts its transaction then (PostgreSQL).
    doomed: Option<Doom>,
    /// What it may buffer, and what it has: statements and bytes.
    limit: BufferLimit,
    buffered: (u64, u64),
}

impl Tx {
    fn new(options: &TxOptions, default_idle: Duration, limit: BufferLimit) -> Self {
        Tx {
            options: BeginOptions {
                read_only: options.read_only,
                restricted: options.restricted,
                timeout: None,
            },
            idle_timeout: options.idle_timeout.unwrap_or(default_idle),
            begun: Instant::now(),
            last_used: Instant::now(),
            parts: Vec::new(),
            doomed: None,
            limit,
            buffered: (0, 0),
        }
    }

    /// Whether it has been idle past its timeout at `now`.
    fn idle_at(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_used) > self.idle_timeout
    }

    /// Runs `statement` on `engine`'s part, beginning it there first.
    pub(crate) async fn execute(
        &mut self,
        coordinator: &Coordinator,
        engine: &EngineEntry,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<ResultSet> {
        let (index, options) = self.enter(coordinator, engine, options).await?;
        let size = self.buffer(index, statement)?;
        let cut = self.hold_doomed(index);
        let outcome = self.parts[index]
            .session
            .execute(dialect, statement, &options)
            .await;
        self.leave(index, cut, outcome.as_ref().err(), size);
        outcome.map_err(Error::from)
    }

    /// Runs `statement` on `engine`'s part and returns its rows as they
    /// come (on PostgreSQL; engines that buffer answer it whole), beginning
    /// the part there first. The transaction's next call on the part waits
    /// for the stream to end or be dropped.
    pub(crate) async fn execute_stream(
        &mut self,
        coordinator: &Coordinator,
        engine: &EngineEntry,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<omnigate_drivers::RowStream> {
        let (index, options) = self.enter(coordinator, engine, options).await?;
        let size = self.buffer(index, statement)?;
        let cut = self.hold_doomed(index);
        let outcome = self.parts[index]
            .session
            .execute_stream(dialect, statement, &options)
            .await;
        self.leave(index, cut, outcome.as_ref().err(), size);
        outcome.map_err(Error::from)
    }

    /// What `statement` takes and returns as `engine`'s part sees it;
    /// `None` without a live part there (a buffered engine's connection
    /// holds nothing of the transaction: it is described outside). As a
    /// statement would, a describe that fails on PostgreSQL (which aborts
    /// its block) or is cut before it answers dooms the transaction.
    pub(crate) async fn describe(
        &mut self,
        engine: &str,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Option<Result<omnigate_drivers::StatementShape>> {
        let index = self.parts.iter().position(|p| p.engine == engine)?;
        if self.parts[index].session.participation() == Participation::Buffered {
            return None;
        }
        let options = self.options.apply(options);
        self.last_used = Instant::now();
        let cut = self.hold_doomed(index);
        let outcome = self.parts[index]
            .session
            .describe_statement(dialect, statement, &options)
            .await;
        self.leave(index, cut, outcome.as_ref().err(), 0);
        Some(outcome.map_err(Error::from))
    }

    /// The part of `engine` (begun now if it was not) and the options a
    /// statement runs with in it.
    async fn enter(
        &mut self,
        coordinator: &Coordinator,
        engine: &EngineEntry,
        options: &ExecuteOptions,
    ) -> Result<(usize, ExecuteOptions)> {
        self.last_used = Instant::now();
        let found = self.parts.iter().position(|p| p.engine == engine.name());
        let index = match found {
            Some(index) => index,
            // A drained engine takes no new part; one already begun
            // finishes.
            None => {
                engine.refuse_if_drained()?;
                self.join(coordinator, engine).await?
            }
        };
        Ok((index, self.options.apply(options)))
    }

    /// The bytes `statement` adds to what the transaction buffers on part
    /// `index` (0 on a part that buffers nothing), or
    /// `Err(TxBufferFull)` when it would pass the transaction's limit: the
    /// statement is not run, and the transaction stays usable.
    fn buffer(&self, index: usize, statement: &Statement) -> Result<u64> {
        if self.parts[index].session.participation() != Participation::Buffered {
            return Ok(0);
        }
        let size = buffered_size(statement);
        self.room_for(1, size)?;
        Ok(size)
    }

    /// `Err(TxBufferFull)` unless `count` more statements of `size` bytes
    /// fit in what the transaction may buffer.
    fn room_for(&self, count: u64, size: u64) -> Result<()> {
        let (statements, bytes) = self.buffered;
        if statements.saturating_add(count) > self.limit.statements
            || bytes.saturating_add(size) > self.limit.bytes
        {
            return Err(Error::TxBufferFull {
                statements: self.limit.statements,
                bytes: self.limit.bytes,
            });
        }
        Ok(())
    }

    /// Checks, before any of them runs, that all of `statements` (a
    /// batch) fit in what the transaction may buffer on `engine`'s part
    /// (begun now if it was not): a batch is refused whole, never kept in
    /// part, so a client that commits after the refusal and sends the
    /// batch again applies nothing twice.
    pub(crate) async fn reserve(
        &mut self,
        coordinator: &Coordinator,
        engine: &EngineEntry,
        statements: &[Statement],
    ) -> Result<()> {
        let (index, _) = self
            .enter(coordinator, engine, &ExecuteOptions::default())
            .await?;
        if self.parts[index].session.participation() != Participation::Buffered {
            return Ok(());
        }
        let size = statements.iter().map(buffered_size).sum();
        self.room_for(statements.len() as u64, size)
    }

    /// Dooms the transaction until the statement on part `index` has
    /// answered (see [`Tx::leave`]): a call dropped meanwhile (its caller
    /// went away, its deadline passed) leaves a statement that may still
    /// run on the engine, and the transaction can then only roll back.
    /// Whether it was doomed here. Nothing is allocated: the reason is
    /// said when it is read.
    fn hold_doomed(&mut self, index: usize) -> bool {
        let cut = self.doomed.is_none();
        if cut {
            self.doomed = Some(Doom::Cut(index));
        }
        cut
    }

    /// Why the transaction can no longer commit, if it cannot.
    fn doomed_why(&self) -> Option<String> {
        Some(match self.doomed.as_ref()? {
            Doom::Cut(index) => format!(
                "a statement on engine {} was cut before it answered (it may still have run)",
                self.parts.get(*index).map_or("?", |p| p.engine.as_str())
            ),
            Doom::Why(why) => why.clone(),
        })
    }

    /// After the statement on part `index` answered (`failed`, if it did
    /// with an error; `size` bytes buffered if it did not): lifts the hold
    /// of [`Tx::hold_doomed`], counts what was buffered, and dooms the
    /// transaction if the failure leaves it unable to commit.
    fn leave(
        &mut self,
        index: usize,
        cut: bool,
        failed: Option<&omnigate_drivers::Error>,
        size: u64,
    ) {
        if cut {
            self.doomed = None;
        }
        if failed.is_none() && self.parts[index].session.participation() == Participation::Buffered
        {
            self.buffered.0 += 1;
            self.buffered.1 = self.buffered.1.saturating_add(size);
        }
        let engine_name = &self.parts[index].engine;
        let why = match failed {
            // PostgreSQL aborts its transaction on any failed statement.
            Some(e)
                if self.parts[index].session.participation()
                    == (Participation::Live { preparable: true }) =>
            {
                Some(format!("a statement failed on engine {engine_name}: {e}"))
            }
            // A statement that timed out may still run on its engine.
            Some(e @ omnigate_drivers::Error::Timeout { .. }) => Some(format!(
                "a statement timed out on engine {engine_name} and may still have run: {e}"
            )),
            _ => None,
        };
        if let Some(why) = why {
            self.doom(why);
        }
        self.last_used = Instant::now();
    }

    /// Begins the transaction on `engine`; its index among the parts. At
    /// most one part may be live without a prepare step: its commit is the
    /// decision of a cross-engine commit.
    async fn join(&mut self, coordinator: &Coordinator, engine: &EngineEntry) -> Result<usize> {
        // An engine that may decide has its markers made ready before its
        // part begins: on a connection of their own they would otherwise
        // wait on locks the part takes (a database's write lock).
        if let Some(decider) = markers::Decider::of(engine.driver.as_ref()) {
            // Best made now; a failure is the commit's to report, should
            // this engine decide (see `decide_in`).
            let _ = coordinator.ready_markers(engine.name(), decider).await;
        }
        let session = engine.driver.begin(&self.options).await?;
        let deciding = |p: Participation| p == Participation::Live { preparable: false };
        let first = self
            .parts
            .iter()
            .find(|p| deciding(p.session.participation()))
            .map(|p| p.engine.clone());
        if deciding(session.participation())
            && let Some(first) = first
        {
            let _ = session.rollback().await;
            return Err(Error::TxTwoDeciders {
                first,
                second: engine.name().to_owned(),
            });
        }
        self.parts.push(Part {
            engine: engine.name().to_owned(),
            driver: Arc::clone(&engine.driver),
            session,
        });
        Ok(self.parts.len() - 1)
    }

    /// Makes the transaction roll back at commit, saying why.
    pub(crate) fn doom(&mut self, why: String) {
        if !matches!(self.doomed, Some(Doom::Why(_))) {
            self.doomed = Some(Doom::Why(why));
        }
    }

    /// Commits every part, all or nothing; the engines that took part and
    /// the buffered writes' replies. One part commits natively; several go
    /// through the coordinator.
    pub(crate) async fn commit(self, id: &str, coordinator: &Coordinator) -> Result<Committed> {
        if let Some(why) = self.doomed_why() {
            self.rollback().await;
            return Err(Error::TxAborted { why });
        }
        let mut parts = self.parts;
        // A part with nothing to apply (a read-only transaction, a buffered
        // engine that was only read) takes no part in the commit protocol.
        let (idle, active): (Vec<Part>, Vec<Part>) = parts.into_iter().partition(|p| {
            self.options.read_only
                || (p.session.participation() == Participation::Buffered && !p.session.has_redo())
        });
        let mut engines: Vec<String> = idle.iter().map(|p| p.engine.clone()).collect();
        for part in idle {
            part.session.commit().await?;
        }
        parts = active;
        let mut committed = match parts.len() {
            0 => Committed::default(),
            1 => {
                let part = parts.remove(0);
                // Bounded as a commit step is: a hung COMMIT must not leave
                // the transaction ending for ever (it is in doubt then).
                match coordinator.step(part.session.commit_replies()).await {
                    Ok(replies) => Committed {
                        engines: vec![part.engine.clone()],
                        replies: vec![(part.engine, replies)],
                    },
                    // Redis has no rollback: committed in part, said so
                    // (never "rolled back": a client would run it again).
                    Err(omnigate_drivers::Error::AppliedInPart(e)) => {
                        return Err(Error::TxFailedAfterCommit {
                            engine: part.engine,
                            why: e.message,
                        });
                    }
                    // The engine answered: it did not commit.
                    Err(
                        e @ (omnigate_drivers::Error::Conflict(_)
                        | omnigate_drivers::Error::Precondition(_)
                        | omnigate_drivers::Error::ConstraintViolation(_)
                        | omnigate_drivers::Error::InvalidStatement(_)
                        | omnigate_drivers::Error::PermissionDenied(_)),
                    ) => return Err(Error::from(e)),
                    // The link broke around the commit: it may have
                    // happened, and only the engine knows.
                    Err(e) => {
                        return Err(Error::TxInDoubt {
                            why: format!(
                                "engine {}'s COMMIT did not answer ({e}); it decided the \
                                 transaction alone: read the data to see which",
                                part.engine
                            ),
                        });
                    }
                }
            }
            _ => coordinator.commit(id, parts).await?,
        };
        committed.engines.append(&mut engines);
        Ok(committed)
    }

    /// Rolls every part back. A part that cannot roll back is rolled back
    /// by its engine when its connection goes (its error is logged).
    pub(crate) async fn rollback(self) {
        for part in self.parts {
            if let Err(e) = part.session.rollback().await {
                tracing::warn!(engine = %part.engine, error = %e, "rollback failed");
            }
        }
    }
}

/// A handle to an open transaction, shared by the calls that use it (they
/// take turns: a transaction runs one statement at a time).
pub(crate) type TxHandle = Arc<tokio::sync::Mutex<Option<Tx>>>;
