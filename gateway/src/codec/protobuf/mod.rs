//! Omnigate's values to and from the protobuf message `omnigate.v1.Value`:
//! the protobuf codec stores values as that message, and the gRPC front end
//! carries them in it. Only the message types are used here, not the
//! service.

use chrono::{NaiveTime, Timelike};
use omnigate_drivers::{Date, Interval, Node, Path, Relationship, Timestamp, Value};
use omnigate_proto::v1 as pb;
use pb::value::Kind;

use crate::error::{Error, ParamRef};

pub mod wire;

/// A proto value as Omnigate's; `param` names the parameter in errors.
pub fn from_proto(param: &ParamRef, value: pb::Value) -> Result<Value, Error> {
    let bad = |message: String| Error::BadParameter {
        param: param.clone(),
        message,
    };
    Ok(match value.kind {
        None | Some(Kind::Null(_)) => Value::Null,
        Some(Kind::Bool(b)) => Value::Bool(b),
        Some(Kind::Int(i)) => Value::Int(i),
        Some(Kind::Float(f)) => Value::Float(f),
        Some(Kind::Decimal(d)) => {
            if !is_decimal(&d) {
                return Err(bad(
                    "a decimal must be digits with an optional sign, point and exponent".into(),
                ));
            }
            Value::Decimal(d.into())
        }
        Some(Kind::String(s)) => Value::String(s.into()),
        Some(Kind::Bytes(b)) => Value::Bytes(b.into()),
        Some(Kind::Timestamp(t)) => Value::Timestamp(Timestamp {
            unix_micros: t.unix_micros,
            zoned: t.zoned,
        }),
        Some(Kind::Date(d)) => Value::Date(Date::from_days(d.days_since_epoch)),
        Some(Kind::Time(t)) => {
            Value::Time(time_from_micros(t.micros_since_midnight).ok_or_else(|| {
                bad(
                    "a time must be between 0 and 86,400,000,000 microseconds since midnight"
                        .into(),
                )
            })?)
        }
        Some(Kind::Interval(i)) => Value::Interval(Interval {
            months: i.months,
            days: i.days,
            micros: i.micros,
        }),
        Some(Kind::Uuid(u)) => Value::Uuid(uuid::Uuid::parse_str(&u).map_err(|_| {
            bad("a uuid must be 32 hex digits, e.g. 67e55044-10b1-426f-9247-bb680e5fe0c8".into())
        })?),
        Some(Kind::Json(j)) => {
            serde_json::from_str::<serde::de::IgnoredAny>(&j).map_err(|e| {
                bad(format!(
                    "the json is malformed at line {} column {}",
                    e.line(),
                    e.column()
                ))
            })?;
            Value::Json(j.into())
        }
        Some(Kind::List(l)) => Value::List(
            l.values
                .into_iter()
                .map(|v| from_proto(param, v))
                .collect::<Result<_, _>>()?,
        ),
        Some(Kind::Map(m)) => Value::Map(map_from_proto(param, m)?),
        Some(Kind::Node(n)) => Value::Node(node_from_proto(param, n)?),
        Some(Kind::Relationship(r)) => Value::Relationship(rel_from_proto(param, r)?),
        Some(Kind::Path(p)) => Value::Path(Path {
            nodes: p
                .nodes
                .into_iter()
                .map(|n| node_from_proto(param, n))
                .collect::<Result<_, _>>()?,
            relationships: p
                .relationships
                .into_iter()
                .map(|r| rel_from_proto(param, r))
                .collect::<Result<_, _>>()?,
        }),
    })
}

fn time_from_micros(micros: i64) -> Option<NaiveTime> {
    if !(0..86_400_000_000).contains(&micros) {
        return None;
    }
    let secs = u32::try_from(micros.checked_div(1_000_000)?).ok()?;
    let nanos = u32::try_from(micros.rem_euclid(1_000_000) * 1000).ok()?;
    NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos)
}

fn is_decimal(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match body.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['-', '+']).unwrap_or(e))),
        None => (body, None),
    };
    let digits = mantissa.replacen('.', "", 1);
    let special = ["NaN", "Infinity"].contains(&body);
    special
        || (!digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && exponent.is_none_or(|e| !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())))
}

/// A map's entries; a key given twice is the client's mistake (engines
/// would keep one of them, each its own way: found by the FalkorDB replay
/// of the fuzz corpus).
fn map_from_proto<K: From<String>>(
    param: &ParamRef,
    map: pb::ValueMap,
) -> Result<Vec<(K, Value)>, Error> {
    let mut seen = std::collections::HashSet::with_capacity(map.entries.len());
    map.entries
        .into_iter()
        .map(|e| {
            if !seen.insert(e.key.clone()) {
                return Err(Error::BadParameter {
                    param: param.clone(),
                    message: format!("the map key {:?} appears twice: give each key once", e.key),
                });
            }
            Ok((
                e.key.into(),
                from_proto(param, e.value.unwrap_or_default())?,
            ))
        })
        .collect()
}

fn node_from_proto(param: &ParamRef, n: pb::Node) -> Result<Node, Error> {
    Ok(Node {
        id: n.id,
        labels: n.labels,
        properties: map_from_proto(param, n.properties.unwrap_or_default())?,
    })
}

fn rel_from_proto(param: &ParamRef, r: pb::Relationship) -> Result<Relationship, Error> {
    Ok(Relationship {
        id: r.id,
        rel_type: r.r#type,
        start_node_id: r.start_node_id,
        end_node_id: r.end_node_id,
        properties: map_from_proto(param, r.properties.unwrap_or_default())?,
    })
}

/// Omnigate's value as a proto value.
pub fn to_proto(value: Value) -> pb::Value {
    let kind = match value {
        Value::Null => Kind::Null(pb::Null::Null.into()),
        Value::Bool(b) => Kind::Bool(b),
        Value::Int(i) => Kind::Int(i),
        Value::Float(f) => Kind::Float(f),
        Value::Decimal(d) => Kind::Decimal(d.into()),
        Value::String(s) => Kind::String(s.into()),
        Value::Bytes(b) => Kind::Bytes(b.to_vec()),
        Value::Timestamp(t) => Kind::Timestamp(pb::Timestamp {
            unix_micros: t.unix_micros,
            zoned: t.zoned,
        }),
        Value::Date(d) => Kind::Date(pb::Date {
            days_since_epoch: d.days_since_epoch,
        }),
        Value::Time(t) => Kind::Time(pb::Time {
            micros_since_midnight: i64::from(t.num_seconds_from_midnight()) * 1_000_000
                + i64::from(t.nanosecond() / 1000),
        }),
        Value::Interval(i) => Kind::Interval(pb::Interval {
            months: i.months,
            days: i.days,
            micros: i.micros,
        }),
        Value::Uuid(u) => Kind::Uuid(u.to_string()),
        Value::Json(j) => Kind::Json(j.into()),
        Value::List(items) => Kind::List(pb::ValueList {
            values: items.into_iter().map(to_proto).collect(),
        }),
        Value::Map(entries) => Kind::Map(map_to_proto(entries)),
        Value::Node(n) => Kind::Node(node_to_proto(n)),
        Value::Relationship(r) => Kind::Relationship(rel_to_proto(r)),
        Value::Path(p) => Kind::Path(pb::Path {
            nodes: p.nodes.into_iter().map(node_to_proto).collect(),
            relationships: p.relationships.into_iter().map(rel_to_proto).collect(),
        }),
    };
    pb::Value { kind: Some(kind) }
}

fn map_to_proto<K: Into<String>>(entries: Vec<(K, Value)>) -> pb::ValueMap {
    pb::ValueMap {
        entries: entries
            .into_iter()
            .map(|(key, value)| pb::MapEntry {
                key: key.into(),
                value: Some(to_proto(value)),
            })
            .collect(),
    }
}

fn node_to_proto(n: Node) -> pb::Node {
    pb::Node {
        id: n.id,
        labels: n.labels,
        properties: Some(map_to_proto(n.properties)),
    }
}

fn rel_to_proto(r: Relationship) -> pb::Relationship {
    pb::Relationship {
        id: r.id,
        r#type: r.rel_type,
        start_node_id: r.start_node_id,
        end_node_id: r.end_node_id,
        properties: Some(map_to_proto(r.properties)),
    }
}

#[cfg(test)]
mod tests;
