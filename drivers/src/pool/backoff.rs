//! The gate that fails calls fast while a backend is known to be down.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Fails calls fast while a backend is down: after a failed connect, new
/// connects wait a backoff (doubling up to a bound) instead of piling up.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    /// Whether a failure is on record: calls read only this while the
    /// backend is up, so the gate costs one atomic load per call.
    down: AtomicBool,
    state: Mutex<BackoffState>,
}

#[derive(Debug, Default)]
struct BackoffState {
    failures: u32,
    retry_at: Option<Instant>,
}

impl Backoff {
    /// A gate waiting `base` after the first failure, doubling up to `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max,
            down: AtomicBool::new(false),
            state: Mutex::new(BackoffState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BackoffState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `Err(remaining)` while connects should not be tried.
    pub fn check(&self) -> Result<(), Duration> {
        if !self.down.load(Ordering::Relaxed) {
            return Ok(());
        }
        match self.lock().retry_at {
            Some(at) if at > Instant::now() => Err(at - Instant::now()),
            _ => Ok(()),
        }
    }

    /// `Err(Unavailable)` naming `server` while connects should not be tried.
    pub fn fail_fast(&self, engine: &'static str, server: &str) -> crate::Result<()> {
        self.check().map_err(|remaining| {
            crate::Error::Unavailable(crate::EngineError::new(
                engine,
                None,
                format!(
                    "{server} is unreachable; the next connect attempt is in {} ms",
                    remaining.as_millis()
                ),
            ))
        })
    }

    /// Records a failed connect. Callers that fail together, inside one
    /// wait, count once: only an attempt made after the wait doubles it.
    pub fn failed(&self) {
        let mut state = self.lock();
        self.down.store(true, Ordering::Relaxed);
        let now = Instant::now();
        if state.retry_at.is_some_and(|at| at > now) {
            return;
        }
        state.failures = state.failures.saturating_add(1);
        let factor = 2u32.saturating_pow(state.failures.saturating_sub(1).min(16));
        let wait = self.base.saturating_mul(factor).min(self.max);
        state.retry_at = Some(now + wait);
    }

    /// Records a working connection.
    pub fn succeeded(&self) {
        if !self.down.load(Ordering::Relaxed) {
            return;
        }
        let mut state = self.lock();
        *state = BackoffState::default();
        self.down.store(false, Ordering::Relaxed);
    }

    /// Consecutive failed connects.
    pub fn failures(&self) -> u32 {
        self.lock().failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_bound_and_resets() {
        let gate = Backoff::new(Duration::from_millis(40), Duration::from_millis(120));
        assert!(gate.check().is_ok());
        gate.failed();
        gate.failed(); // a caller failing in the same wait does not double it
        let first = gate.check().unwrap_err();
        assert!(
            first <= Duration::from_millis(40) && first > Duration::from_millis(20),
            "{first:?}"
        );
        assert_eq!(gate.failures(), 1);
        std::thread::sleep(Duration::from_millis(45));
        gate.failed();
        let second = gate.check().unwrap_err();
        assert!(
            second <= Duration::from_millis(80) && second > Duration::from_millis(60),
            "{second:?}"
        );
        std::thread::sleep(Duration::from_millis(85));
        gate.failed();
        let capped = gate.check().unwrap_err();
        assert!(
            capped <= Duration::from_millis(120) && capped > Duration::from_millis(100),
            "{capped:?}"
        );
        assert_eq!(gate.failures(), 3);
        gate.succeeded();
        assert!(gate.check().is_ok());
        assert_eq!(gate.failures(), 0);
    }
}
