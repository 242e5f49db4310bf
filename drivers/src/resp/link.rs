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

use bytes::{Bytes, BytesMut};
use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::io::{poll_read_buf, poll_write_buf};

use super::connect::Target;
use super::frame::{Framer, Reply, encode};
use crate::{EngineError, Error, Result};

/// Room kept free in the read buffer before each read.
pub(super) const READ_CHUNK: usize = 16 * 1024;

/// Bytes of commands that may wait to be written: past this the server
/// is not keeping up, and a call fails at once instead of queuing more.
const MAX_QUEUED: usize = 64 * 1024 * 1024;

/// Bytes of commands the task takes for one write (a larger command is
/// taken alone).
const TAKE_AT_ONCE: usize = 256 * 1024;

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
    kind: &'static str,
    server: &'static str,
}

#[derive(Debug, Default)]
struct State {
    /// Commands queued and not yet taken by the connection's task.
    out: BytesMut,
    /// Who waits for the next replies, in the order their commands went.
    waiting: VecDeque<Waiter>,
    /// How many of `waiting`, at its back, have their commands in `out`.
    unsent: usize,
    /// Why the connection is closed, once it is.
    closed: Option<String>,
}

#[derive(Debug)]
struct Waiter {
    /// Replies still to come.
    left: usize,
    got: Vec<Reply>,
    /// The bytes of its commands (in `out` while unsent).
    len: usize,
    reply: oneshot::Sender<Outcome>,
}

/// What a waiter gets: its replies, or why the connection closed.
type Outcome = std::result::Result<Vec<Reply>, String>;

impl State {
    /// Takes queued commands for writing: at most [`TAKE_AT_ONCE`] bytes
    /// of them (one command at least), so that under a stall most of
    /// what waits is still here; and none of callers that went away
    /// before their commands were taken (a deadline passed while the
    /// server was slow): sending those late would apply what the caller
    /// was told had failed, and its retry would apply it twice. An error
    /// when the queue's books do not add up (the link must close: a
    /// waiter without its command would take another caller's reply).
    fn take_out(&mut self, into: &mut BytesMut) -> std::result::Result<(), &'static str> {
        let first = self
            .waiting
            .len()
            .checked_sub(self.unsent)
            .ok_or("more commands unsent than callers waiting")?;
        let gone = self.waiting.range(first..).any(|w| w.reply.is_closed());
        if !gone && self.out.len() <= TAKE_AT_ONCE {
            self.unsent = 0;
            std::mem::swap(&mut self.out, into);
            return Ok(());
        }
        // One pass: the unsent waiters in order, each taken, left queued
        // or dropped with its bytes.
        let unsent = self.waiting.split_off(first);
        let queued = std::mem::take(&mut self.out);
        let mut offset = 0;
        let mut left = VecDeque::new();
        for waiter in unsent {
            let end = offset + waiter.len;
            let bytes = queued
                .get(offset..end)
                .ok_or("a command's bytes are missing")?;
            offset = end;
            if waiter.reply.is_closed() {
                continue;
            }
            if into.is_empty() || (left.is_empty() && into.len() + bytes.len() <= TAKE_AT_ONCE) {
                into.extend_from_slice(bytes);
                self.waiting.push_back(waiter);
            } else {
                self.out.extend_from_slice(bytes);
                left.push_back(waiter);
            }
        }
        if offset != queued.len() {
            return Err("bytes queued for no command");
        }
        self.unsent = left.len();
        self.waiting.extend(left);
        Ok(())
    }
}

/// The connection's task, stopped with the last handle.
#[derive(Debug)]
struct Tasks(JoinHandle<()>);

impl Drop for Tasks {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Link {
    /// The link over `stream`, past its handshake (`read`: what the
    /// handshake read past its replies), and its task.
    pub(super) fn start<S>(stream: S, read: BytesMut, target: &Target) -> Link
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            task: AtomicWaker::new(),
            broken: AtomicBool::new(false),
            kind: target.kind,
            server: target.server,
        });
        let mut driver = Driver {
            shared: Arc::clone(&shared),
            stream,
            out: BytesMut::with_capacity(READ_CHUNK),
            unflushed: false,
            read,
            framer: Framer::new(target.protocol),
            replies: Vec::new(),
        };
        // However the task ends (the link dropped, the connection failed,
        // a panic), dropping the driver closes the link and fails its
        // waiters: none waits for ever.
        let task = tokio::spawn(async move {
            if let Err(why) = std::future::poll_fn(|cx| driver.poll_drive(cx)).await {
                driver.shared.close(why);
            }
        });
        Link {
            shared,
            _tasks: Arc::new(Tasks(task)),
        }
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
            if state.out.len() > MAX_QUEUED {
                return Err(Error::Overloaded(EngineError::new(
                    self.shared.kind,
                    None,
                    format!(
                        "more than {} MiB of commands wait to be written to {}: it is not \
                         keeping up; retry later",
                        MAX_QUEUED >> 20,
                        self.shared.server
                    ),
                )));
            }
            let before = state.out.len();
            for args in commands {
                encode(&mut state.out, args);
            }
            let len = state.out.len() - before;
            state.waiting.push_back(Waiter {
                left: commands.len(),
                got: Vec::with_capacity(commands.len()),
                len,
                reply,
            });
            state.unsent += 1;
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
        state.unsent = 0;
        state.out.clear();
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
            // Only a caller whose command was written can have a reply.
            if state.waiting.len() <= state.unsent {
                drop(state);
                self.close("the server sent a reply to no command".into());
                return;
            }
            let Some(waiter) = state.waiting.front_mut() else {
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
    /// Where the reply being read ends, as far as it has arrived.
    framer: Framer,
    /// Replies read in one go, handed out together.
    replies: Vec<Reply>,
}

impl<S> Drop for Driver<S> {
    fn drop(&mut self) {
        // (A no-op when the connection's failure closed it already.)
        self.shared.close("the connection's task stopped".into());
    }
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
        loop {
            let mut left_queued = false;
            if self.out.is_empty() {
                // Registered before looking, so a caller queuing after the
                // look wakes this task.
                self.shared.task.register(cx.waker());
                let mut state = self.shared.lock();
                state
                    .take_out(&mut self.out)
                    .map_err(|why| format!("the link lost count of its commands ({why})"))?;
                left_queued = state.unsent > 0;
            }
            while !self.out.is_empty() {
                match poll_write_buf(Pin::new(&mut self.stream), cx, &mut self.out) {
                    Poll::Ready(Ok(0)) => {
                        return Err("the connection closed while writing".into());
                    }
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
            // A take holds at most TAKE_AT_ONCE: what it left waits for no
            // caller's wake-up (the queue was not empty when they came).
            if !left_queued {
                return Ok(());
            }
        }
    }

    /// Reads what arrived and hands out the whole replies in it; whether
    /// anything was read.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> std::result::Result<bool, String> {
        if self.read.is_empty() && self.read.capacity() > 64 * READ_CHUNK {
            // A large reply passed: do not keep its buffer.
            self.read = BytesMut::new();
        }
        // Room for the next read, growing with a large reply so that it
        // arrives in few reads (the framer resumes where it stopped).
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
        while let Some(reply) = self
            .framer
            .next(&mut self.read)
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

#[cfg(test)]
#[path = "link_tests.rs"]
mod tests;
