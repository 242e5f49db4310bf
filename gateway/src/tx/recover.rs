//! Recovery: finishes what a crashed (or failed) commit left.
//!
//! - A deciding engine's marker is a committed transaction not yet
//!   finished: its prepared parts are committed and its buffered writes
//!   applied (each idempotent), then the marker is marked done.
//! - A transaction without a deciding engine is in the log: with a COMMIT
//!   record it is finished the same way; with only PREPARED it is rolled
//!   back, fenced against a commit still under way (ABORT is recorded only
//!   over a transaction still PREPARED).
//! - A prepared PostgreSQL transaction under the log's prefix that no
//!   marker or record names (and this gateway is not committing) is rolled
//!   back behind a fence: its transaction was never decided (`orphans.rs`).
//!   On a shared log, only once prepared `takeover_after` ago.
//!
//! What cannot be finished now (an engine is down) is tried again at the
//! next pass.

use futures::StreamExt;

use super::coordinator::Coordinator;
use super::log::{InDoubt, PartRecord, Record, TxLog, decode_args, engines_of};
use super::markers::{self, Decider};
use crate::router::Router;

/// How many transactions one recovery pass finishes at once.
const RECOVER_AT_ONCE: usize = 16;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Transactions finished forward (committed).
    pub forward: u64,
    /// Transactions rolled back.
    pub backward: u64,
    /// Prepared transactions no log record knew, rolled back.
    pub orphans: u64,
    /// Transactions left for the next pass.
    pub pending: u64,
}

impl Coordinator {
    /// One recovery pass.
    pub async fn recover(&self, router: &Router) -> Recovered {
        let mut done = Recovered::default();
        let sweep = self.sweep_due();
        for (engine, decider) in self.deciders(router).await.ready {
            // A fence outlives any decider it fenced by far at this age.
            let fence_age = self.takeover_after.max(std::time::Duration::from_secs(600));
            let done_age = super::registry::REMEMBER_ENDED;
            if sweep && let Err(e) = self.step(decider.sweep(fence_age, done_age)).await {
                tracing::debug!(engine = %engine.name(), error = %e, "sweeping old fences and done markers");
            }
            // Page by page; within a page, several transactions finished
            // at once (each step bounded by step_timeout), so a backlog or
            // one slow engine does not stall the others.
            let mut after: Option<String> = None;
            loop {
                let (unfinished, last) = match decider.unfinished_page(after.as_deref()).await {
                    Ok(page) => page,
                    Err(e) => {
                        tracing::warn!(engine = %engine.name(), error = %e, "cannot read the transaction markers");
                        break;
                    }
                };
                let work = unfinished.into_iter().map(|marker| async move {
                    if self.is_committing(&marker.tx) {
                        return None;
                    }
                    // Another gateway's transaction is its to finish (its
                    // own apply is under way) until takeover_after has
                    // passed: it is gone then. Either way every apply is
                    // guarded by its engine's marker, so a race applies once.
                    let ours = marker.owner.as_deref() == Some(self.owner.as_str());
                    if !ours && !older_than(marker.at_ms, self.takeover_after) {
                        return Some(false);
                    }
                    // Claimed before anything is replayed: of two replicas
                    // that read the same page, one finishes it; one whose
                    // commit finished meanwhile (marked done) is left alone.
                    match self.step(decider.claim(&marker, &self.owner)).await {
                        Ok(true) => {}
                        Ok(false) => return None,
                        Err(e) => {
                            tracing::debug!(tx_id = %marker.tx, error = %e, "cannot claim a marker; tried again at the next pass");
                            return Some(false);
                        }
                    }
                    if !self.finish(router, &marker.tx, &marker.parts, true).await {
                        return Some(false);
                    }
                    let mut engines = vec![engine.name().to_owned()];
                    engines.extend(engines_of(&marker.parts));
                    if decider.forget(&marker.tx, &engines).await {
                        let buffered = buffered_markers(router, &marker.tx, &marker.parts);
                        super::after::forget_buffered(&marker.tx, buffered).await;
                    }
                    tracing::info!(tx_id = %marker.tx, decided_by = %engine.name(), engines = %engines_of(&marker.parts).join(", "), "recovered forward: committed");
                    Some(true)
                });
                let outcomes: Vec<Option<bool>> = futures::stream::iter(work)
                    .buffer_unordered(RECOVER_AT_ONCE)
                    .collect()
                    .await;
                for outcome in outcomes.into_iter().flatten() {
                    if outcome {
                        done.forward += 1;
                    } else {
                        done.pending += 1;
                    }
                }
                match last {
                    Some(last) => after = Some(last),
                    None => break,
                }
            }
        }
        let Some(log) = self.existing_log().await else {
            return self.count(done);
        };
        if sweep
            && let super::log::TxLog::Table(table) = log
            && let Err(e) = table.sweep(super::registry::REMEMBER_ENDED).await
        {
            tracing::debug!(error = %e, "sweeping ended transactions from the log table");
        }
        let in_doubt = match log.in_doubt(self.takeover_after).await {
            Ok(in_doubt) => in_doubt,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the transaction log");
                return self.count(done);
            }
        };
        for doubt in &in_doubt {
            if self.is_committing(&doubt.tx) {
                continue;
            }
            match self.settle(router, log, doubt).await {
                Some(true) => {
                    tracing::info!(tx_id = %doubt.tx, engines = %engines_of(&doubt.parts).join(", "), "recovered forward: committed");
                    done.forward += 1;
                }
                Some(false) => {
                    tracing::info!(tx_id = %doubt.tx, engines = %engines_of(&doubt.parts).join(", "), "recovered backward: rolled back");
                    done.backward += 1;
                }
                None => done.pending += 1,
            }
        }
        done.orphans = self.roll_back_orphans(router, log).await;
        self.count(done)
    }

    /// Resolves one unfinished transaction by hand (`tx resolve`): one the
    /// log holds undecided is decided as asked, then finished; one decided
    /// to commit is finished forward now. What it did, in words.
    pub(crate) async fn resolve(
        &self,
        router: &Router,
        tx: &str,
        commit: bool,
    ) -> crate::error::Result<String> {
        let refuse = |why: String| crate::error::Error::TxResolve { why };
        if self.is_committing(tx) {
            return Err(refuse(
                "this gateway is committing it now: wait for its commit".into(),
            ));
        }
        let deciders = self.deciders(router).await;
        if let Some(engine) = deciders.unready.first() {
            return Err(refuse(format!(
                "cannot read {engine}'s markers: it cannot hold them now (see the log)"
            )));
        }
        for (engine, decider) in deciders.ready {
            let found = decider
                .unfinished()
                .await
                .map_err(|e| refuse(format!("cannot read {}'s markers: {e}", engine.name())))?;
            if let Some(marker) = found.into_iter().find(|m| m.tx == tx) {
                if !commit {
                    return Err(refuse("it is decided to commit (its deciding engine committed): it can only be finished forward, with --commit".into()));
                }
                if !self.finish(router, tx, &marker.parts, true).await {
                    return Err(refuse(format!(
                        "an engine of {} cannot be reached now; recovery keeps trying",
                        engines_of(&marker.parts).join(", ")
                    )));
                }
                let mut engines = vec![engine.name().to_owned()];
                engines.extend(engines_of(&marker.parts));
                decider.forget(tx, &engines).await;
                return Ok("committed on every engine".into());
            }
        }
        let log = self
            .existing_log()
            .await
            .ok_or_else(|| crate::error::Error::TxNotFound {
                id: crate::error::short(tx),
            })?;
        let doubts = log
            .in_doubt(std::time::Duration::ZERO)
            .await
            .map_err(|e| crate::error::Error::TxLog { why: e.to_string() })?;
        let Some(doubt) = doubts.into_iter().find(|d| d.tx == tx) else {
            return Err(crate::error::Error::TxNotFound {
                id: crate::error::short(tx),
            });
        };
        if doubt.committed && !commit {
            return Err(refuse(
                "the log records its commit: it can only be finished forward, with --commit".into(),
            ));
        }
        if !doubt.committed {
            let won = log
                .decide(tx, commit, true)
                .await
                .map_err(|e| crate::error::Error::TxLog { why: e.to_string() })?;
            if !won {
                return Err(refuse(
                    "it was decided otherwise meanwhile: list it again".into(),
                ));
            }
        }
        if !self.finish(router, tx, &doubt.parts, commit).await {
            return Err(refuse(format!(
                "decided to {}, but an engine of {} cannot be reached now; recovery keeps trying",
                if commit { "commit" } else { "roll back" },
                engines_of(&doubt.parts).join(", ")
            )));
        }
        if commit {
            let _ = log.append(Record::Done { tx: tx.to_owned() }, false).await;
            Ok("committed on every engine".into())
        } else {
            Ok("rolled back on every engine".into())
        }
    }

    /// How transaction `tx` ended, as the deciding engines' markers and
    /// the log tell (what a Commit retried after a restart hears): `None`
    /// when none of them knows it.
    pub(crate) async fn recorded_outcome(
        &self,
        router: &Router,
        tx: &str,
    ) -> Option<super::Outcome> {
        use super::{Ended, Outcome};
        // Every deciding engine is asked: a decision on one wins over a
        // fence on another (fences are written on every deciding engine).
        let mut fenced = false;
        let deciders = self.deciders(router).await;
        let mut unreadable = !deciders.unready.is_empty();
        for (engine, decider) in deciders.ready {
            match self.step(decider.recorded(engine.name(), tx)).await {
                Ok(Some(markers::Recorded::Committed(engines))) => {
                    return Some(self.committed(tx, engines).await);
                }
                Ok(Some(markers::Recorded::RolledBack)) => fenced = true,
                Ok(None) => {}
                Err(_) => unreadable = true,
            }
        }
        if unreadable {
            // An engine that cannot be read now may hold the decision.
            return Some(Outcome::only(Ended::InDoubt));
        }
        if fenced {
            return Some(Outcome::only(Ended::RolledBack));
        }
        let log = self.existing_log().await?;
        match log.outcome(tx).await {
            Ok(Some((true, parts))) => Some(self.committed(tx, engines_of(&parts)).await),
            Ok(Some((false, _))) => Some(Outcome::only(Ended::RolledBack)),
            // Prepared and undecided: recovery decides it.
            Ok(None) => {
                let doubts = log.in_doubt(std::time::Duration::ZERO).await.ok()?;
                doubts
                    .iter()
                    .any(|d| d.tx == tx)
                    .then(|| Outcome::only(Ended::InDoubt))
            }
            Err(_) => Some(Outcome::only(Ended::InDoubt)),
        }
    }

    /// The outcome of `tx`, committed on `engines`, with the failure after
    /// commit the log records for it, if any. In doubt when the log cannot
    /// be read: whether a write failed is not known then, and OK would
    /// say none did.
    async fn committed(&self, tx: &str, engines: Vec<String>) -> super::Outcome {
        use super::{Ended, Outcome};
        let failure = match self.existing_log().await {
            Some(log) => log.failure(tx).await,
            None => Ok(None),
        };
        match failure {
            Ok(failed_after_commit) => Outcome {
                how: Ended::Committed,
                engines,
                failed_after_commit,
            },
            Err(e) => {
                tracing::warn!(tx_id = %tx, error = %e, "cannot read the log's failures after commit");
                Outcome::only(Ended::InDoubt)
            }
        }
    }

    /// Adds a pass to the counters.
    fn count(&self, done: Recovered) -> Recovered {
        let add = |counter: &std::sync::atomic::AtomicU64, n| {
            counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        };
        add(&self.counters.recovered_forward, done.forward);
        add(&self.counters.recovered_backward, done.backward);
        add(&self.counters.orphans_rolled_back, done.orphans);
        done
    }
}

impl Coordinator {
    /// Finishes one transaction of the log, deciding it first if it is not:
    /// `Some(true)` committed, `Some(false)` rolled back, `None` not possible
    /// now.
    async fn settle(&self, router: &Router, log: &TxLog, doubt: &InDoubt) -> Option<bool> {
        let tx = &doubt.tx;
        if !doubt.committed {
            // ABORT first (presumed abort): once recorded, what is left
            // prepared is an orphan that the orphan pass rolls back.
            match self.log_step(log.decide(tx, false, true)).await {
                Ok(true) => {}
                // Its commit was recorded first: the next pass finishes it.
                Ok(false) => return None,
                Err(e) => {
                    tracing::warn!(tx_id = %tx, error = %e, "cannot record the decision");
                    return None;
                }
            }
            self.finish(router, tx, &doubt.parts, false).await;
            return Some(false);
        }
        // Claimed before anything is replayed (a shared log: of two
        // replicas that read the row, one finishes it).
        match self.log_step(log.claim(tx, self.takeover_after)).await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                tracing::debug!(tx_id = %tx, error = %e, "cannot claim a log row; tried again at the next pass");
                return None;
            }
        }
        if !self.finish(router, tx, &doubt.parts, true).await {
            return None;
        }
        // DONE durable before the buffered markers go (see commit.rs).
        let done = log.append(Record::Done { tx: tx.clone() }, true);
        if self.log_step(done).await.is_ok() {
            let buffered = buffered_markers(router, &doubt.tx, &doubt.parts);
            super::after::forget_buffered(tx, buffered).await;
        }
        Some(true)
    }

    /// Commits (`commit`) or rolls back every part of `tx`; whether all of it
    /// is done.
    async fn finish(&self, router: &Router, tx: &str, parts: &[PartRecord], commit: bool) -> bool {
        let mut complete = true;
        for part in parts {
            let finished = match part {
                PartRecord::Prepared { engine, gid } => match router.by_name(engine) {
                    Ok(entry) => self
                        .step(entry.driver.finish_prepared(gid, commit))
                        .await
                        .is_ok(),
                    Err(_) => false,
                },
                PartRecord::Buffered { .. } | PartRecord::BufferedPerEngine { .. } => {
                    match (part.buffered(), part.marker(tx), commit) {
                        (Some((engine, redo)), Some(marker), true) => {
                            self.replay(router, engine, tx, &marker, redo).await
                        }
                        _ => true,
                    }
                }
            };
            complete &= finished;
        }
        complete
    }

    /// Applies a buffered engine's writes again unless its marker shows they
    /// were applied; `false` when that cannot be done now.
    async fn replay(
        &self,
        router: &Router,
        engine: &str,
        tx: &str,
        marker: &str,
        redo: &[Vec<String>],
    ) -> bool {
        let Ok(entry) = router.by_name(engine) else {
            return false;
        };
        let Some(writes) = redo
            .iter()
            .map(|r| decode_args(r))
            .collect::<Option<Vec<_>>>()
        else {
            tracing::error!(tx_id = %tx, "an unreadable redo entry in the log");
            return false;
        };
        match self.step(entry.driver.replay(marker, &writes)).await {
            Ok(()) => true,
            Err(
                omnigate_drivers::Error::Unavailable(_) | omnigate_drivers::Error::Timeout { .. },
            ) => false,
            // The engine refused the writes (Redis: a write that failed as
            // applied, or EXECABORT; FalkorDB: the query failed): never
            // taken as applied. Recorded as failed after commit, for
            // operators, and finished as far as recovery goes.
            Err(e) => {
                self.failed_after_commit(tx, engine.to_owned(), e.to_string(), redo.to_vec())
                    .await;
                true
            }
        }
    }
}

/// The buffered engines of transaction `tx`'s record, with their first
/// redo entries and their markers, to let go of the markers.
fn buffered_markers(
    router: &Router,
    tx: &str,
    parts: &[PartRecord],
) -> Vec<super::after::BufferedMarker> {
    parts
        .iter()
        .filter_map(|part| {
            let (engine, redo) = part.buffered()?;
            let entry = router.by_name(engine).ok()?;
            let head = redo.first().and_then(|r| decode_args(r));
            let marker = part.marker(tx)?;
            Some((std::sync::Arc::clone(&entry.driver), head, marker))
        })
        .collect()
}

/// Whether a record made at `at_ms` (milliseconds since the epoch) is
/// older than `age`; one whose time is unknown is.
fn older_than(at_ms: Option<i64>, age: std::time::Duration) -> bool {
    let Some(at) = at_ms else {
        return true;
    };
    let elapsed = omnigate_drivers::ts::now_millis().saturating_sub(at);
    u128::try_from(elapsed).unwrap_or(0) >= age.as_millis()
}

/// The engines that can decide a transaction (those whose drivers keep
/// markers), each as a deciding engine.
pub(super) fn deciding_engines(
    router: &Router,
) -> Vec<(&std::sync::Arc<crate::engines::EngineEntry>, Decider<'_>)> {
    router
        .engines()
        .filter_map(|e| Decider::of(e.driver.as_ref()).map(|d| (e, d)))
        .collect()
}
