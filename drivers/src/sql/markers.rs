//! The deciding engine's markers as rows of one SQL table, `(tx_id TEXT
//! PRIMARY KEY, record TEXT NOT NULL)`: the same statements on PostgreSQL
//! and SQLite (both take `$n` parameters). The primary key is what makes a
//! fence and a late decision exclude each other.

use crate::decision::{DONE, DecisionMarkers, FENCE};
use crate::{Dialect, ResultSet, Statement};

/// The table markers are kept in unless another is given.
pub const DEFAULT_MARKER_TABLE: &str = "omnigate_tx_markers";

/// A SQL engine's markers, in one table (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlMarkers {
    /// The table, written into every statement as it is.
    table: String,
}

impl SqlMarkers {
    /// Markers in `table`, a SQL name written into the statements as it is
    /// (whoever takes it from configuration checks it first).
    pub fn new(table: impl Into<String>) -> Self {
        SqlMarkers {
            table: table.into(),
        }
    }

    /// The table the markers are kept in.
    pub fn table(&self) -> &str {
        &self.table
    }
}

impl Default for SqlMarkers {
    fn default() -> Self {
        SqlMarkers::new(DEFAULT_MARKER_TABLE)
    }
}

impl DecisionMarkers for SqlMarkers {
    fn dialect(&self) -> Dialect {
        Dialect::Sql
    }

    fn setup(&self) -> Statement {
        Statement::new(format!(
            "CREATE TABLE IF NOT EXISTS {} (tx_id TEXT PRIMARY KEY, record TEXT NOT NULL)",
            self.table
        ))
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
            "SELECT tx_id, record FROM {} WHERE tx_id > $1 ORDER BY tx_id LIMIT {limit}",
            self.table
        ))
        .bind(after)
    }

    fn ended(&self) -> Statement {
        Statement::new(format!(
            "SELECT tx_id, record FROM {} WHERE record LIKE '{FENCE}%' OR record LIKE '{DONE}%'",
            self.table
        ))
    }

    fn delete(&self, tx: &str, record: &str) -> Statement {
        Statement::new(format!(
            "DELETE FROM {} WHERE tx_id = $1 AND record = $2",
            self.table
        ))
        .bind(tx)
        .bind(record)
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
        let m = SqlMarkers::default();
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
            "SELECT tx_id, record FROM omnigate_tx_markers WHERE tx_id > $1 \
             ORDER BY tx_id LIMIT 64"
        );
        assert_eq!(
            text(m.ended()),
            "SELECT tx_id, record FROM omnigate_tx_markers \
             WHERE record LIKE 'aborted:%' OR record LIKE 'done:%'"
        );
        assert_eq!(
            text(m.delete("t", "r")),
            "DELETE FROM omnigate_tx_markers WHERE tx_id = $1 AND record = $2"
        );
        assert_eq!(
            text(m.delete_fence("t")),
            "DELETE FROM omnigate_tx_markers WHERE tx_id = $1 AND record LIKE 'aborted:%'"
        );
    }

    #[test]
    fn parameters_bind_in_order_and_the_table_is_one_setting() {
        let m = SqlMarkers::new("ops.markers");
        let swap = m.swap("t", "old", "new");
        assert_eq!(
            swap.params,
            vec![Value::from("t"), Value::from("old"), Value::from("new")]
        );
        assert!(swap.text.starts_with("UPDATE ops.markers SET"));
        assert_eq!(m.table(), "ops.markers");
        let done = ResultSet {
            rows_affected: 1,
            ..ResultSet::default()
        };
        assert!(m.swapped(&done));
        assert!(!m.swapped(&ResultSet::default()));
    }
}
