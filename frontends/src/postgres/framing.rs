//! The bodies of a logged-in client's messages checked against their
//! layout before pgwire decodes them: pgwire reads a body's fields
//! without bounds (a short `Parse` or `Bind` body panicked its decoder,
//! found by the `pg_wire` fuzz target) and leaves unread bytes to be taken
//! for the next message. A body that does not hold exactly its fields is
//! refused as PostgreSQL refuses it: `08P01`, "invalid message format".

/// Whether a message of this type has its body checked (and so gathered
/// whole while it is read).
pub(super) fn checked(kind: u8) -> bool {
    matches!(
        kind,
        b'P' | b'B' | b'D' | b'C' | b'E' | b'Q' | b'S' | b'H' | b'X'
    )
}

/// `Err(what is wrong)` unless `body` holds exactly the fields of a
/// message of type `kind` (any type [`checked`] does not name passes).
pub(super) fn check(kind: u8, body: &[u8]) -> Result<(), String> {
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
            for i in 1..=at.count("parameter count")? {
                let len = at.take(4, "parameter length")?;
                match i32::from_be_bytes([len[0], len[1], len[2], len[3]]) {
                    -1 => {}
                    n if n >= 0 => {
                        at.take(n as usize, "parameter value")?;
                    }
                    n => return Err(format!("parameter {i} has length {n}")),
                }
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
        // Sync, Flush, Terminate: no body.
        b'S' | b'H' | b'X' => {}
        _ => return Ok(()),
    }
    match body.len() - at.at {
        0 => Ok(()),
        extra => Err(format!("{extra} bytes past its last field")),
    }
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
            let _ = PgWireFrontendMessage::decode(&mut buf, &context);
        }
        assert!(passed > 2_000, "only {passed} cases passed the check");
    }
}
