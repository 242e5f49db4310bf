//! The simple query protocol: each statement of a query string runs
//! through the core's one route on the session's engine, in the session's
//! gateway transaction when it has one. Transaction control is the
//! gateway's: `BEGIN` opens a gateway transaction (so Redis, Cypher and ts
//! statements of other front ends can join it), `COMMIT` commits it on
//! every engine, `SHOW omnigate.tx_id` names it and
//! `SET omnigate.tx_id = '<id>'` joins one begun elsewhere (those answers,
//! and `SET`'s, are in `control.rs`).

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use omnigate::drivers::sql::{first_keyword, split_statements};
use omnigate::drivers::{Cells, Column, ResultSet, Rows, Value};
use omnigate::{Gateway, Request};
use pgwire::api::query::{SimpleQueryHandler, send_execution_response, send_query_response};
use pgwire::api::results::{Response, Tag};
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireConnectionState};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::response::{EmptyQueryResponse, ReadyForQuery};
use pgwire::messages::simplequery::Query;
use tracing::Instrument;

use super::errors::{error, statement_error};
use super::session::Session;
use super::statements::forget_deallocated;
pub(super) use super::statements::is_control;
use super::{cancel, encode};

/// Runs a session's queries, in both protocols.
pub(super) struct Queries {
    pub(super) gateway: Gateway,
    pub(super) session: Arc<Session>,
    /// `omnigate_frontend_statements_total{frontend="postgres"}`.
    pub(super) counted: crate::connections::StatementCounters,
    /// Parses the extended protocol's statements.
    pub(super) parser: Arc<super::extended::Parser>,
}

/// What one statement answers: notices, then its response.
pub(super) enum Reply {
    /// A `WARNING` shown to the client.
    Notice(Box<ErrorInfo>),
    /// The statement's response (rows, a tag or an error).
    Response(Response),
}

/// PostgreSQL's refusal in a failed transaction block.
pub(super) fn aborted() -> ErrorInfo {
    error(
        "25P02",
        "current transaction is aborted, commands ignored until end of transaction block",
    )
}

pub(super) fn fail(info: ErrorInfo) -> Reply {
    Reply::Response(Response::Error(Box::new(info)))
}

/// `0A000`: what the front end does not do, saying what to do instead.
pub(super) fn unsupported(message: impl Into<String>) -> Reply {
    fail(error("0A000", message))
}

pub(super) fn done(tag: &str) -> Reply {
    Reply::Response(Response::Execution(Tag::new(tag)))
}

pub(super) fn warning(code: &str, message: &str) -> Reply {
    Reply::Notice(Box::new(ErrorInfo::new(
        "WARNING".to_owned(),
        code.to_owned(),
        message.to_owned(),
    )))
}

/// One text column named `name` holding `value`.
fn single(name: &str, value: &str) -> ResultSet {
    ResultSet {
        columns: vec![Column::new(name, "text")],
        rows: Rows::one(vec![Value::from(value)]),
        rows_affected: 0,
        wire_rows: None,
    }
}

impl Queries {
    /// Runs one statement.
    pub(super) async fn statement(&self, text: &str) -> Vec<Reply> {
        // A statement running is not idleness (a commit may take long).
        let _busy = self.session.activity().busy();
        let keyword = first_keyword(text).to_ascii_uppercase();
        let tx = self.session.tx();
        if let Some(tx) = &tx
            && tx.failed
            && !matches!(keyword.as_str(), "COMMIT" | "END" | "ROLLBACK" | "ABORT")
        {
            return vec![fail(aborted())];
        }
        match keyword.as_str() {
            "BEGIN" | "START" => self.begin(text, tx.is_some()),
            "COMMIT" | "END" | "ROLLBACK" | "ABORT" => {
                // Only the plain forms: AND CHAIN, TO SAVEPOINT, PREPARED
                // would mean something else than ending the block.
                let plain = omnigate::drivers::sql::words(text).skip(1).all(|w| {
                    w.eq_ignore_ascii_case(b"work") || w.eq_ignore_ascii_case(b"transaction")
                });
                if !plain {
                    return vec![unsupported(format!(
                        "only a plain {keyword} ends a gateway transaction (no AND CHAIN, \
                         savepoints or prepared transactions)"
                    ))];
                }
                self.end(tx, matches!(keyword.as_str(), "COMMIT" | "END"))
                    .await
            }
            "SAVEPOINT" | "RELEASE" => vec![unsupported(
                "savepoints are not kept across the gateway's engines: use one transaction",
            )],
            "SHOW" if text.to_ascii_lowercase().contains("omnigate.tx_id") => {
                let id = tx.map(|t| t.id).unwrap_or_default();
                self.rows("SHOW", single("omnigate.tx_id", &id))
            }
            "SET" => self.set(text, tx.is_some()).await,
            "RESET" | "DISCARD" if tx.is_none() => done(&keyword).into_vec(),
            "LISTEN" | "UNLISTEN" | "NOTIFY" => vec![unsupported(format!(
                "{keyword} needs a connection of its own, which the gateway's pooled sessions do \
                 not keep: connect to the engine for notifications"
            ))],
            // A client's prepared statements are its session's (the
            // extended protocol's), never a pooled connection's: dropping
            // them must not reach the engine.
            "DEALLOCATE" => done(if text.to_ascii_uppercase().contains("ALL") {
                "DEALLOCATE ALL"
            } else {
                "DEALLOCATE"
            })
            .into_vec(),
            "PREPARE" | "EXECUTE" => vec![unsupported(
                "SQL-level PREPARE/EXECUTE would live on one pooled connection: use your \
                 driver's prepared statements (the extended protocol), which the session keeps",
            )],
            "COPY" => vec![unsupported(
                "COPY is not served by the gateway's PostgreSQL front end yet: use INSERT \
                 (or the gRPC ExecuteStream for large reads)",
            )],
            _ => self.run(&encode::command(text), text).await,
        }
    }

    /// Sends `ReadyForQuery` with the session's true transaction status.
    async fn ready<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let status = self.session.status();
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(status);
        client
            .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                status,
            )))
            .await?;
        self.session.activity().touch();
        Ok(())
    }

    /// Runs a statement on the session's engine.
    pub(super) async fn run(&self, command: &str, text: &str) -> Vec<Reply> {
        // Without parameters: PostgreSQL's own text cells, in one round
        // trip to the engine.
        match self.execute(text, Vec::new(), Cells::Text).await {
            Ok(result) => self.rows(command, result),
            Err(e) => vec![Reply::Response(Response::Error(e))],
        }
    }

    /// Runs `text` with `params` on the session's engine, in its
    /// transaction; a failure fails the transaction, as in PostgreSQL, and
    /// a failed transaction runs nothing more (both protocols). `cells`:
    /// how the cells come back (as values, or as the engine's own bytes).
    pub(super) async fn execute(
        &self,
        text: &str,
        params: Vec<Value>,
        cells: Cells,
    ) -> Result<ResultSet, Box<ErrorInfo>> {
        // A statement running is not idleness.
        let _busy = self.session.activity().busy();
        if self.session.tx().is_some_and(|t| t.failed) {
            return Err(Box::new(aborted()));
        }
        let mut request = Request::new("sql", text).target(self.session.engine());
        request.params = params;
        request.options.cells = cells;
        request.context = self.session.context();
        let counting = self.counted.start();
        let span = self.session.span(text);
        let executed = self.gateway.execute(request).instrument(span).await;
        counting.finish(executed.is_ok());
        match executed {
            Ok(response) => Ok(response.result),
            Err(e) => {
                self.session.fail_tx();
                let engine = self.session.engine();
                Err(Box::new(statement_error(&self.gateway, &engine, text, &e)))
            }
        }
    }

    fn rows(&self, command: &str, result: ResultSet) -> Vec<Reply> {
        // Rows as the wire's own come only from PostgreSQL (a reload may
        // have changed the engine's kind since).
        let postgres =
            result.wire_rows.is_some() || super::is_postgres(&self.gateway, &self.session.engine());
        let fields = encode::fields(&result.columns, &result.rows, None, postgres);
        match super::rows::response(command, result, fields, &[]) {
            Ok(response) => vec![Reply::Response(response)],
            Err(e) => vec![fail(error("XX000", e.to_string()))],
        }
    }
}

impl Reply {
    pub(super) fn into_vec(self) -> Vec<Reply> {
        vec![self]
    }
}

#[async_trait]
impl SimpleQueryHandler for Queries {
    /// Answers a query string: every statement in turn until one fails
    /// (the rest are not run, as PostgreSQL does; several outside a block
    /// run as one implicit transaction), then `ReadyForQuery` with the
    /// session's true transaction status.
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: pgwire::api::store::PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.session.activity().touch();
        self.session
            .refresh(self.gateway.security())
            .map_err(PgWireError::UserError)?;
        client.set_state(PgWireConnectionState::QueryInProgress);
        let statements = split_statements(&query.query);
        if statements.is_empty() {
            client
                .feed(PgWireBackendMessage::EmptyQueryResponse(
                    EmptyQueryResponse::new(),
                ))
                .await?;
        }
        // Several statements outside a transaction block, none of them
        // transaction or session control: one implicit transaction, as
        // PostgreSQL runs them (all or none).
        let implicit = statements.len() > 1
            && self.session.tx().is_none()
            && !statements.iter().any(|text| is_control(text));
        if implicit && let Err(reply) = self.begin_implicit() {
            client
                .feed(PgWireBackendMessage::ErrorResponse((*reply).into()))
                .await?;
            return self.ready(client).await;
        }
        let mut failed = false;
        'statements: for text in statements {
            forget_deallocated(client.portal_store(), &self.session, text);
            let replies = if cancel::may_cut(&self.session, text) {
                let error = |e| vec![Reply::Response(Response::Error(e))];
                cancel::cancellable(client, &self.session, self.statement(text), error).await
            } else {
                self.statement(text).await
            };
            for reply in replies {
                match reply {
                    Reply::Notice(notice) => {
                        client
                            .feed(PgWireBackendMessage::NoticeResponse((*notice).into()))
                            .await?;
                    }
                    Reply::Response(Response::Query(rows)) => {
                        send_query_response(client, rows, true).await?;
                    }
                    Reply::Response(
                        Response::Execution(tag)
                        | Response::TransactionStart(tag)
                        | Response::TransactionEnd(tag),
                    ) => send_execution_response(client, tag).await?,
                    Reply::Response(Response::Error(e)) => {
                        client
                            .feed(PgWireBackendMessage::ErrorResponse((*e).into()))
                            .await?;
                        failed = true;
                        break 'statements;
                    }
                    Reply::Response(_) => {}
                }
            }
        }
        if implicit && let Some(e) = self.end_implicit(!failed).await {
            client
                .feed(PgWireBackendMessage::ErrorResponse((*e).into()))
                .await?;
        }
        self.ready(client).await
    }

    async fn do_query<C>(&self, _client: &mut C, _query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: pgwire::api::store::PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // `on_query` answers every query itself.
        Ok(Vec::new())
    }
}
