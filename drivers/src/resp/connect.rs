//! Opening a link (`link.rs`): connecting over TCP, TLS or a Unix socket,
//! then the handshake (credentials, protocol, database).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use redis::{ConnectionAddr, ConnectionInfo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Protocol;
use super::frame::{Framer, encode};
use super::link::{Link, READ_CHUNK};

/// Why a connection could not be opened, for the pool front to report.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub(crate) struct OpenError(String);

impl OpenError {
    /// An opening that failed for `why`.
    pub(crate) fn new(why: String) -> OpenError {
        OpenError(why)
    }
}

impl From<std::io::Error> for OpenError {
    fn from(e: std::io::Error) -> OpenError {
        OpenError(e.to_string())
    }
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The server's address, credentials and database.
    pub(crate) info: ConnectionInfo,
    /// For a `rediss://` server: the TLS configuration.
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    /// How long connecting and the handshake may take.
    pub(crate) connect_timeout: Duration,
    /// The protocol replies come in.
    pub(crate) protocol: Protocol,
    /// The engine kind and the server's name, for errors.
    pub(crate) kind: &'static str,
    /// The server's name, for errors ("Redis").
    pub(crate) server: &'static str,
}

/// Connects, authenticates and selects the database; fails with the
/// server's reason (a wrong password, a missing database).
pub(crate) async fn open(target: &Target) -> Result<Link, OpenError> {
    let opening = async {
        match target.info.addr() {
            ConnectionAddr::Tcp(host, port) => {
                // Nagle's algorithm stays on, as the redis crate leaves
                // it: each write holds whole commands, and while a lot
                // is in flight the kernel gathers the next writes into
                // one segment, which on loopback costs this process and
                // the server a wake-up less each (measured: with
                // TCP_NODELAY a GET cost 2-3 µs more CPU at 16 tasks).
                let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                start(stream, target).await
            }
            ConnectionAddr::TcpTls {
                host,
                port,
                insecure,
                ..
            } => {
                if *insecure {
                    return Err(OpenError(
                        "a rediss:// url with #insecure is not supported: trust the \
                         server's CA with ca_file instead"
                            .into(),
                    ));
                }
                let config = target
                    .tls
                    .clone()
                    .ok_or_else(|| OpenError("no TLS configuration for a rediss:// url".into()))?;
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| OpenError(format!("{host} is not a server name: {e}")))?;
                let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                let stream = tokio_rustls::TlsConnector::from(config)
                    .connect(name, stream)
                    .await
                    .map_err(|e| OpenError(format!("TLS: {e}")))?;
                start(stream, target).await
            }
            ConnectionAddr::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path).await?;
                start(stream, target).await
            }
            other => Err(OpenError(format!(
                "{other} is not an address to connect to"
            ))),
        }
    };
    tokio::time::timeout(target.connect_timeout, opening)
        .await
        .unwrap_or_else(|_| {
            Err(OpenError(format!(
                "no answer within {:?}",
                target.connect_timeout
            )))
        })
}

/// The handshake on `stream`, then the link over it.
async fn start<S>(mut stream: S, target: &Target) -> Result<Link, OpenError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let read = handshake(&mut stream, target).await?;
    Ok(Link::start(stream, read, target))
}

/// `HELLO 3` (with the credentials) or `AUTH`, `SELECT` when the database
/// is not 0, and a `PING`, pipelined; fails with the first error reply.
/// What was read past the replies is kept for the reader.
async fn handshake<S>(stream: &mut S, target: &Target) -> Result<BytesMut, OpenError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let settings = target.info.redis_settings();
    let text = |s: &str| Bytes::copy_from_slice(s.as_bytes());
    let mut commands: Vec<Vec<Bytes>> = Vec::new();
    let password = settings.password();
    match target.protocol {
        Protocol::Resp3 => {
            let mut hello = vec![text("HELLO"), text("3")];
            if let Some(password) = password {
                let user = settings.username().unwrap_or("default");
                hello.extend([text("AUTH"), text(user), text(password)]);
            }
            commands.push(hello);
        }
        // Without a user name, the one-argument AUTH older servers know.
        Protocol::Resp2 => {
            if let Some(password) = password {
                let mut auth = vec![text("AUTH")];
                auth.extend(settings.username().map(text));
                auth.push(text(password));
                commands.push(auth);
            }
        }
    }
    if settings.db() != 0 {
        commands.push(vec![text("SELECT"), text(&settings.db().to_string())]);
    }
    commands.push(vec![text("PING")]);
    let mut out = BytesMut::new();
    for args in &commands {
        encode(&mut out, args);
    }
    stream.write_all(&out).await?;
    stream.flush().await?;
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut framer = Framer::new(target.protocol);
    let mut answered = 0;
    while answered < commands.len() {
        match framer.next(&mut buf) {
            Ok(Some(reply)) if reply.is_push() => {}
            Ok(Some(reply)) => {
                reply
                    .into_value(target.kind, false)
                    .map_err(|e| OpenError(format!("the server refused the handshake: {e}")))?;
                answered += 1;
            }
            Ok(None) => {
                if stream.read_buf(&mut buf).await? == 0 {
                    return Err(OpenError("the server closed the connection".into()));
                }
            }
            Err(e) => return Err(OpenError(format!("not the Redis protocol ({e})"))),
        }
    }
    Ok(buf)
}
