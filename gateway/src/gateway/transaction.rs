//! Transactions through the gateway: `begin`, `commit` and `rollback` by
//! id (what the gRPC service calls), and [`Transaction`], the library's
//! handle, which rolls back when dropped uncommitted.

use std::time::Duration;

use omnigate_drivers::{ResultSet, Statement};

use super::pipeline::Routed;
use super::{CallContext, Caller, Gateway, Request, Response};
use crate::error::{Error, Result};
use crate::tx::{Ended, TxOptions};

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
        let mut options = options.clone();
        if let Some(p) = principal {
            options.read_only |= p.grant.read_only;
        }
        Ok(self
            .inner
            .transactions
            .begin(&options, principal.map(|p| p.name.as_str())))
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

    /// Commits transaction `id` on every engine it touched; the engines.
    pub async fn commit(&self, context: &CallContext, id: &str) -> Result<Vec<String>> {
        let key = self.tx_key(context, id)?;
        let transactions = &self.inner.transactions;
        let tx = transactions.take(&key).await?;
        let outcome = tx.commit(id, &transactions.coordinator).await;
        transactions.ended(
            &key,
            match outcome {
                Ok(_) | Err(Error::TxFailedAfterCommit { .. }) => Ended::Committed,
                Err(Error::TxInDoubt { .. }) => Ended::InDoubt,
                Err(_) => Ended::RolledBack,
            },
        );
        outcome
    }

    /// Rolls transaction `id` back on every engine it touched.
    pub async fn rollback(&self, context: &CallContext, id: &str) -> Result<()> {
        let key = self.tx_key(context, id)?;
        let transactions = &self.inner.transactions;
        let tx = transactions.take(&key).await?;
        tx.rollback().await;
        transactions.ended(&key, Ended::RolledBack);
        Ok(())
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

/// An open transaction, for a library caller: statements run in it with
/// [`execute`](Transaction::execute); [`commit`](Transaction::commit) or
/// [`rollback`](Transaction::rollback) end it, and dropping it uncommitted
/// rolls it back.
///
/// ```
/// use omnigate::{Gateway, Request};
/// use omnigate::tx::TxOptions;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let gateway = Gateway::builder().build().await?;
/// gateway.execute(Request::new("sql", "CREATE TABLE t (v INTEGER)")).await?;
/// let tx = gateway.begin(TxOptions::default())?;
/// tx.execute(Request::new("sql", "INSERT INTO t VALUES (1)")).await?;
/// tx.commit().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Transaction {
    gateway: Gateway,
    id: String,
    /// Its caller, for each of its calls.
    context: CallContext,
    open: bool,
}

impl Transaction {
    /// The transaction's id (what gRPC callers pass as `tx_id`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs `request` inside the transaction.
    pub async fn execute(&self, mut request: Request) -> Result<Response> {
        request.context.tx_id = Some(self.id.clone());
        request.context.caller = self.context.caller.clone();
        self.gateway.execute(request).await
    }

    /// Commits on every engine the transaction touched; those engines.
    pub async fn commit(mut self) -> Result<Vec<String>> {
        self.open = false;
        self.gateway.commit(&self.context, &self.id).await
    }

    /// Rolls back on every engine the transaction touched.
    pub async fn rollback(mut self) -> Result<()> {
        self.open = false;
        self.gateway.rollback(&self.context, &self.id).await
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        // Rolled back now when a runtime is at hand, else by idle expiry.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let gateway = self.gateway.clone();
            let id = std::mem::take(&mut self.id);
            let context = std::mem::take(&mut self.context);
            runtime.spawn(async move {
                let _ = gateway.rollback(&context, &id).await;
            });
        }
    }
}
