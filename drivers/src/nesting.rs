//! How deeply a client's text nests, measured before any recursive parser
//! sees it. Parsers and the trees they build recurse once per level, so a
//! statement like `((((…x…))))` 50,000 levels deep overflows a thread's
//! stack; measuring first, without recursion, turns that into a clear
//! `INVALID_ARGUMENT` whatever the stack size.

/// The languages measured here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    /// JSON: `[` and `{` nest; strings in `"` with `\` escapes.
    Json,
    /// PromQL: `(` and `[` nest, and so does every operator (`1+1+1…` is
    /// as deep a tree as it is long); label matchers in `{…}` do not;
    /// strings in `"`, `'` or `` ` ``; `#` comments to the end of a line.
    Promql,
}

/// How deeply PromQL expressions may nest (brackets and operators).
pub(crate) const MAX_PROMQL_NESTING: usize = 128;

/// An upper bound on how deeply `text` nests in `syntax`.
pub(crate) fn depth(text: &str, syntax: Syntax) -> usize {
    let bytes = text.as_bytes();
    let (mut open, mut deepest, mut operators, mut braces) = (0usize, 0usize, 0usize, 0usize);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'"' | b'\'' | b'`' if b == b'"' || syntax == Syntax::Promql => {
                i = skip_string(bytes, i);
                continue;
            }
            b'#' if syntax == Syntax::Promql => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'{' if syntax == Syntax::Promql => braces += 1,
            b'}' if syntax == Syntax::Promql => braces = braces.saturating_sub(1),
            b'(' | b'[' | b'{' => {
                open += 1;
                deepest = deepest.max(open);
            }
            b')' | b']' | b'}' => open = open.saturating_sub(1),
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'=' | b'!' | b'<' | b'>'
                if syntax == Syntax::Promql && braces == 0 =>
            {
                operators += 1;
            }
            b if syntax == Syntax::Promql && braces == 0 && b.is_ascii_alphabetic() => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let word = &text[start..i];
                if ["and", "or", "unless", "atan2"]
                    .iter()
                    .any(|k| word.eq_ignore_ascii_case(k))
                {
                    operators += 1;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    deepest + operators
}

/// The index after the string that starts at `start` (or the end).
fn skip_string(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote != b'`' => i += 2,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// `Err` saying the limit when a PromQL text nests deeper than
/// [`MAX_PROMQL_NESTING`].
pub(crate) fn check_promql(text: &str) -> Result<(), String> {
    let depth = depth(text, Syntax::Promql);
    if depth > MAX_PROMQL_NESTING {
        Err(format!(
            "the query nests too deeply: its brackets and operators add up to {depth} levels, \
             and at most {MAX_PROMQL_NESTING} are allowed (split it into several queries)"
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_and_operators_count_strings_and_matchers_do_not() {
        let p = |t| depth(t, Syntax::Promql);
        assert_eq!(p("up"), 0);
        assert_eq!(p("sum by (host) (rate(x{a=~\"(((\", b!=\"-\"}[5m]))"), 3);
        assert_eq!(p("1 + 2 - 3"), 2);
        assert_eq!(p("a and b or c unless d"), 3);
        assert_eq!(p("x # (((( a comment\n"), 0);
        assert_eq!(p("'(\\'('"), 0);
        let deep = format!("{}x{}", "(".repeat(50_000), ")".repeat(50_000));
        assert_eq!(p(&deep), 50_000);
        assert!(check_promql(&deep).unwrap_err().contains("at most 128"));
        assert!(check_promql(&"1+".repeat(200)).is_err());
        assert!(check_promql(&"-".repeat(200)).is_err());
        assert_eq!(depth("{\"a\": [1, {\"b\": \"[[[\"}]}", Syntax::Json), 3);
        assert_eq!(depth("[\"\\\"[\"]", Syntax::Json), 1);
    }
}
