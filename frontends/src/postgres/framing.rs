//! A client's messages after its startup packet, followed as they are
//! read (every one has a type byte and a length that counts itself) and
//! checked before pgwire decodes them:
//!
//! - its size against the server's `max_request_bytes` (pgwire itself
//!   takes up to 1 GB), refused by its header before its body is read;
//! - its type against those a client sends;
//! - its body against its type's layout: pgwire reads a body's fields
//!   without bounds (a short `Parse`, `Bind`, `Describe`, `Close` or
//!   `Execute` body panicked its decoder, found by the `pg_wire` fuzz
//!   target) and takes what it leaves unread (a `CopyDone` with a body)
//!   for the next message. A body that does not hold exactly its fields
//!   is refused as PostgreSQL refuses it: `08P01`, "invalid message
//!   format". PostgreSQL then goes on with the session; here it ends,
//!   since pgwire's framing of what follows cannot be trusted.

/// Why a message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum Refusal {
    /// Larger than the cap (`54000`).
    #[error(
        "a message of {size} bytes is larger than this server takes ({max} bytes: \
         [server] max_request_bytes); send large values in parts"
    )]
    TooLarge {
        /// Its size, type byte included.
        size: usize,
        /// The cap.
        max: usize,
    },
    /// Not a message a client sends, or not holding its fields (`08P01`).
    #[error("invalid message format: a message of type '{kind}' is malformed ({why})")]
    Malformed {
        /// Its type byte.
        kind: char,
        /// What is wrong.
        why: String,
    },
}

impl Refusal {
    /// The SQLSTATE the client is told.
    pub(super) fn sqlstate(&self) -> &'static str {
        match self {
            Refusal::TooLarge { .. } => "54000",
            Refusal::Malformed { .. } => "08P01",
        }
    }
}

/// Where the reading is in a client's stream of messages.
#[derive(Debug)]
pub(super) struct Framing {
    max: usize,
    /// The message being read: its header so far, then how much of its
    /// body is left.
    header: Vec<u8>,
    body_left: usize,
    kind: u8,
    /// The body of a checked message split across reads, gathered until
    /// whole (a body read whole is checked where it lies).
    gathering: bool,
    body: Vec<u8>,
}

/// What a gathering buffer keeps between messages, at most.
const KEEP: usize = 64 << 10;

impl Framing {
    /// Messages capped at `max` bytes, the first at the next byte.
    pub(super) fn new(max: usize) -> Self {
        Framing {
            max,
            header: Vec::with_capacity(5),
            body_left: 0,
            kind: 0,
            gathering: false,
            body: Vec::new(),
        }
    }

    /// Follows the messages over `bytes` (the next bytes read), checking
    /// each; on a refusal, where in `bytes` the refused message's header
    /// began (0 when it began in an earlier read).
    pub(super) fn walk(&mut self, bytes: &[u8]) -> Result<(), (usize, Refusal)> {
        let mut start = 0;
        let mut at = 0;
        while at < bytes.len() {
            if self.body_left > 0 {
                let passed = self.body_left.min(bytes.len() - at);
                if self.gathering {
                    self.body.extend_from_slice(&bytes[at..at + passed]);
                }
                self.body_left -= passed;
                at += passed;
                if self.body_left == 0 && self.gathering {
                    self.gathering = false;
                    let checked = check(self.kind, &self.body);
                    self.body.clear();
                    if self.body.capacity() > KEEP {
                        self.body = Vec::new();
                    }
                    checked.map_err(|why| (start, self.malformed(why)))?;
                }
                continue;
            }
            start = at.saturating_sub(self.header.len());
            let take = (5 - self.header.len()).min(bytes.len() - at);
            self.header.extend_from_slice(&bytes[at..at + take]);
            at += take;
            if self.header.len() < 5 {
                continue;
            }
            let len = u32::from_be_bytes([
                self.header[1],
                self.header[2],
                self.header[3],
                self.header[4],
            ]) as usize;
            self.kind = self.header[0];
            self.header.clear();
            if len.saturating_add(1) > self.max {
                let size = len.saturating_add(1);
                return Err((
                    start,
                    Refusal::TooLarge {
                        size,
                        max: self.max,
                    },
                ));
            }
            if !known(self.kind) {
                let why = "not a message type a client sends".to_owned();
                return Err((start, self.malformed(why)));
            }
            if len < 4 {
                let why = format!("its length {len} is less than the length field's own 4");
                return Err((start, self.malformed(why)));
            }
            self.body_left = len - 4;
            if checked(self.kind) {
                if let Some(body) = bytes.get(at..at + self.body_left) {
                    // Whole in this read: checked where it lies.
                    check(self.kind, body).map_err(|why| (start, self.malformed(why)))?;
                    at += self.body_left;
                    self.body_left = 0;
                } else {
                    self.gathering = true;
                    self.body.reserve_exact(self.body_left);
                }
            }
        }
        Ok(())
    }

    fn malformed(&self, why: String) -> Refusal {
        Refusal::Malformed {
            kind: char::from(self.kind),
            why,
        }
    }
}

/// Whether a client sends messages of this type (pgwire's frontend
/// messages: `FunctionCall` is not among them).
fn known(kind: u8) -> bool {
    matches!(
        kind,
        b'p' | b'Q' | b'P' | b'B' | b'D' | b'E' | b'C' | b'S' | b'H' | b'X' | b'd' | b'c' | b'f'
    )
}

/// Whether a message of this type has its body checked (a password or
/// SASL message and `CopyData` are taken by their length, whatever they
/// hold).
fn checked(kind: u8) -> bool {
    known(kind) && !matches!(kind, b'p' | b'd')
}

/// `Err(what is wrong)` unless `body` holds exactly the fields of a
/// message of type `kind` (any type [`checked`] does not name passes).
fn check(kind: u8, body: &[u8]) -> Result<(), String> {
    let mut at = Cursor { body, at: 0 };
    match kind {
        // Parse: statement name, query, parameter types.
        b'P' => {
            at.cstring("statement name")?;
            at.cstring("query")?;
            let types = at.count("parameter type count")?;
            at.take(types * 4, "parameter types")?;
        }
        // Bind: portal, statement, parameter formats, parameters (each a
        // length, -1 for NULL, then its bytes), result formats.
        b'B' => {
            at.cstring("portal name")?;
            at.cstring("statement name")?;
            let formats = at.count("parameter format count")?;
            at.take(formats * 2, "parameter formats")?;
            for _ in 0..at.count("parameter count")? {
                at.sized("parameter")?;
            }
            let results = at.count("result format count")?;
            at.take(results * 2, "result formats")?;
        }
        // Describe and Close: 'S' or 'P', then a name.
        b'D' | b'C' => {
            at.take(1, "what to describe or close")?;
            at.cstring("name")?;
        }
        // Execute: portal, row limit.
        b'E' => {
            at.cstring("portal name")?;
            at.take(4, "row limit")?;
        }
        b'Q' => at.cstring("query")?,
        b'f' => at.cstring("reason")?,
        // Sync, Flush, Terminate, CopyDone: no body.
        b'S' | b'H' | b'X' | b'c' => {}
        _ => return Ok(()),
    }
    at.end()
}

/// `Err(what is wrong)` unless `body` holds exactly a SASL initial
/// response: a mechanism's name, then its data's length (-1 for none) and
/// the data. Checked before pgwire reads one at login (it reads these
/// fields without bounds too).
pub(super) fn check_sasl_initial(body: &[u8]) -> Result<(), String> {
    let mut at = Cursor { body, at: 0 };
    at.cstring("mechanism name")?;
    at.sized("data")?;
    at.end()
}

/// Reads a body's fields, never past its end.
struct Cursor<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.body.len())
            .ok_or_else(|| format!("the message ends inside its {what}"))?;
        let field = &self.body[self.at..end];
        self.at = end;
        Ok(field)
    }

    fn cstring(&mut self, what: &str) -> Result<(), String> {
        let rest = &self.body[self.at..];
        let nul = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| format!("its {what} is not NUL-terminated"))?;
        self.at += nul + 1;
        Ok(())
    }

    /// A value after its 4-byte length (-1: NULL, no bytes).
    fn sized(&mut self, what: &str) -> Result<(), String> {
        let len = self.take(4, &format!("{what} length"))?;
        match i32::from_be_bytes([len[0], len[1], len[2], len[3]]) {
            -1 => Ok(()),
            n if n >= 0 => self.take(n as usize, what).map(drop),
            n => Err(format!("a {what} has length {n}")),
        }
    }

    /// `Ok` when every byte was read.
    fn end(&self) -> Result<(), String> {
        match self.body.len() - self.at {
            0 => Ok(()),
            extra => Err(format!("{extra} bytes past its last field")),
        }
    }

    fn count(&mut self, what: &str) -> Result<usize, String> {
        let n = self.take(2, what)?;
        Ok(usize::from(u16::from_be_bytes([n[0], n[1]])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(params: &[Option<&[u8]>], tail: &[u8]) -> Vec<u8> {
        let mut body = b"\0s1\0".to_vec();
        body.extend_from_slice(&1u16.to_be_bytes());
        body.extend_from_slice(&1i16.to_be_bytes());
        body.extend_from_slice(&(params.len() as u16).to_be_bytes());
        for p in params {
            match p {
                Some(v) => {
                    body.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    body.extend_from_slice(v);
                }
                None => body.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        body.extend_from_slice(&0u16.to_be_bytes());
        body.extend_from_slice(tail);
        body
    }

    #[test]
    fn whole_bodies_pass() {
        let mut parse = b"s1\0SELECT $1\0".to_vec();
        parse.extend_from_slice(&1u16.to_be_bytes());
        parse.extend_from_slice(&23u32.to_be_bytes());
        assert_eq!(check(b'P', &parse), Ok(()));
        assert_eq!(check(b'B', &bind(&[Some(b"42"), None], b"")), Ok(()));
        assert_eq!(check(b'D', b"Ss1\0"), Ok(()));
        assert_eq!(check(b'C', b"P\0"), Ok(()));
        assert_eq!(check(b'E', b"\0\0\0\0\0"), Ok(()));
        assert_eq!(check(b'Q', b"SELECT 1\0"), Ok(()));
        assert_eq!(check(b'S', b""), Ok(()));
        assert_eq!(check(b'd', b"anything"), Ok(()), "not checked");
    }

    #[test]
    fn short_long_and_unterminated_bodies_are_refused() {
        let mut parse = b"s1\0SELECT $1\0".to_vec();
        parse.extend_from_slice(&2u16.to_be_bytes());
        parse.extend_from_slice(&23u32.to_be_bytes());
        assert!(check(b'P', &parse).is_err(), "two types promised, one sent");
        assert!(check(b'P', b"s1\0SELECT").is_err(), "no NUL");
        let whole = bind(&[Some(b"42")], b"");
        for cut in 0..whole.len() {
            assert!(check(b'B', &whole[..cut]).is_err(), "cut at {cut}");
        }
        assert!(
            check(b'B', &bind(&[], b"x")).is_err(),
            "a byte past the end"
        );
        let mut negative = b"\0\0".to_vec();
        negative.extend_from_slice(&0u16.to_be_bytes());
        negative.extend_from_slice(&1u16.to_be_bytes());
        negative.extend_from_slice(&(-2i32).to_be_bytes());
        negative.extend_from_slice(&0u16.to_be_bytes());
        assert!(check(b'B', &negative).unwrap_err().contains("length -2"));
        let mut huge = b"\0\0".to_vec();
        huge.extend_from_slice(&0u16.to_be_bytes());
        huge.extend_from_slice(&1u16.to_be_bytes());
        huge.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(check(b'B', &huge).is_err());
        assert!(check(b'D', b"").is_err());
        assert!(check(b'E', b"\0\0").is_err());
        assert!(check(b'S', b"x").is_err());
    }

    /// Every message the check lets through decodes from a buffer that
    /// holds it alone (a read past its end panics): valid messages of each
    /// checked type, cut, lengthened and with bytes changed at random.
    #[test]
    fn what_the_check_passes_pgwire_decodes_within_the_message() {
        use pgwire::messages::{DecodeContext, PgWireFrontendMessage, ProtocolVersion};
        let mut context = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
        context.awaiting_frontend_ssl = false;
        context.awaiting_frontend_startup = false;
        let mut parse = b"s1\0SELECT $1, $2\0".to_vec();
        parse.extend_from_slice(&2u16.to_be_bytes());
        parse.extend_from_slice(&[0, 0, 0, 23, 0, 0, 0, 25]);
        let seeds: Vec<(u8, Vec<u8>)> = vec![
            (b'P', parse),
            (b'B', bind(&[Some(b"42"), None, Some(b"")], b"")),
            (b'D', b"Ss1\0".to_vec()),
            (b'C', b"Pp1\0".to_vec()),
            (b'E', b"p1\0\0\0\0\x05".to_vec()),
            (b'Q', b"SELECT 1\0".to_vec()),
            (b'S', Vec::new()),
            (b'c', Vec::new()),
            (b'f', b"no\0".to_vec()),
            (b'd', b"\x01\x02".to_vec()),
            (b'p', b"SCRAM-SHA-256\0\0\0\0\x02ab".to_vec()),
        ];
        // xorshift: the same cases every run.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut passed = 0;
        for round in 0..20_000 {
            let (kind, seed) = &seeds[round % seeds.len()];
            let mut body = seed.clone();
            for _ in 0..(next() % 4) {
                let at = (next() as usize) % (body.len() + 1);
                match next() % 3 {
                    0 => body.truncate(at),
                    1 => body.insert(at, next() as u8),
                    _ if at < body.len() => body[at] = next() as u8,
                    _ => {}
                }
            }
            if check(*kind, &body).is_err() {
                continue;
            }
            passed += 1;
            let mut message = vec![*kind];
            message.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
            message.extend_from_slice(&body);
            let mut buf = bytes::BytesMut::from(&message[..]);
            if let Ok(Some(_)) = PgWireFrontendMessage::decode(&mut buf, &context) {
                assert!(buf.is_empty(), "{:?} left {buf:?} unread", *kind as char);
            }
        }
        assert!(passed > 2_000, "only {passed} cases passed the check");
    }
}
