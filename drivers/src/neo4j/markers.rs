//! Neo4j's markers as a deciding engine: nodes `(:OmnigateTxMarker {tx_id,
//! record})`, unique by `tx_id` through a constraint (as a SQL table's
//! primary key is), so a fence and a late decision exclude each other.

use crate::decision::{DONE, DecisionMarkers, FENCE};
use crate::{Dialect, ResultSet, Statement, Value};

// The marker nodes' label.
use crate::reserved::MARKER_LABEL as LABEL;

/// Neo4j's markers (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Neo4jMarkers;

impl DecisionMarkers for Neo4jMarkers {
    fn dialect(&self) -> Dialect {
        Dialect::Cypher
    }

    /// Neo4j refuses a uniqueness constraint on a label and property that
    /// an index of an earlier version covers: the index goes first.
    fn before_setup(&self) -> Option<Statement> {
        Some(Statement::new("DROP INDEX omnigate_tx_marker IF EXISTS"))
    }

    fn setup(&self) -> Statement {
        Statement::new(format!(
            "CREATE CONSTRAINT omnigate_tx_marker_unique IF NOT EXISTS \
             FOR (m:{LABEL}) REQUIRE m.tx_id IS UNIQUE"
        ))
    }

    fn insert(&self, tx: &str, record: &str) -> Statement {
        Statement::new(format!("CREATE (:{LABEL} {{tx_id: $tx, record: $record}})"))
            .bind_named("tx", tx)
            .bind_named("record", record)
    }

    fn update(&self, tx: &str, record: &str) -> Statement {
        Statement::new(format!(
            "MATCH (m:{LABEL} {{tx_id: $tx}}) SET m.record = $record"
        ))
        .bind_named("tx", tx)
        .bind_named("record", record)
    }

    fn swap(&self, tx: &str, old: &str, new: &str) -> Statement {
        Statement::new(format!(
            "MATCH (m:{LABEL} {{tx_id: $tx}}) WHERE m.record = $old \
             SET m.record = $new RETURN count(m)"
        ))
        .bind_named("tx", tx)
        .bind_named("old", old)
        .bind_named("new", new)
    }

    fn swapped(&self, result: &ResultSet) -> bool {
        result.rows.first().and_then(|r| r.first()) == Some(&Value::Int(1))
    }

    fn read(&self, tx: &str) -> Statement {
        Statement::new(format!("MATCH (m:{LABEL} {{tx_id: $tx}}) RETURN m.record"))
            .bind_named("tx", tx)
    }

    fn page(&self, after: &str, limit: usize) -> Statement {
        Statement::new(format!(
            "MATCH (m:{LABEL}) WHERE m.record IS NOT NULL AND m.tx_id > $after \
             AND NOT m.record STARTS WITH '{FENCE}' AND NOT m.record STARTS WITH '{DONE}' \
             RETURN m.tx_id, m.record ORDER BY m.tx_id LIMIT {limit}"
        ))
        .bind_named("after", after)
    }

    fn page_all(&self, after: &str, limit: usize) -> Statement {
        Statement::new(format!(
            "MATCH (m:{LABEL}) WHERE m.record IS NOT NULL AND m.tx_id > $after \
             RETURN m.tx_id, m.record ORDER BY m.tx_id LIMIT {limit}"
        ))
        .bind_named("after", after)
    }

    fn sweep(&self, done_before: &str, fences_before: &str, limit: usize) -> Statement {
        Statement::new(format!(
            "MATCH (m:{LABEL}) WHERE (m.record STARTS WITH '{DONE}' AND m.record < $done) \
             OR (m.record STARTS WITH '{FENCE}' AND m.record < $fences) \
             WITH m LIMIT {limit} DELETE m"
        ))
        .bind_named("done", done_before)
        .bind_named("fences", fences_before)
    }

    fn delete_fence(&self, tx: &str) -> Statement {
        Statement::new(format!(
            "MATCH (m:{LABEL} {{tx_id: $tx}}) WHERE m.record STARTS WITH '{FENCE}' \
             DELETE m"
        ))
        .bind_named("tx", tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statements, byte for byte as the coordinator wrote them before
    /// they moved here.
    #[test]
    fn the_statements_are_the_coordinators_own() {
        let m = Neo4jMarkers;
        let text = |s: Statement| s.text;
        assert_eq!(m.dialect(), Dialect::Cypher);
        assert_eq!(
            m.before_setup().map(text).as_deref(),
            Some("DROP INDEX omnigate_tx_marker IF EXISTS")
        );
        assert_eq!(
            text(m.setup()),
            "CREATE CONSTRAINT omnigate_tx_marker_unique IF NOT EXISTS \
             FOR (m:OmnigateTxMarker) REQUIRE m.tx_id IS UNIQUE"
        );
        assert_eq!(
            text(m.insert("t", "r")),
            "CREATE (:OmnigateTxMarker {tx_id: $tx, record: $record})"
        );
        assert_eq!(
            text(m.update("t", "r")),
            "MATCH (m:OmnigateTxMarker {tx_id: $tx}) SET m.record = $record"
        );
        assert_eq!(
            text(m.swap("t", "a", "b")),
            "MATCH (m:OmnigateTxMarker {tx_id: $tx}) WHERE m.record = $old \
             SET m.record = $new RETURN count(m)"
        );
        assert_eq!(
            text(m.read("t")),
            "MATCH (m:OmnigateTxMarker {tx_id: $tx}) RETURN m.record"
        );
        assert_eq!(
            text(m.page("", 64)),
            "MATCH (m:OmnigateTxMarker) WHERE m.record IS NOT NULL AND m.tx_id > $after \
             AND NOT m.record STARTS WITH 'aborted:' AND NOT m.record STARTS WITH 'done:' \
             RETURN m.tx_id, m.record ORDER BY m.tx_id LIMIT 64"
        );
        assert_eq!(
            text(m.page_all("", 64)),
            "MATCH (m:OmnigateTxMarker) WHERE m.record IS NOT NULL AND m.tx_id > $after \
             RETURN m.tx_id, m.record ORDER BY m.tx_id LIMIT 64"
        );
        assert_eq!(
            text(m.sweep("done:1", "aborted:2", 100)),
            "MATCH (m:OmnigateTxMarker) WHERE (m.record STARTS WITH 'done:' AND \
             m.record < $done) OR (m.record STARTS WITH 'aborted:' AND m.record < $fences) \
             WITH m LIMIT 100 DELETE m"
        );
        assert_eq!(
            text(m.delete_fence("t")),
            "MATCH (m:OmnigateTxMarker {tx_id: $tx}) WHERE m.record STARTS WITH 'aborted:' \
             DELETE m"
        );
    }

    #[test]
    fn parameters_are_named_and_a_swap_counts_its_node() {
        let swap = Neo4jMarkers.swap("t", "old", "new");
        let names: Vec<&str> = swap.named.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["tx", "old", "new"]);
        let one = ResultSet {
            rows: vec![vec![Value::Int(1)]].into(),
            ..ResultSet::default()
        };
        assert!(Neo4jMarkers.swapped(&one));
        assert!(!Neo4jMarkers.swapped(&ResultSet::default()));
    }
}
