//! Draining an engine: taking it out of service on purpose. A drained
//! engine takes no new calls (UNAVAILABLE saying so), while calls already
//! running on it and open transactions with a part on it finish; the
//! gateway says when nothing is left in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{CallContext, Gateway};
use crate::error::{Error, Result};

/// An engine's service state: drained or not, and calls in flight.
#[derive(Debug, Default)]
pub struct ServiceState {
    draining: AtomicBool,
    in_flight: Arc<AtomicU64>,
}

/// A call in flight on an engine, counted until dropped.
#[derive(Debug)]
pub struct InFlight(Arc<AtomicU64>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ServiceState {
    /// Whether the engine is drained.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Counts a call in flight, unless `limit` calls already are.
    pub fn enter(&self, limit: usize) -> Option<InFlight> {
        let admitted = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit as u64).then_some(n + 1)
            })
            .is_ok();
        admitted.then(|| InFlight(Arc::clone(&self.in_flight)))
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// What is still in flight on a drained engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Calls running on it.
    pub calls: u64,
    /// Open transactions with a part on it.
    pub transactions: u64,
}

impl Drained {
    /// Nothing is in flight.
    pub fn idle(&self) -> bool {
        self.calls == 0 && self.transactions == 0
    }
}

impl Gateway {
    /// Drains engine `name` (again: a drained engine reports what is left
    /// in flight). Operators only.
    pub async fn drain_engine(&self, context: &CallContext, name: &str) -> Result<Drained> {
        self.check_admin(context, "drain engines")?;
        let router = self.router();
        let engine = router.by_name(name)?;
        if !engine.service.draining.swap(true, Ordering::Relaxed) {
            tracing::warn!(engine = %name, "engine drained: it takes no new calls");
        }
        Ok(Drained {
            calls: engine.service.in_flight(),
            transactions: self.inner.transactions.open_on(name).await,
        })
    }

    /// Puts engine `name` back in service. Operators only.
    pub fn resume_engine(&self, context: &CallContext, name: &str) -> Result<()> {
        self.check_admin(context, "resume engines")?;
        let router = self.router();
        let engine = router.by_name(name)?;
        if engine.service.draining.swap(false, Ordering::Relaxed) {
            tracing::warn!(engine = %name, "engine resumed");
        }
        Ok(())
    }
}

impl crate::engines::EngineEntry {
    /// `Err(EngineDrained)` for new work on a drained engine (a call, or
    /// a transaction's first statement on it).
    pub(crate) fn refuse_if_drained(&self) -> Result<()> {
        if self.service.is_draining() {
            return Err(Error::EngineDrained {
                engine: self.name().to_owned(),
            });
        }
        Ok(())
    }
}
