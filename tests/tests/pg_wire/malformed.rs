//! A logged-in client's malformed message is refused as PostgreSQL
//! refuses it (`08P01`), before pgwire's decoder reads past its end.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::{connect, gateway, sqlstate};

/// A client's socket that, once armed, says in every `Bind` it sends that
/// the first parameter is 100 bytes long (the message keeps its length,
/// so its framing holds and only its body lies).
struct Mangling {
    inner: TcpStream,
    armed: Arc<AtomicBool>,
}

/// `bytes` (whole messages) with each `Bind`'s first parameter length
/// made 100.
fn mangled(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut at = 0;
    while at + 5 <= out.len() {
        let len = u32::from_be_bytes([out[at + 1], out[at + 2], out[at + 3], out[at + 4]]) as usize;
        if out[at] == b'B' {
            let body = at + 5;
            let mut p = body;
            for _ in 0..2 {
                p += out[p..].iter().position(|b| *b == 0).unwrap() + 1;
            }
            let formats = usize::from(u16::from_be_bytes([out[p], out[p + 1]]));
            p += 2 + formats * 2 + 2; // the formats, then the parameter count
            out[p..p + 4].copy_from_slice(&100i32.to_be_bytes());
        }
        at += 1 + len;
    }
    out
}

impl AsyncRead for Mangling {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Mangling {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.armed.load(Ordering::Relaxed) {
            let bytes = mangled(buf);
            return Pin::new(&mut self.inner).poll_write(cx, &bytes);
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn a_bind_whose_body_lies_is_refused_with_08p01_and_others_go_on() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let (_gw, addr) = gateway(&pg, &redis).await;
    let armed = Arc::new(AtomicBool::new(false));
    let socket = Mangling {
        inner: TcpStream::connect(addr).await.unwrap(),
        armed: Arc::clone(&armed),
    };
    let config: tokio_postgres::Config = "user=app password=app-token dbname=main-db"
        .parse()
        .unwrap();
    let (client, connection) = config
        .connect_raw(socket, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    // Logged in through the socket, and served as any client.
    let one = client.query_one("SELECT $1::int4", &[&7i32]).await.unwrap();
    assert_eq!(one.get::<_, i32>(0), 7);
    // Its parameter said to be 100 bytes long in a message that holds 4.
    armed.store(true, Ordering::Relaxed);
    let refused = client
        .query_one("SELECT $1::int4", &[&8i32])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&refused), "08P01", "{refused}");
    let said = refused.as_db_error().map(|e| e.message().to_owned());
    assert!(
        said.as_deref()
            .is_some_and(|m| m.contains("invalid message format") && m.contains("'B'")),
        "{said:?}"
    );
    armed.store(false, Ordering::Relaxed);
    assert!(
        client.simple_query("SELECT 1").await.is_err(),
        "the connection ended: its framing cannot be trusted"
    );
    // Other sessions are served as before.
    let other = connect(addr, "app", "app-token", "main-db").await;
    other.simple_query("SELECT 1").await.unwrap();
}

/// A startup packet for `user` and `database`, by hand.
fn startup(user: &str, database: &str) -> Vec<u8> {
    let mut body = 196_608i32.to_be_bytes().to_vec(); // protocol 3.0
    for (k, v) in [("user", user), ("database", database)] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut packet = (body.len() as i32 + 4).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    packet
}

/// Reads backend messages until an `ErrorResponse` or the end: its
/// SQLSTATE and message, or `None` if the connection ended without one.
async fn error_response(socket: &mut TcpStream) -> Option<(String, String)> {
    use tokio::io::AsyncReadExt;
    loop {
        let mut header = [0u8; 5];
        socket.read_exact(&mut header).await.ok()?;
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let mut body = vec![0u8; len - 4];
        socket.read_exact(&mut body).await.ok()?;
        if header[0] != b'E' {
            continue;
        }
        let mut fields = std::collections::HashMap::new();
        for field in body.split(|b| *b == 0).filter(|f| !f.is_empty()) {
            fields.insert(field[0], String::from_utf8_lossy(&field[1..]).into_owned());
        }
        return Some((fields.remove(&b'C')?, fields.remove(&b'M')?));
    }
}

#[tokio::test]
async fn a_malformed_login_message_is_refused_with_08p01() {
    use tokio::io::AsyncWriteExt;
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let (_gw, addr) = gateway(&pg, &redis).await;
    // A SASL initial response whose data claims 100 bytes and brings 2
    // (pgwire's decoder panicked on it), and a password message whose
    // length does not count itself.
    let mut lying = b"SCRAM-SHA-256\0".to_vec();
    lying.extend_from_slice(&100i32.to_be_bytes());
    lying.extend_from_slice(b"ab");
    let mut sasl = b"p".to_vec();
    sasl.extend_from_slice(&(lying.len() as u32 + 4).to_be_bytes());
    sasl.extend_from_slice(&lying);
    for (message, said) in [
        (sasl, "SASL initial response"),
        (b"p\0\0\0\x03".to_vec(), "less than"),
    ] {
        let mut socket = TcpStream::connect(addr).await.unwrap();
        socket.write_all(&startup("app", "main-db")).await.unwrap();
        socket.write_all(&message).await.unwrap();
        let (code, text) = error_response(&mut socket)
            .await
            .expect("an ErrorResponse, not a dropped connection");
        assert_eq!(code, "08P01", "{text}");
        assert!(text.contains(said), "{text}");
    }
    // Logins go on as before.
    let app = connect(addr, "app", "app-token", "main-db").await;
    app.simple_query("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn bytes_sent_in_the_clear_before_the_tls_handshake_are_refused() {
    use std::collections::BTreeMap;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let dir = tempfile::tempdir().unwrap();
    let principals =
        BTreeMap::from([("app".to_owned(), crate::wire_principal("app-token", false))]);
    let (_gw, addr, certs) = crate::tls_gateway(&pg, &redis, principals, dir.path()).await;

    // An SSLRequest, and in the same write a startup packet in the clear
    // (what a man in the middle would add).
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut sent = 8i32.to_be_bytes().to_vec();
    sent.extend_from_slice(&80_877_103i32.to_be_bytes());
    sent.extend_from_slice(&startup("app", "main-db"));
    tcp.write_all(&sent).await.unwrap();
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"S", "TLS is offered");

    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&certs.ca).unwrap();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut over_tls = connector.connect(name, tcp).await.unwrap();
    // The injected startup is not taken as the TLS client's: the server
    // refuses the connection, saying why, over TLS.
    let mut header = [0u8; 5];
    over_tls.read_exact(&mut header).await.unwrap();
    assert_eq!(header[0], b'E', "an ErrorResponse, not a login");
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    let mut body = vec![0u8; len - 4];
    over_tls.read_exact(&mut body).await.unwrap();
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("08P01"), "{text}");
    assert!(
        text.contains("unencrypted data after SSL request"),
        "{text}"
    );
}
