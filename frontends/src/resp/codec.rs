//! The wire. Requests are read by a flat scanner of Redis' request form,
//! an array of bulk strings (`*n` then n times `$len`), as Redis itself
//! reads them (`processMultibulkBuffer`); the inline form a person types
//! into `telnet` is read too, with redis-cli's quoting. Replies are
//! encoded by `redis-protocol`'s codecs as RESP2 or RESP3 frames, by the
//! protocol of the session when they were made (`HELLO 3` answers in
//! RESP3 already).
//!
//! Why requests are not decoded by `redis-protocol` too: its decoder
//! recurses once per nested array with no bound (a few KB of `*1\r\n`
//! overflow a worker's stack and abort the process, before any `AUTH`),
//! parses the whole buffer again each time bytes arrive (quadratic for a
//! request that comes in pieces), and knows no limit but the buffer's. A
//! request has one shape and no nesting, so the scanner refuses a nested
//! array at its first byte, reads each argument once, and takes Redis'
//! limits for a client that has not authenticated (10 arguments, 16 KiB
//! each).

use bytes::{Buf, Bytes, BytesMut};
use redis_protocol::codec::{Resp2, Resp3};
use tokio_util::codec::{Decoder, Encoder};

use super::encode::{Protocol, Reply};

/// A request buffered but not yet complete may take this many bytes at
/// most; past it the client is told so and disconnected (Redis' query
/// buffer limit, smaller: every connection of the gateway may hold one).
pub(super) const MAX_REQUEST_BYTES: usize = 64 << 20;

/// Room for a request's framing (`*n`, `$len` and CRLFs) beyond its
/// arguments' bytes.
const FRAMING_BYTES: usize = 1 << 20;

/// Arguments of one request at most (Redis takes more, but 1M arguments
/// of 64 MiB is already 32 MiB of argument handles).
const MAX_ARGS: usize = 1 << 20;

/// Before the client authenticated: Redis' own limits.
const MAX_ARGS_UNAUTHENTICATED: usize = 10;
const MAX_BULK_UNAUTHENTICATED: usize = 16 << 10;

/// The longest length line (`*n` or `$len`, the digits and a sign).
const MAX_LENGTH_DIGITS: usize = 20;

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

fn malformed(what: impl Into<String>) -> ProtocolError {
    ProtocolError::Malformed(what.into())
}

/// A reply and the protocol to write it in.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub(super) protocol: Protocol,
    pub(super) reply: Reply,
}

/// A request read in part: how many arguments it has, where the next one
/// begins, and those read (offsets into the buffer, which only grows at
/// its end until the request is taken), so bytes that arrive in pieces
/// are scanned once.
#[derive(Debug)]
struct Partial {
    count: usize,
    next: usize,
    args: Vec<(usize, usize)>,
}

/// The codec of one connection: commands in, replies out.
#[derive(Debug, Default)]
pub(super) struct RespCodec {
    resp2: Resp2,
    resp3: Resp3,
    partial: Option<Partial>,
    /// Whether the client has authenticated (set by the connection): until
    /// then requests are held to Redis' limits for such clients.
    pub(super) authenticated: bool,
}

/// The number on a length line (`*3\r\n`, `$5\r\n`) that starts at
/// `at` with `kind`, and where the line ends; `None` until it is whole.
fn length_line(src: &[u8], at: usize, kind: u8) -> Result<Option<(i64, usize)>, ProtocolError> {
    let Some(&first) = src.get(at) else {
        return Ok(None);
    };
    if first != kind {
        return Err(malformed(format!(
            "expected '{}', got '{}'",
            kind as char,
            first.escape_ascii()
        )));
    }
    let digits = &src[at + 1..src.len().min(at + 1 + MAX_LENGTH_DIGITS + 2)];
    let Some(end) = digits.windows(2).position(|w| w == b"\r\n") else {
        return if digits.len() > MAX_LENGTH_DIGITS + 1 {
            Err(malformed("a length line too long"))
        } else {
            Ok(None)
        };
    };
    // Digits, with a minus sign at most (Redis takes no plus sign).
    let n = std::str::from_utf8(&digits[..end])
        .ok()
        .filter(|d| !d.starts_with('+'))
        .and_then(|d| d.parse::<i64>().ok())
        .ok_or_else(|| {
            malformed(format!(
                "invalid {} length",
                if kind == b'*' { "multibulk" } else { "bulk" }
            ))
        })?;
    Ok(Some((n, at + 1 + end + 2)))
}

impl Decoder for RespCodec {
    /// A command's arguments, its name first; empty for a request that
    /// holds none (Redis ignores those).
    type Item = Vec<Bytes>;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let (max_args, max_bulk) = if self.authenticated {
            (MAX_ARGS, MAX_REQUEST_BYTES)
        } else {
            (MAX_ARGS_UNAUTHENTICATED, MAX_BULK_UNAUTHENTICATED)
        };
        let mut partial = match self.partial.take() {
            Some(partial) => partial,
            None => {
                let Some(&first) = src.first() else {
                    return Ok(None);
                };
                if first != b'*' {
                    return inline(src, max_args);
                }
                let Some((count, next)) = length_line(src, 0, b'*')? else {
                    return Ok(None);
                };
                if count <= 0 {
                    src.advance(next);
                    return Ok(Some(Vec::new()));
                }
                let count = usize::try_from(count).unwrap_or(usize::MAX);
                if count > max_args {
                    return Err(malformed(if self.authenticated {
                        "invalid multibulk length"
                    } else {
                        "unauthenticated multibulk length"
                    }));
                }
                Partial {
                    count,
                    next,
                    args: Vec::with_capacity(count.min(64)),
                }
            }
        };
        while partial.args.len() < partial.count {
            let Some((len, start)) = length_line(src, partial.next, b'$')? else {
                break;
            };
            let len = usize::try_from(len)
                .ok()
                .filter(|&len| len <= max_bulk)
                .ok_or_else(|| {
                    malformed(if self.authenticated {
                        "invalid bulk length"
                    } else {
                        "unauthenticated bulk length"
                    })
                })?;
            let end = start + len;
            let Some(crlf) = src.get(end..end + 2) else {
                break;
            };
            if crlf != b"\r\n" {
                return Err(malformed("expected CRLF after a bulk string"));
            }
            partial.args.push((start, end));
            partial.next = end + 2;
        }
        if partial.args.len() < partial.count {
            // The arguments' bytes are bounded above; this bounds the
            // framing around them too (a bulk string of exactly the limit
            // still completes).
            if src.len() > MAX_REQUEST_BYTES + FRAMING_BYTES {
                return Err(malformed(format!(
                    "a request over {MAX_REQUEST_BYTES} bytes"
                )));
            }
            self.partial = Some(partial);
            return Ok(None);
        }
        let request = src.split_to(partial.next).freeze();
        Ok(Some(
            partial
                .args
                .iter()
                .map(|&(start, end)| request.slice(start..end))
                .collect(),
        ))
    }
}

/// An inline command: one line, split as redis-cli splits (quotes and
/// escapes), with no placeholders.
fn inline(src: &mut BytesMut, max_args: usize) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let end = src.iter().position(|&b| b == b'\n');
    if end.unwrap_or(src.len()) > MAX_INLINE_BYTES {
        return Err(ProtocolError::Malformed("too big inline request".into()));
    }
    let Some(end) = end else {
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
    let args =
        omnigate::drivers::redis_syntax::split_literal(text).map_err(ProtocolError::Malformed)?;
    if args.len() > max_args {
        return Err(malformed("too many arguments in an inline request"));
    }
    Ok(Some(args))
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
    fn a_nested_array_is_refused_at_its_first_byte_however_deep() {
        // redis-protocol's decoder recursed once per level: this aborted
        // the process with a stack overflow.
        let deep = b"*1\r\n".repeat(1 << 20);
        let err = decode_all(&deep).unwrap_err();
        assert!(err.to_string().contains("expected '$', got '*'"), "{err}");
        assert!(decode_all(b"*2\r\n$3\r\nGET\r\n:1\r\n").is_err());
    }

    #[test]
    fn a_request_that_comes_in_pieces_is_read_once_it_is_whole() {
        let request = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*0\r\n";
        let mut codec = RespCodec::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for &byte in request.iter() {
            buf.extend_from_slice(&[byte]);
            while let Some(cmd) = codec.decode(&mut buf).unwrap() {
                out.push(cmd);
            }
        }
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0][2].as_ref(), b"hello");
        assert!(out[1].is_empty(), "*0 is no command");
        assert!(buf.is_empty());
    }

    #[test]
    fn before_auth_requests_are_held_to_redis_limits_for_such_clients() {
        let many = format!("*11\r\n{}", "$1\r\na\r\n".repeat(11));
        let err = decode_all(many.as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("unauthenticated multibulk length"),
            "{err}"
        );
        let big = format!("*2\r\n$4\r\nAUTH\r\n${}\r\n", (16 << 10) + 1);
        let err = decode_all(big.as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("unauthenticated bulk length"),
            "{err}"
        );
        // Once authenticated, the request limits apply.
        let mut codec = RespCodec {
            authenticated: true,
            ..RespCodec::default()
        };
        let mut buf = BytesMut::from(many.as_bytes());
        assert_eq!(codec.decode(&mut buf).unwrap().map(|c| c.len()), Some(11));
        let mut buf = BytesMut::from(&b"*1\r\n$-5\r\n"[..]);
        assert!(codec.decode(&mut buf).is_err(), "a negative bulk length");
        let mut buf = BytesMut::from(&b"*1\r\n$123456789012345678901234\r\n"[..]);
        assert!(codec.decode(&mut buf).is_err(), "a length line too long");
    }

    #[test]
    fn inline_commands_take_dollar_words_as_they_are() {
        let cmds = decode_all(b"SET price $5\r\n").unwrap();
        assert_eq!(cmds[0][2].as_ref(), b"$5");
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
