//! What the gateway keeps for itself on an engine (the markers of the
//! transactions it decides or buffers, and its transaction log), by name,
//! and whether a caller's statement names it.
//!
//! A caller that could write a marker could decide a transaction that is
//! not its own, or undo a decision (a deleted marker reads as "never
//! committed" to recovery); one that could read them would see other
//! callers' transaction ids. So the pipeline refuses a caller's statement
//! that names any of it, before the statement reaches the engine (see
//! [`StorageDriver::gateway_state_named`]). The check reads the statement
//! as the engine's lexer does; it is a guard against statements, not a
//! sandbox: SQL built at run time (`EXECUTE` of a string made of pieces)
//! is not read, which the README says beside the privileges a role needs.
//!
//! [`StorageDriver::gateway_state_named`]: crate::StorageDriver::gateway_state_named

use crate::redis_syntax::parse_command;
use crate::sql::words;
use crate::{Statement, Value};

/// How the key (Redis, memory) or node id of a buffered engine's marker
/// begins.
pub const MARKER_KEY_PREFIX: &str = "omnigate:tx:";

/// The label of a graph engine's marker nodes (FalkorDB, Neo4j).
pub const MARKER_LABEL: &str = "OmnigateTxMarker";

/// The PostgreSQL schema the gateway's tables go in unless an engine's
/// `gateway_schema` names another. Not `omnigate`: a login role of that
/// name (a likely one) has `"$user"` first on its search path, so the
/// application's unqualified `CREATE TABLE` would land beside the
/// gateway's tables, where other roles cannot see it.
pub const DEFAULT_SCHEMA: &str = "_omnigate";

/// The gateway's tables on a SQL engine: the deciding engine's markers,
/// and on PostgreSQL the shared transaction log.
pub const TABLES: [&str; 4] = [
    "omnigate_tx_markers",
    "omnigate_tx_log",
    "omnigate_tx_failures",
    "omnigate_tx_meta",
];

/// Whether `haystack` holds `needle`, ASCII letters compared without case.
fn contains_ignoring_case(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

/// What of the gateway's own a SQL statement names: `schema` (PostgreSQL's
/// gateway schema; `None` on SQLite) or one of its [`TABLES`], as a word
/// of the statement (an identifier, quoted or not, compared without case
/// as PostgreSQL folds it), or anywhere in a statement with a
/// dollar-quoted body (`DO $$ .. $$`, a function's body), whose code the
/// lexer reads as a string.
pub fn sql_names(text: &str, schema: Option<&str>) -> Option<String> {
    let names = || schema.into_iter().chain(TABLES);
    let named = |word: &[u8]| names().find(|n| word.eq_ignore_ascii_case(n.as_bytes()));
    if let Some(name) = words(text).find_map(named) {
        return Some(describe_sql(name, schema));
    }
    let bytes = text.as_bytes();
    let dollar_quoted = bytes
        .windows(2)
        .any(|w| w[0] == b'$' && (w[1] == b'$' || w[1].is_ascii_alphabetic() || w[1] == b'_'));
    if dollar_quoted {
        return names()
            .find(|n| contains_ignoring_case(bytes, n.as_bytes()))
            .map(|n| describe_sql(n, schema));
    }
    None
}

fn describe_sql(name: &str, schema: Option<&str>) -> String {
    if Some(name) == schema {
        format!("the schema {name}")
    } else {
        format!("the table {name}")
    }
}

/// Whether a Redis command's arguments name a marker key (one beginning
/// with [`MARKER_KEY_PREFIX`]), as the key or anywhere else (a pattern, a
/// destination). The command is parsed only when its text or a parameter
/// holds the prefix, so other commands cost one scan.
pub fn redis_names(statement: &Statement) -> Option<String> {
    let prefix = MARKER_KEY_PREFIX.as_bytes();
    let in_param = |v: &Value| match v {
        Value::String(s) => s.as_bytes().starts_with(prefix),
        Value::Bytes(b) => b.starts_with(prefix),
        _ => false,
    };
    let suspect = contains_ignoring_case(statement.text.as_bytes(), prefix)
        || statement.params.iter().any(in_param);
    if !suspect {
        return None;
    }
    // A statement that does not parse is refused as such later; a quoted
    // argument is read as Redis will read it.
    let args = parse_command(&statement.text, &statement.params, "redis").ok()?;
    args.iter()
        .any(|a| a.starts_with(prefix))
        .then(|| format!("the marker keys {MARKER_KEY_PREFIX}*"))
}

/// Whether a Cypher statement names the marker label (labels are
/// case-sensitive in Cypher; a backquoted label holds it too).
pub fn cypher_names(text: &str) -> Option<String> {
    text.contains(MARKER_LABEL)
        .then(|| format!("the marker label {MARKER_LABEL}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_statements_that_name_the_gateway_s_tables_are_found() {
        let s = Some("omnigate");
        for text in [
            "SELECT * FROM omnigate.omnigate_tx_markers",
            "delete from OMNIGATE.x",
            "INSERT INTO \"omnigate\".\"omnigate_tx_markers\" VALUES ($1, $2)",
            "SET LOCAL search_path TO omnigate",
            "select * from omnigate_tx_log",
            "DO $$ BEGIN EXECUTE 'DELETE FROM omnigate.omnigate_tx_markers'; END $$",
            "CREATE FUNCTION f() RETURNS void AS $body$ DELETE FROM Omnigate.t $body$ LANGUAGE sql",
        ] {
            assert!(sql_names(text, s).is_some(), "{text}");
        }
        assert_eq!(
            sql_names("TRUNCATE omnigate.t", s).as_deref(),
            Some("the schema omnigate")
        );
        for text in [
            "SELECT 'omnigate.omnigate_tx_markers'",
            "SELECT * FROM omnigate_app.users WHERE note = $1",
            "-- omnigate\nSELECT 1",
            "SELECT omnigate_txt FROM t",
        ] {
            assert_eq!(sql_names(text, s), None, "{text}");
        }
        // SQLite has no gateway schema: only the tables.
        assert_eq!(sql_names("SELECT * FROM omnigate.t", None), None);
        assert!(sql_names("SELECT * FROM omnigate_tx_markers", None).is_some());
    }

    #[test]
    fn redis_commands_that_name_a_marker_key_are_found() {
        let named = |text: &str, params: Vec<Value>| {
            redis_names(&Statement {
                text: text.into(),
                params,
                named: Default::default(),
            })
        };
        assert!(named("DEL omnigate:tx:abc", vec![]).is_some());
        assert!(named("SET \"omnigate:tx:abc\" 1", vec![]).is_some());
        assert!(named("RENAME k omnigate:tx:abc", vec![]).is_some());
        assert!(named("DEL $1", vec![Value::from("omnigate:tx:abc")]).is_some());
        assert!(named("SET k $1", vec![Value::from("x")]).is_none());
        assert!(named("SET k \"see omnigate:tx:1\"", vec![]).is_none());
        assert!(named("SET k v", vec![]).is_none());
    }

    #[test]
    fn cypher_statements_that_name_the_marker_label_are_found() {
        assert!(cypher_names("MATCH (m:OmnigateTxMarker) DELETE m").is_some());
        assert!(cypher_names("MATCH (m:`OmnigateTxMarker`) RETURN m").is_some());
        assert!(cypher_names("MATCH (n:Person) RETURN n").is_none());
    }
}
