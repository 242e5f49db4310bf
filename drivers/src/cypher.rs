//! What the Cypher engines share: parameter names, schema changes, and a
//! scan of a statement's tokens (does it write, where its top-level
//! `RETURN` is, its parameters).

use crate::{EngineError, Error, Result};

/// Checks a named parameter's name: a Cypher identifier
/// (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn check_param_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(Error::named_param(
            name,
            "a parameter name is a letter or _ followed by letters, digits or _",
        ))
    }
}

/// Whether a Cypher statement changes indexes or constraints, so cached
/// schema metadata must go.
pub fn is_schema_change(statement: &str) -> bool {
    let words: Vec<String> = statement
        .split_whitespace()
        .take(3)
        .map(str::to_ascii_uppercase)
        .collect();
    let first = words.first().map(String::as_str);
    let second = words.get(1).map(String::as_str);
    matches!(
        (first, second),
        (
            Some("CREATE" | "DROP"),
            Some("INDEX" | "CONSTRAINT" | "FULLTEXT" | "VECTOR" | "RANGE")
        ) | (Some("CREATE"), Some("OR"))
            | (Some("DROP"), _)
    )
}

/// Checks that a database (graph) the request names is one the engine
/// lets requests choose: its default, or a name matching one of `allowed`
/// (globs, e.g. `tenant_*`).
pub fn choose_database<'a>(
    kind: &'static str,
    default: &'a str,
    allowed: &[String],
    requested: Option<&'a str>,
) -> Result<&'a str> {
    match requested {
        None => Ok(default),
        Some(name) if name == default => Ok(default),
        Some(name)
            if allowed
                .iter()
                .any(|p| crate::glob::glob_match(p.as_bytes(), name.as_bytes())) =>
        {
            Ok(name)
        }
        Some(_) => Err(Error::PermissionDenied(crate::EngineError::new(
            kind,
            None,
            format!(
                "this engine does not let requests choose that {}: allow it in the engine's `databases` setting",
                if kind == "falkordb" {
                    "graph"
                } else {
                    "database"
                }
            ),
        ))),
    }
}

/// What one scan of a statement found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Where the top-level `RETURN` starts, if any.
    pub(crate) top_return: Option<usize>,
    /// Whether a top-level `UNION` joins two queries.
    pub(crate) union: bool,
    /// Whether a clause writes.
    pub(crate) writes: bool,
    /// The parameters, as (start of `$`, end of the name).
    pub(crate) params: Vec<(usize, usize)>,
}

const WRITE_WORDS: [&str; 7] = [
    "CREATE", "MERGE", "SET", "DELETE", "REMOVE", "DETACH", "DROP",
];

/// Reads a Cypher statement's tokens: strings, backquoted names and comments are
/// skipped; words and `$` parameters are noted with their nesting depth.
pub(crate) fn scan(kind: &'static str, text: &str) -> Result<Scan> {
    let bytes = text.as_bytes();
    let mut scan = Scan::default();
    let mut depth = 0usize;
    let mut i = 0;
    let unterminated = |what: &str| {
        Error::InvalidStatement(EngineError::new(
            kind,
            None,
            format!("the statement ends inside a {what}"),
        ))
    };
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"' | b'`') => {
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return Err(unterminated("quoted string or name")),
                        Some(b'\\') if quote != b'`' => i += 2,
                        Some(&c) if c == quote => break,
                        Some(_) => i += 1,
                    }
                }
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = text[i + 2..]
                    .find("*/")
                    .ok_or_else(|| unterminated("comment"))?;
                i += end + 4;
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                i += 1;
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'$' => {
                let start = i;
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                scan.params.push((start, i));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                // A word right after `.` or `:` is a property, label or
                // type name, not a keyword.
                // A word right before `:` is a map key or a variable.
                let before = text[..start].trim_end().as_bytes().last();
                let after = text[i..].trim_start().as_bytes().first();
                if matches!(before, Some(b'.' | b':')) || after == Some(&b':') {
                    continue;
                }
                let word = text[start..i].to_ascii_uppercase();
                if WRITE_WORDS.contains(&word.as_str()) {
                    scan.writes = true;
                }
                if depth == 0 && word == "RETURN" {
                    scan.top_return = Some(start);
                }
                if depth == 0 && word == "UNION" {
                    scan.union = true;
                }
            }
            _ => i += 1,
        }
    }
    Ok(scan)
}

/// Whether a statement writes (a clause that creates, sets or deletes).
pub fn writes(kind: &'static str, text: &str) -> Result<bool> {
    Ok(scan(kind, text)?.writes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_identifiers() {
        assert!(check_param_name("name_1").is_ok());
        assert!(check_param_name("_x").is_ok());
        for bad in ["", "1a", "a b", "a'", "a=1", "$a"] {
            assert!(check_param_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn index_and_constraint_statements_change_the_schema() {
        assert!(is_schema_change("CREATE INDEX FOR (p:P) ON (p.name)"));
        assert!(is_schema_change("drop constraint c"));
        assert!(!is_schema_change("CREATE (n:P {name: 'x'})"));
        assert!(!is_schema_change("MATCH (n) RETURN n"));
    }

    #[test]
    fn only_allowed_databases_may_be_chosen() {
        let allowed = vec!["tenant_*".to_owned()];
        assert_eq!(
            choose_database("falkordb", "g", &allowed, None).unwrap(),
            "g"
        );
        assert_eq!(
            choose_database("falkordb", "g", &allowed, Some("tenant_a")).unwrap(),
            "tenant_a"
        );
        let err = choose_database("falkordb", "g", &allowed, Some("other")).unwrap_err();
        assert!(err.to_string().contains("databases"), "{err}");
    }

    #[test]
    fn writes_are_told_from_reads_outside_strings_and_names() {
        let writes = |text| writes("test", text).unwrap();
        assert!(writes("MATCH (a) SET a.v = 1"));
        assert!(writes("create (:A)"));
        assert!(writes("MATCH (a) DETACH DELETE a"));
        assert!(!writes("MATCH (a) RETURN a.create, 'SET x'"));
        assert!(!writes("MATCH (a:Delete) RETURN a // CREATE"));
        assert!(!writes("MATCH (a) /* MERGE */ RETURN `SET`"));
        assert!(!writes("RETURN {set: 1, delete: 2}"));
    }
}
