//! What a statement can do to the connection it runs on, beyond itself:
//! change the session (a `SET`, a prepared statement, a temporary table,
//! a session advisory lock, a `LISTEN`, a cursor `WITH HOLD`), which the
//! next caller of the pooled connection would inherit, or lift a
//! read-only request (`SET TRANSACTION READ WRITE`, `COMMIT`).
//!
//! A statement that may change the session marks its connection: the
//! connection is reset with `DISCARD ALL` (PgBouncer's
//! `server_reset_query`) before it goes back to the pool. The test is
//! over the statement's words (comments and string literals skipped), so
//! it errs towards a reset: a statement that mentions `temp` resets too.
//! Functions the operator defined that change settings without `SET
//! LOCAL` are not seen (see the README's security section).

use deadpool_postgres::Object;

use super::KIND;
use super::error::from_pg;
use crate::{Error, Result};

/// Where `needle` first occurs in `bytes` at or after `from`.
fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|n| from + n)
}

/// The words of `text` in lower case: identifiers, keywords, quoted
/// identifiers and `$n` parameters, without comments, string literals
/// (`'..'`, `E'..'`, dollar-quoted) and punctuation. Works on bytes, so
/// no input can split a character.
fn words(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let word = |from: usize, to: usize| String::from_utf8_lossy(&bytes[from..to]).to_lowercase();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
    let mut words = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        if b == b'-' && next == Some(b'-') {
            i = find(bytes, i, b"\n").map_or(bytes.len(), |n| n + 1);
        } else if b == b'/' && next == Some(b'*') {
            // Comments nest in PostgreSQL.
            let mut depth = 0usize;
            while i < bytes.len() {
                if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
                    depth = depth.saturating_sub(1);
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if b == b'\'' {
            // '' inside is a quote; a backslash escapes in E'..'.
            i += 1;
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' => i += 2,
                    b'\'' if bytes.get(i + 1) == Some(&b'\'') => i += 2,
                    b'\'' => {
                        i += 1;
                        break;
                    }
                    _ => i += 1,
                }
            }
        } else if b == b'"' {
            let end = find(bytes, i + 1, b"\"").unwrap_or(bytes.len());
            words.push(word(i + 1, end));
            i = end + 1;
        } else if b == b'$' && next.is_some_and(|c| c.is_ascii_digit()) {
            let start = i;
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            words.push(word(start, i));
        } else if b == b'$' {
            // $tag$ .. $tag$
            let tag_end = find(bytes, i + 1, b"$");
            match tag_end {
                Some(end)
                    if bytes[i + 1..end]
                        .iter()
                        .all(|c| c.is_ascii_alphabetic() || *c == b'_') =>
                {
                    let tag = &bytes[i..=end];
                    i = find(bytes, end + 1, tag).map_or(bytes.len(), |n| n + tag.len());
                }
                _ => i += 1,
            }
        } else if ident(b) {
            let start = i;
            while i < bytes.len() && ident(bytes[i]) {
                i += 1;
            }
            // E'..', B'..', X'..' literals: the prefix is not a word.
            let prefix = i - start == 1 && matches!(b | 0x20, b'e' | b'b' | b'x');
            if !(prefix && bytes.get(i) == Some(&b'\'')) {
                words.push(word(start, i));
            }
        } else {
            i += 1;
        }
    }
    words
}

/// Functions whose effect outlives the statement on the session.
const SESSION_FUNCTIONS: &[&str] = &[
    "set_config",
    "pg_advisory_lock",
    "pg_advisory_lock_shared",
    "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared",
    "dblink_connect",
    "dblink_connect_u",
    "dblink_open",
];

/// Whether running `text` may leave state on the session that the next
/// caller of the connection would see.
pub(super) fn changes_session(text: &str) -> bool {
    let words = words(text);
    let at = |i: usize| words.get(i).map_or("", String::as_str);
    let first = match at(0) {
        // SET LOCAL, SET TRANSACTION and SET CONSTRAINTS end with the
        // transaction; every other SET stays.
        "set" => !matches!(at(1), "local" | "transaction" | "constraints"),
        "reset" | "prepare" | "deallocate" | "listen" | "unlisten" | "declare" | "discard"
        | "load" | "do" | "call" => true,
        _ => false,
    };
    first
        || words.iter().any(|w| {
            matches!(w.as_str(), "temp" | "temporary" | "pg_temp")
                || SESSION_FUNCTIONS.contains(&w.as_str())
        })
}

/// `Err(ReadOnly)` for a statement that would change a read-only
/// request's or transaction's access mode, or end the transaction it runs
/// in: transaction control, `SET TRANSACTION`, `SET SESSION
/// CHARACTERISTICS`, the `*transaction_read_only` settings, `SET ROLE`,
/// `SET SESSION AUTHORIZATION`, any `RESET`, and `set_config()`.
pub(super) fn refuse_lifting_read_only(text: &str) -> Result<()> {
    let words = words(text);
    let at = |i: usize| words.get(i).map_or("", String::as_str);
    let what = match at(0) {
        "begin" | "start" | "commit" | "end" | "rollback" | "abort" => Some("transaction control"),
        "prepare" if at(1) == "transaction" => Some("transaction control"),
        "reset" => Some("RESET"),
        "set" => {
            let target = if matches!(at(1), "session" | "local") {
                at(2)
            } else {
                at(1)
            };
            match target {
                "transaction" | "characteristics" => Some("SET of the transaction's access mode"),
                "transaction_read_only" | "default_transaction_read_only" => {
                    Some("SET of the access mode")
                }
                "role" | "authorization" | "session_authorization" => Some("SET of the role"),
                _ => None,
            }
        }
        _ => None,
    };
    let what = what.or_else(|| {
        words
            .iter()
            .any(|w| w == "set_config")
            .then_some("set_config()")
    });
    match what {
        Some(what) => Err(Error::read_only(
            KIND,
            format!("{what} could lift read-only, and the request is read_only"),
        )),
        None => Ok(()),
    }
}

/// Puts a connection back as it came out of the pool: `DISCARD ALL`
/// (settings, role, prepared statements, cursors, temporary tables,
/// advisory locks, `LISTEN`s), then forgets the statements the connection
/// had prepared, its own and tokio-postgres' type lookups (`DISCARD ALL`
/// dropped them).
pub(super) async fn reset(client: &Object) -> Result<()> {
    client
        .batch_execute("DISCARD ALL")
        .await
        .map_err(|e| from_pg(e, None))?;
    client.statement_cache.clear();
    client.clear_type_cache();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_skip_comments_and_literals() {
        assert_eq!(
            words("SET /* TRANSACTION */ \"Search_Path\" TO 'temp' -- set_config\n, $$x$$"),
            vec!["set", "search_path", "to"]
        );
        assert_eq!(
            words("SELECT $1, E'\\'temp', $a$ temp $a$ y"),
            vec!["select", "$1", "y"]
        );
    }

    #[test]
    fn session_changes_are_seen_and_plain_statements_are_not() {
        for changes in [
            "SET statement_timeout = '1ms'",
            "set session search_path to x",
            "RESET ALL",
            "SET ROLE other",
            "PREPARE p AS SELECT 1",
            "LISTEN ch",
            "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
            "CREATE TEMP TABLE t (v int)",
            "SELECT 1 INTO TEMPORARY t",
            "SELECT pg_catalog.set_config('work_mem', '1MB', false)",
            "SELECT pg_advisory_lock(1)",
            "/* c */ DO $$ BEGIN PERFORM 1; END $$",
        ] {
            assert!(changes_session(changes), "{changes}");
        }
        for plain in [
            "SELECT v FROM t WHERE id = $1",
            "UPDATE t SET v = 1",
            "SET LOCAL statement_timeout = '1s'",
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "SELECT pg_advisory_xact_lock(1)",
            "SELECT 'temp'",
            "INSERT INTO t VALUES ('SET x')",
        ] {
            assert!(!changes_session(plain), "{plain}");
        }
    }

    #[test]
    fn what_would_lift_read_only_is_refused() {
        for lifts in [
            "SET TRANSACTION READ WRITE",
            "set transaction isolation level serializable, read write",
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
            "SET default_transaction_read_only = off",
            "SET LOCAL transaction_read_only TO off",
            "SET \"default_transaction_read_only\" = off",
            "RESET ALL",
            "BEGIN",
            "START TRANSACTION READ WRITE",
            " COMMIT",
            "end",
            "ROLLBACK",
            "PREPARE TRANSACTION 'x'",
            "SET ROLE postgres",
            "SET SESSION AUTHORIZATION postgres",
            "SELECT set_config('transaction_read_only', 'off', true)",
            "/* x */ set/**/transaction read write",
        ] {
            let err = refuse_lifting_read_only(lifts).unwrap_err();
            assert!(matches!(err, Error::ReadOnly(_)), "{lifts}: {err}");
        }
        for fine in [
            "SELECT * FROM t",
            "SET LOCAL statement_timeout = '1s'",
            "SELECT 'SET TRANSACTION READ WRITE'",
            "PREPARE p AS SELECT 1",
        ] {
            refuse_lifting_read_only(fine).unwrap();
        }
    }
}
