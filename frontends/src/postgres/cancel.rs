//! A client's `CancelRequest` (psql's Ctrl-C, `cancel_token().cancel_query`
//! in tokio-postgres, `conn.cancel()` in psycopg): pgwire sends each
//! session a backend key at login and registers it; a CancelRequest on
//! another connection naming that key fires the session's running
//! statement's cancel.
//!
//! The session decides what a cancel may cut, not pgwire (whose extended
//! protocol would cut any `Execute`, a `COMMIT` among them, and answer
//! 57014 while the commit goes on): at login the registered handle is
//! taken over ([`take_over`]) and pgwire is left one nothing fires. A cut
//! is truthful only where the statement's effects are known to go: a
//! statement inside a transaction (the call dropped dooms the gateway
//! transaction, which can then only roll back, as PostgreSQL's does), or a
//! read outside one. So those are cut — the statement cancelled on the
//! engine too, the client told 57014, the block failed — and transaction
//! control and writes outside a transaction (their effects may already be
//! committed when the cancel lands) run to their end or their deadline.

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::{ClientInfo, ConnectionHandle, ConnectionManager};
use pgwire::error::ErrorInfo;
use pgwire::messages::cancel::CancelRequest;

use super::errors::error;
use super::session::Session;

/// The session's own cancel handle (see the module docs).
struct SessionCancel(Arc<ConnectionHandle>);

/// Takes over the cancel handle pgwire registered for this login: the
/// session keeps it, and pgwire's own lookup finds a handle no
/// CancelRequest reaches.
pub(super) fn take_over<C: ClientInfo>(client: &C) {
    let extensions = client.session_extensions();
    if let Some(registered) = extensions.get::<Arc<ConnectionHandle>>() {
        extensions.insert(SessionCancel(Arc::clone(&registered)));
        extensions.insert(Arc::new(ConnectionHandle::new()));
    }
}

/// Whether a cancel may cut `text` (see the module docs): a statement in
/// the session's transaction, or a read outside one.
pub(super) fn may_cut(session: &Session, text: &str) -> bool {
    if super::statements::is_control(text) {
        return false;
    }
    if session.tx().is_some() {
        return true;
    }
    let keyword = omnigate::drivers::sql::first_keyword(text);
    ["SELECT", "SHOW", "VALUES", "TABLE"]
        .iter()
        .any(|read| keyword.eq_ignore_ascii_case(read))
}

/// Runs `work` unless the client cancels it first; then `canceled` makes
/// its answer from the 57014 error, and the session's transaction (if
/// any) is failed, as PostgreSQL fails a block whose statement was
/// cancelled. The caller checks [`may_cut`] first.
pub(super) async fn cancellable<C: ClientInfo, T>(
    client: &C,
    session: &Session,
    work: impl Future<Output = T>,
    canceled: impl FnOnce(Box<ErrorInfo>) -> T,
) -> T {
    let Some(handle) = client.session_extensions().get::<SessionCancel>() else {
        return work.await;
    };
    let mut cancel = handle.0.start_query().await;
    tokio::select! {
        done = work => done,
        Ok(()) = &mut cancel => {
            session.fail_tx();
            canceled(Box::new(error("57014", "canceling statement due to user request")))
        }
    }
}

/// The listener's CancelRequests. One that names a session's key cancels
/// its statement at once. One that names none is a guess (a key is 32
/// bits with protocol 3.0): past [`GUESSES_PER_SECOND`] of those, each
/// waits its turn, up to [`GUESS_WAIT`], on the connection that sent it,
/// so guessing keys goes no faster than that however many connections a
/// client opens; the first of a burst is logged.
pub(super) struct GuardedCancel {
    keys: Arc<ConnectionManager>,
    guesses: governor::DefaultDirectRateLimiter,
    /// Wrong keys are waiting their turn now (logged once per burst).
    slowing: std::sync::atomic::AtomicBool,
}

/// Wrong keys answered at once, per second, listener-wide.
const GUESSES_PER_SECOND: u32 = 20;

/// How long a wrong key past that waits at most.
const GUESS_WAIT: Duration = Duration::from_secs(2);

impl GuardedCancel {
    pub(super) fn new(keys: Arc<ConnectionManager>) -> Self {
        let rate = NonZeroU32::new(GUESSES_PER_SECOND).unwrap_or(NonZeroU32::MIN);
        GuardedCancel {
            keys,
            guesses: governor::RateLimiter::direct(governor::Quota::per_second(rate)),
            slowing: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

#[async_trait]
impl CancelHandler for GuardedCancel {
    async fn on_cancel_request(&self, request: CancelRequest) {
        if self.keys.cancel(request.pid, &request.secret_key).await {
            return;
        }
        use std::sync::atomic::Ordering::Relaxed;
        if self.guesses.check().is_ok() {
            self.slowing.store(false, Relaxed);
            return;
        }
        if !self.slowing.swap(true, Relaxed) {
            tracing::warn!(
                "CancelRequests naming no session's key arrive faster than {GUESSES_PER_SECOND}/s: each now waits its turn"
            );
        }
        let _ = tokio::time::timeout(GUESS_WAIT, self.guesses.until_ready()).await;
    }
}
