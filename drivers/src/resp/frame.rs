//! Commands as the Redis protocol writes them, and replies as the
//! [link](super::link) reads them: each reply keeps the bytes it came in,
//! and its strings become values as slices of those bytes (no copy).

use bytes::{BufMut, Bytes, BytesMut};
use redis_protocol::resp2::types::RangeFrame as Frame2;
use redis_protocol::resp3::types::RangeFrame as Frame3;

use super::Protocol;
use crate::redis_syntax::classify_error;
use crate::{EngineError, Error, Value};

/// Appends a command: an array of bulk strings, as every client sends.
pub(crate) fn encode(out: &mut BytesMut, args: &[Bytes]) {
    out.reserve(args.iter().map(|a| a.len() + 16).sum::<usize>() + 16);
    put_header(out, b'*', args.len());
    for arg in args {
        put_header(out, b'$', arg.len());
        out.put_slice(arg);
        out.put_slice(b"\r\n");
    }
}

/// `*3\r\n`, `$5\r\n`: a type byte, a length in decimal, CRLF.
fn put_header(out: &mut BytesMut, kind: u8, len: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut left = len;
    loop {
        at -= 1;
        digits[at] = b'0' + (left % 10) as u8;
        left /= 10;
        if left == 0 {
            break;
        }
    }
    out.put_u8(kind);
    out.put_slice(&digits[at..]);
    out.put_slice(b"\r\n");
}

/// One reply as read: its bytes, and where each of its parts lies in them.
#[derive(Debug)]
pub(crate) struct Reply {
    bytes: Bytes,
    frame: Frame,
}

#[derive(Debug)]
enum Frame {
    Two(Frame2),
    Three(Frame3),
    /// A reply the decoder refused (a RESP3 map or set whose keys are
    /// themselves aggregates, which a script can return): skipped by its
    /// framing alone, it is an error for its caller, not a broken
    /// connection for everyone's.
    Refused(String),
}

/// Decodes the reply at the front of `buf`, if it is whole, and splits its
/// bytes off; an error when the bytes are not the protocol.
pub(crate) fn decode(protocol: Protocol, buf: &mut BytesMut) -> Result<Option<Reply>, String> {
    let decoded = match protocol {
        Protocol::Resp2 => redis_protocol::resp2::decode::decode_range(buf)
            .map(|found| found.map(|(frame, len)| (Frame::Two(frame), len))),
        Protocol::Resp3 => redis_protocol::resp3::decode::complete::decode_range(buf)
            .map(|found| found.map(|(frame, len)| (Frame::Three(frame), len))),
    };
    let (frame, len) = match decoded {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(None),
        Err(e) => match reply_len(buf) {
            Ok(Some(len)) => (Frame::Refused(e.to_string()), len),
            Ok(None) => return Ok(None),
            Err(why) => return Err(format!("{e}; {why}")),
        },
    };
    Ok(Some(Reply {
        bytes: buf.split_to(len).freeze(),
        frame,
    }))
}

/// The length of the whole reply at the front of `buf`, read for its
/// framing only (`None` while part of it has not arrived): how a reply
/// the decoder refuses is stepped over.
fn reply_len(buf: &[u8]) -> Result<Option<usize>, &'static str> {
    let mut at = 0;
    // Frames still to read: aggregates add their elements.
    let mut left: usize = 1;
    while left > 0 {
        let Some(&kind) = buf.get(at) else {
            return Ok(None);
        };
        let Some(newline) = buf[at..].iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        let line = buf[at + 1..at + newline]
            .strip_suffix(b"\r")
            .ok_or("a line without CR LF")?;
        at += newline + 1;
        left -= 1;
        let count = || -> Result<Option<usize>, &'static str> {
            let n: i64 = std::str::from_utf8(line)
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or("a length that is not a number")?;
            // -1: a RESP2 null bulk string or array.
            Ok(usize::try_from(n).ok())
        };
        let more = match kind {
            b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => 0,
            b'$' | b'!' | b'=' => {
                if let Some(n) = count()? {
                    let end = at.checked_add(n + 2).ok_or("a length too large")?;
                    if buf.len() < end {
                        return Ok(None);
                    }
                    at = end;
                }
                0
            }
            b'*' | b'~' | b'>' => count()?.unwrap_or(0),
            b'%' => count()?
                .unwrap_or(0)
                .checked_mul(2)
                .ok_or("a length too large")?,
            // Attributes, then the frame they annotate.
            b'|' => count()?
                .unwrap_or(0)
                .checked_mul(2)
                .and_then(|n| n.checked_add(1))
                .ok_or("a length too large")?,
            _ => return Err("an unknown frame type"),
        };
        left = left.checked_add(more).ok_or("a length too large")?;
    }
    Ok(Some(at))
}

impl Reply {
    /// Whether this is out-of-band data (a RESP3 push), not a reply to a
    /// command.
    pub(crate) fn is_push(&self) -> bool {
        matches!(self.frame, Frame::Three(Frame3::Push { .. }))
    }

    /// The reply as a value: nil → null, integers → int, bulk strings →
    /// string (bytes when not UTF-8, or always with `raw_bytes`), statuses
    /// → string, arrays, sets and pushes → lists, maps → maps (keys as
    /// text), doubles → float, booleans → bool, verbatim strings → string,
    /// big numbers → decimal. An error reply, here or nested, is the error.
    pub(crate) fn into_value(self, kind: &'static str, raw_bytes: bool) -> Result<Value, Error> {
        let reader = Reader {
            bytes: &self.bytes,
            kind,
            raw_bytes,
        };
        match &self.frame {
            Frame::Two(frame) => reader.two(frame),
            Frame::Three(frame) => reader.three(frame),
            Frame::Refused(why) => Err(Error::Internal(EngineError::new(
                kind,
                None,
                format!("the server's reply could not be read ({why})"),
            ))),
        }
    }
}

/// Reads a reply's frames against its bytes.
struct Reader<'a> {
    bytes: &'a Bytes,
    kind: &'static str,
    raw_bytes: bool,
}

impl Reader<'_> {
    fn slice(&self, (start, end): (usize, usize)) -> Bytes {
        self.bytes.slice(start..end)
    }

    fn text(&self, (start, end): (usize, usize)) -> Value {
        Value::String(String::from_utf8_lossy(&self.bytes[start..end]).into())
    }

    fn bulk(&self, range: (usize, usize)) -> Value {
        if self.raw_bytes {
            Value::Bytes(self.slice(range))
        } else {
            Value::from_bytes_lossless(self.slice(range))
        }
    }

    /// An error reply: its first word is the code (`WRONGTYPE`, `ERR`).
    fn error(&self, (start, end): (usize, usize)) -> Error {
        let message = String::from_utf8_lossy(&self.bytes[start..end]).into_owned();
        let code = message.split(' ').next().unwrap_or_default().to_owned();
        classify_error(self.kind, &code, message)
    }

    fn two(&self, frame: &Frame2) -> Result<Value, Error> {
        Ok(match frame {
            Frame2::SimpleString(range) => self.text(*range),
            Frame2::Error(range) => return Err(self.error(*range)),
            Frame2::Integer(i) => Value::Int(*i),
            Frame2::BulkString(range) => self.bulk(*range),
            Frame2::Array(items) => Value::List(
                items
                    .iter()
                    .map(|f| self.two(f))
                    .collect::<Result<_, _>>()?,
            ),
            Frame2::Null => Value::Null,
        })
    }

    fn three(&self, frame: &Frame3) -> Result<Value, Error> {
        let list = |items: &mut dyn Iterator<Item = &Frame3>| -> Result<Value, Error> {
            Ok(Value::List(
                items.map(|f| self.three(f)).collect::<Result<_, _>>()?,
            ))
        };
        Ok(match frame {
            Frame3::BlobString { data, .. } => self.bulk(*data),
            Frame3::SimpleString { data, .. } => self.text(*data),
            Frame3::SimpleError { data, .. } | Frame3::BlobError { data, .. } => {
                return Err(self.error(*data));
            }
            Frame3::Boolean { data, .. } => Value::Bool(*data),
            Frame3::Null => Value::Null,
            Frame3::Number { data, .. } => Value::Int(*data),
            Frame3::Double { data, .. } => Value::Float(*data),
            Frame3::BigNumber { data, .. } => {
                let (start, end) = *data;
                Value::Decimal(String::from_utf8_lossy(&self.bytes[start..end]).into())
            }
            Frame3::VerbatimString { data, .. } => self.text(*data),
            Frame3::Array { data, .. } | Frame3::Push { data, .. } => list(&mut data.iter())?,
            Frame3::Set { data, .. } => list(&mut data.iter())?,
            // A map's keys are text in the value model, whatever
            // `raw_bytes` says (bytes would print as `\x..`). The decoder
            // gathers a map's pairs last first: read back, they come in
            // the server's order.
            Frame3::Map { data, .. } => {
                let keys = Reader {
                    raw_bytes: false,
                    ..*self
                };
                Value::Map(
                    data.iter()
                        .rev()
                        .map(|(k, v)| Ok((key_text(keys.three(k)?), self.three(v)?)))
                        .collect::<Result<_, Error>>()?,
                )
            }
            Frame3::Hello { .. } | Frame3::ChunkedString(_) => {
                return Err(Error::Internal(EngineError::new(
                    self.kind,
                    None,
                    "the server sent a frame that is not a reply",
                )));
            }
        })
    }
}

fn key_text(key: Value) -> crate::Text {
    match key {
        Value::String(s) => s,
        other => compact_str::ToCompactString::to_compact_string(&other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(protocol: Protocol, wire: &[u8], raw_bytes: bool) -> Result<Value, Error> {
        let mut buf = BytesMut::from(wire);
        let reply = decode(protocol, &mut buf)
            .expect("the protocol")
            .expect("a whole reply");
        assert!(buf.is_empty(), "the reply's bytes are split off");
        reply.into_value("redis", raw_bytes)
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = BytesMut::new();
        encode(
            &mut out,
            &[
                Bytes::from_static(b"SET"),
                Bytes::from_static(b"k"),
                Bytes::from(vec![b'v'; 12]),
            ],
        );
        assert_eq!(
            &out[..],
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$12\r\nvvvvvvvvvvvv\r\n"
        );
        out.clear();
        encode(&mut out, &[Bytes::new()]);
        assert_eq!(&out[..], b"*1\r\n$0\r\n\r\n");
    }

    #[test]
    fn resp2_replies_become_values() {
        let two = |wire: &[u8]| read(Protocol::Resp2, wire, false);
        assert_eq!(two(b"+OK\r\n").unwrap(), Value::String("OK".into()));
        assert_eq!(two(b":-7\r\n").unwrap(), Value::Int(-7));
        assert_eq!(two(b"$-1\r\n").unwrap(), Value::Null);
        assert_eq!(two(b"$2\r\nhi\r\n").unwrap(), Value::String("hi".into()));
        assert_eq!(
            two(b"$2\r\n\xff\x00\r\n").unwrap(),
            Value::Bytes(Bytes::from_static(b"\xff\x00"))
        );
        assert_eq!(
            read(Protocol::Resp2, b"$2\r\nhi\r\n", true).unwrap(),
            Value::Bytes(Bytes::from_static(b"hi"))
        );
        assert_eq!(
            two(b"*2\r\n:1\r\n$-1\r\n").unwrap(),
            Value::List(vec![Value::Int(1), Value::Null])
        );
        let wrongtype = two(b"-WRONGTYPE Operation against a key\r\n").unwrap_err();
        assert!(
            matches!(&wrongtype, Error::Precondition(r) if r.message.starts_with("WRONGTYPE Operation"))
        );
        // An error reply that is not UTF-8 (Redis echoes an unknown
        // command's bytes) is still an error, not a broken connection.
        let unknown = two(b"-ERR unknown command '\xff'\r\n").unwrap_err();
        assert!(matches!(unknown, Error::InvalidStatement(_)));
        // Nested errors (EXEC's replies) fail the whole reply.
        assert!(two(b"*2\r\n+OK\r\n-ERR no\r\n").is_err());
    }

    #[test]
    fn resp3_replies_become_values() {
        let three = |wire: &[u8]| read(Protocol::Resp3, wire, true);
        assert_eq!(
            three(b"%2\r\n$1\r\na\r\n,1.5\r\n+b\r\n#t\r\n").unwrap(),
            Value::Map(vec![
                ("a".into(), Value::Float(1.5)),
                ("b".into(), Value::Bool(true)),
            ])
        );
        assert_eq!(three(b"_\r\n").unwrap(), Value::Null);
        assert_eq!(
            three(b"(12345678901234567890\r\n").unwrap(),
            Value::Decimal("12345678901234567890".into())
        );
        assert_eq!(
            three(b"=7\r\ntxt:abc\r\n").unwrap(),
            Value::String("abc".into())
        );
        assert_eq!(
            three(b"~1\r\n:3\r\n").unwrap(),
            Value::List(vec![Value::Int(3)])
        );
        assert!(three(b"!5\r\nERR x\r\n").is_err());
        let mut push = BytesMut::from(&b">2\r\n$10\r\ninvalidate\r\n*0\r\n"[..]);
        assert!(
            decode(Protocol::Resp3, &mut push)
                .unwrap()
                .unwrap()
                .is_push()
        );
    }

    #[test]
    fn a_reply_the_decoder_refuses_is_stepped_over_whole() {
        // A map keyed by an array (a script can return one), then a reply
        // for the next caller.
        let mut buf = BytesMut::from(&b"%1\r\n*1\r\n:1\r\n$1\r\nv\r\n+NEXT\r\n"[..]);
        let refused = decode(Protocol::Resp3, &mut buf).unwrap().unwrap();
        assert!(matches!(
            refused.into_value("redis", false),
            Err(Error::Internal(_))
        ));
        let next = decode(Protocol::Resp3, &mut buf).unwrap().unwrap();
        assert_eq!(
            next.into_value("redis", false).unwrap(),
            Value::String("NEXT".into())
        );
        // The framing waits for the rest, and counts every kind of frame.
        for whole in [
            &b"*3\r\n$-1\r\n*-1\r\n|1\r\n+a\r\n:1\r\n!3\r\nERR\r\n"[..],
            b"%2\r\n~1\r\n,1.5\r\n_\r\n=7\r\ntxt:abc\r\n>1\r\n#t\r\n",
        ] {
            assert_eq!(reply_len(whole), Ok(Some(whole.len())));
            for cut in 0..whole.len() {
                assert_eq!(reply_len(&whole[..cut]), Ok(None), "cut at {cut}");
            }
        }
        assert!(reply_len(b"@1\r\n").is_err());
        assert!(reply_len(b"$x\r\n").is_err());
    }

    #[test]
    fn partial_and_foreign_bytes() {
        let mut buf = BytesMut::from(&b"$5\r\nhel"[..]);
        assert!(decode(Protocol::Resp2, &mut buf).unwrap().is_none());
        assert_eq!(buf.len(), 7, "nothing is taken from a partial reply");
        let mut buf = BytesMut::from(&b"HTTP/1.1 400\r\n"[..]);
        assert!(decode(Protocol::Resp2, &mut buf).is_err());
    }
}
