//! Omnigate's values written straight in the wire format of
//! `omnigate.v1.Value`, the same bytes prost writes for [`to_proto`]'s
//! message, without building that message: a text or bytes cell is copied
//! into the encoding, not into a `String` or `Vec` of its own first. The
//! gRPC front end writes whole results this way (tonic then copies the
//! reply into its frame), and the protobuf codec stores values so.
//!
//! Each message's encoding is written once ([`Emit`]) and run on one of two
//! [`Sink`]s: one that counts its length, one that writes its bytes. A
//! nested message is counted before it is written (its length comes
//! first), as prost does. The gRPC front end writes its replies' own
//! messages with the same two traits.
//!
//! [`to_proto`]: super::to_proto

use bytes::BufMut;
use omnigate_drivers::{Node, Path, Relationship, Value};
use prost::encoding::{WireType, encode_varint, encoded_len_varint, key_len};

/// The length of a length-delimited field `tag` of `len` bytes.
#[inline]
fn delimited_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

/// Writes a varint; most are one byte (every key of omnigate.v1's fields,
/// and lengths under 128), written as one without prost's loop.
#[inline]
fn put_varint(value: u64, buf: &mut impl BufMut) {
    if value < 0x80 {
        buf.put_u8(value as u8);
    } else {
        encode_varint(value, buf);
    }
}

/// Writes field `tag`'s key.
#[inline]
fn put_key(tag: u32, wire_type: WireType, buf: &mut impl BufMut) {
    put_varint(u64::from(tag << 3 | wire_type as u32), buf);
}

/// Writes a length-delimited field's key and length (its bytes follow).
#[inline]
fn put_delimited(tag: u32, len: usize, buf: &mut impl BufMut) {
    put_key(tag, WireType::LengthDelimited, buf);
    put_varint(len as u64, buf);
}

/// Writes a length-delimited field `tag` holding `bytes`.
#[inline]
fn put_bytes(tag: u32, bytes: &[u8], buf: &mut impl BufMut) {
    put_delimited(tag, bytes.len(), buf);
    buf.put_slice(bytes);
}

/// The length of `value` encoded as an `omnigate.v1.Value` (without a
/// length delimiter).
#[inline]
pub fn value_len(value: &Value) -> usize {
    counted(&value)
}

/// Writes `value` as an `omnigate.v1.Value` (without a length delimiter):
/// [`value_len`] bytes.
#[inline]
pub fn put_value(value: &Value, buf: &mut impl BufMut) {
    value.emit(&mut Writer(buf));
}

/// Where an encoding goes: counted ([`counted`]) or written ([`Writer`]).
pub trait Sink: Sized {
    /// A varint field `tag`, written whatever its value.
    fn varint(&mut self, tag: u32, value: u64);
    /// A 64-bit field `tag`.
    fn fixed64(&mut self, tag: u32, value: u64);
    /// A length-delimited field `tag` holding `bytes`.
    fn bytes(&mut self, tag: u32, bytes: &[u8]);
    /// A message field `tag` whose body is `len` bytes long (known
    /// already: it is not counted again).
    fn sized_message(&mut self, tag: u32, len: usize, body: &impl Emit);
    /// A message field `tag` of prost's.
    fn prost_message(&mut self, tag: u32, message: &impl prost::Message);

    /// A message field `tag` (written whatever it holds, as prost writes a
    /// set oneof or an `Option` message).
    #[inline]
    fn message(&mut self, tag: u32, body: &impl Emit) {
        self.sized_message(tag, counted(body), body);
    }

    /// A proto3 unsigned integer field: nothing when it is zero.
    #[inline]
    fn uint(&mut self, tag: u32, value: u64) {
        if value != 0 {
            self.varint(tag, value);
        }
    }

    /// A proto3 signed integer field: nothing when it is zero.
    #[inline]
    fn int(&mut self, tag: u32, value: i64) {
        self.uint(tag, value as u64);
    }

    /// A proto3 string field: nothing when it is empty.
    #[inline]
    fn string(&mut self, tag: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(tag, s.as_bytes());
        }
    }
}

/// A message's encoding, written once for both sinks.
pub trait Emit {
    /// Its fields, in order, into `sink`.
    fn emit<S: Sink>(&self, sink: &mut S);
}

/// Counts the bytes an encoding takes.
struct Counter(usize);

impl Sink for Counter {
    #[inline]
    fn varint(&mut self, tag: u32, value: u64) {
        self.0 += key_len(tag) + encoded_len_varint(value);
    }
    #[inline]
    fn fixed64(&mut self, tag: u32, _: u64) {
        self.0 += key_len(tag) + 8;
    }
    #[inline]
    fn bytes(&mut self, tag: u32, bytes: &[u8]) {
        self.0 += delimited_len(tag, bytes.len());
    }
    #[inline]
    fn sized_message(&mut self, tag: u32, len: usize, _: &impl Emit) {
        self.0 += delimited_len(tag, len);
    }
    fn prost_message(&mut self, tag: u32, message: &impl prost::Message) {
        self.0 += prost::encoding::message::encoded_len(tag, message);
    }
}

/// The length of `body`'s encoding (without a length delimiter).
#[inline]
pub fn counted(body: &impl Emit) -> usize {
    let mut counter = Counter(0);
    body.emit(&mut counter);
    counter.0
}

/// Writes an encoding into a buffer.
pub struct Writer<'b, B>(pub &'b mut B);

impl<B: BufMut> Sink for Writer<'_, B> {
    fn varint(&mut self, tag: u32, value: u64) {
        put_key(tag, WireType::Varint, self.0);
        put_varint(value, self.0);
    }
    fn fixed64(&mut self, tag: u32, value: u64) {
        put_key(tag, WireType::SixtyFourBit, self.0);
        self.0.put_u64_le(value);
    }
    fn bytes(&mut self, tag: u32, bytes: &[u8]) {
        put_bytes(tag, bytes, self.0);
    }
    fn sized_message(&mut self, tag: u32, len: usize, body: &impl Emit) {
        put_delimited(tag, len, self.0);
        body.emit(self);
    }
    fn prost_message(&mut self, tag: u32, message: &impl prost::Message) {
        prost::encoding::message::encode(tag, message, self.0);
    }
}

/// A message of the given fields, each `(tag, value)`, for the small
/// fixed messages (`Timestamp`, `Date`, `Time`, `Interval`).
struct Ints<const N: usize>([(u32, i64); N]);

impl<const N: usize> Emit for Ints<N> {
    fn emit<S: Sink>(&self, sink: &mut S) {
        for &(tag, value) in &self.0 {
            sink.int(tag, value);
        }
    }
}

impl Emit for &Value {
    /// The cells rows are made of, inline; the rest out of line.
    #[inline]
    fn emit<S: Sink>(&self, sink: &mut S) {
        // `omnigate.v1.Value`'s oneof: a set field is written whatever its
        // value, zero and empty included.
        match self {
            Value::Null => sink.varint(1, 0),
            Value::Bool(b) => sink.varint(2, u64::from(*b)),
            Value::Int(i) => sink.varint(3, *i as u64),
            Value::Float(f) => sink.fixed64(4, f.to_bits()),
            Value::Decimal(t) => sink.bytes(5, t.as_bytes()),
            Value::String(t) => sink.bytes(6, t.as_bytes()),
            Value::Bytes(b) => sink.bytes(7, b),
            Value::Json(t) => sink.bytes(13, t.as_bytes()),
            other => emit_other(other, sink),
        }
    }
}

/// [`Emit`] for `&Value`'s other kinds.
#[inline(never)]
fn emit_other<S: Sink>(value: &Value, sink: &mut S) {
    match value {
        Value::Timestamp(t) => {
            sink.message(8, &Ints([(1, t.unix_micros), (2, i64::from(t.zoned))]));
        }
        Value::Date(d) => sink.message(9, &Ints([(1, i64::from(d.days_since_epoch))])),
        Value::Time(t) => {
            use chrono::Timelike;
            let micros = i64::from(t.num_seconds_from_midnight()) * 1_000_000
                + i64::from(t.nanosecond() / 1000);
            sink.message(10, &Ints([(1, micros)]));
        }
        Value::Interval(i) => sink.message(
            11,
            &Ints([
                (1, i64::from(i.months)),
                (2, i64::from(i.days)),
                (3, i.micros),
            ]),
        ),
        Value::Uuid(u) => {
            let mut text = uuid::Uuid::encode_buffer();
            sink.bytes(12, u.hyphenated().encode_lower(&mut text).as_bytes());
        }
        Value::List(items) => sink.message(14, &List(items)),
        Value::Map(entries) => sink.message(15, &Map(entries)),
        Value::Node(n) => sink.message(16, n),
        Value::Relationship(r) => sink.message(17, r),
        Value::Path(p) => sink.message(18, p),
        // Written inline by `emit`.
        Value::Null
        | Value::Bool(_)
        | Value::Int(_)
        | Value::Float(_)
        | Value::Decimal(_)
        | Value::String(_)
        | Value::Bytes(_)
        | Value::Json(_) => (&value).emit(sink),
    }
}

/// `ValueList`.
struct List<'a>(&'a [Value]);

impl Emit for List<'_> {
    fn emit<S: Sink>(&self, sink: &mut S) {
        for value in self.0 {
            sink.message(1, &value);
        }
    }
}

/// `ValueMap`, of any key type that reads as text.
struct Map<'a, K>(&'a [(K, Value)]);

impl<K: AsRef<str>> Emit for Map<'_, K> {
    fn emit<S: Sink>(&self, sink: &mut S) {
        for (key, value) in self.0 {
            sink.message(1, &Entry(key.as_ref(), value));
        }
    }
}

/// `MapEntry`.
struct Entry<'a>(&'a str, &'a Value);

impl Emit for Entry<'_> {
    fn emit<S: Sink>(&self, sink: &mut S) {
        sink.string(1, self.0);
        sink.message(2, &self.1);
    }
}

impl Emit for Node {
    fn emit<S: Sink>(&self, sink: &mut S) {
        sink.int(1, self.id);
        for label in &self.labels {
            // A repeated string's every element is written, empty ones too.
            sink.bytes(2, label.as_bytes());
        }
        sink.message(3, &Map(&self.properties));
    }
}

impl Emit for Relationship {
    fn emit<S: Sink>(&self, sink: &mut S) {
        sink.int(1, self.id);
        sink.string(2, &self.rel_type);
        sink.int(3, self.start_node_id);
        sink.int(4, self.end_node_id);
        sink.message(5, &Map(&self.properties));
    }
}

impl Emit for Path {
    fn emit<S: Sink>(&self, sink: &mut S) {
        for node in &self.nodes {
            sink.message(1, node);
        }
        for relationship in &self.relationships {
            sink.message(2, relationship);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::to_proto;
    use super::*;
    use bytes::Bytes;
    use omnigate_drivers::{Date, Interval, Timestamp};
    use prost::Message;

    /// Every kind, and the edges of each scalar's encoding.
    fn values() -> Vec<Value> {
        vec![
            Value::Null,
            Value::Bool(false),
            Value::Bool(true),
            Value::Int(0),
            Value::Int(-1),
            Value::Int(i64::MIN),
            Value::Int(i64::MAX),
            Value::Int(300),
            Value::Float(0.0),
            Value::Float(-2.5),
            Value::Float(f64::NAN),
            Value::Decimal("-12.50".into()),
            Value::String("".into()),
            Value::String("héllo, 世界".into()),
            Value::String("x".repeat(200).into()),
            Value::Json("{\"a\":1}".into()),
            Value::Bytes(Bytes::new()),
            Value::Bytes(Bytes::from_static(b"\0\xff\r\n")),
            Value::Timestamp(Timestamp {
                unix_micros: -5,
                zoned: true,
            }),
            Value::Date(Date::from_days(19_000)),
            Value::Interval(Interval {
                months: 1,
                days: -2,
                micros: 3,
            }),
            Value::Uuid(uuid::Uuid::from_u128(7)),
            Value::List(vec![Value::Int(1), Value::String("a".into())]),
            Value::Map(vec![("k".into(), Value::Null)]),
            Value::Node(Node {
                id: 4,
                labels: vec!["L".into()],
                properties: vec![("p".into(), Value::Bool(true))],
            }),
            Value::Timestamp(Timestamp {
                unix_micros: 0,
                zoned: false,
            }),
            Value::Date(Date::from_days(-3)),
            Value::Time(chrono::NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap()),
            Value::Time(chrono::NaiveTime::MIN),
            Value::Interval(Interval::default()),
            Value::Uuid(uuid::Uuid::max()),
            Value::List(Vec::new()),
            Value::List(vec![Value::List(vec![Value::Null]), Value::Map(Vec::new())]),
            Value::Map(vec![
                ("".into(), Value::String("".into())),
                ("nested".into(), Value::List(vec![Value::Float(-0.0)])),
            ]),
            Value::Node(Node {
                id: 0,
                labels: vec![String::new(), "B".into()],
                properties: Vec::new(),
            }),
            Value::Relationship(relationship()),
            Value::Path(Path {
                nodes: vec![Node::default(), Node::default()],
                relationships: vec![relationship()],
            }),
            Value::Path(Path::default()),
        ]
    }

    fn relationship() -> Relationship {
        Relationship {
            id: -9,
            rel_type: "KNOWS".into(),
            start_node_id: 1,
            end_node_id: 0,
            properties: vec![("since".into(), Value::Int(2020))],
        }
    }

    #[test]
    fn values_are_written_as_prost_writes_their_message() {
        for value in values() {
            let expected = to_proto(value.clone()).encode_to_vec();
            let mut written = Vec::new();
            put_value(&value, &mut written);
            assert_eq!(written, expected, "{value:?}");
            assert_eq!(value_len(&value), expected.len(), "{value:?}");
        }
    }

    #[test]
    fn varints_and_keys_are_written_as_prost_writes_them() {
        for value in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut expected = Vec::new();
            prost::encoding::encode_varint(value, &mut expected);
            let mut written = Vec::new();
            put_varint(value, &mut written);
            assert_eq!(written, expected, "{value}");
        }
        for tag in [1, 15, 16, 18, 2047, 1 << 20] {
            let mut expected = Vec::new();
            prost::encoding::encode_key(tag, WireType::LengthDelimited, &mut expected);
            let mut written = Vec::new();
            put_key(tag, WireType::LengthDelimited, &mut written);
            assert_eq!(written, expected, "{tag}");
        }
    }

    #[test]
    fn delimited_fields_are_written_as_prost_writes_them() {
        for len in [0, 1, 127, 128, 20_000] {
            let bytes = vec![7u8; len];
            let mut expected = Vec::new();
            prost::encoding::bytes::encode(19, &bytes, &mut expected);
            let mut written = Vec::new();
            put_bytes(19, &bytes, &mut written);
            assert_eq!(written, expected);
            assert_eq!(delimited_len(19, len), expected.len());
        }
    }
}
