//! Helpers for the `sql` dialect shared by SQL engines, and the deciding
//! engine's markers as rows of one table ([`SqlMarkers`]).

mod lexer;
mod markers;

pub use lexer::{Words, skip_block_comment, words};
pub use markers::{MARKER_TABLE, SqlMarkers, pg_setup};

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

/// Transaction control: what a pooled connection must not run outside a
/// transaction, where it would begin or end one behind the pool's back.
const TRANSACTION_CONTROL: &[&str] = &["BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT"];

/// Outside a transaction, transaction control would leave a pooled
/// connection inside a transaction block (every later caller's writes
/// then wait for a commit that never comes), or end one it does not
/// own: refused, naming what to use.
///
/// `keyword` is the statement's [`first_keyword`] (a caller that needs it
/// too reads it once).
pub fn refuse_control_outside(kind: &'static str, keyword: &str) -> crate::Result<()> {
    if TRANSACTION_CONTROL
        .iter()
        .any(|k| keyword.eq_ignore_ascii_case(k))
    {
        return Err(crate::Error::Precondition(crate::EngineError::new(
            kind,
            None,
            format!(
                "{} outside a transaction would change a pooled connection others share: \
                 begin a gateway transaction instead (Begin over gRPC, Gateway::begin, or \
                 BEGIN on the PostgreSQL-wire front end)",
                keyword.to_ascii_uppercase()
            ),
        )));
    }
    Ok(())
}

/// The statement's first keyword, e.g. `SELECT`: its first word as the
/// lexer reads it (after comments, nested ones too, and any `;`); empty
/// when it has none.
pub fn first_keyword(statement: &str) -> &str {
    let Some(word) = words(statement).next() else {
        // Empty, but still a slice of the statement (at its end), so a
        // caller may take its offset.
        return &statement[statement.len()..];
    };
    // A word is a slice of the text that starts and ends at ASCII bytes
    // or runs of non-ASCII ones: a whole number of characters.
    let start = word.as_ptr() as usize - statement.as_ptr() as usize;
    statement.get(start..start + word.len()).unwrap_or("")
}

/// The statements of a SQL text that may hold several separated by `;`
/// (a PostgreSQL simple query), each trimmed, empty ones dropped. A `;`
/// inside a string (`'...'`, `E'...'` with backslash escapes), a quoted
/// name (`"..."`), a dollar-quoted string (`$tag$...$tag$`) or a comment
/// (`--`, nested `/* */`) does not split.
pub fn split_statements(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut statements = Vec::new();
    let mut start = 0;
    let mut i = 0;
    fn push<'a>(statements: &mut Vec<&'a str>, piece: &'a str) {
        let piece = piece.trim();
        if !piece.is_empty() {
            statements.push(piece);
        }
    }
    while i < bytes.len() {
        match bytes[i] {
            b';' => {
                push(&mut statements, &text[start..i]);
                start = i + 1;
                i += 1;
            }
            b'\'' => {
                let escapes = i > 0 && matches!(bytes[i - 1], b'E' | b'e');
                i = skip_quoted(bytes, i + 1, b'\'', escapes);
            }
            b'"' => i = skip_quoted(bytes, i + 1, b'"', false),
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = bytes[i..]
                    .iter()
                    .position(|b| matches!(b, b'\n' | b'\r'))
                    .map_or(bytes.len(), |n| i + n + 1);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let mut depth = 0usize;
                while i < bytes.len() {
                    if bytes[i..].starts_with(b"/*") {
                        depth += 1;
                        i += 2;
                    } else if bytes[i..].starts_with(b"*/") {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'$' => i = skip_dollar_quoted(text, i),
            _ => i += 1,
        }
    }
    push(&mut statements, &text[start..]);
    statements
}

/// The index after the quote closing a string that opened before `i`; a
/// doubled quote is one quote, and with `escapes` a backslash escapes the
/// next byte. An unclosed string runs to the end.
fn skip_quoted(bytes: &[u8], mut i: usize, quote: u8, escapes: bool) -> usize {
    while i < bytes.len() {
        if escapes && bytes[i] == b'\\' {
            i += 2;
        } else if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// At a `$` at `i`: past the dollar-quoted string it opens (`$$...$$`,
/// `$tag$...$tag$`), or past the `$` alone when it opens none (`$1`).
fn skip_dollar_quoted(text: &str, i: usize) -> usize {
    let rest = &text[i + 1..];
    let tag_len = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let tag = &rest[..tag_len];
    if rest[tag_len..].starts_with('$') && !tag.starts_with(|c: char| c.is_ascii_digit()) {
        let delimiter = &text[i..i + tag_len + 2];
        let body = i + tag_len + 2;
        return text[body..]
            .find(delimiter)
            .map_or(text.len(), |at| body + at + delimiter.len());
    }
    i + 1
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
        // What PostgreSQL's lexer skips, this does too: a carriage return
        // ends a line comment, comments nest, empty statements vanish.
        assert_eq!(
            super::first_keyword("-- x\rSET TRANSACTION READ WRITE"),
            "SET"
        );
        assert_eq!(super::first_keyword("/* /* */ */ BEGIN"), "BEGIN");
        assert_eq!(super::first_keyword(";BEGIN"), "BEGIN");
        assert_eq!(super::first_keyword("-- only"), "");
    }

    #[test]
    fn splits_on_semicolons_outside_quotes_and_comments() {
        use super::split_statements as split;
        assert_eq!(
            split("BEGIN; SELECT 1;COMMIT"),
            ["BEGIN", "SELECT 1", "COMMIT"]
        );
        assert_eq!(split(" ; ;; "), Vec::<&str>::new());
        assert_eq!(
            split("SELECT ';', \"a;b\" FROM t"),
            ["SELECT ';', \"a;b\" FROM t"]
        );
        assert_eq!(
            split("SELECT 'it''s;'; SELECT 2"),
            ["SELECT 'it''s;'", "SELECT 2"]
        );
        assert_eq!(
            split("SELECT E'\\';'; SELECT 2"),
            ["SELECT E'\\';'", "SELECT 2"]
        );
        assert_eq!(
            split("SELECT 1 -- a;b\n; SELECT 2"),
            ["SELECT 1 -- a;b", "SELECT 2"]
        );
        assert_eq!(
            split("SELECT /* a /* ; */ ; */ 1; x"),
            ["SELECT /* a /* ; */ ; */ 1", "x"]
        );
        assert_eq!(
            split("DO $f$ BEGIN PERFORM 1; END $f$; SELECT $1"),
            ["DO $f$ BEGIN PERFORM 1; END $f$", "SELECT $1"]
        );
        assert_eq!(split("SELECT $$a;b$$;"), ["SELECT $$a;b$$"]);
        // Unclosed quotes and comments run to the end, never panic.
        assert_eq!(split("SELECT 'x; y"), ["SELECT 'x; y"]);
        assert_eq!(split("SELECT /* x; y"), ["SELECT /* x; y"]);
        assert_eq!(split("SELECT $a$ x; y"), ["SELECT $a$ x; y"]);
        assert_eq!(split("é;ü$"), ["é", "ü$"]);
    }
}
