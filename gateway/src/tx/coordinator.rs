//! The commit of a transaction that spans engines, in the manner of
//! two-phase commit with the decision in the last resource:
//!
//! 1. `PREPARE TRANSACTION` on every preparable participant (PostgreSQL),
//!    under a global id the log records exactly as sent;
//! 2. a durable PREPARED record: the parts, their global ids, the redo of
//!    the buffered engines (each applies it with a marker that makes a
//!    replay a no-op, see `StorageDriver::replay`);
//! 3. the commit of the one live participant without a prepare step
//!    (SQLite), carrying a marker row: that commit is the decision (with
//!    no such participant, the COMMIT record is);
//! 4. a durable COMMIT record;
//! 5. `COMMIT PREPARED`, the buffered writes applied, DONE.
//!
//! A failure before the decision rolls every part back. After it, what is
//! left undone is finished by recovery (`recover.rs`).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use omnigate_drivers::{
    Dialect, Error as DriverError, ExecuteOptions, Participation, Statement, StorageDriver,
};

use super::Part;
use super::failpoint::{Action, Failpoints};
use super::log::{FileLog, PartRecord, Record, TableLog, TxLog, encode_args};
use crate::error::{Error, Result};

/// The statement that records the decision inside the deciding engine's
/// transaction, by its dialect.
pub(crate) fn decider_marker(dialect: Dialect, tx: &str) -> Statement {
    match dialect {
        Dialect::Cypher => {
            Statement::new("CREATE (:OmnigateTxMarker {tx_id: $tx})").bind_named("tx", tx)
        }
        _ => Statement::new("INSERT INTO omnigate_tx_markers (tx_id) VALUES ($1)").bind(tx),
    }
}

/// What makes a deciding engine ready to hold markers (run once, outside
/// any transaction: DDL inside one would take locks concurrent commits
/// wait on). A marker is a commit; one with `aborted` is a recovery's
/// tombstone, which makes a late commit of the same transaction fail on
/// the key instead of committing after the rollback was decided.
fn marker_setup(dialect: Dialect) -> Option<Statement> {
    Some(match dialect {
        // Unique, so that a late commit's marker fails on a tombstone.
        Dialect::Cypher => Statement::new(
            "CREATE CONSTRAINT omnigate_tx_marker IF NOT EXISTS \
             FOR (m:OmnigateTxMarker) REQUIRE m.tx_id IS UNIQUE",
        ),
        Dialect::Sql => Statement::new(
            "CREATE TABLE IF NOT EXISTS omnigate_tx_markers \
             (tx_id TEXT PRIMARY KEY, aborted BOOLEAN NOT NULL DEFAULT FALSE)",
        ),
        _ => return None,
    })
}

/// The statement that reads `tx`'s marker in the deciding engine: no row,
/// or whether it is a tombstone.
pub(crate) fn decider_probe(dialect: Dialect, tx: &str) -> Statement {
    match dialect {
        Dialect::Cypher => Statement::new(
            "MATCH (m:OmnigateTxMarker {tx_id: $tx}) RETURN coalesce(m.aborted, false)",
        )
        .bind_named("tx", tx),
        _ => Statement::new("SELECT aborted FROM omnigate_tx_markers WHERE tx_id = $1").bind(tx),
    }
}

/// The statement that decides `tx` rolled back in the deciding engine,
/// unless its commit's marker is there first.
pub(crate) fn decider_tombstone(dialect: Dialect, tx: &str) -> Statement {
    match dialect {
        Dialect::Cypher => {
            Statement::new("MERGE (m:OmnigateTxMarker {tx_id: $tx}) ON CREATE SET m.aborted = true")
                .bind_named("tx", tx)
        }
        _ => Statement::new("INSERT INTO omnigate_tx_markers (tx_id, aborted) VALUES ($1, TRUE)")
            .bind(tx),
    }
}

/// Where the log is opened from.
#[derive(Debug, Clone)]
pub enum LogSource {
    /// A file.
    File(PathBuf),
    /// Tables in a PostgreSQL engine.
    Table(Arc<dyn StorageDriver>),
}

/// The log (opened at the first cross-engine commit, or at startup when
/// it exists) and the transactions this gateway is committing now.
#[derive(Debug)]
pub struct Coordinator {
    source: LogSource,
    log: tokio::sync::OnceCell<TxLog>,
    /// This gateway, as a shared log's rows name it.
    owner: String,
    /// How long another gateway's row of a shared log waits before this
    /// gateway's recovery takes it over.
    pub(crate) takeover_after: Duration,
    committing: Mutex<HashSet<String>>,
    /// Engines whose marker table is known to exist.
    markers_ready: Mutex<HashSet<String>>,
    /// What transactions did since start.
    pub(crate) counters: super::TxCounters,
    /// Test-only failpoints (they do nothing without the feature).
    pub failpoints: Failpoints,
}

impl Coordinator {
    /// A coordinator whose log is opened from `source`.
    pub fn new(source: LogSource, takeover_after: Duration) -> Self {
        Coordinator {
            source,
            log: tokio::sync::OnceCell::new(),
            owner: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            takeover_after,
            committing: Mutex::new(HashSet::new()),
            markers_ready: Mutex::new(HashSet::new()),
            counters: super::TxCounters::default(),
            failpoints: Failpoints::default(),
        }
    }

    /// The log, opened now if it was not.
    pub(crate) async fn log(&self) -> Result<&TxLog> {
        self.log
            .get_or_try_init(|| async {
                match &self.source {
                    LogSource::File(path) => FileLog::open(path).map(TxLog::File),
                    LogSource::Table(driver) => {
                        TableLog::open(Arc::clone(driver), self.owner.clone())
                            .await
                            .map(|log| TxLog::Table(Arc::new(log)))
                    }
                }
            })
            .await
            .map_err(|e| Error::TxLog { why: e.to_string() })
    }

    /// The log if it is open or exists (then it is opened): a file that
    /// was never made holds nothing to recover.
    pub(crate) async fn existing_log(&self) -> Option<&TxLog> {
        if let LogSource::File(path) = &self.source
            && self.log.get().is_none()
            && !path.exists()
        {
            return None;
        }
        match self.log().await {
            Ok(log) => Some(log),
            Err(e) => {
                tracing::error!(error = %e, "cannot open the transaction log for recovery");
                None
            }
        }
    }

    /// How many transactions this gateway's recovery would look at now.
    pub(crate) async fn in_doubt_count(&self) -> u64 {
        match self.existing_log().await {
            Some(log) => log
                .in_doubt(self.takeover_after)
                .await
                .map_or(0, |d| d.len() as u64),
            None => 0,
        }
    }

    /// Whether this gateway is committing `tx` now (recovery leaves it).
    pub(crate) fn is_committing(&self, tx: &str) -> bool {
        self.lock().contains(tx)
    }

    /// Whether `gid` belongs to a transaction this gateway is committing.
    pub(crate) fn is_committing_gid(&self, prefix: &str, gid: &str) -> bool {
        self.lock()
            .iter()
            .any(|tx| gid.starts_with(&format!("{prefix}{tx}-")))
    }

    /// `Err` when the failpoint `point` stops the commit here (a crash);
    /// `Ok(true)` when it makes the step fail.
    fn at(&self, point: &'static str) -> Result<bool> {
        match self.failpoints.hit(point) {
            Some(Action::Stop) => Err(Error::TxLog {
                why: format!("stopped at failpoint {point}"),
            }),
            Some(Action::Fail) => Ok(true),
            None => Ok(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.committing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes sure the deciding engine has its marker table.
    pub(crate) async fn ready_markers(
        &self,
        engine: &str,
        dialect: Dialect,
        driver: &dyn omnigate_drivers::StorageDriver,
    ) {
        if self
            .markers_ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(engine)
        {
            return;
        }
        if let Some(setup) = marker_setup(dialect) {
            // A concurrent first commit may create it at the same moment:
            // an error here is read through the marker insert that follows.
            if let Err(e) = driver
                .execute(dialect, &setup, &ExecuteOptions::default())
                .await
            {
                tracing::debug!(engine = %engine, error = %e, "creating the marker table");
                return;
            }
        }
        self.markers_ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(engine.to_owned());
    }

    /// Commits `parts` of transaction `tx` on every engine, all or nothing.
    pub(super) async fn commit(&self, tx: &str, parts: Vec<Part>) -> Result<Vec<String>> {
        self.lock().insert(tx.to_owned());
        let outcome = self.run(tx, parts).await;
        self.lock().remove(tx);
        outcome
    }

    async fn run(&self, tx: &str, parts: Vec<Part>) -> Result<Vec<String>> {
        let engines: Vec<String> = parts.iter().map(|p| p.engine.clone()).collect();
        let log = match self.log().await {
            Ok(log) => log.clone(),
            Err(e) => {
                roll_back(parts).await;
                return Err(e);
            }
        };
        let prefix = log.gid_prefix();
        let mut prepared: Vec<(Part, String)> = Vec::new();
        let mut buffered: Vec<Part> = Vec::new();
        // The deciding engine: the live one without a prepare step, else a
        // preparable one, which then commits instead of preparing (the
        // logging-last-resource pattern: one round trip and one fsync less).
        let mut parts = parts;
        let decides =
            |p: &Part, preparable| p.session.participation() == Participation::Live { preparable };
        let decider_at = parts
            .iter()
            .position(|p| decides(p, false))
            .or_else(|| parts.iter().position(|p| decides(p, true)));
        // Its marker table was made ready when it joined the transaction.
        let decider: Option<Part> = decider_at.map(|i| parts.remove(i));
        let mut parts = parts.into_iter();
        let fail_prepare = self.at("prepare")?;
        // 1. Prepare; queue each buffered engine's marker with its writes.
        while let Some(mut part) = parts.next() {
            let step = match part.session.participation() {
                _ if fail_prepare => Err(injected("prepare")),
                Participation::Live { preparable: true } => {
                    let gid = format!("{prefix}{tx}-{}", part.engine);
                    let step = part.session.prepare(&gid).await;
                    prepared.push((part, gid));
                    step
                }
                Participation::Live { preparable: false } => {
                    // Refused at join: a second engine that cannot prepare.
                    let engine = part.engine.clone();
                    buffered.push(part);
                    Err(DriverError::Precondition(
                        omnigate_drivers::EngineError::new(
                            "gateway",
                            None,
                            format!("engine {engine} cannot prepare"),
                        ),
                    ))
                }
                Participation::Buffered => {
                    // The engine's vote; from now on its commit applies
                    // the transaction's marker with its writes.
                    let step = part.session.prepare(tx).await;
                    buffered.push(part);
                    step
                }
            };
            if let Err(e) = step {
                let rest = parts.collect();
                abort(None, tx, prepared, decider, buffered, rest).await;
                return Err(Error::from(e));
            }
        }
        // 2. The PREPARED record.
        let record = Record::Prepared {
            tx: tx.to_owned(),
            parts: prepared
                .iter()
                .map(|(p, gid)| PartRecord::Prepared {
                    engine: p.engine.clone(),
                    gid: gid.clone(),
                })
                .chain(decider.iter().map(|p| PartRecord::Decider {
                    engine: p.engine.clone(),
                }))
                .chain(buffered.iter().map(|p| PartRecord::Buffered {
                    engine: p.engine.clone(),
                    redo: p.session.redo().iter().map(|r| encode_args(r)).collect(),
                }))
                .collect(),
        };
        let appended = if self.at("prepared_record")? {
            Err(std::io::Error::other("failpoint prepared_record"))
        } else {
            log.append(record, true).await
        };
        if let Err(e) = appended {
            abort(None, tx, prepared, decider, buffered, Vec::new()).await;
            return Err(Error::TxLog { why: e.to_string() });
        }
        // 3. The decision: the deciding engine's commit, with its marker.
        let decided_by_engine = decider.is_some();
        let fail_decide = self.at("decide")?;
        if let Some(mut part) = decider {
            let step = if fail_decide {
                Err(injected("decide"))
            } else {
                part.session
                    .execute(
                        part.dialect,
                        &decider_marker(part.dialect, tx),
                        &ExecuteOptions::default(),
                    )
                    .await
                    .map(drop)
            };
            if let Err(e) = step {
                // The commit was not sent: nothing is decided.
                let _ = part.session.rollback().await;
                abort(Some(&log), tx, prepared, None, buffered, Vec::new()).await;
                return Err(Error::from(e));
            }
            let committed = part.session.commit().await;
            // The failpoint: committed, but the reply lost on the way back.
            let committed = match (committed, self.at("decided")?) {
                (Ok(()), true) => Err(injected("decided")),
                (other, _) => other,
            };
            match committed {
                Ok(()) => {}
                // The engine refused the commit: it did not happen.
                Err(
                    e @ (DriverError::Conflict(_)
                    | DriverError::Precondition(_)
                    | DriverError::ConstraintViolation(_)),
                ) => {
                    abort(Some(&log), tx, prepared, None, buffered, Vec::new()).await;
                    return Err(Error::from(e));
                }
                // The link broke around the commit: it may have happened.
                // Its marker tells, once the engine has settled; recovery
                // reads it. The other parts stay prepared or unapplied
                // until then, and nothing is rolled back here.
                Err(e) => {
                    tracing::warn!(tx_id = %tx, error = %e, "the deciding commit's outcome is unknown; recovery decides it");
                    return Err(Error::TxInDoubt { why: e.to_string() });
                }
            }
        }
        // 4. The COMMIT record (the decision itself when no engine decided;
        // then it needs the disk, and may lose to a replica's recovery that
        // took the transaction over on a shared log and rolled it back).
        let decided = if self.at("commit_record")? {
            Err(std::io::Error::other("failpoint commit_record"))
        } else {
            log.decide(tx, true, !decided_by_engine).await
        };
        match decided {
            Ok(true) => {}
            Ok(false) if !decided_by_engine => {
                abort(None, tx, prepared, None, buffered, Vec::new()).await;
                return Err(Error::TxAborted {
                    why: "another gateway's recovery took the transaction over and rolled it \
                          back before its commit was recorded"
                        .into(),
                });
            }
            // The engine's marker decided; a recovery is finishing it.
            Ok(false) => {}
            Err(e) if !decided_by_engine => {
                abort(Some(&log), tx, prepared, None, buffered, Vec::new()).await;
                return Err(Error::TxLog { why: e.to_string() });
            }
            Err(e) => {
                tracing::warn!(tx_id = %tx, error = %e, "COMMIT record not written; recovery finishes the committed transaction");
            }
        }
        // 5. Finish every part; what fails here recovery finishes.
        let mut finished = !self.at("finish")?;
        if !finished {
            // The failpoint: leave every part for recovery, as a failed
            // COMMIT PREPARED or apply would.
            return Ok(engines);
        }
        for (part, gid) in prepared {
            if let Err(e) = part.session.commit().await {
                tracing::warn!(tx_id = %tx, gid = %gid, error = %e, "COMMIT PREPARED failed; recovery retries");
                finished = false;
            }
        }
        let mut failed_after = None;
        for part in buffered {
            let engine = part.engine.clone();
            match part.session.commit().await {
                Ok(()) => {}
                Err(DriverError::Precondition(e)) => {
                    // Applied, with a write that failed (Redis has no rollback).
                    let why = e.message.clone();
                    let _ = log
                        .append(
                            Record::FailedAfterCommit {
                                tx: tx.to_owned(),
                                engine: engine.clone(),
                                why: why.clone(),
                            },
                            true,
                        )
                        .await;
                    tracing::error!(tx_id = %tx, engine = %engine, why = %why, "transaction failed after commit");
                    self.counters
                        .failed_after_commit
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    failed_after = Some(Error::TxFailedAfterCommit { engine, why });
                }
                Err(e) => {
                    tracing::warn!(tx_id = %tx, engine = %engine, error = %e, "applying the buffered writes failed; recovery retries");
                    finished = false;
                }
            }
        }
        if finished && !self.at("done")? {
            let _ = log.append(Record::Done { tx: tx.to_owned() }, false).await;
        }
        match failed_after {
            Some(e) => Err(e),
            None => Ok(engines),
        }
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

/// Rolls every part back (prepared ones by their sessions) and, when the
/// PREPARED record was written, records ABORT.
async fn abort(
    log: Option<&TxLog>,
    tx: &str,
    prepared: Vec<(Part, String)>,
    decider: Option<Part>,
    buffered: Vec<Part>,
    rest: Vec<Part>,
) {
    let parts = prepared
        .into_iter()
        .map(|(p, _)| p)
        .chain(decider)
        .chain(buffered)
        .chain(rest)
        .collect();
    roll_back(parts).await;
    if let Some(log) = log {
        let _ = log.append(Record::Abort { tx: tx.to_owned() }, false).await;
    }
}

async fn roll_back(parts: Vec<Part>) {
    for part in parts {
        if let Err(e) = part.session.rollback().await {
            tracing::warn!(engine = %part.engine, error = %e, "rollback failed");
        }
    }
}
