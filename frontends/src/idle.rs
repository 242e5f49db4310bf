//! A client connection's idleness, for closing one that has been silent
//! past its idle timeout: the connection notes when it was last active,
//! and one timer per idle period (not one per request) checks. A request
//! under way, however long, is not idleness.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

// Tokio's clock (the system's outside tests), so paused time in tests
// moves it.
use tokio::time::Instant;

/// When a connection was last active (see the module docs).
#[derive(Debug)]
pub struct Activity {
    born: Instant,
    /// Milliseconds from `born` to the last activity.
    last: AtomicU64,
    /// Requests under way.
    busy: AtomicUsize,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            born: Instant::now(),
            last: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
        }
    }
}

impl Activity {
    /// Notes that the connection is active now.
    pub fn touch(&self) {
        let ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    /// A request under way until the guard drops (active then too): the
    /// connection is not idle meanwhile.
    pub fn busy(&self) -> Busy<'_> {
        self.busy.fetch_add(1, Ordering::Relaxed);
        Busy(self)
    }

    /// How long the connection has been idle (zero while busy).
    pub fn idle_for(&self) -> Duration {
        if self.busy.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.born.elapsed().saturating_sub(last)
    }

    /// Ends once the connection has been idle for `timeout`.
    pub async fn idle(&self, timeout: Duration) {
        loop {
            let silent = self.idle_for();
            if silent >= timeout {
                return;
            }
            tokio::time::sleep(timeout - silent).await;
        }
    }
}

/// A request under way (see [`Activity::busy`]).
#[derive(Debug)]
pub struct Busy<'a>(&'a Activity);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_ends_after_the_timeout_of_silence_not_while_busy() {
        let activity = Activity::default();
        let timeout = Duration::from_secs(10);
        tokio::time::sleep(Duration::from_secs(6)).await;
        activity.touch();
        let started = tokio::time::Instant::now();
        activity.idle(timeout).await;
        // Ten seconds from the touch, not from the start.
        assert_eq!(started.elapsed().as_secs(), 10);

        let busy = activity.busy();
        assert_eq!(activity.idle_for(), Duration::ZERO);
        let watch = activity.idle(timeout);
        tokio::pin!(watch);
        let ran_long = tokio::time::timeout(Duration::from_secs(60), &mut watch).await;
        assert!(ran_long.is_err(), "a request under way is not idleness");
        drop(busy);
        let started = tokio::time::Instant::now();
        watch.await;
        assert!(
            started.elapsed() >= timeout,
            "idle counts from the request's end"
        );
    }
}
