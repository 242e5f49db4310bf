//! The commit of a transaction that spans engines, in the manner of
//! two-phase commit with the decision in the last resource:
//!
//! 1. `PREPARE TRANSACTION` on every preparable participant but the
//!    deciding one (PostgreSQL), under a global id recorded exactly as
//!    sent; every buffered engine votes (and will apply its writes with a
//!    marker that makes a replay a no-op, see `StorageDriver::replay`);
//! 2. the record of what to finish: the parts, their global ids, the
//!    buffered engines' writes. With a deciding engine (the live one
//!    without a prepare step, SQLite or Neo4j, else one PostgreSQL part)
//!    it is its marker (`markers.rs`), written in its transaction, and
//!    3. that engine's commit is the decision: one commit records and
//!    decides. Without one, the record is a PREPARED entry of the log and
//!    the decision a COMMIT entry, each durable before the next step;
//! 4. `COMMIT PREPARED`, the buffered writes applied, then the marker
//!    deleted (or DONE logged).
//!
//! A failure before the decision rolls every part back. After it, what is
//! left undone is finished by recovery (`recover.rs`).

use std::sync::Arc;

use omnigate_drivers::{
    Error as DriverError, ExecuteOptions, Participation, StorageDriver, Undecided,
};

use super::coordinator::Coordinator;
use super::log::{PartRecord, Record, TxLog, encode_args};
use super::markers;
use super::{Committed, Part};
use crate::error::{Error, Result};

impl Coordinator {
    /// Commits `parts` of transaction `tx` on every engine, all or nothing.
    pub(super) async fn commit(&self, tx: &str, parts: Vec<Part>) -> Result<Committed> {
        // Unmarked when dropped: a panic in the commit leaves nothing
        // marked committing (recovery would skip it until a restart).
        struct Committing<'a>(&'a Coordinator, &'a str);
        impl Drop for Committing<'_> {
            fn drop(&mut self) {
                self.0.committing(self.1, false);
            }
        }
        self.committing(tx, true);
        let _committing = Committing(self, tx);
        self.run(tx, parts).await
    }

    async fn run(&self, tx: &str, mut parts: Vec<Part>) -> Result<Committed> {
        let engines: Vec<String> = parts.iter().map(|p| p.engine.clone()).collect();
        // The deciding engine: the live one without a prepare step, else a
        // preparable one, which then commits instead of preparing.
        let decides =
            |p: &Part, preparable| p.session.participation() == Participation::Live { preparable };
        let decider_at = parts
            .iter()
            .position(|p| decides(p, false))
            .or_else(|| parts.iter().position(|p| decides(p, true)));
        // The log is needed to decide without a deciding engine, and for the
        // prefix of prepared parts' global ids; a deciding engine with only
        // buffered parts beside it (SQLite with Redis, the embedded default)
        // needs none: its marker is the whole record.
        let prepares = parts
            .iter()
            .enumerate()
            .any(|(i, p)| Some(i) != decider_at && decides(p, true));
        let log = if decider_at.is_none() || prepares {
            match self.log().await {
                Ok(log) => Some(log.clone()),
                Err(e) => {
                    self.roll_back(parts).await;
                    return Err(e);
                }
            }
        } else {
            None
        };
        let prefix = log.as_ref().map(TxLog::gid_prefix).unwrap_or_default();
        // Its marker table was made ready when it joined the transaction.
        let decider: Option<Part> = decider_at.map(|i| parts.remove(i));
        let mut prepared: Vec<(Part, String)> = Vec::new();
        let mut buffered: Vec<Part> = Vec::new();
        let fail_prepare = self.at("prepare")?;
        // 1. Prepare and vote.
        let mut rest = parts.into_iter();
        while let Some(mut part) = rest.next() {
            let step = match part.session.participation() {
                _ if fail_prepare => Err(injected("prepare")),
                Participation::Live { preparable: true } => {
                    let gid = global_id(&prefix, tx, &part.engine, decider.as_ref());
                    let step = self.step(part.session.prepare(&gid)).await;
                    prepared.push((part, gid));
                    step
                }
                Participation::Live { preparable: false } => {
                    // Refused at join: a second engine that cannot prepare.
                    let why = format!("engine {} cannot prepare", part.engine);
                    buffered.push(part);
                    Err(DriverError::Precondition(
                        omnigate_drivers::EngineError::new("gateway", None, why),
                    ))
                }
                Participation::Buffered => {
                    let marker = super::log::buffered_marker(tx, &part.engine);
                    let step = self.step(part.session.prepare(&marker)).await;
                    buffered.push(part);
                    step
                }
            };
            if let Err(e) = step {
                self.roll_back(all(prepared, decider, buffered, rest.collect()))
                    .await;
                return Err(Error::from(e));
            }
        }
        // 2. The record.
        let record: Vec<PartRecord> = prepared
            .iter()
            .map(|(p, gid)| PartRecord::Prepared {
                engine: p.engine.clone(),
                gid: gid.clone(),
            })
            .chain(buffered.iter().map(|p| PartRecord::BufferedPerEngine {
                engine: p.engine.clone(),
                redo: p.session.redo().iter().map(|r| encode_args(r)).collect(),
            }))
            .collect();
        if self.at("prepared_record")? {
            self.roll_back(all(prepared, decider, buffered, Vec::new()))
                .await;
            return Err(Error::from(injected("prepared_record")));
        }
        // 3. The decision.
        let decider_driver = match decider {
            Some(part) => match self.decide_in(tx, part, &record).await {
                Ok(driver) => Some(driver),
                // The outcome is unknown: recovery reads the marker and
                // finishes the other parts one way or the other.
                Err(e @ Error::TxInDoubt { .. }) => return Err(e),
                Err(e) => {
                    self.roll_back(all(prepared, None, buffered, Vec::new()))
                        .await;
                    return Err(e);
                }
            },
            None => {
                let Some(log) = &log else {
                    // Opened above whenever there is no deciding engine.
                    return Err(Error::TxLog {
                        why: "no log to decide in".into(),
                    });
                };
                match self.decide_in_log(log, tx, record.clone()).await {
                    Ok(()) => None,
                    Err(e @ Error::TxInDoubt { .. }) => return Err(e),
                    Err(e) => {
                        self.abort(log, tx, all(prepared, None, buffered, Vec::new()))
                            .await;
                        return Err(e);
                    }
                }
            }
        };
        if self.at("commit_record")? {
            // Decided: what stopping here leaves, recovery finishes.
            return Ok(Committed::on(engines));
        }
        // 4. Finish every part; what fails here recovery finishes.
        if self.at("finish")? {
            // The failpoint: leave every part for recovery, as a failed
            // COMMIT PREPARED or apply would.
            return Ok(Committed::on(engines));
        }
        let mut finished = true;
        for (part, gid) in prepared {
            if let Err(e) = self.step(part.session.commit()).await {
                tracing::warn!(tx_id = %tx, gid = %gid, error = %e, "COMMIT PREPARED failed; recovery retries");
                finished = false;
            }
        }
        let mut failed_after = None;
        let mut replies = Vec::new();
        // The buffered engines' markers, let go of once finished everywhere.
        let buffered_markers: Vec<super::after::BufferedMarker> = buffered
            .iter()
            .map(|p| {
                let marker = super::log::buffered_marker(tx, &p.engine);
                (Arc::clone(&p.driver), p.session.redo_head(), marker)
            })
            .collect();
        for part in buffered {
            let engine = part.engine.clone();
            match self.step(part.session.commit_replies()).await {
                Ok(applied) => replies.push((engine, applied)),
                // Only an engine that did not answer is retried (recovery
                // replays, guarded by the marker).
                Err(e @ (DriverError::Unavailable(_) | DriverError::Timeout { .. })) => {
                    tracing::warn!(tx_id = %tx, engine = %engine, error = %e, "applying the buffered writes failed; recovery retries");
                    finished = false;
                }
                // Anything else the engine answered is never taken as
                // applied: applied with a write that failed (Redis has no
                // rollback), none applied (EXECABORT, FalkorDB), or refused.
                Err(e) => {
                    let why = e
                        .engine_error()
                        .map_or_else(|| e.to_string(), |r| r.message.clone());
                    let redo = super::after::redo_of(&record, &engine);
                    failed_after = Some(self.failed_after_commit(tx, engine, why, redo).await);
                }
            }
        }
        if finished && !self.at("done")? {
            match decider_driver {
                Some(decider) => {
                    // Off the caller's path, in batches: a marker left
                    // behind is one recovery finishes again (every step is
                    // idempotent).
                    self.forgetter.forget(super::forgetter::Finished {
                        decider,
                        tx: tx.to_owned(),
                        engines: engines.clone(),
                        buffered: buffered_markers,
                    });
                }
                None => {
                    // DONE durable before the markers go: a lost DONE would
                    // send recovery to replay writes whose markers are gone.
                    if let Some(log) = &log
                        && self
                            .log_step(log.append(Record::Done { tx: tx.to_owned() }, true))
                            .await
                            .is_ok()
                    {
                        let tx = tx.to_owned();
                        tokio::spawn(async move {
                            super::after::forget_buffered(&tx, buffered_markers).await;
                        });
                    }
                }
            }
        }
        match failed_after {
            Some(e) => Err(e),
            None => Ok(Committed { engines, replies }),
        }
    }

    /// Commits the deciding engine with the marker and its record: the
    /// decision. On failure every part is rolled back (or, when the
    /// outcome is unknown, left for recovery). The engine's driver, for
    /// marking the marker done once finished.
    async fn decide_in(
        &self,
        tx: &str,
        mut part: Part,
        record: &[PartRecord],
    ) -> Result<Arc<dyn StorageDriver>> {
        let text = markers::record_text(record, &self.owner).map_err(|e| Error::TxLog {
            why: format!("cannot encode the transaction's record: {e}"),
        })?;
        // The engine's marker, as its driver writes it; an engine whose
        // driver keeps no markers cannot decide, nor one that cannot hold
        // them now (its setup failed: no privilege, or an earlier
        // version's markers beside them, whose decisions would be lost).
        let decider = markers::Decider::of(part.driver.as_ref());
        if let Some(decider) = decider
            && let Err(e) = self.ready_markers(&part.engine, decider).await
        {
            let _ = self.step(part.session.rollback()).await;
            return Err(Error::TxLog {
                why: format!(
                    "engine {} cannot hold the transaction's decision: {e}",
                    part.engine
                ),
            });
        }
        let decision = decider.map(|d| d.decision(tx, &text));
        // A stop (a crash) here or after the commit leaves the outcome to
        // recovery, as the engine's marker tells it.
        let in_doubt = |stop: Error| Error::TxInDoubt {
            why: stop.to_string(),
        };
        let Some((dialect, marker)) = decision else {
            let _ = self.step(part.session.rollback()).await;
            return Err(Error::from(DriverError::not_supported(
                "deciding a transaction that spans engines (it keeps no markers)",
                part.driver.descriptor().kind,
            )));
        };
        if self.at("decide").map_err(in_doubt)? {
            // The commit was not sent: nothing is decided.
            let _ = self.step(part.session.rollback()).await;
            return Err(Error::from(injected("decide")));
        }
        let driver = Arc::clone(&part.driver);
        if self.at(super::failpoint::LATE_DECISION).map_err(in_doubt)? {
            // The failpoint: the marker is written, then the COMMIT is cut
            // by the step timeout and lands on the engine a moment later.
            let options = ExecuteOptions::default();
            if let Err(e) = self
                .step(part.session.execute(dialect, &marker, &options))
                .await
            {
                let _ = self.step(part.session.rollback()).await;
                return Err(Error::from(e));
            }
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                let _ = part.session.commit().await;
            });
            return Err(Error::TxInDoubt {
                why: "failpoint decide_late".into(),
            });
        }
        // The marker and the COMMIT, pipelined where the engine can.
        let decided = self
            .step(async { Ok(part.session.commit_with(dialect, &marker).await) })
            .await;
        let decided = match decided {
            Ok(decided) => decided,
            // Cut by the step timeout: the COMMIT may have landed.
            Err(e) => Err(Undecided::Unknown(e)),
        };
        // The failpoint: committed, but the reply lost on the way back.
        let decided = match (decided, self.at("decided").map_err(in_doubt)?) {
            (Ok(()), true) => Err(Undecided::Unknown(injected("decided"))),
            (other, _) => other,
        };
        match decided {
            Ok(()) => Ok(driver),
            // The engine refused the marker or the commit: it did not
            // happen (the session is rolled back).
            Err(Undecided::No(e)) => Err(Error::from(e)),
            // The link broke around the commit: it may have happened. Its
            // marker tells, once the engine has settled; recovery reads it.
            // The other parts stay prepared or unapplied until then.
            Err(Undecided::Unknown(e)) => {
                tracing::warn!(tx_id = %tx, error = %e, "the deciding commit's outcome is unknown; recovery decides it");
                Err(Error::TxInDoubt { why: e.to_string() })
            }
        }
    }

    /// Without a deciding engine: the PREPARED record, then the COMMIT
    /// record, which is the decision (on a shared log it may lose to a
    /// replica's recovery that took the transaction over and rolled it
    /// back).
    async fn decide_in_log(&self, log: &TxLog, tx: &str, record: Vec<PartRecord>) -> Result<()> {
        let prepared = Record::Prepared {
            tx: tx.to_owned(),
            parts: record,
            at: Some(omnigate_drivers::ts::now_millis()),
        };
        let as_log_error = |e: std::io::Error| Error::TxLog { why: e.to_string() };
        self.log_step(log.append(prepared, true))
            .await
            .map_err(as_log_error)?;
        // A stop (a crash) here leaves the transaction to recovery.
        let stopped = |stop: Error| Error::TxInDoubt {
            why: stop.to_string(),
        };
        if self.at("decide").map_err(stopped)? {
            return Err(Error::from(injected("decide")));
        }
        // A COMMIT record that failed may still have been written (a
        // connection lost around it): the outcome is recovery's to read,
        // not a rollback's to assume.
        let decided = self.log_step(log.decide(tx, true, true)).await;
        match decided.map_err(|e| Error::TxInDoubt {
            why: format!("the commit record's outcome is unknown: {e}"),
        })? {
            true => Ok(()),
            false => Err(Error::TxAborted {
                why: "another gateway's recovery took the transaction over and rolled it back \
                      before its commit was recorded"
                    .into(),
            }),
        }
    }
}

/// The global id a part is prepared under: `{prefix}{tx}-{engine}`, and
/// `.{decider}` after it when a deciding engine decides the transaction
/// (engine names hold no '.'), so that recovery fences only that engine
/// before rolling an undecided part back.
fn global_id(prefix: &str, tx: &str, engine: &str, decider: Option<&Part>) -> String {
    match decider {
        Some(decider) => format!("{prefix}{tx}-{engine}.{}", decider.engine),
        None => format!("{prefix}{tx}-{engine}"),
    }
}

/// The error a failpoint makes a step fail with.
fn injected(point: &str) -> DriverError {
    DriverError::Unavailable(omnigate_drivers::EngineError::new(
        "failpoint",
        None,
        format!("failpoint {point}"),
    ))
}

/// Every part, for a rollback.
fn all(
    prepared: Vec<(Part, String)>,
    decider: Option<Part>,
    buffered: Vec<Part>,
    rest: Vec<Part>,
) -> Vec<Part> {
    prepared
        .into_iter()
        .map(|(p, _)| p)
        .chain(decider)
        .chain(buffered)
        .chain(rest)
        .collect()
}

impl Coordinator {
    /// Rolls every part back and records ABORT (over a PREPARED record, if
    /// the log holds one).
    async fn abort(&self, log: &TxLog, tx: &str, parts: Vec<Part>) {
        self.roll_back(parts).await;
        let abort = log.append(Record::Abort { tx: tx.to_owned() }, false);
        let _ = self.log_step(abort).await;
    }

    /// Rolls every part back (a part whose rollback fails is left to the
    /// engine: an open transaction ends with its connection, a prepared
    /// one is an orphan recovery rolls back).
    async fn roll_back(&self, parts: Vec<Part>) {
        for part in parts {
            if let Err(e) = self.step(part.session.rollback()).await {
                tracing::warn!(engine = %part.engine, error = %e, "rollback failed");
            }
        }
    }
}
