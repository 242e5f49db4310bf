//! The connections and statements of the PostgreSQL-wire and RESP
//! listeners, as metrics: `omnigate_frontend_connections_total{frontend,
//! outcome}` (accepted, or refused at `max_connections`),
//! `omnigate_frontend_connections_open{frontend}` and
//! `omnigate_frontend_statements_total{frontend, outcome}` (ok or error:
//! what the front end ran through the core; the engine metrics count the
//! same statements by engine). The labels are fixed sets, never a
//! client's value.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    frontend: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Frontend {
    frontend: &'static str,
}

/// The families, registered once and shared by the listeners.
#[derive(Debug, Clone, Default)]
pub struct ConnectionMetrics {
    total: Family<Outcome, Counter>,
    open: Family<Frontend, Gauge>,
    statements: Family<Outcome, Counter>,
}

impl ConnectionMetrics {
    /// The families, registered in `registry`.
    pub fn register(registry: &mut Registry) -> ConnectionMetrics {
        let metrics = ConnectionMetrics::default();
        registry.register(
            "omnigate_frontend_connections",
            "Client connections a front end took, by outcome (accepted, refused)",
            metrics.total.clone(),
        );
        registry.register(
            "omnigate_frontend_connections_open",
            "Client connections a front end holds open now",
            metrics.open.clone(),
        );
        registry.register(
            "omnigate_frontend_statements",
            "Statements a front end ran through the core, by outcome (ok, error)",
            metrics.statements.clone(),
        );
        metrics
    }

    /// The counters of `frontend`'s statements.
    pub fn statements(&self, frontend: &'static str) -> StatementCounters {
        let counter = |outcome| {
            self.statements
                .get_or_create(&Outcome { frontend, outcome })
                .clone()
        };
        StatementCounters {
            ok: counter("ok"),
            error: counter("error"),
        }
    }

    /// `frontend`'s listener refused a connection (at `max_connections`).
    pub fn refused(&self, frontend: &'static str) {
        self.total
            .get_or_create(&Outcome {
                frontend,
                outcome: "refused",
            })
            .inc();
    }

    /// `frontend`'s listener accepted a connection: counted open until the
    /// returned guard is dropped (the connection ended).
    pub fn accepted(&self, frontend: &'static str) -> OpenConnection {
        self.total
            .get_or_create(&Outcome {
                frontend,
                outcome: "accepted",
            })
            .inc();
        let open = self.open.get_or_create(&Frontend { frontend }).clone();
        open.inc();
        OpenConnection(open)
    }
}

/// An open connection, counted in `omnigate_frontend_connections_open`
/// until dropped.
#[derive(Debug)]
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// One front end's statement counters.
#[derive(Debug, Clone, Default)]
pub struct StatementCounters {
    ok: Counter,
    error: Counter,
}

impl StatementCounters {
    /// Counts a statement that succeeded (`ok`) or failed.
    pub fn count(&self, ok: bool) {
        if ok { &self.ok } else { &self.error }.inc();
    }

    /// A statement begins: counted when [`Counting::finish`]ed, and as an
    /// error if dropped before (a cancel that cut the call).
    pub fn start(&self) -> Counting<'_> {
        Counting(Some(self))
    }
}

/// A statement being run (see [`StatementCounters::start`]).
#[derive(Debug)]
pub struct Counting<'a>(Option<&'a StatementCounters>);

impl Counting<'_> {
    /// Counts its outcome.
    pub fn finish(mut self, ok: bool) {
        if let Some(counters) = self.0.take() {
            counters.count(ok);
        }
    }
}

impl Drop for Counting<'_> {
    fn drop(&mut self) {
        if let Some(counters) = self.0.take() {
            counters.count(false);
        }
    }
}
