//! Helpers for the `sql` dialect shared by SQL engines, and the deciding
//! engine's markers as rows of one table ([`SqlMarkers`]).

mod markers;

pub use markers::{DEFAULT_MARKER_TABLE, SqlMarkers};

/// Whether a SQL statement changes the schema (CREATE, ALTER, DROP), so
/// cached schema metadata must be dropped. Leading comments are skipped.
pub fn is_schema_change(statement: &str) -> bool {
    let keyword = first_keyword(statement);
    ["CREATE", "ALTER", "DROP"]
        .iter()
        .any(|k| keyword.eq_ignore_ascii_case(k))
}

/// Transaction control inside a transaction would end it behind the
/// session's back: a statement whose first keyword is one of `control` is
/// refused, naming what to call instead.
pub fn refuse_control(
    kind: &'static str,
    statement: &crate::Statement,
    control: &[&str],
) -> crate::Result<()> {
    let keyword = first_keyword(&statement.text);
    if control.iter().any(|k| keyword.eq_ignore_ascii_case(k)) {
        return Err(crate::Error::Precondition(crate::EngineError::new(
            kind,
            None,
            format!(
                "{} inside a transaction: commit or roll back the transaction itself",
                keyword.to_ascii_uppercase()
            ),
        )));
    }
    Ok(())
}

/// The statement's first keyword (after comments), e.g. `SELECT`.
pub fn first_keyword(statement: &str) -> &str {
    let mut rest = statement.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after
                .split_once('\n')
                .map_or("", |(_, tail)| tail)
                .trim_start();
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after
                .split_once("*/")
                .map_or("", |(_, tail)| tail)
                .trim_start();
        } else {
            break;
        }
    }
    let end = rest
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(rest.len());
    &rest[..end]
}

#[cfg(test)]
mod tests {
    use super::is_schema_change;

    #[test]
    fn finds_ddl_after_comments() {
        assert!(is_schema_change("create table t (a int)"));
        assert!(is_schema_change("  -- note\n /* x */ DROP TABLE t"));
        assert!(is_schema_change("ALTER TABLE t ADD b int"));
        assert!(!is_schema_change("SELECT 'CREATE'"));
        assert!(!is_schema_change("INSERT INTO created VALUES (1)"));
        assert!(!is_schema_change("-- only a comment"));
        assert_eq!(super::first_keyword(" /* c */ copy t TO STDOUT"), "copy");
    }
}
