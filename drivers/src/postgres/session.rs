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

use crate::sql::words;

/// Whether `word` is `name` (lower case), in any case.
fn is(word: Option<&[u8]>, name: &str) -> bool {
    word.is_some_and(|w| w.eq_ignore_ascii_case(name.as_bytes()))
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
/// caller of the connection would see: the driver then resets the
/// connection (`DISCARD ALL`) before it serves anyone else.
pub fn changes_session(text: &str) -> bool {
    let mut words = words(text);
    let (first, second) = (words.next(), words.next());
    let leading = |w: Option<&[u8]>, names: &[&str]| names.iter().any(|n| is(w, n));
    // SET LOCAL, SET TRANSACTION and SET CONSTRAINTS end with the
    // transaction; every other SET stays.
    if is(first, "set") && !leading(second, &["local", "transaction", "constraints"]) {
        return true;
    }
    let session_statements = [
        "reset",
        "prepare",
        "deallocate",
        "listen",
        "unlisten",
        "declare",
        "discard",
        "load",
        "do",
        "call",
    ];
    if leading(first, &session_statements) {
        return true;
    }
    let session_word = |w: &[u8]| {
        // Every name below starts with one of these: most words stop here.
        if !matches!(w.first().map(|b| b | 0x20), Some(b't' | b'p' | b's' | b'd')) {
            return false;
        }
        // How literals are read: a statement after it could hide a
        // word from this scan, so the session is reset whatever follows.
        [
            "temp",
            "temporary",
            "pg_temp",
            // UPDATE pg_settings SET setting = .. is set_config(.., false).
            "pg_settings",
            "standard_conforming_strings",
        ]
        .iter()
        .chain(SESSION_FUNCTIONS)
        .any(|n| w.eq_ignore_ascii_case(n.as_bytes()))
    };
    [first, second]
        .into_iter()
        .flatten()
        .chain(words)
        .any(session_word)
}

/// `Err(ReadOnly)` for a statement that would change a read-only
/// request's or transaction's access mode, or end the transaction it runs
/// in: transaction control, `SET TRANSACTION`, `SET SESSION
/// CHARACTERISTICS`, the `*transaction_read_only` settings, `SET ROLE`,
/// `SET SESSION AUTHORIZATION`, any `RESET`, and `set_config()`.
pub(super) fn refuse_lifting_read_only(text: &str) -> Result<()> {
    let mut words = words(text);
    let (first, second, third) = (words.next(), words.next(), words.next());
    let any = |w: Option<&[u8]>, names: &[&str]| names.iter().any(|n| is(w, n));
    let control = ["begin", "start", "commit", "end", "rollback", "abort"];
    let what = if any(first, &control) || (is(first, "prepare") && is(second, "transaction")) {
        Some("transaction control")
    } else if is(first, "reset") {
        Some("RESET")
    } else if is(first, "set") {
        let target = if any(second, &["session", "local"]) {
            third
        } else {
            second
        };
        if any(target, &["transaction", "characteristics"]) {
            Some("SET of the transaction's access mode")
        } else if any(
            target,
            &["transaction_read_only", "default_transaction_read_only"],
        ) {
            Some("SET of the access mode")
        } else if any(target, &["role", "authorization", "session_authorization"]) {
            Some("SET of the role")
        } else if is(target, "standard_conforming_strings") {
            Some("SET of how literals are read")
        } else {
            None
        }
    } else {
        None
    };
    let set_config = |w: &[u8]| w.eq_ignore_ascii_case(b"set_config");
    let what = what.or_else(|| {
        [first, second, third]
            .into_iter()
            .flatten()
            .chain(words)
            .any(set_config)
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

    fn all(text: &str) -> Vec<String> {
        words(text)
            .map(|w| String::from_utf8_lossy(w).to_lowercase())
            .collect()
    }

    #[test]
    fn words_skip_comments_and_literals() {
        assert_eq!(
            all("SET /* TRANSACTION */ \"Search_Path\" TO 'temp' -- set_config\n, $$x$$"),
            vec!["set", "search_path", "to"]
        );
        assert_eq!(
            all("SELECT $1, E'\\'temp', $a$ temp $a$ y"),
            vec!["select", "$1", "y"]
        );
    }

    #[test]
    fn no_input_makes_it_panic() {
        let tricky = "SET x = E'\\\\' /* /* é */ -- \n \"q é\" $1 $tag$ é $tag $$ 'unterminated é";
        for (end, _) in tricky.char_indices().chain([(tricky.len(), ' ')]) {
            let text = &tricky[..end];
            let _ = changes_session(text);
            let _ = refuse_lifting_read_only(text);
            let _ = all(text);
        }
        for text in ["$", "E", "'", "\"", "/*", "--", "$a", "$a$", "é'"] {
            let _ = changes_session(text);
        }
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
            "SELECT 'C:\\', set_config('work_mem', '1MB', false)",
            "SET LOCAL standard_conforming_strings = off",
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
            "SELECT 'C:\\', set_config('role', 'postgres', true)",
            "SET LOCAL standard_conforming_strings = off",
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
