//! The calls' shared connection to a server that speaks the Redis
//! protocol: the commands of concurrent callers are written together, their
//! replies matched to them in order, and the replies' strings handed out
//! as slices of the bytes read (no copy). Two tasks serve it: one writes
//! what callers queued, one reads replies; a caller queues its command and
//! where its reply goes in one step under one lock, so a caller that goes
//! away (a deadline, a cancel) leaves the order intact and its reply is
//! read and dropped.
//!
//! The `redis` crate's multiplexed connection does the same for the
//! engines' other paths (transactions, recovery, metadata); this one is
//! the hot path's, without its per-call channel, its reply tree of owned
//! vectors or its `combine` parser.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use redis::{ConnectionAddr, ConnectionInfo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use super::Protocol;
use super::frame::{Reply, decode, encode};
use crate::{EngineError, Error, Result};

/// Room kept free in the read buffer before each read.
const READ_CHUNK: usize = 16 * 1024;

/// A handle to the shared connection; clones share it. The connection
/// closes when the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    shared: Arc<Shared>,
    _tasks: Arc<Tasks>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    writer: Notify,
    broken: AtomicBool,
    protocol: Protocol,
    kind: &'static str,
    server: &'static str,
}

#[derive(Debug, Default)]
struct State {
    /// Commands queued and not yet taken by the writer.
    out: BytesMut,
    /// Who waits for the next replies, in the order their commands went.
    waiting: VecDeque<Waiter>,
    /// Why the connection is closed, once it is.
    closed: Option<String>,
}

#[derive(Debug)]
struct Waiter {
    left: usize,
    got: Vec<Reply>,
    reply: oneshot::Sender<std::result::Result<Vec<Reply>, String>>,
}

/// The reader and writer tasks, stopped with the last handle.
#[derive(Debug)]
struct Tasks([JoinHandle<()>; 2]);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Why a connection could not be opened, for the pool front to report.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct OpenError(String);

/// Where and how to connect.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) info: ConnectionInfo,
    /// For a `rediss://` server: the TLS configuration.
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) connect_timeout: Duration,
    pub(crate) protocol: Protocol,
    pub(crate) kind: &'static str,
    pub(crate) server: &'static str,
}

impl Link {
    /// Connects, authenticates and selects the database; fails with the
    /// server's reason (a wrong password, a missing database).
    pub(crate) async fn open(target: &Target) -> std::result::Result<Link, OpenError> {
        let failed = |e: std::io::Error| OpenError(e.to_string());
        let opening = async {
            match target.info.addr() {
                ConnectionAddr::Tcp(host, port) => {
                    let stream = tokio::net::TcpStream::connect((host.as_str(), *port))
                        .await
                        .map_err(failed)?;
                    stream.set_nodelay(true).map_err(failed)?;
                    Link::start(stream, target).await
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
                    let config = target.tls.clone().ok_or_else(|| {
                        OpenError("no TLS configuration for a rediss:// url".into())
                    })?;
                    let name = rustls::pki_types::ServerName::try_from(host.clone())
                        .map_err(|e| OpenError(format!("{host} is not a server name: {e}")))?;
                    let stream = tokio::net::TcpStream::connect((host.as_str(), *port))
                        .await
                        .map_err(failed)?;
                    stream.set_nodelay(true).map_err(failed)?;
                    let stream = tokio_rustls::TlsConnector::from(config)
                        .connect(name, stream)
                        .await
                        .map_err(|e| OpenError(format!("TLS: {e}")))?;
                    Link::start(stream, target).await
                }
                ConnectionAddr::Unix(path) => {
                    let stream = tokio::net::UnixStream::connect(path)
                        .await
                        .map_err(failed)?;
                    Link::start(stream, target).await
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

    /// The handshake on `stream`, then its two tasks.
    async fn start<S>(mut stream: S, target: &Target) -> std::result::Result<Link, OpenError>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let mut buf = handshake(&mut stream, target).await?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            writer: Notify::new(),
            broken: AtomicBool::new(false),
            protocol: target.protocol,
            kind: target.kind,
            server: target.server,
        });
        let (read, write) = tokio::io::split(stream);
        buf.reserve(READ_CHUNK);
        let reader = tokio::spawn(read_replies(Arc::clone(&shared), read, buf));
        let writer = tokio::spawn(write_commands(Arc::clone(&shared), write));
        Ok(Link {
            shared,
            _tasks: Arc::new(Tasks([reader, writer])),
        })
    }

    /// Whether the connection closed (the server went away, or spoke
    /// something else than the protocol): a new one is needed.
    pub(crate) fn is_broken(&self) -> bool {
        self.shared.broken.load(Ordering::Relaxed)
    }

    /// Sends `commands` (their arguments) and waits for their replies, in
    /// order: several commands go as one pipeline.
    pub(crate) async fn call(&self, commands: &[&[Bytes]]) -> Result<Vec<Reply>> {
        let (reply, replied) = oneshot::channel();
        {
            let mut state = self.shared.lock();
            if let Some(why) = &state.closed {
                return Err(self.shared.closed(why));
            }
            let was_empty = state.out.is_empty();
            for args in commands {
                encode(&mut state.out, args);
            }
            state.waiting.push_back(Waiter {
                left: commands.len(),
                got: Vec::with_capacity(commands.len()),
                reply,
            });
            if was_empty {
                self.shared.writer.notify_one();
            }
        }
        match replied.await {
            Ok(Ok(replies)) => Ok(replies),
            Ok(Err(why)) => Err(self.shared.closed(&why)),
            Err(_) => Err(self.shared.closed("the connection was dropped")),
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn closed(&self, why: &str) -> Error {
        Error::Unavailable(EngineError::new(
            self.kind,
            None,
            format!("cannot talk to {}: {why}", self.server),
        ))
    }

    /// Marks the connection closed and fails every caller waiting on it.
    fn close(&self, why: String) {
        self.broken.store(true, Ordering::Relaxed);
        let mut state = self.lock();
        for waiter in state.waiting.drain(..) {
            let _ = waiter.reply.send(Err(why.clone()));
        }
        state.closed.get_or_insert(why);
        drop(state);
        self.writer.notify_one();
    }

    /// Hands `replies` to their callers, in order. A reply nobody waits
    /// for means the two sides disagree: the connection is closed.
    fn deliver(&self, replies: &mut Vec<Reply>) {
        let mut state = self.lock();
        for reply in replies.drain(..) {
            if reply.is_push() {
                continue;
            }
            let Some(waiter) = state.waiting.front_mut() else {
                drop(state);
                self.close("the server sent a reply to no command".into());
                return;
            };
            waiter.got.push(reply);
            waiter.left -= 1;
            if waiter.left == 0
                && let Some(done) = state.waiting.pop_front()
            {
                // A caller that went away no longer listens: its reply is
                // dropped here.
                let _ = done.reply.send(Ok(done.got));
            }
        }
    }
}

/// The writer: takes what callers queued, all of it, and writes it.
async fn write_commands<W: AsyncWrite + Unpin>(shared: Arc<Shared>, mut write: W) {
    let mut out = BytesMut::with_capacity(READ_CHUNK);
    loop {
        {
            let mut state = shared.lock();
            if state.closed.is_some() {
                return;
            }
            std::mem::swap(&mut state.out, &mut out);
        }
        if out.is_empty() {
            shared.writer.notified().await;
            continue;
        }
        let written = async {
            write.write_all(&out).await?;
            write.flush().await
        };
        if let Err(e) = written.await {
            shared.close(e.to_string());
            return;
        }
        out.clear();
        if out.capacity() > 64 * READ_CHUNK {
            // A large pipeline passed: do not keep its buffer.
            out = BytesMut::with_capacity(READ_CHUNK);
        }
    }
}

/// The reader: reads replies and hands each to its caller.
async fn read_replies<R: AsyncRead + Unpin>(shared: Arc<Shared>, mut read: R, mut buf: BytesMut) {
    let mut replies = Vec::new();
    loop {
        loop {
            match decode(shared.protocol, &mut buf) {
                Ok(Some(reply)) => replies.push(reply),
                Ok(None) => break,
                Err(e) => {
                    shared.close(format!(
                        "the server's reply is not the Redis protocol ({e})"
                    ));
                    return;
                }
            }
        }
        if !replies.is_empty() {
            shared.deliver(&mut replies);
            if shared.broken.load(Ordering::Relaxed) {
                return;
            }
        }
        // Room for the next read; a reply larger than that doubles it, so
        // a large reply is parsed again only a few times as it arrives.
        let room = READ_CHUNK.max(buf.len());
        if buf.capacity() - buf.len() < room / 4 {
            buf.reserve(room);
        }
        match read.read_buf(&mut buf).await {
            Ok(0) => {
                shared.close("the server closed the connection".into());
                return;
            }
            Ok(_) => {}
            Err(e) => {
                shared.close(e.to_string());
                return;
            }
        }
    }
}

/// `HELLO 3` (with the credentials) or `AUTH`, `SELECT` when the database
/// is not 0, and a `PING`, pipelined; fails with the first error reply.
/// What was read past the replies is kept for the reader.
async fn handshake<S>(stream: &mut S, target: &Target) -> std::result::Result<BytesMut, OpenError>
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
    let broken = OpenError;
    stream
        .write_all(&out)
        .await
        .map_err(|e| broken(e.to_string()))?;
    stream.flush().await.map_err(|e| broken(e.to_string()))?;
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut answered = 0;
    while answered < commands.len() {
        match decode(target.protocol, &mut buf) {
            Ok(Some(reply)) if reply.is_push() => {}
            Ok(Some(reply)) => {
                reply
                    .into_value(target.kind, false)
                    .map_err(|e| OpenError(format!("the server refused the handshake: {e}")))?;
                answered += 1;
            }
            Ok(None) => {
                if stream
                    .read_buf(&mut buf)
                    .await
                    .map_err(|e| broken(e.to_string()))?
                    == 0
                {
                    return Err(broken("the server closed the connection".into()));
                }
            }
            Err(e) => return Err(broken(format!("not the Redis protocol ({e})"))),
        }
    }
    Ok(buf)
}
