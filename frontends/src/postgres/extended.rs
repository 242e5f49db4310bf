//! The extended query protocol: `Parse` asks the session's engine what
//! the statement takes and returns (PostgreSQL prepares it; SQLite says
//! its columns), `Bind` brings parameters in text or binary format,
//! `Describe` answers from the engine's description, and `Execute` runs
//! the statement through the core's one route, as the simple protocol
//! does, with results in the formats the client asked for. Transaction
//! control and the `omnigate.tx_id` statements work here too.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::Sink;
use omnigate::drivers::postgres::binary;
use omnigate::drivers::sql::split_statements;
use omnigate::drivers::{Cells, Rows, StatementShape, Value};
use omnigate::{Gateway, Request};
use pgwire::api::DEFAULT_NAME;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::ExtendedQueryHandler;
use pgwire::api::results::{FieldInfo, Response};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::Entry;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::extendedquery::{
    Bind, BindComplete, Close, CloseComplete, Execute, Parse, ParseComplete,
    TARGET_TYPE_BYTE_PORTAL, TARGET_TYPE_BYTE_STATEMENT,
};

use super::errors::{error, statement_error};
use super::parsed::{Parsed, Under};
use super::query::{Queries, Reply, is_control};
use super::session::{Kept, Session};
use super::{encode, rows};

/// A statement as `Parse` left it: its text and, for one its engine runs,
/// the engine's description.
#[derive(Debug, Clone)]
pub(super) struct Prepared {
    text: Arc<str>,
    shape: Option<Arc<StatementShape>>,
    /// Its engine is PostgreSQL.
    postgres: bool,
    /// Its rows' cells can be forwarded as the engine sent them: the
    /// engine is PostgreSQL and every column has a built-in type (so its
    /// binary format is the one the client knows by the column's type).
    native: bool,
}

impl Prepared {
    /// Its text.
    pub(super) fn text(&self) -> Arc<str> {
        Arc::clone(&self.text)
    }
}

/// Parses statements by asking the session's engine (once per text
/// outside a block: [`Parsed`]).
pub(super) struct Parser {
    pub(super) gateway: Gateway,
    pub(super) session: Arc<Session>,
    pub(super) parsed: Parsed,
}

impl Parser {
    /// What a description made now is made under, when the session can
    /// keep it: outside a block, on a PostgreSQL engine.
    fn under(&self) -> Option<Under> {
        if self.session.in_tx() {
            return None;
        }
        let router = self.gateway.router();
        let engine = router.by_name(&self.session.engine()).ok()?;
        (engine.driver.descriptor().kind == omnigate::drivers::postgres::KIND)
            .then(|| Under::now(&engine.driver, self.session.caller().principal().cloned()))
    }
}

fn user_error(info: pgwire::error::ErrorInfo) -> PgWireError {
    PgWireError::UserError(Box::new(info))
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        self.session.activity().touch();
        self.session
            .refresh(self.gateway.security())
            .map_err(PgWireError::UserError)?;
        let failed = |e: PgWireError| {
            // An error inside a block fails it, as any other would.
            self.session.fail_tx();
            e
        };
        let text = sql.trim().trim_end_matches(';');
        let under = self.under();
        if let Some(under) = &under
            && let Some(known) = self.parsed.get(under, text)
        {
            return Ok(Some(known));
        }
        if split_statements(sql).len() > 1 {
            return Err(failed(user_error(error(
                "42601",
                "cannot insert multiple commands into a prepared statement",
            ))));
        }
        if is_control(text) {
            return Ok(Some(Prepared {
                text: text.into(),
                shape: None,
                postgres: false,
                native: false,
            }));
        }
        let mut request = Request::new("sql", text).target(self.session.engine());
        request.context = self.session.context();
        match self.gateway.describe_statement(request).await {
            Ok(shape) => {
                let postgres = super::is_postgres(&self.gateway, &self.session.engine());
                let native = postgres
                    && shape
                        .columns
                        .iter()
                        .all(|c| encode::named_type(&c.type_name).is_some());
                let prepared = Prepared {
                    text: text.into(),
                    shape: Some(Arc::new(shape)),
                    postgres,
                    native,
                };
                if let Some(under) = under {
                    self.parsed.put(under, prepared.clone());
                }
                Ok(Some(prepared))
            }
            Err(e) => {
                let engine = self.session.engine();
                let said = statement_error(&self.gateway, &engine, text, &e);
                Err(failed(user_error(said)))
            }
        }
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        Ok(stmt
            .shape
            .iter()
            .flat_map(|s| s.params.iter())
            .map(|name| encode::named_type(name).unwrap_or(Type::UNKNOWN))
            .collect())
    }

    fn get_result_schema(
        &self,
        stmt: &Prepared,
        formats: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let Some(shape) = &stmt.shape else {
            return Ok(Vec::new());
        };
        Ok(encode::fields(
            &shape.columns,
            &Rows::new(),
            formats,
            stmt.postgres,
        ))
    }
}

/// Room in `session` for a statement or portal named `name` (an unnamed
/// one replaces the last and takes none); `53400` when it keeps
/// [`MAX_STATEMENTS`](super::session::MAX_STATEMENTS) of the kind already.
fn room(session: &Session, kind: Kept, name: Option<&str>) -> PgWireResult<()> {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Ok(());
    };
    if session.keep(kind, name) {
        return Ok(());
    }
    let (what, how) = match kind {
        Kept::Statements => ("prepared statements", "Close, DEALLOCATE"),
        Kept::Portals => ("portals", "Close"),
    };
    Err(user_error(error(
        "53400",
        format!(
            "this session keeps {} {what} already: close some ({how}) before adding more",
            super::session::MAX_STATEMENTS
        ),
    )))
}

/// Parameter `i` of `portal` as a value: binary by its type, text parsed
/// for the numeric and boolean types the client or engine named (the
/// engine converts the rest from text as it would a literal).
fn parameter(portal: &Portal<Prepared>, types: &[Type], i: usize) -> PgWireResult<Value> {
    let Some(raw) = portal.parameters.get(i).and_then(|p| p.as_ref()) else {
        return Ok(Value::Null);
    };
    let ty = types.get(i).cloned().unwrap_or(Type::UNKNOWN);
    let bad = |why: &str| user_error(error("22P02", format!("parameter ${}: {why}", i + 1)));
    // A binary parameter of unknown type is its text, as PostgreSQL's
    // `unknown` type reads it.
    if portal.parameter_format.is_binary(i) && ty != Type::UNKNOWN {
        return binary::decode(i + 1, &ty, raw).map_err(|e| bad(&e.to_string()));
    }
    let text = std::str::from_utf8(raw).map_err(|_| bad("text parameters must be UTF-8"))?;
    Ok(match ty {
        Type::INT2 | Type::INT4 | Type::INT8 => {
            Value::Int(text.trim().parse().map_err(|_| bad("not an integer"))?)
        }
        Type::FLOAT4 | Type::FLOAT8 => {
            Value::Float(text.trim().parse().map_err(|_| bad("not a number"))?)
        }
        Type::BOOL => Value::Bool(matches!(
            text.trim().to_ascii_lowercase().as_str(),
            "t" | "true" | "yes" | "on" | "1"
        )),
        Type::BYTEA => match text.strip_prefix("\\x") {
            Some(digits) => Value::Bytes(
                hex::decode(digits)
                    .map_err(|_| bad("malformed bytea hex"))?
                    .into(),
            ),
            None => Value::Bytes(raw.clone()),
        },
        _ => Value::from(text),
    })
}

/// How many columns `prepared` returns, as its engine described them.
fn width(prepared: &Prepared) -> usize {
    prepared.shape.as_ref().map_or(0, |s| s.columns.len())
}

impl Queries {
    /// A result as the portal's response: in its formats, typed as
    /// `Describe` said when it was asked (without the rows). `cells`: how
    /// the result's cells were asked for (PostgreSQL's own bytes, or
    /// values).
    fn portal_response(
        portal: &Portal<Prepared>,
        command: &str,
        mut result: omnigate::drivers::ResultSet,
        cells: Cells,
    ) -> PgWireResult<Response> {
        let formats = Some(&portal.result_column_format);
        let prepared = &portal.statement.statement;
        let forward = match cells {
            Cells::Binary => rows::forwarded(prepared.shape.as_deref(), &mut result)?,
            _ if prepared.postgres => {
                rows::as_described(prepared.shape.as_deref(), &result)?;
                Vec::new()
            }
            _ => Vec::new(),
        };
        let postgres = prepared.postgres;
        let fields = match &prepared.shape {
            Some(shape) if shape.columns.len() == result.columns.len() => {
                encode::fields(&shape.columns, &Rows::new(), formats, postgres)
            }
            _ => encode::fields(&result.columns, &result.rows, formats, postgres),
        };
        rows::response(command, result, fields, &forward)
    }
}

#[async_trait]
impl ExtendedQueryHandler for Queries {
    type Statement = Prepared;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        Arc::clone(&self.parser)
    }

    /// Parses and keeps a statement, as pgwire does, within the session's
    /// room for named statements (`53400` past it: a client that prepares
    /// without closing would grow the gateway without bound).
    async fn on_parse<C>(&self, client: &mut C, message: Parse) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use futures::SinkExt;
        room(&self.session, Kept::Statements, message.name.as_deref())?;
        let stored = StoredStatement::parse(client, &message, self.query_parser()).await?;
        let name = message.name.unwrap_or_else(|| DEFAULT_NAME.to_owned());
        match stored {
            Some(stmt) => client.portal_store().put_statement(Arc::new(stmt)),
            None => client.portal_store().put_empty_statement(&name),
        }
        client
            .send(PgWireBackendMessage::ParseComplete(ParseComplete::new()))
            .await?;
        Ok(())
    }

    /// Binds a portal, as pgwire does, within the session's room for
    /// named portals (`53400` past it).
    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use futures::SinkExt;
        room(&self.session, Kept::Portals, message.portal_name.as_deref())?;
        let statement_name = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal_name = message.portal_name.as_deref().unwrap_or(DEFAULT_NAME);
        match client.portal_store().get_statement(statement_name) {
            Some(Entry::Value(statement)) => {
                let portal = Portal::try_new(&message, statement)?;
                client.portal_store().put_portal(Arc::new(portal));
            }
            Some(Entry::Empty) => {
                if !message.parameters.is_empty() {
                    return Err(user_error(error(
                        "08P01",
                        format!(
                            "bind message supplies {} parameters, but the prepared statement \
                             requires 0",
                            message.parameters.len()
                        ),
                    )));
                }
                client.portal_store().put_empty_portal(portal_name);
            }
            None => return Err(PgWireError::StatementNotFound(statement_name.to_owned())),
        }
        client
            .send(PgWireBackendMessage::BindComplete(BindComplete::new()))
            .await?;
        Ok(())
    }

    /// Closes a statement or a portal, as pgwire does, and lets go of its
    /// room in the session.
    async fn on_close<C>(&self, client: &mut C, message: Close) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use futures::SinkExt;
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => {
                self.session.drop_kept(Kept::Statements, Some(name));
                client.portal_store().rm_statement(name);
            }
            TARGET_TYPE_BYTE_PORTAL => {
                self.session.drop_kept(Kept::Portals, Some(name));
                client.portal_store().rm_portal(name);
            }
            _ => {}
        }
        client
            .send(PgWireBackendMessage::CloseComplete(CloseComplete::new()))
            .await?;
        Ok(())
    }

    /// Executes a portal, then reports the session's true transaction
    /// status (a commit that failed leaves none).
    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let outcome = self._on_execute(client, message).await;
        client.set_transaction_status(self.session.status());
        self.session.activity().touch();
        outcome
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use futures::SinkExt;
        let stored: &StoredStatement<Prepared> = &portal.statement;
        let prepared = &stored.statement;
        let described = self.parser.get_parameter_types(prepared)?;
        let types: Vec<Type> = (0..portal.parameter_len())
            .map(|i| {
                stored
                    .parameter_types
                    .get(i)
                    .cloned()
                    .flatten()
                    .filter(|t| *t != Type::UNKNOWN)
                    .or_else(|| described.get(i).cloned())
                    .unwrap_or(Type::UNKNOWN)
            })
            .collect();
        self.session
            .refresh(self.gateway.security())
            .map_err(PgWireError::UserError)?;
        let params = (0..portal.parameter_len())
            .map(|i| parameter(portal, &types, i))
            .collect::<PgWireResult<Vec<Value>>>()
            .inspect_err(|_| {
                // Its parameter types may have changed since it was described.
                self.parser.parsed.forget(&prepared.text);
                self.session.fail_tx();
            })?;
        let replies = if is_control(&prepared.text) {
            self.statement(&prepared.text).await
        } else {
            let command = encode::command(&prepared.text);
            // The engine's kind is read again: a reload may have changed it.
            let formats = &portal.result_column_format;
            let cells = if !super::is_postgres(&self.gateway, &self.session.engine()) {
                Cells::Values
            } else if prepared.native && rows::all_binary(formats, width(prepared)) {
                Cells::Binary
            } else if rows::all_text(formats, width(prepared)) {
                Cells::Text
            } else {
                Cells::Values
            };
            let run = self.execute(&prepared.text, params, cells);
            let outcome = if super::cancel::may_cut(&self.session, &prepared.text) {
                super::cancel::cancellable(&*client, &self.session, run, Err).await
            } else {
                run.await
            };
            match outcome {
                Ok(result) => {
                    if !rows::as_shaped(prepared.shape.as_deref(), &result) {
                        // Changed since it was described (outside the
                        // gateway): the next Parse asks the engine.
                        self.parser.parsed.forget(&prepared.text);
                    }
                    vec![Reply::Response(Self::portal_response(
                        portal, &command, result, cells,
                    )?)]
                }
                Err(e) => {
                    // Refused as a statement that changed would be.
                    if e.code.starts_with("42") || e.code == "0A000" {
                        self.parser.parsed.forget(&prepared.text);
                    }
                    vec![Reply::Response(Response::Error(e))]
                }
            }
        };
        let mut last = Response::EmptyQuery;
        for reply in replies {
            match reply {
                Reply::Notice(notice) => {
                    client
                        .feed(PgWireBackendMessage::NoticeResponse((*notice).into()))
                        .await?;
                }
                Reply::Response(Response::Error(e)) => return Err(PgWireError::UserError(e)),
                Reply::Response(response) => last = response,
            }
        }
        Ok(last)
    }
}
