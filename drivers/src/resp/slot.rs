//! The engine's link (see `link.rs`) as its pool holds it: opened at the
//! first call and again after a break, by one caller at a time, each time
//! in a task of its own, so that a caller's deadline cannot cut an opening
//! short (callers with deadlines shorter than a connect would otherwise
//! never get a link).

use std::sync::{Arc, Mutex, PoisonError};

use super::connect::{OpenError, Target, open};
use super::link::Link;
use crate::pool::{AcquireError, PoolMetrics};

/// Where the pool keeps its link.
#[derive(Debug)]
pub(crate) struct LinkSlot {
    target: Target,
    link: Mutex<Option<Link>>,
    /// Held while a link is opened: callers arriving at a break open one,
    /// not one each.
    opening: tokio::sync::Mutex<()>,
    metrics: Arc<PoolMetrics>,
}

impl LinkSlot {
    /// An empty slot for links to `target`, counted in `metrics`.
    pub(crate) fn new(target: Target, metrics: Arc<PoolMetrics>) -> Arc<LinkSlot> {
        Arc::new(LinkSlot {
            target,
            link: Mutex::new(None),
            opening: tokio::sync::Mutex::new(()),
            metrics,
        })
    }

    /// The link, unless there is none yet or it broke.
    pub(crate) fn live(&self) -> Option<Link> {
        self.link
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|link| !link.is_broken())
            .cloned()
    }

    /// The live link, or a new one opened in a task of its own (which
    /// goes on if this caller goes away, and leaves the link for the next).
    pub(crate) async fn open(self: &Arc<Self>) -> Result<Link, AcquireError<OpenError>> {
        let slot = Arc::clone(self);
        tokio::spawn(async move { slot.open_here().await })
            .await
            .unwrap_or_else(|e| {
                Err(AcquireError::Connect(OpenError::new(format!(
                    "the task opening the connection failed: {e}"
                ))))
            })
    }

    async fn open_here(&self) -> Result<Link, AcquireError<OpenError>> {
        let _opening = self.opening.lock().await;
        if let Some(link) = self.live() {
            return Ok(link);
        }
        let link = open(&self.target).await.map_err(AcquireError::Connect)?;
        self.metrics.created();
        *self.link.lock().unwrap_or_else(PoisonError::into_inner) = Some(link.clone());
        Ok(link)
    }
}
