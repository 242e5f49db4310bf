//! Replies and errors as Redis gives them, and argument parsing shared by
//! the memory engine's commands.

use bytes::Bytes;

use crate::redis_syntax::format_float;
use crate::{Error, Value};

/// A Redis reply.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reply {
    Nil,
    Status(&'static str),
    Int(i64),
    Bulk(Bytes),
    Array(Vec<Reply>),
}

impl Reply {
    pub(crate) fn ok() -> Reply {
        Reply::Status("OK")
    }

    pub(crate) fn bool(b: bool) -> Reply {
        Reply::Int(i64::from(b))
    }

    pub(crate) fn len(n: usize) -> Reply {
        Reply::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }

    pub(crate) fn float(f: f64) -> Reply {
        Reply::Bulk(Bytes::from(format_float(f)))
    }

    pub(crate) fn bulks<'a>(items: impl IntoIterator<Item = &'a Bytes>) -> Reply {
        Reply::Array(items.into_iter().cloned().map(Reply::Bulk).collect())
    }

    /// The reply in Omnigate's value model: bulk strings become text when
    /// they are UTF-8, bytes otherwise.
    pub(crate) fn into_value(self, raw_bytes: bool) -> Value {
        match self {
            Reply::Nil => Value::Null,
            Reply::Status(s) => Value::String(s.into()),
            Reply::Int(i) => Value::Int(i),
            Reply::Bulk(b) if raw_bytes => Value::Bytes(b),
            Reply::Bulk(b) => Value::from_bytes_lossless(b),
            Reply::Array(items) => {
                Value::List(items.into_iter().map(|r| r.into_value(raw_bytes)).collect())
            }
        }
    }
}

/// A Redis error reply: its prefix (`ERR`, `WRONGTYPE`) and text. Its
/// meaning (and so its gRPC code) comes from the table shared with the
/// real Redis engine (`redis_syntax::classify_error`), so both agree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RedisError {
    pub(crate) prefix: &'static str,
    pub(crate) text: String,
    /// A form of a command the memory engine does not implement.
    unsupported: bool,
    /// The call's deadline passed while the command ran (it stopped).
    expired: Option<std::time::Duration>,
}

impl From<crate::deadline::Expired> for RedisError {
    fn from(e: crate::deadline::Expired) -> Self {
        RedisError {
            expired: Some(e.0),
            ..RedisError::err("the deadline passed")
        }
    }
}

pub(crate) type CmdResult = Result<Reply, RedisError>;

impl RedisError {
    /// `ERR <text>`.
    pub(crate) fn err(text: impl Into<String>) -> Self {
        RedisError {
            prefix: "ERR",
            text: text.into(),
            unsupported: false,
            expired: None,
        }
    }

    pub(crate) fn unsupported(what: impl Into<String>) -> Self {
        RedisError {
            prefix: "ERR",
            text: what.into(),
            unsupported: true,
            expired: None,
        }
    }

    pub(crate) fn wrong_type() -> Self {
        RedisError {
            prefix: "WRONGTYPE",
            text: "Operation against a key holding the wrong kind of value".into(),
            unsupported: false,
            expired: None,
        }
    }

    pub(crate) fn syntax() -> Self {
        Self::err("syntax error")
    }

    pub(crate) fn not_integer() -> Self {
        Self::err("value is not an integer or out of range")
    }

    pub(crate) fn not_float() -> Self {
        Self::err("value is not a valid float")
    }

    pub(crate) fn arity(command: &str) -> Self {
        Self::err(format!(
            "wrong number of arguments for '{}' command",
            command.to_ascii_lowercase()
        ))
    }
}

impl From<RedisError> for Error {
    fn from(e: RedisError) -> Self {
        if e.unsupported {
            return Error::not_supported(e.text, super::KIND);
        }
        if let Some(after) = e.expired {
            return Error::Timeout { after };
        }
        crate::redis_syntax::classify_error(
            super::KIND,
            e.prefix,
            format!("{} {}", e.prefix, e.text),
        )
    }
}

/// Parses an integer as Redis' `string2ll` does: optional `-`, no `+`, no
/// spaces, no leading zeros.
pub(crate) fn parse_i64(arg: &[u8]) -> Option<i64> {
    let digits = arg.strip_prefix(b"-").unwrap_or(arg);
    let canonical = match digits {
        [b'0'] => arg.len() == 1,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if !canonical {
        return None;
    }
    std::str::from_utf8(arg).ok()?.parse().ok()
}

/// An integer argument.
pub(crate) fn int_arg(arg: &[u8]) -> Result<i64, RedisError> {
    parse_i64(arg).ok_or_else(RedisError::not_integer)
}

/// A float argument as Redis reads scores: also `inf`, `+inf`, `-inf`; never NaN.
pub(crate) fn float_arg(arg: &[u8]) -> Result<f64, RedisError> {
    parse_f64(arg).ok_or_else(RedisError::not_float)
}

pub(crate) fn parse_f64(arg: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(arg).ok()?;
    if text.is_empty()
        || text.starts_with(char::is_whitespace)
        || text.ends_with(char::is_whitespace)
    {
        return None;
    }
    let value = match text.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => text.parse::<f64>().ok()?,
    };
    (!value.is_nan()).then_some(value)
}

/// Whether an argument is the option `name`, case-insensitively.
pub(crate) fn is_opt(arg: &[u8], name: &str) -> bool {
    arg.eq_ignore_ascii_case(name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_strictly() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b"01",
            b"-0",
            b" 1",
            b"1 ",
            b"1.0",
            b"9223372036854775808",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn floats_parse_like_scores() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b"abc"), None);
    }

    #[test]
    fn errors_keep_the_redis_prefix_and_meaning() {
        let err: Error = RedisError::wrong_type().into();
        assert!(matches!(err, Error::Precondition(_)));
        assert_eq!(err.engine_code(), Some("WRONGTYPE"));
        let err: Error = RedisError::arity("GET").into();
        assert!(matches!(err, Error::InvalidStatement(_)));
        assert!(
            err.to_string()
                .contains("ERR wrong number of arguments for 'get' command")
        );
    }
}
