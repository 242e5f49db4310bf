//! What a call's span says about it without saying what it holds: the
//! statement's fingerprint (its shape, with literals and parameter values
//! removed) and the caller's W3C trace context (`traceparent`), continued
//! so that the gateway's log lines join the caller's trace.

use tonic::metadata::MetadataMap;

/// The longest fingerprint kept.
const MAX_FINGERPRINT: usize = 160;

/// The shape of `statement` in `dialect`: quoted strings and numbers
/// become `?` (SQL, Cypher, PromQL); a Redis command keeps its name and
/// the count of its arguments; a line-protocol write keeps its
/// measurement. `$n` placeholders stay: they carry no value.
pub fn fingerprint(dialect: &str, statement: &str) -> String {
    let text = statement.trim();
    let shape = match dialect.to_ascii_lowercase().as_str() {
        "redis" => {
            let mut words = text.split_whitespace();
            let name = words.next().unwrap_or("").to_ascii_uppercase();
            let args = words.count();
            format!("{name} ({args} args)")
        }
        "ts" if !text.contains('(') && !text.contains('{') && text.contains(' ') => {
            // A line-protocol write: its first measurement.
            let measurement = text.split([',', ' ']).next().unwrap_or("");
            format!("write {measurement}")
        }
        _ => strip_literals(text),
    };
    let mut shape: String = shape.chars().take(MAX_FINGERPRINT).collect();
    if shape.len() < statement.len() && shape.chars().count() == MAX_FINGERPRINT {
        shape.push('…');
    }
    shape
}

/// `text` with quoted strings (a backslash escapes the next character in
/// any of them: in a plain string that hides more, never less),
/// dollar-quoted strings and numeric literals replaced by `?`, comments
/// dropped, and runs of whitespace made one space.
fn strip_literals(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut prev = ' ';
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' | '`' => {
                // A doubled quote stays inside the string.
                while let Some(d) = chars.next() {
                    if d == '\\' {
                        chars.next();
                    } else if d == c {
                        if chars.peek() == Some(&c) {
                            chars.next();
                            continue;
                        }
                        break;
                    }
                }
                out.push('?');
                prev = '?';
            }
            // `$tag$ ... $tag$` (not `$1`, a placeholder).
            '$' if chars
                .peek()
                .is_some_and(|d| *d == '$' || d.is_alphabetic() || *d == '_') =>
            {
                let mut tag = String::from("$");
                while let Some(&d) = chars.peek() {
                    chars.next();
                    tag.push(d);
                    if d == '$' {
                        break;
                    }
                    if !(d.is_alphanumeric() || d == '_') {
                        break;
                    }
                }
                if tag.len() >= 2 && tag.ends_with('$') {
                    // Everything up to the closing tag (or the end).
                    let mut body = String::new();
                    for d in chars.by_ref() {
                        body.push(d);
                        if body.ends_with(&tag) {
                            break;
                        }
                    }
                    out.push('?');
                    prev = '?';
                } else {
                    out.push_str(&tag);
                    prev = tag.chars().last().unwrap_or('$');
                }
            }
            // `--` (SQL) or `//` (Cypher) to the end of the line.
            '-' | '/' if chars.peek() == Some(&c) => {
                while chars.next().is_some_and(|d| d != '\n') {}
                if prev != ' ' {
                    out.push(' ');
                }
                prev = ' ';
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                omnigate::drivers::sql::skip_block_comment(&mut chars);
                if prev != ' ' {
                    out.push(' ');
                }
                prev = ' ';
            }
            '0'..='9' if !(prev.is_alphanumeric() || prev == '_' || prev == '$') => {
                while chars
                    .peek()
                    .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '.')
                {
                    chars.next();
                }
                out.push('?');
                prev = '?';
            }
            c if c.is_whitespace() => {
                if prev != ' ' {
                    out.push(' ');
                }
                prev = ' ';
            }
            c => {
                out.push(c);
                prev = c;
            }
        }
    }
    out.trim_end().to_owned()
}

/// The caller's trace: (trace id, parent span id) from a valid
/// `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), else `None`.
pub fn traceparent(metadata: &MetadataMap) -> Option<(String, String)> {
    parse_traceparent(metadata.get("traceparent")?.to_str().ok()?)
}

/// (trace id, parent span id) of a valid W3C `traceparent` value, else
/// `None` (a PostgreSQL client's `application_name` may carry one).
pub fn parse_traceparent(value: &str) -> Option<(String, String)> {
    // Version 00's four fields, lower-case hex (W3C: anything else is
    // not a trace context, and OpenTelemetry ignores it).
    let parts: Vec<&str> = value.trim().split('-').collect();
    let [version, trace, parent, flags] = parts.as_slice() else {
        return None;
    };
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let valid = *version == "00"
        && hex(trace, 32)
        && trace.bytes().any(|b| b != b'0')
        && hex(parent, 16)
        && parent.bytes().any(|b| b != b'0')
        && hex(flags, 2);
    valid.then(|| ((*trace).to_owned(), (*parent).to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_keep_the_shape_and_drop_the_values() {
        assert_eq!(
            fingerprint(
                "sql",
                "SELECT * FROM t WHERE name = 'ada' AND id = 42 AND v = $1"
            ),
            "SELECT * FROM t WHERE name = ? AND id = ? AND v = $1"
        );
        assert_eq!(
            fingerprint("sql", "INSERT INTO t2 VALUES (1.5, 'it''s')"),
            "INSERT INTO t2 VALUES (?, ?)"
        );
        assert_eq!(
            fingerprint("redis", "SET session:42 secret-value EX 60"),
            "SET (4 args)"
        );
        assert_eq!(
            fingerprint("ts", "cpu,host=a usage=0.5 1700000000"),
            "write cpu"
        );
        assert_eq!(
            fingerprint("ts", "rate(cpu{host=\"a\"}[5m])"),
            "rate(cpu{host=?}[?])"
        );
        assert_eq!(
            fingerprint("cypher", "CREATE (:P {name: \"x\"})"),
            "CREATE (:P {name: ?})"
        );
        assert!(fingerprint("sql", &"x ".repeat(500)).ends_with('…'));
    }

    #[test]
    fn no_value_survives_in_dollar_quotes_escapes_or_comments() {
        for (text, secret) in [
            ("INSERT INTO t VALUES ($$hunter2$$)", "hunter2"),
            ("SELECT $tag$hunter2 'x'$tag$ AS s", "hunter2"),
            ("SELECT E'O\\'Brien hunter2'", "hunter2"),
            ("SELECT 1 -- hunter2\nFROM t", "hunter2"),
            ("SELECT /* hunter2 /* nested */ still */ 1", "hunter2"),
            ("MATCH (n) // hunter2\nRETURN n", "hunter2"),
            ("SELECT $$unterminated hunter2", "hunter2"),
        ] {
            let shape = fingerprint("sql", text);
            assert!(!shape.contains(secret), "{text:?} -> {shape:?}");
        }
        // Placeholders and the statement's shape stay.
        assert_eq!(
            fingerprint("sql", "SELECT $1, $$x$$ FROM t -- c"),
            "SELECT $1, ? FROM t"
        );
    }

    #[test]
    fn traceparent_is_read_only_when_valid() {
        let mut metadata = MetadataMap::new();
        assert_eq!(traceparent(&metadata), None);
        metadata.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            traceparent(&metadata),
            Some((
                "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                "00f067aa0ba902b7".into()
            ))
        );
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-xyz-00f067aa0ba902b7-01",
            // Upper case, and a fifth field on version 00.
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            metadata.insert("traceparent", bad.parse().unwrap());
            assert_eq!(traceparent(&metadata), None, "{bad}");
        }
    }
}
