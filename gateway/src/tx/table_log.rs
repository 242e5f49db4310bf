//! The transaction log as tables of a PostgreSQL engine, shared by every
//! gateway replica that names the engine: one row per transaction in
//! doubt (PREPARED inserts it, COMMIT updates its state, DONE and ABORT
//! delete it, so the table holds only what is unfinished), written by the
//! engine's own pool; each write is a PostgreSQL commit, durable when it
//! returns.
//!
//! Replicas share the log without stealing from each other: a row carries
//! the gateway that wrote it, and another gateway's recovery takes it over
//! only once it has been untouched for `takeover_after` (its gateway is
//! gone). The decision is fenced in the row: COMMIT updates only a row
//! still PREPARED, and ABORT deletes only a row still PREPARED, so a
//! committing gateway and a recovering replica cannot both win.

use std::sync::Arc;
use std::time::Duration;

use omnigate_drivers::{Dialect, ExecuteOptions, Statement, StorageDriver, Value};

use super::log::{Failure, InDoubt, PartRecord, Record};

/// The log's tables and their columns, made in the engine's gateway
/// schema.
const TABLES: [(&str, &str); 3] = [
    (
        "omnigate_tx_log",
        "tx_id TEXT PRIMARY KEY, state TEXT NOT NULL, parts TEXT NOT NULL, \
         owner TEXT NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now()",
    ),
    (
        "omnigate_tx_failures",
        "tx_id TEXT NOT NULL, engine TEXT NOT NULL, why TEXT NOT NULL, \
         at TIMESTAMPTZ NOT NULL DEFAULT now()",
    ),
    (
        "omnigate_tx_meta",
        "key TEXT PRIMARY KEY, value TEXT NOT NULL",
    ),
];

/// The log in a PostgreSQL engine's tables.
#[derive(Debug)]
pub struct TableLog {
    driver: Arc<dyn StorageDriver>,
    /// The log's identity, shared by the replicas: the global-id prefix.
    id: String,
    /// This gateway, as its rows name it.
    owner: String,
    /// How the tables' names begin: in the engine's gateway schema.
    prefix: String,
}

fn failure(what: &str, e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("{what} the transaction log table: {e}"))
}

impl TableLog {
    /// Makes the tables if they are missing and reads the log's identity.
    pub async fn open(driver: Arc<dyn StorageDriver>, owner: String) -> std::io::Result<Self> {
        let Some(schema) = driver.gateway_schema().map(str::to_owned) else {
            return Err(failure("cannot keep", "the engine is not PostgreSQL"));
        };
        let statement = Statement::new(omnigate_drivers::sql::pg_setup(&schema, &TABLES));
        if run(&driver, &statement).await.is_err() {
            // A failure of the moment (a connection lost) gets one more try.
            run(&driver, &statement)
                .await
                .map_err(|e| failure("cannot make", e))?;
        }
        let log = TableLog {
            driver,
            id: String::new(),
            owner,
            prefix: format!("{schema}.omnigate_tx_"),
        };
        let fresh = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let claim = log
            .sql(
                "INSERT INTO omnigate_tx_meta (key, value) VALUES ('log_id', $1) \
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(fresh);
        run(&log.driver, &claim)
            .await
            .map_err(|e| failure("cannot name", e))?;
        let id = run(
            &log.driver,
            &log.sql("SELECT value FROM omnigate_tx_meta WHERE key = 'log_id'"),
        )
        .await
        .map_err(|e| failure("cannot read", e))?
        .into_scalar();
        let Value::String(id) = id else {
            return Err(failure("cannot read", "no log id"));
        };
        Ok(TableLog {
            id: id.into(),
            ..log
        })
    }

    /// A statement on the log's tables, written with their bare names
    /// (`omnigate_tx_log`) and run in the gateway's schema.
    fn sql(&self, text: &str) -> Statement {
        Statement::new(text.replace("omnigate_tx_", &self.prefix))
    }

    /// The prefix of every global id this log issues.
    pub fn gid_prefix(&self) -> String {
        format!("omnigate-{}-", self.id)
    }

    /// Appends `record` (each write is durable).
    pub async fn append(&self, record: Record) -> std::io::Result<()> {
        let statement = match record {
            Record::Log { .. } => return Ok(()),
            Record::Resolved { tx } => return self.acknowledge(&tx).await.map(drop),
            Record::Prepared { tx, parts, .. } => {
                let parts =
                    serde_json::to_string(&parts).map_err(|e| failure("cannot encode", e))?;
                self.sql(
                    "INSERT INTO omnigate_tx_log (tx_id, state, parts, owner) \
                     VALUES ($1, 'prepared', $2, $3)",
                )
                .bind(tx)
                .bind(parts)
                .bind(self.owner.clone())
            }
            Record::Commit { tx } => return self.decide(&tx, true).await.map(drop),
            Record::Abort { tx } => return self.decide(&tx, false).await.map(drop),
            // Kept, marked done, for a Commit retried within the ended
            // window; swept by recovery after it.
            Record::Done { tx } => self.sql(
                "UPDATE omnigate_tx_log SET state = 'done', updated_at = now() WHERE tx_id = $1",
            )
            .bind(tx),
            Record::FailedAfterCommit {
                tx,
                engine,
                why,
                redo,
            } if !redo.is_empty() => self
                .sql(
                    "WITH failed AS (INSERT INTO omnigate_tx_failures (tx_id, engine, why) \
                     VALUES ($1, $2, $3)) \
                     INSERT INTO omnigate_tx_meta (key, value) \
                     VALUES ('failed_writes:' || $1 || ':' || $2, $4) \
                     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                )
                .bind(tx)
                .bind(engine)
                .bind(why)
                .bind(serde_json::to_string(&redo).unwrap_or_default()),
            Record::FailedAfterCommit {
                tx, engine, why, ..
            } => self
                .sql("INSERT INTO omnigate_tx_failures (tx_id, engine, why) VALUES ($1, $2, $3)")
                .bind(tx)
                .bind(engine)
                .bind(why),
        };
        run(&self.driver, &statement)
            .await
            .map(drop)
            .map_err(|e| failure("cannot write", e))
    }

    /// Records the decision on `tx` if it is still undecided (or, for a
    /// commit, already committed); `false` when it was decided otherwise.
    pub async fn decide(&self, tx: &str, commit: bool) -> std::io::Result<bool> {
        let statement = if commit {
            self.sql(
                "UPDATE omnigate_tx_log SET state = 'committed', updated_at = now() \
                 WHERE tx_id = $1 AND state IN ('prepared', 'committed')",
            )
        } else {
            self.sql(
                "UPDATE omnigate_tx_log SET state = 'aborted', updated_at = now() \
                 WHERE tx_id = $1 AND state = 'prepared'",
            )
        };
        let result = run(&self.driver, &statement.bind(tx.to_owned()))
            .await
            .map_err(|e| failure("cannot write", e))?;
        Ok(result.rows_affected == 1)
    }

    /// This gateway's rows, and those untouched for `takeover_after`.
    pub async fn in_doubt(&self, takeover_after: Duration) -> std::io::Result<Vec<InDoubt>> {
        let statement = self
            .sql(
                "SELECT tx_id, state, parts, \
             (extract(epoch FROM updated_at) * 1000)::bigint FROM omnigate_tx_log \
             WHERE state IN ('prepared', 'committed') \
             AND (owner = $1 OR updated_at <= now() - make_interval(secs => $2)) \
             ORDER BY updated_at",
            )
            .bind(self.owner.clone())
            .bind(takeover_after.as_secs_f64());
        let rows = run(&self.driver, &statement)
            .await
            .map_err(|e| failure("cannot read", e))?;
        let mut doubts = Vec::with_capacity(rows.rows.len());
        for row in rows.rows {
            let [
                Value::String(tx),
                Value::String(state),
                Value::String(parts),
                at,
            ] = &row[..]
            else {
                return Err(failure("cannot read", "a row of unexpected shape"));
            };
            let parts: Vec<PartRecord> = match serde_json::from_str(parts) {
                Ok(parts) => parts,
                Err(e) => {
                    tracing::error!(tx_id = %tx, error = %e, "skipping an unreadable log row");
                    continue;
                }
            };
            doubts.push(InDoubt {
                tx: tx.to_string(),
                parts,
                committed: state == "committed",
                at_ms: match at {
                    Value::Int(ms) => Some(*ms),
                    _ => None,
                },
            });
        }
        Ok(doubts)
    }
}

impl TableLog {
    /// How `tx` ended as the table records it: `Some(true)` committed,
    /// `Some(false)` rolled back, `None` unknown or undecided.
    pub async fn outcome(&self, tx: &str) -> std::io::Result<Option<(bool, Vec<PartRecord>)>> {
        let statement = self
            .sql("SELECT state, parts FROM omnigate_tx_log WHERE tx_id = $1")
            .bind(tx.to_owned());
        let rows = run(&self.driver, &statement)
            .await
            .map_err(|e| failure("cannot read", e))?;
        let Some([Value::String(state), Value::String(parts)]) = rows.rows.first() else {
            return Ok(None);
        };
        let parts = serde_json::from_str(parts.as_str()).unwrap_or_default();
        Ok(match state.as_str() {
            "committed" | "done" => Some((true, parts)),
            "aborted" => Some((false, parts)),
            _ => None,
        })
    }

    /// Claims `tx`'s committed row for this gateway: `true` when it is this
    /// gateway's or untouched for `takeover_after` (and now this one's).
    pub async fn claim(&self, tx: &str, takeover_after: Duration) -> std::io::Result<bool> {
        let statement = self
            .sql(
                "UPDATE omnigate_tx_log SET owner = $2, updated_at = now() \
             WHERE tx_id = $1 AND state = 'committed' \
             AND (owner = $2 OR updated_at <= now() - make_interval(secs => $3))",
            )
            .bind(tx.to_owned())
            .bind(self.owner.clone())
            .bind(takeover_after.as_secs_f64());
        let result = run(&self.driver, &statement)
            .await
            .map_err(|e| failure("cannot claim in", e))?;
        Ok(result.rows_affected == 1)
    }

    /// Deletes the rows of transactions ended more than `age` ago.
    pub async fn sweep(&self, age: Duration) -> std::io::Result<()> {
        let statement = self
            .sql(
                "DELETE FROM omnigate_tx_log WHERE state IN ('done', 'aborted') \
             AND updated_at <= now() - make_interval(secs => $1)",
            )
            .bind(age.as_secs_f64());
        run(&self.driver, &statement)
            .await
            .map(drop)
            .map_err(|e| failure("cannot sweep", e))
    }

    /// The failures after commit not yet acknowledged, with the writes
    /// each failing engine was to apply.
    pub async fn failures(&self) -> std::io::Result<Vec<Failure>> {
        let statement = self.sql(
            "SELECT f.tx_id, f.engine, f.why, m.value FROM omnigate_tx_failures f \
             LEFT JOIN omnigate_tx_meta m \
             ON m.key = 'failed_writes:' || f.tx_id || ':' || f.engine ORDER BY f.at",
        );
        let rows = run(&self.driver, &statement)
            .await
            .map_err(|e| failure("cannot read", e))?;
        Ok(rows
            .rows
            .into_iter()
            .filter_map(|row| match &row[..] {
                [
                    Value::String(tx),
                    Value::String(engine),
                    Value::String(why),
                    writes,
                ] => Some(Failure {
                    tx: tx.to_string(),
                    engine: engine.to_string(),
                    why: why.to_string(),
                    redo: match writes {
                        Value::String(json) => serde_json::from_str(json).unwrap_or_default(),
                        _ => Vec::new(),
                    },
                }),
                _ => None,
            })
            .collect())
    }

    /// `tx`'s failure after commit, if one is recorded: which engine, and
    /// why (its writes are not read).
    pub async fn failure(&self, tx: &str) -> std::io::Result<Option<(String, String)>> {
        let statement = self
            .sql(
                "SELECT engine, why FROM omnigate_tx_failures WHERE tx_id = $1 \
                 ORDER BY at LIMIT 1",
            )
            .bind(tx.to_owned());
        let rows = run(&self.driver, &statement)
            .await
            .map_err(|e| failure("cannot read", e))?;
        Ok(match rows.rows.first() {
            Some([Value::String(engine), Value::String(why)]) => {
                Some((engine.to_string(), why.to_string()))
            }
            _ => None,
        })
    }

    /// Acknowledges `tx`'s failure after commit (and lets go of its
    /// writes); `false` when none is recorded.
    pub async fn acknowledge(&self, tx: &str) -> std::io::Result<bool> {
        // The writes' keys, `failed_writes:TX:ENGINE`, exactly as the
        // failures name them (a range of keys would depend on collation).
        let statement = self
            .sql(
                "WITH writes AS (DELETE FROM omnigate_tx_meta WHERE key IN \
                 (SELECT 'failed_writes:' || tx_id || ':' || engine \
                 FROM omnigate_tx_failures WHERE tx_id = $1)) \
                 DELETE FROM omnigate_tx_failures WHERE tx_id = $1",
            )
            .bind(tx.to_owned());
        let result = run(&self.driver, &statement)
            .await
            .map_err(|e| failure("cannot write", e))?;
        Ok(result.rows_affected > 0)
    }
}

async fn run(
    driver: &Arc<dyn StorageDriver>,
    statement: &Statement,
) -> omnigate_drivers::Result<omnigate_drivers::ResultSet> {
    driver
        .execute(Dialect::Sql, statement, &ExecuteOptions::default())
        .await
}
