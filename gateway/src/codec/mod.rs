//! Codecs: structured values (maps, lists, ...) to bytes and back, for
//! engines that store bytes. A small self-describing header lets a read
//! decode without outside knowledge; plain strings and integers are stored
//! plain, so other clients of the same store still read them, and bytes
//! without the header are returned as they are.
//!
//! Header: `0xC1 'O' 'G'` then one byte: the format in the high nibble
//! (1 = MessagePack, 2 = protobuf `omnigate.v1.Value`) and bit 0 set when
//! the payload is snappy-compressed. `0xC1` never starts valid UTF-8 (nor
//! a MessagePack value), so encoded values never read as text.

mod bindings;
mod msgpack;
pub mod properties;
pub mod protobuf;

use bytes::{BufMut, Bytes, BytesMut};
use omnigate_drivers::Value;
use prost::Message;

pub use bindings::{Binding, Bindings};

const MAGIC: [u8; 3] = [0xC1, b'O', b'G'];

/// The largest payload a stored value decodes to (after decompression):
/// snappy says the length up front, so a larger one is refused before
/// anything is allocated.
pub const MAX_PAYLOAD_BYTES: usize = 16 << 20;

/// The most values (list and map elements at every level) one MessagePack
/// value decodes to: about 64 MiB of decoded values at most.
pub const MAX_ELEMENTS: usize = 1 << 20;

/// The largest protobuf payload decoded. prost cannot bound the number of
/// values while decoding, and an empty list element costs 2 bytes on the
/// wire and ~100 in memory, so protobuf values are held to the default
/// request limit (4 MiB: whatever a client could send with the default
/// `max_request_bytes`).
pub const MAX_PROTOBUF_BYTES: usize = 4 << 20;
const SNAPPY: u8 = 0x01;

/// How structured values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// MessagePack (rmp-serde): compact; kinds beyond null, bool, int,
    /// float, string, bytes, list and map travel as text.
    Msgpack,
    /// The protobuf `omnigate.v1.Value`: every kind round-trips exactly.
    Protobuf,
}

impl Format {
    fn code(self) -> u8 {
        match self {
            Format::Msgpack => 1,
            Format::Protobuf => 2,
        }
    }

    /// The format's name as config spells it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Msgpack => "msgpack",
            Format::Protobuf => "protobuf",
        }
    }
}

/// A codec: a format and the size above which payloads are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    /// The format.
    pub format: Format,
    /// Payloads longer than this many bytes are snappy-compressed (when
    /// that makes them smaller).
    pub compress_above: usize,
}

/// Why a stored value could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("a stored value has the codec header but cannot be decoded: {0}")]
pub struct DecodeError(String);

impl Codec {
    /// Encodes a structured value with the header.
    pub fn encode(&self, value: &Value) -> Bytes {
        let payload = match self.format {
            Format::Msgpack => rmp_serde::to_vec(&msgpack::Out(value)).unwrap_or_default(),
            Format::Protobuf => {
                let mut payload = Vec::with_capacity(protobuf::wire::value_len(value));
                protobuf::wire::put_value(value, &mut payload);
                payload
            }
        };
        let mut flags = self.format.code() << 4;
        let body = if payload.len() > self.compress_above {
            match snap::raw::Encoder::new().compress_vec(&payload) {
                Ok(compressed) if compressed.len() < payload.len() => {
                    flags |= SNAPPY;
                    compressed
                }
                _ => payload,
            }
        } else {
            payload
        };
        let mut out = BytesMut::with_capacity(4 + body.len());
        out.put_slice(&MAGIC);
        out.put_u8(flags);
        out.put_slice(&body);
        out.freeze()
    }
}

/// Whether bytes carry the codec header.
pub fn is_encoded(bytes: &[u8]) -> bool {
    bytes.len() >= 4 && bytes[..3] == MAGIC
}

/// Decodes bytes with the header; `Ok(None)` for bytes without it.
pub fn decode(bytes: &[u8]) -> Result<Option<Value>, DecodeError> {
    if !is_encoded(bytes) {
        return Ok(None);
    }
    let flags = bytes[3];
    let body = &bytes[4..];
    let format = flags >> 4;
    let limit = if format == Format::Protobuf.code() {
        MAX_PROTOBUF_BYTES
    } else {
        MAX_PAYLOAD_BYTES
    };
    let too_large = |len: usize| {
        DecodeError(format!(
            "its payload is {len} bytes, more than a codec value may decode to ({limit})"
        ))
    };
    let decompressed;
    let payload: &[u8] = if flags & SNAPPY != 0 {
        let len = snap::raw::decompress_len(body).map_err(|e| DecodeError(e.to_string()))?;
        if len > limit {
            return Err(too_large(len));
        }
        decompressed = snap::raw::Decoder::new()
            .decompress_vec(body)
            .map_err(|e| DecodeError(e.to_string()))?;
        &decompressed
    } else if body.len() > limit {
        return Err(too_large(body.len()));
    } else {
        body
    };
    match format {
        1 => msgpack::read(payload, MAX_ELEMENTS)
            .map(Some)
            .map_err(|e| DecodeError(e.to_string())),
        2 => {
            let proto = omnigate_proto::v1::Value::decode(payload)
                .map_err(|e| DecodeError(e.to_string()))?;
            let value = protobuf::from_proto(&crate::error::ParamRef::Position(0), proto)
                .map_err(|e| DecodeError(e.to_string()))?;
            // The limit msgpack's reader applies as it reads.
            value
                .check_depth()
                .map_err(|e| DecodeError(format!("the value {e}")))?;
            Ok(Some(value))
        }
        other => Err(DecodeError(format!("unknown format {other}"))),
    }
}

/// Decodes every encoded value inside `value` (in lists and maps too).
pub fn decode_all(value: Value) -> Value {
    match value {
        Value::Bytes(bytes) => match decode(&bytes) {
            Ok(Some(decoded)) => decoded,
            // Not ours, or damaged: hand back what is stored.
            _ => Value::Bytes(bytes),
        },
        Value::List(items) => Value::List(items.into_iter().map(decode_all).collect()),
        Value::Map(entries) => Value::Map(decode_entries(entries)),
        Value::Node(mut node) => {
            node.properties = decode_entries(node.properties);
            Value::Node(node)
        }
        Value::Relationship(mut rel) => {
            rel.properties = decode_entries(rel.properties);
            Value::Relationship(rel)
        }
        Value::Path(mut path) => {
            for node in &mut path.nodes {
                node.properties = decode_entries(std::mem::take(&mut node.properties));
            }
            for rel in &mut path.relationships {
                rel.properties = decode_entries(std::mem::take(&mut rel.properties));
            }
            Value::Path(path)
        }
        other => other,
    }
}

fn decode_entries<K>(entries: Vec<(K, Value)>) -> Vec<(K, Value)> {
    entries
        .into_iter()
        .map(|(k, v)| (k, decode_all(v)))
        .collect()
}

/// Whether a value needs a codec to become bytes.
pub fn is_structured(value: &Value) -> bool {
    matches!(
        value,
        Value::List(_) | Value::Map(_) | Value::Node(_) | Value::Relationship(_) | Value::Path(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        Value::Map(vec![
            ("name".into(), Value::from("ada")),
            ("age".into(), Value::Int(36)),
            (
                "tags".into(),
                Value::List(vec![Value::from("math"), Value::Null, Value::Float(1.5)]),
            ),
            ("raw".into(), Value::Bytes(Bytes::from_static(b"\x00\xff"))),
            (
                "nested".into(),
                Value::Map(vec![("ok".into(), Value::Bool(true))]),
            ),
        ])
    }

    /// Found by the codec fuzz target: protobuf read a value nested past
    /// the limit that msgpack's reader refuses, so the two formats
    /// disagreed about what a stored value may be.
    #[test]
    fn both_formats_refuse_values_nested_past_the_limit() {
        let nest = |depth| (1..depth).fold(Value::Int(1), |v, _| Value::List(vec![v]));
        for format in [Format::Msgpack, Format::Protobuf] {
            let codec = Codec {
                format,
                compress_above: 1 << 20,
            };
            let at_limit = nest(omnigate_drivers::MAX_DEPTH);
            assert_eq!(decode(&codec.encode(&at_limit)).unwrap(), Some(at_limit));
            let err = decode(&codec.encode(&nest(omnigate_drivers::MAX_DEPTH + 1))).unwrap_err();
            assert!(err.to_string().contains("levels"), "{format:?}: {err}");
        }
    }

    /// Found by the codec fuzz target once requests refused a map key
    /// given twice: msgpack still read such a map, so the formats
    /// disagreed about what a stored value may be.
    #[test]
    fn a_msgpack_map_with_a_key_twice_is_refused() {
        let mut bytes = MAGIC.to_vec();
        bytes.push(Format::Msgpack.code() << 4);
        bytes.extend_from_slice(&[0x82, 0xa1, b'a', 0x01, 0xa1, b'a', 0x02]);
        let err = decode(&bytes).unwrap_err();
        assert!(err.to_string().contains("appears twice"), "{err}");
    }

    #[test]
    fn both_formats_round_trip_maps_and_nested_lists() {
        for format in [Format::Msgpack, Format::Protobuf] {
            let codec = Codec {
                format,
                compress_above: 1 << 20,
            };
            let bytes = codec.encode(&sample());
            assert!(is_encoded(&bytes));
            assert!(
                std::str::from_utf8(&bytes).is_err(),
                "encoded values never read as text"
            );
            assert_eq!(decode(&bytes).unwrap(), Some(sample()), "{format:?}");
        }
    }

    #[test]
    fn protobuf_keeps_every_kind_and_msgpack_keeps_their_text() {
        let uuid = Value::Uuid(uuid::Uuid::from_u128(7));
        let list = Value::List(vec![uuid.clone(), Value::Decimal("1.10".into())]);
        let proto = Codec {
            format: Format::Protobuf,
            compress_above: 1 << 20,
        };
        assert_eq!(decode(&proto.encode(&list)).unwrap(), Some(list.clone()));
        let msgpack = Codec {
            format: Format::Msgpack,
            compress_above: 1 << 20,
        };
        let back = decode(&msgpack.encode(&list)).unwrap().unwrap();
        assert_eq!(
            back,
            Value::List(vec![Value::from(uuid.to_string()), Value::from("1.10")])
        );
    }

    #[test]
    fn large_values_are_compressed_and_smaller_than_plain_msgpack() {
        let big = Value::List(
            (0..2000)
                .map(|i| Value::from(format!("item-{}", i % 10)))
                .collect(),
        );
        let plain = Codec {
            format: Format::Msgpack,
            compress_above: usize::MAX,
        }
        .encode(&big);
        let compressed = Codec {
            format: Format::Msgpack,
            compress_above: 1024,
        }
        .encode(&big);
        assert_eq!(compressed[3] & SNAPPY, SNAPPY);
        assert!(
            compressed.len() < plain.len() / 2,
            "{} vs {}",
            compressed.len(),
            plain.len()
        );
        assert_eq!(decode(&compressed).unwrap(), Some(big));
    }

    #[test]
    fn bytes_without_the_header_are_left_alone() {
        assert_eq!(decode(b"plain text").unwrap(), None);
        assert_eq!(decode(b"\xC1O").unwrap(), None);
        let raw = Value::Bytes(Bytes::from_static(b"\x00\x01\x02"));
        assert_eq!(decode_all(raw.clone()), raw);
        let damaged = Value::Bytes(Bytes::from_static(b"\xC1OG\x11garbage"));
        assert_eq!(
            decode_all(damaged.clone()),
            damaged,
            "damaged values come back as stored"
        );
    }

    /// A header, then `payload` snappy-compressed.
    fn compressed(format: u8, payload: &[u8]) -> Bytes {
        let mut out = MAGIC.to_vec();
        out.push(format << 4 | SNAPPY);
        out.extend(snap::raw::Encoder::new().compress_vec(payload).unwrap());
        out.into()
    }

    #[test]
    fn small_values_cannot_decode_to_huge_ones() {
        // An array of 10M nils: 10 MB of MessagePack, ~470 KB compressed.
        let mut nils = vec![0xdd];
        nils.extend(10_000_000u32.to_be_bytes());
        nils.resize(5 + 10_000_000, 0xc0);
        let err = decode(&compressed(1, &nils)).unwrap_err();
        assert!(err.to_string().contains("more elements"), "{err}");
        // More than the payload limit: refused from snappy's length alone.
        let big = vec![0xc0; MAX_PAYLOAD_BYTES + 1];
        let err = decode(&compressed(1, &big)).unwrap_err();
        assert!(
            err.to_string()
                .contains("more than a codec value may decode to"),
            "{err}"
        );
        let err = decode(&compressed(2, &vec![0; MAX_PROTOBUF_BYTES + 1])).unwrap_err();
        assert!(
            err.to_string()
                .contains("more than a codec value may decode to"),
            "{err}"
        );
        // Nesting deeper than the value model allows.
        let deep = vec![0x91; 40];
        let err = decode(&compressed(1, &deep)).unwrap_err();
        assert!(err.to_string().contains("nests deeper"), "{err}");
        // What is refused is handed back as stored.
        let stored = Value::Bytes(compressed(1, &nils));
        assert_eq!(decode_all(stored.clone()), stored);
        // Within the limits, values still decode.
        let mut fine = vec![0xdc, 0x03, 0xe8];
        fine.resize(3 + 1000, 0xc0);
        assert_eq!(
            decode(&compressed(1, &fine)).unwrap(),
            Some(Value::List(vec![Value::Null; 1000]))
        );
    }
}
