//! Transactions on SQLite: live, on a connection pinned to the transaction
//! (reads see its own writes). SQLite has no prepare step, so in a
//! cross-engine transaction it is the one participant whose commit is the
//! decision. Dropped uncommitted, the transaction is rolled back before
//! its connection goes back to the pool.

use async_trait::async_trait;
use deadpool_sqlite::Object;

use super::{KIND, convert, run};
use crate::{
    BeginOptions, Dialect, DriverTransaction, EngineDescriptor, EngineError, Error, ExecuteOptions,
    Participation, Result, ResultSet, Statement,
};

/// A SQLite transaction on its pinned connection.
#[derive(Debug)]
pub(super) struct SqliteTransaction {
    descriptor: EngineDescriptor,
    options: BeginOptions,
    /// `None` once committed or rolled back.
    conn: Option<Object>,
}

impl SqliteTransaction {
    /// Begins a transaction on `conn`.
    pub(super) async fn begin(
        descriptor: EngineDescriptor,
        options: BeginOptions,
        conn: Object,
    ) -> Result<Self> {
        finish(&conn, "BEGIN").await?;
        Ok(SqliteTransaction {
            descriptor,
            options,
            conn: Some(conn),
        })
    }

    fn conn(&self) -> Result<&Object> {
        self.conn.as_ref().ok_or_else(|| {
            Error::Internal(EngineError::new(KIND, None, "the transaction has ended"))
        })
    }
}

/// Runs `BEGIN`, `COMMIT` or `ROLLBACK` on `conn`.
async fn finish(conn: &Object, verb: &'static str) -> Result<()> {
    conn.interact(move |c| c.execute_batch(verb).map_err(convert::error))
        .await
        .map_err(|e| {
            Error::Internal(EngineError::new(
                KIND,
                None,
                format!("the SQLite worker failed: {e}"),
            ))
        })?
}

/// The statements that control a transaction, refused inside one.
const CONTROL: &[&str] = &["BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"];

impl SqliteTransaction {
    /// Whether a statement may run in the transaction: its dialect, no
    /// transaction control, no PRAGMA that sets the connection's state.
    fn admit(&self, dialect: Dialect, statement: &Statement) -> Result<()> {
        self.descriptor.accept(dialect, statement)?;
        crate::sql::refuse_control(KIND, statement, CONTROL)?;
        super::pragma::refuse_setting(&statement.text)
    }
}

#[async_trait]
impl DriverTransaction for SqliteTransaction {
    fn participation(&self) -> Participation {
        Participation::Live { preparable: false }
    }

    async fn execute(
        &mut self,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<ResultSet> {
        self.admit(dialect, statement)?;
        let options = self.options.apply(options);
        run::execute(self.conn()?, statement.clone(), options).await
    }

    /// On the transaction's connection, where what it made so far is seen.
    async fn describe_statement(
        &mut self,
        dialect: Dialect,
        statement: &Statement,
        _options: &ExecuteOptions,
    ) -> Result<crate::StatementShape> {
        self.admit(dialect, statement)?;
        run::describe_statement(self.conn()?, statement.text.clone()).await
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        let conn = self.conn.take();
        let Some(conn) = conn else {
            return Ok(());
        };
        match finish(&conn, "COMMIT").await {
            Ok(()) => Ok(()),
            Err(e) => {
                // A failed COMMIT (e.g. a deferred constraint) leaves the
                // transaction open: end it before the connection is reused.
                let _ = finish(&conn, "ROLLBACK").await;
                Err(e)
            }
        }
    }

    async fn rollback(mut self: Box<Self>) -> Result<()> {
        match self.conn.take() {
            Some(conn) => finish(&conn, "ROLLBACK").await,
            None => Ok(()),
        }
    }

    fn engine(&self) -> &'static str {
        KIND
    }
}

impl Drop for SqliteTransaction {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            // Rolled back, then the connection returns to the pool.
            Ok(runtime) => {
                runtime.spawn(async move {
                    if finish(&conn, "ROLLBACK").await.is_err() {
                        drop(Object::take(conn));
                    }
                });
            }
            // No runtime to roll back on: closing the connection rolls back.
            Err(_) => drop(Object::take(conn)),
        }
    }
}
