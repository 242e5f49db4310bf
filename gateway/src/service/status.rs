//! The one place where errors become gRPC statuses: a code, a message that
//! says what to fix, and a `google.rpc.ErrorInfo` detail (domain
//! `omnigate`, reason = the error kind, metadata: engine, code, retryable).

use std::collections::HashMap;

use omnigate_drivers::Error as DriverError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::error::Error;

/// The error domain in `ErrorInfo`.
pub const ERROR_DOMAIN: &str = "omnigate";

/// The gRPC code of a driver error.
pub fn driver_code(err: &DriverError) -> Code {
    match err {
        DriverError::InvalidStatement(_)
        | DriverError::InvalidParameter { .. }
        | DriverError::InvalidNamedParameter { .. } => Code::InvalidArgument,
        DriverError::NotFound(_) => Code::NotFound,
        DriverError::ConstraintViolation(_)
        | DriverError::Precondition(_)
        | DriverError::AppliedInPart(_) => Code::FailedPrecondition,
        DriverError::ReadOnly(_) => Code::FailedPrecondition,
        DriverError::Conflict(_) => Code::Aborted,
        DriverError::Timeout { .. } => Code::DeadlineExceeded,
        DriverError::Unavailable(_) => Code::Unavailable,
        DriverError::OutOfRange(_) => Code::OutOfRange,
        DriverError::PoolExhausted { .. }
        | DriverError::ResultTooLarge { .. }
        | DriverError::TooManyRows { .. }
        | DriverError::Overloaded(_) => Code::ResourceExhausted,
        DriverError::PermissionDenied(_) => Code::PermissionDenied,
        DriverError::NotSupported { .. } => Code::Unimplemented,
        _ => Code::Internal,
    }
}

/// The gRPC code and `ErrorInfo` reason of a gateway error.
fn code_and_reason(err: &Error) -> (Code, &'static str) {
    match err {
        Error::Driver(e) => (driver_code(e), e.kind()),
        Error::MissingDialect { .. } => (Code::InvalidArgument, "MISSING_DIALECT"),
        Error::UnknownDialect { .. } => (Code::InvalidArgument, "UNKNOWN_DIALECT"),
        Error::UnknownTarget { .. } => (Code::NotFound, "UNKNOWN_TARGET"),
        Error::DialectNotServed { .. } => (Code::InvalidArgument, "DIALECT_NOT_SERVED"),
        Error::AmbiguousTarget { .. } => (Code::InvalidArgument, "AMBIGUOUS_TARGET"),
        Error::TxNotFound { .. } => (Code::NotFound, "TX_NOT_FOUND"),
        Error::TxEnded { .. } => (Code::FailedPrecondition, "TX_ENDED"),
        Error::TxAborted { .. } => (Code::Aborted, "TX_ABORTED"),
        Error::TxTwoDeciders { .. } => (Code::FailedPrecondition, "TX_TWO_DECIDERS"),
        Error::TxResolve { .. } => (Code::FailedPrecondition, "TX_RESOLVE"),
        Error::TxLog { .. } => (Code::Unavailable, "TX_LOG"),
        // Not UNAVAILABLE: retry policies retry that as if nothing happened.
        Error::TxInDoubt { .. } => (Code::Unknown, "TX_IN_DOUBT"),
        Error::TxEnding { .. } => (Code::FailedPrecondition, "TX_ENDING"),
        Error::TxFailedAfterCommit { .. } => (Code::FailedPrecondition, "TX_FAILED_AFTER_COMMIT"),
        Error::BadParameter { .. } => (Code::InvalidArgument, "INVALID_PARAMETER"),
        Error::InvalidOption { .. } => (Code::InvalidArgument, "INVALID_OPTION"),
        Error::ResponseTooLarge { .. } => (Code::ResourceExhausted, "RESPONSE_TOO_LARGE"),
        Error::ShuttingDown => (Code::Unavailable, "SHUTTING_DOWN"),
        Error::EngineDrained { .. } => (Code::Unavailable, "ENGINE_DRAINED"),
        Error::EngineBusy { .. } => (Code::ResourceExhausted, "ENGINE_BUSY"),
        Error::Unauthenticated { .. } => (Code::Unauthenticated, "UNAUTHENTICATED"),
        Error::PermissionDenied { .. } => (Code::PermissionDenied, "PERMISSION_DENIED"),
        Error::LimitExceeded { .. } => (Code::ResourceExhausted, "LIMIT_EXCEEDED"),
    }
}

/// The `ErrorInfo` reason of `err`: its kind.
pub fn reason(err: &Error) -> &'static str {
    code_and_reason(err).1
}

/// The status a client sees for `err`.
pub fn to_status(err: &Error) -> Status {
    let (code, reason) = code_and_reason(err);
    let mut metadata = HashMap::new();
    let retryable = match err {
        Error::Driver(e) => {
            if let Some(engine) = e.engine_error() {
                metadata.insert("engine".to_owned(), engine.engine.to_owned());
            }
            if let Some(engine_code) = e.engine_code() {
                metadata.insert("code".to_owned(), engine_code.to_owned());
            }
            e.is_retryable()
        }
        Error::ShuttingDown
        | Error::TxAborted { .. }
        | Error::LimitExceeded { .. }
        | Error::EngineBusy { .. } => true,
        _ => false,
    };
    metadata.insert("retryable".to_owned(), retryable.to_string());
    let mut details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata);
    if let Error::LimitExceeded {
        retry_after: Some(wait),
        ..
    } = err
    {
        details.set_retry_info(Some(*wait));
    }
    Status::with_error_details(code, err.to_string(), details)
}

/// A failed batch statement as the status its own call would have had.
pub fn statement_error(err: &Error) -> omnigate_proto::v1::StatementError {
    let status = to_status(err);
    let info = status.get_details_error_info();
    omnigate_proto::v1::StatementError {
        code: status.code() as u32,
        message: status.message().to_owned(),
        reason: info.as_ref().map(|i| i.reason.clone()).unwrap_or_default(),
        metadata: info.map(|i| i.metadata).unwrap_or_default(),
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        to_status(&err)
    }
}

#[cfg(test)]
mod tests {
    use omnigate_drivers::EngineError;

    use super::*;

    #[test]
    fn statuses_carry_code_reason_and_engine_details() {
        let err = Error::Driver(DriverError::Conflict(EngineError::new(
            "sqlite",
            Some("5"),
            "database is locked",
        )));
        let status = to_status(&err);
        assert_eq!(status.code(), Code::Aborted);
        assert!(status.message().contains("database is locked"));
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.reason, "CONFLICT");
        assert_eq!(info.domain, "omnigate");
        assert_eq!(info.metadata["engine"], "sqlite");
        assert_eq!(info.metadata["code"], "5");
        assert_eq!(info.metadata["retryable"], "true");
    }

    #[test]
    fn each_kind_has_its_code() {
        let engine = || EngineError::new("memory", Some("ERR"), "x");
        let cases = [
            (
                DriverError::InvalidStatement(engine()),
                Code::InvalidArgument,
            ),
            (DriverError::param(1, "x"), Code::InvalidArgument),
            (DriverError::NotFound(engine()), Code::NotFound),
            (
                DriverError::ConstraintViolation(engine()),
                Code::FailedPrecondition,
            ),
            (
                DriverError::Precondition(engine()),
                Code::FailedPrecondition,
            ),
            (
                DriverError::Timeout {
                    after: std::time::Duration::from_secs(1),
                },
                Code::DeadlineExceeded,
            ),
            (DriverError::Unavailable(engine()), Code::Unavailable),
            (
                DriverError::TooManyRows { limit: 1 },
                Code::ResourceExhausted,
            ),
            (
                DriverError::PermissionDenied(engine()),
                Code::PermissionDenied,
            ),
            (
                DriverError::not_supported("x", "memory"),
                Code::Unimplemented,
            ),
            (DriverError::Internal(engine()), Code::Internal),
        ];
        for (err, code) in cases {
            assert_eq!(to_status(&Error::Driver(err)).code(), code);
        }
        let id = || "t".to_owned();
        for (err, code) in [
            (Error::TxNotFound { id: id() }, Code::NotFound),
            (
                Error::TxEnded {
                    id: id(),
                    how: crate::tx::Ended::Expired,
                },
                Code::FailedPrecondition,
            ),
            (Error::TxAborted { why: id() }, Code::Aborted),
            (
                Error::TxTwoDeciders {
                    first: id(),
                    second: id(),
                },
                Code::FailedPrecondition,
            ),
            (Error::TxLog { why: id() }, Code::Unavailable),
        ] {
            assert_eq!(to_status(&err).code(), code, "{err}");
        }
    }
}
