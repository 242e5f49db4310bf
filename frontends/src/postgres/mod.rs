//! The PostgreSQL-wire front end (`[frontends.postgres]`): psql, pgbench,
//! psycopg and every other PostgreSQL client reach the gateway's `sql`
//! engines through it, with the gateway's principals, grants, limits and
//! cross-engine transactions. The protocol is `pgwire`'s; this module
//! turns its messages into core calls and results back.
//!
//! - `auth.rs`: the login (engine from `database`, principal from `user`,
//!   token as password: SCRAM-SHA-256 or cleartext over TLS);
//! - `query.rs`: the simple query protocol and the session's transaction;
//! - `extended.rs`: the extended query protocol (Parse, Bind, Describe,
//!   Execute; text and binary formats);
//! - `encode.rs`: results as rows of PostgreSQL types, in text or binary
//!   format (a PostgreSQL engine's own bytes forwarded where they can be);
//! - `errors.rs`: errors as SQLSTATEs;
//! - `session.rs`: one connection's state;
//! - `socket.rs`: the connection under pgwire (replies written once per
//!   round, messages capped after login);
//! - `statements.rs`: what the session reads in a statement's text.

mod auth;
mod cancel;
mod control;
mod encode;
mod errors;
mod extended;
mod framing;
mod parsed;
mod query;
mod rows;
mod session;
mod socket;
mod statements;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use omnigate::Gateway;
use omnigate::config::PostgresFrontendConfig;
use pgwire::api::auth::StartupHandler;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::{ConnectionManager, PgWireServerHandlers};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// The kind of engine `engine` is (`postgres`, `sqlite`) as the gateway
/// is configured now, when it is one.
fn engine_kind(gateway: &Gateway, engine: &str) -> Option<&'static str> {
    Some(
        gateway
            .router()
            .by_name(engine)
            .ok()?
            .driver
            .descriptor()
            .kind,
    )
}

/// Whether engine `engine` is PostgreSQL (it has PostgreSQL's catalog and
/// types, and its cells can be forwarded as it sent them).
fn is_postgres(gateway: &Gateway, engine: &str) -> bool {
    engine_kind(gateway, engine) == Some(omnigate::drivers::postgres::KIND)
}

use session::Session;

/// One connection's handlers: its login and its queries share its session.
struct Handlers {
    login: Arc<auth::Login>,
    queries: Arc<query::Queries>,
    cancel: Arc<cancel::GuardedCancel>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.queries)
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.queries)
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::clone(&self.login)
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        Arc::clone(&self.cancel)
    }
}

/// The running listener.
#[derive(Debug)]
pub struct PostgresFrontend {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl PostgresFrontend {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections (open ones end with their clients).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for PostgresFrontend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listens on `config.listen` and serves every client on its own task;
/// `tls` answers clients' `SSLRequest`; a message past `max_message`
/// bytes after login ends its connection (`[server] max_request_bytes`).
pub async fn start(
    gateway: Gateway,
    config: &PostgresFrontendConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
    connections: crate::connections::ConnectionMetrics,
    max_message: usize,
) -> std::io::Result<PostgresFrontend> {
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "PostgreSQL clients at this address");
    // Each session's backend key, for its clients' cancel requests.
    let keys = Arc::new(ConnectionManager::new());
    let cancel = Arc::new(cancel::GuardedCancel::new(Arc::clone(&keys)));
    let logins = Arc::new(auth::Logins::new(gateway.clone(), keys));
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let idle_timeout = config.idle_timeout;
    let counted = connections.statements("postgres");
    let task = tokio::spawn(async move {
        loop {
            let (socket, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a PostgreSQL client failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = socket.set_nodelay(true);
            let slot = Arc::clone(&slots).try_acquire_owned().ok();
            let open = match slot {
                Some(_) => Some(connections.accepted("postgres")),
                None => {
                    connections.refused("postgres");
                    None
                }
            };
            let refusal = slot.is_none().then_some((
                "53300",
                "sorry, too many clients already ([frontends.postgres] max_connections)",
            ));
            let session = Arc::new(Session::new(refusal));
            let handlers = Handlers {
                login: Arc::new(auth::Login {
                    logins: Arc::clone(&logins),
                    session: Arc::clone(&session),
                }),
                queries: Arc::new(query::Queries {
                    gateway: gateway.clone(),
                    counted: counted.clone(),
                    session: Arc::clone(&session),
                    parser: Arc::new(extended::Parser {
                        gateway: gateway.clone(),
                        session: Arc::clone(&session),
                        parsed: parsed::Parsed::default(),
                    }),
                }),
                cancel: Arc::clone(&cancel),
            };
            let gateway = gateway.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let _held = (slot, open);
                session.activity().touch();
                // pgwire's decoder panics on some malformed messages.
                // From the first message after the startup packet on,
                // `socket::Held` refuses those before it decodes them;
                // should a panic come through anyway, it ends this
                // client's connection only, and the cleanup below still
                // runs.
                let served =
                    std::panic::AssertUnwindSafe(socket::serve(socket, tls, handlers, max_message))
                        .catch_unwind();
                tokio::select! {
                    outcome = served => match outcome {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "PostgreSQL client connection failed");
                        }
                        Err(_) => {
                            tracing::warn!(%peer, "a PostgreSQL client sent a message the protocol decoder could not take: connection closed");
                        }
                    },
                    () = session.activity().idle(idle_timeout) => {
                        tracing::debug!(%peer, "PostgreSQL client idle past idle_timeout: closed");
                    }
                }
                // A client gone mid-transaction rolls back the transaction
                // it began (one it joined is its owner's to end).
                if let Some(tx) = session.tx().filter(|tx| !tx.joined) {
                    let context = session.context();
                    if let Err(e) = gateway.rollback(&context, &tx.id).await {
                        tracing::debug!(error = %e, "rolling back a gone client's transaction");
                    }
                }
            });
        }
    });
    Ok(PostgresFrontend { addr, task })
}

/// Fuzzing entry (cargo feature `fuzzing`): a query string as the front
/// end reads it before any engine sees it, and a client's bytes through
/// the protocol decoder in each of its states. Returns normally for any
/// input; a panic is a finding.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub fn fuzz(data: &[u8]) {
    use pgwire::messages::{DecodeContext, PgWireFrontendMessage, ProtocolVersion};
    let text = String::from_utf8_lossy(data);
    for statement in omnigate::drivers::sql::split_statements(&text) {
        assert!(!statement.is_empty() && text.contains(statement));
        let _ = encode::command(statement);
        let _ = statements::is_control(statement);
        let _ = statements::set_parts(statement);
    }
    // After the startup packet: each message the front end's framing
    // check lets through (`framing`), decoded from a buffer that holds it
    // alone, so a read past its end panics here, and a message decoded
    // with bytes of it left unread is a finding too.
    let mut context = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
    context.awaiting_frontend_ssl = false;
    context.awaiting_frontend_startup = false;
    let mut rest = data;
    while let [_, a, b, c, d, ..] = *rest {
        let len = u32::from_be_bytes([a, b, c, d]) as usize;
        let Some(message) = rest.get(..len.saturating_add(1)) else {
            break;
        };
        if framing::Framing::new(usize::MAX).walk(message).is_err() {
            break; // refused, and the connection ends
        }
        let mut buf = bytes::BytesMut::from(message);
        if let Ok(Some(_)) = PgWireFrontendMessage::decode(&mut buf, &context) {
            assert!(buf.is_empty(), "a message decoded with bytes of it left");
        }
        rest = &rest[message.len()..];
    }
    // The SSL request and the startup packet (not checked before pgwire's
    // decoder, which bounds them itself): a panic there would end the one
    // connection (see `start`); contained here too.
    for (ssl, startup) in [(true, true), (false, true)] {
        let mut context = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
        context.awaiting_frontend_ssl = ssl;
        context.awaiting_frontend_startup = startup;
        let mut buf = bytes::BytesMut::from(data);
        // (The context is not advanced here as the server's codec advances
        // it, so a message decoded without consuming ends the loop.)
        loop {
            let before = buf.len();
            let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                PgWireFrontendMessage::decode(&mut buf, &context)
            }));
            match decoded {
                Ok(Ok(Some(_))) if buf.len() < before => {}
                _ => break,
            }
        }
    }
}
