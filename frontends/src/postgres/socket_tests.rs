//! Tests of the held socket: replies per round, the size cap, the
//! bodies' layout.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// A held socket armed with a 1 KiB cap at a message boundary, and the
/// client's end of it.
fn armed() -> (Held<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
    let (server, client) = tokio::io::duplex(1 << 16);
    let mut held = Held::new(server);
    held.arm(1024, b"");
    (held, client)
}

#[tokio::test]
async fn replies_wait_for_the_next_read_and_leave_in_one_write() {
    let (server, mut client) = tokio::io::duplex(1 << 16);
    let mut held = Held::new(server);
    held.write_all(b"2\0\0\0\x04").await.unwrap();
    held.flush().await.unwrap();
    held.write_all(b"Z\0\0\0\x05I").await.unwrap();
    held.flush().await.unwrap();
    // Nothing reached the client yet.
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(50), client.read(&mut byte)).await;
    assert!(early.is_err(), "held until the server reads");
    // The server waits for the client: both replies go, together.
    client.write_all(b"S\0\0\0\x04").await.unwrap();
    let mut request = [0u8; 5];
    held.read_exact(&mut request).await.unwrap();
    let mut replies = [0u8; 11];
    client.read_exact(&mut replies).await.unwrap();
    assert_eq!(&replies, b"2\0\0\0\x04Z\0\0\0\x05I");
}

#[tokio::test]
async fn the_messages_before_a_refused_one_are_read_first() {
    let (mut held, mut client) = armed();
    // A whole COMMIT, then a Query whose header says 1 MiB, in one
    // write.
    let mut sent = b"Q\0\0\0\x0bCOMMIT\0".to_vec();
    sent.extend_from_slice(b"Q");
    sent.extend_from_slice(&(1u32 << 20).to_be_bytes());
    client.write_all(&sent).await.unwrap();
    let mut got = vec![0u8; 64];
    let n = held.read(&mut got).await.unwrap();
    assert_eq!(&got[..n], b"Q\0\0\0\x0bCOMMIT\0", "the COMMIT is served");
    let e = held.read(&mut got).await.unwrap_err();
    assert_eq!(refused(&e), Some("54000"), "{e}");
}

#[test]
fn a_message_past_the_cap_is_refused_by_its_header() {
    let (server, _client) = tokio::io::duplex(16);
    let mut held = Held::new(server);
    // Before login nothing is checked.
    held.walk(b"Q\x7f\xff\xff\xff").unwrap();
    // Armed mid-stream at a message boundary: a 9-byte Query passes in
    // pieces, the next one's header says 1 MiB.
    assert_eq!(held.arm(1024, b"Q\0\0\0\x08ab"), 7);
    held.walk(b"c\0").unwrap();
    let mut big = b"Q".to_vec();
    big.extend_from_slice(&(1u32 << 20).to_be_bytes());
    let e = held.walk(&big).unwrap_err().1;
    assert_eq!(refused(&e), Some("54000"), "{e}");
    assert!(e.to_string().contains("max_request_bytes"), "{e}");
}

#[tokio::test]
async fn a_malformed_body_is_refused_after_the_messages_before_it() {
    let (mut held, mut client) = armed();
    // A Sync, then a Bind whose one parameter claims 100 bytes and
    // brings 2 (pgwire's decoder read past it), sent in two pieces.
    let mut bind = b"\0\0".to_vec();
    bind.extend_from_slice(&0u16.to_be_bytes());
    bind.extend_from_slice(&1u16.to_be_bytes());
    bind.extend_from_slice(&100i32.to_be_bytes());
    bind.extend_from_slice(b"42");
    bind.extend_from_slice(&0u16.to_be_bytes());
    let mut sent = b"S\0\0\0\x04B".to_vec();
    sent.extend_from_slice(&(bind.len() as u32 + 4).to_be_bytes());
    sent.extend_from_slice(&bind[..3]);
    client.write_all(&sent).await.unwrap();
    let mut got = vec![0u8; 64];
    let n = held.read(&mut got).await.unwrap();
    assert_eq!(n, sent.len(), "the Sync and the Bind's start pass");
    client.write_all(&bind[3..]).await.unwrap();
    let e = held.read(&mut got).await.unwrap_err();
    assert_eq!(refused(&e), Some("08P01"), "{e}");
    assert!(e.to_string().contains("type 'B'"), "{e}");
}

#[test]
fn bodies_without_their_fields_are_refused_by_their_layout() {
    let (mut held, _client) = armed();
    // A Describe with no body (pgwire's decoder panicked on it).
    let e = held.walk(b"D\0\0\0\x04").unwrap_err().1;
    assert_eq!(refused(&e), Some("08P01"), "{e}");
    let (mut held, _client) = armed();
    // A length that does not count itself.
    let e = held.walk(b"S\0\0\0\x02").unwrap_err().1;
    assert!(e.to_string().contains("less than"), "{e}");
    // Whole messages pass, in any pieces.
    let (mut held, _client) = armed();
    for piece in [&b"D\0\0"[..], b"\0\x08Ss", b"1\0", b"H\0\0\0\x04"] {
        held.walk(piece).unwrap();
    }
}

#[test]
fn unknown_types_and_bodies_pgwire_would_leave_unread_are_refused() {
    // A CopyDone with a body: pgwire reads none of it, and would take it
    // for the next message (here a Describe that panicked its decoder).
    let (mut held, _client) = armed();
    let e = held.walk(b"c\0\0\0\x09D\0\0\0\x04").unwrap_err().1;
    assert_eq!(refused(&e), Some("08P01"), "{e}");
    // A FunctionCall, and a byte no message starts with.
    for kind in [b'F', 0x7f] {
        let (mut held, _client) = armed();
        let e = held.walk(&[kind, 0, 0, 0, 4]).unwrap_err().1;
        assert!(e.to_string().contains("not a message type"), "{e}");
    }
    // CopyData and a password message pass whatever they hold.
    let (mut held, _client) = armed();
    held.walk(b"d\0\0\0\x06\xff\x00p\0\0\0\x05x").unwrap();
}

#[test]
fn a_refusal_among_the_bytes_read_before_arming_waits_for_those_before_it() {
    let mut held = Held::new(tokio::io::duplex(16).0);
    // A Sync, then a Describe with no body, read with the last login
    // message: the Sync is served, the Describe refused at the next read.
    let unread = b"S\0\0\0\x04D\0\0\0\x04";
    assert_eq!(held.arm(1024, unread), 5);
    assert!(held.refused.is_some());
}
