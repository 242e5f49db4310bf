//! Transactions on PostgreSQL: live, on a connection pinned to the
//! transaction (reads see its own writes), with a prepare step
//! (`PREPARE TRANSACTION`) for a two-phase commit. As in PostgreSQL, a
//! statement that fails aborts the transaction: it can then only roll
//! back. Dropped uncommitted, the connection is closed (the server rolls
//! back); a prepared transaction survives that, for recovery to finish.

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::Object;

use super::error::from_pg;
use super::prepared::Cached;
use super::types_cache::StatementTypes;
use super::{KIND, refuse_unsendable, run};
use crate::{
    BeginOptions, Dialect, DriverTransaction, EngineDescriptor, EngineError, Error, ExecuteOptions,
    Participation, Result, ResultSet, Statement, Undecided,
};

/// A PostgreSQL transaction on its pinned connection.
#[derive(Debug)]
pub(super) struct PostgresTransaction {
    descriptor: EngineDescriptor,
    options: BeginOptions,
    types: StatementTypes,
    /// The engine's schema epoch: a schema change in the transaction moves
    /// it when run and again when the transaction ends (committed or not,
    /// the schema others see changed then).
    schema: Arc<crate::SchemaEpoch>,
    changed_schema: bool,
    /// `None` once committed or rolled back.
    client: Option<Object>,
    /// The global id it was prepared under.
    prepared: Option<String>,
    /// A cancel was sent on the connection: it must not serve anyone else.
    tainted: bool,
    /// A statement failed: PostgreSQL has aborted the transaction.
    aborted: bool,
    /// The connection, lent to a stream (`tx_stream.rs`), comes back here.
    lent: Option<tokio::sync::oneshot::Receiver<super::tx_stream::Returned>>,
    /// A statement may have changed the session: reset it at the end.
    reset: bool,
    /// `BEGIN` was sent: it goes with the first statement, in one round
    /// trip, not on its own.
    begun: bool,
    /// The engine serves [`Cells::Text`](crate::Cells::Text) as asked
    /// (`text_cells::served`).
    text_cells: bool,
}

impl PostgresTransaction {
    /// A transaction on `client`. Its `BEGIN` is sent with its first
    /// statement (pipelined: one round trip for both), or on its own
    /// before a stream or a prepare.
    pub(super) async fn begin(
        descriptor: EngineDescriptor,
        options: BeginOptions,
        types: StatementTypes,
        schema: Arc<crate::SchemaEpoch>,
        text_cells: bool,
        client: Object,
    ) -> Result<Self> {
        Ok(PostgresTransaction {
            descriptor,
            options,
            types,
            schema,
            changed_schema: false,
            text_cells,
            client: Some(client),
            prepared: None,
            tainted: false,
            aborted: false,
            lent: None,
            reset: false,
            begun: false,
        })
    }

    fn begin_command(&self) -> &'static str {
        if self.options.read_only {
            "BEGIN READ ONLY"
        } else {
            "BEGIN"
        }
    }

    /// Sends `BEGIN` now unless it was sent. A call dropped while it is in
    /// flight leaves the connection tainted: it is closed, not pooled (its
    /// next user would find itself in a transaction).
    async fn ensure_begun(&mut self) -> Result<()> {
        if self.begun {
            return Ok(());
        }
        let was_tainted = std::mem::replace(&mut self.tainted, true);
        let begin = self.begin_command();
        self.client()?
            .batch_execute(begin)
            .await
            .map_err(|e| from_pg(e, None))?;
        self.begun = true;
        self.tainted = was_tainted;
        Ok(())
    }

    /// Waits for the connection lent to a stream to come back.
    async fn reclaim(&mut self) -> Result<()> {
        let Some(back) = self.lent.take() else {
            return Ok(());
        };
        match back.await {
            Ok((client, failed, tainted)) => {
                self.client = Some(client);
                self.aborted |= failed;
                self.tainted |= tainted;
                Ok(())
            }
            Err(_) => {
                self.aborted = true;
                Err(Error::Unavailable(EngineError::new(
                    KIND,
                    None,
                    "the transaction's connection was lost with a stream",
                )))
            }
        }
    }

    /// What refuses `statement` in this transaction before it is sent.
    fn check(
        &self,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<()> {
        self.descriptor.accept(dialect, statement)?;
        // Inside a transaction control is refused as such (before the
        // pooled-connection refusal of `refuse_unsendable` would say it).
        crate::sql::refuse_control(KIND, statement, CONTROL)?;
        refuse_unsendable(statement)?;
        if options.read_only || self.options.read_only {
            super::session::refuse_lifting_read_only(&statement.text)?;
        }
        if options.read_only && !self.options.read_only {
            return Err(Error::not_supported(
                "a read_only statement inside a read-write transaction (begin the \
                 transaction read_only)",
                KIND,
            ));
        }
        if self.prepared.is_some() {
            return Err(Error::Precondition(EngineError::new(
                KIND,
                None,
                "the transaction is prepared: it can only commit or roll back",
            )));
        }
        Ok(())
    }

    fn client(&self) -> Result<&Object> {
        self.client.as_ref().ok_or_else(|| {
            Error::Internal(EngineError::new(KIND, None, "the transaction has ended"))
        })
    }

    /// Runs transaction control (`COMMIT`, `ROLLBACK PREPARED '..'`) and
    /// lets the connection go: back to the pool, or closed if a cancel may
    /// still reach it.
    async fn finish(mut self: Box<Self>, command: &str) -> Result<()> {
        self.reclaim().await?;
        let client = self.client.take().ok_or_else(|| {
            Error::Internal(EngineError::new(KIND, None, "the transaction has ended"))
        })?;
        // Closed, not pooled, unless every step below finished: a call
        // dropped mid-way (its caller gone) leaves a command in flight.
        let mut closing = Closing(Some(client));
        let outcome = match &closing.0 {
            // Never begun (no statement was sent): nothing to end.
            Some(_) if !self.begun => Ok(()),
            Some(client) => client
                .batch_execute(command)
                .await
                .map_err(|e| from_pg(e, None)),
            None => Ok(()),
        };
        let reset = self.reset && !self.tainted && outcome.is_ok();
        let clean = !self.tainted
            && outcome.is_ok()
            && !(reset
                && match &closing.0 {
                    Some(client) => super::session::reset(client).await.is_err(),
                    None => true,
                });
        if clean {
            drop(closing.0.take()); // back to the pool
        }
        outcome
    }

    /// The global id as a SQL literal.
    fn literal(global_id: &str) -> String {
        format!("'{}'", global_id.replace('\'', "''"))
    }
}

/// The statements that control a transaction, refused inside one.
const CONTROL: &[&str] = &[
    "BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "PREPARE",
];

#[async_trait]
impl DriverTransaction for PostgresTransaction {
    fn participation(&self) -> Participation {
        Participation::Live { preparable: true }
    }

    async fn execute(
        &mut self,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<ResultSet> {
        self.check(dialect, statement, options)?;
        self.reset |= super::session::changes_session(&statement.text);
        self.reclaim().await?;
        // Tainted until the statement answers: a call dropped meanwhile has
        // sent a cancel that may land later, so the connection must not go
        // back to the pool when the transaction ends.
        let was_tainted = std::mem::replace(&mut self.tainted, true);
        let begin = (!self.begun).then(|| self.begin_command());
        let client = self.client()?;
        let token = client.cancel_token();
        let work = async {
            // A statement of this transaction may have changed how the
            // connection writes text (set_config, a session SET): its
            // cells are the gateway's from then on.
            let options = super::text_cells::served(options, self.text_cells && !self.reset);
            let statement = run::execute(client, statement, &options, None, &self.types);
            match begin {
                // BEGIN and the statement in one round trip: the client
                // sends each request as it is first polled, in order.
                Some(begin) => {
                    let (begun, outcome) = futures::join!(client.batch_execute(begin), statement);
                    begun.map_err(|e| from_pg(e, None))?;
                    outcome
                }
                None => statement.await,
            }
        };
        let (outcome, cancelled) =
            super::tx_stream::cancelled_at(options.timeout, &token, work).await;
        // Sent, whatever the statement did: a failed BEGIN fails the
        // statement too, and the transaction is then aborted.
        self.begun = true;
        self.tainted = was_tainted || cancelled;
        self.aborted |= outcome.is_err();
        if let Err(e) = &outcome
            && super::stale::may_be_stale(e)
        {
            super::stale::forget(self.client.as_ref(), &self.types, &statement.text);
        }
        if self.schema.note(dialect, &statement.text) {
            super::stale::forget_all(self.client.as_ref(), &self.types);
            self.changed_schema = true;
        }
        outcome
    }

    /// Prepared on the transaction's connection, where what it made so
    /// far is seen. Nothing runs, so BEGIN can wait for the first
    /// statement.
    async fn describe_statement(
        &mut self,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<crate::StatementShape> {
        self.check(dialect, statement, options)?;
        self.reclaim().await?;
        let was_tainted = std::mem::replace(&mut self.tainted, true);
        let client = self.client()?;
        let token = client.cancel_token();
        let work = async {
            client
                .prepare_bounded(&statement.text)
                .await
                .map(|prepared| super::prepared::shape(&prepared))
                .map_err(|e| from_pg(e, options.timeout))
        };
        let (outcome, cancelled) =
            super::tx_stream::cancelled_at(options.timeout, &token, work).await;
        self.tainted = was_tainted || cancelled;
        // As PostgreSQL: a statement that does not parse fails the block.
        self.aborted |= outcome.is_err() && self.begun;
        outcome
    }

    async fn execute_stream(
        &mut self,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<crate::RowStream> {
        self.check(dialect, statement, options)?;
        self.reset |= super::session::changes_session(&statement.text);
        self.reclaim().await?;
        self.ensure_begun().await?;
        let client = self.client.take().ok_or_else(|| {
            Error::Internal(EngineError::new(KIND, None, "the transaction has ended"))
        })?;
        let (back, returned) = tokio::sync::oneshot::channel();
        self.lent = Some(returned);
        let stream = super::tx_stream::stream(
            client,
            statement.clone(),
            options.clone(),
            self.types.clone(),
            back,
        )
        .await;
        if stream.is_err() {
            // It failed before its columns: the connection is on its way
            // back, with the failure noted.
            self.reclaim().await?;
        }
        stream
    }

    async fn prepare(&mut self, global_id: &str) -> Result<()> {
        self.reclaim().await?;
        if self.aborted {
            // PostgreSQL would answer PREPARE TRANSACTION in an aborted
            // block with a silent ROLLBACK: the part would seem prepared.
            return Err(Error::Conflict(EngineError::new(
                KIND,
                Some("25P02"),
                "a statement failed inside the transaction, so PostgreSQL aborted it: it \
                 cannot be prepared; roll back and run it again",
            )));
        }
        self.ensure_begun().await?;
        let command = format!("PREPARE TRANSACTION {}", Self::literal(global_id));
        self.client()?
            .batch_execute(&command)
            .await
            .map_err(|e| from_pg(e, None))?;
        self.prepared = Some(global_id.to_owned());
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        if self.aborted {
            // PostgreSQL would answer COMMIT with a silent ROLLBACK.
            self.finish("ROLLBACK").await?;
            return Err(Error::Conflict(EngineError::new(
                KIND,
                Some("25P02"),
                "a statement failed inside the transaction, so PostgreSQL aborted it: it \
                 was rolled back; run it again",
            )));
        }
        let command = match &self.prepared {
            Some(id) => format!("COMMIT PREPARED {}", Self::literal(id)),
            None => "COMMIT".to_owned(),
        };
        self.finish(&command).await
    }

    /// The marker and COMMIT pipelined: one round trip. The marker is
    /// prepared first (a round trip only when this connection has not
    /// prepared it yet): its Bind/Execute must be on the wire before the
    /// COMMIT, which a prepare still in flight would let overtake it. A
    /// marker the server refuses aborts the transaction, and PostgreSQL
    /// answers the COMMIT behind it with a rollback: not committed. Any
    /// other failure of the marker leaves the outcome to the engine.
    async fn commit_with(
        mut self: Box<Self>,
        dialect: Dialect,
        statement: &Statement,
    ) -> std::result::Result<(), Undecided> {
        let options = ExecuteOptions::default();
        let texts: Option<Vec<&str>> = statement
            .params
            .iter()
            .map(|p| match p {
                crate::Value::String(text) => Some(text.as_str()),
                _ => None,
            })
            .collect();
        let plain = self.begun && !self.aborted && !self.reset && self.prepared.is_none();
        let pipelined = plain
            && self.lent.is_none()
            && self.check(dialect, statement, &options).is_ok()
            && texts.is_some();
        let (Some(texts), true) = (texts, pipelined) else {
            // The general path: the statement, then COMMIT.
            if let Err(e) = self.execute(dialect, statement, &options).await {
                let _ = self.rollback().await;
                return Err(Undecided::No(e));
            }
            return self.commit().await.map_err(Undecided::of_commit);
        };
        let ended = |e: Error| Undecided::No(e);
        let Some(client) = self.client.take() else {
            return Err(ended(Error::Internal(EngineError::new(
                KIND,
                None,
                "the transaction has ended",
            ))));
        };
        // Closed, not pooled, unless both answered: a call dropped mid-way
        // leaves a command in flight.
        let mut closing = Closing(Some(client));
        let Some(client) = closing.0.as_ref() else {
            return Err(ended(Error::Internal(EngineError::new(
                KIND,
                None,
                "the transaction has ended",
            ))));
        };
        let prepared = match client.prepare_bounded(&statement.text).await {
            Ok(prepared) => prepared,
            // Not sent: the transaction is still open; it rolls back as
            // its connection closes.
            Err(e) => return Err(Undecided::No(from_pg(e, None))),
        };
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = texts
            .iter()
            .map(|t| t as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        // `execute_raw` writes its Bind/Execute as it is first polled, and
        // `join!` polls it before the COMMIT.
        let (marked, committed) = futures::join!(
            client.execute_raw(&prepared, params),
            client.batch_execute("COMMIT")
        );
        // Both answered by the server (a result or its error): the
        // connection is out of the transaction and fit to pool.
        let answered = |e: &tokio_postgres::Error| e.as_db_error().is_some();
        let clean = marked.as_ref().err().is_none_or(answered)
            && committed.as_ref().err().is_none_or(answered);
        let outcome = match (marked, committed) {
            (Ok(_), Ok(())) => Ok(()),
            // The server refused the marker: it aborted the transaction,
            // and the COMMIT behind it rolled back.
            (Err(e), _) if e.as_db_error().is_some() => Err(Undecided::No(from_pg(e, None))),
            // Anything else (the link broke, a reply unread): the COMMIT
            // may have landed; only the engine knows.
            (Err(e), _) => Err(Undecided::Unknown(from_pg(e, None))),
            (Ok(_), Err(e)) => Err(Undecided::of_commit(from_pg(e, None))),
        };
        if clean && !self.tainted {
            drop(closing.0.take()); // back to the pool
        }
        outcome
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        let command = match &self.prepared {
            Some(id) => format!("ROLLBACK PREPARED {}", Self::literal(id)),
            None => "ROLLBACK".to_owned(),
        };
        self.finish(&command).await
    }

    fn engine(&self) -> &'static str {
        KIND
    }
}

/// A connection taken out of the pool (closed) when dropped still held.
struct Closing(Option<Object>);

impl Drop for Closing {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            drop(Object::take(client));
        }
    }
}

impl Drop for PostgresTransaction {
    fn drop(&mut self) {
        if self.changed_schema {
            self.schema.bump();
            self.types.clear();
        }
        // Uncommitted: closing the connection rolls the transaction back on
        // the server (a prepared one stays prepared, for recovery).
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}
