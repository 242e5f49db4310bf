//! The wire: `redis-protocol`'s tokio codecs, composed. Requests are
//! decoded as RESP2 frames (clients send arrays of bulk strings whatever
//! protocol they speak) and checked to be commands; the inline form a
//! person types into `telnet` is read too, with redis-cli's quoting.
//! Replies are encoded as RESP2 or RESP3 frames by the protocol of the
//! session when they were made (`HELLO 3` answers in RESP3 already).

use bytes::{Bytes, BytesMut};
use redis_protocol::codec::{Resp2, Resp3};
use redis_protocol::resp2::types::{BytesFrame as Resp2Frame, Resp2Frame as _};
use tokio_util::codec::{Decoder, Encoder};

use super::encode::{Protocol, Reply};

/// A request buffered but not yet complete may take this many bytes at
/// most; past it the client is told so and disconnected (Redis' query
/// buffer limit, smaller: every connection of the gateway may hold one).
pub(super) const MAX_REQUEST_BYTES: usize = 64 << 20;

/// An inline command (a line typed into `telnet`) may be this long at
/// most, as in Redis.
const MAX_INLINE_BYTES: usize = 64 << 10;

/// What a client sent that is not a request: the connection ends after
/// the client is told.
#[derive(Debug, thiserror::Error)]
pub(super) enum ProtocolError {
    /// Malformed or too large: Redis' words (`Protocol error: ...`).
    #[error("Protocol error: {0}")]
    Malformed(String),
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl ProtocolError {
    /// The error reply the client is sent, when it can still be sent.
    pub(super) fn reply(&self) -> Option<Reply> {
        match self {
            ProtocolError::Malformed(_) => Some(Reply::error(format!("ERR {self}"))),
            ProtocolError::Io(_) => None,
        }
    }
}

/// A reply and the protocol to write it in.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub(super) protocol: Protocol,
    pub(super) reply: Reply,
}

/// The codec of one connection: commands in, replies out.
#[derive(Debug, Default)]
pub(super) struct RespCodec {
    resp2: Resp2,
    resp3: Resp3,
}

impl Decoder for RespCodec {
    /// A command's arguments, its name first; empty for a request that
    /// holds none (Redis ignores those).
    type Item = Vec<Bytes>;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let Some(&first) = src.first() else {
            return Ok(None);
        };
        if first != b'*' {
            return inline(src);
        }
        let frame = self
            .resp2
            .decode(src)
            .map_err(|e| ProtocolError::Malformed(e.details().to_owned()))?;
        match frame {
            Some(frame) => command(frame).map(Some),
            None if src.len() > MAX_REQUEST_BYTES => Err(ProtocolError::Malformed(format!(
                "a request over {MAX_REQUEST_BYTES} bytes"
            ))),
            None => Ok(None),
        }
    }
}

/// A request frame as a command: an array of bulk strings.
fn command(frame: Resp2Frame) -> Result<Vec<Bytes>, ProtocolError> {
    match frame {
        Resp2Frame::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Resp2Frame::BulkString(b) => Ok(b),
                other => Err(ProtocolError::Malformed(format!(
                    "expected '$', got a {:?} frame",
                    other.kind()
                ))),
            })
            .collect(),
        Resp2Frame::Null => Ok(Vec::new()),
        _ => Err(ProtocolError::Malformed(
            "a request is an array of bulk strings".into(),
        )),
    }
}

/// An inline command: one line, split as redis-cli splits (quotes and
/// escapes), with no placeholders.
fn inline(src: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some(end) = src.iter().position(|&b| b == b'\n') else {
        if src.len() > MAX_INLINE_BYTES {
            return Err(ProtocolError::Malformed("too big inline request".into()));
        }
        return Ok(None);
    };
    let line = src.split_to(end + 1);
    let line = line.strip_suffix(b"\n").unwrap_or(&line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line)
        .map_err(|_| ProtocolError::Malformed("an inline request that is not UTF-8".into()))?;
    if text.trim().is_empty() {
        return Ok(Some(Vec::new()));
    }
    omnigate::drivers::redis_syntax::parse_command(text, &[], "resp")
        .map(Some)
        .map_err(|e| match e.engine_error() {
            Some(report) => ProtocolError::Malformed(report.message.clone()),
            None => ProtocolError::Malformed(e.to_string()),
        })
}

impl Encoder<Outgoing> for RespCodec {
    type Error = ProtocolError;

    fn encode(&mut self, item: Outgoing, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        let encoded = match item.protocol {
            Protocol::Resp2 => self.resp2.encode(item.reply.into_resp2(), dst),
            Protocol::Resp3 => self.resp3.encode(item.reply.into_resp3(), dst),
        };
        encoded.map_err(|e| ProtocolError::Malformed(format!("cannot encode a reply: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut codec = RespCodec::default();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(cmd) = codec.decode(&mut buf)? {
            out.push(cmd);
        }
        Ok(out)
    }

    #[test]
    fn reads_pipelined_commands_whole_and_binary() {
        let cmds = decode_all(
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na\r\n\r\n*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET",
        )
        .unwrap();
        assert_eq!(cmds.len(), 2, "the third is incomplete: {cmds:?}");
        assert_eq!(cmds[0][2].as_ref(), b"a\r\n");
        assert_eq!(cmds[1], vec![Bytes::from_static(b"PING")]);
    }

    #[test]
    fn reads_inline_commands_with_quotes() {
        let cmds = decode_all(b"SET k \"a b\"\r\nPING\n\r\n").unwrap();
        assert_eq!(cmds[0][2].as_ref(), b"a b");
        assert_eq!(cmds[1], vec![Bytes::from_static(b"PING")]);
        assert!(cmds[2].is_empty(), "an empty line is no command");
        assert!(decode_all(b"SET k \"open\r\n").is_err());
    }

    #[test]
    fn refuses_what_is_not_a_command() {
        let err = decode_all(b"*2\r\n$3\r\nGET\r\n:1\r\n").unwrap_err();
        assert!(err.to_string().starts_with("Protocol error"), "{err}");
        assert!(err.reply().is_some_and(|r| r.is_error()));
        assert!(decode_all(b"*1\r\n$x\r\n").is_err());
        let mut huge = vec![b'A'; MAX_INLINE_BYTES + 1];
        huge[0] = b'G';
        assert!(decode_all(&huge).is_err());
    }

    #[test]
    fn encodes_in_the_protocol_asked() {
        let mut codec = RespCodec::default();
        let mut out = BytesMut::new();
        for protocol in [Protocol::Resp2, Protocol::Resp3] {
            codec
                .encode(
                    Outgoing {
                        protocol,
                        reply: Reply::Bool(true),
                    },
                    &mut out,
                )
                .unwrap();
        }
        assert_eq!(out.as_ref(), b":1\r\n#t\r\n");
    }
}
