//! The deciding engine's markers as rows of one SQL table, `(tx_id TEXT
//! PRIMARY KEY, record TEXT NOT NULL)`: the same statements on PostgreSQL
//! and SQLite (both take `$n` parameters). The primary key is what makes a
//! fence and a late decision exclude each other.

use crate::decision::{DONE, DecisionMarkers, FENCE};
use crate::{Dialect, ResultSet, Statement};

/// The markers' table (in PostgreSQL, in the gateway's schema).
pub const MARKER_TABLE: &str = crate::reserved::TABLES[0];

/// A SQL engine's markers, in one table (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlMarkers {
    /// The table, written into every statement as it is.
    table: String,
    /// What makes the table ready (see [`DecisionMarkers::setup`]).
    setup: String,
    /// How records are compared by time in [`DecisionMarkers::sweep`]:
    /// byte order (PostgreSQL's `COLLATE "C"`; SQLite compares bytes).
    bytewise: &'static str,
    /// What makes the index of open markers (see
    /// [`DecisionMarkers::after_setup`]).
    open_index: String,
}

/// The markers neither done nor fences, as a condition on `record`: the
/// page's, and its index's (the same words, which both engines need to
/// use a partial index).
const OPEN: &str = "record NOT LIKE 'aborted:%' AND record NOT LIKE 'done:%'";

/// The index of the markers not done (see [`DecisionMarkers::after_setup`]).
const OPEN_INDEX: &str = "omnigate_tx_markers_open";

impl SqlMarkers {
    /// SQLite's markers: the table in the engine's database.
    pub fn sqlite() -> Self {
        SqlMarkers {
            table: MARKER_TABLE.to_owned(),
            setup: format!(
                "CREATE TABLE IF NOT EXISTS {MARKER_TABLE} \
                 (tx_id TEXT PRIMARY KEY, record TEXT NOT NULL)"
            ),
            bytewise: "",
            open_index: format!(
                "CREATE INDEX IF NOT EXISTS {OPEN_INDEX} ON {MARKER_TABLE} (tx_id) WHERE {OPEN}"
            ),
        }
    }

    /// PostgreSQL's markers: the table in `schema` (a lowercase SQL name,
    /// checked by the engine's config), made ready by [`pg_setup`].
    pub fn postgres(schema: &str) -> Self {
        SqlMarkers {
            table: format!("{schema}.{MARKER_TABLE}"),
            setup: pg_setup(
                schema,
                &[(MARKER_TABLE, "tx_id TEXT PRIMARY KEY, record TEXT NOT NULL")],
            ),
            bytewise: " COLLATE \"C\"",
            // Made only where it is missing: a role that does not own an
            // administrator's table finds the index the owner made, and a
            // restart takes no lock (the build holds the table's writes).
            open_index: format!(
                "DO $omnigate$ BEGIN IF to_regclass('{schema}.{OPEN_INDEX}') IS NULL THEN \
                 CREATE INDEX IF NOT EXISTS {OPEN_INDEX} ON {schema}.{MARKER_TABLE} (tx_id) \
                 WHERE {OPEN}; END IF; END $omnigate$"
            ),
        }
    }

    /// The table the markers are kept in.
    pub fn table(&self) -> &str {
        &self.table
    }
}

/// One PostgreSQL statement that makes the gateway's `tables` (name,
/// columns) ready in `schema`, asking for no privilege it does not need:
/// the schema is made only when it is missing (which needs CREATE on the
/// database), a table only when it is missing (CREATE on the schema). So a
/// role given USAGE and CREATE on the schema works, and so does one given
/// only DML on tables an administrator made. Two gateways making them at
/// once both succeed.
///
/// An earlier version's table — where its unqualified name resolves on
/// the role's search path (`public`, or the schema that version's README
/// put first), as that version's own statements resolved it — is moved
/// in instead, with its rows (a transaction in doubt among them), which
/// needs its ownership; a view of the same name is left where it was, so
/// a replica still running the earlier version reads and writes the moved
/// rows rather than making an empty table there. Tables of the same name
/// elsewhere (another gateway's schema) are not touched. Never a fresh
/// table beside an earlier one that still holds rows: the statement fails
/// saying so (ignoring their rows would take their decisions for none).
pub fn pg_setup(schema: &str, tables: &[(&str, &str)]) -> String {
    let mut body = format!(
        "IF to_regnamespace('{schema}') IS NULL THEN \
         BEGIN CREATE SCHEMA {schema}; \
         EXCEPTION WHEN duplicate_schema OR unique_violation THEN NULL; END; END IF; "
    );
    for (table, columns) in tables {
        body.push_str(&format!(
            "place := NULL; \
             SELECT n.nspname INTO place FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.oid = to_regclass('{table}') AND c.relkind = 'r' \
             AND n.nspname <> '{schema}'; \
             IF to_regclass('{schema}.{table}') IS NULL THEN \
               IF place IS NOT NULL THEN \
                 EXECUTE format('ALTER TABLE %I.{table} SET SCHEMA {schema}', place); \
                 BEGIN EXECUTE format('CREATE VIEW %I.{table} AS SELECT * FROM {schema}.{table}', \
                   place); \
                 EXCEPTION WHEN OTHERS THEN RAISE WARNING 'moved %.{table} into schema {schema} \
                   but could not leave a view in its place (%): stop every gateway of an earlier \
                   version before starting this one', place, SQLERRM; END; \
               ELSE BEGIN CREATE TABLE {schema}.{table} ({columns}); \
                 EXCEPTION WHEN duplicate_table OR unique_violation THEN NULL; END; \
               END IF; \
             ELSIF place IS NOT NULL THEN \
               EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.{table})', place) INTO held; \
               IF held THEN RAISE EXCEPTION 'table %.{table} of an earlier gateway holds \
                 transaction records beside {schema}.{table}: stop every gateway, move its rows \
                 into {schema}.{table}, drop it, and start again', place; END IF; \
             END IF; "
        ));
    }
    format!(
        "DO $omnigate$ DECLARE place text; held boolean; \
         BEGIN {body}END $omnigate$"
    )
}

impl DecisionMarkers for SqlMarkers {
    fn dialect(&self) -> Dialect {
        Dialect::Sql
    }

    fn setup(&self) -> Statement {
        Statement::new(self.setup.clone())
    }

    fn after_setup(&self) -> Option<Statement> {
        Some(Statement::new(self.open_index.clone()))
    }

    fn insert(&self, tx: &str, record: &str) -> Statement {
        Statement::new(format!(
            "INSERT INTO {} (tx_id, record) VALUES ($1, $2)",
            self.table
        ))
        .bind(tx)
        .bind(record)
    }

    fn update(&self, tx: &str, record: &str) -> Statement {
        Statement::new(format!(
            "UPDATE {} SET record = $2 WHERE tx_id = $1",
            self.table
        ))
        .bind(tx)
        .bind(record)
    }

    /// `UPDATE .. FROM (VALUES ..)`: PostgreSQL, and SQLite since 3.33
    /// (which names a VALUES list's columns `column1`.. as PostgreSQL does,
    /// but takes no column aliases after a table alias).
    fn update_many(&self, rows: &[(&str, &str)]) -> Option<Statement> {
        let values: Vec<String> = (0..rows.len())
            .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
            .collect();
        let mut statement = Statement::new(format!(
            "UPDATE {table} SET record = v.record FROM (SELECT column1 AS tx_id, \
             column2 AS record FROM (VALUES {}) AS listed) AS v \
             WHERE {table}.tx_id = v.tx_id",
            values.join(", "),
            table = self.table
        ));
        for (tx, record) in rows {
            statement = statement.bind(*tx).bind(*record);
        }
        Some(statement)
    }

    fn swap(&self, tx: &str, old: &str, new: &str) -> Statement {
        Statement::new(format!(
            "UPDATE {} SET record = $3 WHERE tx_id = $1 AND record = $2",
            self.table
        ))
        .bind(tx)
        .bind(old)
        .bind(new)
    }

    fn swapped(&self, result: &ResultSet) -> bool {
        result.rows_affected == 1
    }

    fn read(&self, tx: &str) -> Statement {
        Statement::new(format!(
            "SELECT record FROM {} WHERE tx_id = $1",
            self.table
        ))
        .bind(tx)
    }

    fn page(&self, after: &str, limit: usize) -> Statement {
        Statement::new(format!(
            "SELECT tx_id, record FROM {} WHERE {OPEN} AND tx_id > $1 \
             ORDER BY tx_id LIMIT {limit}",
            self.table
        ))
        .bind(after)
    }

    fn page_all(&self, after: &str, limit: usize) -> Statement {
        Statement::new(format!(
            "SELECT tx_id, record FROM {} WHERE tx_id > $1 ORDER BY tx_id LIMIT {limit}",
            self.table
        ))
        .bind(after)
    }

    fn sweep(&self, done_before: &str, fences_before: &str, limit: usize) -> Statement {
        Statement::new(format!(
            "DELETE FROM {t} WHERE tx_id IN (SELECT tx_id FROM {t} \
             WHERE (record LIKE '{DONE}%' AND record{c} < $1) \
             OR (record LIKE '{FENCE}%' AND record{c} < $2) LIMIT {limit})",
            t = self.table,
            c = self.bytewise
        ))
        .bind(done_before)
        .bind(fences_before)
    }

    fn delete_fence(&self, tx: &str) -> Statement {
        Statement::new(format!(
            "DELETE FROM {} WHERE tx_id = $1 AND record LIKE '{FENCE}%'",
            self.table
        ))
        .bind(tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;

    /// The statements, byte for byte as the coordinator wrote them before
    /// they moved here.
    #[test]
    fn the_statements_are_the_coordinators_own() {
        let m = SqlMarkers::sqlite();
        let text = |s: Statement| s.text;
        assert_eq!(m.dialect(), Dialect::Sql);
        assert!(m.before_setup().is_none());
        assert_eq!(
            text(m.setup()),
            "CREATE TABLE IF NOT EXISTS omnigate_tx_markers \
             (tx_id TEXT PRIMARY KEY, record TEXT NOT NULL)"
        );
        assert_eq!(
            text(m.insert("t", "r")),
            "INSERT INTO omnigate_tx_markers (tx_id, record) VALUES ($1, $2)"
        );
        assert_eq!(
            text(m.update("t", "r")),
            "UPDATE omnigate_tx_markers SET record = $2 WHERE tx_id = $1"
        );
        assert_eq!(
            text(m.swap("t", "a", "b")),
            "UPDATE omnigate_tx_markers SET record = $3 WHERE tx_id = $1 AND record = $2"
        );
        assert_eq!(
            text(m.read("t")),
            "SELECT record FROM omnigate_tx_markers WHERE tx_id = $1"
        );
        assert_eq!(
            text(m.page("", 64)),
            "SELECT tx_id, record FROM omnigate_tx_markers WHERE record NOT LIKE 'aborted:%' \
             AND record NOT LIKE 'done:%' AND tx_id > $1 ORDER BY tx_id LIMIT 64"
        );
        assert_eq!(
            text(m.page_all("", 64)),
            "SELECT tx_id, record FROM omnigate_tx_markers WHERE tx_id > $1 \
             ORDER BY tx_id LIMIT 64"
        );
        assert_eq!(
            m.after_setup().map(text).as_deref(),
            Some(
                "CREATE INDEX IF NOT EXISTS omnigate_tx_markers_open ON omnigate_tx_markers \
                 (tx_id) WHERE record NOT LIKE 'aborted:%' AND record NOT LIKE 'done:%'"
            )
        );
        assert_eq!(
            text(m.sweep("done:1", "aborted:2", 100)),
            "DELETE FROM omnigate_tx_markers WHERE tx_id IN (SELECT tx_id FROM \
             omnigate_tx_markers WHERE (record LIKE 'done:%' AND record < $1) \
             OR (record LIKE 'aborted:%' AND record < $2) LIMIT 100)"
        );
        let pg = SqlMarkers::postgres("ops");
        assert!(text(pg.sweep("d", "f", 1)).contains("record COLLATE \"C\" < $1"));
        assert!(
            pg.after_setup()
                .map(text)
                .is_some_and(|t| t.contains("to_regclass('ops.omnigate_tx_markers_open') IS NULL"))
        );
        assert_eq!(
            text(m.delete_fence("t")),
            "DELETE FROM omnigate_tx_markers WHERE tx_id = $1 AND record LIKE 'aborted:%'"
        );
    }

    #[test]
    fn parameters_bind_in_order_and_the_table_is_one_setting() {
        let m = SqlMarkers::postgres("ops");
        let swap = m.swap("t", "old", "new");
        assert_eq!(
            swap.params,
            vec![Value::from("t"), Value::from("old"), Value::from("new")]
        );
        assert!(swap.text.starts_with("UPDATE ops.omnigate_tx_markers SET"));
        assert_eq!(m.table(), "ops.omnigate_tx_markers");
        assert!(m.setup().text.starts_with("DO $omnigate$"));
        assert!(
            m.setup()
                .text
                .contains("ALTER TABLE %I.omnigate_tx_markers SET SCHEMA ops")
        );
        let done = ResultSet {
            rows_affected: 1,
            ..ResultSet::default()
        };
        assert!(m.swapped(&done));
        assert!(!m.swapped(&ResultSet::default()));
    }
}
