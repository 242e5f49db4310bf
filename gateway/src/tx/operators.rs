//! The operators' view of transactions not yet finished (`ListTransactions`,
//! `omnigate tx list|show`) and their hand for what recovery cannot decide
//! or finish (`ResolveTransaction`, `omnigate tx resolve`). A resolution
//! that would contradict a recorded decision is refused.

use std::time::{Duration, Instant};

use super::Transactions;
use super::log::{PartRecord, engines_of};
use crate::error::{Error, Result, short};
use crate::router::Router;

/// Where a transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxState {
    /// Open on this gateway: its client runs statements, then commits or
    /// rolls back.
    Active,
    /// Prepared everywhere, not decided (recovery rolls it back unless an
    /// operator resolves it first).
    Prepared,
    /// Decided to commit, not yet finished on every engine.
    Committing,
    /// Committed, but a buffered engine failed a write as it was applied
    /// (Redis applied the others; FalkorDB none).
    FailedAfterCommit,
}

/// A transaction not yet finished, as operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxInfo {
    /// Its id.
    pub tx_id: String,
    /// Where it stands.
    pub state: TxState,
    /// The engines it touched (as far as known).
    pub engines: Vec<String>,
    /// How long since it began (active) or was recorded, if known.
    pub age: Option<Duration>,
    /// More: why it failed, its global ids, what it waits for.
    pub detail: String,
    /// Failed after commit: the writes the failing engine was to apply,
    /// as its arguments (what an operator re-applies to mend the data).
    pub writes: Vec<omnigate_drivers::Redo>,
}

/// How many bytes of a failed transaction's writes one listing carries:
/// a transaction may buffer far more than a response may hold, and one
/// such entry must not make the operators' list unreadable.
const LISTED_WRITES_BYTES: usize = 1 << 20;

/// The writes of a failure as a listing carries them (the first ones, up
/// to [`LISTED_WRITES_BYTES`]), and `detail` saying so when some are left
/// out.
fn listed_writes(detail: String, redo: &[Vec<String>]) -> (String, Vec<omnigate_drivers::Redo>) {
    let mut writes = Vec::new();
    let mut bytes = 0;
    for args in redo {
        let Some(write) = super::log::decode_args(args) else {
            continue;
        };
        bytes += write.iter().map(bytes::Bytes::len).sum::<usize>();
        if bytes > LISTED_WRITES_BYTES {
            let detail = format!(
                "{detail}; the first {} of its {} writes are listed (the log holds them all)",
                writes.len(),
                redo.len()
            );
            return (detail, writes);
        }
        writes.push(write);
    }
    (detail, writes)
}

fn age_since(at_ms: Option<i64>) -> Option<Duration> {
    let at = at_ms?;
    let now = omnigate_drivers::ts::now_millis();
    Some(Duration::from_millis(u64::try_from(now - at).unwrap_or(0)))
}

fn gids(parts: &[PartRecord]) -> String {
    let gids: Vec<&str> = parts
        .iter()
        .filter_map(|p| match p {
            PartRecord::Prepared { gid, .. } => Some(gid.as_str()),
            PartRecord::Buffered { .. } | PartRecord::BufferedPerEngine { .. } => None,
        })
        .collect();
    if gids.is_empty() {
        String::new()
    } else {
        format!("prepared as {}", gids.join(", "))
    }
}

impl Transactions {
    /// Every transaction not yet finished: open here, committing here,
    /// decided and unfinished (deciding engines' markers), in the log, and
    /// failed after commit.
    pub async fn list(&self, router: &Router) -> Vec<TxInfo> {
        let mut found: Vec<TxInfo> = Vec::new();
        let now = Instant::now();
        for (key, handle) in self.open_handles() {
            let id = Self::id_of(&key).to_owned();
            let (engines, age, detail) = match handle.try_lock() {
                Ok(guard) => match guard.as_ref() {
                    Some(tx) => (
                        tx.parts.iter().map(|p| p.engine.clone()).collect(),
                        Some(now.saturating_duration_since(tx.begun)),
                        format!(
                            "idle {} ms",
                            now.saturating_duration_since(tx.last_used).as_millis()
                        ),
                    ),
                    None => continue,
                },
                Err(_) => (Vec::new(), None, "running a statement or its commit".into()),
            };
            let state = if self.coordinator.is_committing(&id) {
                TxState::Committing
            } else {
                TxState::Active
            };
            found.push(TxInfo {
                tx_id: id,
                state,
                engines,
                age,
                detail,
                writes: Vec::new(),
            });
        }
        for (engine, decider) in self.coordinator.deciders(router).await.ready {
            let Ok(unfinished) = decider.unfinished().await else {
                continue;
            };
            for marker in unfinished {
                // Finished everywhere; only its marker's "done" is on the
                // way (batched): neither committing nor in doubt.
                if self.coordinator.forgetter.is_pending(&marker.tx) {
                    continue;
                }
                let mut engines = vec![engine.name().to_owned()];
                engines.extend(engines_of(&marker.parts));
                found.push(TxInfo {
                    state: TxState::Committing,
                    engines,
                    age: age_since(marker.at_ms),
                    detail: format!(
                        "decided by {}'s marker; {}",
                        engine.name(),
                        gids(&marker.parts)
                    ),
                    tx_id: marker.tx,
                    writes: Vec::new(),
                });
            }
        }
        if let Some(log) = self.coordinator.existing_log().await {
            if let Ok(doubts) = log.in_doubt(Duration::ZERO).await {
                for doubt in doubts {
                    found.push(TxInfo {
                        state: if doubt.committed {
                            TxState::Committing
                        } else {
                            TxState::Prepared
                        },
                        engines: engines_of(&doubt.parts),
                        age: age_since(doubt.at_ms),
                        detail: format!("in the log; {}", gids(&doubt.parts)),
                        tx_id: doubt.tx,
                        writes: Vec::new(),
                    });
                }
            }
            if let Ok(failures) = log.failures().await {
                for failure in failures {
                    let (detail, writes) = listed_writes(failure.why, &failure.redo);
                    found.push(TxInfo {
                        tx_id: failure.tx,
                        state: TxState::FailedAfterCommit,
                        engines: vec![failure.engine],
                        age: None,
                        detail,
                        writes,
                    });
                }
            }
        }
        // One entry per transaction: the furthest state wins.
        let rank = |s: TxState| match s {
            TxState::Active => 0,
            TxState::Prepared => 1,
            TxState::Committing => 2,
            TxState::FailedAfterCommit => 3,
        };
        found.sort_by(|a, b| {
            a.tx_id
                .cmp(&b.tx_id)
                .then(rank(b.state).cmp(&rank(a.state)))
        });
        found.dedup_by(|a, b| a.tx_id == b.tx_id);
        found
    }

    /// Resolves transaction `id` by hand: `commit` finishes it forward,
    /// else it is rolled back. Refused where that would contradict a
    /// recorded decision; what it did, in words.
    pub async fn resolve(
        self: &std::sync::Arc<Self>,
        router: &Router,
        id: &str,
        commit: bool,
    ) -> Result<String> {
        let Some(info) = self.list(router).await.into_iter().find(|t| t.tx_id == id) else {
            return Err(Error::TxNotFound { id: short(id) });
        };
        let refuse = |why: String| Err(Error::TxResolve { why });
        match (info.state, commit) {
            (TxState::Active, true) => refuse(
                "the transaction is open: its client commits it (Commit); resolve can only roll it back"
                    .into(),
            ),
            (TxState::Active, false) => {
                // Its registry key names its owner: found by its id.
                let key = self
                    .open_handles()
                    .into_iter()
                    .map(|(key, _)| key)
                    .find(|key| Self::id_of(key) == id)
                    .ok_or_else(|| Error::TxNotFound { id: short(id) })?;
                match self.take(&key).await? {
                    super::Taken::Open(tx, ending) => {
                        ending.finish(super::Outcome::only(super::Ended::RolledBack));
                        tx.rollback().await;
                        Ok("rolled back".into())
                    }
                    super::Taken::Ended(outcome) => Ok(format!(
                        "it had ended meanwhile: it {}",
                        outcome.how.as_str()
                    )),
                }
            }
            (TxState::Committing, false) | (TxState::FailedAfterCommit, false) => refuse(
                "the transaction is decided to commit (a recorded decision): it can only be \
                 finished forward, with --commit"
                    .into(),
            ),
            (TxState::FailedAfterCommit, true) => {
                let Some(log) = self.coordinator.existing_log().await else {
                    return Err(Error::TxNotFound { id: short(id) });
                };
                log.acknowledge(id)
                    .await
                    .map_err(|e| Error::TxLog { why: e.to_string() })?;
                Ok("acknowledged: it leaves the list (mend the engine's data by hand first)".into())
            }
            (TxState::Committing | TxState::Prepared, _) => {
                let pass = self.coordinator.resolve(router, id, commit).await?;
                Ok(pass)
            }
        }
    }
}
