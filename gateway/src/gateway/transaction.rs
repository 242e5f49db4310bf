//! Transactions through the gateway: `begin`, `commit` and `rollback` by
//! id (what the gRPC service calls), and [`Transaction`], the library's
//! handle, which rolls back when dropped uncommitted.

use std::time::Duration;

use omnigate_drivers::{ResultSet, Statement};

use super::pipeline::Routed;
use super::{CallContext, Gateway, Request, Response};
use crate::error::{Error, Result};
use crate::tx::{Ended, TxOptions};

impl Gateway {
    /// Begins a transaction: its id and how long it may stay idle.
    pub fn begin_id(&self, context: &CallContext, options: &TxOptions) -> (String, Duration) {
        let _ = context;
        self.inner.transactions.begin(options)
    }

    /// Begins a transaction and returns its handle.
    pub fn begin(&self, options: TxOptions) -> Transaction {
        let (id, _) = self.begin_id(&CallContext::anonymous(), &options);
        Transaction {
            gateway: self.clone(),
            id,
            open: true,
        }
    }

    /// Commits transaction `id` on every engine it touched; the engines.
    pub async fn commit(&self, context: &CallContext, id: &str) -> Result<Vec<String>> {
        let _ = context;
        let transactions = &self.inner.transactions;
        let tx = transactions.take(id).await?;
        let outcome = tx.commit(id, &transactions.coordinator).await;
        transactions.ended(
            id,
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
        let _ = context;
        let transactions = &self.inner.transactions;
        let tx = transactions.take(id).await?;
        tx.rollback().await;
        transactions.ended(id, Ended::RolledBack);
        Ok(())
    }

    /// Every transaction not yet finished, for operators.
    pub async fn list_transactions(&self, context: &CallContext) -> Vec<crate::tx::TxInfo> {
        let _ = context;
        self.inner.transactions.list(&self.inner.router).await
    }

    /// Resolves transaction `id` by hand (`commit`, else roll back); what
    /// it did, in words.
    pub async fn resolve_transaction(
        &self,
        context: &CallContext,
        id: &str,
        commit: bool,
    ) -> Result<String> {
        let _ = context;
        let outcome = self
            .inner
            .transactions
            .resolve(&self.inner.router, id, commit)
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
            .recover(&self.inner.router)
            .await
    }

    /// The cross-engine commit's failpoints (tests only).
    #[cfg(feature = "failpoints")]
    pub fn failpoints(&self) -> &crate::tx::failpoint::Failpoints {
        &self.inner.transactions.coordinator.failpoints
    }

    /// What transactions did since start, and what is open or in doubt now.
    pub async fn transaction_counters(&self) -> Vec<(String, u64)> {
        self.inner.transactions.counters(&self.inner.router).await
    }

    /// Transactions open now.
    pub fn open_transactions(&self) -> usize {
        self.inner.transactions.open_count()
    }

    /// Runs one statement in transaction `id`.
    pub(super) async fn run_one_in_tx(
        &self,
        routed: &Routed<'_>,
        id: &str,
        statement: Statement,
    ) -> Result<ResultSet> {
        let mut results = self
            .run_in_tx(routed, id, std::slice::from_ref(&statement))
            .await?;
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
/// let tx = gateway.begin(TxOptions::default());
/// tx.execute(Request::new("sql", "INSERT INTO t VALUES (1)")).await?;
/// tx.commit().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Transaction {
    gateway: Gateway,
    id: String,
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
        self.gateway.execute(request).await
    }

    /// Commits on every engine the transaction touched; those engines.
    pub async fn commit(mut self) -> Result<Vec<String>> {
        self.open = false;
        self.gateway
            .commit(&CallContext::anonymous(), &self.id)
            .await
    }

    /// Rolls back on every engine the transaction touched.
    pub async fn rollback(mut self) -> Result<()> {
        self.open = false;
        self.gateway
            .rollback(&CallContext::anonymous(), &self.id)
            .await
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
            runtime.spawn(async move {
                let _ = gateway.rollback(&CallContext::anonymous(), &id).await;
            });
        }
    }
}
