//! The `redis` dialect's statement syntax: redis-cli quoting, with `$n`
//! placeholders that bind whole, binary-safe arguments.
//!
//! Quoting follows redis-cli (`sdssplitargs`): `"..."` takes the escapes
//! `\n \r \t \b \a \\ \"` and `\xHH`; `'...'` takes only `\'`; a closing
//! quote must be followed by a space or the end. An unquoted token that is
//! exactly `$n` is replaced by parameter n; a quoted `"$1"` stays literal.
//! Parameters are never spliced into text.

use std::borrow::Cow;

use bytes::Bytes;

use crate::{EngineError, Error, Result, Value};

/// Splits a statement into its arguments and binds the parameters.
///
/// Every parameter must be used at least once. `engine` names the engine
/// kind in errors.
pub fn parse_command(text: &str, params: &[Value], engine: &'static str) -> Result<Vec<Bytes>> {
    let invalid =
        |message: String| Error::InvalidStatement(EngineError::new(engine, Some("ERR"), message));
    let mut used = Used::new(params.len());
    let mut args = Vec::with_capacity(Args::upper_bound(text));
    // A statement that does not split is refused as such whatever its
    // parameters: the first parameter error waits for the whole split.
    let mut param_error = None;
    for token in Args::new(text) {
        match token.map_err(invalid)? {
            Token::Literal(word) => args.push(literal_bytes(word)),
            Token::Placeholder(_) if param_error.is_some() => {}
            Token::Placeholder(index) => {
                let bound = match index.checked_sub(1).and_then(|i| params.get(i)) {
                    Some(value) => param_bytes(index, value),
                    None => Err(Error::param(
                        index,
                        format!(
                            "the statement uses ${index} but {} parameter(s) were given",
                            params.len()
                        ),
                    )),
                };
                match bound {
                    Ok(bytes) => {
                        used.set(index - 1);
                        args.push(bytes);
                    }
                    Err(e) => param_error = Some(e),
                }
            }
        }
    }
    if args.is_empty() && param_error.is_none() {
        return Err(invalid(
            "empty statement: write a Redis command such as PING".into(),
        ));
    }
    if let Some(e) = param_error {
        return Err(e);
    }
    if let Some(unused) = used.first_unset() {
        return Err(Error::param(
            unused + 1,
            format!("given but not used: the statement has no ${}", unused + 1),
        ));
    }
    Ok(args)
}

/// Which parameters a statement used: a bit each, in a word for the
/// usual few (no allocation per call).
enum Used {
    Few { bits: u64, len: usize },
    Many(Vec<bool>),
}

impl Used {
    fn new(len: usize) -> Self {
        if len <= 64 {
            Used::Few { bits: 0, len }
        } else {
            Used::Many(vec![false; len])
        }
    }

    fn set(&mut self, i: usize) {
        match self {
            Used::Few { bits, .. } => *bits |= 1 << i,
            Used::Many(flags) => flags[i] = true,
        }
    }

    fn first_unset(&self) -> Option<usize> {
        match self {
            Used::Few { bits, len } => {
                let unset = (!bits).trailing_zeros() as usize;
                (unset < *len).then_some(unset)
            }
            Used::Many(flags) => flags.iter().position(|u| !u),
        }
    }
}

/// The bytes a parameter value binds as one Redis argument.
pub fn param_bytes(index: usize, value: &Value) -> Result<Bytes> {
    Ok(match value {
        Value::String(s) | Value::Decimal(s) | Value::Json(s) => {
            Bytes::copy_from_slice(s.as_bytes())
        }
        Value::Bytes(b) => b.clone(),
        Value::Int(i) => Bytes::from(i.to_string()),
        Value::Float(f) => Bytes::from(format_float(*f)),
        Value::Bool(b) => Bytes::from_static(if *b { b"1" } else { b"0" }),
        Value::Uuid(u) => Bytes::from(u.to_string()),
        Value::Timestamp(_) | Value::Date(_) | Value::Time(_) => Bytes::from(value.to_string()),
        other => {
            return Err(Error::param(
                index,
                format!(
                    "a {} cannot be a Redis argument: send a string, bytes, int, float or bool",
                    other.kind_name()
                ),
            ));
        }
    })
}

/// Formats a float as Redis does: shortest round-trip text, `inf`/`-inf`.
pub fn format_float(f: f64) -> String {
    if f.is_infinite() {
        if f > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{f}")
    }
}

/// A Redis error reply (`PREFIX message`) as a meaning-based error. Both
/// the memory engine and real Redis go through this one table, so they
/// agree by construction.
pub fn classify_error(engine: &'static str, code: &str, full_message: String) -> Error {
    let report = EngineError::new(engine, Some(code), full_message);
    let text = report.message.to_ascii_lowercase();
    match code {
        "WRONGTYPE" | "READONLY" => Error::Precondition(report),
        "NOSCRIPT" => Error::NotFound(report),
        "NOPERM" | "NOAUTH" | "WRONGPASS" => Error::PermissionDenied(report),
        "LOADING" | "BUSY" | "MASTERDOWN" | "CLUSTERDOWN" | "OOM" => Error::Unavailable(report),
        "TRYAGAIN" | "EXECABORT" => Error::Conflict(report),
        // The same words whether an argument or the stored value is at
        // fault: the stored value is the usual case.
        _ if [
            "not an integer",
            "not a valid float",
            "would overflow",
            "out of range",
            "is not a number",
        ]
        .iter()
        .any(|m| text.contains(m)) =>
        {
            Error::Precondition(report)
        }
        _ => Error::InvalidStatement(report),
    }
}

/// Splits a line as redis-cli does (quotes and escapes), every token an
/// argument as written: no placeholders (Redis' inline commands).
pub fn split_literal(text: &str) -> std::result::Result<Vec<Bytes>, String> {
    Args::new(text)
        .map(|token| {
            Ok(match token? {
                Token::Literal(word) => literal_bytes(word),
                Token::Placeholder(index) => Bytes::from(format!("${index}")),
            })
        })
        .collect()
}

/// An argument as written, as bytes: a word borrowed from the text is
/// copied once, a quoted one (already owned) is moved.
fn literal_bytes(word: Cow<'_, [u8]>) -> Bytes {
    match word {
        Cow::Borrowed(word) => Bytes::copy_from_slice(word),
        Cow::Owned(quoted) => Bytes::from(quoted),
    }
}

#[derive(Debug, PartialEq)]
enum Token<'a> {
    /// An argument as written: borrowed from the text unless quotes or
    /// escapes changed it.
    Literal(Cow<'a, [u8]>),
    Placeholder(usize),
}

/// A statement's arguments, one at a time.
struct Args<'a> {
    bytes: &'a [u8],
    at: usize,
    failed: bool,
}

impl<'a> Args<'a> {
    fn new(text: &'a str) -> Self {
        Args {
            bytes: text.as_bytes(),
            at: 0,
            failed: false,
        }
    }

    /// At least as many as there are arguments (runs of non-space bytes).
    fn upper_bound(text: &str) -> usize {
        text.split_ascii_whitespace().count()
    }

    fn token(&mut self) -> std::result::Result<Token<'a>, String> {
        let bytes = self.bytes;
        let start = self.at;
        let mut i = start;
        while let Some(&c) = bytes.get(i) {
            if c.is_ascii_whitespace() {
                break;
            }
            if c == b'"' || c == b'\'' {
                // Quotes (and what comes before them) make an owned argument.
                let mut current = bytes[start..i].to_vec();
                i = if c == b'"' {
                    double_quoted(bytes, i + 1, &mut current)?
                } else {
                    single_quoted(bytes, i + 1, &mut current)?
                };
                // As in redis-cli, a closing quote must end the argument.
                if bytes.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                    return Err(format!(
                        "unbalanced quotes: a closing quote must be followed by a space (at byte {i})"
                    ));
                }
                self.at = i;
                return Ok(Token::Literal(Cow::Owned(current)));
            }
            i += 1;
        }
        self.at = i;
        let word = &bytes[start..i];
        Ok(placeholder(word).map_or(Token::Literal(Cow::Borrowed(word)), Token::Placeholder))
    }
}

impl<'a> Iterator for Args<'a> {
    type Item = std::result::Result<Token<'a>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        while self
            .bytes
            .get(self.at)
            .is_some_and(|c| c.is_ascii_whitespace())
        {
            self.at += 1;
        }
        if self.at >= self.bytes.len() {
            return None;
        }
        let token = self.token();
        self.failed = token.is_err();
        Some(token)
    }
}

fn placeholder(token: &[u8]) -> Option<usize> {
    let digits = token.strip_prefix(b"$")?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || digits[0] == b'0' {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Reads a double-quoted argument body from `i`; returns the index after the closing quote.
fn double_quoted(bytes: &[u8], mut i: usize, out: &mut Vec<u8>) -> Result<usize, String> {
    loop {
        match bytes.get(i) {
            None => return Err("unbalanced quotes: a double quote is not closed".into()),
            Some(b'"') => return Ok(i + 1),
            Some(b'\\') => {
                let hex = bytes
                    .get(i + 2..i + 4)
                    .filter(|_| bytes.get(i + 1) == Some(&b'x'));
                if let Some(value) = hex
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    out.push(value);
                    i += 4;
                    continue;
                }
                let escaped = match bytes.get(i + 1) {
                    Some(b'n') => b'\n',
                    Some(b'r') => b'\r',
                    Some(b't') => b'\t',
                    Some(b'b') => 0x08,
                    Some(b'a') => 0x07,
                    Some(&other) => other,
                    None => return Err("unbalanced quotes: a double quote is not closed".into()),
                };
                out.push(escaped);
                i += 2;
            }
            Some(&c) => {
                out.push(c);
                i += 1;
            }
        }
    }
}

/// Reads a single-quoted argument body from `i`; returns the index after the closing quote.
fn single_quoted(bytes: &[u8], mut i: usize, out: &mut Vec<u8>) -> Result<usize, String> {
    loop {
        match bytes.get(i) {
            None => return Err("unbalanced quotes: a single quote is not closed".into()),
            Some(b'\'') => return Ok(i + 1),
            Some(b'\\') if bytes.get(i + 1) == Some(&b'\'') => {
                out.push(b'\'');
                i += 2;
            }
            Some(&c) => {
                out.push(c);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str, params: &[Value]) -> Vec<Vec<u8>> {
        parse_command(text, params, "test")
            .unwrap()
            .into_iter()
            .map(|b| b.to_vec())
            .collect()
    }

    #[test]
    fn splits_plain_words_and_collapses_spaces() {
        assert_eq!(
            args("  SET   key  value ", &[]),
            vec![b"SET".to_vec(), b"key".to_vec(), b"value".to_vec()]
        );
    }

    #[test]
    fn double_quotes_take_escapes() {
        assert_eq!(
            args(r#"SET k "a b\n\t\"q\"\\ \x00\xff""#, &[])[2],
            b"a b\n\t\"q\"\\ \x00\xff".to_vec()
        );
        assert_eq!(args(r#"SET k "" x"#, &[])[2], Vec::<u8>::new());
    }

    #[test]
    fn single_quotes_take_only_escaped_quote() {
        assert_eq!(args(r"SET k 'it\'s \n'", &[])[2], b"it's \\n".to_vec());
    }

    #[test]
    fn unbalanced_or_glued_quotes_are_errors() {
        for bad in [r#"SET k "abc"#, "SET k 'abc", r#"SET k "a"b"#, "SET k 'a'b"] {
            let err = parse_command(bad, &[], "test").unwrap_err();
            assert!(matches!(err, Error::InvalidStatement(_)), "{bad}: {err}");
            assert!(
                err.to_string().contains("unbalanced quotes"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn empty_statement_is_an_error() {
        assert!(matches!(
            parse_command("   ", &[], "test"),
            Err(Error::InvalidStatement(_))
        ));
    }

    #[test]
    fn placeholders_bind_whole_binary_arguments() {
        let params = [
            Value::Bytes(Bytes::from_static(b"a b\0\xff")),
            Value::Int(-5),
        ];
        assert_eq!(
            args("SET $1 $2", &params),
            vec![b"SET".to_vec(), b"a b\0\xff".to_vec(), b"-5".to_vec()]
        );
        // A placeholder may be used twice; quoted or glued it stays literal.
        assert_eq!(args(r#"SET k x"a b""#, &[])[2], b"xa b".to_vec());
        assert_eq!(
            args(r#"MSET $1 "$1" x$1 $1"#, &params[..1])[1..],
            [
                b"a b\0\xff".to_vec(),
                b"$1".to_vec(),
                b"x$1".to_vec(),
                b"a b\0\xff".to_vec()
            ]
        );
    }

    #[test]
    fn placeholder_text_is_not_reparsed() {
        let params = [Value::from("x\" y 'z"), Value::from("$2")];
        assert_eq!(
            args("SET $1 $2", &params)[1..],
            [b"x\" y 'z".to_vec(), b"$2".to_vec()]
        );
    }

    #[test]
    fn missing_and_unused_params_name_the_index() {
        let err =
            parse_command("GET $2", &[Value::from("a"), Value::from("b")], "test").unwrap_err();
        assert!(
            matches!(err, Error::InvalidParameter { index: 1, .. }),
            "{err}"
        );
        let err = parse_command("GET $3", &[Value::from("a")], "test").unwrap_err();
        assert!(
            matches!(err, Error::InvalidParameter { index: 3, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_statement_that_does_not_split_is_refused_as_such_first() {
        for (text, params) in [
            ("GET $2 \"abc", vec![Value::from("a")]),
            ("SET k $1 'a'b", vec![Value::List(vec![])]),
        ] {
            let err = parse_command(text, &params, "test").unwrap_err();
            assert!(matches!(err, Error::InvalidStatement(_)), "{text}: {err}");
        }
        let err = parse_command("$1", &[], "test").unwrap_err();
        assert!(
            matches!(err, Error::InvalidParameter { index: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn structured_params_are_refused() {
        let err = parse_command("SET k $1", &[Value::List(vec![])], "test").unwrap_err();
        assert!(matches!(err, Error::InvalidParameter { index: 1, .. }));
        assert!(
            err.to_string()
                .contains("a list cannot be a Redis argument"),
            "{err}"
        );
        let err = parse_command("SET k $1", &[Value::Null], "test").unwrap_err();
        assert!(matches!(err, Error::InvalidParameter { index: 1, .. }));
    }

    #[test]
    fn formats_floats_like_redis() {
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(1.5), "1.5");
        assert_eq!(format_float(f64::NEG_INFINITY), "-inf");
    }
}
