//! The statements of a deciding engine's transaction markers.
//!
//! A transaction that spans engines is decided by the commit of one of
//! them (one that cannot prepare, else one that can): it commits a marker
//! inside its own transaction, and that marker carries the transaction's
//! record. The coordinator above this crate owns the protocol and the
//! records; an engine that can decide says here, through
//! [`StorageDriver::decision_markers`], how its markers are written, read
//! and removed. The coordinator names no engine: a new deciding engine
//! implements [`DecisionMarkers`] in its own module.
//!
//! A marker is a transaction id (its key: unique) with a record, an opaque
//! text to the engine but for two prefixes, [`FENCE`] and [`DONE`], that
//! the statements filter on. Every statement that reads markers answers
//! rows of text values: `(tx_id, record)`, or only `(record)` for
//! [`DecisionMarkers::read`].
//!
//! [`StorageDriver::decision_markers`]: crate::StorageDriver::decision_markers

use std::fmt;

use crate::{Dialect, ResultSet, Statement};

/// How the record of a fence begins: a marker that says its transaction
/// was never decided and is being rolled back.
pub const FENCE: &str = "aborted:";

/// How the record of a done marker begins: its transaction has finished
/// on every engine.
pub const DONE: &str = "done:";

// A fence's and a done marker's record go on with the time they were
// written, in milliseconds since the epoch (13 digits until the year
// 2286), so their text sorts as their time does: `DecisionMarkers::sweep`
// compares records with `FENCE`/`DONE` and a time.

/// The statements that keep a deciding engine's markers, each run by the
/// coordinator in [`dialect`](Self::dialect): outside any transaction
/// unless said otherwise, one at a time. They build statements only; they
/// never run them.
pub trait DecisionMarkers: Send + Sync + fmt::Debug {
    /// The dialect every statement here is written in.
    fn dialect(&self) -> Dialect;

    /// What runs first when the markers are made ready, if anything, its
    /// failure ignored (e.g. removing what an earlier version made that
    /// [`setup`](Self::setup) would be refused over).
    fn before_setup(&self) -> Option<Statement> {
        None
    }

    /// Makes the engine ready to hold markers (a table, a constraint);
    /// idempotent. Run once outside any transaction, before the engine's
    /// first part of a transaction begins, and again when a marker's
    /// write finds no place to go ([`Error::NotFound`]).
    ///
    /// [`Error::NotFound`]: crate::Error::NotFound
    fn setup(&self) -> Statement;

    /// What runs last when the markers are made ready, if anything, its
    /// failure logged and otherwise ignored: an index of the markers not
    /// done, which keeps recovery's reads to those (a role that does not
    /// own an administrator's table cannot make it; recovery then reads
    /// past the done markers on the engine, never returning them).
    fn after_setup(&self) -> Option<Statement> {
        None
    }

    /// Writes a new marker `tx` with `record`; fails with
    /// [`Error::ConstraintViolation`] when `tx` already has one (a fence
    /// and a late decision must not both be written). Run inside the
    /// deciding transaction (the decision), or alone (a fence).
    ///
    /// [`Error::ConstraintViolation`]: crate::Error::ConstraintViolation
    fn insert(&self, tx: &str, record: &str) -> Statement;

    /// Replaces `tx`'s record with `record`, whatever it was.
    fn update(&self, tx: &str, record: &str) -> Statement;

    /// [`update`](Self::update) of several markers `(tx, record)` in one
    /// statement, where the engine can; `None`: one at a time.
    fn update_many(&self, rows: &[(&str, &str)]) -> Option<Statement> {
        let _ = rows;
        None
    }

    /// Replaces `tx`'s record with `new` only if it is still `old` (a
    /// compare-and-swap); [`swapped`](Self::swapped) reads its result.
    fn swap(&self, tx: &str, old: &str, new: &str) -> Statement;

    /// Whether `result`, of a [`swap`](Self::swap), replaced the record.
    fn swapped(&self, result: &ResultSet) -> bool;

    /// `tx`'s record: at most one row, the record its first value.
    fn read(&self, tx: &str) -> Statement;

    /// At most `limit` markers neither done nor fences (what recovery
    /// finishes) whose ids sort after `after` (`""`: from the first),
    /// ordered by id: rows of `(tx_id, record)`. The done markers a busy
    /// engine keeps for the ended window (millions) are skipped on the
    /// engine, never read back. Used once [`after_setup`](Self::after_setup)
    /// has made its index; without it, a page could scan every done
    /// marker in one statement, so [`page_all`](Self::page_all) is read.
    fn page(&self, after: &str, limit: usize) -> Statement;

    /// At most `limit` markers of every kind whose ids sort after `after`,
    /// ordered by id (each page a bounded walk of the key; the reader
    /// skips the done ones and the fences).
    fn page_all(&self, after: &str, limit: usize) -> Statement;

    /// Deletes, on the engine, at most `limit` of the done markers whose
    /// records sort before `done_before` and the fences whose records sort
    /// before `fences_before` (each [`DONE`] or [`FENCE`] and a time, so
    /// these are the older ones), returning no rows: its rows affected
    /// tell whether more may be left.
    fn sweep(&self, done_before: &str, fences_before: &str, limit: usize) -> Statement;

    /// Deletes `tx`'s marker only if it is a fence (its record begins with
    /// [`FENCE`]): never a decision.
    fn delete_fence(&self, tx: &str) -> Statement;
}
