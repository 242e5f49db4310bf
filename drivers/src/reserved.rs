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

/// What every name in [`TABLES`] holds.
const COMMON: &str = "omnigate";

/// Whether `haystack` holds `needle`, ASCII letters compared without case.
fn contains_ignoring_case(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

/// What of the gateway's own a SQL statement names: `schema`
/// (PostgreSQL's gateway schema; `None` on SQLite) or one of its
/// [`TABLES`], anywhere in its text as a whole word (not part of a longer
/// name), without case: as an identifier (quoted or not), and also inside
/// a string, since a string may be code (`DO '…'`, a function's body,
/// `query_to_xml('…')`), a name (SQLite reads `'t'` as one), or not a
/// string at all (`standard_conforming_strings` off). Unicode escapes
/// (`U&"\005fomnigate"`, with `UESCAPE`) are decoded first.
pub fn sql_names(text: &str, schema: Option<&str>) -> Option<String> {
    let decoded = unicode_unescaped(text);
    let bytes = decoded.as_bytes();
    // Every table's name holds `omnigate` (and so does the default
    // schema's): one pass clears most statements, instead of one per name.
    let mentions = |name: &str| contains_ignoring_case(bytes, name.as_bytes());
    if !mentions(COMMON) && schema.is_none_or(|s| !mentions(s)) {
        return None;
    }
    schema
        .into_iter()
        .chain(TABLES)
        .find(|name| contains_word(bytes, name.as_bytes()))
        .map(|name| describe_sql(name, schema))
}

/// Whether `needle` occurs in `haystack` (ASCII letters without case) with
/// no identifier character just before or after it.
fn contains_word(haystack: &[u8], needle: &[u8]) -> bool {
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
    let n = needle.len();
    n > 0
        && haystack.windows(n).enumerate().any(|(i, w)| {
            w.eq_ignore_ascii_case(needle)
                && (i == 0 || !ident(haystack[i - 1]))
                && haystack.get(i + n).is_none_or(|&b| !ident(b))
        })
}

/// `text` with PostgreSQL's Unicode escapes (`\XXXX`, `\+XXXXXX`, after
/// `\` or any character a `UESCAPE` names) decoded wherever they occur,
/// when the text has a `U&` literal; else `text` as it is.
fn unicode_unescaped(text: &str) -> std::borrow::Cow<'_, str> {
    if !contains_ignoring_case(text.as_bytes(), b"u&") {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut escapes = vec!['\\'];
    let lower = text.to_ascii_lowercase();
    for (at, _) in lower.match_indices("uescape") {
        if let Some(c) = text[at + 7..]
            .trim_start()
            .strip_prefix('\'')
            .and_then(|rest| rest.chars().next())
        {
            escapes.push(c);
        }
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if escapes.contains(&c) {
            let (digits, skip) = match chars.get(i + 1) {
                Some('+') => (chars.get(i + 2..i + 8), 8),
                _ => (chars.get(i + 1..i + 5), 5),
            };
            let decoded = digits
                .filter(|d| d.iter().all(char::is_ascii_hexdigit))
                .and_then(|d| u32::from_str_radix(&d.iter().collect::<String>(), 16).ok())
                .and_then(char::from_u32);
            if let Some(decoded) = decoded {
                out.push(decoded);
                i += skip;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    std::borrow::Cow::Owned(out)
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
    // A quoted argument may spell the prefix with escapes (`"\x6fmnigate"`):
    // a backslash anywhere makes the command parsed too.
    let text = statement.text.as_bytes();
    let suspect = contains_ignoring_case(text, prefix)
        || text.contains(&b'\\')
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
    fn every_table_holds_the_common_word_and_a_custom_schema_is_still_found() {
        assert!(TABLES.iter().all(|t| t.contains(COMMON)));
        assert!(DEFAULT_SCHEMA.contains(COMMON));
        // A schema configured without the word is looked for on its own.
        assert!(sql_names("SELECT * FROM gw_state.t", Some("gw_state")).is_some());
        assert!(sql_names("SELECT * FROM accounts", Some("gw_state")).is_none());
    }

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
        // Strings may be code or names; escapes are decoded.
        for text in [
            "SELECT 'omnigate.omnigate_tx_markers'",
            "DO 'BEGIN DELETE FROM omnigate.omnigate_tx_markers; END'",
            "DELETE FROM U&\"\\006fmnigate\".t",
            "DELETE FROM U&\"!006fmnigate\" UESCAPE '!' .t",
            "DELETE FROM U&\"\\+00006fmnigate\".t",
        ] {
            assert!(sql_names(text, s).is_some(), "{text}");
        }
        for text in [
            "SELECT * FROM omnigate_app.users WHERE note = $1",
            "SELECT omnigate_txt FROM t",
            "SELECT my_omnigate FROM t",
            "SELECT 'omnigated'",
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
        assert!(named("DEL \"\\x6fmnigate:tx:abc\"", vec![]).is_some());
    }

    #[test]
    fn cypher_statements_that_name_the_marker_label_are_found() {
        assert!(cypher_names("MATCH (m:OmnigateTxMarker) DELETE m").is_some());
        assert!(cypher_names("MATCH (m:`OmnigateTxMarker`) RETURN m").is_some());
        assert!(cypher_names("MATCH (n:Person) RETURN n").is_none());
    }
}
