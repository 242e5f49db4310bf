//! Which commands are refused or need a connection of their own.

use bytes::Bytes;

use super::KIND;
use crate::Error;

/// Commands that block until data arrives.
const BLOCKING: &[&str] = &[
    "BLPOP",
    "BRPOP",
    "BRPOPLPUSH",
    "BLMOVE",
    "BLMPOP",
    "BZPOPMIN",
    "BZPOPMAX",
    "BZMPOP",
    "WAIT",
    "WAITAOF",
];

/// A command name in upper case, on the stack (this runs on every call).
struct Upper {
    buf: [u8; 24],
    len: usize,
}

impl Upper {
    fn of(name: &[u8]) -> Upper {
        let mut upper = Upper {
            buf: [0; 24],
            len: 0,
        };
        if name.len() <= upper.buf.len() {
            for (slot, byte) in upper.buf.iter_mut().zip(name) {
                *slot = byte.to_ascii_uppercase();
            }
            upper.len = name.len();
        }
        upper
    }

    /// The name, or "" when it is too long or not UTF-8 (no command is).
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

/// Why a command is refused, if it is: it would change or break a pooled
/// connection for the next caller.
pub fn refusal(args: &[Bytes]) -> Option<&'static str> {
    let name = Upper::of(args.first()?);
    Some(match name.as_str() {
        "SELECT" | "SWAPDB" => "the database is set by the engine config (database)",
        "MOVE" => "it writes into another database than the engine's (database)",
        "COPY" if args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"DB")) => {
            "COPY ... DB writes into another database than the engine's (database)"
        }
        "SCRIPT"
            if args
                .get(1)
                .is_some_and(|sub| sub.eq_ignore_ascii_case(b"DEBUG")) =>
        {
            "SCRIPT DEBUG changes a shared connection's script mode (and SYNC blocks the server)"
        }
        "AUTH" | "HELLO" => "credentials and protocol are set by the engine config",
        "MULTI" | "EXEC" | "DISCARD" | "WATCH" | "UNWATCH" => {
            "use the gateway's transactions instead"
        }
        "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE" | "UNSUBSCRIBE" | "PUNSUBSCRIBE"
        | "SUNSUBSCRIBE" | "MONITOR" => "it turns a shared connection into a push stream",
        "QUIT" | "RESET" => "it would close or reset a shared connection",
        "SYNC" | "PSYNC" | "REPLCONF" => "it turns a shared connection into a replication stream",
        "READONLY" | "READWRITE" | "ASKING" => {
            "it changes a shared connection's cluster mode for its next user"
        }
        "CLIENT" => {
            let sub = Upper::of(args.get(1).map_or(&[][..], |s| s.as_ref()));
            if ["ID", "INFO", "LIST", "GETNAME"].contains(&sub.as_str()) {
                return None;
            }
            "CLIENT subcommands other than ID, INFO, LIST and GETNAME change a shared connection"
        }
        _ => return None,
    })
}

/// Whether a command blocks until data arrives (`BLPOP`, `WAIT`, `XREAD
/// ... BLOCK`): such a command needs a connection of its own.
pub fn is_blocking(args: &[Bytes]) -> bool {
    let name = Upper::of(&args[0]);
    BLOCKING.contains(&name.as_str())
        || (matches!(name.as_str(), "XREAD" | "XREADGROUP")
            && args.iter().any(|a| a.eq_ignore_ascii_case(b"BLOCK")))
}

/// `NotSupported` with the reason, for a command that is refused.
pub(super) fn check_allowed(args: &[Bytes]) -> Result<(), Error> {
    match refusal(args) {
        Some(why) => {
            let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
            Err(Error::not_supported(
                format!("command {name} ({why})"),
                KIND,
            ))
        }
        None => Ok(()),
    }
}
