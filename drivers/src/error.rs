//! The one error type every driver returns.

use std::fmt;
use std::time::Duration;

/// A boxed error from an engine's client library, kept as the cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What an engine said: its name, its own error code and message, and the
/// client library's error as the cause.
///
/// The message is what the engine reported about the statement; drivers
/// never put parameter values or credentials into it.
#[derive(Debug)]
pub struct EngineError {
    /// The engine kind that reported it (`"sqlite"`, `"memory"`, ...).
    pub engine: &'static str,
    /// The engine's own code: a SQLSTATE, a Redis error prefix, ...
    pub code: Option<String>,
    /// The engine's message.
    pub message: String,
    /// The client library's error.
    pub source: Option<BoxError>,
}

impl EngineError {
    /// An engine error with a code and a message.
    pub fn new(engine: &'static str, code: Option<&str>, message: impl Into<String>) -> Self {
        EngineError {
            engine,
            code: code.map(str::to_owned),
            message: message.into(),
            source: None,
        }
    }

    /// Keeps `source` as the cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EngineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The error of every [`StorageDriver`](crate::StorageDriver) call, by meaning.
///
/// The gateway maps each variant to one gRPC status code; the engine's own
/// code travels along in [`Error::engine_code`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The statement is malformed or the engine rejects it as written.
    #[error("invalid statement: {0}")]
    InvalidStatement(#[source] EngineError),

    /// A parameter is missing, unused, or of a type the statement cannot take.
    #[error("parameter ${index}: {message}")]
    InvalidParameter {
        /// The parameter's 1-based position.
        index: usize,
        /// What is wrong and what is expected (never the value itself).
        message: String,
    },

    /// A named parameter (`$name`, Cypher) is of a type the engine cannot
    /// take, or is not a valid name.
    #[error("parameter ${name}: {message}")]
    InvalidNamedParameter {
        /// The parameter's name.
        name: String,
        /// What is wrong and what is expected (never the value itself).
        message: String,
    },

    /// A table, key, label or other object does not exist.
    #[error("not found: {0}")]
    NotFound(#[source] EngineError),

    /// A unique, foreign-key, check or not-null constraint refused the write.
    #[error("constraint violation: {0}")]
    ConstraintViolation(#[source] EngineError),

    /// The data is not in the state the statement needs (e.g. Redis
    /// WRONGTYPE, a read-only request with a writing statement).
    #[error("failed precondition: {0}")]
    Precondition(#[source] EngineError),

    /// A buffered engine applied some of a transaction's writes and failed
    /// others as they were applied (Redis has no rollback): the transaction
    /// is committed there in part. Never to be taken for "nothing applied".
    #[error("applied in part: {0}")]
    AppliedInPart(#[source] EngineError),

    /// A write (or a statement that would lift read-only) refused because
    /// the request or transaction is read-only, by the driver or by the
    /// engine itself (PostgreSQL's SQLSTATE 25006).
    #[error("read-only: {0}")]
    ReadOnly(#[source] EngineError),

    /// A serialization failure, deadlock or lock conflict: retry it.
    #[error("conflict (retryable): {0}")]
    Conflict(#[source] EngineError),

    /// The statement ran out of time and was cancelled on the engine.
    #[error("timed out after {:?}", rounded(*.after))]
    Timeout {
        /// The time limit that ran out.
        after: Duration,
    },

    /// The engine is down or unreachable.
    #[error("engine unavailable: {0}")]
    Unavailable(#[source] EngineError),

    /// No pooled connection became free in time.
    #[error("no connection free in the pool of engine {engine} after {:?}", rounded(*.waited))]
    PoolExhausted {
        /// The engine's name.
        engine: String,
        /// How long the call waited.
        waited: Duration,
    },

    /// The engine refused the statement for lack of privileges.
    #[error("permission denied: {0}")]
    PermissionDenied(#[source] EngineError),

    /// The engine cannot do this operation at all.
    #[error("{operation} is not supported by the {engine} engine")]
    NotSupported {
        /// The operation or command, e.g. `"command SUBSCRIBE"`.
        operation: String,
        /// The engine kind.
        engine: String,
    },

    /// The result is larger than the caller allowed.
    #[error("result has more than {limit} rows: raise max_rows or use ExecuteStream")]
    TooManyRows {
        /// The row limit.
        limit: u64,
    },

    /// A value, statement or result is past a limit: of the value model
    /// (a date it cannot hold), of the engine (PostgreSQL's program limits)
    /// or of the gateway (nesting depth, sizes).
    #[error("out of range: {0}")]
    OutOfRange(#[source] EngineError),

    /// The result would be larger than the caller allowed, in bytes.
    #[error(
        "the result is over the {limit}-byte message limit: use ExecuteStream or lower max_rows \
         (server.max_response_bytes)"
    )]
    ResultTooLarge {
        /// The limit in bytes.
        limit: u64,
    },

    /// The engine is overloaded and asks callers to slow down (try again
    /// later).
    #[error("the engine is overloaded: {0}")]
    Overloaded(#[source] EngineError),

    /// A bug or an unexpected state in the driver or the engine.
    #[error("internal error: {0}")]
    Internal(#[source] EngineError),
}

/// `d` as people read it in a message: whole milliseconds from 1 ms up
/// (`450ms`, `1.5s`, not `449.988953ms`), whole microseconds below.
pub fn rounded(d: Duration) -> Duration {
    let unit = if d >= Duration::from_millis(1) {
        1_000_000
    } else if d >= Duration::from_micros(1) {
        1_000
    } else {
        return d;
    };
    let nanos = d.as_nanos();
    let whole = (nanos + unit / 2) / unit * unit;
    Duration::from_nanos(u64::try_from(whole).unwrap_or(u64::MAX))
}

/// The result of every driver call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The engine's own error code (SQLSTATE, Redis prefix, ...), if any.
    pub fn engine_code(&self) -> Option<&str> {
        self.engine_error().and_then(|e| e.code.as_deref())
    }

    /// The engine's report, for the variants that carry one.
    pub fn engine_error(&self) -> Option<&EngineError> {
        match self {
            Error::InvalidStatement(e)
            | Error::NotFound(e)
            | Error::ConstraintViolation(e)
            | Error::Precondition(e)
            | Error::AppliedInPart(e)
            | Error::ReadOnly(e)
            | Error::Conflict(e)
            | Error::Unavailable(e)
            | Error::PermissionDenied(e)
            | Error::Overloaded(e)
            | Error::OutOfRange(e)
            | Error::Internal(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the same call may succeed if tried again unchanged.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Conflict(_)
                | Error::Unavailable(_)
                | Error::Overloaded(_)
                | Error::PoolExhausted { .. }
                | Error::Timeout { .. }
        )
    }

    /// A short, stable name of the variant, for metrics and error details.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidStatement(_) => "INVALID_STATEMENT",
            Error::InvalidParameter { .. } | Error::InvalidNamedParameter { .. } => {
                "INVALID_PARAMETER"
            }
            Error::NotFound(_) => "NOT_FOUND",
            Error::ConstraintViolation(_) => "CONSTRAINT_VIOLATION",
            Error::Precondition(_) => "FAILED_PRECONDITION",
            Error::AppliedInPart(_) => "APPLIED_IN_PART",
            Error::ReadOnly(_) => "READ_ONLY",
            Error::Conflict(_) => "CONFLICT",
            Error::Timeout { .. } => "TIMEOUT",
            Error::Unavailable(_) => "UNAVAILABLE",
            Error::PoolExhausted { .. } => "POOL_EXHAUSTED",
            Error::PermissionDenied(_) => "PERMISSION_DENIED",
            Error::NotSupported { .. } => "NOT_SUPPORTED",
            Error::TooManyRows { .. } => "TOO_MANY_ROWS",
            Error::Overloaded(_) => "OVERLOADED",
            Error::OutOfRange(_) => "OUT_OF_RANGE",
            Error::ResultTooLarge { .. } => "RESPONSE_TOO_LARGE",
            Error::Internal(_) => "INTERNAL",
        }
    }

    /// A parameter error.
    pub fn param(index: usize, message: impl Into<String>) -> Self {
        Error::InvalidParameter {
            index,
            message: message.into(),
        }
    }

    /// A named parameter error.
    pub fn named_param(name: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidNamedParameter {
            name: name.into(),
            message: message.into(),
        }
    }

    /// A precondition the driver itself found unmet (no engine code), e.g.
    /// a write in a read-only transaction.
    pub fn precondition(engine: &'static str, message: impl Into<String>) -> Self {
        Error::Precondition(EngineError::new(engine, None, message))
    }

    /// A write refused because the request or transaction is read-only
    /// (`message` names the command, never its arguments).
    pub fn read_only(engine: &'static str, message: impl Into<String>) -> Self {
        Error::ReadOnly(EngineError::new(engine, None, message))
    }

    /// An operation the engine kind cannot do.
    pub fn not_supported(operation: impl Into<String>, engine: impl Into<String>) -> Self {
        Error::NotSupported {
            operation: operation.into(),
            engine: engine.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_messages_are_round() {
        let after = Duration::from_nanos(449_988_953);
        assert_eq!(
            Error::Timeout { after }.to_string(),
            "timed out after 450ms"
        );
        let waited = Duration::from_micros(1_500_400);
        let busy = Error::PoolExhausted {
            engine: "main".into(),
            waited,
        };
        assert_eq!(
            busy.to_string(),
            "no connection free in the pool of engine main after 1.5s"
        );
        assert_eq!(
            rounded(Duration::from_nanos(1_499)),
            Duration::from_micros(1)
        );
        assert_eq!(
            rounded(Duration::from_nanos(999)),
            Duration::from_nanos(999)
        );
    }
}
