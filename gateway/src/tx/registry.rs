//! The open transactions by id, their idle expiry, and how the recently
//! ended ones ended.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::{Coordinator, Ended, Tx, TxHandle, TxOptions};
use crate::error::{Error, Result};

/// How long an ended transaction's outcome is remembered.
const REMEMBER_ENDED: Duration = Duration::from_secs(15 * 60);

/// How often idle transactions are looked for.
const REAP_EVERY: Duration = Duration::from_millis(500);

/// The open transactions, and the outcomes of the recently ended ones.
#[derive(Debug)]
pub struct Transactions {
    open: Mutex<HashMap<String, TxHandle>>,
    ended: moka::sync::Cache<String, Ended>,
    default_idle: Duration,
    /// The cross-engine commit and its log.
    pub(crate) coordinator: Coordinator,
}

impl Transactions {
    /// What transactions did since start, and what is open or in doubt
    /// now (prepared or committing: in the log, or decided by a deciding
    /// engine's marker and not finished).
    pub async fn counters(&self, router: &crate::router::Router) -> Vec<(String, u64)> {
        use super::TxState;
        let mut counts = self.coordinator.counters.snapshot();
        counts.push(("open".into(), self.open_count() as u64));
        let in_doubt = self
            .list(router)
            .await
            .iter()
            .filter(|t| matches!(t.state, TxState::Prepared | TxState::Committing))
            .count();
        counts.push(("in_doubt".into(), in_doubt as u64));
        counts
    }
}

impl Transactions {
    /// A registry whose transactions expire after `default_idle` idle
    /// unless begun with their own timeout. Must run inside a Tokio
    /// runtime: idle transactions are rolled back in the background.
    pub fn new(default_idle: Duration, coordinator: Coordinator) -> Arc<Self> {
        let registry = Arc::new(Transactions {
            open: Mutex::new(HashMap::new()),
            ended: moka::sync::Cache::builder()
                .time_to_live(REMEMBER_ENDED)
                .max_capacity(1_000_000)
                .build(),
            default_idle,
            coordinator,
        });
        tokio::spawn(reap(Arc::downgrade(&registry)));
        registry
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<String, TxHandle>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The registry's key of transaction `id` begun by `owner` (a
    /// principal's name): another principal's lookup of the same id
    /// misses it, as if it did not exist.
    pub(crate) fn key(owner: Option<&str>, id: &str) -> String {
        match owner {
            Some(owner) => format!("{owner}\0{id}"),
            None => id.to_owned(),
        }
    }

    /// The transaction id of a registry key.
    pub(crate) fn id_of(key: &str) -> &str {
        key.rsplit('\0').next().unwrap_or(key)
    }

    /// Begins a transaction for `owner`: its id, and how long it may stay
    /// idle.
    pub(crate) fn begin(&self, options: &TxOptions, owner: Option<&str>) -> (String, Duration) {
        let id = uuid::Uuid::new_v4().to_string();
        let tx = Tx::new(options, self.default_idle);
        self.coordinator
            .counters
            .begun
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let idle = tx.idle_timeout;
        self.open().insert(
            Self::key(owner, &id),
            Arc::new(tokio::sync::Mutex::new(Some(tx))),
        );
        (id, idle)
    }

    /// Every open transaction's handle.
    pub(super) fn open_handles(&self) -> Vec<(String, TxHandle)> {
        self.open()
            .iter()
            .map(|(id, handle)| (id.clone(), Arc::clone(handle)))
            .collect()
    }

    /// The open transaction of key `id` (see [`Transactions::key`]), or
    /// why there is none. The same key names it in the methods below.
    pub(crate) fn get(&self, id: &str) -> Result<TxHandle> {
        if let Some(handle) = self.open().get(id) {
            return Ok(Arc::clone(handle));
        }
        Err(self.gone(id))
    }

    /// Why `id` is not open: it ended (and how), or it never was.
    pub(crate) fn gone(&self, id: &str) -> Error {
        match self.ended.get(id) {
            Some(how) => Error::TxEnded {
                id: Self::id_of(id).to_owned(),
                how,
            },
            None => Error::TxNotFound {
                id: Self::id_of(id).to_owned(),
            },
        }
    }

    /// Takes `id`'s transaction out of the open ones, to end it. `Err` when
    /// it is not open, or expired while idle (then it is rolled back here).
    pub(crate) async fn take(&self, id: &str) -> Result<Tx> {
        let handle = self.get(id)?;
        let mut slot = handle.lock().await;
        self.expire_if_idle(id, &mut slot, Instant::now()).await;
        let tx = slot.take().ok_or_else(|| self.gone(id))?;
        self.open().remove(id);
        Ok(tx)
    }

    /// Rolls back the transaction in `slot` and records it as expired if it
    /// has been idle past its timeout at `now`.
    async fn expire_if_idle(&self, id: &str, slot: &mut Option<Tx>, now: Instant) {
        if slot.as_ref().is_some_and(|tx| tx.idle_at(now))
            && let Some(tx) = slot.take()
        {
            self.open().remove(id);
            self.ended(id, Ended::Expired);
            tracing::info!(tx_id = %Self::id_of(id), "transaction expired idle; rolled back");
            tx.rollback().await;
        }
    }

    /// Records how `id` ended.
    pub(crate) fn ended(&self, id: &str, how: Ended) {
        self.coordinator.counters.ended(how);
        self.ended.insert(id.to_owned(), how);
    }

    /// Checks that the transaction in `slot` is still usable; an idle one
    /// is rolled back now and said to have expired.
    pub(crate) async fn usable<'a>(
        &self,
        id: &str,
        slot: &'a mut Option<Tx>,
    ) -> Result<&'a mut Tx> {
        self.expire_if_idle(id, slot, Instant::now()).await;
        slot.as_mut().ok_or_else(|| self.gone(id))
    }

    /// Open transactions with a part on engine `name` (one running a
    /// statement now is counted: it may be on it).
    pub(crate) async fn open_on(&self, name: &str) -> u64 {
        let mut count = 0;
        for (_, handle) in self.open_handles() {
            let on = match handle.try_lock() {
                Ok(slot) => slot
                    .as_ref()
                    .is_some_and(|tx| tx.parts.iter().any(|p| p.engine == name)),
                Err(_) => true,
            };
            count += u64::from(on);
        }
        count
    }

    /// Transactions open now.
    pub fn open_count(&self) -> usize {
        self.open().len()
    }

    /// Rolls back the transactions idle past their timeout.
    async fn expire_idle(&self) {
        let now = Instant::now();
        let candidates: Vec<(String, TxHandle)> = self
            .open()
            .iter()
            .map(|(id, handle)| (id.clone(), Arc::clone(handle)))
            .collect();
        for (id, handle) in candidates {
            // One that is in use now is not idle.
            let Ok(mut slot) = handle.try_lock() else {
                continue;
            };
            self.expire_if_idle(&id, &mut slot, now).await;
        }
    }
}

/// Expires idle transactions until the registry is gone.
async fn reap(registry: Weak<Transactions>) {
    let mut tick = tokio::time::interval(REAP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(registry) = registry.upgrade() else {
            return;
        };
        registry.expire_idle().await;
    }
}
