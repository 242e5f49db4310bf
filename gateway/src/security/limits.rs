//! A principal's limits: calls at once (a semaphore), calls per second
//! (governor's GCRA rate limiter), and rows and bytes per result (applied
//! to the call's options).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::PrincipalLimits;
use crate::error::{Error, Result};

/// The limits of one principal, shared by all of its calls.
#[derive(Debug)]
pub struct Limiter {
    concurrent: Option<(u32, Arc<Semaphore>)>,
    rate: Option<(u32, DefaultDirectRateLimiter)>,
    /// Rows per result.
    pub max_rows: Option<u64>,
    /// Bytes per result.
    pub max_bytes: Option<u64>,
    /// Statements and bytes one transaction may buffer.
    pub tx_buffered: (Option<u64>, Option<u64>),
}

/// A call's place among its principal's concurrent calls, given back when
/// dropped.
#[derive(Debug)]
pub struct Permit(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl Permit {
    /// No place held (a caller without a concurrency limit).
    pub fn none() -> Permit {
        Permit(None)
    }
}

impl Limiter {
    /// The limiter for `limits`.
    pub fn new(limits: &PrincipalLimits) -> Limiter {
        let rate = limits
            .calls_per_second
            .and_then(NonZeroU32::new)
            .map(|per_second| {
                let burst = limits.burst.and_then(NonZeroU32::new).unwrap_or(per_second);
                let quota = Quota::per_second(per_second).allow_burst(burst);
                (per_second.get(), RateLimiter::direct(quota))
            });
        Limiter {
            concurrent: limits
                .concurrent_calls
                .map(|n| (n, Arc::new(Semaphore::new(n as usize)))),
            rate,
            max_rows: limits.max_rows,
            max_bytes: limits.max_bytes,
            tx_buffered: (limits.tx_buffered_statements, limits.tx_buffered_bytes),
        }
    }

    /// Admits one call of `principal`, or says which limit it is over and,
    /// for the rate, when it may try again.
    pub fn admit(&self, principal: &str) -> Result<Permit> {
        if let Some((per_second, limiter)) = &self.rate
            && let Err(not_until) = limiter.check()
        {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(Error::LimitExceeded {
                principal: principal.to_owned(),
                limit: format!("{per_second} calls per second"),
                retry_after: Some(wait.max(Duration::from_millis(1))),
            });
        }
        match &self.concurrent {
            None => Ok(Permit::none()),
            Some((n, semaphore)) => match Arc::clone(semaphore).try_acquire_owned() {
                Ok(permit) => Ok(Permit(Some(permit))),
                Err(_) => Err(Error::LimitExceeded {
                    principal: principal.to_owned(),
                    limit: format!("{n} concurrent calls"),
                    retry_after: None,
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_the_rate_says_when_to_retry_and_concurrency_frees_on_drop() {
        let limiter = Limiter::new(&PrincipalLimits {
            calls_per_second: Some(1),
            ..PrincipalLimits::default()
        });
        let first = limiter.admit("app");
        assert!(first.is_ok());
        match limiter.admit("app") {
            Err(Error::LimitExceeded {
                retry_after: Some(wait),
                ..
            }) => assert!(wait <= Duration::from_secs(1), "{wait:?}"),
            other => panic!("expected the rate limit, got {other:?}"),
        }
        let limiter = Limiter::new(&PrincipalLimits {
            concurrent_calls: Some(1),
            ..PrincipalLimits::default()
        });
        let held = limiter.admit("app").unwrap();
        let over = limiter.admit("app").unwrap_err();
        assert!(over.to_string().contains("1 concurrent calls"), "{over}");
        drop(held);
        limiter.admit("app").unwrap();
    }
}
