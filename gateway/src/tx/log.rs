//! The transaction log's records, and the log itself: an append-only file
//! for one gateway (`file_log.rs`), or a table in a PostgreSQL engine that
//! every gateway replica shares (`table_log.rs`). A transaction that spans
//! engines writes PREPARED (its parts, their global ids, the redo of its
//! buffered engines), then COMMIT once decided, then DONE (or ABORT).
//! Recovery reads what has no DONE or ABORT.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

pub use super::file_log::FileLog;
pub use super::table_log::TableLog;

/// How one engine takes part, as the log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum PartRecord {
    /// Prepared under `gid` (PostgreSQL).
    Prepared {
        /// The engine's name.
        engine: String,
        /// The global id, exactly as sent with PREPARE TRANSACTION.
        gid: String,
    },
    /// Writes applied at commit, with a marker that makes a replay a no-op,
    /// named by the transaction alone: an earlier version's record.
    Buffered {
        /// The engine's name.
        engine: String,
        /// Each write's arguments, base64.
        redo: Vec<Vec<String>>,
    },
    /// Writes applied at commit, with a marker named by the transaction
    /// and the engine ([`buffered_marker`]). A role of its own, not a flag
    /// on `Buffered`: an earlier version that took such a record over
    /// would replay it under the transaction's marker and apply it twice;
    /// it cannot read this one, and leaves it.
    BufferedPerEngine {
        /// The engine's name.
        engine: String,
        /// Each write's arguments, base64.
        redo: Vec<Vec<String>>,
    },
}

/// The marker a buffered engine applies with transaction `tx`'s writes:
/// named by the engine too, so that two engines on one Redis database (or
/// one graph) each guard their own writes: with one marker, the first
/// engine's apply would make the second's look applied.
pub(crate) fn buffered_marker(tx: &str, engine: &str) -> String {
    format!("{tx}@{engine}")
}

impl PartRecord {
    /// The marker of a buffered part of transaction `tx` (`None` for a
    /// prepared part).
    pub(crate) fn marker(&self, tx: &str) -> Option<String> {
        match self {
            PartRecord::BufferedPerEngine { engine, .. } => Some(buffered_marker(tx, engine)),
            PartRecord::Buffered { .. } => Some(tx.to_owned()),
            PartRecord::Prepared { .. } => None,
        }
    }

    /// A buffered part's engine and writes (`None` for a prepared part).
    pub(crate) fn buffered(&self) -> Option<(&str, &[Vec<String>])> {
        match self {
            PartRecord::Buffered { engine, redo }
            | PartRecord::BufferedPerEngine { engine, redo } => Some((engine, redo)),
            PartRecord::Prepared { .. } => None,
        }
    }

    /// The engine this part is on.
    pub fn engine(&self) -> &str {
        match self {
            PartRecord::Prepared { engine, .. }
            | PartRecord::Buffered { engine, .. }
            | PartRecord::BufferedPerEngine { engine, .. } => engine,
        }
    }
}

/// The engines of `parts`, in order.
pub(crate) fn engines_of(parts: &[PartRecord]) -> Vec<String> {
    parts.iter().map(|p| p.engine().to_owned()).collect()
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Record {
    /// The log's identity: the prefix of the global ids it issues.
    Log {
        /// A random id.
        id: String,
    },
    /// Every part is prepared or checked; nothing is decided yet.
    Prepared {
        /// The transaction.
        tx: String,
        /// Its parts.
        parts: Vec<PartRecord>,
        /// When, in milliseconds since the epoch (for operators).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<i64>,
    },
    /// Decided: it commits.
    Commit {
        /// The transaction.
        tx: String,
    },
    /// Every part finished.
    Done {
        /// The transaction.
        tx: String,
    },
    /// Decided: it rolled back everywhere.
    Abort {
        /// The transaction.
        tx: String,
    },
    /// An operator acknowledged a failed-after-commit transaction (after
    /// mending its data): it leaves the operators' list.
    Resolved {
        /// The transaction.
        tx: String,
    },
    /// Committed, but a buffered engine failed a write when applying it
    /// (Redis applied the others): for operators.
    FailedAfterCommit {
        /// The transaction.
        tx: String,
        /// The engine.
        engine: String,
        /// What failed.
        why: String,
        /// The writes the engine was to apply, as the redo keeps them
        /// (base64 arguments): what an operator re-applies, whole or in
        /// part as `why` tells, to mend the data.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        redo: Vec<Vec<String>>,
    },
}

/// A transaction the log has not seen end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InDoubt {
    /// The transaction.
    pub tx: String,
    /// Its parts.
    pub parts: Vec<PartRecord>,
    /// Whether it was decided to commit.
    pub committed: bool,
    /// When it was recorded, in milliseconds since the epoch, if known.
    pub at_ms: Option<i64>,
}

/// A transaction that committed but whose buffered engine failed a write
/// as it was applied, not yet acknowledged by an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The transaction.
    pub tx: String,
    /// The engine.
    pub engine: String,
    /// What failed.
    pub why: String,
    /// The writes the engine was to apply (base64 arguments).
    pub redo: Vec<Vec<String>>,
}

/// The log, wherever it is kept.
#[derive(Debug, Clone)]
pub enum TxLog {
    /// A file, locked by the one gateway that uses it.
    File(Arc<FileLog>),
    /// A PostgreSQL table shared by gateway replicas.
    Table(Arc<TableLog>),
}

impl TxLog {
    /// The prefix of every global id this log issues.
    pub fn gid_prefix(&self) -> String {
        match self {
            TxLog::File(log) => log.gid_prefix(),
            TxLog::Table(log) => log.gid_prefix(),
        }
    }

    /// Appends `record`; `durable`: returns once it survives a crash.
    pub async fn append(&self, record: Record, durable: bool) -> std::io::Result<()> {
        match self {
            TxLog::File(log) if durable => log.append(record).await,
            TxLog::File(log) => log.append_lazy(record).await,
            TxLog::Table(log) => log.append(record).await,
        }
    }

    /// Claims `tx`'s committed record for this gateway before its recovery
    /// replays anything: `false` when another gateway holds it (touched
    /// within `takeover_after`) or it has finished. A file has one gateway.
    pub async fn claim(&self, tx: &str, takeover_after: Duration) -> std::io::Result<bool> {
        match self {
            TxLog::File(_) => Ok(true),
            TxLog::Table(log) => log.claim(tx, takeover_after).await,
        }
    }

    /// How `tx` ended as the log records it: `Some((true, parts))`
    /// committed, `Some((false, parts))` rolled back, `None` unknown or
    /// undecided.
    pub async fn outcome(&self, tx: &str) -> std::io::Result<Option<(bool, Vec<PartRecord>)>> {
        match self {
            TxLog::File(log) => log.outcome(tx),
            TxLog::Table(log) => log.outcome(tx).await,
        }
    }

    /// Records the decision on `tx` (COMMIT, or ABORT), unless it was
    /// decided otherwise already (by a replica's recovery, on a shared
    /// log): `false` then, and the other decision stands.
    pub async fn decide(&self, tx: &str, commit: bool, durable: bool) -> std::io::Result<bool> {
        let tx = tx.to_owned();
        match self {
            // One gateway writes the file: nothing decided it otherwise.
            TxLog::File(_) => {
                let record = if commit {
                    Record::Commit { tx }
                } else {
                    Record::Abort { tx }
                };
                self.append(record, durable).await.map(|()| true)
            }
            TxLog::Table(log) => log.decide(&tx, commit).await,
        }
    }

    /// The transactions with no DONE or ABORT that this gateway may
    /// finish: all of a file's; on a shared table, this gateway's own and
    /// those untouched for `takeover_after` (their gateway is gone).
    pub async fn in_doubt(&self, takeover_after: Duration) -> std::io::Result<Vec<InDoubt>> {
        match self {
            TxLog::File(log) => log.in_doubt(),
            TxLog::Table(log) => log.in_doubt(takeover_after).await,
        }
    }

    /// The failed-after-commit transactions not yet acknowledged.
    pub async fn failures(&self) -> std::io::Result<Vec<Failure>> {
        match self {
            TxLog::File(log) => log.failures(),
            TxLog::Table(log) => log.failures().await,
        }
    }

    /// `tx`'s failure after commit, if one is recorded and not yet
    /// acknowledged: which engine, and why.
    pub async fn failure(&self, tx: &str) -> std::io::Result<Option<(String, String)>> {
        match self {
            TxLog::File(log) => Ok(log
                .failures()?
                .into_iter()
                .find(|f| f.tx == tx)
                .map(|f| (f.engine, f.why))),
            TxLog::Table(log) => log.failure(tx).await,
        }
    }

    /// Acknowledges `tx`'s failure after commit; `false` when none is
    /// recorded.
    pub async fn acknowledge(&self, tx: &str) -> std::io::Result<bool> {
        match self {
            TxLog::File(log) => {
                if !log.failures()?.iter().any(|f| f.tx == tx) {
                    return Ok(false);
                }
                let record = Record::Resolved { tx: tx.to_owned() };
                log.append(record).await.map(|()| true)
            }
            TxLog::Table(log) => log.acknowledge(tx).await,
        }
    }

    /// How old a prepared transaction no record names must be before
    /// recovery rolls it back: at once on a file only this gateway writes;
    /// on a shared table, a replica may be between its PREPARE and its
    /// PREPARED record.
    pub fn orphan_age(&self, takeover_after: Duration) -> Duration {
        match self {
            TxLog::File(_) => Duration::ZERO,
            TxLog::Table(_) => takeover_after,
        }
    }
}

/// Arguments as the log keeps them.
pub fn encode_args(args: &[bytes::Bytes]) -> Vec<String> {
    args.iter()
        .map(|a| base64::engine::general_purpose::STANDARD.encode(a))
        .collect()
}

/// Arguments back from the log.
pub fn decode_args(args: &[String]) -> Option<Vec<bytes::Bytes>> {
    args.iter()
        .map(|a| {
            base64::engine::general_purpose::STANDARD
                .decode(a)
                .ok()
                .map(bytes::Bytes::from)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_per_engine_part_has_a_role_earlier_versions_cannot_read() {
        let part = PartRecord::BufferedPerEngine {
            engine: "cache".into(),
            redo: Vec::new(),
        };
        let text = serde_json::to_string(&part).unwrap();
        assert!(text.contains(r#""role":"buffered_per_engine""#), "{text}");
        let earlier: PartRecord =
            serde_json::from_str(r#"{"role":"buffered","engine":"cache","redo":[]}"#).unwrap();
        assert_eq!(earlier.marker("tx"), Some("tx".to_owned()));
        assert_eq!(part.marker("tx"), Some("tx@cache".to_owned()));
    }

    #[test]
    fn redo_arguments_round_trip_through_base64() {
        let args = vec![
            bytes::Bytes::from_static(b"SET"),
            bytes::Bytes::from_static(b"\xff\x00"),
        ];
        assert_eq!(decode_args(&encode_args(&args)), Some(args));
        assert_eq!(decode_args(&["not base64!".to_owned()]), None);
    }
}
