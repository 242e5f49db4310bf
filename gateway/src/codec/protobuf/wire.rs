//! Omnigate's values written straight in the wire format of
//! `omnigate.v1.Value`, the same bytes prost writes for [`to_proto`]'s
//! message, without building that message: a text or bytes cell is copied
//! once, into the encoding, instead of into a `String` or `Vec` of its own
//! first. The gRPC front end writes whole results this way.
//!
//! The scalars rows are made of are written here; the rest (times, graph
//! values, lists, maps, UUIDs) go through [`to_proto`] and prost.

use bytes::BufMut;
use omnigate_drivers::Value;
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

use super::to_proto;

/// `omnigate.v1.Value`'s fields, by number.
mod field {
    pub(super) const NULL: u32 = 1;
    pub(super) const BOOL: u32 = 2;
    pub(super) const INT: u32 = 3;
    pub(super) const FLOAT: u32 = 4;
    pub(super) const DECIMAL: u32 = 5;
    pub(super) const STRING: u32 = 6;
    pub(super) const BYTES: u32 = 7;
    pub(super) const JSON: u32 = 13;
}

/// The length of a length-delimited field `tag` of `len` bytes.
pub fn delimited_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

/// Writes a length-delimited field's key and length (its bytes follow).
pub fn put_delimited(tag: u32, len: usize, buf: &mut impl BufMut) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
}

/// Writes a length-delimited field `tag` holding `bytes`.
pub fn put_bytes(tag: u32, bytes: &[u8], buf: &mut impl BufMut) {
    put_delimited(tag, bytes.len(), buf);
    buf.put_slice(bytes);
}

/// The length of `value` encoded as an `omnigate.v1.Value` (without a
/// length delimiter).
pub fn value_len(value: &Value) -> usize {
    match value {
        // A oneof's field is written whatever its value, zero included.
        Value::Null => key_len(field::NULL) + 1,
        Value::Bool(_) => key_len(field::BOOL) + 1,
        Value::Int(i) => key_len(field::INT) + encoded_len_varint(*i as u64),
        Value::Float(_) => key_len(field::FLOAT) + 8,
        Value::Decimal(t) => delimited_len(field::DECIMAL, t.len()),
        Value::String(t) => delimited_len(field::STRING, t.len()),
        Value::Json(t) => delimited_len(field::JSON, t.len()),
        Value::Bytes(b) => delimited_len(field::BYTES, b.len()),
        other => to_proto(other.clone()).encoded_len(),
    }
}

/// Writes `value` as an `omnigate.v1.Value` (without a length delimiter):
/// [`value_len`] bytes.
pub fn put_value(value: &Value, buf: &mut impl BufMut) {
    match value {
        Value::Null => {
            encode_key(field::NULL, WireType::Varint, buf);
            encode_varint(0, buf);
        }
        Value::Bool(b) => {
            encode_key(field::BOOL, WireType::Varint, buf);
            encode_varint(u64::from(*b), buf);
        }
        Value::Int(i) => {
            encode_key(field::INT, WireType::Varint, buf);
            encode_varint(*i as u64, buf);
        }
        Value::Float(f) => {
            encode_key(field::FLOAT, WireType::SixtyFourBit, buf);
            buf.put_f64_le(*f);
        }
        Value::Decimal(t) => put_bytes(field::DECIMAL, t.as_bytes(), buf),
        Value::String(t) => put_bytes(field::STRING, t.as_bytes(), buf),
        Value::Json(t) => put_bytes(field::JSON, t.as_bytes(), buf),
        Value::Bytes(b) => put_bytes(field::BYTES, b, buf),
        other => to_proto(other.clone()).encode_raw(buf),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use omnigate_drivers::{Date, Interval, Node, Timestamp};

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
        ]
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
