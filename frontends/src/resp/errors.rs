//! The one place the gateway's errors become Redis error replies:
//!
//! - an engine's own error (Redis, or the memory engine that answers as
//!   Redis does) goes through as the engine said it: `-WRONGTYPE ...`,
//!   `-ERR ...`, `-BUSY ...`, `-LOADING ...`, `-NOPERM ...` of Redis' ACL;
//! - a denial of the gateway (a grant, a statement rule, a read-only
//!   principal) is `-NOPERM` with the gateway's message, which names the
//!   rule (`principals.NAME.read_only`, a deny rule's name);
//! - a caller the gateway does not know is `-NOAUTH`;
//! - everything else is `-ERR` with the gateway's message.

use omnigate::Error;
use omnigate::drivers::Error as DriverError;

use super::encode::Reply;

/// The engine kinds whose errors are Redis' own replies.
const RESP_ENGINES: &[&str] = &["redis", "memory"];

/// The reply a client sees for `err`.
pub(super) fn reply(err: &Error) -> Reply {
    Reply::error(line(err))
}

/// `err` as an error line: its prefix, a space, its message.
fn line(err: &Error) -> String {
    if let Error::Driver(e) = err
        && let Some(report) = e.engine_error()
        && RESP_ENGINES.contains(&report.engine)
        && let Some(code) = report.code.as_deref()
        && is_prefix(code)
        && report
            .message
            .strip_prefix(code)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
    {
        return report.message.clone();
    }
    match err {
        Error::PermissionDenied { .. } | Error::GatewayState { .. } => format!("NOPERM {err}"),
        // A write refused by the caller's read-only grant (its message
        // names the grant), or a refusal of the engine's own.
        Error::Driver(DriverError::PermissionDenied(report)) => {
            format!("NOPERM {}", report.message)
        }
        Error::Unauthenticated { .. } => format!("NOAUTH {err}"),
        _ => format!("ERR {err}"),
    }
}

/// What Redis puts before an error's message: upper-case letters.
fn is_prefix(code: &str) -> bool {
    !code.is_empty() && code.bytes().all(|b| b.is_ascii_uppercase())
}

/// The reply to `EXEC` when the commit failed: a transaction rolled back
/// everywhere is `-EXECABORT` (Redis' prefix for an EXEC that applied
/// nothing); anything else as [`reply`] says it.
///
/// A commit that applied in part, or whose outcome is not known, has a
/// prefix of its own (`-TXPARTIAL`, `-TXINDOUBT`) naming the transaction,
/// so that no client takes it for an EXEC that applied nothing and runs
/// its writes again (an `INCR` twice); operators see it with
/// `omnigate tx show <id>`.
pub(super) fn exec_reply(tx: &str, err: &Error) -> Reply {
    match err {
        Error::TxAborted { .. } => Reply::error(format!("EXECABORT {err}")),
        Error::TxFailedAfterCommit { .. } => {
            Reply::error(format!("TXPARTIAL transaction {tx}: {err}"))
        }
        Error::TxInDoubt { .. } => Reply::error(format!("TXINDOUBT transaction {tx}: {err}")),
        other => reply(other),
    }
}

/// Redis' words for a wrong number of arguments.
pub(super) fn arity(command: &str) -> Reply {
    Reply::error(format!(
        "ERR wrong number of arguments for '{}' command",
        command.to_ascii_lowercase()
    ))
}

/// Redis' words for an unknown subcommand.
pub(super) fn unknown_subcommand(command: &str, sub: &[u8]) -> Reply {
    Reply::error(format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        omnigate::error::short(&String::from_utf8_lossy(sub)),
        command.to_ascii_uppercase()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use omnigate::drivers::EngineError;
    use omnigate::drivers::redis_syntax::classify_error;

    fn text(err: Error) -> String {
        match reply(&err) {
            Reply::Error(line) => line,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn engine_errors_go_through_as_the_engine_said_them() {
        for (code, message) in [
            (
                "WRONGTYPE",
                "WRONGTYPE Operation against a key holding the wrong kind of value",
            ),
            ("ERR", "ERR value is not an integer or out of range"),
            ("BUSY", "BUSY Redis is busy running a script"),
            ("NOPERM", "NOPERM this user has no permissions"),
        ] {
            let err = Error::Driver(classify_error("redis", code, message.to_owned()));
            assert_eq!(text(err), message);
        }
        let memory = Error::Driver(classify_error("memory", "ERR", "ERR syntax error".into()));
        assert_eq!(text(memory), "ERR syntax error");
    }

    #[test]
    fn gateway_denials_are_noperm_naming_the_rule() {
        let denied = Error::PermissionDenied {
            principal: "app".into(),
            action: "run this statement on engine cache".into(),
            rule: "no-flush".into(),
        };
        let line = text(denied);
        assert!(
            line.starts_with("NOPERM ") && line.contains("(denied by no-flush)"),
            "{line}"
        );
        let read_only = Error::Driver(DriverError::PermissionDenied(EngineError::new(
            "redis",
            None,
            "principal r may not write (principals.r.read_only): SET writes",
        )));
        assert_eq!(
            text(read_only),
            "NOPERM principal r may not write (principals.r.read_only): SET writes"
        );
    }

    #[test]
    fn other_errors_are_err_with_the_gateway_message() {
        assert_eq!(
            text(Error::ShuttingDown),
            "ERR the gateway is shutting down"
        );
        let unknown = Error::TxNotFound { id: "t".into() };
        assert!(text(unknown).starts_with("ERR unknown transaction"));
        let aborted = Error::TxAborted { why: "x".into() };
        assert!(
            matches!(exec_reply("t1", &aborted), Reply::Error(l) if l.starts_with("EXECABORT "))
        );
        let partial = Error::TxFailedAfterCommit {
            engine: "cache".into(),
            why: "OOM".into(),
        };
        assert!(
            matches!(exec_reply("t1", &partial), Reply::Error(l) if l.starts_with("TXPARTIAL transaction t1: "))
        );
        let doubt = Error::TxInDoubt { why: "lost".into() };
        assert!(
            matches!(exec_reply("t1", &doubt), Reply::Error(l) if l.starts_with("TXINDOUBT transaction t1: "))
        );
        assert!(text(Error::Unauthenticated { why: "who" }).starts_with("NOAUTH "));
    }
}
