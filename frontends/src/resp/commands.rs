//! The commands the front end answers itself — the connection's own
//! (`AUTH`, `HELLO`, `PING`, `ECHO`, `QUIT`, `RESET`, `SELECT`, `CLIENT`,
//! `COMMAND`), the transaction's (`MULTI`, `EXEC`, `DISCARD`, `WATCH`,
//! `OMNIGATE.TX`, in `tx.rs`) and the ones it refuses — and which commands
//! go to the engine: every other.

use bytes::Bytes;
use omnigate::Caller;
use omnigate::drivers::Dialect;
use omnigate::security::Credentials;

use super::connection::{Connection, Flow};
use super::encode::{Protocol, Reply};
use super::errors::{self, arity, unknown_subcommand};
use super::shape::Shape;

/// Commands the front end answers itself.
const LOCAL: &[&str] = &[
    "AUTH",
    "HELLO",
    "PING",
    "ECHO",
    "QUIT",
    "RESET",
    "SELECT",
    "CLIENT",
    "COMMAND",
    "MULTI",
    "EXEC",
    "DISCARD",
    "WATCH",
    "UNWATCH",
    "OMNIGATE.TX",
];

/// Commands a client may send before it authenticates, as in Redis.
const BEFORE_AUTH: &[&str] = &["AUTH", "HELLO", "QUIT", "RESET"];

/// Commands that turn a connection into a stream of pushes or replication.
const STREAMS: &[&str] = &[
    "SUBSCRIBE",
    "PSUBSCRIBE",
    "SSUBSCRIBE",
    "UNSUBSCRIBE",
    "PUNSUBSCRIBE",
    "SUNSUBSCRIBE",
    "MONITOR",
    "SYNC",
    "PSYNC",
];

/// A command's name in upper case (lossy: no command name is not UTF-8).
pub(super) fn name(first: &Bytes) -> String {
    String::from_utf8_lossy(first).to_ascii_uppercase()
}

/// Why the front end refuses a command a Redis server would run, if it
/// does.
fn refusal(name: &str, args: &[Bytes]) -> Option<String> {
    if STREAMS.contains(&name) {
        return Some(format!(
            "ERR {name} is not served by the gateway's RESP front end: it turns a connection \
             into a stream of its own, and the gateway serves every client on pooled \
             connections that other clients share. Connect to the engine itself for pub/sub \
             and MONITOR (PUBLISH passes to the engine)"
        ));
    }
    if omnigate::drivers::redis::is_blocking(args) {
        return Some(format!(
            "ERR {name} is not served by the gateway's RESP front end: it blocks until data \
             arrives, and the gateway serves every client on pooled connections other \
             clients share, within its call timeout. Poll with the non-blocking form \
             (LPOP, RPOP, ZPOPMIN, XREAD without BLOCK) or connect to the engine"
        ));
    }
    None
}

impl Connection {
    /// Whether a command goes to the engine (else the front end answers).
    pub(super) fn is_engine_command(&self, name: &str, args: &[Bytes]) -> bool {
        self.session.authenticated(&self.shared.gateway)
            && !LOCAL.contains(&name)
            && refusal(name, args).is_none()
    }

    /// Answers a command the front end answers itself. Between `MULTI`
    /// and `EXEC`, the connection's plain commands (`PING`, `ECHO`,
    /// `SELECT`, `CLIENT`, `COMMAND`) and refusals are queued as Redis
    /// queues them; the rest act at once.
    pub(super) async fn local(&mut self, name: &str, args: Vec<Bytes>) -> (Reply, Flow) {
        if !self.session.authenticated(&self.shared.gateway) && !BEFORE_AUTH.contains(&name) {
            return (
                Reply::error("NOAUTH Authentication required."),
                Flow::Continue,
            );
        }
        let reply = match name {
            // Who the session is may not change under its transaction:
            // its commands are queued as the caller that began it.
            "AUTH" | "HELLO" if self.session.queuing() => {
                let refused = Reply::error(format!(
                    "ERR {name} inside MULTI is not allowed: EXEC or DISCARD first"
                ));
                self.session.queue(refused, Shape::Same, self.max_queued())
            }
            "AUTH" => self.auth(&args),
            "HELLO" => self.hello(&args),
            "QUIT" => return (Reply::ok(), Flow::Close),
            "RESET" => self.reset().await,
            "MULTI" => self.multi(&args),
            "EXEC" => self.exec(&args).await,
            "DISCARD" => self.discard(&args).await,
            "WATCH" => Reply::error(
                "ERR WATCH is not served by the gateway's RESP front end: a key's changes by \
                 other clients are not watched across the gateway's pooled connections. \
                 MULTI/EXEC runs as a gateway transaction (writes checked when queued, \
                 applied atomically at EXEC) without it",
            ),
            // Nothing is ever watched.
            "UNWATCH" => Reply::ok(),
            "OMNIGATE.TX" => self.omnigate_tx(&args),
            _ => {
                let reply = match refusal(name, &args) {
                    Some(why) => Reply::error(why),
                    None => self.plain(name, &args),
                };
                if self.session.queuing() {
                    self.session.queue(reply, Shape::Same, self.max_queued())
                } else {
                    reply
                }
            }
        };
        (reply, Flow::Continue)
    }

    /// `PING`, `ECHO`, `SELECT`, `CLIENT`, `COMMAND`.
    fn plain(&mut self, name: &str, args: &[Bytes]) -> Reply {
        match (name, args.len()) {
            ("PING", 1) => Reply::status("PONG"),
            ("PING", 2) | ("ECHO", 2) => Reply::Bulk(args[1].clone()),
            ("SELECT", 2) => select(&args[1]),
            ("CLIENT", n) if n >= 2 => self.client(args),
            ("COMMAND", _) => command(args),
            _ => arity(name),
        }
    }

    /// `AUTH [user] token`.
    fn auth(&mut self, args: &[Bytes]) -> Reply {
        let (user, token) = match args {
            [_, token] => (None, token),
            [_, user, token] => (Some(user), token),
            _ => return arity("auth"),
        };
        match self.authenticate(user.map(|u| u.as_ref()), token) {
            Ok(caller) => {
                self.session.set_caller(caller);
                Reply::ok()
            }
            Err(reply) => reply,
        }
    }

    /// Who `user` (optional) and `token` name, allowed on the engine; the
    /// reply to send when nobody or not allowed. `AUTH token`, as
    /// `AUTH default token`, is the bearer token alone.
    fn authenticate(&self, user: Option<&[u8]>, token: &[u8]) -> Result<Caller, Reply> {
        let wrong =
            || Reply::error("WRONGPASS invalid username-password pair or user is disabled.");
        let gateway = &self.shared.gateway;
        let token = std::str::from_utf8(token).map_err(|_| wrong())?;
        let user = match user {
            Some(user) => Some(std::str::from_utf8(user).map_err(|_| wrong())?),
            None => None,
        };
        let bearer;
        let credentials = match user {
            Some(user) if user != "default" => Credentials {
                login: Some((user, token)),
                ..Credentials::default()
            },
            _ => {
                bearer = format!("Bearer {token}");
                Credentials {
                    authorization: Some(&bearer),
                    ..Credentials::default()
                }
            }
        };
        let caller = gateway.authenticate(credentials).map_err(|_| wrong())?;
        if let Some(p) = caller.principal() {
            p.grant
                .check_engine(&p.name, &self.shared.target, Dialect::Redis)
                .map_err(|e| errors::reply(&e))?;
        }
        Ok(caller)
    }

    /// `HELLO [protover [AUTH user token] [SETNAME name]]`: switches the
    /// protocol, authenticates, names the client; a map of the server.
    fn hello(&mut self, args: &[Bytes]) -> Reply {
        let mut protocol = self.session.protocol;
        if let Some(version) = args.get(1) {
            protocol = match version.as_ref() {
                b"2" => Protocol::Resp2,
                b"3" => Protocol::Resp3,
                _ if std::str::from_utf8(version).is_ok_and(|v| v.parse::<i64>().is_ok()) => {
                    return Reply::error("NOPROTO unsupported protocol version");
                }
                _ => {
                    return Reply::error("ERR Protocol version is not an integer or out of range");
                }
            };
        }
        let mut caller = None;
        let mut name = None;
        let mut i = 2;
        while i < args.len() {
            let option = args[i].to_ascii_uppercase();
            match option.as_slice() {
                b"AUTH" if i + 2 < args.len() => {
                    match self.authenticate(Some(&args[i + 1]), &args[i + 2]) {
                        Ok(found) => caller = Some(found),
                        Err(reply) => return reply,
                    }
                    i += 3;
                }
                b"SETNAME" if i + 1 < args.len() => {
                    if let Err(reply) = valid_name(&args[i + 1]) {
                        return reply;
                    }
                    name = Some(args[i + 1].clone());
                    i += 2;
                }
                _ => {
                    return Reply::error(format!(
                        "ERR Syntax error in HELLO option '{}'",
                        String::from_utf8_lossy(&args[i])
                    ));
                }
            }
        }
        if let Some(caller) = caller {
            self.session.set_caller(caller);
        }
        if !self.session.authenticated(&self.shared.gateway) {
            return Reply::error(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise \
                 the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the \
                 client and select the RESP protocol version at the same time",
            );
        }
        if let Some(name) = name {
            self.session.name = (!name.is_empty()).then_some(name);
        }
        self.session.protocol = protocol;
        let text = |s: &str| Reply::text(s);
        Reply::Map(vec![
            (text("server"), text("omnigate")),
            (text("version"), text(REDIS_VERSION)),
            (text("proto"), Reply::Int(protocol.version())),
            (text("id"), Reply::Int(self.id())),
            (text("mode"), text("standalone")),
            (text("role"), text("master")),
            (text("modules"), Reply::Array(Vec::new())),
        ])
    }

    /// `RESET`: the session as a new connection's (a transaction it was
    /// queuing rolled back; a joined one left to whoever began it).
    async fn reset(&mut self) -> Reply {
        self.abandon_tx().await;
        self.session.reset();
        Reply::status("RESET")
    }

    fn id(&self) -> i64 {
        i64::try_from(self.session.id).unwrap_or(i64::MAX)
    }

    /// `CLIENT ID | GETNAME | SETNAME name | INFO | SETINFO ...`; the
    /// others would change or list the engine's pooled connections.
    fn client(&mut self, args: &[Bytes]) -> Reply {
        let sub = args[1].to_ascii_uppercase();
        match (sub.as_slice(), args.len()) {
            (b"ID", 2) => Reply::Int(self.id()),
            (b"GETNAME", 2) => self.session.name.clone().map_or(Reply::Nil, Reply::Bulk),
            (b"SETNAME", 3) => match valid_name(&args[2]) {
                Ok(()) => {
                    self.session.name = (!args[2].is_empty()).then(|| args[2].clone());
                    Reply::ok()
                }
                Err(reply) => reply,
            },
            (b"INFO", 2) => Reply::text(format!(
                "id={} addr={} laddr={} name={} db=0 multi={} resp={}\n",
                self.session.id,
                self.session.peer,
                self.session.local,
                self.session
                    .name
                    .as_ref()
                    .map(|n| String::from_utf8_lossy(n).into_owned())
                    .unwrap_or_default(),
                self.session
                    .tx
                    .as_ref()
                    .filter(|tx| tx.queuing)
                    .map_or(-1, |tx| i64::try_from(tx.queued.len()).unwrap_or(i64::MAX)),
                self.session.protocol.version(),
            )),
            // The library's name and version, which clients send at
            // connect: taken, and nothing else to do with them.
            (b"SETINFO", 4) => Reply::ok(),
            (b"ID" | b"GETNAME" | b"SETNAME" | b"INFO" | b"SETINFO", _) => arity("client"),
            _ => Reply::error(format!(
                "ERR CLIENT {} is not served by the gateway's RESP front end: it would change \
                 or list the engine's pooled connections, which other clients share (served: \
                 CLIENT ID, GETNAME, SETNAME, INFO, SETINFO)",
                omnigate::error::short(&String::from_utf8_lossy(&args[1]))
            )),
        }
    }
}

/// The Redis version `HELLO` reports: the command set the front end
/// answers as (the engine's own may be newer).
const REDIS_VERSION: &str = "7.0.0";

/// Redis' rule for client names: no spaces, newlines or other special
/// characters.
fn valid_name(name: &[u8]) -> Result<(), Reply> {
    if name.iter().all(|b| (b'!'..=b'~').contains(b)) {
        Ok(())
    } else {
        Err(Reply::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ))
    }
}

/// `SELECT 0`: the session stays on the engine's configured database;
/// any other is refused (it would have to be set on the pooled
/// connections for this client alone).
fn select(db: &Bytes) -> Reply {
    match std::str::from_utf8(db)
        .ok()
        .and_then(|d| d.parse::<i64>().ok())
    {
        Some(0) => Reply::ok(),
        Some(_) => Reply::error(
            "ERR SELECT is not served by the gateway's RESP front end beyond SELECT 0: the \
             engine's database is set in its config (engines.NAME.database) for every \
             pooled connection; configure another engine for another database",
        ),
        None => Reply::error("ERR value is not an integer or out of range"),
    }
}

/// `COMMAND`, `COMMAND COUNT | DOCS | INFO | LIST`: empty (no command
/// table is published; clients fall back on their own), so nothing is
/// listed that the gateway would refuse.
fn command(args: &[Bytes]) -> Reply {
    let Some(sub) = args.get(1) else {
        return Reply::Array(Vec::new());
    };
    match sub.to_ascii_uppercase().as_slice() {
        b"COUNT" => Reply::Int(0),
        b"DOCS" => Reply::Map(Vec::new()),
        b"INFO" | b"LIST" => Reply::Array(Vec::new()),
        other => unknown_subcommand("COMMAND", other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    #[test]
    fn streams_and_blocking_commands_are_refused_saying_why() {
        let why = refusal("SUBSCRIBE", &args(&["SUBSCRIBE", "ch"])).unwrap();
        assert!(
            why.starts_with("ERR SUBSCRIBE") && why.contains("pooled"),
            "{why}"
        );
        let why = refusal("BLPOP", &args(&["BLPOP", "q", "0"])).unwrap();
        assert!(why.contains("blocks") && why.contains("LPOP"), "{why}");
        let why = refusal(
            "XREAD",
            &args(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]),
        );
        assert!(why.is_some());
        assert!(refusal("XREAD", &args(&["XREAD", "STREAMS", "s", "0"])).is_none());
        assert!(refusal("GET", &args(&["GET", "k"])).is_none());
    }

    #[test]
    fn select_takes_zero_and_command_is_empty() {
        assert_eq!(select(&Bytes::from_static(b"0")), Reply::ok());
        assert!(select(&Bytes::from_static(b"1")).is_error());
        assert!(select(&Bytes::from_static(b"x")).is_error());
        assert_eq!(command(&args(&["COMMAND"])), Reply::Array(Vec::new()));
        assert_eq!(command(&args(&["COMMAND", "docs"])), Reply::Map(Vec::new()));
        assert!(command(&args(&["COMMAND", "nope"])).is_error());
        assert!(valid_name(b"app-1").is_ok() && valid_name(b"a b").is_err());
    }
}
