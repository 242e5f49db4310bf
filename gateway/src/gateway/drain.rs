//! Draining an engine: taking it out of service on purpose. A drained
//! engine takes no new calls (UNAVAILABLE saying so), while calls already
//! running on it and open transactions with a part on it finish; the
//! gateway says when nothing is left in flight.

use super::{CallContext, Gateway};
use crate::error::Result;

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
        if !engine.service.set_draining(true) {
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
        if engine.service.set_draining(false) {
            tracing::warn!(engine = %name, "engine resumed");
        }
        Ok(())
    }
}
