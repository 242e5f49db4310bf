//! Transactions through the gateway: `begin`, `commit` and `rollback` by
//! id (what the gRPC service calls), and [`Transaction`], the library's
//! handle, which rolls back when dropped uncommitted.

use std::time::Duration;

use omnigate_drivers::{ResultSet, RowStream, Statement};

use super::handle::Transaction;
use super::pipeline::Routed;
use super::{CallContext, Caller, Gateway};
use crate::error::{Error, Result};
use crate::tx::{Committed, Ended, Outcome, Taken, TxOptions};

/// The longest idle timeout a caller may ask for: a transaction holds
/// connections and locks, and an operator's view must see it end.
pub(crate) const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

impl Gateway {
    /// Begins a transaction for the context's caller (it belongs to that
    /// caller: another one gets NOT_FOUND for its id): its id and how long
    /// it may stay idle. A read-only caller's transaction is read-only.
    pub fn begin_id(
        &self,
        context: &CallContext,
        options: &TxOptions,
    ) -> Result<(String, Duration)> {
        let principal = self.caller(context)?;
        if let Some(idle) = options.idle_timeout
            && (idle.is_zero() || idle > MAX_IDLE_TIMEOUT)
        {
            return Err(Error::InvalidOption {
                option: "idle_timeout",
                why: format!(
                    "{idle:?} is out of range: give a duration above zero and at most {}",
                    humantime::format_duration(MAX_IDLE_TIMEOUT)
                ),
            });
        }
        let mut options = options.clone();
        let mut limit = self.inner.live.load().limits.tx_buffered;
        if let Some(p) = principal {
            p.grant
                .restrict(&mut options.read_only, &mut options.restricted);
            let (statements, bytes) = p.limiter.tx_buffered;
            limit = limit.lowered(statements, bytes);
        }
        Ok(self
            .inner
            .transactions
            .begin(&options, principal.map(|p| p.name.as_str()), limit))
    }

    /// Begins a transaction as an anonymous caller (a gateway without
    /// principals) and returns its handle.
    pub fn begin(&self, options: TxOptions) -> Result<Transaction> {
        self.begin_as(Caller::Anonymous, options)
    }

    /// Begins a transaction as `caller` and returns its handle; its
    /// statements run as that caller.
    pub fn begin_as(&self, caller: Caller, options: TxOptions) -> Result<Transaction> {
        let context = CallContext::anonymous().as_caller(caller);
        let (id, _) = self.begin_id(&context, &options)?;
        Ok(Transaction {
            gateway: self.clone(),
            id,
            context,
            open: true,
        })
    }

    /// The registry key of the context caller's transaction `id`.
    fn tx_key(&self, context: &CallContext, id: &str) -> Result<String> {
        let owner = self.caller(context)?.map(|p| p.name.as_str());
        Ok(crate::tx::Transactions::key(owner, id))
    }

    /// `Ok` when transaction `id` of the context's caller is open (a front
    /// end's session joining it checks so), else why not: it is ending,
    /// it ended (and how), or there is no such transaction of this caller.
    pub fn check_open(&self, context: &CallContext, id: &str) -> Result<()> {
        let key = self.tx_key(context, id)?;
        self.inner.transactions.get(&key).map(|_| ())
    }

    /// Commits transaction `id` on every engine it touched; the engines.
    ///
    /// The commit runs on a task of its own: once begun it runs to its end
    /// (each step bounded by `[transactions] step_timeout`) whatever happens
    /// to this call, whose caller's deadline bounds only its wait. A Commit
    /// of an id whose commit is running, or has ended, answers that commit's
    /// outcome (the same engines when it committed): Commit may be retried.
    pub async fn commit(&self, context: &CallContext, id: &str) -> Result<Vec<String>> {
        self.commit_with_replies(context, id)
            .await
            .map(|committed| committed.engines)
    }

    /// [`commit`], with the replies buffered engines gave the writes as
    /// they applied them (a Redis front end's `EXEC` answers with them).
    /// A Commit answered again, from the outcome recorded, knows none.
    ///
    /// [`commit`]: Gateway::commit
    pub async fn commit_with_replies(&self, context: &CallContext, id: &str) -> Result<Committed> {
        let key = self.tx_key(context, id)?;
        let transactions = &self.inner.transactions;
        let taken = match transactions.take(&key).await {
            // Not in memory (a restart, or past the ended window): as the
            // markers and the log tell, if they know it.
            Err(Error::TxNotFound { .. }) => return self.recorded_answer(context, id).await,
            other => other?,
        };
        let (tx, ending) = match taken {
            Taken::Open(tx, ending) => (tx, ending),
            // In doubt when it ended: recovery may have decided it since.
            Taken::Ended(outcome) if outcome.how == Ended::InDoubt => {
                return match self.recorded_answer(context, id).await {
                    Err(Error::TxNotFound { .. }) => commit_answer(id, &outcome),
                    answer => answer,
                };
            }
            Taken::Ended(outcome) => return commit_answer(id, &outcome),
        };
        let (answer, answered) = tokio::sync::oneshot::channel();
        let registry = std::sync::Arc::clone(transactions);
        let id = id.to_owned();
        tokio::spawn(async move {
            let outcome = tx.commit(&id, &registry.coordinator).await;
            ending.finish(outcome_of(&outcome));
            // The caller may have gone: the outcome is recorded anyway.
            let _ = answer.send(outcome);
        });
        answered.await.unwrap_or_else(|_| {
            Err(Error::TxInDoubt {
                why: "the commit's task ended without an outcome".into(),
            })
        })
    }

    /// What a Commit of `id` hears from the deciding engines' markers and
    /// the log (an id this gateway does not remember). Only an id the
    /// gateway issued to the caller is looked for: another principal's id
    /// is not found, as in memory, and a client's random strings cost no
    /// reads of the engines or the log.
    async fn recorded_answer(&self, context: &CallContext, id: &str) -> Result<Committed> {
        let not_found = || Error::TxNotFound {
            id: crate::error::short(id),
        };
        let owner = self.caller(context)?.map(|p| p.name.as_str());
        if !crate::tx::Transactions::issued_to(id, owner) {
            return Err(not_found());
        }
        let coordinator = &self.inner.transactions.coordinator;
        match coordinator.recorded_outcome(&self.router(), id).await {
            Some(outcome) => commit_answer(id, &outcome),
            None => Err(not_found()),
        }
    }

    /// Rolls transaction `id` back on every engine it touched. A Rollback
    /// of one already rolled back answers OK; of one committed (or whose
    /// commit is running and then commits), `FAILED_PRECONDITION`.
    pub async fn rollback(&self, context: &CallContext, id: &str) -> Result<()> {
        let key = self.tx_key(context, id)?;
        let transactions = &self.inner.transactions;
        match transactions.take(&key).await? {
            Taken::Open(tx, ending) => {
                // Recorded as rolled back first: a rollback cannot fail to
                // happen (a part that cannot roll back is rolled back by
                // its engine when its connection goes).
                ending.finish(Outcome::only(Ended::RolledBack));
                tx.rollback().await;
                Ok(())
            }
            Taken::Ended(outcome) if outcome.how == Ended::RolledBack => Ok(()),
            Taken::Ended(outcome) => Err(ended_error(id, &outcome)),
        }
    }

    /// `Err(PermissionDenied)` unless the caller is an operator (an
    /// `admin` principal, or anyone on a gateway without principals).
    pub(super) fn check_admin(&self, context: &CallContext, action: &str) -> Result<()> {
        match self.caller(context)? {
            Some(p) if !p.grant.admin => Err(Error::PermissionDenied {
                principal: p.name.clone(),
                action: action.to_owned(),
                rule: format!("principals.{}.admin", p.name),
            }),
            _ => Ok(()),
        }
    }

    /// Every transaction not yet finished, for operators.
    pub async fn list_transactions(&self, context: &CallContext) -> Result<Vec<crate::tx::TxInfo>> {
        self.check_admin(context, "list transactions")?;
        Ok(self.inner.transactions.list(&self.router()).await)
    }

    /// Resolves transaction `id` by hand (`commit`, else roll back); what
    /// it did, in words.
    pub async fn resolve_transaction(
        &self,
        context: &CallContext,
        id: &str,
        commit: bool,
    ) -> Result<String> {
        self.check_admin(context, "resolve transactions")?;
        let outcome = self
            .inner
            .transactions
            .resolve(&self.router(), id, commit)
            .await;
        match &outcome {
            Ok(done) => {
                tracing::warn!(tx_id = %id, commit, outcome = %done, "transaction resolved by an operator")
            }
            Err(e) => {
                tracing::warn!(tx_id = %id, commit, error = %e, "an operator's resolution was refused")
            }
        }
        outcome
    }

    /// One recovery pass over the transaction log (it also runs at startup
    /// and every `recovery_interval`).
    pub async fn recover_transactions(&self) -> crate::tx::Recovered {
        self.inner
            .transactions
            .coordinator
            .recover(&self.router())
            .await
    }

    /// The cross-engine commit's failpoints (tests only).
    #[cfg(feature = "failpoints")]
    pub fn failpoints(&self) -> &crate::tx::failpoint::Failpoints {
        &self.inner.transactions.coordinator.failpoints
    }

    /// What transactions did since start, and what is open or in doubt now.
    pub async fn transaction_counters(&self) -> Vec<(String, u64)> {
        self.inner.transactions.counters(&self.router()).await
    }

    /// What transactions did since start, and how many are open now, from
    /// memory alone (what a metrics scrape reads).
    pub fn transaction_counts_now(&self) -> (Vec<(String, u64)>, u64) {
        let transactions = &self.inner.transactions;
        (
            transactions.coordinator.counters.snapshot(),
            transactions.open_count() as u64,
        )
    }

    /// Transactions open now.
    pub fn open_transactions(&self) -> usize {
        self.inner.transactions.open_count()
    }

    /// Runs one statement in transaction `id` and returns its rows as they
    /// come (see `Tx::execute_stream`), its start under the call's deadline.
    pub(super) async fn run_stream_in_tx(
        &self,
        routed: &Routed,
        id: &str,
        statement: Statement,
    ) -> Result<RowStream> {
        let started = std::time::Instant::now();
        let transactions = &self.inner.transactions;
        let (key, mut slot) = self.locked_tx(routed, id).await?;
        let tx = transactions.usable(&key, &mut slot).await?;
        let work = async {
            Ok(tx
                .execute_stream(
                    &transactions.coordinator,
                    &routed.engine,
                    routed.dialect,
                    &statement,
                    &routed.options,
                )
                .await)
        };
        let deadline = Some(routed.timeout());
        let backstop = super::pipeline::BACKSTOP;
        let outcome = omnigate_drivers::deadline::within_margin(deadline, backstop, work).await;
        let outcome = super::pipeline::doomed_if_cut(&mut slot, outcome);
        record_in_tx(routed, started, &outcome);
        outcome
    }

    /// Transaction `id` of the routed call's caller, locked for the call
    /// (calls on one transaction take turns): its key and its slot.
    pub(super) async fn locked_tx(
        &self,
        routed: &Routed,
        id: &str,
    ) -> Result<(String, tokio::sync::OwnedMutexGuard<Option<crate::tx::Tx>>)> {
        let owner = routed.principal.as_ref().map(|p| p.name.as_str());
        let key = crate::tx::Transactions::key(owner, id);
        let handle = self.inner.transactions.get(&key)?;
        Ok((key, handle.lock_owned().await))
    }

    /// What `statement` takes and returns as transaction `id`'s part on
    /// the routed engine sees it; `None` when it has no part there yet or
    /// the engine cannot say inside it.
    pub(super) async fn describe_in_tx(
        &self,
        routed: &Routed,
        id: &str,
        statement: &Statement,
    ) -> Result<Option<omnigate_drivers::StatementShape>> {
        let started = std::time::Instant::now();
        let transactions = &self.inner.transactions;
        let (key, mut slot) = self.locked_tx(routed, id).await?;
        let tx = transactions.usable(&key, &mut slot).await?;
        let work = async {
            Ok(tx
                .describe(
                    routed.engine.name(),
                    routed.dialect,
                    statement,
                    &routed.options,
                )
                .await)
        };
        let deadline = Some(routed.timeout());
        let backstop = super::pipeline::BACKSTOP;
        // Cut, the Parse may still land (and a cancel with it).
        let outcome = omnigate_drivers::deadline::within_margin(deadline, backstop, work).await;
        let outcome = super::pipeline::doomed_if_cut(&mut slot, outcome.map(Option::transpose));
        let outcome = outcome.map_err(|e| match e {
            Error::Driver(e) => Error::Driver(routed.refuser()(e)),
            other => other,
        });
        if !matches!(outcome, Ok(None)) {
            record_in_tx(routed, started, &outcome);
        }
        outcome
    }

    /// Runs one statement in transaction `id`.
    pub(super) async fn run_one_in_tx(
        &self,
        routed: &Routed,
        id: &str,
        statement: Statement,
    ) -> Result<ResultSet> {
        // Boxed: a call outside a transaction does not carry room for the
        // transaction's larger future.
        let mut results =
            Box::pin(self.run_in_tx(routed, id, std::slice::from_ref(&statement))).await?;
        match results.pop() {
            Some(outcome) => outcome.map_err(Error::from),
            None => Ok(ResultSet::default()),
        }
    }
}

/// Counts a call in a transaction on its engine's counters, its failure
/// as the transaction's.
fn record_in_tx<T>(routed: &Routed, started: std::time::Instant, outcome: &Result<T>) {
    let recorded = outcome
        .as_ref()
        .map(drop)
        .map_err(|e| Error::TxAborted { why: e.to_string() });
    routed
        .engine
        .counters
        .record(routed.dialect, started, &recorded);
}

/// How a commit that answered `answer` ended, as later calls are told.
fn outcome_of(answer: &Result<Committed>) -> Outcome {
    match answer {
        Ok(committed) => Outcome {
            how: Ended::Committed,
            engines: committed.engines.clone(),
            failed_after_commit: None,
        },
        Err(Error::TxFailedAfterCommit { engine, why }) => Outcome {
            how: Ended::Committed,
            engines: Vec::new(),
            failed_after_commit: Some((engine.clone(), why.clone())),
        },
        Err(Error::TxInDoubt { .. }) => Outcome::only(Ended::InDoubt),
        Err(_) => Outcome::only(Ended::RolledBack),
    }
}

/// What a Commit of a transaction that had ended answers: what its commit
/// answered (a committed one's engines, or its failure after commit).
fn commit_answer(id: &str, outcome: &Outcome) -> Result<Committed> {
    match (&outcome.how, &outcome.failed_after_commit) {
        (Ended::Committed, None) => Ok(Committed::on(outcome.engines.clone())),
        (Ended::Committed, Some((engine, why))) => Err(Error::TxFailedAfterCommit {
            engine: engine.clone(),
            why: why.clone(),
        }),
        _ => Err(ended_error(id, outcome)),
    }
}

/// The error a call on a transaction that ended `outcome` hears.
fn ended_error(id: &str, outcome: &Outcome) -> Error {
    match outcome.how {
        Ended::InDoubt => Error::TxInDoubt {
            why: format!(
                "transaction {} ended with its outcome in doubt; recovery finishes it",
                crate::error::short(id)
            ),
        },
        how => Error::TxEnded {
            id: crate::error::short(id),
            how,
        },
    }
}
