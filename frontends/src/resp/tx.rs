//! `MULTI`/`EXEC`/`DISCARD` as a gateway transaction, and
//! `OMNIGATE.TX ID | JOIN <id> | LEAVE` to name one and to join one begun
//! elsewhere (gRPC, the PostgreSQL front end).
//!
//! `MULTI` begins a gateway transaction. Each command after it runs in
//! the transaction at once and is answered `+QUEUED`: the redis dialect
//! buffers a write (checked now — the command exists, its arity, the
//! caller may run it — and applied at commit), and runs a read now, on
//! committed state. `EXEC` commits and answers the replies in order: a
//! read's value as read when it was queued, and for a write the status
//! `QUEUED` its engine gave (a buffered write's own reply is not known
//! before commit, and the commit reports success or failure as a whole);
//! `DISCARD` rolls back. A command refused while queuing makes `EXEC`
//! roll back with `-EXECABORT`, as Redis does.

use bytes::Bytes;
use omnigate::{Error, TxOptions};

use super::connection::Connection;
use super::encode::Reply;
use super::errors::{self, arity, unknown_subcommand};
use super::session::SessionTx;

impl Connection {
    /// `MULTI`: begins a gateway transaction, or starts queuing in the one
    /// the session joined.
    pub(super) fn multi(&mut self, args: &[Bytes]) -> Reply {
        if args.len() != 1 {
            return arity("multi");
        }
        match &mut self.session.tx {
            Some(tx) if tx.queuing => Reply::error("ERR MULTI calls can not be nested"),
            Some(tx) => {
                tx.queuing = true;
                Reply::ok()
            }
            None => {
                let context = self.session.context();
                match self
                    .shared
                    .gateway
                    .begin_id(&context, &TxOptions::default())
                {
                    Ok((id, _)) => {
                        self.session.tx = Some(SessionTx::new(id, true));
                        Reply::ok()
                    }
                    Err(e) => errors::reply(&e),
                }
            }
        }
    }

    /// `EXEC`: commits the session's transaction; the replies queued since
    /// `MULTI` (none after a join without `MULTI`).
    pub(super) async fn exec(&mut self, args: &[Bytes]) -> Reply {
        if args.len() != 1 {
            return arity("exec");
        }
        let context = self.session.context();
        let Some(tx) = self.session.tx.take() else {
            return Reply::error("ERR EXEC without MULTI");
        };
        let gateway = &self.shared.gateway;
        if tx.failed {
            // Discarded, unless it could not be: a joined transaction that
            // its owner committed meanwhile is said to be so.
            return match gateway.rollback(&context, &tx.id).await {
                Ok(()) => {
                    Reply::error("EXECABORT Transaction discarded because of previous errors.")
                }
                Err(e) => errors::reply(&e),
            };
        }
        match gateway.commit_with_replies(&context, &tx.id).await {
            Ok(committed) => {
                let applied = committed.replies_of(&self.shared.target);
                tx.exec_reply(applied, self.max_queued())
            }
            Err(e) => errors::exec_reply(&tx.id, &e),
        }
    }

    /// `DISCARD`: rolls the session's transaction back.
    pub(super) async fn discard(&mut self, args: &[Bytes]) -> Reply {
        if args.len() != 1 {
            return arity("discard");
        }
        let context = self.session.context();
        let Some(tx) = self.session.tx.take() else {
            return Reply::error("ERR DISCARD without MULTI");
        };
        match self.shared.gateway.rollback(&context, &tx.id).await {
            Ok(()) => Reply::ok(),
            Err(e) => errors::reply(&e),
        }
    }

    /// `OMNIGATE.TX ID` (the session's transaction id, or nil),
    /// `OMNIGATE.TX JOIN <id>` (later commands run in it; `EXEC` commits
    /// it, `DISCARD` rolls it back), `OMNIGATE.TX LEAVE` (the session
    /// leaves a joined transaction without ending it).
    pub(super) fn omnigate_tx(&mut self, args: &[Bytes]) -> Reply {
        let Some(sub) = args.get(1) else {
            return arity("omnigate.tx");
        };
        match (sub.to_ascii_uppercase().as_slice(), args.len()) {
            (b"ID", 2) => match &self.session.tx {
                Some(tx) => Reply::text(tx.id.clone()),
                None => Reply::Nil,
            },
            (b"JOIN", 3) => self.join(&args[2]),
            (b"LEAVE", 2) => match &self.session.tx {
                None => Reply::error("ERR the session is in no transaction"),
                Some(tx) if tx.queuing => Reply::error(
                    "ERR OMNIGATE.TX LEAVE inside MULTI: EXEC or DISCARD the transaction",
                ),
                Some(_) => {
                    self.session.tx = None;
                    Reply::ok()
                }
            },
            (b"ID" | b"JOIN" | b"LEAVE", _) => arity("omnigate.tx"),
            (other, _) => unknown_subcommand("OMNIGATE.TX", other),
        }
    }

    /// Joins transaction `id`, begun elsewhere by the same caller.
    fn join(&mut self, id: &[u8]) -> Reply {
        if let Some(tx) = &self.session.tx {
            return Reply::error(format!(
                "ERR the session is already in transaction {}: EXEC, DISCARD or OMNIGATE.TX \
                 LEAVE it before joining another",
                tx.id
            ));
        }
        let Ok(id) = std::str::from_utf8(id) else {
            return errors::reply(&Error::TxNotFound {
                id: String::from_utf8_lossy(id).into_owned(),
            });
        };
        match self.shared.gateway.check_open(&self.session.context(), id) {
            Ok(()) => {
                self.session.tx = Some(SessionTx::new(id.to_owned(), false));
                Reply::ok()
            }
            Err(e) => errors::reply(&e),
        }
    }
}
