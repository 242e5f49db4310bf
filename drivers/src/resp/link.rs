//! The calls' shared connection to a server that speaks the Redis
//! protocol: the commands of concurrent callers are written together, their
//! replies matched to them in order, and the replies' strings handed out
//! as slices of the bytes read (no copy). One task serves it, writing
//! what callers queued and reading replies in turn, so that commands
//! queued while it reads go out together in one write. A caller queues its
//! command and where its reply goes in one step under one lock, so a
//! caller that goes away (a deadline, a cancel) leaves the order intact
//! and its reply is read and dropped.
//!
//! The `redis` crate's multiplexed connection does the same for the
//! engines' other paths (transactions, recovery, metadata); this one is
//! the hot path's, without its per-call channel, its reply tree of owned
//! vectors or its `combine` parser.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::task::AtomicWaker;
use redis::{ConnectionAddr, ConnectionInfo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::io::{poll_read_buf, poll_write_buf};

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
    /// Wakes the connection's task when commands are queued.
    task: AtomicWaker,
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

/// The connection's task, stopped with the last handle.
#[derive(Debug)]
struct Tasks(JoinHandle<()>);

impl Drop for Tasks {
    fn drop(&mut self) {
        self.0.abort();
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
                    // Nagle's algorithm stays on, as the redis crate leaves
                    // it: each write holds whole commands, and while a lot
                    // is in flight the kernel gathers the next writes into
                    // one segment, which on loopback costs this process and
                    // the server a wake-up less each (measured: with
                    // TCP_NODELAY a GET cost 2-3 µs more CPU at 16 tasks).
                    let stream = tokio::net::TcpStream::connect((host.as_str(), *port))
                        .await
                        .map_err(failed)?;
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

    /// The handshake on `stream`, then its task.
    async fn start<S>(mut stream: S, target: &Target) -> std::result::Result<Link, OpenError>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let read = handshake(&mut stream, target).await?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            task: AtomicWaker::new(),
            broken: AtomicBool::new(false),
            protocol: target.protocol,
            kind: target.kind,
            server: target.server,
        });
        let mut driver = Driver {
            shared: Arc::clone(&shared),
            stream,
            out: BytesMut::with_capacity(READ_CHUNK),
            unflushed: false,
            read,
            replies: Vec::new(),
        };
        let task = tokio::spawn(async move {
            if let Err(why) = std::future::poll_fn(|cx| driver.poll_drive(cx)).await {
                driver.shared.close(why);
            }
        });
        Ok(Link {
            shared,
            _tasks: Arc::new(Tasks(task)),
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
        if commands.is_empty() {
            // A waiter for no reply would take the next caller's.
            return Ok(Vec::new());
        }
        if commands.iter().any(|args| args.is_empty()) {
            // The server answers nothing to an empty command: its waiter
            // would take the next caller's reply.
            return Err(Error::InvalidStatement(EngineError::new(
                self.shared.kind,
                None,
                "an empty command",
            )));
        }
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
                self.shared.task.wake();
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
        self.task.wake();
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

/// The connection's task: writes what callers queued, reads replies and
/// hands them out, until the connection or the link closes.
struct Driver<S> {
    shared: Arc<Shared>,
    stream: S,
    /// Commands being written.
    out: BytesMut,
    /// Written, not yet flushed (TLS keeps a record until flushed).
    unflushed: bool,
    /// Bytes read and not yet a whole reply.
    read: BytesMut,
    /// Replies read in one go, handed out together.
    replies: Vec<Reply>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Driver<S> {
    /// Ready with `Ok` when the link closed, with why when the connection
    /// failed.
    ///
    /// Each turn reads and hands out what arrived, then writes what is
    /// queued, and yields unless it read something: the callers it woke
    /// run and queue their next commands before it writes again, so those
    /// go out together (a write per command would cost the server a read
    /// each, and this process a system call each).
    fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), String>> {
        loop {
            let read = self.poll_read(cx)?;
            if self.shared.broken.load(Ordering::Relaxed) {
                return Poll::Ready(Ok(()));
            }
            self.poll_write(cx)?;
            if !read {
                return Poll::Pending;
            }
        }
    }

    /// Writes what callers queued, once the last lot is out.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> std::result::Result<(), String> {
        if self.out.is_empty() {
            // Registered before looking, so a caller queuing after the look
            // wakes this task.
            self.shared.task.register(cx.waker());
            std::mem::swap(&mut self.shared.lock().out, &mut self.out);
        }
        while !self.out.is_empty() {
            match poll_write_buf(Pin::new(&mut self.stream), cx, &mut self.out) {
                Poll::Ready(Ok(0)) => return Err("the connection closed while writing".into()),
                Poll::Ready(Ok(_)) => self.unflushed = true,
                Poll::Ready(Err(e)) => return Err(e.to_string()),
                Poll::Pending => return Ok(()),
            }
        }
        if self.unflushed {
            match Pin::new(&mut self.stream).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(e)) => return Err(e.to_string()),
                Poll::Pending => {}
            }
        }
        if self.out.capacity() > 64 * READ_CHUNK {
            // A large pipeline passed: do not keep its buffer.
            self.out = BytesMut::with_capacity(READ_CHUNK);
        }
        Ok(())
    }

    /// Reads what arrived and hands out the whole replies in it; whether
    /// anything was read.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> std::result::Result<bool, String> {
        // Room for the next read; a reply larger than that doubles it, so
        // a large reply is parsed again only a few times as it arrives.
        let room = READ_CHUNK.max(self.read.len());
        if self.read.capacity() - self.read.len() < room / 4 {
            self.read.reserve(room);
        }
        let polled = poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.read);
        match polled {
            Poll::Pending => return Ok(false),
            Poll::Ready(Ok(0)) => return Err("the server closed the connection".into()),
            Poll::Ready(Ok(_)) => {}
            Poll::Ready(Err(e)) => return Err(e.to_string()),
        }
        while let Some(reply) = decode(self.shared.protocol, &mut self.read)
            .map_err(|e| format!("the server's reply is not the Redis protocol ({e})"))?
        {
            self.replies.push(reply);
        }
        if !self.replies.is_empty() {
            self.shared.deliver(&mut self.replies);
        }
        Ok(true)
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
