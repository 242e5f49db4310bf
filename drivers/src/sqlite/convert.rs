//! SQLite values and errors to and from Omnigate's.

use bytes::Bytes;
use deadpool_sqlite::rusqlite::types::{Value as SqlValue, ValueRef};
use deadpool_sqlite::rusqlite::{self, ErrorCode};

use super::KIND;
use crate::{EngineError, Error, Value};

/// A result value, read by its storage class; a declared BOOLEAN integer
/// becomes a bool. Text that is not UTF-8 is returned as bytes.
pub(crate) fn from_sql(value: ValueRef<'_>, decl_type: Option<&str>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) if decl_type.is_some_and(is_bool_type) => Value::Bool(i != 0),
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Float(f),
        ValueRef::Text(t) => Value::from_slice_lossless(t),
        ValueRef::Blob(b) => Value::Bytes(Bytes::copy_from_slice(b)),
    }
}

fn is_bool_type(decl: &str) -> bool {
    decl.eq_ignore_ascii_case("BOOLEAN") || decl.eq_ignore_ascii_case("BOOL")
}

/// A parameter as SQLite stores it. Times become ISO-8601 text, which
/// SQLite's date functions read; kinds SQLite cannot hold are refused.
pub(crate) fn to_sql(index: usize, value: &Value) -> Result<SqlValue, Error> {
    Ok(match value {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Int(i) => SqlValue::Integer(*i),
        Value::Float(f) => SqlValue::Real(*f),
        Value::Decimal(s) | Value::String(s) | Value::Json(s) => {
            SqlValue::Text(s.as_str().to_owned())
        }
        Value::Bytes(b) => SqlValue::Blob(b.to_vec()),
        Value::Uuid(u) => SqlValue::Text(u.to_string()),
        Value::Date(d) => SqlValue::Text(d.to_string()),
        Value::Time(t) => SqlValue::Text(t.format("%H:%M:%S%.f").to_string()),
        Value::Timestamp(ts) => {
            let dt = ts
                .to_naive()
                .ok_or_else(|| Error::param(index, "the timestamp is out of range"))?;
            SqlValue::Text(dt.format("%Y-%m-%d %H:%M:%S%.f").to_string())
        }
        other => {
            return Err(Error::param(
                index,
                format!(
                    "SQLite cannot store a {}: send null, bool, int, float, decimal, string, bytes, uuid, json, date, time or timestamp",
                    other.kind_name()
                ),
            ));
        }
    })
}

/// Maps a rusqlite error to a meaning-based error, keeping SQLite's
/// extended result code and message.
pub(crate) fn error(err: rusqlite::Error) -> Error {
    let (code, extended, message) = match &err {
        rusqlite::Error::SqliteFailure(e, msg) => (
            e.code,
            e.extended_code,
            msg.clone().unwrap_or_else(|| e.to_string()),
        ),
        rusqlite::Error::SqlInputError {
            error, msg, offset, ..
        } => (
            error.code,
            error.extended_code,
            format!("{msg} (at offset {offset})"),
        ),
        rusqlite::Error::MultipleStatement => {
            return Error::InvalidStatement(
                EngineError::new(KIND, None, "send one statement per request").with_source(err),
            );
        }
        rusqlite::Error::InvalidParameterCount(..) | rusqlite::Error::InvalidParameterName(_) => {
            return Error::InvalidStatement(
                EngineError::new(KIND, None, err.to_string()).with_source(err),
            );
        }
        _ => {
            return Error::Internal(EngineError::new(KIND, None, err.to_string()).with_source(err));
        }
    };
    let engine =
        EngineError::new(KIND, Some(&extended.to_string()), message.clone()).with_source(err);
    match code {
        ErrorCode::ConstraintViolation => Error::ConstraintViolation(engine),
        // The caller knows the time limit and fills it in.
        ErrorCode::OperationInterrupted => Error::Timeout {
            after: std::time::Duration::ZERO,
        },
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => Error::Conflict(engine),
        ErrorCode::ReadOnly
        | ErrorCode::PermissionDenied
        | ErrorCode::AuthorizationForStatementDenied => Error::PermissionDenied(engine),
        ErrorCode::CannotOpen
        | ErrorCode::NotADatabase
        | ErrorCode::DatabaseCorrupt
        | ErrorCode::SystemIoFailure => Error::Unavailable(engine),
        ErrorCode::TypeMismatch | ErrorCode::TooBig => Error::Precondition(engine),
        _ if message.starts_with("no such table") || message.starts_with("no such view") => {
            Error::NotFound(engine)
        }
        ErrorCode::Unknown | ErrorCode::ApiMisuse | ErrorCode::ParameterOutOfRange => {
            Error::InvalidStatement(engine)
        }
        _ => Error::Internal(engine),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;

    #[test]
    fn reads_storage_classes_and_declared_booleans() {
        assert_eq!(from_sql(ValueRef::Null, Some("TEXT")), Value::Null);
        assert_eq!(from_sql(ValueRef::Integer(7), None), Value::Int(7));
        assert_eq!(
            from_sql(ValueRef::Integer(1), Some("boolean")),
            Value::Bool(true)
        );
        assert_eq!(from_sql(ValueRef::Real(0.5), None), Value::Float(0.5));
        assert_eq!(
            from_sql(ValueRef::Text(b"h\xc3\xa9"), None),
            Value::from("hé")
        );
        assert_eq!(
            from_sql(ValueRef::Text(b"\xff"), None),
            Value::Bytes(Bytes::from_static(b"\xff"))
        );
        assert_eq!(
            from_sql(ValueRef::Blob(b"\x00"), None),
            Value::Bytes(Bytes::from_static(b"\x00"))
        );
    }

    #[test]
    fn writes_parameters_and_refuses_what_sqlite_cannot_hold() {
        assert_eq!(to_sql(1, &Value::Bool(true)).unwrap(), SqlValue::Integer(1));
        assert_eq!(
            to_sql(1, &Value::Decimal("1.10".into())).unwrap(),
            SqlValue::Text("1.10".into())
        );
        let ts = Value::Timestamp(Timestamp {
            unix_micros: 1_700_000_000_123_456,
            zoned: true,
        });
        assert_eq!(
            to_sql(1, &ts).unwrap(),
            SqlValue::Text("2023-11-14 22:13:20.123456".into())
        );
        let err = to_sql(3, &Value::List(vec![])).unwrap_err();
        assert!(matches!(err, Error::InvalidParameter { index: 3, .. }));
        assert!(
            err.to_string().contains("SQLite cannot store a list"),
            "{err}"
        );
    }
}
