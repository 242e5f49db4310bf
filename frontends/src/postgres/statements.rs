//! What the session reads in a statement's text before deciding where it
//! runs: whether the session answers it itself, what a `SET` sets, which
//! prepared statement a `DEALLOCATE` names. All of it through the one SQL
//! lexer (`omnigate::drivers::sql`).

use omnigate::drivers::sql::first_keyword;

/// Whether the session answers `text` itself (transaction control,
/// settings, what the front end refuses) rather than its engine.
pub(super) fn is_control(text: &str) -> bool {
    let keyword = first_keyword(text).to_ascii_uppercase();
    matches!(
        keyword.as_str(),
        "BEGIN"
            | "START"
            | "COMMIT"
            | "END"
            | "ROLLBACK"
            | "ABORT"
            | "SAVEPOINT"
            | "RELEASE"
            | "SET"
            | "RESET"
            | "DISCARD"
            | "LISTEN"
            | "UNLISTEN"
            | "NOTIFY"
            | "COPY"
            | "PREPARE"
            | "EXECUTE"
            | "DEALLOCATE"
    ) || (keyword == "SHOW" && text.to_ascii_lowercase().contains("omnigate.tx_id"))
}

/// The session settings a client may make that change nothing the gateway
/// returns (drivers send them at connect): answered `SET`, not run.
pub(super) const INERT_SETTINGS: &[&str] =
    &["application_name", "extra_float_digits", "client_encoding"];

/// The settings that say how an engine writes values as text, lower-cased:
/// a client's driver reads text cells by the formats it was told at login
/// (and PostgreSQL's defaults for the others), and the gateway forwards a
/// PostgreSQL engine's cells only while its connections write them so. A
/// `SET` of one, `LOCAL` or not, is refused (but a session's inert
/// `SET extra_float_digits`, [`INERT_SETTINGS`]).
pub(super) const OUTPUT_SETTINGS: &[&str] = &[
    "datestyle",
    "intervalstyle",
    "bytea_output",
    "extra_float_digits",
];

/// The setting a `SET [LOCAL | SESSION] name ...` names, lower-cased, read
/// by the SQL lexer (comments skipped, a quoted name unquoted), and whether
/// it is `LOCAL`; `None` when the statement names none.
pub(super) fn set_target(statement: &str) -> Option<(String, bool)> {
    let mut words = omnigate::drivers::sql::words(statement).skip(1);
    let mut word = words.next()?;
    let local = word.eq_ignore_ascii_case(b"local");
    if local || word.eq_ignore_ascii_case(b"session") {
        word = words.next()?;
    }
    Some((String::from_utf8_lossy(word).to_ascii_lowercase(), local))
}

/// The setting a `SET [SESSION] name = value` / `... TO value` names,
/// lower-cased, and its value unquoted; `None` for `SET LOCAL` and other
/// forms.
pub(super) fn set_parts(statement: &str) -> Option<(String, String)> {
    // From the SET the lexer found, past any comment before it.
    let keyword = first_keyword(statement);
    let start = (keyword.as_ptr() as usize).checked_sub(statement.as_ptr() as usize)?;
    let rest = statement.get(start + keyword.len()..)?.trim_start();
    let rest = match rest.get(..8) {
        Some(word) if word.eq_ignore_ascii_case("session ") => rest[8..].trim_start(),
        _ => rest,
    };
    let lower = rest.to_ascii_lowercase();
    let (name, value) = match (rest.find('='), lower.find(" to ")) {
        (Some(eq), _) => (&rest[..eq], &rest[eq + 1..]),
        (None, Some(to)) => (&rest[..to], &rest[to + 4..]),
        (None, None) => return None,
    };
    let value = value.trim();
    let value = value
        .strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .unwrap_or(value);
    Some((name.trim().to_ascii_lowercase(), value.to_owned()))
}

/// `DEALLOCATE [PREPARE] name`: the session forgets the client's
/// statement of that name (`DEALLOCATE ALL` leaves pgwire's store as it
/// is: it cannot list them; statements are per connection and go with it).
pub(super) fn forget_deallocated(
    store: &impl pgwire::api::store::PortalStore,
    session: &super::session::Session,
    text: &str,
) {
    let mut words = omnigate::drivers::sql::words(text);
    if !words
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case(b"deallocate"))
    {
        return;
    }
    let name = match words.next() {
        Some(w) if w.eq_ignore_ascii_case(b"prepare") => words.next(),
        other => other,
    };
    let Some(name) = name else {
        return;
    };
    let kept = super::session::Kept::Statements;
    let names = if name.eq_ignore_ascii_case(b"all") {
        session.drop_kept(kept, None)
    } else {
        let name = String::from_utf8_lossy(name).into_owned();
        session.drop_kept(kept, Some(&name));
        vec![name]
    };
    for name in names {
        store.rm_statement(&name);
    }
}

#[cfg(test)]
mod tests {
    use super::set_parts;

    #[test]
    fn reads_what_a_set_sets() {
        let parts = |s| set_parts(s).unwrap();
        assert_eq!(
            parts("SET omnigate.tx_id = 'abc'"),
            ("omnigate.tx_id".into(), "abc".into())
        );
        assert_eq!(
            parts("set Application_Name TO psql"),
            ("application_name".into(), "psql".into())
        );
        assert_eq!(
            parts("SET SESSION search_path = x"),
            ("search_path".into(), "x".into())
        );
        assert_eq!(set_parts("SET LOCAL"), None);
        assert_eq!(parts("-- c\rSET a = 1"), ("a".into(), "1".into()));
    }
}
