//! Parameters typed from the prepared statement: each value is converted to
//! the parameter's PostgreSQL type (a string for a uuid, timestamptz,
//! numeric or jsonb; an int for a smallint; ...) or refused with the
//! parameter's position and the expected type, never its value.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::net::IpAddr;

use bytes::BytesMut;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use postgres_protocol::IsNull as WireNull;
use postgres_protocol::types as wire;
use tokio_postgres::types::{IsNull, Kind, ToSql, Type};

use super::decode::{PG_EPOCH_DAYS, PG_EPOCH_MICROS};
use super::numeric;
use crate::{Error, Value};

/// A parameter already encoded in PostgreSQL's binary form (`None`: NULL).
#[derive(Debug)]
pub(crate) struct Encoded(pub(crate) Option<BytesMut>);

impl ToSql for Encoded {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match &self.0 {
            Some(bytes) => {
                out.extend_from_slice(bytes);
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        self.to_sql(ty, out)
    }
}

/// Encodes parameter `index` (1-based) for the type the statement expects.
pub(crate) fn encode(index: usize, value: &Value, ty: &Type) -> Result<Encoded, Error> {
    let mut out = BytesMut::new();
    let null = encode_into(index, value, ty, &mut out)?;
    Ok(Encoded((!null).then_some(out)))
}

/// [`encode`] onto the end of `out`: whether the value is NULL (nothing
/// written). On an error, `out` may hold part of the value.
pub(crate) fn encode_into(
    index: usize,
    value: &Value,
    ty: &Type,
    out: &mut BytesMut,
) -> Result<bool, Error> {
    if matches!(value, Value::Null) {
        return Ok(true);
    }
    write(value, ty, out).map_err(|why| {
        let got = value.kind_name();
        let article = if got.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        Error::param(
            index,
            format!("expected {} ({why}), got {article} {got}", ty.name()),
        )
    })?;
    Ok(false)
}

type WriteResult = Result<(), String>;

fn write(value: &Value, ty: &Type, out: &mut BytesMut) -> WriteResult {
    match *ty {
        Type::BOOL => wire::bool_to_sql(as_bool(value)?, out),
        Type::INT2 => wire::int2_to_sql(
            i16::try_from(as_int(value)?).map_err(|_| "out of range for int2")?,
            out,
        ),
        Type::INT4 => wire::int4_to_sql(
            i32::try_from(as_int(value)?).map_err(|_| "out of range for int4")?,
            out,
        ),
        Type::INT8 => wire::int8_to_sql(as_int(value)?, out),
        Type::OID => wire::oid_to_sql(
            u32::try_from(as_int(value)?).map_err(|_| "out of range for oid")?,
            out,
        ),
        Type::FLOAT4 => wire::float4_to_sql(as_float(value)? as f32, out),
        Type::FLOAT8 => wire::float8_to_sql(as_float(value)?, out),
        Type::NUMERIC => numeric_into(value, out)?,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            wire::text_to_sql(&as_text(value)?, out)
        }
        Type::CHAR => out.extend_from_slice(as_text(value)?.as_bytes()),
        Type::BYTEA => match value {
            Value::Bytes(b) => wire::bytea_to_sql(b, out),
            Value::String(s) => wire::bytea_to_sql(s.as_bytes(), out),
            _ => return Err("send bytes".into()),
        },
        Type::UUID => wire::uuid_to_sql(*as_uuid(value)?.as_bytes(), out),
        Type::JSON => out.extend_from_slice(json_text(value)?.as_bytes()),
        Type::JSONB => {
            out.extend_from_slice(&[1]);
            out.extend_from_slice(json_text(value)?.as_bytes());
        }
        Type::DATE => wire::date_to_sql(as_date(value)?, out),
        Type::TIME => wire::time_to_sql(as_time(value)?, out),
        Type::TIMESTAMP => wire::timestamp_to_sql(as_timestamp(value, false)?, out),
        Type::TIMESTAMPTZ => wire::timestamp_to_sql(as_timestamp(value, true)?, out),
        Type::INTERVAL => match value {
            Value::Interval(i) => {
                out.extend_from_slice(&i.micros.to_be_bytes());
                out.extend_from_slice(&i.days.to_be_bytes());
                out.extend_from_slice(&i.months.to_be_bytes());
            }
            _ => return Err("send an interval".into()),
        },
        Type::INET | Type::CIDR => {
            let (addr, bits) = as_inet(value)?;
            wire::inet_to_sql(addr, bits, out);
        }
        _ => match ty.kind() {
            Kind::Array(element) => write_array(value, element, out)?,
            Kind::Domain(inner) => write(value, inner, out)?,
            Kind::Enum(labels) => {
                let label = as_text(value)?;
                if !labels.iter().any(|l| *l == label) {
                    return Err(format!("one of {}", labels.join(", ")));
                }
                out.extend_from_slice(label.as_bytes());
            }
            _ => {
                return Err(format!(
                    "no conversion to {}: cast the parameter in SQL, e.g. $1::text::{}",
                    ty.name(),
                    ty.name()
                ));
            }
        },
    }
    Ok(())
}

fn write_array(value: &Value, element: &Type, out: &mut BytesMut) -> WriteResult {
    let Value::List(items) = value else {
        return Err("send a list".into());
    };
    let dimension = wire::ArrayDimension {
        len: i32::try_from(items.len()).map_err(|_| "too many elements")?,
        lower_bound: 1,
    };
    wire::array_to_sql(
        Some(dimension),
        element.oid(),
        items.iter(),
        |item, buf| match item {
            Value::Null => Ok(WireNull::Yes),
            item => write(item, element, buf)
                .map(|()| WireNull::No)
                .map_err(Into::into),
        },
        out,
    )
    .map_err(|e| format!("element: {e}"))
}

fn as_bool(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Int(0) => Ok(false),
        Value::Int(1) => Ok(true),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "on" | "1" => Ok(true),
            "false" | "f" | "no" | "off" | "0" => Ok(false),
            _ => Err("send true or false".into()),
        },
        _ => Err("send a bool".into()),
    }
}

fn as_int(value: &Value) -> Result<i64, String> {
    match value {
        Value::Int(i) => Ok(*i),
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::String(s) | Value::Decimal(s) => {
            s.trim().parse().map_err(|_| "send an integer".into())
        }
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(*f as i64),
        _ => Err("send an integer".into()),
    }
}

fn as_float(value: &Value) -> Result<f64, String> {
    match value {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::String(s) | Value::Decimal(s) => {
            s.trim().parse().map_err(|_| "send a number".into())
        }
        _ => Err("send a number".into()),
    }
}

fn numeric_into(value: &Value, out: &mut BytesMut) -> WriteResult {
    let text: Cow<'_, str> = match value {
        Value::Decimal(s) | Value::String(s) => Cow::Borrowed(s),
        Value::Int(i) => Cow::Owned(i.to_string()),
        Value::Float(f) if f.is_finite() => Cow::Owned(f.to_string()),
        _ => return Err("send a decimal as text".into()),
    };
    numeric::encode_into(&text, out).ok_or_else(|| "send a decimal such as 12.50".into())
}

/// Text for text-like types: strings as they are, other scalars as printed.
fn as_text(value: &Value) -> Result<Cow<'_, str>, String> {
    match value {
        Value::String(s) | Value::Decimal(s) | Value::Json(s) => Ok(Cow::Borrowed(s)),
        Value::Bytes(b) => std::str::from_utf8(b)
            .map(Cow::Borrowed)
            .map_err(|_| "send UTF-8 text".into()),
        Value::List(_)
        | Value::Map(_)
        | Value::Node(_)
        | Value::Relationship(_)
        | Value::Path(_) => Err("send text".into()),
        scalar => Ok(Cow::Owned(scalar.to_string())),
    }
}

fn as_uuid(value: &Value) -> Result<uuid::Uuid, String> {
    match value {
        Value::Uuid(u) => Ok(*u),
        Value::String(s) => uuid::Uuid::parse_str(s)
            .map_err(|_| "send a uuid such as 67e55044-10b1-426f-9247-bb680e5fe0c8".into()),
        Value::Bytes(b) => uuid::Uuid::from_slice(b).map_err(|_| "send 16 bytes".into()),
        _ => Err("send a uuid".into()),
    }
}

fn json_text(value: &Value) -> Result<String, String> {
    match value {
        Value::Json(s) | Value::String(s) => {
            serde_json::from_str::<serde::de::IgnoredAny>(s)
                .map_err(|_| "send JSON text, a map or a list")?;
            Ok(s.as_str().to_owned())
        }
        other => to_json(other).map(|j| j.to_string()),
    }
}

/// A value as a JSON document (maps, lists and scalars).
fn to_json(value: &Value) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    Ok(match value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(J::Number)
            .ok_or("a finite number")?,
        Value::Decimal(d) => serde_json::from_str(d).map_err(|_| "a decimal JSON can hold")?,
        Value::String(s) => J::String(s.as_str().to_owned()),
        Value::Json(s) => serde_json::from_str(s).map_err(|_| "valid JSON text")?,
        Value::List(items) => J::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Value::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| Ok((k.as_str().to_owned(), to_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => J::String(other.to_string()),
    })
}

fn as_date(value: &Value) -> Result<i32, String> {
    let date = match value {
        Value::Date(d) => *d,
        Value::String(s) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map_err(|_| "send a date such as 2024-02-29")?
            .into(),
        _ => return Err("send a date".into()),
    };
    date.days_since_epoch
        .checked_sub(PG_EPOCH_DAYS)
        .ok_or_else(|| "the date is before PostgreSQL's range".into())
}

fn as_time(value: &Value) -> Result<i64, String> {
    let time = match value {
        Value::Time(t) => *t,
        Value::String(s) => NaiveTime::parse_from_str(s.trim(), "%H:%M:%S%.f")
            .map_err(|_| "send a time such as 13:45:00.5")?,
        _ => return Err("send a time".into()),
    };
    Ok(i64::from(time.num_seconds_from_midnight()) * 1_000_000
        + i64::from(time.nanosecond() / 1000))
}

/// Microseconds since 2000-01-01. Strings: RFC 3339, or a local date-time
/// (`2024-02-29 13:45:00`), read as UTC for timestamptz.
fn as_timestamp(value: &Value, zoned: bool) -> Result<i64, String> {
    let unix_micros = match value {
        Value::Timestamp(t) => t.unix_micros,
        Value::String(s) => parse_timestamp(s.trim(), zoned)
            .ok_or("send a timestamp such as 2024-02-29T13:45:00Z")?,
        Value::Date(d) => i64::from(d.days_since_epoch)
            .checked_mul(86_400_000_000)
            .ok_or("the date is outside the range of timestamps")?,
        _ => return Err("send a timestamp".into()),
    };
    Ok(unix_micros - PG_EPOCH_MICROS)
}

fn parse_timestamp(text: &str, zoned: bool) -> Option<i64> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Some(if zoned {
            instant.timestamp_micros()
        } else {
            instant.naive_local().and_utc().timestamp_micros()
        });
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|naive| naive.and_utc().timestamp_micros())
}

fn as_inet(value: &Value) -> Result<(IpAddr, u8), String> {
    let text = as_text(value)?;
    let (addr, bits) = match text.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (&*text, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| "send an address such as 10.0.0.1 or 10.0.0.0/8")?;
    let full = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(b) => b
            .parse::<u8>()
            .ok()
            .filter(|b| *b <= full)
            .ok_or("the prefix length is out of range")?,
        None => full,
    };
    Ok((addr, bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_parameter_says_what_it_got_in_english() {
        let err = encode(1, &Value::Int(3), &Type::BOOL)
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.ends_with("got an int")),
            "{err:?}"
        );
        let err = encode(1, &Value::List(Vec::new()), &Type::INT4)
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.ends_with("got a list")),
            "{err:?}"
        );
    }
}
