//! One client connection's session: who it is, the protocol it speaks, its
//! name, and the gateway transaction it is in. Owned by the connection's
//! task alone, so it needs no lock.

use std::net::SocketAddr;

use bytes::Bytes;
use omnigate::drivers::Value;
use omnigate::{CallContext, Caller, Gateway};

use super::encode::{self, Protocol, Reply};
use super::shape::Shape;

/// A session's gateway transaction: begun here by `MULTI`, or joined by
/// `OMNIGATE.TX JOIN`.
#[derive(Debug)]
pub(super) struct SessionTx {
    /// Its id.
    pub(super) id: String,
    /// Between `MULTI` and `EXEC`: commands answer `+QUEUED` and their
    /// replies wait for `EXEC`.
    pub(super) queuing: bool,
    /// The replies `EXEC` returns, in order.
    pub(super) queued: Vec<Reply>,
    /// What they take (see [`Reply::size`]): `EXEC`'s answer is one
    /// reply, held to the server's `max_response_bytes` as any result.
    pub(super) queued_bytes: u64,
    /// A command failed while queuing: `EXEC` rolls back (`-EXECABORT`),
    /// as Redis discards a transaction with an error before `EXEC`.
    pub(super) failed: bool,
    /// Where in `queued` a buffered write's `QUEUED` stands, in order, and
    /// the shape of its reply: the writes' own replies take those places
    /// at `EXEC`.
    pub(super) writes: Vec<(usize, Shape)>,
}

impl SessionTx {
    /// Transaction `id`, queuing for `EXEC` or not.
    pub(super) fn new(id: String, queuing: bool) -> Self {
        SessionTx {
            id,
            queuing,
            queued: Vec::new(),
            queued_bytes: 0,
            failed: false,
            writes: Vec::new(),
        }
    }

    /// `EXEC`'s answer: the queued replies, with each buffered write's own
    /// reply in its place when the commit gave them — one per write this
    /// session queued (none are known when recovery applied them; other
    /// writes in the engine's part, from a caller that joined the
    /// transaction, make them unattributable) — and they fit in
    /// `max_bytes`; otherwise the writes' `QUEUED`.
    pub(super) fn exec_reply(mut self, applied: Option<&[Value]>, max_bytes: u64) -> Reply {
        if let Some(applied) = applied
            && applied.len() == self.writes.len()
        {
            let replies: Vec<Reply> = (applied.iter().cloned().map(encode::value))
                .zip(&self.writes)
                .map(|(reply, (_, shape))| shape.apply(reply))
                .collect();
            let queued: u64 = self
                .writes
                .iter()
                .map(|&(i, _)| self.queued[i].size())
                .sum();
            let size: u64 = replies.iter().map(Reply::size).sum();
            if self.queued_bytes - queued + size <= max_bytes {
                for (&(i, _), reply) in self.writes.iter().zip(replies) {
                    self.queued[i] = reply;
                }
            }
        }
        Reply::Array(self.queued)
    }
}

/// One connection's session.
#[derive(Debug)]
pub(super) struct Session {
    /// The client's id (`CLIENT ID`), unique in this process.
    pub(super) id: u64,
    /// The client's and the listener's addresses.
    pub(super) peer: SocketAddr,
    pub(super) local: SocketAddr,
    /// Who `AUTH` said it is.
    caller: Caller,
    /// The protocol replies are written in.
    pub(super) protocol: Protocol,
    /// `CLIENT SETNAME`'s name.
    pub(super) name: Option<Bytes>,
    /// The transaction it is in.
    pub(super) tx: Option<SessionTx>,
}

impl Session {
    /// A new client's session: anonymous, RESP2, no transaction.
    pub(super) fn new(id: u64, peer: SocketAddr, local: SocketAddr) -> Self {
        Session {
            id,
            peer,
            local,
            caller: Caller::Anonymous,
            protocol: Protocol::Resp2,
            name: None,
            tx: None,
        }
    }

    /// Whether the session may run commands: it authenticated, or the
    /// gateway has no principals (checked now: a reload may add them).
    pub(super) fn authenticated(&self, gateway: &Gateway) -> bool {
        self.caller.principal().is_some() || gateway.security().is_open()
    }

    /// Takes the session's principal as it is now (a reload may have
    /// changed its grant); `false` once the credentials it authenticated
    /// with were revoked or changed: the connection must end.
    pub(super) fn refresh(&mut self, gateway: &Gateway) -> bool {
        if let Caller::Principal(principal) = &self.caller {
            match gateway.security().current(principal) {
                Some(now) => self.caller = Caller::Principal(now),
                None => return false,
            }
        }
        true
    }

    /// The caller of the session's calls.
    pub(super) fn set_caller(&mut self, caller: Caller) {
        self.caller = caller;
    }

    /// The context of a call made now: the caller, in the session's
    /// transaction when it has one.
    pub(super) fn context(&self) -> CallContext {
        let context = CallContext::anonymous().as_caller(self.caller.clone());
        match &self.tx {
            Some(tx) => context.in_transaction(tx.id.clone()),
            None => context,
        }
    }

    /// Whether commands are being queued for `EXEC`.
    pub(super) fn queuing(&self) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.queuing)
    }

    /// Keeps a queued command's reply for `EXEC` (a buffered write's own
    /// reply will have `shape`), or marks the transaction failed when the
    /// command failed; what the client is answered now.
    pub(super) fn queue(&mut self, reply: Reply, shape: Shape, max_bytes: u64) -> Reply {
        let Some(tx) = self.tx.as_mut() else {
            return reply;
        };
        if reply.is_error() {
            tx.failed = true;
            return reply;
        }
        let size = reply.size();
        if tx.queued_bytes.saturating_add(size) > max_bytes {
            tx.failed = true;
            return Reply::error(format!(
                "ERR EXEC's replies would pass the server's max_response_bytes ({max_bytes} \
                 bytes): EXEC will discard the transaction; read large values outside MULTI"
            ));
        }
        tx.queued_bytes += size;
        if reply == Reply::Queued {
            tx.writes.push((tx.queued.len(), shape));
        }
        tx.queued.push(reply);
        Reply::Queued
    }

    /// `RESET`: back to a new connection's state (the caller too, when the
    /// gateway has principals); its transaction is ended before.
    pub(super) fn reset(&mut self) {
        self.caller = Caller::Anonymous;
        self.protocol = Protocol::Resp2;
        self.name = None;
        self.tx = None;
    }
}
