//! Replies as the front end builds them ([`Reply`], one type for both
//! protocols), the gateway's values as replies, and replies as RESP2 or
//! RESP3 frames of `redis-protocol`.
//!
//! Commands run with `raw_bytes`, so a bulk string of the engine comes
//! back as bytes and a status (`+OK`) as text: bytes are sent as bulk
//! strings, text as a status. RESP3's types (maps, doubles, booleans, big
//! numbers) are sent as such after `HELLO 3`, and as Redis itself sends
//! them to a RESP2 client otherwise (a map as a flat array of keys and
//! values, a double as a bulk string, a boolean as 1 or 0).

use bytes::Bytes;
use omnigate::drivers::Value;
use omnigate::drivers::redis_syntax::format_float;
use redis_protocol::bytes_utils::Str;
use redis_protocol::resp2::types::BytesFrame as Resp2Frame;
use redis_protocol::resp3::types::{BytesFrame as Resp3Frame, FrameMap};

/// The protocol a session's replies are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Protocol {
    /// RESP2, every session's protocol until `HELLO 3`.
    #[default]
    Resp2,
    /// RESP3.
    Resp3,
}

impl Protocol {
    /// The version number `HELLO` names.
    pub(super) fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

/// One reply, in either protocol.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Reply {
    /// A status (`+OK`): text without CR or LF.
    Status(String),
    /// An error: its prefix and message (`ERR unknown command`), one line.
    Error(String),
    /// An integer.
    Int(i64),
    /// A bulk string: any bytes.
    Bulk(Bytes),
    /// Nil: RESP2's null bulk string, RESP3's null.
    Nil,
    /// An array.
    Array(Vec<Reply>),
    /// A map (RESP3); a flat array of keys and values in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// A set (RESP3); an array in RESP2.
    Set(Vec<Reply>),
    /// A double (RESP3); a bulk string in RESP2.
    Double(f64),
    /// A boolean (RESP3); 1 or 0 in RESP2.
    Bool(bool),
    /// A big number (RESP3); a bulk string in RESP2.
    BigNumber(String),
    /// A buffered write's `+QUEUED` (its own reply comes at `EXEC`).
    Queued,
}

impl Reply {
    /// About what the reply takes on the wire (a few bytes of framing per
    /// element, plus its data), recursively but with no allocation.
    pub(super) fn size(&self) -> u64 {
        const FRAMING: u64 = 8;
        FRAMING
            + match self {
                Reply::Status(s) | Reply::Error(s) | Reply::BigNumber(s) => s.len() as u64,
                Reply::Bulk(b) => b.len() as u64,
                Reply::Int(_) | Reply::Nil | Reply::Double(_) | Reply::Bool(_) => 0,
                Reply::Queued => 6,
                Reply::Array(items) | Reply::Set(items) => items.iter().map(Reply::size).sum(),
                Reply::Map(pairs) => pairs.iter().map(|(k, v)| k.size() + v.size()).sum(),
            }
    }

    /// `+OK`.
    pub(super) fn ok() -> Reply {
        Reply::Status("OK".to_owned())
    }

    /// A status.
    pub(super) fn status(text: &str) -> Reply {
        Reply::Status(text.to_owned())
    }

    /// A bulk string holding `text`.
    pub(super) fn text(text: impl Into<String>) -> Reply {
        Reply::Bulk(Bytes::from(text.into()))
    }

    /// An error reply: `line` is its prefix and message; CR and LF, which
    /// would end it early, become spaces.
    pub(super) fn error(line: impl Into<String>) -> Reply {
        let line: String = line.into();
        Reply::Error(line.replace(['\r', '\n'], " "))
    }

    /// Whether it is an error.
    pub(super) fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// The reply in RESP2.
    pub(super) fn into_resp2(self) -> Resp2Frame {
        match self {
            Reply::Status(s) => Resp2Frame::SimpleString(Bytes::from(s)),
            Reply::Queued => Resp2Frame::SimpleString(Bytes::from_static(b"QUEUED")),
            Reply::Error(e) => Resp2Frame::Error(Str::from(e)),
            Reply::Int(i) => Resp2Frame::Integer(i),
            Reply::Bulk(b) => Resp2Frame::BulkString(b),
            Reply::Nil => Resp2Frame::Null,
            Reply::Array(items) | Reply::Set(items) => {
                Resp2Frame::Array(items.into_iter().map(Reply::into_resp2).collect())
            }
            Reply::Map(entries) => Resp2Frame::Array(
                entries
                    .into_iter()
                    .flat_map(|(k, v)| [k.into_resp2(), v.into_resp2()])
                    .collect(),
            ),
            Reply::Double(f) => Resp2Frame::BulkString(Bytes::from(format_float(f))),
            Reply::Bool(b) => Resp2Frame::Integer(i64::from(b)),
            Reply::BigNumber(n) => Resp2Frame::BulkString(Bytes::from(n)),
        }
    }

    /// The reply in RESP3.
    pub(super) fn into_resp3(self) -> Resp3Frame {
        match self {
            Reply::Status(s) => Resp3Frame::SimpleString {
                data: Bytes::from(s),
                attributes: None,
            },
            Reply::Queued => Resp3Frame::SimpleString {
                data: Bytes::from_static(b"QUEUED"),
                attributes: None,
            },
            Reply::Error(e) => Resp3Frame::SimpleError {
                data: Str::from(e),
                attributes: None,
            },
            Reply::Int(i) => Resp3Frame::Number {
                data: i,
                attributes: None,
            },
            Reply::Bulk(b) => Resp3Frame::BlobString {
                data: b,
                attributes: None,
            },
            Reply::Nil => Resp3Frame::Null,
            Reply::Array(items) => Resp3Frame::Array {
                data: items.into_iter().map(Reply::into_resp3).collect(),
                attributes: None,
            },
            Reply::Map(entries) => {
                let mut map = FrameMap::with_capacity(entries.len());
                for (k, v) in entries {
                    map.insert(k.into_resp3(), v.into_resp3());
                }
                Resp3Frame::Map {
                    data: map,
                    attributes: None,
                }
            }
            Reply::Set(items) => Resp3Frame::Set {
                data: items.into_iter().map(Reply::into_resp3).collect(),
                attributes: None,
            },
            Reply::Double(f) => Resp3Frame::Double {
                data: f,
                attributes: None,
            },
            Reply::Bool(b) => Resp3Frame::Boolean {
                data: b,
                attributes: None,
            },
            Reply::BigNumber(n) => Resp3Frame::BigNumber {
                data: Bytes::from(n),
                attributes: None,
            },
        }
    }
}

/// A value of the gateway as a reply: bytes as a bulk string, text as a
/// status (a bulk string when it holds CR or LF), lists as arrays, maps as
/// maps, floats as doubles, decimals as big numbers. A value an engine
/// stored through a codec comes back decoded by the core (a map or a
/// list), and is sent as that. Other kinds (timestamps, JSON, graph
/// values: no engine of the redis dialect returns them) as bulk text.
pub(super) fn value(v: Value) -> Reply {
    match v {
        Value::Null => Reply::Nil,
        Value::Bool(b) => Reply::Bool(b),
        Value::Int(i) => Reply::Int(i),
        Value::Float(f) => Reply::Double(f),
        Value::Decimal(n) => Reply::BigNumber(n.into()),
        Value::String(s) if s.contains(['\r', '\n']) => Reply::Bulk(Bytes::from(s.into_string())),
        Value::String(s) => Reply::Status(s.into()),
        Value::Bytes(b) => Reply::Bulk(b),
        Value::Json(s) => Reply::text(s),
        Value::List(items) => Reply::Array(items.into_iter().map(value).collect()),
        Value::Map(entries) => Reply::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Reply::text(k), value(v)))
                .collect(),
        ),
        v @ (Value::Node(_) | Value::Relationship(_) | Value::Path(_)) => {
            Reply::text(crate::cli::output::value_json(&v).to_string())
        }
        other => Reply::text(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp2(reply: Reply) -> Vec<u8> {
        let mut out = bytes::BytesMut::new();
        redis_protocol::resp2::encode::extend_encode(&mut out, &reply.into_resp2(), false).unwrap();
        out.to_vec()
    }

    fn resp3(reply: Reply) -> Vec<u8> {
        let mut out = bytes::BytesMut::new();
        redis_protocol::resp3::encode::complete::extend_encode(
            &mut out,
            &reply.into_resp3(),
            false,
        )
        .unwrap();
        out.to_vec()
    }

    #[test]
    fn values_become_the_replies_redis_sends() {
        assert_eq!(resp2(value(Value::from("OK"))), b"+OK\r\n");
        assert_eq!(
            resp2(value(Value::Bytes(Bytes::from_static(b"a\r\n\0")))),
            b"$4\r\na\r\n\0\r\n"
        );
        assert_eq!(resp2(value(Value::Null)), b"$-1\r\n");
        assert_eq!(resp3(value(Value::Null)), b"_\r\n");
        assert_eq!(resp2(value(Value::Int(-3))), b":-3\r\n");
        assert_eq!(
            resp2(value(Value::from("two\nlines"))),
            b"$9\r\ntwo\nlines\r\n"
        );
        let list = Value::List(vec![Value::Int(1), Value::Bytes(Bytes::from_static(b"x"))]);
        assert_eq!(resp2(value(list)), b"*2\r\n:1\r\n$1\r\nx\r\n");
    }

    #[test]
    fn resp3_types_are_sent_as_redis_sends_them_to_each_protocol() {
        let map = || {
            value(Value::Map(vec![
                ("a".into(), Value::Float(1.5)),
                ("b".into(), Value::Bool(true)),
            ]))
        };
        assert_eq!(
            resp2(map()),
            b"*4\r\n$1\r\na\r\n$3\r\n1.5\r\n$1\r\nb\r\n:1\r\n"
        );
        assert_eq!(resp3(map()), b"%2\r\n$1\r\na\r\n,1.5\r\n$1\r\nb\r\n#t\r\n");
        assert_eq!(
            resp3(value(Value::Decimal("12345678901234567890".into()))),
            b"(12345678901234567890\r\n"
        );
        assert_eq!(resp2(Reply::Double(f64::INFINITY)), b"$3\r\ninf\r\n");
    }

    #[test]
    fn errors_stay_on_one_line() {
        assert_eq!(
            resp2(Reply::error("ERR bad\r\nthing")),
            b"-ERR bad  thing\r\n"
        );
        assert_eq!(resp3(Reply::error("NOPERM no")), b"-NOPERM no\r\n");
    }
}
