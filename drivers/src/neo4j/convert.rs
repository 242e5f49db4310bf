//! Bolt values (neo4rs' `BoltType`) to Omnigate's [`Value`] and back.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use neo4rs::{
    BoltBoolean, BoltBytes, BoltDate, BoltDateTime, BoltDuration, BoltFloat, BoltInteger, BoltList,
    BoltLocalDateTime, BoltLocalTime, BoltMap, BoltNode, BoltNull, BoltPath, BoltRelation,
    BoltString, BoltType, BoltUnboundedRelation,
};

use crate::{Interval, Node, Path, Relationship, Timestamp, Value};

/// A parameter as a Bolt value; `Err` says why it cannot be one.
pub(crate) fn to_bolt(value: &Value) -> Result<BoltType, String> {
    Ok(match value {
        Value::Null => BoltType::Null(BoltNull),
        Value::Bool(b) => BoltType::Boolean(BoltBoolean::new(*b)),
        Value::Int(i) => BoltType::Integer(BoltInteger::new(*i)),
        Value::Float(f) => BoltType::Float(BoltFloat::new(*f)),
        Value::String(s) | Value::Json(s) => BoltType::String(BoltString::new(s)),
        Value::Uuid(u) => BoltType::String(BoltString::new(&u.to_string())),
        Value::Bytes(b) => BoltType::Bytes(BoltBytes::new(b.clone())),
        Value::Date(d) => match d.to_naive() {
            Some(d) => BoltType::Date(BoltDate::from(d)),
            None => return Err(format!("the date {d} is outside Neo4j's range")),
        },
        Value::Time(t) => BoltType::LocalTime(BoltLocalTime::from(*t)),
        Value::Timestamp(t) => {
            let at = DateTime::<Utc>::from_timestamp_micros(t.unix_micros)
                .ok_or("the timestamp is out of range")?;
            if t.zoned {
                BoltType::DateTime(BoltDateTime::from(at))
            } else {
                BoltType::LocalDateTime(BoltLocalDateTime::from(at.naive_utc()))
            }
        }
        Value::Interval(i) => BoltType::Duration(BoltDuration::new(
            BoltInteger::new(i64::from(i.months)),
            BoltInteger::new(i64::from(i.days)),
            BoltInteger::new(i.micros.div_euclid(1_000_000)),
            BoltInteger::new(i.micros.rem_euclid(1_000_000) * 1000),
        )),
        Value::List(items) => BoltType::List(BoltList {
            value: items.iter().map(to_bolt).collect::<Result<_, _>>()?,
        }),
        Value::Map(entries) => {
            let mut map = BoltMap::new();
            for (key, item) in entries {
                map.put(BoltString::new(key), to_bolt(item)?);
            }
            BoltType::Map(map)
        }
        other => {
            return Err(format!(
                "Neo4j cannot take a {} parameter{}",
                other.kind_name(),
                if matches!(other, Value::Decimal(_)) {
                    ": pass it as a string or a float"
                } else {
                    ""
                }
            ));
        }
    })
}

/// A Bolt value as Omnigate's.
pub(crate) fn from_bolt(value: BoltType) -> Value {
    match value {
        BoltType::Null(_) => Value::Null,
        BoltType::Boolean(b) => Value::Bool(b.value),
        BoltType::Integer(i) => Value::Int(i.value),
        BoltType::Float(f) => Value::Float(f.value),
        BoltType::String(s) => Value::String(s.value.into()),
        BoltType::Bytes(b) => Value::Bytes(b.value),
        BoltType::List(list) => Value::List(list.value.into_iter().map(from_bolt).collect()),
        BoltType::Map(map) => Value::Map(
            entries(map)
                .into_iter()
                .map(|(k, v)| (k.into(), v))
                .collect(),
        ),
        BoltType::Node(node) => Value::Node(node_of(node)),
        BoltType::Relation(rel) => Value::Relationship(relationship_of(rel)),
        BoltType::UnboundedRelation(rel) => Value::Relationship(unbounded_of(rel, 0, 0)),
        BoltType::Path(path) => Value::Path(path_of(path)),
        BoltType::Point2D(p) => Value::Map(vec![
            ("srid".into(), Value::Int(p.sr_id.value)),
            ("x".into(), Value::Float(p.x.value)),
            ("y".into(), Value::Float(p.y.value)),
        ]),
        BoltType::Point3D(p) => Value::Map(vec![
            ("srid".into(), Value::Int(p.sr_id.value)),
            ("x".into(), Value::Float(p.x.value)),
            ("y".into(), Value::Float(p.y.value)),
            ("z".into(), Value::Float(p.z.value)),
        ]),
        BoltType::Date(d) => NaiveDate::try_from(&d).map_or(Value::Null, |d| Value::Date(d.into())),
        BoltType::Time(t) => {
            let (time, _offset): (NaiveTime, FixedOffset) = (&t).into();
            Value::Time(time)
        }
        BoltType::LocalTime(t) => Value::Time(NaiveTime::from(&t)),
        BoltType::DateTime(t) => DateTime::<FixedOffset>::try_from(&t).map_or(Value::Null, |at| {
            Value::Timestamp(Timestamp {
                unix_micros: at.timestamp_micros(),
                zoned: true,
            })
        }),
        BoltType::DateTimeZoneId(t) => {
            DateTime::<FixedOffset>::try_from(&t).map_or(Value::Null, |at| {
                Value::Timestamp(Timestamp {
                    unix_micros: at.timestamp_micros(),
                    zoned: true,
                })
            })
        }
        BoltType::LocalDateTime(t) => NaiveDateTime::try_from(&t).map_or(Value::Null, |at| {
            Value::Timestamp(Timestamp {
                unix_micros: at.and_utc().timestamp_micros(),
                zoned: false,
            })
        }),
        BoltType::Duration(d) => {
            // neo4rs folds months and days into seconds (a month as
            // 2,629,800 s) before it lets them out.
            let total: std::time::Duration = d.into();
            Value::Interval(Interval {
                months: 0,
                days: 0,
                micros: i64::try_from(total.as_micros()).unwrap_or(i64::MAX),
            })
        }
    }
}

fn entries(map: BoltMap) -> Vec<(String, Value)> {
    let mut entries: Vec<(String, Value)> = map
        .value
        .into_iter()
        .map(|(k, v)| (k.value, from_bolt(v)))
        .collect();
    // Bolt maps have no order; give them a stable one.
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

fn node_of(node: BoltNode) -> Node {
    Node {
        id: node.id.value,
        labels: node
            .labels
            .value
            .into_iter()
            .filter_map(|l| match l {
                BoltType::String(s) => Some(s.value),
                _ => None,
            })
            .collect(),
        properties: entries(node.properties),
    }
}

fn relationship_of(rel: BoltRelation) -> Relationship {
    Relationship {
        id: rel.id.value,
        rel_type: rel.typ.value,
        start_node_id: rel.start_node_id.value,
        end_node_id: rel.end_node_id.value,
        properties: entries(rel.properties),
    }
}

fn unbounded_of(rel: BoltUnboundedRelation, start: i64, end: i64) -> Relationship {
    Relationship {
        id: rel.id.value,
        rel_type: rel.typ.value,
        start_node_id: start,
        end_node_id: end,
        properties: entries(rel.properties),
    }
}

/// Bolt sends a path as its distinct nodes and relationships and a list of
/// indices: for each hop, a relationship index (1-based, negative when
/// walked against its direction) and the next node's index.
fn path_of(path: BoltPath) -> Path {
    let nodes: Vec<Node> = path
        .nodes
        .value
        .into_iter()
        .filter_map(|n| match n {
            BoltType::Node(n) => Some(node_of(n)),
            _ => None,
        })
        .collect();
    let rels: Vec<BoltUnboundedRelation> = path
        .rels
        .value
        .into_iter()
        .filter_map(|r| match r {
            BoltType::UnboundedRelation(r) => Some(r),
            _ => None,
        })
        .collect();
    let indices: Vec<i64> = path
        .indices
        .value
        .into_iter()
        .filter_map(|i| match i {
            BoltType::Integer(i) => Some(i.value),
            _ => None,
        })
        .collect();
    let mut out = Path::default();
    let Some(first) = nodes.first() else {
        return out;
    };
    out.nodes.push(first.clone());
    let mut current = first.id;
    for hop in indices.chunks(2) {
        let [rel_index, node_index] = hop else { break };
        let (Some(rel), Some(next)) = (
            usize::try_from(rel_index.unsigned_abs() as i64 - 1)
                .ok()
                .and_then(|i| rels.get(i)),
            usize::try_from(*node_index).ok().and_then(|i| nodes.get(i)),
        ) else {
            break;
        };
        let (start, end) = if *rel_index > 0 {
            (current, next.id)
        } else {
            (next.id, current)
        };
        out.relationships
            .push(unbounded_of(rel.clone(), start, end));
        out.nodes.push(next.clone());
        current = next.id;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(value: Value) -> Value {
        from_bolt(to_bolt(&value).unwrap())
    }

    #[test]
    fn scalars_lists_and_maps_round_trip() {
        for value in [
            Value::Null,
            Value::Bool(true),
            Value::Int(i64::MIN),
            Value::Float(-0.5),
            Value::from("héllo"),
            Value::Bytes(vec![0, 255].into()),
            Value::List(vec![Value::Int(1), Value::Null]),
            Value::Map(vec![
                ("a".into(), Value::Int(1)),
                ("b".into(), Value::from("x")),
            ]),
        ] {
            assert_eq!(round_trip(value.clone()), value);
        }
    }

    #[test]
    fn dates_times_and_timestamps_round_trip() {
        let date = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
        assert_eq!(
            round_trip(Value::Date(date.into())),
            Value::Date(date.into())
        );
        let time = NaiveTime::from_hms_micro_opt(13, 14, 15, 16).unwrap();
        assert_eq!(round_trip(Value::Time(time)), Value::Time(time));
        for zoned in [true, false] {
            let at = Value::Timestamp(Timestamp {
                unix_micros: 1_700_000_000_123_456,
                zoned,
            });
            assert_eq!(round_trip(at.clone()), at);
        }
        let interval = Value::Interval(Interval {
            months: 0,
            days: 0,
            micros: 90_500_000,
        });
        assert_eq!(round_trip(interval.clone()), interval);
    }

    #[test]
    fn graph_values_map_to_nodes_relationships_and_paths() {
        let mut props = BoltMap::new();
        props.put(
            BoltString::new("name"),
            BoltType::String(BoltString::new("ada")),
        );
        let node = |id: i64| BoltNode {
            id: BoltInteger::new(id),
            labels: BoltList {
                value: vec![BoltType::String(BoltString::new("Person"))],
            },
            properties: props.clone(),
        };
        let Value::Node(n) = from_bolt(BoltType::Node(node(7))) else {
            panic!()
        };
        assert_eq!((n.id, n.labels.clone()), (7, vec!["Person".to_owned()]));
        assert_eq!(n.properties, vec![("name".to_owned(), Value::from("ada"))]);
        let rel = BoltUnboundedRelation {
            id: BoltInteger::new(9),
            typ: BoltString::new("KNOWS"),
            properties: BoltMap::new(),
        };
        // (7)-[9]->(8)<-[9]-... : one hop forward, then the same relationship backward.
        let path = BoltPath {
            nodes: BoltList {
                value: vec![BoltType::Node(node(7)), BoltType::Node(node(8))],
            },
            rels: BoltList {
                value: vec![BoltType::UnboundedRelation(rel)],
            },
            indices: BoltList {
                value: [1, 1, -1, 0]
                    .into_iter()
                    .map(|i| BoltType::Integer(BoltInteger::new(i)))
                    .collect(),
            },
        };
        let Value::Path(p) = from_bolt(BoltType::Path(path)) else {
            panic!()
        };
        let ids: Vec<i64> = p.nodes.iter().map(|n| n.id).collect();
        assert_eq!(ids, vec![7, 8, 7]);
        let ends: Vec<(i64, i64)> = p
            .relationships
            .iter()
            .map(|r| (r.start_node_id, r.end_node_id))
            .collect();
        assert_eq!(ends, vec![(7, 8), (7, 8)]);
    }

    #[test]
    fn values_bolt_cannot_carry_are_refused_with_a_reason() {
        assert!(
            to_bolt(&Value::Decimal("1.5".into()))
                .unwrap_err()
                .contains("string")
        );
        assert!(to_bolt(&Value::Node(Node::default())).is_err());
    }
}
