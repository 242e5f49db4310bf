//! A pooled connection leased for one call, under the call's one timer:
//! the wait for the connection, the query, the cancel sent at the
//! deadline and the session's reset; a connection that may still receive
//! a cancel, or whose session is unknown, never serves another call.

use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use deadpool_postgres::Object;
use tokio::time::Sleep;
use tokio_postgres::{CancelToken, NoTls};

use crate::deadline::STOP_MARGIN;
use crate::{Error, Result};

/// A pooled connection leased for one call. PostgreSQL cancels whatever a
/// backend runs when the cancel arrives, so a connection that may still
/// receive a cancel must never serve another call: if the call is dropped
/// while its query runs (the client went away), or a cancel was sent that
/// the query may not have consumed, the lease sends the cancel and takes
/// the connection out of the pool instead of returning it.
struct Lease {
    client: Option<Object>,
    token: CancelToken,
    in_flight: bool,
    tainted: bool,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.in_flight {
            let token = self.token.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = token.cancel_query(NoTls).await;
                });
            }
        }
        if (self.in_flight || self.tainted)
            && let Some(client) = self.client.take()
        {
            // Detached from the pool: closed when dropped here.
            drop(Object::take(client));
        }
    }
}

impl Lease {
    /// Resets the session of a connection that goes back to the pool;
    /// one that cannot be reset is closed instead.
    async fn reset(&mut self) {
        if self.tainted || self.in_flight {
            return; // closed on drop anyway
        }
        // Tainted until the reset is done: a reset cut half way (the call
        // dropped, or its deadline) leaves the session unknown.
        self.tainted = true;
        if let Some(client) = self.client.as_ref() {
            self.tainted = super::session::reset(client).await.is_err();
        }
    }
}

/// A call's limit and its one timer: it bounds the wait for a
/// connection, the query, the cancel's margin and the session's reset.
type Limit<'a> = Option<(Duration, Pin<&'a mut Sleep>)>;

/// `get` (a connection), or `Timeout` when the call's timer runs out first.
/// A connection handed over only after the deadline (the call waited for
/// it) goes back to the pool unused: sending the query would only cancel
/// it and close the connection.
async fn bounded_by<C>(limit: &mut Limit<'_>, get: impl Future<Output = Result<C>>) -> Result<C> {
    let Some((after, sleep)) = limit else {
        return get.await;
    };
    let after = *after;
    let mut get = std::pin::pin!(get);
    let mut waited = false;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(got) = get.as_mut().poll(cx) {
            // Only a call that waited reads the clock.
            if waited && tokio::time::Instant::now() >= sleep.deadline() {
                return Poll::Ready(Err(Error::Timeout { after }));
            }
            return Poll::Ready(got);
        }
        waited = true;
        sleep
            .as_mut()
            .poll(cx)
            .map(|()| Err(Error::Timeout { after }))
    })
    .await
}

/// Runs `work` on the connection `get` gives, under one timer armed now
/// for `timeout`: the wait for the connection (see [`bounded_by`]), then
/// the query; when the timer runs out, cancels the query on the server,
/// waits for it to stop (at most [`STOP_MARGIN`] more), and takes the
/// connection out of the pool. With `reset` (the statement may have
/// changed the session), the connection is reset before it goes back
/// (within the same deadline), or closed if that fails.
pub(crate) async fn leased<T>(
    timeout: Option<Duration>,
    get: impl Future<Output = Result<Object>>,
    reset: bool,
    work: impl AsyncFnOnce(&mut Object) -> Result<T>,
) -> Result<T> {
    let sleep = std::pin::pin!(timeout.map(tokio::time::sleep));
    let mut limit = timeout.zip(sleep.as_pin_mut());
    let client = bounded_by(&mut limit, get).await?;
    let token = client.cancel_token();
    let mut lease = Lease {
        client: Some(client),
        token,
        in_flight: true,
        tainted: false,
    };
    let Some(client) = lease.client.as_mut() else {
        return Err(Error::Internal(crate::EngineError::new(
            super::KIND,
            None,
            "the lease lost its connection",
        )));
    };
    let work = work(client);
    let Some((after, sleep)) = limit.as_mut() else {
        let result = work.await;
        lease.in_flight = false;
        lease.tainted |= is_broken(&result);
        if reset {
            lease.reset().await;
        }
        return result;
    };
    let after = *after;
    // In a block: `work` borrows the connection, and must be gone before
    // the reset below.
    let result = {
        tokio::pin!(work);
        tokio::select! {
            biased;
            result = &mut work => Some(result),
            () = sleep.as_mut() => {
                // Whatever the outcome, a connection a cancel was sent to
                // leaves the pool: PostgreSQL acts on a cancel whenever it
                // arrives, and a full test run once saw the next caller's
                // query cancelled on a connection returned after a timeout.
                // A timeout costs a new connection; no caller ever loses a
                // query to someone else's.
                lease.tainted = true;
                // tokio caps a far deadline, so this cannot overflow.
                let margin = sleep.deadline() + STOP_MARGIN;
                sleep.as_mut().reset(margin);
                let token = lease.token.clone();
                let stopped = async {
                    let _ = token.cancel_query(NoTls).await;
                    (&mut work).await
                };
                tokio::select! {
                    biased;
                    // The query's own end (an error: cancelled).
                    result = stopped => Some(result.map_err(|_| Error::Timeout { after })),
                    // Not even the cancel answered: the lease's drop cancels
                    // again and closes the connection.
                    () = sleep.as_mut() => None,
                }
            }
        }
    };
    let Some(result) = result else {
        return Err(Error::Timeout { after });
    };
    lease.in_flight = false;
    lease.tainted |= is_broken(&result);
    if reset {
        // Cut by the deadline, the reset leaves the connection tainted.
        tokio::select! {
            biased;
            () = lease.reset() => {}
            () = sleep.as_mut() => {}
        }
    }
    match result {
        Err(Error::Timeout { .. }) => Err(Error::Timeout { after }),
        other => other,
    }
}

/// Whether a call's error leaves its connection in doubt (it failed
/// outside a SQL error: the link broke, or the server's reply could not be
/// read), so the connection must not serve another call.
fn is_broken<T>(result: &Result<T>) -> bool {
    matches!(result, Err(Error::Unavailable(e) | Error::Internal(e)) if e.engine == super::KIND && e.code.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EngineError;

    #[test]
    fn only_errors_outside_sql_leave_the_connection_in_doubt() {
        let unreadable = Error::Internal(EngineError::new(super::super::KIND, None, "reply"));
        let closed = Error::Unavailable(EngineError::new(super::super::KIND, None, "closed"));
        let sql = Error::Internal(EngineError::new(super::super::KIND, Some("XX000"), "m"));
        let shutdown = Error::Unavailable(EngineError::new(super::super::KIND, Some("57P01"), "m"));
        assert!(is_broken::<()>(&Err(unreadable)));
        assert!(is_broken::<()>(&Err(closed)));
        assert!(!is_broken::<()>(&Err(sql)));
        assert!(!is_broken::<()>(&Err(shutdown)));
        assert!(!is_broken::<()>(&Err(Error::Timeout {
            after: Duration::ZERO
        })));
        assert!(!is_broken(&Ok(())));
    }
}
