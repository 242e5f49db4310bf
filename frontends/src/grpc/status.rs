//! The one place where errors become gRPC statuses: a code, a message that
//! says what to fix, and a `google.rpc.ErrorInfo` detail (domain
//! `omnigate`, reason = the error kind, metadata: engine, code, retryable).

use std::collections::HashMap;

use omnigate_drivers::Error as DriverError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use omnigate::error::{Class, Error, driver_class};

/// The error domain in `ErrorInfo`.
pub const ERROR_DOMAIN: &str = "omnigate";

/// The gRPC code of an error class (the classes are gRPC's canonical
/// codes).
pub fn code(class: Class) -> Code {
    match class {
        Class::InvalidArgument => Code::InvalidArgument,
        Class::NotFound => Code::NotFound,
        Class::FailedPrecondition => Code::FailedPrecondition,
        Class::Aborted => Code::Aborted,
        Class::DeadlineExceeded => Code::DeadlineExceeded,
        Class::Unavailable => Code::Unavailable,
        Class::OutOfRange => Code::OutOfRange,
        Class::ResourceExhausted => Code::ResourceExhausted,
        Class::PermissionDenied => Code::PermissionDenied,
        Class::Unauthenticated => Code::Unauthenticated,
        Class::Unimplemented => Code::Unimplemented,
        Class::Unknown => Code::Unknown,
        Class::Internal => Code::Internal,
    }
}

/// The gRPC code of a driver error.
pub fn driver_code(err: &DriverError) -> Code {
    code(driver_class(err))
}

/// The status a client sees for `err`.
pub fn to_status(err: &Error) -> Status {
    let (class, reason) = err.class_and_kind();
    let mut metadata = HashMap::new();
    if let Error::Driver(e) = err {
        if let Some(engine) = e.engine_error() {
            metadata.insert("engine".to_owned(), engine.engine.to_owned());
        }
        if let Some(engine_code) = e.engine_code() {
            metadata.insert("code".to_owned(), engine_code.to_owned());
        }
    }
    metadata.insert("retryable".to_owned(), err.is_retryable().to_string());
    let mut details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata);
    if let Error::LimitExceeded {
        retry_after: Some(wait),
        ..
    } = err
    {
        details.set_retry_info(Some(*wait));
    }
    Status::with_error_details(code(class), err.to_string(), details)
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

/// [`to_status`] of an owned error, for `map_err`.
pub fn status(err: Error) -> Status {
    to_status(&err)
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
                    how: omnigate::tx::Ended::Expired,
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
