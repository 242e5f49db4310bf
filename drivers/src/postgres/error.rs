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
        let message = if err.is_closed() {
            "the connection to PostgreSQL was closed".to_owned()
        } else {
            format!("cannot talk to PostgreSQL: {err}")
        };
        return Error::Unavailable(EngineError::new(KIND, None, message).with_source(err));
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
        SqlState::ADMIN_SHUTDOWN | SqlState::CRASH_SHUTDOWN | SqlState::CANNOT_CONNECT_NOW => {
            Error::Unavailable(engine)
        }
        _ => match class {
            "23" => Error::ConstraintViolation(engine),
            "42" | "22" | "0L" | "34" | "3F" | "26" => Error::InvalidStatement(engine),
            "25" | "55" => Error::Precondition(engine),
            "28" => Error::PermissionDenied(engine),
            "08" | "53" | "57" | "58" => Error::Unavailable(engine),
            "40" => Error::Conflict(engine),
            _ => Error::Internal(engine),
        },
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
            ("25006", "FAILED_PRECONDITION"),
            ("22P02", "INVALID_STATEMENT"),
            ("42501", "PERMISSION_DENIED"),
            ("57P01", "UNAVAILABLE"),
            ("53300", "UNAVAILABLE"),
            ("0A000", "NOT_SUPPORTED"),
            ("XX000", "INTERNAL"),
        ] {
            assert_eq!(kind(code), expected, "{code}");
        }
    }
}
