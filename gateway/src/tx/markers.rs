//! The deciding engine's markers. The deciding engine of a transaction
//! that spans engines (SQLite or Neo4j, which cannot prepare, else one
//! PostgreSQL part) commits a marker inside its own transaction, and the
//! marker carries the transaction's record: the other parts, their global
//! ids and the buffered engines' writes. That one commit is both the
//! decision and the durable record of what to finish (the "last agent"
//! optimisation of two-phase commit: no log write of the coordinator's
//! own). A marker is deleted once every part has finished, so the markers
//! are exactly the committed transactions not yet finished everywhere.

use omnigate_drivers::{Dialect, ExecuteOptions, Statement, StorageDriver, Value};

use super::log::PartRecord;

/// Whether `driver` can be a deciding engine, and in which dialect its
/// markers are written.
pub(crate) fn deciding_dialect(driver: &dyn StorageDriver) -> Option<Dialect> {
    let descriptor = driver.descriptor();
    if descriptor.dialects.contains(&Dialect::Sql) {
        Some(Dialect::Sql)
    } else if descriptor.kind == omnigate_drivers::neo4j::KIND {
        Some(Dialect::Cypher)
    } else {
        None
    }
}

/// What must go before [`setup`]: Neo4j refuses a uniqueness constraint
/// on a label and property an index of an earlier version covers.
pub(crate) fn before_setup(dialect: Dialect) -> Option<Statement> {
    (dialect == Dialect::Cypher).then(|| Statement::new("DROP INDEX omnigate_tx_marker IF EXISTS"))
}

/// What makes an engine ready to hold markers, run once outside any
/// transaction (DDL inside one would take locks concurrent commits wait
/// on).
pub(crate) fn setup(dialect: Dialect) -> Option<Statement> {
    match dialect {
        Dialect::Sql => Some(Statement::new(
            "CREATE TABLE IF NOT EXISTS omnigate_tx_markers \
             (tx_id TEXT PRIMARY KEY, record TEXT NOT NULL)",
        )),
        // Unique, as the SQL table's key is: a fence (see [`fence`]) and a
        // late decider's marker cannot both be written.
        Dialect::Cypher => Some(Statement::new(
            "CREATE CONSTRAINT omnigate_tx_marker_unique IF NOT EXISTS \
             FOR (m:OmnigateTxMarker) REQUIRE m.tx_id IS UNIQUE",
        )),
        _ => None,
    }
}

/// The marker of `tx` with its record, written inside the deciding
/// engine's transaction.
pub(crate) fn insert(dialect: Dialect, tx: &str, record: &str) -> Statement {
    match dialect {
        Dialect::Cypher => {
            Statement::new("CREATE (:OmnigateTxMarker {tx_id: $tx, record: $record})")
                .bind_named("tx", tx)
                .bind_named("record", record)
        }
        _ => Statement::new("INSERT INTO omnigate_tx_markers (tx_id, record) VALUES ($1, $2)")
            .bind(tx)
            .bind(record),
    }
}

/// Marks `tx`'s marker on `driver` done: every part of the transaction
/// has finished, on `engines`. Whether it was marked. A done marker is no
/// longer finished by recovery; it keeps the transaction's key (a late
/// fence finds the decision) and answers a Commit retried after a restart
/// until it is swept ([`sweep`]). A marker left unmarked (the engine did
/// not answer) is one recovery finishes again.
pub(crate) async fn forget(
    driver: &dyn StorageDriver,
    dialect: Dialect,
    tx: &str,
    engines: &[String],
) -> bool {
    let record = format!(
        "{DONE}{}:{}",
        omnigate_drivers::ts::now_millis(),
        serde_json::to_string(engines).unwrap_or_else(|_| "[]".into())
    );
    let mark = match dialect {
        Dialect::Cypher => {
            Statement::new("MATCH (m:OmnigateTxMarker {tx_id: $tx}) SET m.record = $record")
                .bind_named("tx", tx)
                .bind_named("record", record)
        }
        _ => Statement::new("UPDATE omnigate_tx_markers SET record = $2 WHERE tx_id = $1")
            .bind(tx)
            .bind(record),
    };
    match driver
        .execute(dialect, &mark, &ExecuteOptions::default())
        .await
    {
        Ok(_) => true,
        Err(e) => {
            tracing::debug!(tx_id = %tx, error = %e, "marking a finished transaction's marker done");
            false
        }
    }
}

/// The record of a marker whose transaction has finished everywhere
/// (followed by when, in milliseconds, and its engines as JSON).
const DONE: &str = "done:";

/// How a transaction ended, as its deciding engine's marker tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// Committed (finished everywhere, or decided and being finished), on
    /// these engines.
    Committed(Vec<String>),
    /// Never decided, and rolled back behind a fence.
    RolledBack,
}

/// How transaction `tx` ended, as `driver`'s marker (`engine`'s) tells, if
/// it holds one.
pub(crate) async fn recorded(
    driver: &dyn StorageDriver,
    dialect: Dialect,
    engine: &str,
    tx: &str,
) -> omnigate_drivers::Result<Option<Recorded>> {
    let record = match read_record(driver, dialect, tx).await {
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

/// The record of a fence: a marker that says the transaction was never
/// decided and is being rolled back (followed by when, in milliseconds).
const FENCE: &str = "aborted:";

/// Fences transaction `tx` on a deciding engine before recovery rolls its
/// prepared parts back: a marker saying "aborted" takes the transaction's
/// key, so a deciding commit still under way (its COMMIT slow or cut by a
/// timeout, its marker not yet visible) fails on it instead of committing
/// after the rollback. The insert waits for such a commit to end.
/// `Ok(true)`: fenced, the parts may be rolled back; `Ok(false)`: a
/// decision holds the key (the transaction committed: finish it forward).
pub(crate) async fn fence(
    driver: &dyn StorageDriver,
    dialect: Dialect,
    tx: &str,
) -> omnigate_drivers::Result<bool> {
    let record = format!("{FENCE}{}", omnigate_drivers::ts::now_millis());
    let (statement, options) = (insert(dialect, tx, &record), ExecuteOptions::default());
    let write = || driver.execute(dialect, &statement, &options);
    let mut written = write().await;
    if let Err(omnigate_drivers::Error::NotFound(_)) = &written
        && let Some(setup) = setup(dialect)
    {
        // No marker table yet: made now (a decider making it at the same
        // moment is fenced all the same).
        driver
            .execute(dialect, &setup, &ExecuteOptions::default())
            .await?;
        written = write().await;
    }
    match written {
        Ok(_) => Ok(true),
        Err(omnigate_drivers::Error::ConstraintViolation(_)) => {
            // Held: by a decision, or by an earlier fence of our own.
            let held = read_record(driver, dialect, tx).await?;
            Ok(held.is_some_and(|r| r.starts_with(FENCE)))
        }
        Err(e) => Err(e),
    }
}

/// Claims `marker` for gateway `owner` before its recovery replays
/// anything: the record is swapped for one naming `owner` and now, only if
/// it is still the one read. `false` when it changed meanwhile (another
/// gateway claimed it, or its commit finished and marked it done): then
/// it is not this gateway's to finish now.
pub(crate) async fn claim(
    driver: &dyn StorageDriver,
    dialect: Dialect,
    marker: &Unfinished,
    owner: &str,
) -> omnigate_drivers::Result<bool> {
    let record = serde_json::to_string(&MarkerRecord {
        at: omnigate_drivers::ts::now_millis(),
        owner: Some(owner.to_owned()),
        parts: marker.parts.clone(),
    })
    .map_err(|e| {
        omnigate_drivers::Error::Internal(omnigate_drivers::EngineError::new(
            "gateway",
            None,
            format!("cannot encode a marker: {e}"),
        ))
    })?;
    let swap = match dialect {
        Dialect::Cypher => Statement::new(
            "MATCH (m:OmnigateTxMarker {tx_id: $tx}) WHERE m.record = $old \
             SET m.record = $new RETURN count(m)",
        )
        .bind_named("tx", marker.tx.as_str())
        .bind_named("old", marker.record.as_str())
        .bind_named("new", record),
        _ => Statement::new(
            "UPDATE omnigate_tx_markers SET record = $3 WHERE tx_id = $1 AND record = $2",
        )
        .bind(marker.tx.as_str())
        .bind(marker.record.as_str())
        .bind(record),
    };
    let done = driver
        .execute(dialect, &swap, &ExecuteOptions::default())
        .await?;
    Ok(match dialect {
        Dialect::Cypher => done.rows.first().and_then(|r| r.first()) == Some(&Value::Int(1)),
        _ => done.rows_affected == 1,
    })
}

/// Takes `tx`'s fence off `driver` (only a fence: never a decision).
pub(crate) async fn unfence(
    driver: &dyn StorageDriver,
    dialect: Dialect,
    tx: &str,
) -> omnigate_drivers::Result<()> {
    let delete = match dialect {
        Dialect::Cypher => Statement::new(
            "MATCH (m:OmnigateTxMarker {tx_id: $tx}) WHERE m.record STARTS WITH 'aborted:' \
             DELETE m",
        )
        .bind_named("tx", tx),
        _ => Statement::new(
            "DELETE FROM omnigate_tx_markers WHERE tx_id = $1 AND record LIKE 'aborted:%'",
        )
        .bind(tx),
    };
    driver
        .execute(dialect, &delete, &ExecuteOptions::default())
        .await
        .map(drop)
}

/// The record held under `tx`'s key, if any.
async fn read_record(
    driver: &dyn StorageDriver,
    dialect: Dialect,
    tx: &str,
) -> omnigate_drivers::Result<Option<String>> {
    let read = match dialect {
        Dialect::Cypher => {
            Statement::new("MATCH (m:OmnigateTxMarker {tx_id: $tx}) RETURN m.record")
                .bind_named("tx", tx)
        }
        _ => Statement::new("SELECT record FROM omnigate_tx_markers WHERE tx_id = $1").bind(tx),
    };
    let rows = driver
        .execute(dialect, &read, &ExecuteOptions::default())
        .await?
        .rows;
    Ok(rows
        .into_iter()
        .next()
        .and_then(|row| match row.into_iter().next() {
            Some(Value::String(record)) => Some(record),
            _ => None,
        }))
}

/// Deletes the fences older than `fence_age` (a decider they fenced has
/// long failed by then) and the done markers older than `done_age` (past
/// the window in which a retried Commit is answered).
pub(crate) async fn sweep(
    driver: &dyn StorageDriver,
    dialect: Dialect,
    fence_age: std::time::Duration,
    done_age: std::time::Duration,
) -> omnigate_drivers::Result<()> {
    let scan = match dialect {
        Dialect::Cypher => Statement::new(
            "MATCH (m:OmnigateTxMarker) WHERE m.record STARTS WITH 'aborted:' OR \
             m.record STARTS WITH 'done:' RETURN m.tx_id, m.record",
        ),
        _ => Statement::new(
            "SELECT tx_id, record FROM omnigate_tx_markers \
             WHERE record LIKE 'aborted:%' OR record LIKE 'done:%'",
        ),
    };
    let rows = match driver
        .execute(dialect, &scan, &ExecuteOptions::default())
        .await
    {
        Ok(result) => result.rows,
        Err(omnigate_drivers::Error::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    let now = omnigate_drivers::ts::now_millis();
    for row in rows {
        let [Value::String(tx), Value::String(record)] = &row[..] else {
            continue;
        };
        let (age, rest) = match record.strip_prefix(FENCE) {
            Some(rest) => (fence_age, rest),
            None => (done_age, record.strip_prefix(DONE).unwrap_or_default()),
        };
        let at: i64 = rest
            .split(':')
            .next()
            .and_then(|at| at.parse().ok())
            .unwrap_or(0);
        if u128::try_from(now.saturating_sub(at)).unwrap_or(0) >= age.as_millis() {
            let delete = match dialect {
                Dialect::Cypher => Statement::new(
                    "MATCH (m:OmnigateTxMarker {tx_id: $tx}) WHERE m.record = $record DELETE m",
                )
                .bind_named("tx", tx.as_str())
                .bind_named("record", record.as_str()),
                _ => Statement::new(
                    "DELETE FROM omnigate_tx_markers WHERE tx_id = $1 AND record = $2",
                )
                .bind(tx.as_str())
                .bind(record.as_str()),
            };
            driver
                .execute(dialect, &delete, &ExecuteOptions::default())
                .await?;
        }
    }
    Ok(())
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

/// How many markers are read at once: a backlog is read page by page, so
/// no one read carries every redo payload.
pub(crate) const PAGE: usize = 64;

/// Every marker of `driver` (`Ok(empty)` when it never held one), read
/// page by page.
pub(crate) async fn unfinished(
    driver: &dyn StorageDriver,
    dialect: Dialect,
) -> omnigate_drivers::Result<Vec<Unfinished>> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let (page, last) = unfinished_page(driver, dialect, after.as_deref()).await?;
        all.extend(page);
        match last {
            Some(last) => after = Some(last),
            None => return Ok(all),
        }
    }
}

/// One page of `driver`'s markers after id `after`, and the last id read
/// when there may be more.
pub(crate) async fn unfinished_page(
    driver: &dyn StorageDriver,
    dialect: Dialect,
    after: Option<&str>,
) -> omnigate_drivers::Result<(Vec<Unfinished>, Option<String>)> {
    let after = after.unwrap_or("");
    let scan = match dialect {
        Dialect::Cypher => Statement::new(format!(
            "MATCH (m:OmnigateTxMarker) WHERE m.record IS NOT NULL AND m.tx_id > $after \
             RETURN m.tx_id, m.record ORDER BY m.tx_id LIMIT {PAGE}"
        ))
        .bind_named("after", after),
        _ => Statement::new(format!(
            "SELECT tx_id, record FROM omnigate_tx_markers WHERE tx_id > $1 \
             ORDER BY tx_id LIMIT {PAGE}"
        ))
        .bind(after),
    };
    let options = ExecuteOptions {
        timeout: Some(READ_LIMIT),
        ..ExecuteOptions::default()
    };
    let read = omnigate_drivers::deadline::within(Some(READ_LIMIT), async {
        driver.execute(dialect, &scan, &options).await
    });
    let rows = match read.await {
        Ok(rows) => rows.rows,
        // No marker table: nothing ever committed through it.
        Err(omnigate_drivers::Error::NotFound(_)) => return Ok((Vec::new(), None)),
        Err(e) => return Err(e),
    };
    let more = rows.len() == PAGE;
    let last = rows.last().and_then(|row| match row.first() {
        Some(Value::String(tx)) if more => Some(tx.clone()),
        _ => None,
    });
    let mut found = Vec::with_capacity(rows.len());
    for row in rows {
        let [Value::String(tx), Value::String(record)] = &row[..] else {
            continue;
        };
        if record.starts_with(FENCE) || record.starts_with(DONE) {
            continue;
        }
        // A bare list of parts is read too (a record without its time).
        let read = serde_json::from_str::<MarkerRecord>(record)
            .map(|r| (r.parts, Some(r.at), r.owner))
            .or_else(|_| serde_json::from_str::<Vec<PartRecord>>(record).map(|p| (p, None, None)));
        match read {
            Ok((parts, at_ms, owner)) => found.push(Unfinished {
                tx: tx.clone(),
                parts,
                at_ms,
                owner,
                record: record.clone(),
            }),
            Err(e) => tracing::error!(tx_id = %tx, error = %e, "an unreadable transaction marker"),
        }
    }
    Ok((found, last))
}
