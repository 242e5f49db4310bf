//! The one place the gateway's errors become PostgreSQL `ErrorResponse`s:
//! the engine's own SQLSTATE when a PostgreSQL engine gave one, else the
//! SQLSTATE of the error's class and kind.

use omnigate::Error;
use omnigate::drivers::Error as DriverError;
use omnigate::error::Class;
use pgwire::error::ErrorInfo;

/// An `ERROR` with `code` and `message`.
pub(super) fn error(code: &str, message: impl Into<String>) -> ErrorInfo {
    ErrorInfo::new("ERROR".to_owned(), code.to_owned(), message.into())
}

/// A `FATAL` error: the connection ends after it.
pub(super) fn fatal(code: &str, message: impl Into<String>) -> ErrorInfo {
    ErrorInfo::new("FATAL".to_owned(), code.to_owned(), message.into())
}

/// The response a client sees for `err`.
pub(super) fn to_error(err: &Error) -> ErrorInfo {
    error(sqlstate(err), err.to_string())
}

/// The `ErrorResponse` of statement `text` that failed with `err` on
/// `engine` ([`to_error`]), but for a catalog query (psql's `\d`, a
/// driver's introspection) that an engine other than PostgreSQL could not
/// read: that is said as such (`0A000`), not as the engine's syntax error.
pub(super) fn statement_error(
    gateway: &omnigate::Gateway,
    engine: &str,
    text: &str,
    err: &Error,
) -> ErrorInfo {
    catalog_refusal(gateway, engine, text, err).unwrap_or_else(|| to_error(err))
}

/// See [`statement_error`]: only a statement the engine refused as invalid
/// (syntax, an unknown table) is said so; any other failure keeps its own
/// error, and PostgreSQL engines answer catalog queries.
fn catalog_refusal(
    gateway: &omnigate::Gateway,
    engine: &str,
    text: &str,
    err: &Error,
) -> Option<ErrorInfo> {
    if !matches!(
        err,
        Error::Driver(omnigate::drivers::Error::InvalidStatement(_))
    ) {
        return None;
    }
    let kind = super::engine_kind(gateway, engine)?;
    let lower = text.to_ascii_lowercase();
    let catalog = [
        "pg_catalog",
        "pg_class",
        "pg_namespace",
        "information_schema",
    ]
    .iter()
    .any(|name| lower.contains(name));
    (catalog && kind != omnigate::drivers::postgres::KIND).then(|| {
        error(
            "0A000",
            format!(
                "engine {engine} ({kind}) has no PostgreSQL catalog: psql's \\d commands and \
                 drivers' introspection read pg_catalog, which only a postgres engine \
                 answers; on SQLite read sqlite_schema (SELECT name, sql FROM sqlite_schema)"
            ),
        )
    })
}

/// A SQLSTATE: five digits or upper-case letters.
fn is_sqlstate(code: &str) -> bool {
    code.len() == 5
        && code
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

/// The SQLSTATE of `err` (documented in the README's PostgreSQL-wire
/// section).
pub(super) fn sqlstate(err: &Error) -> &str {
    if let Error::Driver(e) = err
        && e.engine_error().is_some_and(|e| e.engine == "postgres")
        && let Some(code) = e.engine_code().filter(|c| is_sqlstate(c))
    {
        return code;
    }
    match err {
        Error::Unauthenticated { .. } => "28P01",
        Error::UnknownTarget { .. } => "3D000",
        Error::TxNotFound { .. } => "25P01",
        Error::TxEnded { .. } | Error::TxEnding { .. } => "25P02",
        Error::TxAborted { .. } => "40001",
        // statement_completion_unknown: the commit's outcome is not known
        // yet (recovery finishes it, all or nothing).
        Error::TxInDoubt { .. } => "40003",
        Error::TxFailedAfterCommit { .. } => "XX000",
        Error::ShuttingDown => "57P01",
        Error::EngineDrained { .. } => "57P03",
        Error::EngineBusy { .. } | Error::LimitExceeded { .. } => "53300",
        Error::ResponseTooLarge { .. } => "54000",
        Error::Driver(DriverError::ReadOnly(_)) => "25006",
        Error::Driver(DriverError::ConstraintViolation(_)) => "23000",
        Error::Driver(DriverError::Conflict(_)) => "40001",
        Error::Driver(DriverError::NotSupported { .. }) => "0A000",
        Error::Driver(DriverError::InvalidParameter { .. })
        | Error::Driver(DriverError::InvalidNamedParameter { .. })
        | Error::BadParameter { .. }
        | Error::InvalidOption { .. } => "22023",
        Error::Driver(DriverError::InvalidStatement(_)) => "42601",
        _ => match err.class() {
            Class::InvalidArgument => "42601",
            Class::NotFound => "42704",
            Class::FailedPrecondition => "55000",
            Class::Aborted => "40001",
            Class::DeadlineExceeded => "57014",
            Class::Unavailable => "08006",
            Class::OutOfRange => "22003",
            Class::ResourceExhausted => "53000",
            Class::PermissionDenied => "42501",
            Class::Unauthenticated => "28000",
            Class::Unimplemented => "0A000",
            Class::Unknown => "40003",
            Class::Internal => "XX000",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_errors_take_the_sqlstate_of_their_class() {
        let denied = Error::PermissionDenied {
            principal: "p".into(),
            action: "x".into(),
            rule: "r".into(),
        };
        assert_eq!(sqlstate(&denied), "42501");
        assert_eq!(sqlstate(&Error::ShuttingDown), "57P01");
        assert_eq!(sqlstate(&Error::Unauthenticated { why: "no" }), "28P01");
        assert!(is_sqlstate("23505") && !is_sqlstate("ERR") && !is_sqlstate("2350a"));
    }
}
