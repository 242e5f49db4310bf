//! The framing and decoding of replies, and the encoding of commands.

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
    // The framing waits for the rest, counts every kind of frame, and
    // resumes where it stopped as the bytes arrive.
    for whole in [
        &b"*3\r\n$-1\r\n*-1\r\n|1\r\n+a\r\n:1\r\n!3\r\nERR\r\n"[..],
        b"%2\r\n~1\r\n,1.5\r\n_\r\n=7\r\ntxt:abc\r\n>1\r\n#t\r\n",
    ] {
        let mut framer = Framer::new(Protocol::Resp3);
        let mut buf = BytesMut::new();
        for (i, byte) in whole.iter().enumerate() {
            buf.extend_from_slice(&[*byte]);
            let found = framer.next(&mut buf).unwrap();
            assert_eq!(found.is_some(), i + 1 == whole.len(), "at byte {i}");
        }
        assert!(buf.is_empty());
    }
    for foreign in [
        &b"@1\r\n"[..],
        b"$x\r\n",
        b"\n",
        b"*1\n",
        b"$9223372036854775807\r\n",
        b"*-5\r\n",
    ] {
        let mut buf = BytesMut::from(foreign);
        let found = decode(Protocol::Resp3, &mut buf);
        // Not the protocol, or (the huge length) waiting for more:
        // never a panic, never a reply.
        assert!(!matches!(found, Ok(Some(_))), "{foreign:?}");
    }
}

#[test]
fn a_reply_nested_too_deep_is_framed_but_not_decoded() {
    let mut deep = b"*1\r\n".repeat(10_000);
    deep.extend_from_slice(b":1\r\n+NEXT\r\n");
    let mut buf = BytesMut::from(&deep[..]);
    let refused = decode(Protocol::Resp2, &mut buf).unwrap().unwrap();
    let err = refused.into_value("redis", false).unwrap_err();
    assert!(err.to_string().contains("nested deeper"), "{err}");
    assert_eq!(&buf[..], b"+NEXT\r\n");
    // One level past the value model is refused; as deep as it holds
    // is decoded.
    let mut past = b"*1\r\n".repeat(crate::MAX_DEPTH);
    past.extend_from_slice(b":1\r\n");
    let mut buf = BytesMut::from(&past[..]);
    let refused = decode(Protocol::Resp2, &mut buf).unwrap().unwrap();
    assert!(refused.into_value("redis", false).is_err());
    let mut held = b"*1\r\n".repeat(crate::MAX_DEPTH - 1);
    held.extend_from_slice(b":1\r\n");
    let mut buf = BytesMut::from(&held[..]);
    let value = decode(Protocol::Resp2, &mut buf).unwrap().unwrap();
    assert_eq!(
        value.into_value("redis", false).unwrap().depth(),
        crate::MAX_DEPTH
    );
}

#[test]
fn partial_and_foreign_bytes() {
    let mut buf = BytesMut::from(&b"$5\r\nhel"[..]);
    assert!(decode(Protocol::Resp2, &mut buf).unwrap().is_none());
    assert_eq!(buf.len(), 7, "nothing is taken from a partial reply");
    let mut buf = BytesMut::from(&b"HTTP/1.1 400\r\n"[..]);
    assert!(decode(Protocol::Resp2, &mut buf).is_err());
}
