//! A call's deadline inside CPU-bound work (the memory engine's commands
//! and PromQL evaluation, glob matching), checked cheaply in their loops so
//! that work stops when the caller's time is up instead of running on.

use std::cell::Cell;
use std::future::Future;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::Either;

use crate::Error;

/// How long past a call's timeout its work may take to stop (a query
/// cancelled on the engine at the timeout, then waited for): the gateway
/// cuts a call that has not ended by then, and a driver that bounds its
/// own calls (`StorageDriver::bounds_execute`) stops waiting by then.
pub const STOP_MARGIN: Duration = Duration::from_secs(1);

/// How many [`Deadline::tick`]s pass between two readings of the clock.
const TICKS_PER_CHECK: u64 = 4096;

/// When CPU-bound work must stop. Not shared between threads: each call
/// makes its own.
#[derive(Debug)]
pub struct Deadline {
    at: Option<Instant>,
    limit: Duration,
    ticks: Cell<u64>,
}

/// The deadline passed; the work stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired(pub Duration);

impl Deadline {
    /// `timeout` from now (`None`: never).
    pub fn after(timeout: Option<Duration>) -> Self {
        Deadline {
            at: timeout.and_then(|t| Instant::now().checked_add(t)),
            limit: timeout.unwrap_or(Duration::MAX),
            ticks: Cell::new(0),
        }
    }

    /// No deadline.
    pub fn none() -> Self {
        Deadline::after(None)
    }

    /// One step of work: `Err` once the deadline has passed (the clock is
    /// read every few thousand steps).
    pub fn tick(&self) -> Result<(), Expired> {
        self.advance(1)
    }

    /// `steps` steps of work at once (e.g. one pass over every series).
    pub fn advance(&self, steps: usize) -> Result<(), Expired> {
        let Some(at) = self.at else {
            return Ok(());
        };
        let before = self.ticks.get();
        let after = before.saturating_add(steps as u64);
        self.ticks.set(after);
        if before / TICKS_PER_CHECK != after / TICKS_PER_CHECK && Instant::now() >= at {
            return Err(Expired(self.limit));
        }
        Ok(())
    }
}

/// `work`, cut at `limit` (`None`: never) with `Timeout`. A `Timeout` the
/// work returns itself (the engine's own, e.g. a cancelled query) is said
/// with the same limit, so a caller always reads the time it asked for.
pub fn within<T, F>(limit: Option<Duration>, work: F) -> impl Future<Output = crate::Result<T>>
where
    F: Future<Output = crate::Result<T>>,
{
    within_margin(limit, Duration::ZERO, work)
}

/// [`within`], cut `margin` past `limit`: for an engine that enforces the
/// limit itself, so that its own error (with its reason) arrives first.
///
/// Built from combinators, not as an `async fn`: the future is `work` and
/// the timer side by side, with `work` moved in once (an `async fn` would
/// keep `work` as its argument and again inside the `Timeout`, and every
/// call's future would carry both).
pub fn within_margin<T, F>(
    limit: Option<Duration>,
    margin: Duration,
    work: F,
) -> impl Future<Output = crate::Result<T>>
where
    F: Future<Output = crate::Result<T>>,
{
    match limit {
        None => Either::Left(work),
        Some(limit) => Either::Right(
            tokio::time::timeout(limit.saturating_add(margin), work).map(move |outcome| {
                match outcome {
                    Ok(Err(Error::Timeout { .. })) | Err(_) => Err(Error::Timeout { after: limit }),
                    Ok(done) => done,
                }
            }),
        ),
    }
}

impl From<Expired> for Error {
    fn from(e: Expired) -> Self {
        Error::Timeout { after: e.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_fail_once_the_time_is_up() {
        let never = Deadline::none();
        for _ in 0..10_000 {
            never.tick().unwrap();
        }
        let soon = Deadline::after(Some(Duration::from_millis(1)));
        std::thread::sleep(Duration::from_millis(2));
        let stopped = (0..10_000).find_map(|_| soon.tick().err());
        assert_eq!(stopped, Some(Expired(Duration::from_millis(1))));
    }
}
