//! Recovery: finishes what a crashed (or failed) commit left. A
//! transaction with a COMMIT record is committed everywhere; one with only
//! PREPARED is decided by its deciding engine's marker (present: commit;
//! absent, or no deciding engine: roll back); prepared PostgreSQL
//! transactions under this log's prefix that the log never recorded (and
//! this gateway is not committing now) are rolled back. What cannot be finished now (an engine is down) is tried
//! again at the next pass.

use omnigate_drivers::{ExecuteOptions, Value};

use super::coordinator::{Coordinator, decider_probe};
use super::log::{InDoubt, PartRecord, Record, decode_args};
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
        let in_doubt = match log.in_doubt() {
            Ok(in_doubt) => in_doubt,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the transaction log");
                return done;
            }
        };
        let mut known_gids = Vec::new();
        for doubt in &in_doubt {
            known_gids.extend(doubt.parts.iter().filter_map(|p| match p {
                PartRecord::Prepared { gid, .. } => Some(gid.clone()),
                _ => None,
            }));
            if self.is_committing(&doubt.tx) {
                continue;
            }
            match finish(router, doubt).await {
                Some(true) => {
                    if !doubt.committed {
                        let _ = log
                            .append(Record::Commit {
                                tx: doubt.tx.clone(),
                            })
                            .await;
                    }
                    let _ = log
                        .append(Record::Done {
                            tx: doubt.tx.clone(),
                        })
                        .await;
                    tracing::info!(tx_id = %doubt.tx, "recovered forward: committed");
                    done.forward += 1;
                }
                Some(false) => {
                    let _ = log
                        .append(Record::Abort {
                            tx: doubt.tx.clone(),
                        })
                        .await;
                    tracing::info!(tx_id = %doubt.tx, "recovered backward: rolled back");
                    done.backward += 1;
                }
                None => done.pending += 1,
            }
        }
        // A prepared transaction is an orphan when no record names it and
        // this gateway is not committing it. One whose commit ends between
        // the first reading of the log and this check has written PREPARED
        // by then (or rolled back): the log is read again before any
        // orphan is rolled back.
        let prefix = log.gid_prefix();
        for engine in router.engines() {
            let Ok(gids) = engine.driver.prepared_ids(&prefix).await else {
                continue;
            };
            let candidates: Vec<String> = gids
                .into_iter()
                .filter(|g| !known_gids.contains(g) && !self.is_committing_gid(&prefix, g))
                .collect();
            if candidates.is_empty() {
                continue;
            }
            let Ok(fresh) = log.in_doubt() else {
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
                    done.orphans += 1;
                }
            }
        }
        let add = |counter: &std::sync::atomic::AtomicU64, n| {
            counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        };
        add(&self.counters.recovered_forward, done.forward);
        add(&self.counters.recovered_backward, done.backward);
        add(&self.counters.orphans_rolled_back, done.orphans);
        done
    }
}

/// Finishes one transaction: `Some(true)` committed, `Some(false)` rolled
/// back, `None` not possible now.
async fn finish(router: &Router, doubt: &InDoubt) -> Option<bool> {
    let commit = if doubt.committed {
        true
    } else {
        match doubt.parts.iter().find_map(|p| match p {
            PartRecord::Decider { engine } => Some(engine),
            _ => None,
        }) {
            Some(engine) => decider_committed(router, engine, &doubt.tx).await?,
            None => false,
        }
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
                replay(router, engine, &doubt.tx, redo).await
            }
            PartRecord::Buffered { .. } => true,
        };
        complete &= finished;
    }
    complete.then_some(commit)
}

/// Whether the deciding engine holds `tx`'s marker (`None`: cannot tell now).
async fn decider_committed(router: &Router, engine: &str, tx: &str) -> Option<bool> {
    let entry = router.by_name(engine).ok()?;
    let dialect = *entry.driver.descriptor().dialects.first()?;
    match entry
        .driver
        .execute(
            dialect,
            &decider_probe(dialect, tx),
            &ExecuteOptions::default(),
        )
        .await
    {
        Ok(result) => Some(!matches!(result.into_scalar(), Value::Int(0) | Value::Null)),
        // No marker table yet: nothing ever committed through it.
        Err(omnigate_drivers::Error::NotFound(_)) => Some(false),
        Err(e) => {
            tracing::warn!(engine = %engine, error = %e, "cannot read the decision marker");
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
