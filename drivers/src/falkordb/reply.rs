//! FalkorDB's compact replies (`GRAPH.QUERY ... --compact`) as result sets.
//!
//! A reply is `[header, rows, stats]` (or just `[stats]` for a statement
//! that returns nothing). Every cell is `[type, value]`; nodes and
//! relationships name their labels, types and property keys by id, which
//! [`Tables`] turns back into names.

use ::redis::Value as Resp;
use chrono::{DateTime, NaiveTime};

use super::params::stored_bytes;
use crate::{Column, Interval, Node, Path, Relationship, ResultSet, Rows, Timestamp, Value};

/// The graph's label, relationship-type and property-key names, by id.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Tables {
    pub(crate) labels: Vec<String>,
    pub(crate) types: Vec<String>,
    pub(crate) keys: Vec<String>,
}

/// Why a reply could not be read.
#[derive(Debug, PartialEq)]
pub(crate) enum DecodeError {
    /// An id missing from the tables: they are stale, fetch them again.
    UnknownId,
    /// Not a reply of the shape FalkorDB sends.
    Malformed(String),
}

type Decoded<T> = std::result::Result<T, DecodeError>;

fn malformed<T>(what: &str) -> Decoded<T> {
    Err(DecodeError::Malformed(format!(
        "unexpected FalkorDB reply: {what}"
    )))
}

/// The counters that make a write's `rows_affected`.
const AFFECTING: [&str; 6] = [
    "Nodes created",
    "Nodes deleted",
    "Relationships created",
    "Relationships deleted",
    "Properties set",
    "Properties removed",
];

/// Reads a whole compact reply.
pub(crate) fn result_set(reply: &Resp, tables: &Tables) -> Decoded<ResultSet> {
    let Resp::Array(parts) = reply else {
        return malformed("not an array");
    };
    let (header, rows, stats) = match parts.as_slice() {
        [stats] => (None, None, stats),
        [header, rows, stats] => (Some(header), Some(rows), stats),
        _ => return malformed("not [header, rows, stats]"),
    };
    let columns = match header {
        Some(Resp::Array(columns)) => columns
            .iter()
            .map(|column| match column {
                Resp::Array(pair) if pair.len() == 2 => Ok(Column::new(text(&pair[1])?, "")),
                _ => malformed("a header entry is not [type, name]"),
            })
            .collect::<Decoded<Vec<_>>>()?,
        Some(_) => return malformed("the header is not an array"),
        None => Vec::new(),
    };
    let rows = match rows {
        Some(Resp::Array(rows)) => {
            let mut out = Rows::new();
            for row in rows {
                match row {
                    Resp::Array(cells) => out.try_push(cells.iter().map(|c| cell(c, tables)))?,
                    _ => return malformed("a row is not an array"),
                }
            }
            out
        }
        Some(_) => return malformed("the rows are not an array"),
        None => Rows::new(),
    };
    Ok(ResultSet {
        columns,
        rows,
        rows_affected: rows_affected(stats)?,
        wire_rows: None,
    })
}

fn rows_affected(stats: &Resp) -> Decoded<u64> {
    let Resp::Array(lines) = stats else {
        return malformed("the statistics are not an array");
    };
    let mut total = 0;
    for line in lines {
        let line = text(line)?;
        if let Some((name, count)) = line.split_once(": ")
            && AFFECTING.contains(&name)
        {
            // A count the server cannot mean saturates rather than wraps.
            total = u64::saturating_add(total, count.trim().parse().unwrap_or(0));
        }
    }
    Ok(total)
}

fn text(value: &Resp) -> Decoded<String> {
    match value {
        Resp::BulkString(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        Resp::SimpleString(s) => Ok(s.clone()),
        Resp::Int(i) => Ok(i.to_string()),
        _ => malformed("expected a string"),
    }
}

fn int(value: &Resp) -> Decoded<i64> {
    match value {
        Resp::Int(i) => Ok(*i),
        Resp::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or_else(|| malformed("expected an integer"), Ok),
        _ => malformed("expected an integer"),
    }
}

fn float(value: &Resp) -> Decoded<f64> {
    match value {
        Resp::Double(f) => Ok(*f),
        Resp::Int(i) => Ok(*i as f64),
        other => text(other)?
            .parse()
            .map_or_else(|_| malformed("expected a double"), Ok),
    }
}

fn items(value: &Resp) -> Decoded<&[Resp]> {
    match value {
        Resp::Array(items) => Ok(items),
        _ => malformed("expected an array"),
    }
}

/// One `[type, value]` cell.
fn cell(value: &Resp, tables: &Tables) -> Decoded<Value> {
    match items(value)? {
        [kind, value] => typed(int(kind)?, value, tables),
        [kind] if int(kind)? == 1 => Ok(Value::Null),
        _ => malformed("a cell is not [type, value]"),
    }
}

/// A value of FalkorDB's type `kind`.
fn typed(kind: i64, value: &Resp, tables: &Tables) -> Decoded<Value> {
    Ok(match kind {
        1 => Value::Null,
        2 => match value {
            Resp::BulkString(b) => match stored_bytes(b) {
                Some(bytes) => Value::Bytes(bytes.into()),
                None => Value::String(String::from_utf8_lossy(b).into()),
            },
            other => Value::String(text(other)?.into()),
        },
        3 => Value::Int(int(value)?),
        4 => Value::Bool(text(value)? == "true"),
        5 => Value::Float(float(value)?),
        6 => Value::List(
            items(value)?
                .iter()
                .map(|c| cell(c, tables))
                .collect::<Decoded<_>>()?,
        ),
        7 => Value::Relationship(relationship(value, tables)?),
        8 => Value::Node(node(value, tables)?),
        9 => Value::Path(path(value, tables)?),
        10 => Value::Map(map(value, tables)?),
        11 => {
            let [lat, lon] = items(value)? else {
                return malformed("a point is not [latitude, longitude]");
            };
            Value::Map(vec![
                ("latitude".into(), Value::Float(float(lat)?)),
                ("longitude".into(), Value::Float(float(lon)?)),
            ])
        }
        12 => Value::List(
            items(value)?
                .iter()
                .map(|f| float(f).map(Value::Float))
                .collect::<Decoded<_>>()?,
        ),
        13 => {
            let seconds = int(value)?;
            match DateTime::from_timestamp(seconds, 0) {
                Some(_) => Value::Timestamp(Timestamp {
                    unix_micros: seconds.saturating_mul(1_000_000),
                    zoned: false,
                }),
                None => return malformed("a datetime out of range"),
            }
        }
        14 => match DateTime::from_timestamp(int(value)?, 0) {
            Some(at) => Value::Date(at.date_naive().into()),
            None => return malformed("a date out of range"),
        },
        15 => {
            let seconds = int(value)?.rem_euclid(86_400) as u32;
            match NaiveTime::from_num_seconds_from_midnight_opt(seconds, 0) {
                Some(time) => Value::Time(time),
                None => return malformed("a time out of range"),
            }
        }
        16 => Value::Interval(Interval {
            months: 0,
            days: 0,
            micros: int(value)?.saturating_mul(1_000_000),
        }),
        other => return malformed(&format!("unknown value type {other}")),
    })
}

fn name(table: &[String], id: &Resp) -> Decoded<String> {
    let id = int(id)?;
    usize::try_from(id)
        .ok()
        .and_then(|i| table.get(i))
        .cloned()
        .ok_or(DecodeError::UnknownId)
}

/// `[[key id, type, value], ...]`.
fn properties(value: &Resp, tables: &Tables) -> Decoded<Vec<(String, Value)>> {
    items(value)?
        .iter()
        .map(|triple| match items(triple)? {
            [key, kind, value] => Ok((name(&tables.keys, key)?, typed(int(kind)?, value, tables)?)),
            _ => malformed("a property is not [key, type, value]"),
        })
        .collect()
}

/// `[id, [label ids], properties]`.
fn node(value: &Resp, tables: &Tables) -> Decoded<Node> {
    let [id, labels, props] = items(value)? else {
        return malformed("a node is not [id, labels, properties]");
    };
    Ok(Node {
        id: int(id)?,
        labels: items(labels)?
            .iter()
            .map(|l| name(&tables.labels, l))
            .collect::<Decoded<_>>()?,
        properties: properties(props, tables)?,
    })
}

/// `[id, type id, start id, end id, properties]`.
fn relationship(value: &Resp, tables: &Tables) -> Decoded<Relationship> {
    let [id, rel_type, start, end, props] = items(value)? else {
        return malformed("a relationship is not [id, type, start, end, properties]");
    };
    Ok(Relationship {
        id: int(id)?,
        rel_type: name(&tables.types, rel_type)?,
        start_node_id: int(start)?,
        end_node_id: int(end)?,
        properties: properties(props, tables)?,
    })
}

/// `[[6, nodes], [6, relationships]]`.
fn path(value: &Resp, tables: &Tables) -> Decoded<Path> {
    let [nodes, relationships] = items(value)? else {
        return malformed("a path is not [nodes, relationships]");
    };
    let mut path = Path::default();
    for node in cells_of(nodes)? {
        match cell(node, tables)? {
            Value::Node(n) => path.nodes.push(n),
            _ => return malformed("a path holds a non-node"),
        }
    }
    for rel in cells_of(relationships)? {
        match cell(rel, tables)? {
            Value::Relationship(r) => path.relationships.push(r),
            _ => return malformed("a path holds a non-relationship"),
        }
    }
    Ok(path)
}

/// The cells of a `[6, [cells]]` array cell.
fn cells_of(value: &Resp) -> Decoded<&[Resp]> {
    match items(value)? {
        [_, cells] => items(cells),
        _ => malformed("expected an array cell"),
    }
}

/// `[key, cell, key, cell, ...]`.
fn map(value: &Resp, tables: &Tables) -> Decoded<Vec<(crate::Text, Value)>> {
    items(value)?
        .chunks(2)
        .map(|pair| match pair {
            [key, value] => Ok((text(key)?.into(), cell(value, tables)?)),
            _ => malformed("a map has a key without a value"),
        })
        .collect()
}

/// The strings of the first column (for `CALL db.labels()` and the like).
pub(crate) fn first_column(reply: &Resp) -> Decoded<Vec<String>> {
    let set = result_set(reply, &Tables::default())?;
    Ok(set
        .rows
        .into_iter()
        .filter_map(|row| row.into_iter().next())
        .map(|v| match v {
            Value::String(s) => s.into(),
            other => other.to_string(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Resp {
        Resp::BulkString(s.as_bytes().to_vec())
    }

    fn arr(items: Vec<Resp>) -> Resp {
        Resp::Array(items)
    }

    fn tables() -> Tables {
        Tables {
            labels: vec!["Person".into()],
            types: vec!["KNOWS".into()],
            keys: vec!["name".into(), "since".into()],
        }
    }

    /// Found by the falkor_reply fuzz target: two huge counts overflowed
    /// the sum (a panic in a debug build).
    #[test]
    fn huge_statistics_saturate() {
        let stats = arr(vec![
            bulk("Nodes created: 18446744073709551615"),
            bulk("Nodes deleted: 18446744073709551615"),
        ]);
        let set = result_set(&arr(vec![stats]), &tables()).unwrap();
        assert_eq!(set.rows_affected, u64::MAX);
    }

    #[test]
    fn nodes_relationships_and_scalars_are_named_from_the_tables() {
        let node = arr(vec![
            Resp::Int(8),
            arr(vec![
                Resp::Int(0),
                arr(vec![Resp::Int(0)]),
                arr(vec![arr(vec![Resp::Int(0), Resp::Int(2), bulk("Ada")])]),
            ]),
        ]);
        let rel = arr(vec![
            Resp::Int(7),
            arr(vec![
                Resp::Int(3),
                Resp::Int(0),
                Resp::Int(0),
                Resp::Int(1),
                arr(vec![arr(vec![Resp::Int(1), Resp::Int(3), Resp::Int(1815)])]),
            ]),
        ]);
        let reply = arr(vec![
            arr(vec![
                arr(vec![Resp::Int(1), bulk("n")]),
                arr(vec![Resp::Int(1), bulk("r")]),
            ]),
            arr(vec![arr(vec![node, rel])]),
            arr(vec![
                bulk("Nodes created: 2"),
                bulk("Query internal execution time: 1 ms"),
            ]),
        ]);
        let set = result_set(&reply, &tables()).unwrap();
        assert_eq!(set.rows_affected, 2);
        assert_eq!(set.columns[1].name, "r");
        let Value::Node(n) = &set.rows[0][0] else {
            panic!()
        };
        assert_eq!(n.labels, vec!["Person"]);
        assert_eq!(n.properties, vec![("name".into(), Value::from("Ada"))]);
        let Value::Relationship(r) = &set.rows[0][1] else {
            panic!()
        };
        assert_eq!((r.rel_type.as_str(), r.end_node_id), ("KNOWS", 1));
    }

    #[test]
    fn an_unknown_id_asks_for_fresh_tables() {
        let node = arr(vec![
            Resp::Int(8),
            arr(vec![Resp::Int(0), arr(vec![Resp::Int(5)]), arr(vec![])]),
        ]);
        let reply = arr(vec![
            arr(vec![arr(vec![Resp::Int(1), bulk("n")])]),
            arr(vec![arr(vec![node])]),
            arr(vec![]),
        ]);
        assert_eq!(result_set(&reply, &tables()), Err(DecodeError::UnknownId));
    }
}
