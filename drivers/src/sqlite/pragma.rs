//! PRAGMAs that set a connection's state are refused: the engine's
//! connections are pooled, so `PRAGMA foreign_keys = OFF` from one caller
//! would hold for every caller the connection serves next (and SQLite
//! counts such a statement read-only, so a read-only caller could send
//! it). Reading a setting, and the introspection PRAGMAs that take a
//! table or index name (`PRAGMA table_info(t)`), stay allowed. The
//! engine's own settings are its config's.

use super::KIND;
use crate::{EngineError, Error, Result};

/// PRAGMAs whose argument names what they read, not a value to set.
const READS_WITH_ARGUMENT: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "foreign_key_check",
    "integrity_check",
    "quick_check",
];

/// `Err` when `text` is a PRAGMA that sets something (see the module
/// docs): anything after the PRAGMA's name but a read's argument.
pub(super) fn refuse_setting(text: &str) -> Result<()> {
    let keyword = crate::sql::first_keyword(text);
    if !keyword.eq_ignore_ascii_case("pragma") {
        return Ok(());
    }
    // `first_keyword` is a slice of `text`, after any comment before it.
    let start = keyword.as_ptr() as usize - text.as_ptr() as usize + keyword.len();
    let rest = without_comments(text.get(start..).unwrap_or(""));
    let rest = rest.trim().trim_end_matches(';').trim_end();
    let name_end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(rest.len());
    let name = rest[..name_end].rsplit('.').next().unwrap_or("");
    let after = rest[name_end..].trim();
    let reads = after.is_empty()
        || (after.starts_with('(')
            && after.ends_with(')')
            && READS_WITH_ARGUMENT
                .iter()
                .any(|read| name.eq_ignore_ascii_case(read)));
    if reads {
        return Ok(());
    }
    Err(Error::Precondition(EngineError::new(
        KIND,
        None,
        format!(
            "PRAGMA {name} with a value would change a pooled connection others share: \
             the engine's settings are its config's (reading a PRAGMA is allowed)"
        ),
    )))
}

/// `text` without its comments (`--` to the end of the line, nested
/// `/* */`), each a space.
fn without_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('-', Some('-')) => {
                while chars.next().is_some_and(|d| d != '\n') {}
                out.push(' ');
            }
            ('/', Some('*')) => {
                chars.next();
                crate::sql::skip_block_comment(&mut chars);
                out.push(' ');
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_pragmas_are_refused_and_reading_ones_allowed() {
        for sets in [
            "PRAGMA foreign_keys = OFF",
            "pragma foreign_keys=0",
            "PRAGMA main.ignore_check_constraints(1)",
            "  PRAGMA journal_mode = DELETE",
            "PRAGMA cache_size(-1000)",
            "/* é */ PRAGMA foreign_keys /* x */ = OFF",
            "PRAGMA journal_mode = 'DELETE'",
            "-- c\nPRAGMA foreign_keys -- c\n= 0",
        ] {
            assert!(refuse_setting(sets).is_err(), "{sets}");
        }
        for reads in [
            "PRAGMA foreign_keys",
            "PRAGMA table_info(accounts)",
            "pragma main.index_list('accounts')",
            "SELECT 1",
            "PRAGMA integrity_check",
            "/* é */ PRAGMA foreign_keys; ",
        ] {
            assert!(refuse_setting(reads).is_ok(), "{reads}");
        }
    }
}
