//! neo4rs errors as meaning-based errors, by Neo4j's status codes
//! (`Neo.ClientError.Statement.SyntaxError`, ...).

use super::KIND;
use crate::{EngineError, Error};

/// The error of a failed Neo4j call.
pub(super) fn from_neo4j(err: neo4rs::Error) -> Error {
    match err {
        neo4rs::Error::Neo4j(e) => classify(e.code(), e.message()),
        neo4rs::Error::AuthenticationError(message) => {
            Error::PermissionDenied(EngineError::new(KIND, None, message))
        }
        neo4rs::Error::IOError { .. }
        | neo4rs::Error::ConnectionError
        | neo4rs::Error::ConnectionTimedOut
        | neo4rs::Error::ServerUnavailableError(_)
        | neo4rs::Error::RoutingTableRefreshFailed(_)
        | neo4rs::Error::RoutingTableError(_)
        | neo4rs::Error::IncompleteBoltExchange => {
            let message = format!("cannot talk to Neo4j: {err}");
            Error::Unavailable(EngineError::new(KIND, None, message).with_source(err))
        }
        neo4rs::Error::UrlParseError(_)
        | neo4rs::Error::UnsupportedScheme(_)
        | neo4rs::Error::InvalidDnsName(_)
        | neo4rs::Error::InvalidConfig => Error::InvalidStatement(
            EngineError::new(KIND, None, format!("the neo4j settings are invalid: {err}"))
                .with_source(err),
        ),
        neo4rs::Error::StringTooLong
        | neo4rs::Error::MapTooBig
        | neo4rs::Error::BytesTooBig
        | neo4rs::Error::ListTooLong => Error::InvalidStatement(EngineError::new(
            KIND,
            None,
            format!("a parameter is too large for Bolt: {err}"),
        )),
        other => {
            Error::Internal(EngineError::new(KIND, None, other.to_string()).with_source(other))
        }
    }
}

/// A Neo4j status code and message as an error.
pub(super) fn classify(code: &str, message: &str) -> Error {
    let report = EngineError::new(KIND, Some(code), message);
    let parts: Vec<&str> = code.split('.').collect();
    match parts.as_slice() {
        [_, "ClientError", "Schema", "ConstraintValidationFailed"] => {
            Error::ConstraintViolation(report)
        }
        [_, "ClientError", "Statement", "AccessMode"]
        | [
            _,
            "ClientError",
            "Transaction",
            "ForbiddenDueToTransactionType",
        ] => Error::Precondition(report),
        [_, "ClientError", "Transaction", "TransactionTimedOut"]
        | [
            _,
            "ClientError",
            "Transaction",
            "TransactionTimedOutClientConfiguration",
        ]
        | [_, "TransientError", "Transaction", "LockAcquisitionTimeout"] => Error::Timeout {
            after: std::time::Duration::ZERO,
        },
        [_, "ClientError", "Database", "DatabaseNotFound"] => Error::NotFound(report),
        [_, "ClientError", "Security", ..] => Error::PermissionDenied(report),
        [_, "ClientError", "Schema", ..] => Error::Precondition(report),
        [_, "ClientError", ..] => Error::InvalidStatement(report),
        [_, "TransientError", "General", "DatabaseUnavailable"] => Error::Unavailable(report),
        [_, "TransientError", ..] => Error::Conflict(report),
        _ => Error::Internal(report),
    }
}

#[cfg(test)]
mod tests {
    use super::classify;
    use crate::Error;

    #[test]
    fn status_codes_map_by_meaning() {
        let cases = [
            ("Neo.ClientError.Statement.SyntaxError", "INVALID_STATEMENT"),
            (
                "Neo.ClientError.Statement.ParameterMissing",
                "INVALID_STATEMENT",
            ),
            (
                "Neo.ClientError.Schema.ConstraintValidationFailed",
                "CONSTRAINT_VIOLATION",
            ),
            (
                "Neo.ClientError.Statement.AccessMode",
                "FAILED_PRECONDITION",
            ),
            ("Neo.ClientError.Security.Unauthorized", "PERMISSION_DENIED"),
            ("Neo.ClientError.Database.DatabaseNotFound", "NOT_FOUND"),
            (
                "Neo.TransientError.Transaction.DeadlockDetected",
                "CONFLICT",
            ),
            (
                "Neo.TransientError.General.DatabaseUnavailable",
                "UNAVAILABLE",
            ),
            ("Neo.DatabaseError.General.UnknownError", "INTERNAL"),
        ];
        for (code, kind) in cases {
            assert_eq!(classify(code, "m").kind(), kind, "{code}");
        }
        assert!(matches!(
            classify("Neo.ClientError.Transaction.TransactionTimedOut", "m"),
            Error::Timeout { .. }
        ));
        assert_eq!(
            classify("Neo.ClientError.Statement.SyntaxError", "m").engine_code(),
            Some("Neo.ClientError.Statement.SyntaxError")
        );
    }
}
