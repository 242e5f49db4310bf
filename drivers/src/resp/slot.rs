//! The engine's link (see `link.rs`) as its pool holds it: opened at the
//! first call and again after a break, in a task of its own so that a
//! caller's deadline cannot cut an opening short (callers with deadlines
//! shorter than a connect would otherwise never get a link), one opening
//! at a time: callers arriving while one runs wait for its outcome, and
//! do not queue connects of their own.

use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use super::connect::{OpenError, Target, open};
use super::link::Link;
use crate::pool::{AcquireError, PoolMetrics};

/// An opening under way, its outcome shared by whoever waits for it.
type Opening = Shared<BoxFuture<'static, Result<Link, OpenError>>>;

/// Where the pool keeps its link.
#[derive(Debug)]
pub(crate) struct LinkSlot {
    target: Target,
    link: Mutex<Option<Link>>,
    /// The opening under way, if one is.
    opening: Mutex<Option<Opening>>,
    metrics: Arc<PoolMetrics>,
}

impl LinkSlot {
    /// An empty slot for links to `target`, counted in `metrics`.
    pub(crate) fn new(target: Target, metrics: Arc<PoolMetrics>) -> Arc<LinkSlot> {
        Arc::new(LinkSlot {
            target,
            link: Mutex::new(None),
            opening: Mutex::new(None),
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

    /// The live link, or the outcome of the opening under way, or of a
    /// new one started in a task of its own (which goes on if this caller
    /// goes away, and leaves the link for the next).
    pub(crate) async fn open(self: &Arc<Self>) -> Result<Link, AcquireError<OpenError>> {
        let opening = {
            let mut opening = self.opening.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(link) = self.live() {
                return Ok(link);
            }
            match &*opening {
                Some(under_way) => under_way.clone(),
                None => {
                    let slot = Arc::clone(self);
                    let task = tokio::spawn(async move { slot.open_here().await });
                    let started = async move {
                        task.await.unwrap_or_else(|e| {
                            Err(OpenError::new(format!(
                                "the task opening the connection failed: {e}"
                            )))
                        })
                    }
                    .boxed()
                    .shared();
                    *opening = Some(started.clone());
                    started
                }
            }
        };
        opening.await.map_err(AcquireError::Connect)
    }

    async fn open_here(&self) -> Result<Link, OpenError> {
        let opened = open(&self.target).await;
        if let Ok(link) = &opened {
            self.metrics.created();
            *self.link.lock().unwrap_or_else(PoisonError::into_inner) = Some(link.clone());
        }
        // The next break starts an opening of its own.
        *self.opening.lock().unwrap_or_else(PoisonError::into_inner) = None;
        opened
    }
}
