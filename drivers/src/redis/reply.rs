//! Redis replies (RESP2 and RESP3) and errors to Omnigate's values and errors.

use ::redis::{RedisError, Value as Resp};

use super::KIND;
use crate::redis_syntax::classify_error;
use crate::resp::key_text;
use crate::{EngineError, Error, Value};

/// A reply as a value: nil → null, integers → int, bulk strings → string
/// (bytes when not UTF-8), arrays/sets/pushes → lists, maps → maps (keys as
/// text), doubles → float, booleans → bool, verbatim strings → string, big
/// numbers → decimal.
/// A reply as a value, bulk strings as text when UTF-8 (see `to_value_with`).
pub(crate) fn to_value(reply: Resp) -> Result<Value, Error> {
    to_value_with(reply, false)
}

/// A reply as a value; with `raw_bytes`, bulk strings are always bytes.
pub(crate) fn to_value_with(reply: Resp, raw_bytes: bool) -> Result<Value, Error> {
    let to_value = |r: Resp| to_value_with(r, raw_bytes);
    Ok(match reply {
        Resp::Nil => Value::Null,
        Resp::Int(i) => Value::Int(i),
        Resp::BulkString(bytes) if raw_bytes => Value::Bytes(bytes.into()),
        Resp::BulkString(bytes) => Value::from_vec_lossless(bytes),
        Resp::SimpleString(s) => Value::String(s.into()),
        Resp::Okay => Value::String("OK".into()),
        Resp::Array(items) | Resp::Set(items) => {
            Value::List(items.into_iter().map(&to_value).collect::<Result<_, _>>()?)
        }
        Resp::Push { data, .. } => {
            Value::List(data.into_iter().map(&to_value).collect::<Result<_, _>>()?)
        }
        // A map's keys are text in the value model: read as text whatever
        // `raw_bytes` says (bytes would print as `\x..`).
        Resp::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| Ok((key_text(to_value_with(k, false)?), to_value(v)?)))
                .collect::<Result<_, Error>>()?,
        ),
        Resp::Attribute { data, .. } => to_value_with(*data, raw_bytes)?,
        Resp::Double(f) => Value::Float(f),
        Resp::Boolean(b) => Value::Bool(b),
        Resp::VerbatimString { text, .. } => Value::String(text.into()),
        Resp::BigNumber(n) => Value::Decimal(String::from_utf8_lossy(&n).into()),
        Resp::ServerError(e) => {
            let code = e.code().to_owned();
            let message = match e.details() {
                Some(details) => format!("{code} {details}"),
                None => code.clone(),
            };
            return Err(classify_error(KIND, &code, message));
        }
        other => Value::String(compact_str::format_compact!("{other:?}")),
    })
}

/// A client-library error as a meaning-based error.
pub(crate) fn from_redis(err: RedisError) -> Error {
    if let Some(code) = err.code() {
        let code = code.to_owned();
        let message = match err.detail() {
            Some(detail) => format!("{code} {detail}"),
            None => code.clone(),
        };
        return classify_error(KIND, &code, message);
    }
    if err.is_io_error()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_timeout()
    {
        let message = format!("cannot talk to Redis: {err}");
        return Error::Unavailable(EngineError::new(KIND, None, message).with_source(err));
    }
    Error::Internal(EngineError::new(KIND, None, err.to_string()).with_source(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_keys_stay_text_when_bulk_strings_are_bytes() {
        let reply = Resp::Map(vec![(
            Resp::BulkString(b"field".to_vec()),
            Resp::BulkString(b"v".to_vec()),
        )]);
        assert_eq!(
            to_value_with(reply, true).unwrap(),
            Value::Map(vec![(
                "field".into(),
                Value::Bytes(bytes::Bytes::from_static(b"v"))
            )])
        );
    }
}
