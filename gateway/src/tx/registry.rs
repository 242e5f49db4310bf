//! The open transactions by id, their idle expiry, and how the recently
//! ended ones ended.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{Coordinator, Ended, Tx, TxHandle, TxOptions};
use crate::error::{Error, Result, short};

/// How long an ended transaction's outcome is remembered.
pub(crate) const REMEMBER_ENDED: Duration = Duration::from_secs(15 * 60);

/// How often idle transactions are looked for.
const REAP_EVERY: Duration = Duration::from_millis(500);

/// How a transaction ended, and on which engines it committed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// How it ended.
    pub how: Ended,
    /// The engines it committed on (empty unless committed).
    pub engines: Vec<String>,
    /// Committed, but this engine failed a write as it was applied, and why.
    pub failed_after_commit: Option<(String, String)>,
}

/// What a commit answers its caller: the engines it committed on, and the
/// replies buffered engines gave their writes as they applied them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Committed {
    /// The engines it committed on.
    pub engines: Vec<String>,
    /// Per buffered engine, its writes' replies in the order sent (see
    /// [`DriverTransaction::commit_replies`]); an engine is missing where
    /// they are not known (recovery applied them, or the commit is
    /// answered again from its outcome).
    ///
    /// [`DriverTransaction::commit_replies`]: omnigate_drivers::DriverTransaction::commit_replies
    pub replies: Vec<(String, Vec<omnigate_drivers::Value>)>,
}

impl Committed {
    /// Committed on `engines`, with no replies known.
    pub(crate) fn on(engines: Vec<String>) -> Self {
        Committed {
            engines,
            replies: Vec::new(),
        }
    }

    /// The replies `engine` gave its writes, when known.
    pub fn replies_of(&self, engine: &str) -> Option<&[omnigate_drivers::Value]> {
        self.replies
            .iter()
            .find(|(e, _)| e == engine)
            .map(|(_, r)| r.as_slice())
    }
}

impl Outcome {
    /// An outcome without engines or failure.
    pub(crate) fn only(how: Ended) -> Self {
        Outcome {
            how,
            ..Outcome::default()
        }
    }
}

/// What [`Transactions::take`] found.
#[derive(Debug)]
pub(crate) enum Taken {
    /// The transaction, now this caller's to end; `Ending` records how.
    Open(Tx, Ending),
    /// It had ended (or another call ended it while this one waited).
    Ended(Arc<Outcome>),
}

/// The open transactions, and the outcomes of the recently ended ones.
///
/// A transaction is in exactly one of three places: open (its handle in
/// `open`), ending (a Commit or Rollback took it and runs; its id in
/// `ending` with a signal set when it has ended), or ended (its outcome in
/// `ended`). It moves open → ending under its handle's lock, and ending →
/// ended by recording the outcome before it leaves `ending`, so a caller
/// always finds it in one of them and hears the truth: a late Commit waits
/// for the running one and answers its outcome.
#[derive(Debug)]
pub struct Transactions {
    open: Mutex<HashMap<String, TxHandle>>,
    ending: Mutex<HashMap<String, watch::Receiver<bool>>>,
    ended: moka::sync::Cache<String, Arc<Outcome>>,
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
            ending: Mutex::new(HashMap::new()),
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

    fn ending_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Receiver<bool>>> {
        self.ending
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

    /// A new transaction id, bound to `owner` (a principal's name): a
    /// UUID of 64 random bits and 64 bits of a hash of them with the
    /// owner's name. A lookup the registry cannot answer (after a restart,
    /// from the markers and the log) answers only the owner: another
    /// principal holding the id finds it not issued to it, as the
    /// registry's own keys would have it.
    pub(crate) fn new_id(owner: Option<&str>) -> String {
        let mut bytes = *uuid::Uuid::new_v4().as_bytes();
        // Version 8 (RFC 9562's custom layout): told from the plain random
        // (version 4) ids earlier versions issued.
        bytes[6] = (bytes[6] & 0x0f) | 0x80;
        let tag = id_tag(owner, &bytes[..8]);
        bytes[8..].copy_from_slice(&tag);
        uuid::Uuid::from_bytes(bytes).to_string()
    }

    /// Whether `id` is of the gateway's form and was issued to `owner`. An
    /// id an earlier version issued (a random UUID, bound to no one) is
    /// taken as anyone's, as that version took it, so that a Commit retried
    /// across the upgrade still hears its outcome.
    pub(crate) fn issued_to(id: &str, owner: Option<&str>) -> bool {
        uuid::Uuid::parse_str(id).is_ok_and(|uuid| {
            let bytes = uuid.as_bytes();
            match uuid.get_version_num() {
                4 => true,
                8 => id_tag(owner, &bytes[..8]) == bytes[8..],
                _ => false,
            }
        })
    }

    /// The transaction id of a registry key.
    pub(crate) fn id_of(key: &str) -> &str {
        key.rsplit('\0').next().unwrap_or(key)
    }

    /// Begins a transaction for `owner`, which may buffer up to `limit`:
    /// its id, and how long it may stay idle.
    pub(crate) fn begin(
        &self,
        options: &TxOptions,
        owner: Option<&str>,
        limit: super::BufferLimit,
    ) -> (String, Duration) {
        let id = Self::new_id(owner);
        let tx = Tx::new(options, self.default_idle, limit);
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

    /// Why `id` is not open: it is ending, it ended (and how), or it never
    /// was.
    pub(crate) fn gone(&self, id: &str) -> Error {
        let short_id = short(Self::id_of(id));
        if self.ending_map().contains_key(id) {
            return Error::TxEnding { id: short_id };
        }
        match self.ended.get(id) {
            Some(outcome) => Error::TxEnded {
                id: short_id,
                how: outcome.how,
            },
            None => Error::TxNotFound { id: short_id },
        }
    }

    /// How `id` ended, waiting for a Commit or Rollback of it that is
    /// running (the caller's deadline bounds the wait); `None` when it is
    /// not known to have ended.
    pub(crate) async fn outcome(&self, id: &str) -> Option<Arc<Outcome>> {
        let running = self.ending_map().get(id).cloned();
        if let Some(mut done) = running {
            // An error: the ending was dropped without a signal, which
            // records its outcome first (see `Ending`'s Drop).
            let _ = done.wait_for(|ended| *ended).await;
        }
        self.ended.get(id)
    }

    /// Takes `id`'s transaction out of the open ones, to end it: it is
    /// then ending until the returned [`Ending`] records how it ended. One
    /// that expired while idle is rolled back here; one another call is
    /// ending is waited for. `Err` when it never was (or was forgotten).
    pub(crate) async fn take(self: &Arc<Self>, id: &str) -> Result<Taken> {
        let handle = self.open().get(id).cloned();
        if let Some(handle) = handle {
            let mut slot = handle.lock().await;
            self.expire_if_idle(id, &mut slot, Instant::now()).await;
            if let Some(tx) = slot.take() {
                let (signal, done) = watch::channel(false);
                // Ending before it leaves the open ones: never in neither.
                self.ending_map().insert(id.to_owned(), done);
                self.open().remove(id);
                let ending = Ending {
                    registry: Arc::clone(self),
                    key: id.to_owned(),
                    signal: Some(signal),
                };
                return Ok(Taken::Open(tx, ending));
            }
        }
        match self.outcome(id).await {
            Some(outcome) => Ok(Taken::Ended(outcome)),
            None => Err(Error::TxNotFound {
                id: short(Self::id_of(id)),
            }),
        }
    }

    /// Rolls back the transaction in `slot` and records it as expired if it
    /// has been idle past its timeout at `now`. The rollback runs on a task
    /// of its own: one hung engine must not hold up the caller (or every
    /// other transaction's expiry, when the caller is the reaper).
    async fn expire_if_idle(&self, id: &str, slot: &mut Option<Tx>, now: Instant) {
        if slot.as_ref().is_some_and(|tx| tx.idle_at(now))
            && let Some(tx) = slot.take()
        {
            self.ended(id, Outcome::only(Ended::Expired));
            self.open().remove(id);
            tracing::info!(tx_id = %Self::id_of(id), "transaction expired idle; rolled back");
            tokio::spawn(tx.rollback());
        }
    }

    /// Records how `id` ended.
    pub(crate) fn ended(&self, id: &str, outcome: Outcome) {
        self.coordinator.counters.ended(outcome.how);
        self.ended.insert(id.to_owned(), Arc::new(outcome));
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

/// A transaction being ended (committed or rolled back) by one call: it
/// records how it ended, then leaves the ending ones and wakes the calls
/// waiting for it. Dropped without [`Ending::finish`] (its task panicked),
/// the outcome is recorded as in doubt: recovery decides it.
#[derive(Debug)]
pub(crate) struct Ending {
    registry: Arc<Transactions>,
    key: String,
    signal: Option<watch::Sender<bool>>,
}

impl Ending {
    /// Records how the transaction ended.
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.end(outcome);
    }

    fn end(&mut self, outcome: Outcome) {
        let Some(signal) = self.signal.take() else {
            return;
        };
        self.registry.ended(&self.key, outcome);
        self.registry.ending_map().remove(&self.key);
        let _ = signal.send(true);
    }
}

impl Drop for Ending {
    fn drop(&mut self) {
        self.end(Outcome::only(Ended::InDoubt));
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

/// The owner half of a transaction id of random half `random`.
fn id_tag(owner: Option<&str>, random: &[u8]) -> [u8; 8] {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(b"omnigate transaction id\0");
    hash.update(owner.unwrap_or_default().as_bytes());
    hash.update([0]);
    hash.update(random);
    let digest = hash.finalize();
    let mut tag = [0; 8];
    tag.copy_from_slice(&digest[..8]);
    tag
}

#[cfg(test)]
mod tests {
    use super::Transactions;

    #[test]
    fn an_id_is_issued_to_its_owner_only_and_earlier_ids_to_anyone() {
        let id = Transactions::new_id(Some("app"));
        assert!(Transactions::issued_to(&id, Some("app")));
        assert!(!Transactions::issued_to(&id, Some("other")));
        assert!(!Transactions::issued_to(&id, None));
        let anonymous = Transactions::new_id(None);
        assert!(Transactions::issued_to(&anonymous, None));
        assert!(!Transactions::issued_to(&anonymous, Some("app")));
        // An earlier version's id: random, bound to no one.
        let earlier = uuid::Uuid::new_v4().to_string();
        assert!(Transactions::issued_to(&earlier, Some("app")));
        assert!(!Transactions::issued_to("not an id", Some("app")));
        assert!(!Transactions::issued_to(
            "00000000-0000-1000-8000-000000000000",
            None
        ));
    }
}
