//! PostgreSQL result values (binary format) to Omnigate's values. Every
//! type decodes: types without a mapping come back as their bytes (text
//! when UTF-8, which covers enums, citext, xml and the like). Rows are
//! read decoded ([`push`]), or copied as sent for a caller that forwards
//! them ([`push_wire`], [`Cells`](crate::Cells)).

use std::error::Error as StdError;

use bytes::Bytes;
use chrono::NaiveTime;
use postgres_protocol::types as wire;
use tokio_postgres::Row as PgRow;
use tokio_postgres::types::{FromSql, Kind, Type};

use super::numeric;
use crate::{Date, Error, Interval, Result, Rows, Timestamp, Value, WireWriter};

type DecodeResult<T> = Result<T, Box<dyn StdError + Sync + Send>>;

/// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
pub(crate) const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from 1970-01-01 to 2000-01-01.
pub(crate) const PG_EPOCH_DAYS: i32 = 10_957;

/// One decoded result cell.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cell(pub(crate) Value);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> DecodeResult<Self> {
        decode(ty, raw).map(Cell)
    }

    fn from_sql_null(_: &Type) -> DecodeResult<Self> {
        Ok(Cell(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// One non-null cell as PostgreSQL sent it (in the format asked for), not
/// decoded: for callers that forward it ([`Cells`](crate::Cells)).
pub(crate) struct Native<'a>(pub(crate) &'a [u8]);

impl<'a> FromSql<'a> for Native<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> DecodeResult<Self> {
        Ok(Native(raw))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Adds a row's cells to `rows`, decoded; the row added.
///
/// The loop carries the small `(column, tokio_postgres::Error)` and makes
/// the driver's error only when a cell fails: a `Result` as wide as the
/// driver's error was copied through the stack three times per cell
/// (about 8 % of a 10,000-row stream's CPU at one task, session 26).
pub(crate) fn push<'a>(rows: &'a mut Rows, row: &PgRow) -> Result<&'a [Value]> {
    rows.try_push((0..row.len()).map(|i| {
        row.try_get::<_, Cell>(i)
            .map(|cell| cell.0)
            .map_err(|e| (i, e))
    }))
    .map_err(|(i, e)| unreadable(row, i, e))?;
    Ok(rows.last().unwrap_or_default())
}

/// Adds a row's cells to `rows` as PostgreSQL sent them
/// ([`Cells::Binary`](crate::Cells), [`Cells::Text`](crate::Cells)); the row's
/// size as a `DataRow` message.
pub(crate) fn push_wire(rows: &mut WireWriter, row: &PgRow) -> Result<usize> {
    for i in 0..row.len() {
        let cell = row
            .try_get::<_, Option<Native>>(i)
            .map_err(|e| unreadable(row, i, e));
        if let Err(e) = cell.and_then(|cell| rows.cell(cell.map(|Native(raw)| raw))) {
            rows.abandon_row();
            return Err(e);
        }
    }
    Ok(rows.end_row())
}

/// Why cell `i` of `row` did not decode, naming its column.
#[cold]
fn unreadable(row: &PgRow, i: usize, e: tokio_postgres::Error) -> Error {
    let column = row.columns()[i].name().to_owned();
    if let Some(range) = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<OutOfRange>())
    {
        return Error::OutOfRange(crate::EngineError::new(
            super::KIND,
            None,
            format!("column {column}: {range}"),
        ));
    }
    Error::Internal(
        crate::EngineError::new(
            super::KIND,
            None,
            format!("cannot read column {column}: {e}"),
        )
        .with_source(e),
    )
}

/// One value of type `ty` from PostgreSQL's binary format.
pub(crate) fn decode_one(ty: &Type, raw: &[u8]) -> DecodeResult<Value> {
    decode(ty, raw)
}

fn text(raw: &[u8]) -> Value {
    Value::from_slice_lossless(raw)
}

fn decode(ty: &Type, raw: &[u8]) -> DecodeResult<Value> {
    Ok(match *ty {
        Type::BOOL => Value::Bool(wire::bool_from_sql(raw)?),
        Type::INT2 => Value::Int(wire::int2_from_sql(raw)?.into()),
        Type::INT4 => Value::Int(wire::int4_from_sql(raw)?.into()),
        Type::INT8 => Value::Int(wire::int8_from_sql(raw)?),
        Type::OID => Value::Int(wire::oid_from_sql(raw)?.into()),
        Type::FLOAT4 => Value::Float(wire::float4_from_sql(raw)?.into()),
        Type::FLOAT8 => Value::Float(wire::float8_from_sql(raw)?),
        Type::NUMERIC => Value::Decimal(numeric::decode(raw).ok_or("malformed numeric")?),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::CHAR => {
            text(raw)
        }
        Type::BYTEA => Value::Bytes(Bytes::copy_from_slice(raw)),
        Type::UUID => Value::Uuid(uuid::Uuid::from_bytes(wire::uuid_from_sql(raw)?)),
        Type::JSON => json(raw)?,
        Type::JSONB => match raw.split_first() {
            Some((1, rest)) => json(rest)?,
            _ => return Err("unsupported jsonb version".into()),
        },
        Type::DATE => date(wire::date_from_sql(raw)?)?,
        Type::TIME => Value::Time(time(wire::time_from_sql(raw)?).ok_or("time out of range")?),
        Type::TIMESTAMP => timestamp(wire::timestamp_from_sql(raw)?, false)?,
        Type::TIMESTAMPTZ => timestamp(wire::timestamp_from_sql(raw)?, true)?,
        Type::INTERVAL => interval(raw)?,
        Type::INET | Type::CIDR => inet(raw, *ty == Type::CIDR)?,
        _ => match ty.kind() {
            Kind::Array(element) => array(element, raw)?,
            Kind::Domain(inner) => decode(inner, raw)?,
            // Enums (and every type we do not map) arrive as their bytes;
            // an enum's binary form is its label.
            _ => text(raw),
        },
    })
}

/// The built-in types `decode` maps (arrays, domains and enums of them
/// too); others are read as text through a cast (see `run::text_fallback`).
pub(crate) const MAPPED: [Type; 25] = [
    Type::BOOL,
    Type::INT2,
    Type::INT4,
    Type::INT8,
    Type::OID,
    Type::FLOAT4,
    Type::FLOAT8,
    Type::NUMERIC,
    Type::TEXT,
    Type::VARCHAR,
    Type::BPCHAR,
    Type::NAME,
    Type::UNKNOWN,
    Type::CHAR,
    Type::BYTEA,
    Type::UUID,
    Type::JSON,
    Type::JSONB,
    Type::DATE,
    Type::TIME,
    Type::TIMESTAMP,
    Type::TIMESTAMPTZ,
    Type::INTERVAL,
    Type::INET,
    Type::CIDR,
];

/// Whether `decode` maps this type.
pub(crate) fn is_mapped(ty: &Type) -> bool {
    MAPPED.contains(ty)
        || match ty.kind() {
            Kind::Array(element) | Kind::Domain(element) => is_mapped(element),
            Kind::Enum(_) => true,
            _ => false,
        }
}

/// A JSON document as values; one nested deeper than the value model
/// allows stays JSON text (kind `json`), so any stored document can be read.
fn json(raw: &[u8]) -> DecodeResult<Value> {
    let text = std::str::from_utf8(raw)?;
    if crate::nesting::depth(text, crate::nesting::Syntax::Json) >= crate::MAX_DEPTH {
        return Ok(Value::Json(text.into()));
    }
    let parsed: serde_json::Value = serde_json::from_str(text)?;
    Ok(from_json(parsed))
}

/// A JSON document as values: objects become maps, arrays lists; numbers
/// become ints when they fit, floats when finite, exact decimals otherwise.
pub(crate) fn from_json(json: serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(f)) if n.is_f64() => Value::Float(f),
            _ => Value::Decimal(n.to_string().into()),
        },
        serde_json::Value::String(s) => Value::String(s.into()),
        serde_json::Value::Array(items) => Value::List(items.into_iter().map(from_json).collect()),
        serde_json::Value::Object(map) => Value::Map(
            map.into_iter()
                .map(|(k, v)| (k.into(), from_json(v)))
                .collect(),
        ),
    }
}

/// A value PostgreSQL holds that the value model cannot: the call fails
/// with `OUT_OF_RANGE` rather than return something else.
#[derive(Debug)]
pub(crate) struct OutOfRange(pub(crate) &'static str);

impl std::fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl StdError for OutOfRange {}

fn date(days: i32) -> DecodeResult<Value> {
    Ok(match days {
        i32::MAX => Value::String("infinity".into()),
        i32::MIN => Value::String("-infinity".into()),
        // PostgreSQL's last date (5874897-12-31) is 2,147,483,494 days after
        // 2000-01-01, so counting from 1970 fits an i32 nearly always; a day
        // count that does not is an error, never a silently wrong date.
        _ => match days.checked_add(PG_EPOCH_DAYS) {
            Some(days) => Value::Date(Date::from_days(days)),
            None => return Err(OutOfRange("a date this late does not fit the value model").into()),
        },
    })
}

fn time(micros: i64) -> Option<NaiveTime> {
    let secs = u32::try_from(micros.div_euclid(1_000_000)).ok()?;
    let nanos = u32::try_from(micros.rem_euclid(1_000_000) * 1000).ok()?;
    NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos)
}

/// PostgreSQL counts µs from 2000, the value model from 1970: the last
/// 30 years of PostgreSQL's range (294247–294276 AD) do not fit an i64 of
/// µs since 1970, and are refused rather than clamped.
fn timestamp(micros: i64, zoned: bool) -> DecodeResult<Value> {
    Ok(match micros {
        i64::MAX => Value::String("infinity".into()),
        i64::MIN => Value::String("-infinity".into()),
        _ => Value::Timestamp(Timestamp {
            unix_micros: micros.checked_add(PG_EPOCH_MICROS).ok_or(OutOfRange(
                "a timestamp after 294247-01-10 does not fit the value model \
                 (µs since 1970 in an i64)",
            ))?,
            zoned,
        }),
    })
}

fn interval(raw: &[u8]) -> DecodeResult<Value> {
    let bytes: [u8; 16] = raw.try_into().map_err(|_| "malformed interval")?;
    let micros = i64::from_be_bytes(bytes[0..8].try_into()?);
    let days = i32::from_be_bytes(bytes[8..12].try_into()?);
    let months = i32::from_be_bytes(bytes[12..16].try_into()?);
    Ok(Value::Interval(Interval {
        months,
        days,
        micros,
    }))
}

/// inet/cidr as PostgreSQL prints them: `10.0.0.1`, `10.0.0.0/8`.
fn inet(raw: &[u8], cidr: bool) -> DecodeResult<Value> {
    let inet = wire::inet_from_sql(raw)?;
    let full = if inet.addr().is_ipv4() { 32 } else { 128 };
    Ok(Value::String(if cidr || inet.netmask() != full {
        compact_str::format_compact!("{}/{}", inet.addr(), inet.netmask())
    } else {
        compact_str::ToCompactString::to_compact_string(&inet.addr())
    }))
}

/// Arrays as (nested, for several dimensions) lists; NULL elements are nulls.
fn array(element: &Type, raw: &[u8]) -> DecodeResult<Value> {
    use fallible_iterator::FallibleIterator;
    use postgres_protocol::types::ArrayDimension;
    let array = wire::array_from_sql(raw)?;
    let dims: Vec<ArrayDimension> = array.dimensions().collect()?;
    let mut values = Vec::new();
    let mut items = array.values();
    while let Some(item) = items.next()? {
        values.push(match item {
            Some(bytes) => decode(element, bytes)?,
            None => Value::Null,
        });
    }
    // Fold the flat values into nested lists, innermost dimension first.
    for dim in dims.iter().skip(1).rev() {
        let width = usize::try_from(dim.len)
            .map_err(|_| "negative array dimension")?
            .max(1);
        let mut grouped = Vec::with_capacity(values.len() / width + 1);
        let mut rest = values.into_iter();
        loop {
            let chunk: Vec<Value> = rest.by_ref().take(width).collect();
            if chunk.is_empty() {
                break;
            }
            grouped.push(Value::List(chunk));
        }
        values = grouped;
    }
    Ok(Value::List(values))
}
