//! The library's handle on an open transaction.

use super::{CallContext, Gateway, Request, Response};
use crate::error::Result;

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
    pub(super) gateway: Gateway,
    pub(super) id: String,
    /// Its caller, for each of its calls.
    pub(super) context: CallContext,
    pub(super) open: bool,
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
