//! Recovery: finishes what a crashed (or failed) commit left. A
//! transaction with a COMMIT record is committed everywhere. One with only
//! PREPARED is decided first, fenced against a commit still under way
//! elsewhere: with a deciding engine, by its marker (present: commit;
//! absent: a tombstone is written in its place, which a late commit of the
//! marker fails on, and it rolls back); without one, by the log (ABORT is
//! recorded only over a row still PREPARED). Prepared PostgreSQL
//! transactions under the log's prefix that no record names (and this
//! gateway is not committing) are rolled back once old enough. What cannot
//! be finished now (an engine is down) is tried again at the next pass.

use omnigate_drivers::{Dialect, ExecuteOptions, StorageDriver, Value};

use super::coordinator::{Coordinator, decider_probe, decider_tombstone};
use super::log::{InDoubt, PartRecord, Record, TxLog, decode_args};
use crate::router::Router;

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
        let Some(log) = self.existing_log().await else {
            return done;
        };
        let in_doubt = match log.in_doubt(self.takeover_after).await {
            Ok(in_doubt) => in_doubt,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the transaction log");
                return done;
            }
        };
        for doubt in &in_doubt {
            if self.is_committing(&doubt.tx) {
                continue;
            }
            match settle(router, log, doubt).await {
                Some(true) => {
                    tracing::info!(tx_id = %doubt.tx, "recovered forward: committed");
                    done.forward += 1;
                }
                Some(false) => {
                    tracing::info!(tx_id = %doubt.tx, "recovered backward: rolled back");
                    done.backward += 1;
                }
                None => done.pending += 1,
            }
        }
        done.orphans = self.roll_back_orphans(router, log).await;
        let add = |counter: &std::sync::atomic::AtomicU64, n| {
            counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        };
        add(&self.counters.recovered_forward, done.forward);
        add(&self.counters.recovered_backward, done.backward);
        add(&self.counters.orphans_rolled_back, done.orphans);
        done
    }

    /// Rolls back the prepared transactions under the log's prefix that no
    /// record names and this gateway is not committing. One whose commit
    /// ends between the first reading of the log and this check has
    /// written PREPARED by then (or rolled back): the log is read after the
    /// engine is. On a shared log, a replica may be between its PREPARE and
    /// its PREPARED record: only transactions prepared `takeover_after`
    /// ago are taken.
    async fn roll_back_orphans(&self, router: &Router, log: &TxLog) -> u64 {
        let prefix = log.gid_prefix();
        let age = log.orphan_age(self.takeover_after);
        let mut rolled_back = 0;
        for engine in router.engines() {
            let Ok(gids) = engine.driver.prepared_ids(&prefix, age).await else {
                continue;
            };
            let candidates: Vec<String> = gids
                .into_iter()
                .filter(|g| !self.is_committing_gid(&prefix, g))
                .collect();
            if candidates.is_empty() {
                continue;
            }
            // Every record, this gateway's or not: a replica's transaction
            // is not an orphan, only not yet this gateway's to finish.
            let Ok(fresh) = log.in_doubt(std::time::Duration::ZERO).await else {
                continue;
            };
            let recorded = |gid: &str| {
                fresh
                    .iter()
                    .flat_map(|d| &d.parts)
                    .any(|p| matches!(p, PartRecord::Prepared { gid: known, .. } if known == gid))
            };
            for gid in candidates.into_iter().filter(|g| !recorded(g)) {
                if matches!(engine.driver.finish_prepared(&gid, false).await, Ok(true)) {
                    tracing::info!(gid = %gid, "rolled back a prepared transaction the log never recorded");
                    rolled_back += 1;
                }
            }
        }
        rolled_back
    }
}

/// Decides one transaction if it is not decided, then finishes it:
/// `Some(true)` committed, `Some(false)` rolled back, `None` not possible
/// now.
async fn settle(router: &Router, log: &TxLog, doubt: &InDoubt) -> Option<bool> {
    let tx = &doubt.tx;
    let commit = if doubt.committed {
        true
    } else {
        let decider = doubt.parts.iter().find_map(|p| match p {
            PartRecord::Decider { engine } => Some(engine),
            _ => None,
        });
        let commit = match decider {
            Some(engine) => decider_outcome(router, engine, tx).await?,
            None => false,
        };
        // ABORT first (presumed abort): once recorded, what is left
        // prepared is an orphan that a later pass rolls back.
        match log.decide(tx, commit, true).await {
            Ok(true) => {}
            // A replica recorded its commit first: the next pass finishes it.
            Ok(false) if !commit => return None,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(tx_id = %tx, error = %e, "cannot record the decision");
                return None;
            }
        }
        commit
    };
    let mut complete = true;
    for part in &doubt.parts {
        let finished = match part {
            PartRecord::Prepared { engine, gid } => match router.by_name(engine) {
                Ok(entry) => entry.driver.finish_prepared(gid, commit).await.is_ok(),
                Err(_) => false,
            },
            PartRecord::Decider { .. } => true,
            PartRecord::Buffered { engine, redo } if commit => {
                replay(router, engine, tx, redo).await
            }
            PartRecord::Buffered { .. } => true,
        };
        complete &= finished;
    }
    if !commit {
        return Some(false);
    }
    if !complete {
        return None;
    }
    let _ = log.append(Record::Done { tx: tx.clone() }, false).await;
    Some(true)
}

/// Whether the deciding engine committed `tx` (`None`: cannot tell now).
/// Without its marker, a tombstone takes the marker's key first: a commit
/// still under way then fails on it, and the rollback stands.
async fn decider_outcome(router: &Router, engine: &str, tx: &str) -> Option<bool> {
    let entry = router.by_name(engine).ok()?;
    let driver = entry.driver.as_ref();
    let dialect = *driver.descriptor().dialects.first()?;
    if let Some(committed) = read_marker(driver, dialect, tx).await? {
        return Some(committed);
    }
    let tombstone = decider_tombstone(dialect, tx);
    if let Err(e) = driver
        .execute(dialect, &tombstone, &ExecuteOptions::default())
        .await
    {
        // The commit's marker took the key first, or the engine is down:
        // the marker says which.
        tracing::debug!(tx_id = %tx, error = %e, "the tombstone was not written");
    }
    // Still none: there is no marker table, so nothing committed through
    // it (and nothing can: the commit's marker needs the table too).
    Some(read_marker(driver, dialect, tx).await?.unwrap_or(false))
}

/// `tx`'s marker: `Some(None)` none, `Some(Some(committed))` one, `None`
/// cannot tell now.
async fn read_marker(
    driver: &dyn StorageDriver,
    dialect: Dialect,
    tx: &str,
) -> Option<Option<bool>> {
    match driver
        .execute(
            dialect,
            &decider_probe(dialect, tx),
            &ExecuteOptions::default(),
        )
        .await
    {
        Ok(result) => Some(match result.rows.first().and_then(|row| row.first()) {
            None => None,
            Some(Value::Bool(aborted)) => Some(!aborted),
            Some(Value::Int(aborted)) => Some(*aborted == 0),
            Some(_) => Some(true),
        }),
        // No marker table yet: nothing ever committed through it.
        Err(omnigate_drivers::Error::NotFound(_)) => Some(None),
        Err(e) => {
            tracing::warn!(tx_id = %tx, error = %e, "cannot read the decision marker");
            None
        }
    }
}

/// Applies a buffered engine's writes again unless its marker shows they
/// were applied; `false` when that cannot be done now.
async fn replay(router: &Router, engine: &str, tx: &str, redo: &[Vec<String>]) -> bool {
    let Ok(entry) = router.by_name(engine) else {
        return false;
    };
    let Some(redo) = redo
        .iter()
        .map(|r| decode_args(r))
        .collect::<Option<Vec<_>>>()
    else {
        tracing::error!(tx_id = %tx, "an unreadable redo entry in the log");
        return false;
    };
    match entry.driver.replay(tx, &redo).await {
        Ok(()) => true,
        Err(omnigate_drivers::Error::Unavailable(_) | omnigate_drivers::Error::Timeout { .. }) => {
            false
        }
        // Applied, with a write that failed (Redis has no rollback).
        Err(e) => {
            tracing::error!(tx_id = %tx, engine = %engine, error = %e, "transaction failed after commit, on replay");
            true
        }
    }
}
