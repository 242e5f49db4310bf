//! One client connection: commands are read as they come, the ones
//! already buffered together (a pipeline) taken as one lot; the front
//! end's own commands run here, in order, and each run of consecutive
//! engine commands between them goes to the core as one batch (one
//! pipelined round trip on Redis). Replies are written in order, gathered
//! into writes of up to 64 KiB, then flushed once per lot.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::{FutureExt, SinkExt, StreamExt};
use omnigate::drivers::{Error as DriverError, ExecuteOptions, ResultSet, Statement, Value};
use omnigate::{BatchRequest, Error, Gateway, Request};
use tokio_util::codec::Framed;

use super::codec::{Outgoing, ProtocolError, RespCodec};
use super::encode::{self, Reply};
use super::errors;
use super::session::Session;
use super::shape::Shape;
use crate::idle::Activity;

/// Commands taken as one lot at most, however many are buffered.
const MAX_LOT: usize = 512;

/// Replies of one lot gathered into one write, up to this many bytes (a
/// pipeline of 10 KB values is then a few writes, not one per reply).
const WRITE_BATCH: usize = 64 << 10;

/// A buffer a large request or reply grew past this is let go of once
/// it is read or written, so an idle connection does not keep it.
const KEPT_BUFFER: usize = 2 * WRITE_BATCH;

/// The room a let-go buffer starts again with (the framed reader's and
/// writer's own first room).
const FRESH_BUFFER: usize = 8 << 10;

/// Lets go of an emptied buffer that a large request or reply grew past
/// [`KEPT_BUFFER`]; a smaller one is kept for the next ones.
fn let_go_if_large(buffer: &mut BytesMut) {
    if buffer.is_empty() && buffer.capacity() > KEPT_BUFFER {
        *buffer = BytesMut::with_capacity(FRESH_BUFFER);
    }
}

/// How long after connecting a client may go without authenticating
/// (when the gateway has principals) before it is closed.
const AUTH_WITHIN: Duration = Duration::from_secs(60);

/// What every connection of the listener shares.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) gateway: Gateway,
    /// The engine every command runs on.
    pub(super) target: String,
    pub(super) idle_timeout: Duration,
    /// `omnigate_frontend_statements_total{frontend="redis"}`.
    pub(super) counted: crate::connections::StatementCounters,
}

/// A connection's state while it is served.
pub(super) struct Connection {
    pub(super) shared: Arc<Shared>,
    pub(super) session: Session,
}

/// Whether the connection goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    Continue,
    /// `QUIT`: close once the reply is written.
    Close,
}

impl Connection {
    /// Serves the client until it leaves, is idle past the idle timeout
    /// (waiting for a request, or not reading its replies: a command
    /// running is not idleness), sends what is not a request, or `QUIT`s;
    /// then ends what the session leaves open.
    pub(super) async fn serve<S>(mut self, socket: S)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        // One timer per idle period, not one per request.
        let activity = Activity::default();
        let (peer, idle) = (self.session.peer, self.shared.idle_timeout);
        tokio::select! {
            () = self.serve_requests(socket, &activity) => {}
            () = activity.idle(idle) => {
                tracing::debug!(%peer, "Redis client idle past idle_timeout (no request, or its replies not read): closed");
            }
        }
        self.abandon_tx().await;
    }

    /// [`Connection::serve`]'s requests and replies.
    async fn serve_requests<S>(&mut self, socket: S, activity: &Activity)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let mut framed = Framed::new(socket, RespCodec::default());
        framed.set_backpressure_boundary(WRITE_BATCH);
        let connected = Instant::now();
        loop {
            let authenticated = self.session.authenticated(&self.shared.gateway);
            framed.codec_mut().authenticated = authenticated;
            let first = if authenticated {
                framed.next().await
            } else {
                // A client that has not authenticated holds a connection
                // slot for AUTH_WITHIN from its connect at most, whatever
                // it sends (requests that get no reply, such as empty
                // lines, included).
                // (A timeout of zero would still take a request that is
                // already buffered: none is read once the time is up.)
                let left = AUTH_WITHIN.saturating_sub(connected.elapsed());
                let read = if left.is_zero() {
                    None
                } else {
                    tokio::time::timeout(left, framed.next()).await.ok()
                };
                let Some(read) = read else {
                    tracing::debug!(peer = %self.session.peer, "Redis client did not authenticate in time: closed");
                    break;
                };
                read
            };
            let Some(first) = first else { break };
            let mut lot = Vec::new();
            let mut ending: Option<ProtocolError> = None;
            match first {
                Ok(command) => lot.push(command),
                Err(e) => ending = Some(e),
            }
            // What else is buffered already: a pipeline. Before AUTH one
            // command at a time, so the command after AUTH is read with
            // the limits of an authenticated client.
            while authenticated && ending.is_none() && lot.len() < MAX_LOT {
                match framed.next().now_or_never() {
                    Some(Some(Ok(command))) => lot.push(command),
                    Some(Some(Err(e))) => ending = Some(e),
                    Some(None) | None => break,
                }
            }
            let busy = activity.busy();
            let (mut replies, flow) = if self.session.refresh(&self.shared.gateway) {
                self.run(lot).await
            } else {
                // Revoked or changed (a reload of the tokens): the session
                // ends, and the transaction it was queuing with it.
                let revoked = Reply::error(
                    "NOAUTH the credentials this connection authenticated with were revoked \
                     or changed: connect and AUTH again",
                );
                (vec![self.outgoing(revoked)], Flow::Close)
            };
            drop(busy);
            if let Some(reply) = ending.as_ref().and_then(ProtocolError::reply) {
                replies.push(self.outgoing(reply));
            }
            // A client that does not read its replies is idle: closed
            // after idle_timeout, with what it holds.
            let written = async {
                for reply in replies {
                    framed.feed(reply).await?;
                }
                framed.flush().await
            };
            if let Err(e) = written.await {
                tracing::debug!(peer = %self.session.peer, error = %e, "writing to a Redis client failed");
                break;
            }
            activity.touch();
            let_go_if_large(framed.write_buffer_mut());
            let_go_if_large(framed.read_buffer_mut());
            if let Some(e) = ending {
                tracing::debug!(peer = %self.session.peer, error = %e, "Redis client sent what is not a request: closed");
                break;
            }
            if flow == Flow::Close {
                break;
            }
        }
    }

    /// What `EXEC`'s replies may take: the server's `max_response_bytes`.
    pub(super) fn max_queued(&self) -> u64 {
        self.shared.gateway.limits().max_response_bytes
    }

    /// `reply` in the session's protocol.
    fn outgoing(&self, reply: Reply) -> Outgoing {
        Outgoing {
            protocol: self.session.protocol,
            reply,
        }
    }

    /// Runs a lot of commands in order; their replies, and whether to
    /// close after them.
    async fn run(&mut self, lot: Vec<Vec<Bytes>>) -> (Vec<Outgoing>, Flow) {
        let mut out = Vec::with_capacity(lot.len());
        let mut pending: Vec<Vec<Bytes>> = Vec::new();
        for args in lot {
            if args.is_empty() {
                continue; // Redis ignores an empty request.
            }
            let name = super::commands::name(&args[0]);
            if self.is_engine_command(&name, &args) {
                pending.push(args);
                continue;
            }
            self.run_engine(std::mem::take(&mut pending), &mut out)
                .await;
            let (reply, flow) = self.local(&name, args).await;
            out.push(Outgoing {
                protocol: self.session.protocol,
                reply,
            });
            if flow == Flow::Close {
                return (out, Flow::Close);
            }
        }
        self.run_engine(pending, &mut out).await;
        (out, Flow::Continue)
    }

    /// Runs engine commands, one call for one command, one batch for
    /// several; queued for `EXEC` when the session is in `MULTI`.
    async fn run_engine(&mut self, mut commands: Vec<Vec<Bytes>>, out: &mut Vec<Outgoing>) {
        let protocol = self.session.protocol;
        let shapes: Vec<Shape> = commands.iter().map(|c| Shape::of(protocol, c)).collect();
        let replies = match commands.len() {
            0 => return,
            1 => vec![self.execute(commands.remove(0)).await],
            _ => self.execute_batch(commands).await,
        };
        for (reply, shape) in replies.into_iter().zip(shapes) {
            let reply = shape.apply(reply);
            let reply = if self.session.queuing() {
                self.session.queue(reply, shape, self.max_queued())
            } else {
                reply
            };
            out.push(Outgoing {
                protocol: self.session.protocol,
                reply,
            });
        }
    }

    /// The options of every engine call: bulk strings stay bytes, so a
    /// reply tells a bulk string from a status and binary values survive.
    fn options() -> ExecuteOptions {
        ExecuteOptions {
            raw_bytes: true,
            ..ExecuteOptions::default()
        }
    }

    /// Runs one command through the core's one route.
    async fn execute(&self, args: Vec<Bytes>) -> Reply {
        let Statement { text, params, .. } = statement(args);
        let request = Request {
            dialect: "redis".into(),
            statement: text,
            params,
            target: Some(self.shared.target.clone()),
            options: Self::options(),
            context: self.session.context(),
            ..Request::default()
        };
        let counting = self.shared.counted.start();
        let executed = self.shared.gateway.execute(request).await;
        counting.finish(executed.is_ok());
        match executed {
            Ok(response) => reply_of(response.result),
            Err(e) => errors::reply(&e),
        }
    }

    /// Runs several commands as one batch. When the core refuses the
    /// batch as a whole before running any of it (a statement rule or the
    /// caller's read-only grant denies one command), the commands run one
    /// by one so that each gets its own reply; when it fails otherwise
    /// (the engine timed out or went away), each command gets that error.
    async fn execute_batch(&self, commands: Vec<Vec<Bytes>>) -> Vec<Reply> {
        let request = BatchRequest {
            dialect: "redis".into(),
            statements: commands.iter().cloned().map(statement).collect(),
            target: Some(self.shared.target.clone()),
            options: Self::options(),
            context: self.session.context(),
        };
        match self.shared.gateway.execute_batch(request).await {
            Ok(response) => response
                .results
                .into_iter()
                .map(|result| {
                    self.shared.counted.count(result.is_ok());
                    match result {
                        Ok(result) => reply_of(result),
                        Err(e) => errors::reply(&Error::Driver(e)),
                    }
                })
                .collect(),
            Err(e) if refused_before_running(&e) => {
                let mut replies = Vec::with_capacity(commands.len());
                for args in commands {
                    replies.push(self.execute(args).await);
                }
                replies
            }
            Err(e) => {
                for _ in &commands {
                    self.shared.counted.count(false);
                }
                vec![errors::reply(&e); commands.len()]
            }
        }
    }

    /// When the client is gone or `RESET`s: a transaction it was queuing
    /// (`MULTI` without `EXEC`) is rolled back, whether begun here or
    /// joined (its commands are in it); one it joined and did not queue in
    /// is left to whoever began it.
    pub(super) async fn abandon_tx(&mut self) {
        if let Some(tx) = self.session.tx.take()
            && tx.queuing
        {
            let context = self.session.context();
            if let Err(e) = self.shared.gateway.rollback(&context, &tx.id).await {
                tracing::debug!(error = %e, "rolling back a gone Redis client's transaction");
            }
        }
    }
}

/// Whether the core refused a batch before any of it ran.
fn refused_before_running(err: &Error) -> bool {
    matches!(
        err,
        Error::PermissionDenied { .. }
            | Error::GatewayState { .. }
            | Error::BadParameter { .. }
            | Error::Driver(
                DriverError::PermissionDenied(_)
                    | DriverError::ReadOnly(_)
                    | DriverError::InvalidParameter { .. }
                    | DriverError::InvalidStatement(_)
            )
    )
}

/// A command as a statement of the redis dialect: its name as written
/// when it is a plain word (so rules, logs and traces show it), every
/// argument a parameter (`$1`...): bound whole, binary-safe, never parsed
/// as text.
pub(super) fn statement(args: Vec<Bytes>) -> Statement {
    let plain = args.first().is_some_and(|name| {
        name.len() <= 64
            && name
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'|' | b':'))
    });
    let mut args = args.into_iter();
    let mut text = String::with_capacity(8 + args.len() * 4);
    if plain && let Some(name) = args.next() {
        text.push_str(&String::from_utf8_lossy(&name));
    }
    let params: Vec<Value> = args.map(Value::Bytes).collect();
    for i in 1..=params.len() {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push('$');
        text.push_str(&i.to_string());
    }
    Statement {
        text,
        params,
        named: Vec::new(),
    }
}

/// The reply an engine's result holds (one row of one value).
fn reply_of(result: ResultSet) -> Reply {
    if result.is_queued() {
        return Reply::Queued;
    }
    encode::value(result.into_scalar())
}

#[cfg(test)]
mod tests {
    use super::*;
    use omnigate::drivers::redis_syntax::parse_command;

    #[test]
    fn commands_become_statements_that_parse_back_to_them() {
        let args = vec![
            Bytes::from_static(b"SET"),
            Bytes::from_static(b"k y"),
            Bytes::from_static(b"\"$1\" \r\n\0\xff"),
        ];
        let s = statement(args.clone());
        assert_eq!(s.text, "SET $1 $2");
        assert_eq!(parse_command(&s.text, &s.params, "t").unwrap(), args);
        // A name that is not a plain word is bound too.
        let odd = vec![Bytes::from_static(b"G\"ET"), Bytes::from_static(b"k")];
        let s = statement(odd.clone());
        assert_eq!(s.text, "$1 $2");
        assert_eq!(parse_command(&s.text, &s.params, "t").unwrap(), odd);
        assert_eq!(statement(vec![Bytes::from_static(b"PING")]).text, "PING");
    }

    #[test]
    fn a_buffer_a_large_request_or_reply_grew_is_let_go_once_emptied() {
        let mut small = BytesMut::with_capacity(WRITE_BATCH);
        let_go_if_large(&mut small);
        assert_eq!(small.capacity(), WRITE_BATCH, "kept for the next replies");
        let mut large = BytesMut::with_capacity(4 << 20);
        large.extend_from_slice(b"+OK\r\n");
        let_go_if_large(&mut large);
        assert!(large.capacity() >= 4 << 20, "not while it holds a reply");
        large.clear();
        let_go_if_large(&mut large);
        assert_eq!(large.capacity(), FRESH_BUFFER);
    }
}
