//! The value model shared by every engine.

use std::fmt;

use bytes::Bytes;

/// How deeply values may nest (a list in a list counts two levels), in
/// parameters and in what the gateway reads back. Every conversion of a
/// value is recursive, so this bound is what keeps a deep value sent by a
/// client (or stored by anyone in an engine) from overflowing a stack; it
/// sits below prost's own decoding limit, so a value the gateway returns
/// can always be decoded by the client.
pub const MAX_DEPTH: usize = 32;

/// Text in a [`Value`]: up to 24 bytes are held inline, without an
/// allocation (most keys, names and decimals an engine returns), longer
/// text on the heap as a `String` would be. It derefs to `&str`, and
/// converts from and into `String` and `&str`.
pub type Text = compact_str::CompactString;

/// One value of Omnigate's value model.
///
/// Every engine converts its own types to and from `Value`; the gateway maps
/// it one-to-one onto the proto `omnigate.v1.Value`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL, Redis nil, a missing property.
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit signed integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// An exact decimal number as text, e.g. `"12345.6789"`.
    Decimal(Text),
    /// UTF-8 text.
    String(Text),
    /// Raw bytes.
    Bytes(Bytes),
    /// A point in time.
    Timestamp(Timestamp),
    /// A calendar date.
    Date(crate::Date),
    /// A time of day.
    Time(chrono::NaiveTime),
    /// A calendar interval.
    Interval(Interval),
    /// A UUID.
    Uuid(uuid::Uuid),
    /// A JSON document as text.
    Json(Text),
    /// An ordered list.
    List(Vec<Value>),
    /// Text keys to values, in the engine's order.
    Map(Vec<(Text, Value)>),
    /// A graph node.
    Node(Node),
    /// A graph relationship.
    Relationship(Relationship),
    /// A graph path.
    Path(Path),
}

/// A point in time with microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    /// Microseconds since 1970-01-01T00:00:00.
    pub unix_micros: i64,
    /// True for an instant in UTC; false for a wall-clock time without zone.
    pub zoned: bool,
}

/// A calendar interval, as PostgreSQL keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Interval {
    /// Whole months.
    pub months: i32,
    /// Whole days.
    pub days: i32,
    /// Microseconds.
    pub micros: i64,
}

/// A graph node.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Node {
    /// The engine's node id.
    pub id: i64,
    /// The node's labels.
    pub labels: Vec<String>,
    /// The node's properties.
    pub properties: Vec<(String, Value)>,
}

/// A graph relationship.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Relationship {
    /// The engine's relationship id.
    pub id: i64,
    /// The relationship type.
    pub rel_type: String,
    /// The start node's id.
    pub start_node_id: i64,
    /// The end node's id.
    pub end_node_id: i64,
    /// The relationship's properties.
    pub properties: Vec<(String, Value)>,
}

/// A graph path: `nodes[0] -relationships[0]- nodes[1] ...`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Path {
    /// The nodes, in order.
    pub nodes: Vec<Node>,
    /// The relationships between consecutive nodes.
    pub relationships: Vec<Relationship>,
}

impl Value {
    /// The name of this value's kind, as used in error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Decimal(_) => "decimal",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Timestamp(_) => "timestamp",
            Value::Date(_) => "date",
            Value::Time(_) => "time",
            Value::Interval(_) => "interval",
            Value::Uuid(_) => "uuid",
            Value::Json(_) => "json",
            Value::List(_) => "list",
            Value::Map(_) => "map",
            Value::Node(_) => "node",
            Value::Relationship(_) => "relationship",
            Value::Path(_) => "path",
        }
    }

    /// A string value, or the bytes when they are not valid UTF-8.
    pub fn from_bytes_lossless(bytes: impl Into<Bytes>) -> Value {
        let bytes = bytes.into();
        match std::str::from_utf8(&bytes) {
            Ok(text) => Value::String(text.into()),
            Err(_) => Value::Bytes(bytes),
        }
    }

    /// [`Value::from_bytes_lossless`] for bytes borrowed from a driver's
    /// buffer: copied once, into the string or the bytes.
    pub fn from_slice_lossless(raw: &[u8]) -> Value {
        match std::str::from_utf8(raw) {
            Ok(text) => Value::String(text.into()),
            Err(_) => Value::Bytes(Bytes::copy_from_slice(raw)),
        }
    }

    /// [`Value::from_bytes_lossless`] for owned bytes: never copied (the
    /// buffer is kept, even for text short enough to be held inline).
    pub fn from_vec_lossless(bytes: Vec<u8>) -> Value {
        match String::from_utf8(bytes) {
            Ok(text) => Value::String(crate::Text::from_string_buffer(text)),
            Err(e) => Value::Bytes(e.into_bytes().into()),
        }
    }

    /// How deeply this value nests: 1 for a scalar, 2 for a list of
    /// scalars, ... Counted without recursion, so any value can be measured.
    pub fn depth(&self) -> usize {
        if !matches!(
            self,
            Value::List(_)
                | Value::Map(_)
                | Value::Node(_)
                | Value::Relationship(_)
                | Value::Path(_)
        ) {
            return 1; // the common case, without allocating
        }
        let mut deepest = 0;
        let mut pending = vec![(self, 1)];
        while let Some((value, depth)) = pending.pop() {
            deepest = deepest.max(depth);
            let children: Box<dyn Iterator<Item = &Value>> = match value {
                Value::List(items) => Box::new(items.iter()),
                Value::Map(entries) => Box::new(entries.iter().map(|(_, v)| v)),
                Value::Node(n) => Box::new(n.properties.iter().map(|(_, v)| v)),
                Value::Relationship(r) => Box::new(r.properties.iter().map(|(_, v)| v)),
                Value::Path(p) => Box::new(
                    p.nodes
                        .iter()
                        .flat_map(|n| n.properties.iter().map(|(_, v)| v))
                        .chain(
                            p.relationships
                                .iter()
                                .flat_map(|r| r.properties.iter().map(|(_, v)| v)),
                        ),
                ),
                _ => continue,
            };
            pending.extend(children.map(|child| (child, depth + 1)));
        }
        deepest
    }

    /// `Err` with a message saying the limit when this value nests deeper
    /// than [`MAX_DEPTH`].
    pub fn check_depth(&self) -> Result<(), String> {
        let depth = self.depth();
        if depth > MAX_DEPTH {
            Err(format!(
                "nests {depth} levels deep; values may nest at most {MAX_DEPTH} levels"
            ))
        } else {
            Ok(())
        }
    }

    /// About how many bytes this value takes in a response message.
    pub fn size_estimate(&self) -> u64 {
        3 + match self {
            Value::Null | Value::Bool(_) => 0,
            Value::Int(_) | Value::Float(_) | Value::Timestamp(_) | Value::Date(_) => 9,
            Value::Time(_) | Value::Interval(_) => 16,
            Value::Uuid(_) => 36,
            Value::Decimal(s) | Value::String(s) | Value::Json(s) => s.len() as u64,
            Value::Bytes(b) => b.len() as u64,
            Value::List(items) => items.iter().map(Value::size_estimate).sum(),
            Value::Map(map) => entries_size(map),
            Value::Node(n) => node_size(n),
            Value::Relationship(r) => relationship_size(r),
            Value::Path(p) => {
                p.nodes.iter().map(node_size).sum::<u64>()
                    + p.relationships.iter().map(relationship_size).sum::<u64>()
            }
        }
    }

    /// The text of a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer of an int value.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

fn entries_size<K: AsRef<str>>(entries: &[(K, Value)]) -> u64 {
    entries
        .iter()
        .map(|(k, v)| k.as_ref().len() as u64 + 4 + v.size_estimate())
        .sum()
}

fn node_size(n: &Node) -> u64 {
    24 + n.labels.iter().map(|l| l.len() as u64 + 2).sum::<u64>() + entries_size(&n.properties)
}

fn relationship_size(r: &Relationship) -> u64 {
    40 + r.rel_type.len() as u64 + entries_size(&r.properties)
}

impl Timestamp {
    /// This timestamp as a chrono date-time (UTC for zoned, naive otherwise).
    pub fn to_naive(self) -> Option<chrono::NaiveDateTime> {
        chrono::DateTime::from_timestamp_micros(self.unix_micros).map(|dt| dt.naive_utc())
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(v.into())
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.into())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v.into())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(v.into())
    }
}
impl From<Bytes> for Value {
    fn from(v: Bytes) -> Self {
        Value::Bytes(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Text as a person reads it: used by the CLI's table output.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Decimal(v) | Value::String(v) | Value::Json(v) => f.write_str(v),
            Value::Bytes(v) => write_bytes(f, v),
            Value::Timestamp(ts) => match ts.to_naive() {
                Some(dt) if ts.zoned => write!(f, "{}Z", dt.format("%Y-%m-%dT%H:%M:%S%.f")),
                Some(dt) => write!(f, "{}", dt.format("%Y-%m-%dT%H:%M:%S%.f")),
                None => write!(f, "timestamp({})", ts.unix_micros),
            },
            Value::Date(d) => write!(f, "{d}"),
            Value::Time(t) => write!(f, "{t}"),
            Value::Interval(i) => write!(f, "{} mons {} days {} us", i.months, i.days, i.micros),
            Value::Uuid(u) => write!(f, "{u}"),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Map(entries) => write_map(f, entries),
            Value::Node(n) => {
                write!(f, "(#{}:{}", n.id, n.labels.join(":"))?;
                write_map(f, &n.properties)?;
                f.write_str(")")
            }
            Value::Relationship(r) => {
                write!(
                    f,
                    "[#{}:{} {}->{}",
                    r.id, r.rel_type, r.start_node_id, r.end_node_id
                )?;
                write_map(f, &r.properties)?;
                f.write_str("]")
            }
            Value::Path(p) => write!(f, "path({} nodes)", p.nodes.len()),
        }
    }
}

fn write_map<K: AsRef<str>>(f: &mut fmt::Formatter<'_>, entries: &[(K, Value)]) -> fmt::Result {
    f.write_str("{")?;
    for (i, (key, value)) in entries.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{}: {value}", key.as_ref())?;
    }
    f.write_str("}")
}

fn write_bytes(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    f.write_str("\\x")?;
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_become_text_when_utf8_and_stay_bytes_otherwise() {
        let invalid = [0xff, 0xfe, b'a'];
        for value in [
            Value::from_bytes_lossless(Bytes::from_static(b"caf\xc3\xa9")),
            Value::from_slice_lossless(b"caf\xc3\xa9"),
            Value::from_vec_lossless(b"caf\xc3\xa9".to_vec()),
        ] {
            assert_eq!(value, Value::String("café".into()));
        }
        for value in [
            Value::from_bytes_lossless(Bytes::copy_from_slice(&invalid)),
            Value::from_slice_lossless(&invalid),
            Value::from_vec_lossless(invalid.to_vec()),
        ] {
            assert_eq!(value, Value::Bytes(Bytes::copy_from_slice(&invalid)));
        }
    }

    #[test]
    fn depth_is_counted_without_recursion() {
        let mut deep = Value::Int(1);
        for _ in 0..1000 {
            deep = Value::List(vec![deep]);
        }
        assert_eq!(deep.depth(), 1001);
        assert!(
            deep.check_depth()
                .unwrap_err()
                .contains("at most 32 levels")
        );
        let map = Value::Map(vec![("a".into(), Value::List(vec![Value::Null]))]);
        assert_eq!(map.depth(), 3);
        assert!(map.check_depth().is_ok());
    }
}
