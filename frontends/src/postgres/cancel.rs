//! A client's `CancelRequest` (psql's Ctrl-C, `cancel_token().cancel_query`
//! in tokio-postgres, `conn.cancel()` in psycopg): pgwire sends each
//! session a backend key at login and registers it; a CancelRequest on
//! another connection naming that key fires the session's running
//! statement's cancel. The extended protocol's `Execute` is cut by pgwire
//! itself (around `do_query`); the simple protocol's `Query`, which the
//! session answers whole, by [`cancellable`]. The statement's call is then dropped — a statement
//! cut that way dooms its gateway transaction, as a deadline does — and
//! the client hears SQLSTATE 57014, as from PostgreSQL. Transaction
//! control (`COMMIT` among it) is never cut: a commit under way finishes
//! and answers its true outcome.

use std::future::Future;
use std::sync::Arc;

use pgwire::api::{ClientInfo, ConnectionHandle};
use pgwire::error::ErrorInfo;

use super::errors::error;
use super::session::Session;

/// Runs `work` unless the client cancels it first; then `canceled` makes
/// its answer from the 57014 error, and the session's transaction (if
/// any) is failed, as PostgreSQL fails a block whose statement was
/// cancelled.
pub(super) async fn cancellable<C: ClientInfo, T>(
    client: &C,
    session: &Session,
    work: impl Future<Output = T>,
    canceled: impl FnOnce(Box<ErrorInfo>) -> T,
) -> T {
    let Some(handle) = client.session_extensions().get::<Arc<ConnectionHandle>>() else {
        return work.await;
    };
    let mut cancel = handle.start_query().await;
    tokio::select! {
        done = work => done,
        Ok(()) = &mut cancel => {
            session.fail_tx();
            canceled(Box::new(error("57014", "canceling statement due to user request")))
        }
    }
}

/// Fails the session's block if dropped before [`FailIfCut::answered`]: a
/// statement pgwire cut on a cancel request.
pub(super) struct FailIfCut<'a> {
    session: &'a Session,
    armed: bool,
}

impl<'a> FailIfCut<'a> {
    /// Armed for a statement about to run.
    pub(super) fn new(session: &'a Session) -> Self {
        FailIfCut {
            session,
            armed: true,
        }
    }

    /// The statement answered: nothing to fail.
    pub(super) fn answered(mut self) {
        self.armed = false;
    }
}

impl Drop for FailIfCut<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.session.fail_tx();
        }
    }
}
