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
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    bytes: Bytes,
    frame: Frame,
}

#[derive(Debug, Clone)]
enum Frame {
    Two(Frame2),
    Three(Frame3),
    /// A whole reply not decoded, and why (a RESP3 map or set keyed by
    /// aggregates, or nesting deeper than the value model holds, as a
    /// script can return): found by its framing, it is an error for its
    /// caller, not a broken connection for everyone's.
    Refused(&'static str),
}

/// Finds where the reply at the front of a buffer ends by its framing
/// alone, resuming where the last look stopped (a large reply arriving
/// over many reads is scanned once, not again from its start each time),
/// and decodes it once it is whole.
#[derive(Debug)]
pub(crate) struct Framer {
    protocol: Protocol,
    /// Where the next frame of the reply starts.
    at: usize,
    /// How far the header line of the frame at `at` has been searched.
    searched: usize,
    /// Frames still to find at each level of the reply (the reply itself,
    /// then each aggregate open around the next frame).
    left: Vec<usize>,
    /// Whether the reply nests deeper than the value model holds: it is
    /// framed but not decoded (the decoder and the values recurse).
    too_deep: bool,
}

impl Framer {
    /// A framer for replies in `protocol`.
    pub(crate) fn new(protocol: Protocol) -> Framer {
        Framer {
            protocol,
            at: 0,
            searched: 0,
            left: vec![1],
            too_deep: false,
        }
    }

    /// The next whole reply at the front of `buf`, split off; `None` while
    /// part of it has not arrived; an error when the bytes are not the
    /// protocol (no reply can be found in them).
    pub(crate) fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Reply>, &'static str> {
        while let Some(left) = self.left.last_mut() {
            let (next, more) = match step(buf, self.at, self.searched)? {
                Step::Frame { next, more } => (next, more),
                Step::Wait { searched } => {
                    self.searched = searched;
                    return Ok(None);
                }
            };
            self.at = next;
            self.searched = next;
            *left -= 1;
            if more > 0 {
                // Each level is one of a value's: a scalar in a list is
                // at depth 2, with two levels here.
                self.left.push(more);
                self.too_deep |= self.left.len() > crate::MAX_DEPTH;
            }
            while self.left.last() == Some(&0) {
                self.left.pop();
            }
        }
        let bytes = buf.split_to(self.at).freeze();
        let too_deep = self.too_deep;
        // Ready for the next reply, keeping the levels' room.
        self.at = 0;
        self.searched = 0;
        self.left.push(1);
        self.too_deep = false;
        if too_deep {
            let why = "nested deeper than the gateway's values hold";
            return Ok(Some(Reply {
                bytes,
                frame: Frame::Refused(why),
            }));
        }
        let decoded = match self.protocol {
            Protocol::Resp2 => redis_protocol::resp2::decode::decode_range(&bytes)
                .map(|found| found.map(|(frame, len)| (Frame::Two(frame), len))),
            Protocol::Resp3 => redis_protocol::resp3::decode::complete::decode_range(&bytes)
                .map(|found| found.map(|(frame, len)| (Frame::Three(frame), len))),
        };
        let frame = match decoded {
            Ok(Some((frame, len))) if len == bytes.len() => frame,
            // (The decoder's own message would quote the bytes that
            // follow: other callers' replies. None of it is kept.)
            _ => Frame::Refused(
                "a shape the decoder refuses, such as a RESP3 map or set keyed by arrays or maps",
            ),
        };
        Ok(Some(Reply { bytes, frame }))
    }
}

/// Decodes the reply at the front of `buf`, if it is whole, and splits its
/// bytes off (one look, for replies read one at a time).
#[cfg(test)]
pub(crate) fn decode(
    protocol: Protocol,
    buf: &mut BytesMut,
) -> Result<Option<Reply>, &'static str> {
    Framer::new(protocol).next(buf)
}

/// What [`step`] found at a frame.
enum Step {
    /// A whole frame: where the next one starts, and how many frames it
    /// holds (an aggregate's elements).
    Frame { next: usize, more: usize },
    /// Not all of it yet; its header line was searched up to `searched`.
    Wait { searched: usize },
}

/// The frame at `at`, its header line searched for from `from` (where an
/// earlier look stopped: a long line arriving over many reads is scanned
/// once).
fn step(buf: &[u8], at: usize, from: usize) -> Result<Step, &'static str> {
    let Some(&kind) = buf.get(at) else {
        return Ok(Step::Wait { searched: at });
    };
    let start = from.max(at);
    let Some(newline) = buf
        .get(start..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
        .map(|found| start + found)
    else {
        return Ok(Step::Wait {
            searched: buf.len(),
        });
    };
    let line = buf
        .get(at + 1..newline)
        .and_then(|line| line.strip_suffix(b"\r"))
        .ok_or("a line without CR LF")?;
    let next = newline + 1;
    let count = || -> Result<Option<usize>, &'static str> {
        let n: i64 = std::str::from_utf8(line)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or("a length that is not a number")?;
        // -1: a RESP2 null bulk string or array; no other is negative.
        match n {
            -1 => Ok(None),
            _ => usize::try_from(n)
                .map(Some)
                .map_err(|_| "a negative length"),
        }
    };
    let twice = |n: Option<usize>| n.unwrap_or(0).checked_mul(2).ok_or("a length too large");
    let more = match kind {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => 0,
        b'$' | b'!' | b'=' => {
            if let Some(n) = count()? {
                let end = n
                    .checked_add(2)
                    .and_then(|n| n.checked_add(next))
                    .ok_or("a length too large")?;
                if buf.len() < end {
                    return Ok(Step::Wait { searched: newline });
                }
                return Ok(Step::Frame { next: end, more: 0 });
            }
            0
        }
        b'*' | b'~' | b'>' => count()?.unwrap_or(0),
        b'%' => twice(count()?)?,
        // Attributes, then the frame they annotate.
        b'|' => twice(count()?)? + 1,
        _ => return Err("an unknown frame type"),
    };
    Ok(Step::Frame { next, more })
}

impl Reply {
    /// Whether this is out-of-band data (a RESP3 push), not a reply to a
    /// command.
    pub(crate) fn is_push(&self) -> bool {
        match self.frame {
            Frame::Three(Frame3::Push { .. }) => true,
            Frame::Refused(_) => self.bytes.first() == Some(&b'>'),
            _ => false,
        }
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
                format!(
                    "the server's reply could not be read ({why}, as a script can return: \
                     return it in another shape)"
                ),
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

    /// A bulk string: text when UTF-8 (unless `raw_bytes`), else bytes.
    /// Bytes are a slice of the reply's buffer when large, and a copy when
    /// small, so that a small value kept does not keep a whole read
    /// buffer alive.
    fn bulk(&self, (start, end): (usize, usize)) -> Value {
        const COPIED_BELOW: usize = 1024;
        let raw = &self.bytes[start..end];
        if !self.raw_bytes
            && let Ok(text) = std::str::from_utf8(raw)
        {
            return Value::String(text.into());
        }
        if raw.len() < COPIED_BELOW {
            Value::Bytes(Bytes::copy_from_slice(raw))
        } else {
            Value::Bytes(self.slice((start, end)))
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

/// A map key as text, which the value model's map keys are.
pub(crate) fn key_text(key: Value) -> crate::Text {
    match key {
        Value::String(s) => s,
        other => compact_str::ToCompactString::to_compact_string(&other),
    }
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
