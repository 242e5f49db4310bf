//! Which commands are refused or need a connection of their own.

use bytes::Bytes;

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

/// Why a command is refused, if it is: it would change or break a pooled
/// connection for the next caller.
pub fn refusal(args: &[Bytes]) -> Option<&'static str> {
    let name = String::from_utf8_lossy(args.first()?).to_ascii_uppercase();
    Some(match name.as_str() {
        "SELECT" | "SWAPDB" => "the database is set by the engine config (database)",
        "AUTH" | "HELLO" => "credentials and protocol are set by the engine config",
        "MULTI" | "EXEC" | "DISCARD" | "WATCH" | "UNWATCH" => {
            "use the gateway's transactions instead"
        }
        "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE" | "UNSUBSCRIBE" | "PUNSUBSCRIBE"
        | "SUNSUBSCRIBE" | "MONITOR" => "it turns a shared connection into a push stream",
        "QUIT" | "RESET" => "it would close or reset a shared connection",
        "CLIENT" => {
            let sub = args
                .get(1)
                .map(|s| String::from_utf8_lossy(s).to_ascii_uppercase())
                .unwrap_or_default();
            if ["ID", "INFO", "LIST", "GETNAME"].contains(&sub.as_str()) {
                return None;
            }
            "CLIENT subcommands other than ID, INFO, LIST and GETNAME change a shared connection"
        }
        _ => return None,
    })
}

pub(super) fn is_blocking(args: &[Bytes]) -> bool {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
    BLOCKING.contains(&name.as_str())
        || (matches!(name.as_str(), "XREAD" | "XREADGROUP")
            && args.iter().any(|a| a.eq_ignore_ascii_case(b"BLOCK")))
}
