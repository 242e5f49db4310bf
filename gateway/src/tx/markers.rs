//! The deciding engine's markers. The deciding engine of a transaction
//! that spans engines (one that cannot prepare, else one part that can)
//! commits a marker inside its own transaction, and the marker carries the
//! transaction's record: the other parts, their global ids and the
//! buffered engines' writes. That one commit is both the decision and the
//! durable record of what to finish (the "last agent" optimisation of
//! two-phase commit: no log write of the coordinator's own). A marker is
//! marked done once every part has finished, so the markers not done are
//! exactly the committed transactions not yet finished everywhere.
//!
//! The records are the coordinator's (this module); the statements that
//! keep them are the engine's, from its driver
//! ([`StorageDriver::decision_markers`]): an engine that gives none cannot
//! decide.

use omnigate_drivers::decision::{DONE, FENCE};
use omnigate_drivers::{
    DecisionMarkers, Dialect, ExecuteOptions, ResultSet, Statement, StorageDriver, Value,
};

use super::log::PartRecord;

/// A deciding engine: its driver, and the statements of its markers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decider<'a> {
    driver: &'a dyn StorageDriver,
    markers: &'a dyn DecisionMarkers,
    /// The engine has the index of its markers not done, so a page can
    /// skip the done ones on the engine ([`DecisionMarkers::page`]).
    open_index: bool,
}

impl<'a> Decider<'a> {
    /// `driver` as a deciding engine, if it can be one (it keeps markers).
    pub(crate) fn of(driver: &'a dyn StorageDriver) -> Option<Self> {
        let markers = driver.decision_markers()?;
        Some(Decider {
            driver,
            markers,
            open_index: false,
        })
    }

    /// The same, knowing whether the engine has the index of its markers
    /// not done ([`Decider::setup`] says).
    pub(crate) fn with_open_index(self, open_index: bool) -> Self {
        Decider { open_index, ..self }
    }

    /// The marker that decides `tx`, with its record, and the dialect it
    /// is written in: run inside the deciding engine's transaction.
    pub(crate) fn decision(&self, tx: &str, record: &str) -> (Dialect, Statement) {
        (self.markers.dialect(), self.markers.insert(tx, record))
    }

    /// Runs one of the markers' statements on its own, with `options`.
    /// Where the markers have no place yet, or are kept where an earlier
    /// version kept them ([`Error::NotFound`]), the engine is made ready
    /// (which moves them in) and the statement runs again: reading
    /// "no marker" then would take an upgrade's decisions for none and
    /// roll their prepared parts back.
    ///
    /// [`Error::NotFound`]: omnigate_drivers::Error::NotFound
    async fn run_with(
        &self,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> omnigate_drivers::Result<ResultSet> {
        let dialect = self.markers.dialect();
        match self.driver.execute(dialect, statement, options).await {
            Err(omnigate_drivers::Error::NotFound(_)) => {
                self.setup().await?;
                self.driver.execute(dialect, statement, options).await
            }
            done => done,
        }
    }

    /// Runs one of the markers' statements on its own.
    async fn run(&self, statement: &Statement) -> omnigate_drivers::Result<ResultSet> {
        self.run_with(statement, &ExecuteOptions::default()).await
    }

    /// Makes the engine ready to hold markers, outside any transaction
    /// (DDL inside one would take locks concurrent commits wait on), and
    /// says whether it has the index of its markers not done.
    pub(crate) async fn setup(&self) -> omnigate_drivers::Result<bool> {
        let (dialect, options) = (self.markers.dialect(), ExecuteOptions::default());
        if let Some(before) = self.markers.before_setup() {
            let _ = self.driver.execute(dialect, &before, &options).await;
        }
        let setup = self.markers.setup();
        self.driver.execute(dialect, &setup, &options).await?;
        let Some(after) = self.markers.after_setup() else {
            return Ok(false);
        };
        match self.driver.execute(dialect, &after, &options).await {
            Ok(_) => Ok(true),
            Err(e) => {
                tracing::warn!(error = %e, "cannot index the unfinished transaction markers: recovery reads every marker back at each pass, done ones included; have the table's owner run the statement: {}", after.text);
                Ok(false)
            }
        }
    }

    /// Marks `tx`'s marker done: every part of the transaction has
    /// finished, on `engines`. Whether it was marked. A done marker is no
    /// longer finished by recovery; it keeps the transaction's key (a late
    /// fence finds the decision) and answers a Commit retried after a
    /// restart until it is swept ([`Decider::sweep`]). A marker left
    /// unmarked (the engine did not answer) is one recovery finishes again.
    pub(crate) async fn forget(&self, tx: &str, engines: &[String]) -> bool {
        let record = done_record(engines);
        match self.run(&self.markers.update(tx, &record)).await {
            Ok(_) => true,
            Err(e) => {
                tracing::debug!(tx_id = %tx, error = %e, "marking a finished transaction's marker done");
                false
            }
        }
    }

    /// [`Decider::forget`] of several finished transactions `(tx,
    /// engines)`, in few statements where the engine can: one per chunk of
    /// a power-of-two size (so that a pooled connection caches a handful
    /// of statement texts, not one per batch size). Whether each was
    /// marked.
    pub(crate) async fn forget_many(&self, finished: &[(String, Vec<String>)]) -> Vec<bool> {
        let mut marked = Vec::with_capacity(finished.len());
        let mut rest = finished;
        while !rest.is_empty() {
            let size = 1 << rest.len().ilog2().min(8);
            let (chunk, after) = rest.split_at(size);
            rest = after;
            let records: Vec<String> = chunk.iter().map(|(_, e)| done_record(e)).collect();
            let rows: Vec<(&str, &str)> = chunk
                .iter()
                .zip(&records)
                .map(|((tx, _), record)| (tx.as_str(), record.as_str()))
                .collect();
            if rows.len() > 1
                && let Some(statement) = self.markers.update_many(&rows)
            {
                match self.run(&statement).await {
                    Ok(_) => {
                        marked.extend(std::iter::repeat_n(true, rows.len()));
                        continue;
                    }
                    // One at a time, then.
                    Err(e) => {
                        tracing::warn!(error = %e, "marking finished transactions' markers done together failed");
                    }
                }
            }
            for (tx, engines) in chunk {
                marked.push(self.forget(tx, engines).await);
            }
        }
        marked
    }

    /// How transaction `tx` ended, as this engine's marker (`engine`'s)
    /// tells, if it holds one.
    pub(crate) async fn recorded(
        &self,
        engine: &str,
        tx: &str,
    ) -> omnigate_drivers::Result<Option<Recorded>> {
        let record = match self.read_record(tx).await {
            Ok(record) => record,
            Err(omnigate_drivers::Error::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        let Some(record) = record else {
            return Ok(None);
        };
        if record.starts_with(FENCE) {
            return Ok(Some(Recorded::RolledBack));
        }
        if let Some(rest) = record.strip_prefix(DONE) {
            let engines = rest
                .split_once(':')
                .and_then(|(_, list)| serde_json::from_str(list).ok())
                .unwrap_or_default();
            return Ok(Some(Recorded::Committed(engines)));
        }
        let parts = serde_json::from_str::<MarkerRecord>(&record)
            .map(|r| r.parts)
            .or_else(|_| serde_json::from_str::<Vec<PartRecord>>(&record))
            .unwrap_or_default();
        let mut engines = vec![engine.to_owned()];
        engines.extend(super::log::engines_of(&parts));
        Ok(Some(Recorded::Committed(engines)))
    }

    /// Fences transaction `tx` on this engine before recovery rolls its
    /// prepared parts back: a marker saying "aborted" ([`FENCE`]) takes the
    /// transaction's key, so a deciding commit still under way (its COMMIT
    /// slow or cut by a timeout, its marker not yet visible) fails on it
    /// instead of committing after the rollback. The insert waits for such
    /// a commit to end. `Ok(true)`: fenced, the parts may be rolled back;
    /// `Ok(false)`: a decision holds the key (the transaction committed:
    /// finish it forward).
    pub(crate) async fn fence(&self, tx: &str) -> omnigate_drivers::Result<bool> {
        let record = format!("{FENCE}{}", omnigate_drivers::ts::now_millis());
        let statement = self.markers.insert(tx, &record);
        // No marker table yet: made now by `run` (a decider making it at
        // the same moment is fenced all the same).
        match self.run(&statement).await {
            Ok(_) => Ok(true),
            Err(omnigate_drivers::Error::ConstraintViolation(_)) => {
                // Held: by a decision, or by an earlier fence of our own.
                let held = self.read_record(tx).await?;
                Ok(held.is_some_and(|r| r.starts_with(FENCE)))
            }
            Err(e) => Err(e),
        }
    }

    /// Claims `marker` for gateway `owner` before its recovery replays
    /// anything: the record is swapped for one naming `owner` and now, only
    /// if it is still the one read. `false` when it changed meanwhile
    /// (another gateway claimed it, or its commit finished and marked it
    /// done): then it is not this gateway's to finish now.
    pub(crate) async fn claim(
        &self,
        marker: &Unfinished,
        owner: &str,
    ) -> omnigate_drivers::Result<bool> {
        let record = record_text(&marker.parts, owner).map_err(|e| {
            omnigate_drivers::Error::Internal(omnigate_drivers::EngineError::new(
                "gateway",
                None,
                format!("cannot encode a marker: {e}"),
            ))
        })?;
        let swap = self.markers.swap(&marker.tx, &marker.record, &record);
        let done = self.run(&swap).await?;
        Ok(self.markers.swapped(&done))
    }

    /// Takes `tx`'s fence off this engine (only a fence: never a decision).
    pub(crate) async fn unfence(&self, tx: &str) -> omnigate_drivers::Result<()> {
        self.run(&self.markers.delete_fence(tx)).await.map(drop)
    }

    /// The record held under `tx`'s key, if any.
    async fn read_record(&self, tx: &str) -> omnigate_drivers::Result<Option<String>> {
        let rows = self.run(&self.markers.read(tx)).await?.rows;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|row| match row.into_iter().next() {
                Some(Value::String(record)) => Some(record.into()),
                _ => None,
            }))
    }

    /// Deletes the fences older than `fence_age` (a decider they fenced has
    /// long failed by then) and the done markers older than `done_age`
    /// (past the window in which a retried Commit is answered), on the
    /// engine: none is read back, however many a busy engine holds.
    pub(crate) async fn sweep(
        &self,
        fence_age: std::time::Duration,
        done_age: std::time::Duration,
    ) -> omnigate_drivers::Result<()> {
        let now = omnigate_drivers::ts::now_millis();
        let before = |prefix: &str, age: std::time::Duration| {
            let age = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
            format!("{prefix}{:013}", now.saturating_sub(age).max(0))
        };
        let (done, fences) = (before(DONE, done_age), before(FENCE, fence_age));
        // In batches, each its own statement: a backlog (after an upgrade,
        // an outage) is taken a batch at a time, never one delete that
        // outlasts the step and is undone.
        for _ in 0..SWEEP_BATCHES {
            let sweep = self.markers.sweep(&done, &fences, SWEEP_BATCH);
            match self.run(&sweep).await {
                Ok(swept) if swept.rows_affected >= SWEEP_BATCH as u64 => {}
                Ok(_) | Err(omnigate_drivers::Error::NotFound(_)) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Every marker of this engine not done (`Ok(empty)` when it never
    /// held one), read page by page.
    pub(crate) async fn unfinished(&self) -> omnigate_drivers::Result<Vec<Unfinished>> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let (page, last) = self.unfinished_page(after.as_deref()).await?;
            all.extend(page);
            match last {
                Some(last) => after = Some(last),
                None => return Ok(all),
            }
        }
    }

    /// One page of this engine's markers after id `after` (those not done),
    /// and the last id read when there may be more.
    pub(crate) async fn unfinished_page(
        &self,
        after: Option<&str>,
    ) -> omnigate_drivers::Result<(Vec<Unfinished>, Option<String>)> {
        let after = after.unwrap_or("");
        let scan = if self.open_index {
            self.markers.page(after, PAGE)
        } else {
            self.markers.page_all(after, PAGE)
        };
        let options = ExecuteOptions {
            timeout: Some(READ_LIMIT),
            ..ExecuteOptions::default()
        };
        let read =
            omnigate_drivers::deadline::within(Some(READ_LIMIT), self.run_with(&scan, &options));
        let rows = match read.await {
            Ok(rows) => rows.rows,
            // No marker table: nothing ever committed through it.
            Err(omnigate_drivers::Error::NotFound(_)) => return Ok((Vec::new(), None)),
            Err(e) => return Err(e),
        };
        let more = rows.len() == PAGE;
        let last = rows.last().and_then(|row| match row.first() {
            Some(Value::String(tx)) if more => Some(tx.to_string()),
            _ => None,
        });
        Ok((rows.iter().filter_map(unfinished).collect(), last))
    }
}

/// The marker of a row `(tx_id, record)`, if it is one not done (neither
/// a fence nor done, and readable).
fn unfinished(row: &[Value]) -> Option<Unfinished> {
    let [Value::String(tx), Value::String(record)] = row else {
        return None;
    };
    if record.starts_with(FENCE) || record.starts_with(DONE) {
        return None;
    }
    // A bare list of parts is read too (a record without its time).
    let read = serde_json::from_str::<MarkerRecord>(record)
        .map(|r| (r.parts, Some(r.at), r.owner))
        .or_else(|_| serde_json::from_str::<Vec<PartRecord>>(record).map(|p| (p, None, None)));
    match read {
        Ok((parts, at_ms, owner)) => Some(Unfinished {
            tx: tx.to_string(),
            parts,
            at_ms,
            owner,
            record: record.to_string(),
        }),
        Err(e) => {
            tracing::error!(tx_id = %tx, error = %e, "an unreadable transaction marker");
            None
        }
    }
}

/// How a transaction ended, as its deciding engine's marker tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// Committed (finished everywhere, or decided and being finished), on
    /// these engines.
    Committed(Vec<String>),
    /// Never decided, and rolled back behind a fence.
    RolledBack,
}

/// What a marker records.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct MarkerRecord {
    /// When the transaction was decided, in milliseconds since the epoch.
    at: i64,
    /// The gateway that decided it (its recovery finishes it at once;
    /// another's only once `takeover_after` has passed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    /// Its other parts.
    parts: Vec<PartRecord>,
}

/// A done marker's record: when, and the engines the transaction
/// committed on.
fn done_record(engines: &[String]) -> String {
    format!(
        "{DONE}{}:{}",
        omnigate_drivers::ts::now_millis(),
        serde_json::to_string(engines).unwrap_or_else(|_| "[]".into())
    )
}

/// The record a marker carries, as text.
pub(crate) fn record_text(parts: &[PartRecord], owner: &str) -> serde_json::Result<String> {
    serde_json::to_string(&MarkerRecord {
        at: omnigate_drivers::ts::now_millis(),
        owner: Some(owner.to_owned()),
        parts: parts.to_vec(),
    })
}

/// A committed transaction not yet finished everywhere.
#[derive(Debug, Clone)]
pub(crate) struct Unfinished {
    /// The transaction.
    pub tx: String,
    /// Its other parts.
    pub parts: Vec<PartRecord>,
    /// When it was decided, if known.
    pub at_ms: Option<i64>,
    /// The gateway that decided it (or last claimed it), if known.
    pub owner: Option<String>,
    /// The record as the engine holds it (what a claim compares).
    pub record: String,
}

/// How long recovery waits for one page of an engine's markers: an engine
/// that does not answer must not hold up the gateway's startup or the
/// other engines.
const READ_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// How many old done markers and fences one statement of a sweep deletes
/// at most, and how many such statements one sweep runs at most (a
/// minute's sweep keeps up with 16,000 commits a second).
const SWEEP_BATCH: usize = 10_000;
const SWEEP_BATCHES: usize = 100;

/// How many markers are read at once: a backlog is read page by page, so
/// no one read carries every redo payload.
pub(crate) const PAGE: usize = 64;
