//! PostgreSQL errors to meaning-based errors, by SQLSTATE. Messages carry
//! the server's primary message and the constraint name, never its DETAIL
//! (which may quote parameter values).

use std::time::Duration;

use tokio_postgres::error::SqlState;

use super::KIND;
use crate::{EngineError, Error};

/// Maps a tokio-postgres error. `timeout` is the statement's time limit,
/// for a query the gateway cancelled.
pub(crate) fn from_pg(err: tokio_postgres::Error, timeout: Option<Duration>) -> Error {
    let Some(db) = err.as_db_error() else {
        // No SQLSTATE: the connection failed or closed.
        if err.is_closed() {
            let message = "the connection to PostgreSQL was closed";
            return Error::Unavailable(EngineError::new(KIND, None, message).with_source(err));
        }
        // The server said something the client did not expect: not an
        // outage (the next call works), and not worth retrying unchanged.
        // The lease takes such a connection out of the pool.
        let message = format!("PostgreSQL's reply could not be read: {err}");
        return Error::Internal(EngineError::new(KIND, None, message).with_source(err));
    };
    let code = db.code().clone();
    let mut message = db.message().to_owned();
    if let Some(constraint) = db.constraint().filter(|c| !message.contains(c)) {
        message.push_str(&format!(" (constraint {constraint})"));
    }
    if let Some(tokio_postgres::error::ErrorPosition::Original(position)) = db.position() {
        message.push_str(&format!(" (at character {position})"));
    }
    let engine = EngineError::new(KIND, Some(code.code()), message).with_source(err);
    classify(&code, engine, timeout)
}

fn classify(code: &SqlState, engine: EngineError, timeout: Option<Duration>) -> Error {
    let class = &code.code()[..2];
    match *code {
        SqlState::UNDEFINED_TABLE | SqlState::UNDEFINED_SCHEMA | SqlState::UNDEFINED_DATABASE => {
            Error::NotFound(engine)
        }
        SqlState::INSUFFICIENT_PRIVILEGE => Error::PermissionDenied(engine),
        SqlState::T_R_SERIALIZATION_FAILURE
        | SqlState::T_R_DEADLOCK_DETECTED
        | SqlState::LOCK_NOT_AVAILABLE => Error::Conflict(engine),
        SqlState::QUERY_CANCELED => Error::Timeout {
            after: timeout.unwrap_or(Duration::ZERO),
        },
        SqlState::FEATURE_NOT_SUPPORTED => Error::NotSupported {
            operation: engine.message,
            engine: KIND.into(),
        },
        SqlState::ADMIN_SHUTDOWN
        | SqlState::CRASH_SHUTDOWN
        | SqlState::CANNOT_CONNECT_NOW
        | SqlState::TOO_MANY_CONNECTIONS
        | SqlState::FDW_UNABLE_TO_ESTABLISH_CONNECTION => Error::Unavailable(engine),
        _ => by_class(class, engine),
    }
}

/// Every SQLSTATE class of PostgreSQL's appendix A, by what the client
/// can do about it; `Internal` is for class XX (and codes PostgreSQL does
/// not document) only.
fn by_class(class: &str, engine: EngineError) -> Error {
    match class {
        // The statement as written: syntax, names, types, data it carries
        // (22: data exception, e.g. division by zero, invalid text), a CASE
        // without a match (20), more rows than a subquery may give (21).
        "42" | "22" | "20" | "21" | "0F" | "0L" | "0P" | "0Z" | "26" | "2F" | "34" => {
            Error::InvalidStatement(engine)
        }
        // Constraints: integrity (23), triggered data change (27), WITH
        // CHECK OPTION (44).
        "23" | "27" | "44" => Error::ConstraintViolation(engine),
        // The state of the data or the session: dependent objects still
        // exist (2B: DROP TABLE with a view on it), transaction states (0B,
        // 25, 2D, 3B), cursors (24), objects not in the state needed (55),
        // triggers and routines refusing (09, 38, 39), a RAISE or STRICT
        // INTO of PL/pgSQL (P0), foreign data wrappers (HV), the server's
        // configuration file (F0).
        "25" if engine.code.as_deref() == Some("25006") => Error::ReadOnly(engine),
        "2B" | "0B" | "25" | "2D" | "3B" | "24" | "55" | "09" | "38" | "39" | "P0" | "HV"
        | "F0" => Error::Precondition(engine),
        // The catalog (database) named does not exist.
        "3D" => Error::NotFound(engine),
        "28" => Error::PermissionDenied(engine),
        // Program limits: the statement is too large or complex (54011:
        // too many columns).
        "54" => Error::OutOfRange(engine),
        // Out of memory, disk or other resources: retry later.
        "53" => Error::Overloaded(engine),
        // Transaction rollback (40) and snapshot too old (72): retry.
        "40" | "72" => Error::Conflict(engine),
        // The connection, an operator's intervention, the system around
        // the server.
        "08" | "57" | "58" => Error::Unavailable(engine),
        _ => Error::Internal(engine),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(code: &str) -> &'static str {
        let state = SqlState::from_code(code);
        classify(
            &state,
            EngineError::new(KIND, Some(code), "m"),
            Some(Duration::from_secs(1)),
        )
        .kind()
    }

    #[test]
    fn sqlstates_map_by_meaning() {
        for (code, expected) in [
            ("42601", "INVALID_STATEMENT"),
            ("42703", "INVALID_STATEMENT"),
            ("42P01", "NOT_FOUND"),
            ("23505", "CONSTRAINT_VIOLATION"),
            ("23503", "CONSTRAINT_VIOLATION"),
            ("23514", "CONSTRAINT_VIOLATION"),
            ("23502", "CONSTRAINT_VIOLATION"),
            ("40001", "CONFLICT"),
            ("40P01", "CONFLICT"),
            ("57014", "TIMEOUT"),
            ("25006", "READ_ONLY"),
            ("22P02", "INVALID_STATEMENT"),
            ("42501", "PERMISSION_DENIED"),
            ("57P01", "UNAVAILABLE"),
            ("53300", "UNAVAILABLE"),
            ("53200", "OVERLOADED"),
            ("P0001", "FAILED_PRECONDITION"),
            ("P0002", "FAILED_PRECONDITION"),
            ("2BP01", "FAILED_PRECONDITION"),
            ("54011", "OUT_OF_RANGE"),
            ("54000", "OUT_OF_RANGE"),
            ("72000", "CONFLICT"),
            ("F0000", "FAILED_PRECONDITION"),
            ("HV000", "FAILED_PRECONDITION"),
            ("3D000", "NOT_FOUND"),
            ("22012", "INVALID_STATEMENT"),
            ("0A000", "NOT_SUPPORTED"),
            ("XX000", "INTERNAL"),
        ] {
            assert_eq!(kind(code), expected, "{code}");
        }
    }
}
