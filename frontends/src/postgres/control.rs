//! What the session answers itself rather than its engine: transaction
//! control (`BEGIN`, `COMMIT`, `ROLLBACK`, the implicit transaction of a
//! multi-statement query, joining a gateway transaction by its id) and
//! `SET`.

use omnigate::TxOptions;
use pgwire::api::results::{Response, Tag};
use pgwire::error::ErrorInfo;

use super::errors::{error, to_error};
use super::query::{Queries, Reply, done, fail, unsupported, warning};
use super::session::SessionTx;
use super::statements::{INERT_SETTINGS, OUTPUT_SETTINGS, set_parts, set_target};

impl Queries {
    /// Begins the implicit transaction of a multi-statement query.
    pub(super) fn begin_implicit(&self) -> Result<(), Box<ErrorInfo>> {
        let (id, _) = self
            .gateway
            .begin_id(&self.session.context(), &TxOptions::default())
            .map_err(|e| Box::new(to_error(&e)))?;
        self.session.set_tx(Some(SessionTx {
            id,
            failed: false,
            joined: false,
        }));
        Ok(())
    }

    /// Ends the implicit transaction: commits it when every statement
    /// ran (`ran`), else rolls it back; the commit's failure, if any.
    pub(super) async fn end_implicit(&self, ran: bool) -> Option<Box<ErrorInfo>> {
        let tx = self.session.tx()?;
        let context = self.session.context();
        self.session.set_tx(None);
        if ran && !tx.failed {
            return self
                .gateway
                .commit(&context, &tx.id)
                .await
                .err()
                .map(|e| Box::new(to_error(&e)));
        }
        let _ = self.gateway.rollback(&context, &tx.id).await;
        None
    }

    /// `BEGIN`: a gateway transaction for the session.
    pub(super) fn begin(&self, text: &str, open: bool) -> Vec<Reply> {
        if open {
            return vec![
                warning("25001", "there is already a transaction in progress"),
                Reply::Response(Response::TransactionStart(Tag::new("BEGIN"))),
            ];
        }
        let upper = text.to_ascii_uppercase();
        if upper.contains("ISOLATION") || upper.contains("DEFERRABLE") {
            return vec![unsupported(
                "a gateway transaction runs at each engine's default isolation level: BEGIN \
                 without ISOLATION LEVEL (or set it with SET TRANSACTION as its first statement)",
            )];
        }
        let options = TxOptions {
            read_only: upper.contains("READ ONLY"),
            ..TxOptions::default()
        };
        match self.gateway.begin_id(&self.session.context(), &options) {
            Ok((id, _)) => {
                self.session.set_tx(Some(SessionTx {
                    id,
                    failed: false,
                    joined: false,
                }));
                vec![Reply::Response(Response::TransactionStart(Tag::new(
                    "BEGIN",
                )))]
            }
            Err(e) => vec![fail(to_error(&e))],
        }
    }

    /// `COMMIT` (`commit`) or `ROLLBACK`: ends the session's transaction
    /// on every engine. A failed transaction rolls back on `COMMIT`, as
    /// PostgreSQL's does.
    pub(super) async fn end(&self, tx: Option<SessionTx>, commit: bool) -> Vec<Reply> {
        let tag = if commit { "COMMIT" } else { "ROLLBACK" };
        let Some(tx) = tx else {
            return vec![
                warning("25P01", "there is no transaction in progress"),
                Reply::Response(Response::TransactionEnd(Tag::new(tag))),
            ];
        };
        let context = self.session.context();
        self.session.set_tx(None);
        let outcome = if commit && !tx.failed {
            self.gateway
                .commit(&context, &tx.id)
                .await
                .map(|_| "COMMIT")
        } else {
            self.gateway
                .rollback(&context, &tx.id)
                .await
                .map(|()| "ROLLBACK")
        };
        match outcome {
            Ok(tag) => vec![Reply::Response(Response::TransactionEnd(Tag::new(tag)))],
            // Ended elsewhere (committed over gRPC, expired): the session's
            // block ends here, saying how it ended.
            Err(e @ (omnigate::Error::TxEnded { .. } | omnigate::Error::TxNotFound { .. }))
                if !commit =>
            {
                vec![
                    warning("25P01", &e.to_string()),
                    Reply::Response(Response::TransactionEnd(Tag::new("ROLLBACK"))),
                ]
            }
            Err(e) => vec![fail(to_error(&e))],
        }
    }

    /// `SET`: joins a gateway transaction, takes a setting that changes
    /// nothing, passes `SET LOCAL` inside a transaction to its engine, or
    /// refuses a session setting the pooled connections would not keep.
    pub(super) async fn set(&self, text: &str, open: bool) -> Vec<Reply> {
        if let Some((setting, local)) = set_target(text)
            && OUTPUT_SETTINGS.contains(&setting.as_str())
        {
            // A driver's own `SET extra_float_digits` at connect changes
            // nothing: the engine already writes floats exactly.
            if !local && INERT_SETTINGS.contains(&setting.as_str()) {
                return done("SET").into_vec();
            }
            return vec![unsupported(format!(
                "{setting} says how the engine writes values as text, and the client's driver \
                 reads them by the formats it was told at login: it is not set through the \
                 gateway; convert in the query instead (to_char, encode)"
            ))];
        }
        let Some((name, value)) = set_parts(text) else {
            return if open {
                self.run("SET", text).await
            } else {
                vec![unsupported(
                    "outside a transaction, SET would change a pooled connection other clients \
                     share: use SET LOCAL inside a transaction",
                )]
            };
        };
        if name.starts_with("local ") {
            return if open {
                self.run("SET", text).await
            } else {
                vec![
                    warning("25P01", "SET LOCAL can only be used in transaction blocks"),
                    done("SET"),
                ]
            };
        }
        if name == "omnigate.tx_id" {
            return self.join(value, open);
        }
        if INERT_SETTINGS.contains(&name.as_str()) {
            if name == "application_name" {
                self.session.set_application_name(&value);
            }
            return done("SET").into_vec();
        }
        if open && text.to_ascii_uppercase().contains("TRANSACTION") {
            return self.run("SET", text).await;
        }
        vec![unsupported(format!(
            "SET {name} would change a pooled connection other clients share: set it per \
             transaction (SET LOCAL {name} inside BEGIN ... COMMIT) or as the engine role's \
             default"
        ))]
    }

    /// `SET omnigate.tx_id = '<id>'`: joins a gateway transaction begun
    /// elsewhere by the same caller.
    pub(super) fn join(&self, id: String, open: bool) -> Vec<Reply> {
        if open {
            return vec![fail(error(
                "25001",
                "the session is already in a transaction: COMMIT or ROLLBACK it before joining \
                 another",
            ))];
        }
        match self.gateway.check_open(&self.session.context(), &id) {
            Ok(()) => {
                self.session.set_tx(Some(SessionTx {
                    id,
                    failed: false,
                    joined: true,
                }));
                vec![Reply::Response(Response::TransactionStart(Tag::new("SET")))]
            }
            Err(e) => vec![fail(to_error(&e))],
        }
    }
}
