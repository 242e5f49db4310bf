//! One client connection's session: the engine its startup named, its
//! caller, the gateway transaction it is in, and when it last spoke.

use std::sync::Mutex;

use omnigate::{CallContext, Caller};
use pgwire::error::ErrorInfo;
use pgwire::messages::response::TransactionStatus;

use crate::idle::Activity;

/// A session's transaction: a gateway transaction, begun here or joined.
#[derive(Debug, Clone)]
pub(super) struct SessionTx {
    /// Its id.
    pub(super) id: String,
    /// A statement of it failed: like PostgreSQL, every statement but the
    /// end of the transaction block is refused until then.
    pub(super) failed: bool,
    /// Joined (`SET omnigate.tx_id`) rather than begun here: its owner
    /// ends it, so a client that goes away leaves it to them (as the RESP
    /// front end does).
    pub(super) joined: bool,
}

#[derive(Debug, Default)]
struct State {
    engine: String,
    caller: Caller,
    tx: Option<SessionTx>,
    /// The names of the client's prepared statements and portals (the
    /// extended protocol's, kept for the session).
    statements: std::collections::HashSet<String>,
    portals: std::collections::HashSet<String>,
    /// A W3C `traceparent` the client gave as its `application_name`: its
    /// calls' spans continue that trace.
    traceparent: Option<String>,
}

/// How many named prepared statements (and, apart, named portals) one
/// session may keep: each holds its text, shape or parameters in the
/// gateway's memory for as long as the client likes.
pub(super) const MAX_STATEMENTS: usize = 10_000;

/// Which of a session's named things.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kept {
    /// Prepared statements (`Parse`).
    Statements,
    /// Portals (`Bind`).
    Portals,
}

/// One connection's session.
#[derive(Debug)]
pub(super) struct Session {
    state: Mutex<State>,
    /// When the client last spoke, or a request of its ended.
    activity: Activity,
    /// Set when the connection must be refused at startup (too many):
    /// its SQLSTATE and message.
    refusal: Option<(&'static str, &'static str)>,
}

impl Session {
    /// A session, or one to refuse at startup with `refusal`.
    pub(super) fn new(refusal: Option<(&'static str, &'static str)>) -> Self {
        Session {
            state: Mutex::default(),
            activity: Activity::default(),
            refusal,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Why the connection is refused, if it is.
    pub(super) fn refusal(&self) -> Option<ErrorInfo> {
        self.refusal
            .map(|(code, message)| super::errors::fatal(code, message))
    }

    /// Makes room for a named prepared statement or portal: `false` when
    /// the session keeps [`MAX_STATEMENTS`] others of its kind already.
    pub(super) fn keep(&self, kind: Kept, name: &str) -> bool {
        let mut state = self.state();
        let names = match kind {
            Kept::Statements => &mut state.statements,
            Kept::Portals => &mut state.portals,
        };
        if names.contains(name) {
            return true;
        }
        if names.len() >= MAX_STATEMENTS {
            return false;
        }
        names.insert(name.to_owned());
        true
    }

    /// Lets go of the named statement or portal `name` (every one of its
    /// kind with `None`); the names let go of.
    pub(super) fn drop_kept(&self, kind: Kept, name: Option<&str>) -> Vec<String> {
        let mut state = self.state();
        let names = match kind {
            Kept::Statements => &mut state.statements,
            Kept::Portals => &mut state.portals,
        };
        match name {
            Some(name) => names.take(name).into_iter().collect(),
            None => names.drain().collect(),
        }
    }

    /// When the client was last active.
    pub(super) fn activity(&self) -> &Activity {
        &self.activity
    }

    pub(super) fn set_engine(&self, engine: String) {
        self.state().engine = engine;
    }

    /// The engine the startup named.
    pub(super) fn engine(&self) -> String {
        self.state().engine.clone()
    }

    /// Takes the client's `application_name` (at startup or by `SET`):
    /// a valid `traceparent` there is the parent of its calls' spans.
    pub(super) fn set_application_name(&self, name: &str) {
        self.state().traceparent = crate::trace::parse_traceparent(name)
            .is_some()
            .then(|| name.trim().to_owned());
    }

    /// The span of one statement: its fingerprint and, when the client
    /// gave one, its trace.
    pub(super) fn span(&self, statement: &str) -> tracing::Span {
        let traceparent = self.state().traceparent.clone();
        let (trace_id, parent_id) = traceparent
            .as_deref()
            .and_then(crate::trace::parse_traceparent)
            .unzip();
        let span = tracing::info_span!(
            "call",
            frontend = "postgres",
            dialect = "sql",
            statement = %crate::trace::fingerprint("sql", statement),
            trace_id = trace_id.as_deref(),
            parent_span_id = parent_id.as_deref(),
        );
        #[cfg(feature = "otlp")]
        if let Some(traceparent) = &traceparent {
            crate::telemetry::continue_trace_from(&span, traceparent);
        }
        span
    }

    pub(super) fn set_caller(&self, caller: Caller) {
        self.state().caller = caller;
    }

    /// Before each statement: the session's principal as it is now (a
    /// reload may have changed its grant or limits), or, once the
    /// credentials it logged in with were revoked or changed, a `FATAL`
    /// that ends the session.
    pub(super) fn refresh(
        &self,
        security: &omnigate::security::Security,
    ) -> Result<(), Box<ErrorInfo>> {
        let mut state = self.state();
        if let Caller::Principal(principal) = &state.caller {
            match security.current(principal) {
                Some(now) => state.caller = Caller::Principal(now),
                None => {
                    return Err(Box::new(super::errors::fatal(
                        "28000",
                        "the credentials this session logged in with were revoked or changed: \
                         log in again",
                    )));
                }
            }
        }
        Ok(())
    }

    /// The context of a call made now: the caller, in the session's
    /// transaction when it has one.
    pub(super) fn context(&self) -> CallContext {
        let state = self.state();
        let context = CallContext::anonymous().as_caller(state.caller.clone());
        match &state.tx {
            Some(tx) => context.in_transaction(tx.id.clone()),
            None => context,
        }
    }

    /// The session's caller.
    pub(super) fn caller(&self) -> Caller {
        self.state().caller.clone()
    }

    /// Whether the session is in a transaction block.
    pub(super) fn in_tx(&self) -> bool {
        self.state().tx.is_some()
    }

    /// The session's transaction.
    pub(super) fn tx(&self) -> Option<SessionTx> {
        self.state().tx.clone()
    }

    pub(super) fn set_tx(&self, tx: Option<SessionTx>) {
        self.state().tx = tx;
    }

    /// Marks the session's transaction failed.
    pub(super) fn fail_tx(&self) {
        if let Some(tx) = &mut self.state().tx {
            tx.failed = true;
        }
    }

    /// The transaction status a `ReadyForQuery` reports.
    pub(super) fn status(&self) -> TransactionStatus {
        match &self.state().tx {
            None => TransactionStatus::Idle,
            Some(tx) if tx.failed => TransactionStatus::Error,
            Some(_) => TransactionStatus::Transaction,
        }
    }
}
