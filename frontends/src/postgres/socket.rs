//! A client's connection under pgwire, served by this front end's own copy
//! of pgwire's message loop (`pgwire::tokio::process_socket`, whose
//! socket type is fixed) so that the socket can be [`Held`]:
//!
//! - **replies are written once per round**: pgwire flushes after each
//!   reply message (`BindComplete`, the rows, `ReadyForQuery`: three
//!   writes and three wake-ups of the client per extended-protocol call);
//!   held here, they leave in one write when the round ends, as
//!   PostgreSQL sends them: after a `Sync`, a `Flush` or a simple query
//!   (even when the client has already sent more), whenever the session
//!   waits for the client, and once 8 KiB wait (so large results still
//!   stream);
//! - **messages are checked as they are read** from the client's first
//!   message after its startup packet (its password or SASL response)
//!   on ([`framing`](super::framing)): a message larger than the
//!   server's `max_request_bytes` is refused with `54000` by its header,
//!   before its body is read (pgwire itself takes up to 1 GB); one of a
//!   type no client sends, or whose body does not hold exactly its
//!   fields, with `08P01`, before pgwire's decoder reads past it (or
//!   panics). The messages before a refused one are served; then the
//!   connection ends (its framing cannot be trusted).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures::{SinkExt, StreamExt};
use pgwire::api::ErrorHandler;
use pgwire::api::{ClientInfo, PgWireConnectionState, PgWireServerHandlers};
use pgwire::error::{ErrorInfo, PgWireError};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::{MaybeTls, negotiate_tls, process_error, process_message};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, FramedParts};

use super::framing::{Framing, Refusal};

/// Replies held up to this many bytes before they are written anyway.
const HOLD: usize = 8 << 10;

/// How long a client has to log in (pgwire's own bound).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The client's socket, its replies held and its messages' sizes checked
/// (see the module docs).
pub(super) struct Held<T> {
    inner: T,
    /// Replies not yet written.
    out: BytesMut,
    /// Its messages followed and checked, once armed (after the startup
    /// packet).
    framing: Option<Framing>,
    /// A message refused, said at the next read: the bytes before it
    /// were passed on first.
    refused: Option<io::Error>,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Held<T> {
    fn new(inner: T) -> Self {
        Held {
            inner,
            out: BytesMut::new(),
            framing: None,
            refused: None,
        }
    }

    /// Checks messages from now on, the first starting at `unread` (the
    /// bytes read but not yet decoded, which begin at a message). A
    /// refusal among them is said at the next read, once the messages
    /// before it (`unread[..n]`, `n` returned) are served.
    fn arm(&mut self, max: usize, unread: &[u8]) -> usize {
        let mut framing = Framing::new(max);
        let served = match framing.walk(unread) {
            Ok(()) => unread.len(),
            Err((start, refusal)) => {
                self.refused = Some(refused_with(refusal));
                start
            }
        };
        self.framing = Some(framing);
        served
    }

    /// Follows the messages over `bytes` (once armed); on a refusal,
    /// where in `bytes` the refused message's header began (0 when it
    /// began in an earlier read).
    fn walk(&mut self, bytes: &[u8]) -> Result<(), (usize, io::Error)> {
        match self.framing.as_mut() {
            Some(framing) => framing
                .walk(bytes)
                .map_err(|(start, refusal)| (start, refused_with(refusal))),
            None => Ok(()),
        }
    }

    /// Writes the held replies out now (the end of a round).
    async fn drain(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_drain(cx)).await
    }

    /// Writes the held replies out, then flushes.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out.advance(n);
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Held<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // Waiting for the client: what it is owed goes first.
        ready!(this.poll_drain(cx))?;
        if let Some(refused) = this.refused.take() {
            return Poll::Ready(Err(refused));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        match this.walk(&buf.filled()[before..]) {
            Ok(()) => {}
            // Refused now: nothing before it in this read.
            Err((0, e)) => return Poll::Ready(Err(e)),
            // The messages before it are passed on; it is refused at the
            // next read, once they are served.
            Err((start, e)) => {
                buf.set_filled(before + start);
                this.refused = Some(e);
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Held<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.out.len() >= HOLD {
            ready!(this.poll_drain(cx))?;
        }
        this.out.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // Held until the next read, unless much is waiting.
        if this.out.len() >= HOLD {
            return this.poll_drain(cx);
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// Serves one client: pgwire's TLS negotiation, then its message loop on
/// the [`Held`] socket, with messages capped at `max_message` bytes (and
/// their layout checked) after the startup packet.
pub(super) async fn serve<H: PgWireServerHandlers>(
    tcp: TcpStream,
    tls: Option<pgwire::tokio::TlsAcceptor>,
    handlers: H,
    max_message: usize,
) -> io::Result<()> {
    let startup = tokio::time::sleep(STARTUP_TIMEOUT);
    tokio::pin!(startup);
    let negotiated = tokio::select! {
        () = &mut startup => return Ok(()),
        negotiated = negotiate_tls(tcp, tls) => negotiated?,
    };
    // A direct TLS hello without TLS configured: nothing to serve.
    let Some(mut socket) = negotiated else {
        return Ok(());
    };
    // Bytes that came in the clear after an SSLRequest and before the
    // handshake would be read as if they came over TLS (a man in the
    // middle's injection, CVE-2021-23214 in PostgreSQL): refused, as
    // PostgreSQL refuses them.
    if matches!(socket.get_ref(), MaybeTls::Tls(_)) && !socket.read_buffer().is_empty() {
        let injected = io::Error::other("received unencrypted data after SSL request");
        return refuse(&mut socket, &injected).await;
    }
    let parts = socket.into_parts();
    let mut held = FramedParts::new(Held::new(parts.io), parts.codec);
    held.read_buf = parts.read_buf;
    held.write_buf = parts.write_buf;
    let mut socket = Framed::from_parts(held);

    let startup_handler = handlers.startup_handler();
    let simple = handlers.simple_query_handler();
    let extended = handlers.extended_query_handler();
    let copy = handlers.copy_handler();
    let cancel = handlers.cancel_handler();
    let errors = handlers.error_handler();
    let mut armed = false;
    loop {
        let awaiting_startup = matches!(socket.state(), PgWireConnectionState::AwaitingStartup);
        let logging_in = awaiting_startup
            || matches!(
                socket.state(),
                PgWireConnectionState::AuthenticationInProgress
            );
        // Every message after the startup packet has a type and a length
        // (the packets before it do not): checked from then on.
        if !awaiting_startup && !armed {
            armed = true;
            let unread = socket.read_buffer().to_vec();
            // A refused message among them is said once those before it
            // are served.
            let served = socket.get_mut().arm(max_message, &unread);
            socket.read_buffer_mut().truncate(served);
        }
        let message = if logging_in {
            tokio::select! {
                () = &mut startup => None,
                message = socket.next() => message,
            }
        } else {
            socket.next().await
        };
        let message = match message {
            Some(Ok(message)) => message,
            Some(Err(PgWireError::IoError(e))) if refused(&e).is_some() => {
                return refuse(&mut socket, &e).await;
            }
            _ => break,
        };
        // A Terminate ends the connection; so does a cancel request (on a
        // connection of its own), once handled.
        if matches!(message, PgWireFrontendMessage::Terminate(_)) {
            break;
        }
        let cancel_request = matches!(message, PgWireFrontendMessage::CancelRequest(_));
        // Where PostgreSQL sends what it holds, even if more has come.
        let ends_round = matches!(
            message,
            PgWireFrontendMessage::Sync(_)
                | PgWireFrontendMessage::Flush(_)
                | PgWireFrontendMessage::Query(_)
        );
        let extended_query = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => message.is_extended_query(),
        };
        if let Err(mut e) = process_message(
            message,
            &mut socket,
            startup_handler.clone(),
            simple.clone(),
            extended.clone(),
            copy.clone(),
            cancel.clone(),
        )
        .await
        {
            errors.on_error(&socket, &mut e);
            let fatal = e.is_fatal();
            process_error(&mut socket, e, extended_query).await?;
            if fatal {
                break;
            }
        }
        if cancel_request {
            break;
        }
        if ends_round {
            socket.flush().await?;
            socket.get_mut().drain().await?;
        }
    }
    // Whatever is still held goes out before the socket is dropped.
    socket.close().await
}

/// `refusal` as the read's error.
fn refused_with(refusal: Refusal) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, refusal)
}

/// The SQLSTATE of [`Held`]'s refusal of a message (too large, or
/// malformed); `None` for any other error.
fn refused(e: &io::Error) -> Option<&'static str> {
    e.get_ref()?
        .downcast_ref::<Refusal>()
        .map(Refusal::sqlstate)
}

/// Answers a message [`Held`] refused with a FATAL error of its SQLSTATE,
/// and ends the connection.
async fn refuse<T, C>(socket: &mut Framed<T, C>, e: &io::Error) -> io::Result<()>
where
    Framed<T, C>: futures::Sink<PgWireBackendMessage, Error = io::Error> + Unpin,
{
    let why = e
        .get_ref()
        .map_or_else(|| e.to_string(), ToString::to_string);
    let code = refused(e).unwrap_or("08P01");
    let info = ErrorInfo::new("FATAL".to_owned(), code.to_owned(), why);
    socket
        .send(PgWireBackendMessage::ErrorResponse(info.into()))
        .await?;
    socket.close().await
}

#[cfg(test)]
#[path = "socket_tests.rs"]
mod tests;
