//! Letting go of finished transactions' markers, in batches: once a
//! cross-engine commit has finished on every engine, its deciding
//! engine's marker is marked done and its buffered engines' markers are
//! set to expire. Off the caller's path, and gathered for a moment, so
//! that many commits cost one statement on the deciding engine and one
//! round trip on each buffered one instead of one each (a marker left
//! unmarked is one recovery finishes again: every step is idempotent).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use omnigate_drivers::StorageDriver;
use tokio::sync::mpsc;

use super::after::BufferedMarker;
use super::markers::Decider;

/// A transaction finished everywhere, whose markers may go.
pub(crate) struct Finished {
    /// Its deciding engine.
    pub decider: Arc<dyn StorageDriver>,
    /// The transaction.
    pub tx: String,
    /// The engines it committed on (the done marker names them).
    pub engines: Vec<String>,
    /// Its buffered engines' markers.
    pub buffered: Vec<BufferedMarker>,
}

/// How long finished transactions are gathered before their markers go.
const GATHER: Duration = Duration::from_millis(5);

/// How many go in one batch at most.
const BATCH: usize = 512;

/// How many may wait; past that, a transaction's markers go on their own.
const QUEUE: usize = 16_384;

/// The queue of finished transactions and the task that lets go of their
/// markers (it ends with the queue).
#[derive(Debug)]
pub(crate) struct Forgetter {
    queue: mpsc::Sender<Finished>,
    /// The transactions queued or being let go of: still this gateway's
    /// (recovery must not replay them meanwhile: a buffered write that
    /// failed after commit was reported to its client with the writes to
    /// redo, and a replay now would apply them before the operator does).
    pending: Pending,
}

type Pending = Arc<std::sync::Mutex<std::collections::HashSet<String>>>;

fn lock(pending: &Pending) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
    pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Forgetter {
    /// Starts the task (on the current Tokio runtime).
    pub(crate) fn start() -> Forgetter {
        let (queue, waiting) = mpsc::channel(QUEUE);
        let pending = Pending::default();
        tokio::spawn(run(waiting, Arc::clone(&pending)));
        Forgetter { queue, pending }
    }

    /// Lets go of `finished`'s markers soon.
    pub(crate) fn forget(&self, finished: Finished) {
        lock(&self.pending).insert(finished.tx.clone());
        if let Err(full) = self.queue.try_send(finished) {
            let finished = full.into_inner();
            tokio::spawn(forget_batch(vec![finished], Arc::clone(&self.pending)));
        }
    }

    /// Whether `tx` is waiting for its markers to go.
    pub(crate) fn is_pending(&self, tx: &str) -> bool {
        lock(&self.pending).contains(tx)
    }
}

async fn run(mut waiting: mpsc::Receiver<Finished>, pending: Pending) {
    while let Some(first) = waiting.recv().await {
        tokio::time::sleep(GATHER).await;
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match waiting.try_recv() {
                Ok(finished) => batch.push(finished),
                Err(_) => break,
            }
        }
        forget_batch(batch, Arc::clone(&pending)).await;
    }
}

/// How long one batch may take: an engine that does not answer must not
/// hold every other's markers (they stay for recovery).
const BATCH_LIMIT: Duration = Duration::from_secs(10);

/// A driver's identity, to group by.
fn key(driver: &Arc<dyn StorageDriver>) -> usize {
    Arc::as_ptr(driver).cast::<()>() as usize
}

async fn forget_batch(batch: Vec<Finished>, pending: Pending) {
    let txs: Vec<String> = batch.iter().map(|f| f.tx.clone()).collect();
    if tokio::time::timeout(BATCH_LIMIT, forget_all(batch))
        .await
        .is_err()
    {
        tracing::warn!(
            "letting go of finished transactions' markers took too long; recovery finishes what is left"
        );
    }
    let mut pending = lock(&pending);
    for tx in txs {
        pending.remove(&tx);
    }
}

async fn forget_all(batch: Vec<Finished>) {
    let mut by_decider: HashMap<usize, Vec<Finished>> = HashMap::new();
    for finished in batch {
        by_decider
            .entry(key(&finished.decider))
            .or_default()
            .push(finished);
    }
    type Markers = (
        Arc<dyn StorageDriver>,
        Vec<(String, Option<omnigate_drivers::Redo>)>,
    );
    let mut by_buffered: HashMap<usize, Markers> = HashMap::new();
    for group in by_decider.into_values() {
        let decider_driver = Arc::clone(&group[0].decider);
        let Some(decider) = Decider::of(decider_driver.as_ref()) else {
            continue;
        };
        let done: Vec<(String, Vec<String>)> = group
            .iter()
            .map(|f| (f.tx.clone(), f.engines.clone()))
            .collect();
        let marked = decider.forget_many(&done).await;
        // The buffered markers go only once the decision is marked done: a
        // marker not done is replayed by recovery, which must find them.
        for (finished, marked) in group.into_iter().zip(marked) {
            if !marked {
                continue;
            }
            for (driver, head, marker) in finished.buffered {
                by_buffered
                    .entry(key(&driver))
                    .or_insert_with(|| (Arc::clone(&driver), Vec::new()))
                    .1
                    .push((marker, head));
            }
        }
    }
    for (driver, markers) in by_buffered.into_values() {
        if let Err(e) = driver.forget_markers(&markers).await {
            tracing::debug!(engine = %driver.descriptor().name, error = %e, "letting go of finished transactions' markers");
        }
    }
}
